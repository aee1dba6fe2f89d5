// SPDX-License-Identifier: GPL-2.0
/*
 * dvm_vm_test: the whole VM paused, resumed, reset and powered off from
 * node 0 (KVM_DVM_VM_CONTROL), with vCPUs running on both nodes.
 *
 * pause: vCPUs 0 (node 0) and 1 (node 1) count on DSM pages of their own,
 * vCPUs 2 (node 0) and 3 (node 1) sit in HLT with interrupts off. Each
 * PAUSE returns with every vCPU parked, exactly once each (the halted
 * ones kicked out of HLT): the counters stand still. Meanwhile node 0's
 * VMM holds its kvmclock still, as QEMU does while a VM is stopped; at
 * RESUME node 1 aligns its clock again and counts the error it found,
 * which is the time node 0's clock was held. After RESUME the counters
 * go on. POWEROFF ends every KVM_RUN, the halted vCPUs' too, with
 * KVM_EXIT_SYSTEM_EVENT (shutdown).
 *
 * reset: vCPU 0 (node 0, the BSP) counts, vCPU 1 (node 1) counts and
 * makes a port access per round that node 0's thread answers through the
 * proxy, until it holds one back: the access is with node 0's VMM at the
 * reset. Both vCPUs have x2APIC on. RESET returns with both vCPUs reset
 * by the kernels of their nodes: real mode at the reset vector, caches
 * off, xAPIC at the default base, the BSP runnable and the AP waiting for
 * INIT/SIPI; node 0's mirror of vCPU 1's APIC follows; the held access
 * was answered once, by the reset. Node 0's VMM then moves its guest TSC
 * 100 s ahead; at RESUME node 1's guest TSC follows it.
 *
 * errors: the checks of KVM_DVM_VM_CONTROL (node 0 only, placed, op,
 * flags, padding, reserved), repeated operations, a powered-off VM (no
 * KVM_RUN enters the guest, only POWEROFF succeeds), and a paused node
 * whose master leaves: its parked vCPU ends with KVM_EXIT_DVM_BROKEN.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apic.h"
#include "dvm_dsm.h"

#define VM_PAGES	8
#define IO_PORT		0x5e0
#define PAUSE_ROUNDS	3
#define HOLD_MS		300	/* node 0's kvmclock held still, per pause */
#define ADVANCE		1000	/* counts that show a vCPU runs */
#define ANSWERED	50	/* port accesses node 0 answers before the reset */
#define TSC_JUMP_S	100	/* node 0's TSC moved ahead after the reset */
#define WAIT_S		120

enum { TEST_PAUSE, TEST_RESET };

/* DSM page 1 + id: vCPU id's counter. */
static uint64_t *guest_counter(uint64_t id)
{
	return (uint64_t *)(DSM_GVA + (1 + id) * 4096);
}

static void guest_code(uint64_t test, uint64_t id)
{
	uint64_t *count = guest_counter(id);
	uint32_t v;

	if (test == TEST_RESET)
		x2apic_enable();
	if (test == TEST_PAUSE && id >= 2) {
		WRITE_ONCE(*count, 1);
		for (;;)
			asm volatile("cli; hlt");
	}
	for (;;) {
		WRITE_ONCE(*count, *count + 1);
		if (test == TEST_RESET && id == 1)
			asm volatile("inl %%dx, %%eax" : "=a"(v) : "d"(IO_PORT));
	}
}

static struct dvm_node nodes[2];
static struct dsm_node dsm[2];

/* What vCPU @id counted, read on the node that runs it. */
static uint64_t counter(uint32_t id)
{
	return dsm_hword(dsm[id % 2].hva, 1 + id, 0);
}

static void wait_counter(uint32_t id, uint64_t min)
{
	uint64_t deadline = dvm_now_ns() + WAIT_S * 1000000000ull;

	while (counter(id) < min) {
		TEST_ASSERT(dvm_now_ns() < deadline,
			    "vCPU %u counted %lu in %d s, want %lu", id,
			    (unsigned long)counter(id), WAIT_S,
			    (unsigned long)min);
		usleep(1000);
	}
}

/* A vCPU's thread: KVM_RUN until it returns, or a signal with @stop. */
struct runner {
	struct kvm_vcpu *vcpu;
	pthread_t thread;
	bool stop;
	bool done;
	uint32_t exit_reason;
	uint32_t event;
};

static void *vcpu_thread(void *arg)
{
	struct runner *t = arg;
	struct kvm_run *run = t->vcpu->run;
	int r;

	for (;;) {
		r = __vcpu_run(t->vcpu);
		if (r && errno == EINTR) {
			if (READ_ONCE(t->stop))
				break;
			continue;
		}
		DVM_ASSERT_OK(r, "KVM_RUN");
		t->exit_reason = run->exit_reason;
		t->event = run->system_event.type;
		break;
	}
	WRITE_ONCE(t->done, true);
	return NULL;
}

static void runner_start(struct runner *t, struct kvm_vcpu *vcpu)
{
	memset(t, 0, sizeof(*t));
	t->vcpu = vcpu;
	pthread_create(&t->thread, NULL, vcpu_thread, t);
}

/* Out of KVM_RUN by a signal, whatever it waits for. */
static void runner_stop(struct runner *t)
{
	WRITE_ONCE(t->stop, true);
	while (!READ_ONCE(t->done)) {
		pthread_kill(t->thread, SIGUSR1);
		usleep(1000);
	}
	pthread_join(t->thread, NULL);
}

static bool is_poweroff(uint32_t reason, uint32_t event)
{
	return reason == KVM_EXIT_SYSTEM_EVENT &&
	       event == KVM_SYSTEM_EVENT_SHUTDOWN;
}

/* The power-off ends the thread's KVM_RUN by itself. */
static void runner_join_poweroff(struct runner *t, const char *who)
{
	pthread_join(t->thread, NULL);
	DVM_ASSERT(is_poweroff(t->exit_reason, t->event),
		   "%s: exit %u event %u, want KVM_EXIT_SYSTEM_EVENT (shutdown)",
		   who, t->exit_reason, t->event);
}

static void vm_cluster_up(uint64_t test, int vcpus)
{
	int i;

	dvm_join_flags = KVM_DVM_JOIN_FORWARD_IO;
	dsm_cluster_up(nodes, dsm, 2, vcpus, guest_code, VM_PAGES,
		       PG_LEVEL_4K);
	dvm_join_flags = 0;
	for (i = 0; i < vcpus; i++)
		vcpu_args_set(nodes[i % 2].vcpus[i], 2, test, i);
}

static void check_stat(int node, const char *name, uint64_t want)
{
	uint64_t v = dvm_stat(nodes[node].vm, name);

	DVM_ASSERT(v == want, "node %d: %s is %lu, want %lu", node, name,
		   (unsigned long)v, (unsigned long)want);
}

/* ---- pause and resume ---- */

/* Node 0's VMM holds its kvmclock still while paused, as QEMU does. */
static void pause_hold_clock(uint64_t *c0, uint64_t *c1)
{
	struct kvm_clock_data clk = { };

	dvm_vm_control(nodes[0].vm, KVM_DVM_VM_PAUSE);
	vm_ioctl(nodes[0].vm, KVM_GET_CLOCK, &clk);
	*c0 = counter(0);
	*c1 = counter(1);
	usleep(HOLD_MS * 1000);
	DVM_ASSERT(counter(0) == *c0 && counter(1) == *c1,
		   "paused, vCPUs counted on: %lu -> %lu, %lu -> %lu",
		   (unsigned long)*c0, (unsigned long)counter(0),
		   (unsigned long)*c1, (unsigned long)counter(1));
	clk.flags = 0;
	vm_ioctl(nodes[0].vm, KVM_SET_CLOCK, &clk);
}

static void test_pause(const char *transport)
{
	uint64_t c0, c1, found, steps, max_found = 0;
	struct runner t[4];
	int i, round;

	vm_cluster_up(TEST_PAUSE, 4);
	for (i = 0; i < 4; i++)
		runner_start(&t[i], nodes[i % 2].vcpus[i]);
	/* Every vCPU ran: the halted ones reached their HLT. */
	wait_counter(2, 1);
	wait_counter(3, 1);
	c0 = 0;
	c1 = 0;
	for (round = 0; round < PAUSE_ROUNDS; round++) {
		wait_counter(0, c0 + ADVANCE);
		wait_counter(1, c1 + ADVANCE);
		steps = dvm_stat(nodes[1].vm, "dvm_clock_steps");
		pause_hold_clock(&c0, &c1);
		dvm_vm_control(nodes[0].vm, KVM_DVM_VM_RESUME);
		/* Node 1's kvmclock ran on for the time node 0's was held. */
		found = dvm_stat(nodes[1].vm, "dvm_clock_offset_ns");
		DVM_ASSERT(found >= HOLD_MS * 1000000ull * 9 / 10 &&
			   dvm_stat(nodes[1].vm, "dvm_clock_steps") == steps + 1,
			   "resume %d: node 1 found %lu ns, stepped %lu times, want %d ms once",
			   round, (unsigned long)found,
			   (unsigned long)(dvm_stat(nodes[1].vm,
						    "dvm_clock_steps") - steps),
			   HOLD_MS);
		max_found = max(max_found, found);
	}
	wait_counter(0, c0 + ADVANCE);
	wait_counter(1, c1 + ADVANCE);
	for (i = 0; i < 2; i++) {
		check_stat(i, "dvm_vm_pauses", PAUSE_ROUNDS);
		check_stat(i, "dvm_vm_resumes", PAUSE_ROUNDS);
		/* Each vCPU parked once per pause, no more. */
		check_stat(i, "dvm_vm_parked", 2 * PAUSE_ROUNDS);
		check_stat(i, "dvm_vm_resets", 0);
	}

	dvm_vm_control(nodes[0].vm, KVM_DVM_VM_POWEROFF);
	for (i = 0; i < 4; i++)
		runner_join_poweroff(&t[i], i < 2 ? "counting vCPU" :
						    "halted vCPU");
	for (i = 0; i < 2; i++)
		check_stat(i, "dvm_vm_poweroffs", 1);
	dsm_cluster_down(nodes, dsm, 2, VM_PAGES);
	ksft_test_result_pass("%s: %d pauses with 4 vCPUs (2 in HLT) parked once each, none counting; node 0's kvmclock held %d ms each time, node 1 found up to %lu ns at resume; power-off ends every KVM_RUN\n",
			      transport, PAUSE_ROUNDS, HOLD_MS,
			      (unsigned long)max_found);
}

/* ---- reset ---- */

/* Node 0's thread: answers vCPU 1's INs, then holds one back. */
struct holder {
	struct kvm_vcpu *copy;
	pthread_t thread;
	uint32_t answered;
	bool held;
	bool go;
	uint32_t exit_reason;
	uint32_t event;
};

static void *holding_proxy(void *arg)
{
	struct holder *p = arg;
	struct kvm_run *run = p->copy->run;
	uint32_t v;
	int r;

	for (;;) {
		r = __vcpu_run(p->copy);
		if (r && errno == EINTR)
			continue;
		DVM_ASSERT_OK(r, "proxy KVM_RUN");
		if (run->exit_reason != KVM_EXIT_IO)
			break;
		TEST_ASSERT(run->io.port == IO_PORT && run->io.size == 4 &&
			    run->io.direction == KVM_EXIT_IO_IN,
			    "proxy: port %#x size %u", run->io.port,
			    run->io.size);
		if (p->answered == ANSWERED) {
			/* With node 0's VMM when the VM is reset. */
			WRITE_ONCE(p->held, true);
			while (!READ_ONCE(p->go))
				usleep(1000);
			continue;
		}
		v = ++p->answered;
		memcpy((uint8_t *)run + run->io.data_offset, &v, 4);
	}
	p->exit_reason = run->exit_reason;
	p->event = run->system_event.type;
	return NULL;
}

/* A processor's state after RESET, as the kernel of its node left it. */
static void check_reset_state(struct kvm_vcpu *vcpu, bool bsp, int node)
{
	struct kvm_mp_state mp;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	uint64_t base;

	vcpu_ioctl(vcpu, KVM_GET_MP_STATE, &mp);
	vcpu_regs_get(vcpu, &regs);
	vcpu_sregs_get(vcpu, &sregs);
	base = vcpu_get_msr(vcpu, MSR_IA32_APICBASE);
	DVM_ASSERT(mp.mp_state == (bsp ? KVM_MP_STATE_RUNNABLE :
					 KVM_MP_STATE_UNINITIALIZED),
		   "node %d vCPU %u: mp_state %u", node, vcpu->id,
		   mp.mp_state);
	DVM_ASSERT(regs.rip == 0xfff0 && regs.rflags == 2 &&
		   sregs.cs.selector == 0xf000 &&
		   sregs.cs.base == 0xffff0000 &&
		   sregs.cr0 == 0x60000010 && !sregs.cr3 && !sregs.cr4 &&
		   !sregs.efer,
		   "node %d vCPU %u: rip %#llx rflags %#llx cs %#x:%#llx cr0 %#llx cr3 %#llx cr4 %#llx efer %#llx",
		   node, vcpu->id, regs.rip, regs.rflags, sregs.cs.selector,
		   sregs.cs.base, sregs.cr0, sregs.cr3, sregs.cr4, sregs.efer);
	DVM_ASSERT(base == (APIC_DEFAULT_GPA | MSR_IA32_APICBASE_ENABLE |
			    (bsp ? MSR_IA32_APICBASE_BSP : 0)),
		   "node %d vCPU %u: APIC base %#lx", node, vcpu->id,
		   (unsigned long)base);
}

/* Node 0's VMM moves its TSC; at RESUME node 1's follows. */
static void check_tsc_follows(void)
{
	struct kvm_vcpu *v0 = nodes[0].vcpus[0], *v1 = nodes[1].vcpus[1];
	uint64_t khz = __vcpu_ioctl(v0, KVM_GET_TSC_KHZ, NULL);
	uint64_t moved, t0, t1;

	moved = vcpu_get_msr(v0, MSR_IA32_TSC) + TSC_JUMP_S * khz * 1000;
	vcpu_set_msr(v0, MSR_IA32_TSC, moved);
	dvm_vm_control(nodes[0].vm, KVM_DVM_VM_RESUME);
	t1 = vcpu_get_msr(v1, MSR_IA32_TSC);
	t0 = vcpu_get_msr(v0, MSR_IA32_TSC);
	/* Read one after the other, within the alignment's bound. */
	DVM_ASSERT(t1 >= moved && llabs((int64_t)(t0 - t1)) < khz * 100,
		   "node 0's TSC %lu (moved to %lu), node 1's %lu: %ld ms apart",
		   (unsigned long)t0, (unsigned long)moved,
		   (unsigned long)t1, (long)((int64_t)(t0 - t1) / (int64_t)khz));
}

static void test_reset(const char *transport)
{
	struct holder p = { };
	struct runner t[2];
	struct kvm_run *run;
	uint64_t fwd[KVM_DVM_STAT_IO_KINDS];
	int i;

	vm_cluster_up(TEST_RESET, 2);
	p.copy = nodes[0].vcpus[1];
	pthread_create(&p.thread, NULL, holding_proxy, &p);
	for (i = 0; i < 2; i++)
		runner_start(&t[i], nodes[i].vcpus[i]);
	wait_counter(0, ADVANCE);
	while (!READ_ONCE(p.held))
		usleep(1000);

	dvm_vm_control(nodes[0].vm, KVM_DVM_VM_RESET);
	for (i = 0; i < 2; i++) {
		check_stat(i, "dvm_vm_resets", 1);
		check_stat(i, "dvm_vm_vcpu_resets", 1);
	}
	/* The held access: answered once, by the reset. */
	dvm_stat_read(nodes[1].vm, "dvm_io_forwarded", fwd,
		      KVM_DVM_STAT_IO_KINDS);
	DVM_ASSERT(fwd[KVM_DVM_STAT_IO_PIO_IN] == ANSWERED + 1 &&
		   dvm_stat(nodes[1].vm, "dvm_io_rtt_count") == ANSWERED + 1,
		   "node 1: %lu INs forwarded, %lu answered, want %d",
		   (unsigned long)fwd[KVM_DVM_STAT_IO_PIO_IN],
		   (unsigned long)dvm_stat(nodes[1].vm, "dvm_io_rtt_count"),
		   ANSWERED + 1);
	/* Paused after the reset: the parked threads leave on a signal. */
	for (i = 0; i < 2; i++)
		runner_stop(&t[i]);
	check_reset_state(nodes[0].vcpus[0], true, 0);
	check_reset_state(nodes[1].vcpus[1], false, 1);
	DVM_ASSERT(vcpu_get_msr(nodes[0].vcpus[1], MSR_IA32_APICBASE) ==
		   (APIC_DEFAULT_GPA | MSR_IA32_APICBASE_ENABLE),
		   "node 0's mirror of vCPU 1: APIC base %#lx",
		   (unsigned long)vcpu_get_msr(nodes[0].vcpus[1],
					       MSR_IA32_APICBASE));
	check_tsc_follows();

	dvm_vm_control(nodes[0].vm, KVM_DVM_VM_POWEROFF);
	WRITE_ONCE(p.go, true);
	pthread_join(p.thread, NULL);
	DVM_ASSERT(is_poweroff(p.exit_reason, p.event) &&
		   p.answered == ANSWERED,
		   "proxy: exit %u event %u after %u answers", p.exit_reason,
		   p.event, p.answered);
	for (i = 0; i < 2; i++) {
		run = nodes[i].vcpus[i]->run;
		DVM_ASSERT_OK(__vcpu_run(nodes[i].vcpus[i]), "KVM_RUN, off");
		DVM_ASSERT(is_poweroff(run->exit_reason,
				       run->system_event.type),
			   "node %d: exit %u after the power-off", i,
			   run->exit_reason);
	}
	dsm_cluster_down(nodes, dsm, 2, VM_PAGES);
	ksft_test_result_pass("%s: reset with vCPUs running on both nodes and an access held by node 0's VMM: both in the reset state (BSP runnable, AP waiting for SIPI, xAPIC), mirror followed, access answered once; node 1's TSC follows node 0's %d s jump at resume\n",
			      transport, TSC_JUMP_S);
}

/* ---- errors ---- */

static int vm_control_raw(struct kvm_vm *vm, struct kvm_dvm_vm_control *a)
{
	return __vm_ioctl(vm, KVM_DVM_VM_CONTROL, a);
}

static void check_malformed(void)
{
	struct kvm_dvm_vm_control a;
	int i;

	for (i = 0; i < 6; i++) {
		memset(&a, 0, sizeof(a));
		a.op = KVM_DVM_VM_PAUSE;
		switch (i) {
		case 0:
			a.op = 0;
			break;
		case 1:
			a.op = KVM_DVM_VM_POWEROFF + 1;
			break;
		case 2:
			a.flags = 1;
			break;
		case 3:
			a.pad = 1;
			break;
		default:
			a.reserved[i - 4] = 1;
		}
		DVM_ASSERT_ERRNO(vm_control_raw(nodes[0].vm, &a), EINVAL,
				 "malformed VM_CONTROL");
	}
}

static void test_errors(void)
{
	struct kvm_run *run;
	uint32_t failed;
	int i;

	TEST_ASSERT(kvm_check_cap(KVM_CAP_DVM) & KVM_DVM_CAP_VM_CONTROL,
		    "KVM_DVM_CAP_VM_CONTROL not reported");
	dvm_join_flags = KVM_DVM_JOIN_FORWARD_IO;
	dvm_nodes_create(nodes, 2, 2, guest_code);
	dvm_nodes_join(nodes, 2, "JOIN");
	dvm_join_flags = 0;
	DVM_ASSERT_ERRNO(__dvm_vm_control(nodes[0].vm, KVM_DVM_VM_PAUSE,
					  NULL), EBUSY, "before placement");
	dvm_place_round_robin(nodes, 2, 2);
	dvm_set_vcpus_all(nodes, 2);
	dvm_assert_all_ok(nodes, 2, "SET_LOCAL_VCPUS");
	check_malformed();
	DVM_ASSERT_ERRNO(__dvm_vm_control(nodes[1].vm, KVM_DVM_VM_PAUSE,
					  NULL), EPERM, "on node 1");

	/* Each operation twice: the second changes nothing. */
	dvm_vm_control(nodes[0].vm, KVM_DVM_VM_PAUSE);
	dvm_vm_control(nodes[0].vm, KVM_DVM_VM_PAUSE);
	dvm_vm_control(nodes[0].vm, KVM_DVM_VM_RESUME);
	dvm_vm_control(nodes[0].vm, KVM_DVM_VM_RESUME);
	dvm_vm_control(nodes[0].vm, KVM_DVM_VM_POWEROFF);
	dvm_vm_control(nodes[0].vm, KVM_DVM_VM_POWEROFF);
	for (i = 0; i < 2; i++) {
		check_stat(i, "dvm_vm_pauses", 2);	/* one by POWEROFF */
		check_stat(i, "dvm_vm_resumes", 1);
		check_stat(i, "dvm_vm_poweroffs", 1);
	}
	DVM_ASSERT_ERRNO(__dvm_vm_control(nodes[0].vm, KVM_DVM_VM_PAUSE,
					  NULL), ESHUTDOWN, "PAUSE when off");
	DVM_ASSERT_ERRNO(__dvm_vm_control(nodes[0].vm, KVM_DVM_VM_RESUME,
					  NULL), ESHUTDOWN, "RESUME when off");
	DVM_ASSERT_ERRNO(__dvm_vm_control(nodes[0].vm, KVM_DVM_VM_RESET,
					  NULL), ESHUTDOWN, "RESET when off");
	/* Off: KVM_RUN of a vCPU and of node 0's proxy ends at once. */
	for (i = 0; i < 3; i++) {
		struct kvm_vcpu *v = i < 2 ? nodes[i].vcpus[i] :
					     nodes[0].vcpus[1];

		run = v->run;
		DVM_ASSERT_OK(__vcpu_run(v), "KVM_RUN when off");
		DVM_ASSERT(is_poweroff(run->exit_reason,
				       run->system_event.type),
			   "KVM_RUN %d when off: exit %u", i,
			   run->exit_reason);
	}
	DVM_ASSERT_OK(__dvm_leave(nodes[0].vm), "LEAVE");
	DVM_ASSERT_ERRNO(__dvm_vm_control(nodes[0].vm, KVM_DVM_VM_POWEROFF,
					  &failed), ENOTCONN, "after LEAVE");
	dvm_free_all(nodes, 2);
	ksft_test_result_pass("VM_CONTROL refused before placement (EBUSY), on node 1 (EPERM), malformed (EINVAL), when off (ESHUTDOWN), after LEAVE (ENOTCONN); repeated operations change nothing; KVM_RUN of a powered-off VM ends at once\n");
}

/* Paused, node 0 leaves: node 1's parked vCPU ends with the breakage. */
static void test_master_lost(void)
{
	struct runner t[2];
	struct kvm_run *run;
	int i;

	vm_cluster_up(TEST_PAUSE, 2);
	for (i = 0; i < 2; i++)
		runner_start(&t[i], nodes[i].vcpus[i]);
	wait_counter(0, ADVANCE);
	wait_counter(1, ADVANCE);
	dvm_vm_control(nodes[0].vm, KVM_DVM_VM_PAUSE);
	DVM_ASSERT_OK(__dvm_leave(nodes[0].vm), "node 0's LEAVE");
	pthread_join(t[1].thread, NULL);
	run = nodes[1].vcpus[1]->run;
	DVM_ASSERT(t[1].exit_reason == KVM_EXIT_DVM_BROKEN &&
		   run->dvm_broken.node == 0,
		   "node 1's parked vCPU: %s, want KVM_EXIT_DVM_BROKEN naming node 0",
		   dvm_exit_why(nodes[1].vcpus[1]));
	runner_stop(&t[0]);
	dsm_cluster_down(nodes, dsm, 2, VM_PAGES);
	ksft_test_result_pass("paused, node 0 leaves: node 1's parked vCPU ends with KVM_EXIT_DVM_BROKEN naming node 0\n");
}

static void stop_handler(int sig)
{
}

int main(int argc, char *argv[])
{
	const char *rdma = getenv("DVM_RDMA_ADDR");
	struct sigaction sa = { .sa_handler = stop_handler };

	setvbuf(stdout, NULL, _IOLBF, 0);
	ksft_print_header();
	dvm_require_abi();
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_DVM) & KVM_DVM_CAP_VM_CONTROL);
	/* No SA_RESTART: a signal ends a parked vCPU's KVM_RUN. */
	sigaction(SIGUSR1, &sa, NULL);
	ksft_set_plan(6);

	test_errors();
	test_master_lost();
	test_pause("tcp");
	test_reset("tcp");
	if (rdma && *rdma) {
		dvm_rdma_addr = rdma;
		test_pause("rdma");
		test_reset("rdma");
		dvm_rdma_addr = NULL;
	} else {
		ksft_test_result_skip("rdma: DVM_RDMA_ADDR (an IPv4 address of an rxe device) not set\n");
		ksft_test_result_skip("rdma: DVM_RDMA_ADDR (an IPv4 address of an rxe device) not set\n");
	}
	ksft_finished();
}
