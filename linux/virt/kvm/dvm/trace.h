/* SPDX-License-Identifier: GPL-2.0 */
/*
 * DVM tracepoints: every message sent and received, with its peer, and
 * the DSM's faults, fetches and invalidations.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM kvm_dvm

#if !defined(_TRACE_KVM_DVM_H) || defined(TRACE_HEADER_MULTI_READ)
#define _TRACE_KVM_DVM_H

#include <linux/tracepoint.h>

DECLARE_EVENT_CLASS(dvm_msg_class,
	TP_PROTO(u32 self, u32 peer, u16 type, u16 flags, u32 len, u64 req_id),
	TP_ARGS(self, peer, type, flags, len, req_id),

	TP_STRUCT__entry(
		__field(u32, self)
		__field(u32, peer)
		__field(u16, type)
		__field(u16, flags)
		__field(u32, len)
		__field(u64, req_id)
	),

	TP_fast_assign(
		__entry->self = self;
		__entry->peer = peer;
		__entry->type = type;
		__entry->flags = flags;
		__entry->len = len;
		__entry->req_id = req_id;
	),

	TP_printk("node %u peer %d type %u flags 0x%x len %u req %llu",
		  __entry->self, (int)__entry->peer, __entry->type,
		  __entry->flags, __entry->len, __entry->req_id)
);

DEFINE_EVENT(dvm_msg_class, dvm_send,
	TP_PROTO(u32 self, u32 peer, u16 type, u16 flags, u32 len, u64 req_id),
	TP_ARGS(self, peer, type, flags, len, req_id)
);

DEFINE_EVENT(dvm_msg_class, dvm_recv,
	TP_PROTO(u32 self, u32 peer, u16 type, u16 flags, u32 len, u64 req_id),
	TP_ARGS(self, peer, type, flags, len, req_id)
);

TRACE_EVENT(dvm_drop,
	TP_PROTO(u32 self, u32 peer, int err),
	TP_ARGS(self, peer, err),

	TP_STRUCT__entry(
		__field(u32, self)
		__field(u32, peer)
		__field(int, err)
	),

	TP_fast_assign(
		__entry->self = self;
		__entry->peer = peer;
		__entry->err = err;
	),

	TP_printk("node %u dropped peer %d: %d", __entry->self,
		  (int)__entry->peer, __entry->err)
);

TRACE_EVENT(dvm_dsm_fault,
	TP_PROTO(u32 self, u64 page, bool write, int err, u64 ns),
	TP_ARGS(self, page, write, err, ns),

	TP_STRUCT__entry(
		__field(u32, self)
		__field(u64, page)
		__field(bool, write)
		__field(int, err)
		__field(u64, ns)
	),

	TP_fast_assign(
		__entry->self = self;
		__entry->page = page;
		__entry->write = write;
		__entry->err = err;
		__entry->ns = ns;
	),

	TP_printk("node %u page %llu %s: %d in %llu ns", __entry->self,
		  __entry->page, __entry->write ? "write" : "read",
		  __entry->err, __entry->ns)
);

TRACE_EVENT(dvm_dsm_fetch,
	TP_PROTO(u32 self, u64 page, u32 manager, u16 flags, u32 version),
	TP_ARGS(self, page, manager, flags, version),

	TP_STRUCT__entry(
		__field(u32, self)
		__field(u64, page)
		__field(u32, manager)
		__field(u16, flags)
		__field(u32, version)
	),

	TP_fast_assign(
		__entry->self = self;
		__entry->page = page;
		__entry->manager = manager;
		__entry->flags = flags;
		__entry->version = version;
	),

	TP_printk("node %u page %llu from manager %u grant 0x%x version %u",
		  __entry->self, __entry->page, __entry->manager,
		  __entry->flags, __entry->version)
);

TRACE_EVENT(dvm_dsm_invalidate,
	TP_PROTO(u32 self, u64 page, u8 op, u32 version),
	TP_ARGS(self, page, op, version),

	TP_STRUCT__entry(
		__field(u32, self)
		__field(u64, page)
		__field(u8, op)
		__field(u32, version)
	),

	TP_fast_assign(
		__entry->self = self;
		__entry->page = page;
		__entry->op = op;
		__entry->version = version;
	),

	TP_printk("node %u page %llu op %u version %u", __entry->self,
		  __entry->page, __entry->op, __entry->version)
);

/* An interrupt event forwarded to (@rx false) or from (@rx true) @peer. */
TRACE_EVENT(dvm_irq,
	TP_PROTO(u32 self, u32 peer, u32 vcpu, u8 mode, u8 vector, bool rx,
		 int err),
	TP_ARGS(self, peer, vcpu, mode, vector, rx, err),

	TP_STRUCT__entry(
		__field(u32, self)
		__field(u32, peer)
		__field(u32, vcpu)
		__field(u8, mode)
		__field(u8, vector)
		__field(bool, rx)
		__field(int, err)
	),

	TP_fast_assign(
		__entry->self = self;
		__entry->peer = peer;
		__entry->vcpu = vcpu;
		__entry->mode = mode;
		__entry->vector = vector;
		__entry->rx = rx;
		__entry->err = err;
	),

	TP_printk("node %u %s node %u vcpu %u mode %u vector %u err %d",
		  __entry->self, __entry->rx ? "from" : "to", __entry->peer,
		  __entry->vcpu, __entry->mode, __entry->vector, __entry->err)
);

/* A vCPU's APIC registers sent to (@rx false) or applied from @peer. */
TRACE_EVENT(dvm_apic_mirror,
	TP_PROTO(u32 self, u32 peer, u32 vcpu, u64 base, u32 id, u32 ldr,
		 bool rx),
	TP_ARGS(self, peer, vcpu, base, id, ldr, rx),

	TP_STRUCT__entry(
		__field(u32, self)
		__field(u32, peer)
		__field(u32, vcpu)
		__field(u64, base)
		__field(u32, id)
		__field(u32, ldr)
		__field(bool, rx)
	),

	TP_fast_assign(
		__entry->self = self;
		__entry->peer = peer;
		__entry->vcpu = vcpu;
		__entry->base = base;
		__entry->id = id;
		__entry->ldr = ldr;
		__entry->rx = rx;
	),

	TP_printk("node %u %s node %d vcpu %u base 0x%llx id 0x%x ldr 0x%x",
		  __entry->self, __entry->rx ? "from" : "to", (int)__entry->peer,
		  __entry->vcpu, __entry->base, __entry->id, __entry->ldr)
);

/*
 * A forwarded port or MMIO access: sent to node 0 (@what 0), answered
 * there by its kernel (1) or its VMM (2), its answer applied (3, with the
 * round trip in @ns).
 */
TRACE_EVENT(dvm_io,
	TP_PROTO(u32 self, u32 peer, u32 vcpu, u8 kind, u8 size, u16 count,
		 u64 addr, u8 what, u64 ns),
	TP_ARGS(self, peer, vcpu, kind, size, count, addr, what, ns),

	TP_STRUCT__entry(
		__field(u32, self)
		__field(u32, peer)
		__field(u32, vcpu)
		__field(u8, kind)
		__field(u8, size)
		__field(u16, count)
		__field(u64, addr)
		__field(u8, what)
		__field(u64, ns)
	),

	TP_fast_assign(
		__entry->self = self;
		__entry->peer = peer;
		__entry->vcpu = vcpu;
		__entry->kind = kind;
		__entry->size = size;
		__entry->count = count;
		__entry->addr = addr;
		__entry->what = what;
		__entry->ns = ns;
	),

	TP_printk("node %u %s node %u vcpu %u kind %u size %u count %u addr 0x%llx rtt %llu ns",
		  __entry->self,
		  __print_symbolic(__entry->what, { 0, "sent to" },
				   { 1, "kernel answered" },
				   { 2, "vmm answered" },
				   { 3, "answered by" }),
		  __entry->peer, __entry->vcpu, __entry->kind, __entry->size,
		  __entry->count, __entry->addr, __entry->ns)
);

/*
 * A clock check of a node other than 0: its best sample's round trip, the
 * kvmclock and TSC errors it found (this node minus node 0, ns), and what
 * it did: 0 nothing, 1 stepped, 2 found this node ahead.
 */
TRACE_EVENT(dvm_clock,
	TP_PROTO(u32 self, u64 rtt_ns, s64 clock_err_ns, s64 tsc_err_ns,
		 u8 what),
	TP_ARGS(self, rtt_ns, clock_err_ns, tsc_err_ns, what),

	TP_STRUCT__entry(
		__field(u32, self)
		__field(u64, rtt_ns)
		__field(s64, clock_err_ns)
		__field(s64, tsc_err_ns)
		__field(u8, what)
	),

	TP_fast_assign(
		__entry->self = self;
		__entry->rtt_ns = rtt_ns;
		__entry->clock_err_ns = clock_err_ns;
		__entry->tsc_err_ns = tsc_err_ns;
		__entry->what = what;
	),

	TP_printk("node %u rtt %llu ns kvmclock %lld ns tsc %lld ns: %s",
		  __entry->self, __entry->rtt_ns, __entry->clock_err_ns,
		  __entry->tsc_err_ns,
		  __print_symbolic(__entry->what, { 0, "within bound" },
				   { 1, "stepped" }, { 2, "ahead" }))
);

/* A node's part of a VM-wide pause, resume, reset or power-off. */
TRACE_EVENT(dvm_vm_control,
	TP_PROTO(u32 self, u32 op, int err, u64 ns),
	TP_ARGS(self, op, err, ns),

	TP_STRUCT__entry(
		__field(u32, self)
		__field(u32, op)
		__field(int, err)
		__field(u64, ns)
	),

	TP_fast_assign(
		__entry->self = self;
		__entry->op = op;
		__entry->err = err;
		__entry->ns = ns;
	),

	TP_printk("node %u %s: %d in %llu ns", __entry->self,
		  __print_symbolic(__entry->op, { 1, "pause" },
				   { 2, "resume" }, { 3, "reset" },
				   { 4, "poweroff" }),
		  __entry->err, __entry->ns)
);

#endif /* _TRACE_KVM_DVM_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH ../../virt/kvm/dvm
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace

#include <trace/define_trace.h>
