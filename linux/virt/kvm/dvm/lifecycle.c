// SPDX-License-Identifier: GPL-2.0
/*
 * DVM: the whole VM's lifecycle, as node 0 drives it. See
 * Documentation/virt/kvm/dvm.rst, "VM lifecycle".
 *
 * Node 0's VMM pauses, resumes, resets and powers off the VM with
 * KVM_DVM_VM_CONTROL. Node 0 asks every other node (DVM_MSG_VM_CONTROL,
 * one request at a time, carried out by a work item there) and does the
 * same itself:
 *
 *  - PAUSE: no local vCPU enters the guest any more. Those in it are
 *    kicked out and wait ("park") in KVM_RUN, interruptibly, where they
 *    would enter it again. A node answers once none is left in the guest.
 *  - RESET: PAUSE, then every local vCPU is reset: by the node when the
 *    vCPU's mutex is free, else by its own parked thread. A node answers
 *    once all are. Node 0 first answers every forwarded access still
 *    waiting for it, with zeros: none survives the reset.
 *  - RESUME: nodes other than 0 align their clocks with node 0's again
 *    (its VMM stops its kvmclock while paused, a reset restarts its TSC),
 *    then the parked vCPUs go on.
 *  - POWEROFF: every KVM_RUN, on every node, ends with
 *    KVM_EXIT_SYSTEM_EVENT (KVM_SYSTEM_EVENT_SHUTDOWN), now and later.
 *
 * A vCPU counts itself in @in_guest before it looks at the state on its
 * way into the guest, and out when KVM_RUN of the architecture returns.
 * A pause sets the state and then waits for @in_guest to reach 0: with a
 * full barrier on each side, a vCPU it does not count sees the pause.
 */
#include <linux/kvm_host.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>

#include "dvm.h"
#include "trace.h"

/* An exit that only makes a vCPU park: never seen by userspace. */
#define DVM_EXIT_PARK		0x44564dfe

static struct kvm_dvm_vm_stat *dvm_vm_stats(struct kvm_dvm *dvm)
{
	return &dvm->kvm->stat.generic.dvm;
}

/* The cluster broke or was left: nothing is waited for any more. */
static bool dvm_vm_gone(struct kvm_dvm *dvm)
{
	/* Pairs with the release of BROKEN/LEFT. */
	int state = smp_load_acquire(&dvm->state);

	return state == KVM_DVM_STATE_BROKEN || state == KVM_DVM_STATE_LEFT;
}

static void dvm_vm_kick(struct kvm_dvm *dvm)
{
	/* Out of the guest, and out of HLT or the wait for INIT/SIPI. */
	kvm_make_all_cpus_request(dvm->kvm, KVM_REQ_UNBLOCK);
}

/* A vCPU on its way out of the guest; the last one wakes a pause. */
static void dvm_vm_out(struct dvm_vm_ctl *ctl)
{
	if (atomic_dec_and_test(&ctl->in_guest) &&
	    READ_ONCE(ctl->state) != DVM_VM_RUNNING)
		wake_up_all(&ctl->wq);
}

static void dvm_vm_exit_poweroff(struct kvm_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;

	run->exit_reason = KVM_EXIT_SYSTEM_EVENT;
	run->system_event.type = KVM_SYSTEM_EVENT_SHUTDOWN;
	run->system_event.ndata = 0;
}

/**
 * dvm_vm_off_exit - end KVM_RUN of a powered-off VM
 * @dvm: the VM's DVM state
 * @vcpu: any vCPU, or node 0's copy of one
 *
 * Return: true with KVM_EXIT_SYSTEM_EVENT in kvm_run once the VM is off.
 */
bool dvm_vm_off_exit(struct kvm_dvm *dvm, struct kvm_vcpu *vcpu)
{
	if (READ_ONCE(dvm->ctl.state) != DVM_VM_OFF)
		return false;
	dvm_vm_exit_poweroff(vcpu);
	return true;
}

/*
 * Under the vCPU's mutex: the reset node 0 asked for, if still to do.
 * The other nodes' mirrors of its APIC follow before it counts as done.
 */
static void dvm_vm_reset_vcpu(struct kvm_dvm *dvm, struct kvm_vcpu *vcpu)
{
	struct dvm_vm_ctl *ctl = &dvm->ctl;

	if (!test_bit(vcpu->vcpu_id, ctl->reset))
		return;
	dvm_arch_vcpu_reset(vcpu);
	dvm_arch_vcpu_sync(dvm, vcpu, false);
	dvm_stat_add(&dvm_vm_stats(dvm)->vm_vcpu_resets, 1);
	clear_bit(vcpu->vcpu_id, ctl->reset);
	wake_up_all(&ctl->wq);
}

/* A paused vCPU waits, in KVM_RUN, for what node 0 decides. */
static int dvm_vm_park(struct kvm_dvm *dvm, struct kvm_vcpu *vcpu)
{
	struct dvm_vm_ctl *ctl = &dvm->ctl;

	if (!vcpu->wants_to_run ||
	    wait_event_interruptible(ctl->wq,
				     READ_ONCE(ctl->state) != DVM_VM_PAUSED ||
				     test_bit(vcpu->vcpu_id, ctl->reset) ||
				     dvm_vm_gone(dvm))) {
		++vcpu->stat.signal_exits;
		vcpu->run->exit_reason = KVM_EXIT_INTR;
		return -EINTR;
	}
	return 0;
}

/**
 * dvm_vm_enter - may a local vCPU enter the guest?
 * @dvm: the VM's DVM state
 * @vcpu: a vCPU this node runs, in KVM_RUN, not loaded
 *
 * Waits while the VM is paused, and resets the vCPU when node 0 asked.
 *
 * Return: 0 when it may, counted in @in_guest until dvm_vm_left(); 1 when
 * KVM_RUN returns 0 with the exit in kvm_run (the VM is off); -EINTR on a
 * signal or immediate_exit while it waits.
 */
int dvm_vm_enter(struct kvm_dvm *dvm, struct kvm_vcpu *vcpu)
{
	struct dvm_vm_ctl *ctl = &dvm->ctl;
	bool parked = false;
	int state, r;

	for (;;) {
		atomic_inc(&ctl->in_guest);
		/* Pairs with the barrier of dvm_vm_pause(). */
		smp_mb__after_atomic();
		state = READ_ONCE(ctl->state);
		if ((state == DVM_VM_RUNNING &&
		     !test_bit(vcpu->vcpu_id, ctl->reset)) ||
		    dvm_vm_gone(dvm))
			return 0;
		dvm_vm_out(ctl);
		if (state == DVM_VM_OFF) {
			dvm_vm_exit_poweroff(vcpu);
			return 1;
		}
		if (test_bit(vcpu->vcpu_id, ctl->reset)) {
			dvm_vm_reset_vcpu(dvm, vcpu);
			continue;
		}
		if (!parked) {
			dvm_stat_add(&dvm_vm_stats(dvm)->vm_parked, 1);
			parked = true;
		}
		r = dvm_vm_park(dvm, vcpu);
		if (r)
			return r;
	}
}

/**
 * dvm_vm_left - a local vCPU is back from KVM_RUN of the architecture
 * @dvm: the VM's DVM state
 * @vcpu: the vCPU, which dvm_vm_enter() let in
 * @r: what KVM_RUN returned
 *
 * Return: true when it only came out to park (dvm_vm_park_request(), or
 * woken from the wait for INIT/SIPI): it goes round again, to
 * dvm_vm_enter().
 */
bool dvm_vm_left(struct kvm_dvm *dvm, struct kvm_vcpu *vcpu, int r)
{
	dvm_vm_out(&dvm->ctl);
	if (!r && vcpu->run->exit_reason == DVM_EXIT_PARK) {
		vcpu->run->exit_reason = KVM_EXIT_UNKNOWN;
		return true;
	}
	/*
	 * Woken from the wait for INIT/SIPI by a pause's kick: waits again
	 * (or parks), where KVM would return EAGAIN for the VMM to do so.
	 */
	return r == -EAGAIN;
}

/**
 * dvm_vm_park_request - in the run loop, before a local vCPU enters the
 *	guest again: leave the loop to park?
 * @dvm: the VM's DVM state
 * @vcpu: the vCPU
 */
bool dvm_vm_park_request(struct kvm_dvm *dvm, struct kvm_vcpu *vcpu)
{
	if (likely(READ_ONCE(dvm->ctl.state) == DVM_VM_RUNNING))
		return false;
	vcpu->run->exit_reason = DVM_EXIT_PARK;
	return true;
}

/* No local vCPU is in the guest, or will be, until RESUME. */
static int dvm_vm_pause(struct kvm_dvm *dvm, struct dvm_cluster *c)
{
	struct dvm_vm_ctl *ctl = &dvm->ctl;
	long left;

	switch (READ_ONCE(ctl->state)) {
	case DVM_VM_OFF:
		return -ESHUTDOWN;
	case DVM_VM_RUNNING:
		WRITE_ONCE(ctl->state, DVM_VM_PAUSED);
		dvm_stat_add(&dvm_vm_stats(dvm)->vm_pauses, 1);
		break;
	}
	/* Pairs with the barrier of dvm_vm_enter(). */
	smp_mb();
	dvm_vm_kick(dvm);
	/* A vCPU in the guest leaves it at once, one in a DSM fault soon. */
	left = wait_event_timeout(ctl->wq, !atomic_read(&ctl->in_guest) ||
				  dvm_vm_gone(dvm), 2 * c->peer_timeout);
	if (dvm_vm_gone(dvm))
		return -ENOLINK;
	return left ? 0 : -ETIMEDOUT;
}

static bool dvm_vm_resets_pending(struct kvm_dvm *dvm)
{
	return !bitmap_empty(dvm->ctl.reset, KVM_DVM_MAX_VCPUS);
}

/*
 * The VM is paused: reset every local vCPU, here when its mutex is free,
 * else by its thread, parked in KVM_RUN (or soon: a forwarded access it
 * waits for was answered).
 */
static int dvm_vm_reset_all(struct kvm_dvm *dvm, struct dvm_cluster *c)
{
	unsigned long deadline = jiffies + 2 * c->peer_timeout;
	struct dvm_vm_ctl *ctl = &dvm->ctl;
	struct kvm_vcpu *vcpu;
	unsigned long i;
	bool busy;

	kvm_for_each_vcpu(i, vcpu, dvm->kvm)
		if (dvm_vcpu_runs_here(dvm, vcpu->vcpu_id))
			set_bit(vcpu->vcpu_id, ctl->reset);
	wake_up_all(&ctl->wq);
	for (;;) {
		busy = false;
		kvm_for_each_vcpu(i, vcpu, dvm->kvm) {
			if (vcpu->vcpu_id >= KVM_DVM_MAX_VCPUS ||
			    !test_bit(vcpu->vcpu_id, ctl->reset))
				continue;
			if (mutex_trylock(&vcpu->mutex)) {
				dvm_vm_reset_vcpu(dvm, vcpu);
				mutex_unlock(&vcpu->mutex);
			} else {
				busy = true;
			}
		}
		if (!busy)
			break;
		if (dvm_vm_gone(dvm))
			return -ENOLINK;
		if (time_after(jiffies, deadline))
			return -ETIMEDOUT;
		wait_event_timeout(ctl->wq, !dvm_vm_resets_pending(dvm) ||
				   dvm_vm_gone(dvm), HZ / 20);
	}
	dvm_stat_add(&dvm_vm_stats(dvm)->vm_resets, 1);
	return 0;
}

static int dvm_vm_resume(struct kvm_dvm *dvm, struct dvm_cluster *c)
{
	struct dvm_vm_ctl *ctl = &dvm->ctl;
	int r = 0;

	switch (READ_ONCE(ctl->state)) {
	case DVM_VM_OFF:
		return -ESHUTDOWN;
	case DVM_VM_RUNNING:
		return 0;
	}
	/* No local vCPU runs: the clocks may move either way. */
	if (c->node_id)
		r = dvm_clock_realign(dvm, c);
	WRITE_ONCE(ctl->state, DVM_VM_RUNNING);
	wake_up_all(&ctl->wq);
	dvm_stat_add(&dvm_vm_stats(dvm)->vm_resumes, 1);
	return r;
}

static int dvm_vm_poweroff(struct kvm_dvm *dvm)
{
	struct dvm_vm_ctl *ctl = &dvm->ctl;

	if (READ_ONCE(ctl->state) != DVM_VM_OFF) {
		WRITE_ONCE(ctl->state, DVM_VM_OFF);
		dvm_stat_add(&dvm_vm_stats(dvm)->vm_poweroffs, 1);
	}
	/* Pairs with the barrier of dvm_vm_enter(). */
	smp_mb();
	wake_up_all(&ctl->wq);
	dvm_vm_kick(dvm);
	/* Node 0's proxies end too, and answer nothing any more. */
	if (!dvm->node_id)
		dvm_io_proxy_cancel_all(dvm);
	return 0;
}

static int dvm_vm_op(struct kvm_dvm *dvm, struct dvm_cluster *c, u32 op)
{
	int r;

	switch (op) {
	case KVM_DVM_VM_PAUSE:
		return dvm_vm_pause(dvm, c);
	case KVM_DVM_VM_RESUME:
		return dvm_vm_resume(dvm, c);
	case KVM_DVM_VM_RESET:
		r = dvm_vm_pause(dvm, c);
		return r ? r : dvm_vm_reset_all(dvm, c);
	case KVM_DVM_VM_POWEROFF:
		return dvm_vm_poweroff(dvm);
	}
	return -EINVAL;
}

/* This node's part of @op, traced. */
static int dvm_vm_do(struct kvm_dvm *dvm, struct dvm_cluster *c, u32 op)
{
	u64 start = ktime_get_ns();
	int r = dvm_vm_op(dvm, c, op);

	trace_dvm_vm_control(c->node_id, op, r, ktime_get_ns() - start);
	return r;
}

static int dvm_vm_do_local(struct dvm_cluster *c, void *op)
{
	return dvm_vm_do(c->dvm, c, *(u32 *)op);
}

/* Node 0: @op on every node, the others' parts while it does its own. */
static int dvm_vm_round(struct kvm_dvm *dvm, struct dvm_cluster *c, u32 op,
			u32 *failed)
{
	struct dvm_msg_vm_control m = { .op = cpu_to_le32(op) };

	return dvm_call_others(c, DVM_MSG_VM_CONTROL, &m, sizeof(m),
			       dvm_vm_do_local, &op, failed);
}

/**
 * dvm_vm_control - KVM_DVM_VM_CONTROL on node 0
 * @dvm: the VM's DVM state, RUNNING on node 0
 * @c: its cluster, in use by the caller
 * @a: the checked request; failed_node is set on failure
 *
 * Return: 0 once every node did its part; a negative errno from the first
 * node that failed (a peer's errno as msg.c maps them), -ESHUTDOWN once
 * powered off (POWEROFF again succeeds), -EINTR on a fatal signal.
 */
int dvm_vm_control(struct kvm_dvm *dvm, struct dvm_cluster *c,
		   struct kvm_dvm_vm_control *a)
{
	struct dvm_vm_ctl *ctl = &dvm->ctl;
	u32 failed;
	int state, r;

	r = mutex_lock_killable(&ctl->mutex);
	if (r)
		return r;
	state = READ_ONCE(ctl->state);
	if (state == DVM_VM_OFF && a->op != KVM_DVM_VM_POWEROFF) {
		r = -ESHUTDOWN;
		goto out;
	}
	switch (a->op) {
	case KVM_DVM_VM_PAUSE:
		r = dvm_vm_round(dvm, c, KVM_DVM_VM_PAUSE, &a->failed_node);
		break;
	case KVM_DVM_VM_RESUME:
		if (state != DVM_VM_RUNNING)
			r = dvm_vm_round(dvm, c, KVM_DVM_VM_RESUME,
					 &a->failed_node);
		break;
	case KVM_DVM_VM_RESET:
		/* Quiet first: then no access is on its way to node 0. */
		r = dvm_vm_round(dvm, c, KVM_DVM_VM_PAUSE, &a->failed_node);
		if (r)
			break;
		dvm_io_proxy_cancel_all(dvm);
		r = dvm_vm_round(dvm, c, KVM_DVM_VM_RESET, &a->failed_node);
		break;
	case KVM_DVM_VM_POWEROFF:
		/* A node that cannot pause is powered off all the same. */
		if (state != DVM_VM_OFF)
			r = dvm_vm_round(dvm, c, KVM_DVM_VM_PAUSE,
					 &a->failed_node);
		if (!r)
			r = dvm_vm_round(dvm, c, KVM_DVM_VM_POWEROFF,
					 &a->failed_node);
		else
			dvm_vm_round(dvm, c, KVM_DVM_VM_POWEROFF, &failed);
		break;
	default:
		r = -EINVAL;
	}
out:
	mutex_unlock(&ctl->mutex);
	return r;
}

/* Nodes other than 0: node 0's request, carried out and answered. */
static void dvm_vm_ctl_work(struct work_struct *work)
{
	struct dvm_vm_ctl *ctl = container_of(work, struct dvm_vm_ctl, work);
	struct kvm_dvm *dvm = container_of(ctl, struct kvm_dvm, ctl);
	struct dvm_cluster *c, *on;
	u64 req_id;
	u32 op, from;
	int r;

	spin_lock(&ctl->lock);
	op = ctl->op;
	from = ctl->from;
	req_id = ctl->req_id;
	on = ctl->on;
	spin_unlock(&ctl->lock);

	c = dvm_live_get(dvm);
	if (c) {
		r = dvm_vm_do(dvm, c, op);
		if (c == on)
			dvm_reply(c, from, DVM_MSG_VM_CONTROL, req_id, r,
				  NULL, 0);
		dvm_live_put(dvm);
	}

	spin_lock(&ctl->lock);
	ctl->op = 0;
	spin_unlock(&ctl->lock);
}

/*
 * DVM_MSG_VM_CONTROL on a node other than 0: refused (-EINVAL) when
 * malformed or not from node 0, -EBUSY while the previous one is still
 * carried out.
 */
int dvm_handle_vm_control(struct dvm_cluster *c, struct dvm_conn *conn,
			  const struct dvm_wire_msg *msg, const void *payload,
			  struct dvm_reply *reply)
{
	const struct dvm_msg_vm_control *m = payload;
	struct dvm_vm_ctl *ctl = &c->dvm->ctl;
	u32 op = le32_to_cpu(m->op);
	int r = DVM_REPLY_LATER;

	if (!c->node_id || conn->node || m->flags ||
	    op < KVM_DVM_VM_PAUSE || op > KVM_DVM_VM_POWEROFF)
		return -EINVAL;
	spin_lock(&ctl->lock);
	if (ctl->op) {
		r = -EBUSY;
	} else {
		ctl->op = op;
		ctl->from = conn->node;
		ctl->req_id = msg->req_id;
		ctl->on = c;
		queue_work(system_unbound_wq, &ctl->work);
	}
	spin_unlock(&ctl->lock);
	return r;
}

static int dvm_vm_ctl_init(struct kvm_dvm *dvm)
{
	struct dvm_vm_ctl *ctl = &dvm->ctl;

	mutex_init(&ctl->mutex);
	spin_lock_init(&ctl->lock);
	init_waitqueue_head(&ctl->wq);
	INIT_WORK(&ctl->work, dvm_vm_ctl_work);
	return 0;
}

/* Before a placement: the VM runs, nothing is to reset. */
static int dvm_vm_ctl_place(struct kvm_dvm *dvm, struct dvm_cluster *c)
{
	WRITE_ONCE(dvm->ctl.state, DVM_VM_RUNNING);
	bitmap_zero(dvm->ctl.reset, KVM_DVM_MAX_VCPUS);
	return 0;
}

/* The cluster broke or was left: parked vCPUs and the waits look again. */
static void dvm_vm_ctl_wake(struct kvm_dvm *dvm)
{
	wake_up_all(&dvm->ctl.wq);
}

/* After LEAVE, no user of the cluster left: no request runs any more. */
static void dvm_vm_ctl_stop(struct kvm_dvm *dvm)
{
	struct dvm_vm_ctl *ctl = &dvm->ctl;

	cancel_work_sync(&ctl->work);
	spin_lock(&ctl->lock);
	ctl->op = 0;
	spin_unlock(&ctl->lock);
}

const struct dvm_subsys dvm_vm_ctl_subsys = {
	.name = "vm_control",
	.vm_init = dvm_vm_ctl_init,
	.place = dvm_vm_ctl_place,
	.wake = dvm_vm_ctl_wake,
	.detach = dvm_vm_ctl_stop,
};
