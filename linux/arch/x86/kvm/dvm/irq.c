// SPDX-License-Identifier: GPL-2.0
/*
 * DVM on x86: the distributed in-kernel irqchip (LAPIC part). See
 * Documentation/virt/kvm/dvm.rst, "Interrupts".
 *
 * Every node has a copy of every vCPU; only the owner runs it. Every
 * delivery to a vCPU ends in kvm_apic_set_irq(): for a copy another node
 * runs, the event goes to the owner (txq.c), which accepts it on the real
 * LAPIC. Destinations are resolved where the interrupt starts, from the
 * APIC map, which covers the copies: each owner keeps the registers that
 * decide delivery (base, ID, LDR, DFR, SPIV) the same in every copy, and
 * its vCPU enters the guest only once every node applied a change.
 *
 * Node 0 (the master) has the IOAPIC and PIC that count: the others
 * mirror its redirection table, so that their vCPUs' EOIs of its vectors
 * are sent to it, and drop what is injected into their own chips.
 */
#include <linux/delay.h>
#include <linux/kvm_host.h>
#include <linux/slab.h>

#include "../cpuid.h"
#include "../ioapic.h"
#include "../lapic.h"
#include "../x86.h"
#include "irq.h"
#include "../../../../virt/kvm/dvm/dvm.h"
#include "../../../../virt/kvm/dvm/trace.h"

/* A node still placing its vCPUs is asked again this often. */
#define DVM_APIC_RETRY_MS	1

static struct kvm_dvm_vm_stat *dvm_vm_stats(struct kvm *kvm)
{
	return &kvm->stat.generic.dvm;
}

/**
 * dvm_arch_vm_init - what a VM needs before it joins a cluster
 * @kvm: the VM
 *
 * Return: 0, or -EOPNOTSUPP when lowest-priority interrupts would not go
 * to the same vCPU whichever node sends them.
 */
int dvm_arch_vm_init(struct kvm *kvm)
{
	/*
	 * With vector hashing, the vCPU picked for a lowest-priority
	 * interrupt depends only on the vector and the APIC map, which
	 * every node has. Without it KVM compares arbitration priorities,
	 * which only each vCPU's owner knows.
	 */
	if (!kvm_vector_hashing_enabled())
		return -EOPNOTSUPP;
	/*
	 * Posted interrupts and AVIC would write a copy's IRR in hardware,
	 * behind the forwarding: off for good in a DVM VM.
	 */
	kvm_set_apicv_inhibit(kvm, APICV_INHIBIT_REASON_DISABLE);
	return 0;
}

/* Modes a peer may forward; ExtINT comes from node 0's PIC only. */
static bool dvm_irq_mode_ok(u8 mode)
{
	return mode < DVM_IRQ_NR_MODES && mode != (APIC_DM_EXTINT >> 8);
}

/* What the owner's LAPIC would ignore anyway is not sent. */
static bool dvm_irq_is_noop(const struct kvm_lapic_irq *irq)
{
	switch (irq->delivery_mode) {
	case APIC_DM_FIXED:
	case APIC_DM_LOWEST:
	case APIC_DM_INIT:
		return irq->trig_mode && !irq->level;	/* de-assert */
	}
	return false;
}

/* Post @e to @node, from any context. */
static int dvm_irq_post_live(struct kvm_dvm *dvm, u32 node,
			     const struct dvm_wire_irq *e)
{
	struct dvm_cluster *c;
	int r;

	rcu_read_lock();
	c = rcu_dereference(dvm->live);
	r = c ? dvm_irq_post(c, node, e) : -ENOLINK;
	rcu_read_unlock();
	return r;
}

static int dvm_irq_send(struct kvm_vcpu *vcpu, const struct kvm_lapic_irq *irq)
{
	struct kvm_dvm *dvm = vcpu->kvm->dvm;
	u32 mode = irq->delivery_mode >> 8;
	u32 node = dvm->vcpu_node[vcpu->vcpu_id];
	struct dvm_wire_irq e = {
		.vcpu = cpu_to_le32(vcpu->vcpu_id),
		.kind = DVM_IRQ_DELIVER,
		.mode = mode,
		.vector = irq->vector,
		.flags = (irq->level ? DVM_IRQ_F_LEVEL : 0) |
			 (irq->trig_mode ? DVM_IRQ_F_TRIG_LEVEL : 0),
	};
	struct dvm_cluster *c;
	int r;

	if (!dvm_irq_mode_ok(mode))
		return -EINVAL;
	rcu_read_lock();
	c = rcu_dereference(dvm->live);
	r = c ? dvm_irq_post(c, node, &e) : -ENOLINK;
	if (c)
		trace_dvm_irq(c->node_id, node, vcpu->vcpu_id, mode,
			      irq->vector, false, r);
	rcu_read_unlock();
	if (!r)
		dvm_stat_add(&dvm_vm_stats(vcpu->kvm)->irq_sent[mode], 1);
	return r;
}

/**
 * kvm_dvm_apic_forward - kvm_apic_set_irq() for a vCPU another node runs
 * @vcpu: this node's copy of the destination
 * @irq: the interrupt, its destination resolved
 * @dest_map: where the IOAPIC tracks RTC interrupts, or NULL
 *
 * Callable from any context: the event is queued, never sent here.
 * Return: what kvm_apic_set_irq() returns, 1 if the interrupt is taken,
 * as far as this node's mirror of the destination's APIC tells.
 */
int kvm_dvm_apic_forward(struct kvm_vcpu *vcpu, struct kvm_lapic_irq *irq,
			 struct dest_map *dest_map)
{
	bool fixed = irq->delivery_mode == APIC_DM_FIXED ||
		     irq->delivery_mode == APIC_DM_LOWEST;

	if (dvm_irq_is_noop(irq))
		return 0;
	if (dvm_irq_send(vcpu, irq))
		return 0;
	if (!fixed)
		return 1;
	if (!kvm_lapic_enabled(vcpu))
		return 0;
	if (dest_map) {
		__set_bit(vcpu->vcpu_id, dest_map->map);
		dest_map->vectors[vcpu->vcpu_id] = irq->vector;
	}
	return 1;
}

/*
 * KVM_NMI and KVM_SMI on a copy: the owner injects it, as for an NMI or
 * SMI IPI.
 */
int kvm_dvm_inject_remote(struct kvm_vcpu *vcpu, u32 delivery_mode)
{
	struct kvm_lapic_irq irq = { .delivery_mode = delivery_mode };

	return dvm_irq_send(vcpu, &irq);
}

/*
 * Userspace's KVM_SET_LAPIC and APIC base writes on a copy: the owner's
 * registers stay (QEMU resets every vCPU it knows).
 */
bool kvm_dvm_apic_write_ignored(struct kvm_vcpu *vcpu)
{
	if (!kvm_dvm_vcpu_remote(vcpu))
		return false;
	dvm_stat_add(&dvm_vm_stats(vcpu->kvm)->apic_writes_ignored, 1);
	return true;
}

/* The master's IOAPIC */

/* A node other than 0 of a RUNNING cluster: its IOAPIC and PIC are dummies. */
bool kvm_dvm_irqchip_dummy(struct kvm *kvm)
{
	struct kvm_dvm *dvm = READ_ONCE(kvm->dvm);

	/* Pairs with the release of RUNNING: @node_id is valid after it. */
	if (!dvm || smp_load_acquire(&dvm->state) != KVM_DVM_STATE_RUNNING ||
	    !dvm->node_id)
		return false;
	dvm_stat_add(&dvm_vm_stats(kvm)->irqchip_dropped, 1);
	return true;
}

/* KVM_SET_IRQCHIP on a dummy: node 0's state stays mirrored. */
bool kvm_dvm_irqchip_write_ignored(struct kvm *kvm)
{
	struct kvm_dvm *dvm = READ_ONCE(kvm->dvm);

	/* Pairs with the release of RUNNING: @node_id is valid after it. */
	if (!dvm || smp_load_acquire(&dvm->state) != KVM_DVM_STATE_RUNNING ||
	    !dvm->node_id)
		return false;
	dvm_stat_add(&dvm_vm_stats(kvm)->apic_writes_ignored, 1);
	return true;
}

static void dvm_ioapic_post_rte(struct kvm_dvm *dvm, struct dvm_cluster *c,
				struct kvm_ioapic *ioapic, u32 pin)
{
	struct dvm_wire_irq e = {
		.vcpu = cpu_to_le32(pin),
		.kind = DVM_IRQ_RTE,
		.data = cpu_to_le64(ioapic->redirtbl[pin].bits),
	};
	u32 node;

	if (kvm_irq_has_notifier(dvm->kvm, KVM_IRQCHIP_IOAPIC, pin))
		e.flags = DVM_IRQ_F_NOTIFY;
	for (node = 1; node < c->nr_nodes; node++)
		if (!dvm_irq_post(c, node, &e))
			dvm_stat_add(&dvm_vm_stats(dvm->kvm)->ioapic_rte_sent, 1);
}

/**
 * kvm_dvm_ioapic_changed - node 0's IOAPIC redirection table changed
 * @ioapic: the IOAPIC, its lock held
 * @pin: the entry that changed, or -1 for all of them
 *
 * Every other node gets the entries, in order with the interrupts that
 * follow. Callable from any context.
 */
void kvm_dvm_ioapic_changed(struct kvm_ioapic *ioapic, int pin)
{
	struct kvm_dvm *dvm = READ_ONCE(ioapic->kvm->dvm);
	struct dvm_cluster *c;
	u32 i;

	lockdep_assert_held(&ioapic->lock);
	/* Pairs with the release of RUNNING: @node_id is valid after it. */
	if (!dvm || smp_load_acquire(&dvm->state) != KVM_DVM_STATE_RUNNING ||
	    dvm->node_id)
		return;
	rcu_read_lock();
	c = rcu_dereference(dvm->live);
	if (c) {
		for (i = 0; i < IOAPIC_NUM_PINS; i++)
			if (pin < 0 || i == pin)
				dvm_ioapic_post_rte(dvm, c, ioapic, i);
	}
	rcu_read_unlock();
}

/**
 * kvm_dvm_ioapic_eoi - an EOI for the IOAPIC on a node other than 0
 * @vcpu: the local vCPU that ended the interrupt
 * @vector: its vector
 * @trigger_mode: IOAPIC_LEVEL_TRIG or IOAPIC_EDGE_TRIG
 *
 * Return: true when the EOI went to node 0, whose IOAPIC is the one that
 * delivered the interrupt; false on node 0 and outside a cluster.
 */
bool kvm_dvm_ioapic_eoi(struct kvm_vcpu *vcpu, int vector, int trigger_mode)
{
	struct kvm_dvm *dvm = READ_ONCE(vcpu->kvm->dvm);
	struct dvm_wire_irq e = {
		.vcpu = cpu_to_le32(vcpu->vcpu_id),
		.kind = DVM_IRQ_EOI,
		.vector = vector,
		.flags = trigger_mode == IOAPIC_LEVEL_TRIG ?
			 DVM_IRQ_F_TRIG_LEVEL : 0,
	};

	/* Pairs with the release of RUNNING: @node_id is valid after it. */
	if (!dvm || smp_load_acquire(&dvm->state) != KVM_DVM_STATE_RUNNING ||
	    !dvm->node_id)
		return false;
	if (!dvm_irq_post_live(dvm, 0, &e))
		dvm_stat_add(&dvm_vm_stats(vcpu->kvm)->eoi_sent, 1);
	return true;
}

/* Receiving */

/* The destination of a peer's event: a vCPU this node runs. */
static struct kvm_vcpu *dvm_irq_dest(struct kvm_dvm *dvm, u32 id)
{
	struct kvm_vcpu *vcpu;

	if (!dvm_vcpu_runs_here(dvm, id))
		return NULL;
	vcpu = kvm_get_vcpu_by_id(dvm->kvm, id);
	return vcpu && lapic_in_kernel(vcpu) ? vcpu : NULL;
}

static bool dvm_irq_event_ok(const struct dvm_wire_irq *e)
{
	return dvm_irq_mode_ok(e->mode) && !(e->flags & ~DVM_IRQ_F_ALL) &&
	       !e->data;
}

static void dvm_irq_deliver(struct dvm_cluster *c, u32 from,
			    const struct dvm_wire_irq *e)
{
	struct kvm_dvm *dvm = c->dvm;
	u32 id = le32_to_cpu(e->vcpu);
	struct kvm_lapic_irq irq = {
		.vector = e->vector,
		.delivery_mode = e->mode << 8,
		.level = e->flags & DVM_IRQ_F_LEVEL,
		.trig_mode = !!(e->flags & DVM_IRQ_F_TRIG_LEVEL),
	};
	struct kvm_vcpu *vcpu = NULL;

	if (dvm_irq_event_ok(e))
		vcpu = dvm_irq_dest(dvm, id);
	trace_dvm_irq(c->node_id, from, id, e->mode, e->vector, true,
		      vcpu ? 0 : -EINVAL);
	if (!vcpu) {
		dvm_stat_add(&dvm_vm_stats(dvm->kvm)->irq_rejected, 1);
		return;
	}
	kvm_apic_set_irq(vcpu, &irq, NULL);
	dvm_stat_add(&dvm_vm_stats(dvm->kvm)->irq_received[e->mode], 1);
}

static bool dvm_irq_reject(struct kvm_dvm *dvm)
{
	dvm_stat_add(&dvm_vm_stats(dvm->kvm)->irq_rejected, 1);
	return false;
}

/* Node 0: another node's vCPU ended an IOAPIC vector. */
static bool dvm_irq_eoi(struct dvm_cluster *c, u32 from,
			const struct dvm_wire_irq *e)
{
	struct kvm_dvm *dvm = c->dvm;
	u32 id = le32_to_cpu(e->vcpu);
	struct kvm_vcpu *vcpu;

	if (c->node_id || e->mode || e->vector < 16 || e->data ||
	    (e->flags & ~DVM_IRQ_F_TRIG_LEVEL) || !ioapic_in_kernel(dvm->kvm))
		return dvm_irq_reject(dvm);
	/* Pairs with the release of RUNNING: the map is valid after it. */
	if (smp_load_acquire(&dvm->state) != KVM_DVM_STATE_RUNNING ||
	    id >= dvm->nr_vcpus || dvm->vcpu_node[id] != from)
		return dvm_irq_reject(dvm);
	vcpu = kvm_get_vcpu_by_id(dvm->kvm, id);
	if (!vcpu || !lapic_in_kernel(vcpu))
		return dvm_irq_reject(dvm);
	kvm_ioapic_update_eoi(vcpu, e->vector,
			      e->flags & DVM_IRQ_F_TRIG_LEVEL ?
			      IOAPIC_LEVEL_TRIG : IOAPIC_EDGE_TRIG);
	dvm_stat_add(&dvm_vm_stats(dvm->kvm)->eoi_received, 1);
	return true;
}

/*
 * Another node: node 0 changed a redirection entry. A pin whose EOIs
 * node 0 wants (an ack notifier: PIT reinjection, irqfd resampling) is
 * mirrored level-triggered, so that this node's vCPUs report them.
 */
static bool dvm_irq_rte(struct dvm_cluster *c, u32 from,
			const struct dvm_wire_irq *e)
{
	struct kvm_ioapic *ioapic = c->dvm->kvm->arch.vioapic;
	u32 pin = le32_to_cpu(e->vcpu);
	union kvm_ioapic_redirect_entry rte = {
		.bits = le64_to_cpu(e->data),
	};

	if (from || pin >= IOAPIC_NUM_PINS || e->mode || e->vector ||
	    (e->flags & ~DVM_IRQ_F_NOTIFY) || !ioapic_in_kernel(c->dvm->kvm))
		return dvm_irq_reject(c->dvm);
	if (e->flags & DVM_IRQ_F_NOTIFY)
		rte.fields.trig_mode = IOAPIC_LEVEL_TRIG;
	spin_lock(&ioapic->lock);
	ioapic->redirtbl[pin] = rte;
	spin_unlock(&ioapic->lock);
	kvm_make_scan_ioapic_request(c->dvm->kvm);
	dvm_stat_add(&dvm_vm_stats(c->dvm->kvm)->ioapic_rte_applied, 1);
	return true;
}

static void dvm_irq_accept(struct dvm_cluster *c, u32 from,
			   const struct dvm_wire_irq *e)
{
	switch (e->kind) {
	case DVM_IRQ_DELIVER:
		dvm_irq_deliver(c, from, e);
		break;
	case DVM_IRQ_EOI:
		dvm_irq_eoi(c, from, e);
		break;
	case DVM_IRQ_RTE:
		dvm_irq_rte(c, from, e);
		break;
	default:
		dvm_irq_reject(c->dvm);
	}
}

/*
 * DVM_MSG_IRQ: events in the order the peer posted them. A bad event is
 * refused and counted; the link stays up.
 */
int dvm_handle_irq(struct dvm_cluster *c, struct dvm_conn *conn,
		   const struct dvm_wire_msg *msg, const void *payload,
		   struct dvm_reply *reply)
{
	const struct dvm_wire_irq *e = payload;
	u32 i;

	if (msg->len % sizeof(*e)) {
		dvm_stat_add(&dvm_vm_stats(c->dvm->kvm)->irq_rejected, 1);
		return 0;
	}
	for (i = 0; i < msg->len / sizeof(*e); i++)
		dvm_irq_accept(c, conn->node, &e[i]);
	return 0;
}

/* APIC mirrors: the owner's side */

static void dvm_apic_regs_read(struct kvm_vcpu *vcpu, struct dvm_apic_regs *r)
{
	struct kvm_lapic *apic = vcpu->arch.apic;

	r->base = vcpu->arch.apic_base;
	r->id = kvm_lapic_get_reg(apic, APIC_ID);
	r->ldr = kvm_lapic_get_reg(apic, APIC_LDR);
	r->dfr = kvm_lapic_get_reg(apic, APIC_DFR);
	r->spiv = kvm_lapic_get_reg(apic, APIC_SPIV);
}

/*
 * Send @m to @node and wait for its answer. A node that has not placed
 * its vCPUs yet (-EAGAIN) is asked again; a lost one ends the wait, and
 * the cluster breaks anyway.
 */
static int dvm_apic_publish_one(struct dvm_cluster *c, u32 node,
				const struct dvm_msg_apic_state *m)
{
	unsigned long end = jiffies + c->peer_timeout;
	struct dvm_call call;
	int r;

	do {
		r = dvm_call_start(c, &call, node, DVM_MSG_APIC_STATE, m,
				   sizeof(*m), NULL, 0);
		if (!r)
			r = dvm_call_wait(c, &call, c->peer_timeout);
		if (r != -EAGAIN)
			return r;
		msleep(DVM_APIC_RETRY_MS);
	} while (time_before(jiffies, end));
	return -ETIMEDOUT;
}

static void dvm_apic_publish(struct dvm_cluster *c, u32 id,
			     const struct dvm_apic_regs *r)
{
	struct dvm_msg_apic_state m = {
		.vcpu = cpu_to_le32(id),
		.base = cpu_to_le64(r->base),
		.id = cpu_to_le32(r->id),
		.ldr = cpu_to_le32(r->ldr),
		.dfr = cpu_to_le32(r->dfr),
		.spiv = cpu_to_le32(r->spiv),
	};
	u32 node;
	int err;

	for (node = 0; node < c->nr_nodes; node++) {
		if (node == c->node_id)
			continue;
		trace_dvm_apic_mirror(c->node_id, node, id, r->base, r->id,
				      r->ldr, false);
		err = dvm_apic_publish_one(c, node, &m);
		if (err && err != -ENOLINK)
			pr_debug("kvm-dvm: node %u: APIC of vCPU %u to node %u: %d\n",
				 c->node_id, id, node, err);
	}
	dvm_stat_add(&dvm_vm_stats(c->dvm->kvm)->apic_mirror_sent, 1);
}

/* From the vCPU run loop: never wait for the network holding SRCU. */
static void dvm_apic_publish_srcu(struct kvm_vcpu *vcpu, struct dvm_cluster *c,
				  const struct dvm_apic_regs *r)
	__must_hold(&vcpu->kvm->srcu)
{
	kvm_vcpu_srcu_read_unlock(vcpu);
	dvm_apic_publish(c, vcpu->vcpu_id, r);
	kvm_vcpu_srcu_read_lock(vcpu);
}

/**
 * dvm_arch_vcpu_sync - make every node's copy of a local vCPU's APIC
 *	registers that decide delivery the same as the vCPU's own
 * @dvm: the VM's DVM state
 * @vcpu: a vCPU this node runs, in KVM_RUN
 * @srcu_held: the caller holds kvm->srcu, let go while waiting
 *
 * Called before the vCPU enters the guest: what it changed is on every
 * node before it can send an interrupt that depends on it. Waits for each
 * peer at most the peer timeout; ends when the cluster breaks.
 */
void dvm_arch_vcpu_sync(struct kvm_dvm *dvm, struct kvm_vcpu *vcpu,
			bool srcu_held)
{
	struct dvm_apic_regs *sent = &dvm->apic_sent[vcpu->vcpu_id];
	struct dvm_apic_regs now;
	struct dvm_cluster *c;

	if (!lapic_in_kernel(vcpu))
		return;
	dvm_apic_regs_read(vcpu, &now);
	if (!memcmp(&now, sent, sizeof(now)))
		return;
	c = dvm_live_get(dvm);
	if (!c)
		return;
	if (srcu_held)
		dvm_apic_publish_srcu(vcpu, c, &now);
	else
		dvm_apic_publish(c, vcpu->vcpu_id, &now);
	dvm_live_put(dvm);
	*sent = now;
}

/* The registers each local vCPU's owner sent last, one entry per vCPU id. */
static int dvm_apic_sent_alloc(struct kvm_dvm *dvm)
{
	dvm->apic_sent = kvmalloc_array(KVM_DVM_MAX_VCPUS,
					sizeof(*dvm->apic_sent),
					GFP_KERNEL_ACCOUNT);
	return dvm->apic_sent ? 0 : -ENOMEM;
}

static void dvm_apic_sent_free(struct kvm_dvm *dvm)
{
	kvfree(dvm->apic_sent);
	dvm->apic_sent = NULL;
}

/* A new placement: nothing sent yet, every owner publishes its vCPUs. */
static int dvm_apic_sent_reset(struct kvm_dvm *dvm)
{
	memset(dvm->apic_sent, 0xff,
	       KVM_DVM_MAX_VCPUS * sizeof(*dvm->apic_sent));
	return 0;
}

const struct dvm_subsys dvm_apic_subsys = {
	.name = "apic",
	.vm_init = dvm_apic_sent_alloc,
	.vm_free = dvm_apic_sent_free,
	.commit = dvm_apic_sent_reset,
};

/* APIC mirrors: the other nodes' side */

static bool dvm_apic_base_ok(struct kvm_vcpu *vcpu, u64 base)
{
	u64 reserved = kvm_vcpu_reserved_gpa_bits_raw(vcpu) | 0x2ff |
		(guest_cpuid_has(vcpu, X86_FEATURE_X2APIC) ? 0 : X2APIC_ENABLE);

	return !(base & reserved) && kvm_apic_mode(base) != LAPIC_MODE_INVALID;
}

/* A register written as the guest would, with the same side effects. */
static void dvm_apic_mirror_reg(struct kvm_vcpu *vcpu, u32 reg, u32 val)
{
	struct kvm_lapic *apic = vcpu->arch.apic;

	if (kvm_lapic_get_reg(apic, reg) == val)
		return;
	*(u32 *)(apic->regs + reg) = val;
	kvm_apic_write_nodecode(vcpu, reg);
}

/**
 * dvm_apic_mirror_write - the owner's registers into a copy
 * @vcpu: the copy, its mutex held and loaded, as in an ioctl
 * @r: the registers
 */
void dvm_apic_mirror_write(struct kvm_vcpu *vcpu,
			   const struct dvm_apic_regs *r)
{
	lockdep_assert_held(&vcpu->mutex);
	if (vcpu->arch.apic_base != r->base) {
		kvm_lapic_set_base(vcpu, r->base);
		kvm_recalculate_apic_map(vcpu->kvm);
	}
	/* In x2APIC mode the ID and LDR follow from the vCPU id. */
	if (!apic_x2apic_mode(vcpu->arch.apic)) {
		dvm_apic_mirror_reg(vcpu, APIC_ID, r->id);
		dvm_apic_mirror_reg(vcpu, APIC_LDR, r->ldr);
		dvm_apic_mirror_reg(vcpu, APIC_DFR, r->dfr);
	}
	dvm_apic_mirror_reg(vcpu, APIC_SPIV, r->spiv);
}

/*
 * Under the copy's mutex, loaded as an ioctl would: a copy's mutex is
 * only held briefly, except by node 0's proxy (io.c), which then applies
 * the registers itself.
 */
static int dvm_apic_mirror_apply(struct dvm_cluster *c, struct kvm_vcpu *vcpu,
				 const struct dvm_apic_regs *r, u32 from,
				 u64 req_id)
{
	if (dvm_io_proxy_mirror(c, vcpu, r, from, req_id))
		return DVM_REPLY_LATER;
	mutex_lock(&vcpu->mutex);
	vcpu_load(vcpu);
	dvm_apic_mirror_write(vcpu, r);
	vcpu_put(vcpu);
	mutex_unlock(&vcpu->mutex);
	dvm_io_proxy_mirror_done(c->dvm, vcpu);
	return 0;
}

/*
 * DVM_MSG_APIC_STATE from the owner of a vCPU. -EAGAIN before this node
 * placed its vCPUs (the owner asks again); -EINVAL for a vCPU the sender
 * does not run or registers no APIC can have.
 */
int dvm_handle_apic_state(struct dvm_cluster *c, struct dvm_conn *conn,
			  const struct dvm_wire_msg *msg, const void *payload,
			  struct dvm_reply *reply)
{
	const struct dvm_msg_apic_state *m = payload;
	struct kvm_dvm *dvm = c->dvm;
	u32 id = le32_to_cpu(m->vcpu);
	struct dvm_apic_regs r = {
		.base = le64_to_cpu(m->base),
		.id = le32_to_cpu(m->id),
		.ldr = le32_to_cpu(m->ldr),
		.dfr = le32_to_cpu(m->dfr),
		.spiv = le32_to_cpu(m->spiv),
	};
	struct kvm_vcpu *vcpu;

	/* Pairs with the release of RUNNING: the map is valid after it. */
	if (smp_load_acquire(&dvm->state) != KVM_DVM_STATE_RUNNING)
		return READ_ONCE(dvm->state) == KVM_DVM_STATE_JOINED ?
		       -EAGAIN : -ENOLINK;
	if (m->pad || id >= dvm->nr_vcpus || dvm->vcpu_node[id] != conn->node)
		goto bad;
	vcpu = kvm_get_vcpu_by_id(dvm->kvm, id);
	/* Not created here: nothing to mirror, nothing to deliver to. */
	if (!vcpu || !lapic_in_kernel(vcpu))
		return 0;
	if (!dvm_apic_base_ok(vcpu, r.base))
		goto bad;
	trace_dvm_apic_mirror(c->node_id, conn->node, id, r.base, r.id, r.ldr,
			      true);
	dvm_stat_add(&dvm_vm_stats(dvm->kvm)->apic_mirror_applied, 1);
	return dvm_apic_mirror_apply(c, vcpu, &r, conn->node, msg->req_id);
bad:
	dvm_stat_add(&dvm_vm_stats(dvm->kvm)->irq_rejected, 1);
	return -EINVAL;
}
