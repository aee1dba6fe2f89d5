// SPDX-License-Identifier: GPL-2.0
/*
 * DVM on x86: every node's guest TSC and kvmclock follow node 0's. See
 * Documentation/virt/kvm/dvm.rst, "Clocks".
 *
 * Each node's VM starts its TSC and its kvmclock when it is created, from
 * its own host's clocks, so a guest that spans nodes would see time jump
 * as it moves between them. Once the vCPUs are placed, every node other
 * than 0 samples node 0's clocks (DVM_MSG_CLOCK), keeps the sample with
 * the shortest round trip and takes its midpoint as the moment node 0
 * read them: the error is at most half that round trip. It then gives
 * all its vCPUs one TSC offset (one matched TSC generation, so that KVM's
 * master clock and PVCLOCK_TSC_STABLE_BIT stay) and moves its kvmclock.
 *
 * A check every dvm_clock_period_ms does the same. A node found behind
 * by more than the bound steps forward; a node ahead is only counted:
 * stepping back would show the guest time going backwards, and slewing
 * needs TSC scaling for the whole node.
 *
 * A running vCPU's TSC offset is written by its own thread (under its
 * mutex, in the run loop), the others' by the checker.
 */
#include <linux/kvm_host.h>
#include <linux/math64.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <asm/msr.h>
#include <asm/tsc.h>

#include "../x86.h"
#include "../../../../virt/kvm/dvm/dvm.h"
#include "../../../../virt/kvm/dvm/trace.h"

#define DVM_CLOCK_SAMPLES	16
#define DVM_CLOCK_PERIOD_MIN_MS	100
#define DVM_CLOCK_PERIOD_MAX_MS	60000

static uint dvm_clock_period_ms = 1000;
module_param(dvm_clock_period_ms, uint, 0644);
MODULE_PARM_DESC(dvm_clock_period_ms,
		 "DVM: how often nodes other than 0 check their clocks (100 to 60000 ms)");

/*
 * Debug: emulated hosts share one TSC, so drift is injected: node 0's
 * samples are taken to run this many ppm fast, as if this node's
 * oscillator were slow. The node follows them, ahead of node 0's real
 * clocks by the drift injected so far.
 */
static uint dvm_clock_drift_ppm;
module_param(dvm_clock_drift_ppm, uint, 0644);
MODULE_PARM_DESC(dvm_clock_drift_ppm,
		 "DVM debug: drift injected into the clock checks of nodes other than 0 (ppm, at most 100000)");

/**
 * struct dvm_clock - a node's alignment with node 0's clocks
 * @dvm: the VM
 * @work: the periodic check
 * @tsc_offset: the L1 TSC offset every vCPU of this node gets
 * @tsc_pending: vCPUs that have not got @tsc_offset yet
 * @bias_ns: debug drift injected so far
 * @bias_at: kvmclock of the last injection
 * @checks: checks done since placement
 */
struct dvm_clock {
	struct kvm_dvm *dvm;
	struct delayed_work work;
	u64 tsc_offset;
	DECLARE_BITMAP(tsc_pending, KVM_DVM_MAX_VCPUS);
	u64 bias_ns;
	u64 bias_at;
	u64 checks;
};

/* One sample: this node's clocks minus node 0's, at its midpoint. */
struct dvm_clock_sample {
	u64 rtt_ns;
	s64 clock_err_ns;
	s64 tsc_err;		/* cycles */
	u64 tsc_offset;		/* that makes the TSC error 0 */
};

static struct kvm_dvm_vm_stat *dvm_clock_stats(struct kvm *kvm)
{
	return &kvm->stat.generic.dvm;
}

static u64 dvm_clock_period(void)
{
	return msecs_to_jiffies(clamp_t(uint, READ_ONCE(dvm_clock_period_ms),
					DVM_CLOCK_PERIOD_MIN_MS,
					DVM_CLOCK_PERIOD_MAX_MS));
}

/* The vCPU whose TSC stands for the node's: any, they all get the same. */
static struct kvm_vcpu *dvm_clock_ref_vcpu(struct kvm *kvm)
{
	struct kvm_vcpu *vcpu;
	unsigned long i;

	kvm_for_each_vcpu(i, vcpu, kvm)
		return vcpu;
	return NULL;
}

static s64 dvm_tsc_to_ns(struct kvm_vcpu *vcpu, s64 cycles)
{
	u32 khz = vcpu->arch.virtual_tsc_khz;
	s64 ns;

	if (!khz)
		return 0;
	ns = mul_u64_u32_div(abs(cycles), NSEC_PER_MSEC, khz);
	return cycles < 0 ? -ns : ns;
}

/* Debug drift: how far node 0's clocks seem ahead now, in ns. */
static u64 dvm_clock_bias(struct dvm_clock *clk, u64 now)
{
	u32 ppm = min_t(uint, READ_ONCE(dvm_clock_drift_ppm), 100000);

	if (clk->bias_at && now > clk->bias_at)
		clk->bias_ns += div_u64((now - clk->bias_at) * ppm, 1000000);
	clk->bias_at = now;
	return clk->bias_ns;
}

/* Node 0: its clocks, for a node that aligns its own with them. */
int dvm_handle_clock(struct dvm_cluster *c, struct dvm_conn *conn,
		     const struct dvm_wire_msg *msg, const void *payload,
		     struct dvm_reply *reply)
{
	struct kvm *kvm = c->dvm->kvm;
	struct dvm_msg_clock *m = conn->rx_buf;
	struct kvm_vcpu *vcpu;
	u64 tsc, ns;

	BUILD_BUG_ON(sizeof(*m) > DVM_WIRE_PAGE_SIZE);
	if (c->node_id)
		return -EINVAL;
	vcpu = dvm_clock_ref_vcpu(kvm);
	if (!vcpu)
		return -ENODEV;
	tsc = kvm_read_l1_tsc(vcpu, rdtsc());
	ns = get_kvmclock_ns(kvm);
	m->kvmclock_ns = cpu_to_le64(ns);
	m->guest_tsc = cpu_to_le64(tsc);
	m->tsc_khz = cpu_to_le32(vcpu->arch.virtual_tsc_khz);
	m->flags = cpu_to_le32(READ_ONCE(kvm->arch.use_master_clock) ?
			       DVM_CLOCK_F_STABLE : 0);
	reply->buf = m;
	reply->len = sizeof(*m);
	return 0;
}

static int dvm_clock_sample(struct dvm_cluster *c, struct dvm_clock *clk,
			    struct kvm_vcpu *ref, struct dvm_clock_sample *s)
{
	struct kvm *kvm = c->dvm->kvm;
	struct dvm_msg_clock m;
	struct dvm_call call;
	u64 k0, k1, h0, h1, hmid, bias, tsc0, ns0;
	int r;

	k0 = get_kvmclock_ns(kvm);
	h0 = rdtsc();
	r = dvm_call_start(c, &call, 0, DVM_MSG_CLOCK, NULL, 0, &m, sizeof(m));
	if (r)
		return r;
	r = dvm_call_wait(c, &call, c->peer_timeout);
	h1 = rdtsc();
	k1 = get_kvmclock_ns(kvm);
	if (r)
		return r;
	if (call.resp_len != sizeof(m) ||
	    le32_to_cpu(m.flags) & ~DVM_CLOCK_F_STABLE)
		return -EPROTO;
	/* Placement compared the rates; a peer that says otherwise lies. */
	if (le32_to_cpu(m.tsc_khz) != ref->arch.virtual_tsc_khz)
		return -EPROTO;

	bias = dvm_clock_bias(clk, k1);
	ns0 = le64_to_cpu(m.kvmclock_ns) + bias;
	tsc0 = le64_to_cpu(m.guest_tsc) +
	       mul_u64_u32_div(bias, ref->arch.virtual_tsc_khz, NSEC_PER_MSEC);
	/*
	 * The round trip as the receive path timed it, without this
	 * thread's wakeup; both clocks were read just before it started.
	 */
	s->rtt_ns = call.rtt_ns && call.rtt_ns < k1 - k0 ? call.rtt_ns :
							   k1 - k0;
	hmid = h0 + (tsc_khz ? mul_u64_u32_div(s->rtt_ns / 2, tsc_khz,
					       NSEC_PER_MSEC) :
			       (h1 - h0) / 2);
	s->clock_err_ns = (s64)(k0 + s->rtt_ns / 2 - ns0);
	s->tsc_offset = tsc0 - kvm_scale_tsc(hmid,
					     ref->arch.l1_tsc_scaling_ratio);
	s->tsc_err = (s64)(READ_ONCE(ref->arch.l1_tsc_offset) - s->tsc_offset);
	return 0;
}

/* Under @vcpu's mutex: give it the node's TSC offset if it has not. */
static void dvm_clock_apply(struct dvm_clock *clk, struct kvm_vcpu *vcpu)
{
	if (!test_and_clear_bit(vcpu->vcpu_id, clk->tsc_pending))
		return;
	kvm_vcpu_set_tsc_offset(vcpu, READ_ONCE(clk->tsc_offset));
	kvm_make_request(KVM_REQ_CLOCK_UPDATE, vcpu);
}

/*
 * A vCPU whose thread holds its mutex is running, or about to: it gets
 * KVM_REQ_DVM_CLOCK, which keeps it out of the guest until its run loop
 * took the offset (dvm_clock_vcpu_run()); the others get it here.
 */
static void dvm_clock_set_tsc(struct dvm_clock *clk, u64 offset)
{
	struct kvm_vcpu *vcpu;
	unsigned long i;

	WRITE_ONCE(clk->tsc_offset, offset);
	kvm_for_each_vcpu(i, vcpu, clk->dvm->kvm) {
		if (WARN_ON_ONCE(vcpu->vcpu_id >= KVM_DVM_MAX_VCPUS))
			continue;
		/* The offset is seen by whoever clears the bit. */
		smp_mb__before_atomic();
		set_bit(vcpu->vcpu_id, clk->tsc_pending);
		if (mutex_trylock(&vcpu->mutex)) {
			vcpu_load(vcpu);
			dvm_clock_apply(clk, vcpu);
			vcpu_put(vcpu);
			mutex_unlock(&vcpu->mutex);
		} else {
			kvm_make_request(KVM_REQ_DVM_CLOCK, vcpu);
			kvm_vcpu_kick(vcpu);
		}
	}
}

/**
 * dvm_clock_vcpu_run - before a local vCPU enters the guest
 * @dvm: the VM's DVM state
 * @vcpu: the vCPU, its mutex held by its thread
 * @loaded: the vCPU is loaded (in its run loop)
 */
void dvm_clock_vcpu_run(struct kvm_dvm *dvm, struct kvm_vcpu *vcpu,
			bool loaded)
{
	struct dvm_clock *clk = READ_ONCE(dvm->clock);

	if (!clk || vcpu->vcpu_id >= KVM_DVM_MAX_VCPUS ||
	    !test_bit(vcpu->vcpu_id, clk->tsc_pending))
		return;
	if (loaded) {
		dvm_clock_apply(clk, vcpu);
		return;
	}
	vcpu_load(vcpu);
	dvm_clock_apply(clk, vcpu);
	vcpu_put(vcpu);
}

/*
 * One check: the best of DVM_CLOCK_SAMPLES samples. The first aligns both
 * clocks whichever way they are off; later ones step forward only.
 */
static int dvm_clock_check(struct dvm_cluster *c, struct dvm_clock *clk)
{
	struct kvm_dvm_vm_stat *st = dvm_clock_stats(c->dvm->kvm);
	struct dvm_clock_sample s, best = { .rtt_ns = U64_MAX };
	struct kvm_vcpu *ref = dvm_clock_ref_vcpu(c->dvm->kvm);
	bool first = !clk->checks, stepped = false;
	s64 bound, tsc_err_ns, err;
	u8 what = 0;
	int i, r;

	if (!ref)
		return 0;
	for (i = 0; i < DVM_CLOCK_SAMPLES; i++) {
		r = dvm_clock_sample(c, clk, ref, &s);
		if (r) {
			dvm_stat_add(&st->clock_failed, 1);
			return r;
		}
		if (s.rtt_ns < best.rtt_ns)
			best = s;
	}
	clk->checks++;
	bound = best.rtt_ns / 2;
	tsc_err_ns = dvm_tsc_to_ns(ref, best.tsc_err);
	err = max(abs(best.clock_err_ns), abs(tsc_err_ns));
	dvm_stat_add(&st->clock_checks, 1);
	WRITE_ONCE(st->clock_rtt_ns, best.rtt_ns);
	WRITE_ONCE(st->clock_error_ns, err);
	if (first)
		WRITE_ONCE(st->clock_offset_ns, err);
	else
		dvm_stat_max(&st->clock_error_max_ns, err);

	if (first || tsc_err_ns < -bound) {
		dvm_clock_set_tsc(clk, best.tsc_offset);
		stepped = true;
	}
	if (first || best.clock_err_ns < -bound) {
		kvm_vm_adjust_clock(c->dvm->kvm, -best.clock_err_ns);
		stepped = true;
	}
	if (stepped) {
		dvm_stat_add(&st->clock_steps, 1);
		what = 1;
	} else if (best.clock_err_ns > bound || tsc_err_ns > bound) {
		dvm_stat_add(&st->clock_ahead, 1);
		what = 2;
	}
	trace_dvm_clock(c->node_id, best.rtt_ns, best.clock_err_ns,
			tsc_err_ns, what);
	return 0;
}

static void dvm_clock_work(struct work_struct *work)
{
	struct dvm_clock *clk = container_of(to_delayed_work(work),
					     struct dvm_clock, work);
	struct kvm_dvm *dvm = clk->dvm;
	struct dvm_cluster *c = dvm_live_get(dvm);

	if (!c)
		return;
	/*
	 * A broken cluster is not checked: its vCPUs cannot run. Nor is a
	 * paused VM: node 0's VMM may hold its kvmclock still meanwhile.
	 */
	if (READ_ONCE(dvm->state) == KVM_DVM_STATE_RUNNING) {
		if (READ_ONCE(dvm->ctl.state) == DVM_VM_RUNNING)
			dvm_clock_check(c, clk);
		queue_delayed_work(system_unbound_wq, &clk->work,
				   dvm_clock_period());
	}
	dvm_live_put(dvm);
}

/* Before placement, on nodes other than 0: nothing fails after it. */
static int dvm_clock_alloc(struct kvm_dvm *dvm, struct dvm_cluster *c)
{
	struct dvm_clock *clk;

	if (!c->node_id || dvm->clock)
		return 0;
	clk = kzalloc(sizeof(*clk), GFP_KERNEL_ACCOUNT);
	if (!clk)
		return -ENOMEM;
	clk->dvm = dvm;
	INIT_DELAYED_WORK(&clk->work, dvm_clock_work);
	WRITE_ONCE(dvm->clock, clk);
	return 0;
}

/**
 * dvm_clock_start - align this node's clocks with node 0's
 * @dvm: the VM, just placed (RUNNING); no lock held
 * @c: its cluster, in use by the caller
 *
 * Nodes other than 0 check once before returning and then every
 * dvm_clock_period_ms. A failed check is counted (the cluster breaks if a
 * peer is lost) and retried by the next.
 */
static void dvm_clock_start(struct kvm_dvm *dvm, struct dvm_cluster *c)
{
	struct dvm_clock *clk = dvm->clock;

	if (!c->node_id || WARN_ON_ONCE(!clk))
		return;
	clk->checks = 0;
	clk->bias_ns = 0;
	clk->bias_at = 0;
	dvm_clock_check(c, clk);
	queue_delayed_work(system_unbound_wq, &clk->work, dvm_clock_period());
}

/**
 * dvm_clock_realign - align this node's clocks with node 0's whichever
 *	way they are off, as at placement
 * @dvm: the VM, paused: none of its vCPUs runs, none sees a clock jump
 * @c: its cluster, in use by the caller
 *
 * For a VM that resumes: node 0's VMM may have held its kvmclock still,
 * or restarted its TSC with a reset. The periodic checks go on after it.
 *
 * Return: 0, or the errno of the check that failed.
 */
int dvm_clock_realign(struct kvm_dvm *dvm, struct dvm_cluster *c)
{
	struct dvm_clock *clk = dvm->clock;
	int r;

	if (!c->node_id || WARN_ON_ONCE(!clk))
		return 0;
	cancel_delayed_work_sync(&clk->work);
	clk->checks = 0;
	r = dvm_clock_check(c, clk);
	queue_delayed_work(system_unbound_wq, &clk->work, dvm_clock_period());
	return r;
}

/* The VM left RUNNING for good (LEAVE, or its destruction): no more checks. */
static void dvm_clock_stop(struct kvm_dvm *dvm)
{
	struct dvm_clock *clk = dvm->clock;

	if (!clk)
		return;
	cancel_delayed_work_sync(&clk->work);
	bitmap_zero(clk->tsc_pending, KVM_DVM_MAX_VCPUS);
}

static void dvm_clock_free(struct kvm_dvm *dvm)
{
	dvm_clock_stop(dvm);
	kfree(dvm->clock);
	dvm->clock = NULL;
}

const struct dvm_subsys dvm_clock_subsys = {
	.name = "clock",
	.vm_free = dvm_clock_free,
	.place = dvm_clock_alloc,
	.placed = dvm_clock_start,
	.detach = dvm_clock_stop,
};
