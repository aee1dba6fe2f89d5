/* SPDX-License-Identifier: GPL-2.0 */
/*
 * DVM tracepoints: every message sent and received, with its peer.
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

#endif /* _TRACE_KVM_DVM_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH ../../virt/kvm/dvm
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace

#include <trace/define_trace.h>
