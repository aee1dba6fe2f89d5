// SPDX-License-Identifier: GPL-2.0
/*
 * DVM on x86: I/O forwarding to node 0. See
 * Documentation/virt/kvm/dvm.rst, "I/O forwarding".
 *
 * Node 0 (the master) has the VM's devices: its in-kernel IOAPIC, PIC and
 * PIT, its ioeventfds and coalesced MMIO zones, and its VMM's device
 * models. With KVM_DVM_JOIN_FORWARD_IO, a port or MMIO exit of a vCPU
 * on another node does not go to that node's VMM: the vCPU's thread sends
 * the access to node 0 (DVM_MSG_IO), waits for the answer, completes the
 * access as KVM does after an exit to userspace and enters the guest
 * again. That node's own buses answer nothing (kvm_dvm_io_bus_bypass()).
 *
 * On node 0 the receive path offers each access to node 0's in-kernel
 * buses first and answers what they take at once. KVM_RUN of node 0's
 * copy of the vCPU is the proxy: it waits for the vCPU's other accesses
 * and returns them to the VMM as the copy's own KVM_EXIT_IO or
 * KVM_EXIT_MMIO; the VMM's next KVM_RUN of the copy sends the answer.
 *
 * A vCPU has one access in flight at most: it waits for it. A signal or
 * immediate_exit, on either side, leaves the access pending and the next
 * KVM_RUN goes on with it: each access is made once and completed once.
 *
 * The proxy holds the copy's mutex, as any KVM_RUN, for as long as it
 * waits: the owner's APIC registers for the copy (irq.c), applied under
 * that mutex, are handed to the proxy, which applies them and answers.
 */
#include <linux/kvm_host.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>

#include "../x86.h"
#include "irq.h"
#include "../../../../virt/kvm/dvm/dvm.h"
#include "../../../../virt/kvm/dvm/trace.h"

/* How often a proxy waiting for an access looks at the cluster's state. */
#define DVM_IO_PROXY_POLL	HZ

/* The state of node 0's slot of another node's vCPU */
enum {
	DVM_IO_IDLE,		/* no access */
	DVM_IO_KERNEL,		/* the receive path offers it to the buses */
	DVM_IO_QUEUED,		/* received, for the proxy to take */
	DVM_IO_USER,		/* with node 0's VMM, answered at the next KVM_RUN */
};

/**
 * struct dvm_io_slot - one vCPU's forwarded access
 * @call: node N: the request in flight
 * @pending: node N: sent, its answer not applied yet
 * @kind: node N: enum dvm_io_kind of the access in flight
 * @read_len: node N: bytes the answer must carry
 * @lock: node 0: @state, and @from, @req_id, @cluster, @req with it
 * @wq: node 0: the proxy waits here for an access
 * @state: node 0: DVM_IO_*
 * @from: node 0: the node that sent the access
 * @req_id: node 0: its request id, for the answer
 * @cluster: node 0: the cluster it came on, compared, never followed
 * @in_proxy: node 0: a KVM_RUN of the copy holds its mutex
 * @mirror_direct: node 0: APIC_STATE handlers taking the copy's mutex
 * @mirror_pending: node 0: @mirror waits for the proxy to apply it
 * @mirror: node 0: the owner's APIC registers
 * @mirror_from: node 0: the APIC_STATE request's sender
 * @mirror_req_id: node 0: and id
 * @mirror_cluster: node 0: and cluster, compared, never followed
 * @req: the access, a struct dvm_msg_io with its data
 * @resp: what a read returned
 */
struct dvm_io_slot {
	struct dvm_call call;
	bool pending;
	u8 kind;
	u32 read_len;
	spinlock_t lock;	/* node 0: @state and what goes with it */
	wait_queue_head_t wq;
	int state;
	u32 from;
	u64 req_id;
	struct dvm_cluster *cluster;
	bool in_proxy;
	int mirror_direct;
	bool mirror_pending;
	struct dvm_apic_regs mirror;
	u32 mirror_from;
	u64 mirror_req_id;
	struct dvm_cluster *mirror_cluster;
	u8 req[sizeof(struct dvm_msg_io) + DVM_IO_DATA_MAX] __aligned(8);
	u8 resp[DVM_IO_DATA_MAX];
};

static struct kvm_dvm_vm_stat *dvm_io_stats(struct kvm *kvm)
{
	return &kvm->stat.generic.dvm;
}

static bool dvm_io_is_pio(u8 kind)
{
	return kind == DVM_IO_PIO_OUT || kind == DVM_IO_PIO_IN;
}

static bool dvm_io_is_write(u8 kind)
{
	return kind == DVM_IO_PIO_OUT || kind == DVM_IO_MMIO_WRITE;
}

/**
 * dvm_io_slots_alloc - a slot for each vCPU whose accesses this node
 *	forwards or answers, at placement
 * @dvm: the VM's DVM state, its lock held; the placement applied
 *
 * Return: 0 or -ENOMEM.
 */
static int dvm_io_slots_alloc(struct kvm_dvm *dvm)
{
	struct dvm_io_slot *s;
	u32 id;

	lockdep_assert_held(&dvm->lock);
	if (!dvm->forward_io)
		return 0;
	if (!dvm->io) {
		dvm->io = kvcalloc(KVM_DVM_MAX_VCPUS, sizeof(*dvm->io),
				   GFP_KERNEL_ACCOUNT);
		if (!dvm->io)
			return -ENOMEM;
	}
	for (id = 0; id < dvm->nr_vcpus; id++) {
		if (!kvm_get_vcpu_by_id(dvm->kvm, id))
			continue;
		s = dvm->io[id];
		if (!s) {
			s = kvzalloc(sizeof(*s), GFP_KERNEL_ACCOUNT);
			if (!s)
				return -ENOMEM;
			spin_lock_init(&s->lock);
			init_waitqueue_head(&s->wq);
			dvm->io[id] = s;
		}
		/* A cluster left closed every call: nothing is in flight. */
		s->pending = false;
		s->state = DVM_IO_IDLE;
		s->cluster = NULL;
		s->mirror_pending = false;
	}
	return 0;
}

/* When the VM is destroyed: no vCPU runs, no cluster is left. */
static void dvm_io_slots_free(struct kvm_dvm *dvm)
{
	u32 id;

	if (!dvm->io)
		return;
	for (id = 0; id < KVM_DVM_MAX_VCPUS; id++)
		kvfree(dvm->io[id]);
	kvfree(dvm->io);
	dvm->io = NULL;
}

const struct dvm_subsys dvm_io_subsys = {
	.name = "io",
	.vm_free = dvm_io_slots_free,
	.commit = dvm_io_slots_alloc,
};

static struct dvm_io_slot *dvm_io_slot(struct kvm_dvm *dvm, u32 id)
{
	return dvm->io && id < KVM_DVM_MAX_VCPUS ? dvm->io[id] : NULL;
}

/* Trace @s's access (its request in @s->req) as @what (trace.h). */
static void dvm_io_trace(struct kvm_dvm *dvm, struct dvm_io_slot *s,
			 u32 peer, u8 what, u64 ns)
{
	const struct dvm_msg_io *m = (const struct dvm_msg_io *)s->req;

	trace_dvm_io(dvm->node_id, peer, le32_to_cpu(m->vcpu), m->kind,
		     m->size, le16_to_cpu(m->count), le64_to_cpu(m->addr),
		     what, ns);
}

/* Node N: the forwarding side */

/**
 * dvm_io_forwards - does this exit of a local vCPU go to node 0?
 * @dvm: the VM's DVM state
 * @vcpu: a vCPU this node runs, back from the guest with an exit
 */
bool dvm_io_forwards(struct kvm_dvm *dvm, struct kvm_vcpu *vcpu)
{
	u32 reason = vcpu->run->exit_reason;

	switch (reason) {
	case KVM_EXIT_IO:
	case KVM_EXIT_MMIO:
	case KVM_EXIT_SHUTDOWN:
	case KVM_EXIT_SYSTEM_EVENT:
		return kvm_dvm_io_bus_bypass(vcpu);
	}
	return false;
}

/* A triple fault, or a system event (e.g. a Hyper-V crash), for node 0. */
static u32 dvm_io_request_event(struct kvm_vcpu *vcpu, struct dvm_io_slot *s)
{
	struct dvm_msg_io *m = (struct dvm_msg_io *)s->req;
	struct kvm_run *run = vcpu->run;
	u32 ndata = 0;

	if (run->exit_reason == KVM_EXIT_SHUTDOWN) {
		m->kind = DVM_IO_SHUTDOWN;
	} else {
		ndata = min_t(u32, run->system_event.ndata,
			      DVM_IO_EVENT_DATA_MAX);
		m->kind = DVM_IO_SYSTEM_EVENT;
		m->size = sizeof(u64);
		m->count = cpu_to_le16(ndata);
		m->addr = cpu_to_le64(run->system_event.type);
		memcpy(m->data, run->system_event.data, ndata * sizeof(u64));
	}
	s->kind = m->kind;
	s->read_len = 0;
	return sizeof(*m) + ndata * sizeof(u64);
}

/* The exit in kvm_run as a request; 0 when KVM's sizes are not ours. */
static u32 dvm_io_request(struct kvm_vcpu *vcpu, struct dvm_io_slot *s)
{
	struct dvm_msg_io *m = (struct dvm_msg_io *)s->req;
	struct kvm_run *run = vcpu->run;
	const void *data;
	u32 bytes;

	memset(m, 0, sizeof(*m));
	m->vcpu = cpu_to_le32(vcpu->vcpu_id);
	if (run->exit_reason == KVM_EXIT_SHUTDOWN ||
	    run->exit_reason == KVM_EXIT_SYSTEM_EVENT)
		return dvm_io_request_event(vcpu, s);
	if (run->exit_reason == KVM_EXIT_IO) {
		m->kind = run->io.direction == KVM_EXIT_IO_OUT ?
			  DVM_IO_PIO_OUT : DVM_IO_PIO_IN;
		m->size = run->io.size;
		m->count = cpu_to_le16(run->io.count);
		m->addr = cpu_to_le64(run->io.port);
		bytes = run->io.size * run->io.count;
		data = vcpu->arch.pio_data;
	} else {
		m->kind = run->mmio.is_write ? DVM_IO_MMIO_WRITE :
					       DVM_IO_MMIO_READ;
		m->size = run->mmio.len;
		m->count = cpu_to_le16(1);
		m->addr = cpu_to_le64(run->mmio.phys_addr);
		bytes = run->mmio.len;
		data = run->mmio.data;
	}
	if (WARN_ON_ONCE(!bytes || bytes > DVM_IO_DATA_MAX))
		return 0;
	s->kind = m->kind;
	s->read_len = dvm_io_is_write(m->kind) ? 0 : bytes;
	if (!dvm_io_is_write(m->kind))
		return sizeof(*m);
	memcpy(m->data, data, bytes);
	return sizeof(*m) + bytes;
}

/* What node 0 read, where KVM completes the access from. */
static void dvm_io_complete(struct kvm_vcpu *vcpu, struct dvm_io_slot *s)
{
	if (s->kind == DVM_IO_PIO_IN)
		memcpy(vcpu->arch.pio_data, s->resp, s->read_len);
	else if (s->kind == DVM_IO_MMIO_READ)
		memcpy(vcpu->run->mmio.data, s->resp, s->read_len);
}

static void dvm_io_count_rtt(struct kvm *kvm, u64 ns)
{
	struct kvm_dvm_vm_stat *st = dvm_io_stats(kvm);

	dvm_stat_min(&st->io_rtt_min_ns, ns);
	dvm_stat_max(&st->io_rtt_max_ns, ns);
	dvm_stat_add(&st->io_rtt_sum_ns, ns);
	dvm_stat_add(&st->io_rtt_count, 1);
}

/*
 * An access that got no answer. Once the cluster is broken, -EFAULT
 * becomes KVM_EXIT_DVM_BROKEN (kvm_dvm_vcpu_run()); node 0 refusing the
 * access is -EIO: the VM cannot go on.
 */
static int dvm_io_failed(struct kvm_dvm *dvm, struct kvm_vcpu *vcpu, int err)
{
	switch (err) {
	case -EINVAL:
	case -EBUSY:
	case -ENODEV:
	case -EPROTO:
		pr_warn_ratelimited("kvm-dvm: vCPU %u: node 0 refused an access: %d\n",
				    vcpu->vcpu_id, err);
		return -EIO;
	}
	return -EFAULT;
}

/* A signal or immediate_exit: back to userspace, the access pending. */
static int dvm_io_interrupted(struct kvm_vcpu *vcpu)
{
	vcpu->run->exit_reason = KVM_EXIT_INTR;
	dvm_stat_add(&dvm_io_stats(vcpu->kvm)->io_interrupted, 1);
	return -EINTR;
}

/**
 * dvm_io_resume - wait for the answer to a local vCPU's forwarded access
 * @dvm: the VM's DVM state
 * @vcpu: a vCPU this node runs, in KVM_RUN, not loaded
 *
 * Return: 0 when no access is pending or its answer is in place, so that
 * KVM completes the access when the vCPU runs; -EINTR on a signal or
 * immediate_exit, the access still pending; -EIO or -EFAULT when there
 * will be no answer (dvm_io_failed()).
 */
int dvm_io_resume(struct kvm_dvm *dvm, struct kvm_vcpu *vcpu)
{
	struct dvm_io_slot *s = dvm_io_slot(dvm, vcpu->vcpu_id);
	int r;

	if (!s || !s->pending)
		return 0;
	if (!vcpu->wants_to_run)
		return dvm_io_interrupted(vcpu);
	/* The cluster completes every call when it breaks or is left. */
	if (wait_for_completion_interruptible(&s->call.done))
		return dvm_io_interrupted(vcpu);
	s->pending = false;
	r = s->call.status;
	if (!r && s->call.resp_len != s->read_len) {
		dvm_stat_add(&dvm_io_stats(vcpu->kvm)->io_rejected, 1);
		r = -EPROTO;
	}
	if (r)
		return dvm_io_failed(dvm, vcpu, r);
	dvm_io_count_rtt(vcpu->kvm, s->call.rtt_ns);
	dvm_io_trace(dvm, s, 0, 3, s->call.rtt_ns);
	dvm_io_complete(vcpu, s);
	return 0;
}

/**
 * dvm_io_forward - send a local vCPU's port or MMIO exit to node 0
 * @dvm: the VM's DVM state
 * @vcpu: a vCPU this node runs, back from KVM_RUN with the exit
 *
 * Return: as dvm_io_resume().
 */
int dvm_io_forward(struct kvm_dvm *dvm, struct kvm_vcpu *vcpu)
{
	struct dvm_io_slot *s = dvm_io_slot(dvm, vcpu->vcpu_id);
	struct dvm_cluster *c;
	u32 len;
	int r;

	if (WARN_ON_ONCE(!s || s->pending))
		return -EIO;
	len = dvm_io_request(vcpu, s);
	if (!len)
		return -EIO;
	c = dvm_live_get(dvm);
	if (!c)
		return -EFAULT;
	r = dvm_call_start(c, &s->call, 0, DVM_MSG_IO, s->req, len, s->resp,
			   DVM_IO_DATA_MAX);
	dvm_live_put(dvm);
	if (r)
		return dvm_io_failed(dvm, vcpu, r);
	s->pending = true;
	dvm_stat_add(&dvm_io_stats(vcpu->kvm)->io_forwarded[s->kind], 1);
	dvm_io_trace(dvm, s, 0, 0, 0);
	return dvm_io_resume(dvm, vcpu);
}

/* Node 0: the proxy */

static int dvm_io_reject(struct kvm_dvm *dvm, int err)
{
	dvm_stat_add(&dvm_io_stats(dvm->kvm)->io_rejected, 1);
	return err;
}

/* A peer's access: sizes, port range and length checked. */
static bool dvm_io_msg_ok(const struct dvm_msg_io *m, u32 len)
{
	u32 count = le16_to_cpu(m->count);
	u64 addr = le64_to_cpu(m->addr);
	u32 bytes = m->size * count;

	switch (m->kind) {
	case DVM_IO_PIO_OUT:
	case DVM_IO_PIO_IN:
		if ((m->size != 1 && m->size != 2 && m->size != 4) ||
		    !count || bytes > DVM_IO_DATA_MAX ||
		    addr + m->size > 0x10000)
			return false;
		break;
	case DVM_IO_MMIO_WRITE:
	case DVM_IO_MMIO_READ:
		if (!m->size || m->size > 8 || count != 1 ||
		    addr + m->size < addr)
			return false;
		break;
	case DVM_IO_SHUTDOWN:
		return !m->size && !count && !addr && len == sizeof(*m);
	case DVM_IO_SYSTEM_EVENT:
		return m->size == sizeof(u64) &&
		       count <= DVM_IO_EVENT_DATA_MAX && addr <= U32_MAX &&
		       len == sizeof(*m) + bytes;
	default:
		return false;
	}
	return len == sizeof(*m) + (dvm_io_is_write(m->kind) ? bytes : 0);
}

/*
 * Node 0's in-kernel devices first: ioeventfds, coalesced MMIO, IOAPIC,
 * PIC, PIT, as for an access of @vcpu, node 0's copy of the vCPU.
 * Return: true when one answered; what it read is in @resp.
 */
static bool dvm_io_in_kernel(struct kvm_vcpu *vcpu, const struct dvm_msg_io *m,
			     u8 *resp)
{
	int bus = dvm_io_is_pio(m->kind) ? KVM_PIO_BUS : KVM_MMIO_BUS;
	u32 count = le16_to_cpu(m->count), i;
	gpa_t addr = le64_to_cpu(m->addr);
	int idx, r = 0;

	if (!dvm_io_is_pio(m->kind) && m->kind != DVM_IO_MMIO_WRITE &&
	    m->kind != DVM_IO_MMIO_READ)
		return false;
	idx = srcu_read_lock(&vcpu->kvm->srcu);
	/* A rep access goes to one port: the device that takes the first. */
	for (i = 0; i < count; i++) {
		if (dvm_io_is_write(m->kind))
			r = kvm_io_bus_write(vcpu, bus, addr, m->size,
					     m->data + i * m->size);
		else
			r = kvm_io_bus_read(vcpu, bus, addr, m->size,
					    resp + i * m->size);
		if (r && !i)
			break;
	}
	srcu_read_unlock(&vcpu->kvm->srcu, idx);
	return !r || i;
}

/*
 * In the receive path, the slot taken (DVM_IO_KERNEL): node 0's devices
 * answer at once, without waking the proxy. Return: true when answered,
 * in @reply (@s->resp, which the next access of the vCPU, after this
 * answer, may reuse); the slot is free again either way.
 */
static bool dvm_io_answer_in_kernel(struct dvm_cluster *c, u32 from,
				    const struct dvm_msg_io *m,
				    struct dvm_io_slot *s,
				    struct dvm_reply *reply)
{
	struct kvm_dvm *dvm = c->dvm;
	u32 id = le32_to_cpu(m->vcpu);
	struct kvm_vcpu *copy = kvm_get_vcpu_by_id(dvm->kvm, id);
	unsigned long flags;
	bool done;

	done = copy && dvm_io_in_kernel(copy, m, s->resp);
	if (done) {
		dvm_stat_add(&dvm_io_stats(dvm->kvm)->io_in_kernel, 1);
		trace_dvm_io(dvm->node_id, from, id, m->kind, m->size,
			     le16_to_cpu(m->count), le64_to_cpu(m->addr), 1, 0);
		reply->buf = s->resp;
		reply->len = dvm_io_is_write(m->kind) ? 0 :
			     m->size * le16_to_cpu(m->count);
		spin_lock_irqsave(&s->lock, flags);
		s->state = DVM_IO_IDLE;
		spin_unlock_irqrestore(&s->lock, flags);
	}
	return done;
}

/*
 * DVM_MSG_IO on node 0: an access of a vCPU the sender runs, for node 0's
 * in-kernel devices, or else the proxy of that vCPU. Refused (-EINVAL)
 * when malformed or not from the vCPU's node, -EBUSY when the vCPU has an
 * access here already, -ENODEV when this node answers no access.
 */
int dvm_handle_io(struct dvm_cluster *c, struct dvm_conn *conn,
		  const struct dvm_wire_msg *msg, const void *payload,
		  struct dvm_reply *reply)
{
	const struct dvm_msg_io *m = payload;
	struct kvm_dvm *dvm = c->dvm;
	u32 id = le32_to_cpu(m->vcpu);
	struct dvm_io_slot *s;
	unsigned long flags;
	int r = DVM_REPLY_LATER;

	if (c->node_id || !READ_ONCE(dvm->forward_io))
		return dvm_io_reject(dvm, -ENODEV);
	/* Pairs with the release of RUNNING: the map is valid after it. */
	if (smp_load_acquire(&dvm->state) != KVM_DVM_STATE_RUNNING ||
	    id >= dvm->nr_vcpus || dvm->vcpu_node[id] != conn->node ||
	    !dvm_io_msg_ok(m, msg->len))
		return dvm_io_reject(dvm, -EINVAL);
	s = dvm_io_slot(dvm, id);
	if (!s)
		return dvm_io_reject(dvm, -ENODEV);
	spin_lock_irqsave(&s->lock, flags);
	if (s->state != DVM_IO_IDLE)
		r = -EBUSY;
	else
		s->state = DVM_IO_KERNEL;
	spin_unlock_irqrestore(&s->lock, flags);
	if (r != DVM_REPLY_LATER)
		return dvm_io_reject(dvm, r);
	dvm_stat_add(&dvm_io_stats(dvm->kvm)->io_proxied[m->kind], 1);
	if (dvm_io_answer_in_kernel(c, conn->node, m, s, reply))
		return 0;

	spin_lock_irqsave(&s->lock, flags);
	memcpy(s->req, m, msg->len);
	s->from = conn->node;
	s->req_id = msg->req_id;
	s->cluster = c;
	/* The proxy looks at @state unlocked: @req before it. */
	smp_store_release(&s->state, DVM_IO_QUEUED);
	spin_unlock_irqrestore(&s->lock, flags);
	wake_up(&s->wq);
	return r;
}

/* A reply to @node's request, if the cluster it came on is still live. */
static void dvm_io_reply(struct kvm_dvm *dvm, struct dvm_cluster *on,
			 u32 node, u16 type, u64 req_id, const void *buf,
			 u32 len)
{
	struct dvm_cluster *c = dvm_live_get(dvm);

	if (!c)
		return;
	if (c == on)
		dvm_reply(c, node, type, req_id, 0, buf, len);
	dvm_live_put(dvm);
}

/*
 * The answer to the slot's access. The slot is free before the answer
 * leaves: the vCPU's next access may follow it at once. @buf is not the
 * slot's @req, which that access overwrites.
 */
static void dvm_io_answer(struct kvm_dvm *dvm, struct dvm_io_slot *s,
			  const void *buf, u32 len)
{
	struct dvm_cluster *on;
	unsigned long flags;
	u64 req_id;
	u32 from;

	spin_lock_irqsave(&s->lock, flags);
	on = s->cluster;
	from = s->from;
	req_id = s->req_id;
	s->cluster = NULL;
	s->state = DVM_IO_IDLE;
	spin_unlock_irqrestore(&s->lock, flags);
	dvm_io_reply(dvm, on, from, DVM_MSG_IO, req_id, buf, len);
}

/* The VMM completed the access the last KVM_RUN returned: answer it. */
static void dvm_io_answer_user(struct kvm_dvm *dvm, struct kvm_vcpu *vcpu,
			       struct dvm_io_slot *s)
{
	const struct dvm_msg_io *m = (const struct dvm_msg_io *)s->req;
	u32 bytes = m->size * le16_to_cpu(m->count);

	dvm_io_trace(dvm, s, s->from, 2, 0);
	switch (m->kind) {
	case DVM_IO_PIO_IN:
		dvm_io_answer(dvm, s, vcpu->arch.pio_data, bytes);
		break;
	case DVM_IO_MMIO_READ:
		dvm_io_answer(dvm, s, vcpu->run->mmio.data, bytes);
		break;
	default:
		dvm_io_answer(dvm, s, NULL, 0);
	}
}

/* The access as the copy's own exit, for node 0's VMM. */
static void dvm_io_exit(struct kvm_vcpu *vcpu, struct dvm_io_slot *s)
{
	const struct dvm_msg_io *m = (const struct dvm_msg_io *)s->req;
	u32 count = le16_to_cpu(m->count), bytes = m->size * count;
	bool write = dvm_io_is_write(m->kind);
	struct kvm_run *run = vcpu->run;

	if (m->kind == DVM_IO_SHUTDOWN) {
		run->exit_reason = KVM_EXIT_SHUTDOWN;
	} else if (m->kind == DVM_IO_SYSTEM_EVENT) {
		run->exit_reason = KVM_EXIT_SYSTEM_EVENT;
		run->system_event.type = le64_to_cpu(m->addr);
		run->system_event.ndata = count;
		memset(run->system_event.data, 0,
		       sizeof(run->system_event.data));
		memcpy(run->system_event.data, m->data, bytes);
	} else if (dvm_io_is_pio(m->kind)) {
		run->exit_reason = KVM_EXIT_IO;
		run->io.direction = write ? KVM_EXIT_IO_OUT : KVM_EXIT_IO_IN;
		run->io.size = m->size;
		run->io.port = le64_to_cpu(m->addr);
		run->io.count = count;
		run->io.data_offset = KVM_PIO_PAGE_OFFSET * PAGE_SIZE;
		if (write)
			memcpy(vcpu->arch.pio_data, m->data, bytes);
		else
			memset(vcpu->arch.pio_data, 0, bytes);
	} else {
		run->exit_reason = KVM_EXIT_MMIO;
		run->mmio.phys_addr = le64_to_cpu(m->addr);
		run->mmio.len = m->size;
		run->mmio.is_write = write;
		memset(run->mmio.data, 0, sizeof(run->mmio.data));
		if (write)
			memcpy(run->mmio.data, m->data, m->size);
	}
}

/* An access received and not answered yet: for the proxy, or its VMM. */
static bool dvm_io_waits(struct dvm_io_slot *s)
{
	int state = READ_ONCE(s->state);

	return state == DVM_IO_QUEUED || state == DVM_IO_USER;
}

/**
 * dvm_io_proxy_cancel_all - node 0 answers every access that waits for it
 * @dvm: the VM's DVM state; the VM is paused or off
 *
 * Each gets an answer of zeros, as long as it reads, and goes no further:
 * its vCPU is reset or the VM is off. The proxies wake up.
 */
void dvm_io_proxy_cancel_all(struct kvm_dvm *dvm)
{
	const void *zeros = page_address(ZERO_PAGE(0));
	const struct dvm_msg_io *m;
	struct dvm_io_slot *s;
	unsigned long flags;
	u32 id, len;

	BUILD_BUG_ON(DVM_IO_DATA_MAX > PAGE_SIZE);
	for (id = 0; id < KVM_DVM_MAX_VCPUS; id++) {
		s = dvm_io_slot(dvm, id);
		if (!s)
			continue;
		spin_lock_irqsave(&s->lock, flags);
		m = (const struct dvm_msg_io *)s->req;
		len = 0;
		if (dvm_io_waits(s) && !dvm_io_is_write(m->kind) &&
		    (dvm_io_is_pio(m->kind) || m->kind == DVM_IO_MMIO_READ))
			len = m->size * le16_to_cpu(m->count);
		spin_unlock_irqrestore(&s->lock, flags);
		/* Answered by the proxy meanwhile: dvm_io_answer() sees it. */
		if (dvm_io_waits(s))
			dvm_io_answer(dvm, s, zeros, len);
		wake_up(&s->wq);
	}
}

static bool dvm_io_proxy_woken(struct kvm_dvm *dvm, struct dvm_io_slot *s)
{
	if (READ_ONCE(s->state) == DVM_IO_QUEUED ||
	    READ_ONCE(s->mirror_pending) ||
	    READ_ONCE(dvm->ctl.state) == DVM_VM_OFF)
		return true;
	/* Pairs with the release of BROKEN/LEFT, as any DVM state. */
	return smp_load_acquire(&dvm->state) != KVM_DVM_STATE_RUNNING;
}

/**
 * dvm_io_proxy_mirror - hand the owner's APIC registers for a copy to
 *	the copy's proxy, if one holds the copy's mutex
 * @c: the cluster the APIC_STATE request came on
 * @vcpu: node 0's copy of the vCPU
 * @r: the registers
 * @from: the owner
 * @req_id: its request, which the proxy answers
 *
 * Return: true when the proxy applies them and answers; false when the
 * caller takes the copy's mutex itself, and then calls
 * dvm_io_proxy_mirror_done(): no proxy starts meanwhile.
 */
bool dvm_io_proxy_mirror(struct dvm_cluster *c, struct kvm_vcpu *vcpu,
			 const struct dvm_apic_regs *r, u32 from, u64 req_id)
{
	struct dvm_io_slot *s = dvm_io_slot(c->dvm, vcpu->vcpu_id);
	unsigned long flags;
	bool proxy;

	if (!s)
		return false;
	spin_lock_irqsave(&s->lock, flags);
	proxy = s->in_proxy;
	if (proxy) {
		/* A newer state replaces one the owner gave up waiting for. */
		s->mirror = *r;
		s->mirror_from = from;
		s->mirror_req_id = req_id;
		s->mirror_cluster = c;
		s->mirror_pending = true;
	} else {
		s->mirror_direct++;
	}
	spin_unlock_irqrestore(&s->lock, flags);
	if (proxy)
		wake_up(&s->wq);
	return proxy;
}

void dvm_io_proxy_mirror_done(struct kvm_dvm *dvm, struct kvm_vcpu *vcpu)
{
	struct dvm_io_slot *s = dvm_io_slot(dvm, vcpu->vcpu_id);
	unsigned long flags;

	if (!s)
		return;
	spin_lock_irqsave(&s->lock, flags);
	WARN_ON_ONCE(--s->mirror_direct < 0);
	spin_unlock_irqrestore(&s->lock, flags);
}

/* The proxy applies the owner's registers it was handed, and answers. */
static void dvm_io_proxy_apply_mirror(struct kvm_dvm *dvm,
				      struct kvm_vcpu *vcpu,
				      struct dvm_io_slot *s)
{
	struct dvm_apic_regs r;
	struct dvm_cluster *on;
	unsigned long flags;
	bool pending;
	u64 req_id;
	u32 from;

	spin_lock_irqsave(&s->lock, flags);
	pending = s->mirror_pending;
	r = s->mirror;
	from = s->mirror_from;
	req_id = s->mirror_req_id;
	on = s->mirror_cluster;
	s->mirror_pending = false;
	spin_unlock_irqrestore(&s->lock, flags);
	if (!pending)
		return;
	vcpu_load(vcpu);
	dvm_apic_mirror_write(vcpu, &r);
	vcpu_put(vcpu);
	dvm_io_reply(dvm, on, from, DVM_MSG_APIC_STATE, req_id, NULL, 0);
}

/*
 * From here on APIC states for the copy come to this proxy. False while
 * a handler waits for the copy's mutex, which this KVM_RUN holds: it
 * returns to let it through.
 */
static bool dvm_io_proxy_enter(struct dvm_io_slot *s)
{
	unsigned long flags;
	bool busy;

	spin_lock_irqsave(&s->lock, flags);
	busy = s->mirror_direct;
	if (!busy)
		s->in_proxy = true;
	spin_unlock_irqrestore(&s->lock, flags);
	return !busy;
}

/* No APIC state is left behind for a proxy that is gone. */
static void dvm_io_proxy_leave(struct kvm_dvm *dvm, struct kvm_vcpu *vcpu,
			       struct dvm_io_slot *s)
{
	unsigned long flags;

	for (;;) {
		spin_lock_irqsave(&s->lock, flags);
		if (!s->mirror_pending) {
			s->in_proxy = false;
			spin_unlock_irqrestore(&s->lock, flags);
			return;
		}
		spin_unlock_irqrestore(&s->lock, flags);
		dvm_io_proxy_apply_mirror(dvm, vcpu, s);
	}
}

static int dvm_io_proxy_intr(struct kvm_vcpu *vcpu)
{
	vcpu->run->exit_reason = KVM_EXIT_INTR;
	return -EINTR;
}

static int dvm_io_proxy_wait(struct kvm_dvm *dvm, struct kvm_vcpu *vcpu,
			     struct dvm_io_slot *s)
{
	long r;

	if (READ_ONCE(s->state) == DVM_IO_USER)
		dvm_io_answer_user(dvm, vcpu, s);
	for (;;) {
		if (!vcpu->wants_to_run)
			return dvm_io_proxy_intr(vcpu);
		r = wait_event_interruptible_timeout(s->wq,
						     dvm_io_proxy_woken(dvm, s),
						     DVM_IO_PROXY_POLL);
		if (r < 0) {
			++vcpu->stat.signal_exits;
			return dvm_io_proxy_intr(vcpu);
		}
		dvm_io_proxy_apply_mirror(dvm, vcpu, s);
		if (dvm_vm_off_exit(dvm, vcpu))
			return 0;
		/* Pairs with the release of BROKEN/LEFT. */
		if (smp_load_acquire(&dvm->state) != KVM_DVM_STATE_RUNNING)
			return -ENOLINK;
		/* Pairs with the handler's release: @req is complete. */
		if (smp_load_acquire(&s->state) != DVM_IO_QUEUED)
			continue;
		/* Node 0's devices did not take it (dvm_handle_io()). */
		dvm_io_exit(vcpu, s);
		WRITE_ONCE(s->state, DVM_IO_USER);
		return 0;
	}
}

/**
 * dvm_io_proxy_run - KVM_RUN of node 0's copy of another node's vCPU
 * @dvm: the VM's DVM state, RUNNING when KVM_RUN was allowed
 * @vcpu: the copy, its mutex held
 *
 * Answers the access the previous KVM_RUN returned, then waits for the
 * vCPU's next one: node 0's in-kernel devices answer what they can, the
 * first other access is returned as this KVM_RUN's exit. Meanwhile it
 * applies the owner's APIC registers to the copy.
 *
 * Return: 0 with the exit in kvm_run; -EINTR on a signal or
 * immediate_exit, or to let a waiting APIC update take the copy's mutex;
 * -ENOLINK once the cluster broke or was left; -EREMOTE for a vCPU
 * created after the placement.
 */
int dvm_io_proxy_run(struct kvm_dvm *dvm, struct kvm_vcpu *vcpu)
{
	struct dvm_io_slot *s = dvm_io_slot(dvm, vcpu->vcpu_id);
	int r;

	if (!s)
		return -EREMOTE;
	if (!dvm_io_proxy_enter(s))
		return dvm_io_proxy_intr(vcpu);
	r = dvm_io_proxy_wait(dvm, vcpu, s);
	dvm_io_proxy_leave(dvm, vcpu, s);
	return r;
}
