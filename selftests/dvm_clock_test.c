// SPDX-License-Identifier: GPL-2.0
/*
 * dvm_clock_test: node 1's guest TSC and kvmclock follow node 0's.
 *
 * Both nodes are VMs of this process on this host, so they share its TSC
 * and its clocks: what the kernel aligned can be checked here exactly.
 *
 * align: before placement, node 1's clocks are set 5 s ahead of node 0's
 * (KVM_SET_CLOCK, and one TSC offset for both its vCPUs). After
 * SET_LOCAL_VCPUS, node 1's vCPUs have one TSC offset, node 0's within
 * one measured round trip; the VMs' kvmclocks agree as closely; both
 * report a stable (master) clock; node 1 counted one check that found
 * the 5 s. Then vCPU 0 on node 0 and vCPU 1 on node 1 enable kvmclock,
 * see PVCLOCK_TSC_STABLE_BIT, and pass a token back and forth on a DSM
 * page: holding it, each reads its TSC and kvmclock and checks that
 * neither is below what the other read before handing the token over.
 *
 * drift: with drift injected (kvm.dvm_clock_drift_ppm, node 0's clock
 * seems to run fast) and a check every 100 ms, node 1 steps forward at
 * the checks and the error they find stays far below the drift injected;
 * once the drift stops, the next checks find an error within their own
 * uncertainty.
 *
 * catchup: vCPUs whose TSC rate KVM would catch up in software (beyond
 * its tolerance of the host's, no TSC scaling) are refused at placement
 * with ERANGE, on every node.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <asm/kvm_para.h>
#include <asm/pvclock.h>
#include <asm/pvclock-abi.h>

#include "dvm_dsm.h"

#define CLOCK_PAGES	4
#define AHEAD_NS	5000000000ull	/* node 1 starts this far ahead */
#define ROUNDS		300
#define DRIFT_PPM	20000
#define PERIOD_MS	100

/* DSM page 0: the token; page 1 + vCPU id: that vCPU's kvmclock page. */
struct token {
	uint64_t turn;		/* vCPU turn % 2 holds it */
	uint64_t tsc;		/* what the last holder read */
	uint64_t clock;
};

#define TOKEN	((struct token *)DSM_GVA)

static uint64_t kvmclock_read(struct pvclock_vcpu_time_info *p)
{
	uint32_t version;
	uint64_t ns;

	do {
		version = READ_ONCE(p->version);
		asm volatile("lfence" ::: "memory");
		ns = __pvclock_read_cycles(p, rdtsc());
		asm volatile("lfence" ::: "memory");
	} while ((version & 1) || version != READ_ONCE(p->version));
	return ns;
}

static void guest_code(uint64_t id, uint64_t rounds)
{
	struct pvclock_vcpu_time_info *pvti = (void *)(DSM_GVA +
						       (1 + id) * 4096);
	uint64_t r, turn, tsc, ns, seen_tsc, seen_ns;

	wrmsr(MSR_KVM_SYSTEM_TIME_NEW, (DSM_GPA + (1 + id) * 4096) |
	      KVM_MSR_ENABLED);
	/* KVM fills it in before the next entry. */
	GUEST_ASSERT_1(READ_ONCE(pvti->version), id);
	GUEST_ASSERT_2(pvti->flags & PVCLOCK_TSC_STABLE_BIT, id, pvti->flags);
	GUEST_SYNC(1);
	for (r = 0; r < rounds; r++) {
		turn = 2 * r + id;
		while (READ_ONCE(TOKEN->turn) != turn)
			asm volatile("pause");
		seen_tsc = READ_ONCE(TOKEN->tsc);
		seen_ns = READ_ONCE(TOKEN->clock);
		tsc = rdtsc();
		ns = kvmclock_read(pvti);
		GUEST_ASSERT_4(tsc >= seen_tsc, turn, tsc, seen_tsc, id);
		GUEST_ASSERT_4(ns >= seen_ns, turn, ns, seen_ns, id);
		WRITE_ONCE(TOKEN->tsc, tsc);
		WRITE_ONCE(TOKEN->clock, ns);
		WRITE_ONCE(TOKEN->turn, turn + 1);
	}
	GUEST_DONE();
}

/* The defaults again, however the test ends. */
static void params_restore(void)
{
	dvm_kvm_param_write("dvm_clock_drift_ppm", 0);
	dvm_kvm_param_write("dvm_clock_period_ms", 1000);
}

static struct dvm_node nodes[2];
static struct dsm_node dsm[2];

static uint64_t tsc_offset(struct kvm_vcpu *vcpu)
{
	uint64_t off;

	vcpu_device_attr_get(vcpu, KVM_VCPU_TSC_CTRL, KVM_VCPU_TSC_OFFSET,
			     &off);
	return off;
}

static void set_tsc_offset(struct kvm_vcpu *vcpu, uint64_t off)
{
	vcpu_device_attr_set(vcpu, KVM_VCPU_TSC_CTRL, KVM_VCPU_TSC_OFFSET,
			     &off);
}

static struct kvm_clock_data get_clock(struct kvm_vm *vm)
{
	struct kvm_clock_data d = { };

	vm_ioctl(vm, KVM_GET_CLOCK, &d);
	return d;
}

/* Node 1's clocks AHEAD_NS ahead of node 0's, set before placement. */
static void put_node1_ahead(uint64_t khz)
{
	uint64_t off = tsc_offset(nodes[0].vcpus[0]) + AHEAD_NS / 1000000 * khz;
	struct kvm_clock_data d = { .clock = get_clock(nodes[0].vm).clock +
					     AHEAD_NS };

	set_tsc_offset(nodes[1].vcpus[0], off);
	set_tsc_offset(nodes[1].vcpus[1], off);
	vm_ioctl(nodes[1].vm, KVM_SET_CLOCK, &d);
}

/* Two nodes, vCPU 0 on node 0 and vCPU 1 on node 1, clocks 5 s apart. */
static void clock_cluster_up(void)
{
	uint64_t khz;
	int i;

	dvm_nodes_create(nodes, 2, 2, guest_code);
	dvm_nodes_join(nodes, 2, "JOIN");
	for (i = 0; i < 2; i++) {
		dsm[i].node = &nodes[i];
		dsm[i].id = i;
		dsm[i].fd = dsm_setup(nodes[i].vm, CLOCK_PAGES, &dsm[i].hva,
				      PG_LEVEL_4K);
		vcpu_args_set(nodes[i].vcpus[0], 2, 0, ROUNDS);
		vcpu_args_set(nodes[i].vcpus[1], 2, 1, ROUNDS);
	}
	khz = __vcpu_ioctl(nodes[0].vcpus[0], KVM_GET_TSC_KHZ, NULL);
	DVM_ASSERT(khz > 0, "KVM_GET_TSC_KHZ: %lu", (unsigned long)khz);
	put_node1_ahead(khz);
	dvm_place_round_robin(nodes, 2, 2);
	dvm_set_vcpus_all(nodes, 2);
	dvm_assert_all_ok(nodes, 2, "SET_LOCAL_VCPUS");
}

static int64_t diff(uint64_t a, uint64_t b)
{
	return (int64_t)(a - b);
}

/* What node 1's first check found and did, read back on both nodes. */
static void check_aligned(void)
{
	struct kvm_vm *vm1 = nodes[1].vm;
	uint64_t khz = __vcpu_ioctl(nodes[0].vcpus[0], KVM_GET_TSC_KHZ, NULL);
	uint64_t rtt = dvm_stat(vm1, "dvm_clock_rtt_ns");
	uint64_t found = dvm_stat(vm1, "dvm_clock_offset_ns");
	uint64_t off0 = tsc_offset(nodes[0].vcpus[0]);
	uint64_t off1 = tsc_offset(nodes[1].vcpus[1]);
	int64_t tsc_err = diff(off1, off0), slack_cycles;
	struct kvm_clock_data a, b, c;
	int64_t clock_err;

	DVM_ASSERT(dvm_stat(vm1, "dvm_clock_checks") >= 1 &&
		   dvm_stat(vm1, "dvm_clock_steps") >= 1 &&
		   !dvm_stat(vm1, "dvm_clock_failed") &&
		   !dvm_stat(nodes[0].vm, "dvm_clock_checks"),
		   "node 1: %lu checks, %lu steps, %lu failed; node 0: %lu checks",
		   (unsigned long)dvm_stat(vm1, "dvm_clock_checks"),
		   (unsigned long)dvm_stat(vm1, "dvm_clock_steps"),
		   (unsigned long)dvm_stat(vm1, "dvm_clock_failed"),
		   (unsigned long)dvm_stat(nodes[0].vm, "dvm_clock_checks"));
	DVM_ASSERT(found >= AHEAD_NS - 10000000 && found <= AHEAD_NS + 10000000,
		   "node 1's first check found %lu ns, want %llu +- 10 ms",
		   (unsigned long)found, AHEAD_NS);
	DVM_ASSERT(rtt > 0 && rtt < 1000000000, "round trip %lu ns",
		   (unsigned long)rtt);
	/* One round trip of slack: the bound is half of one, of some check. */
	slack_cycles = rtt * khz / 1000000;
	DVM_ASSERT(off1 == tsc_offset(nodes[1].vcpus[0]),
		   "node 1's vCPUs: TSC offsets %#lx and %#lx",
		   (unsigned long)off1,
		   (unsigned long)tsc_offset(nodes[1].vcpus[0]));
	DVM_ASSERT(llabs(tsc_err) <= slack_cycles,
		   "guest TSC: node 1 - node 0 = %ld cycles, round trip %lu ns (%ld cycles)",
		   (long)tsc_err, (unsigned long)rtt, (long)slack_cycles);

	a = get_clock(nodes[0].vm);
	b = get_clock(vm1);
	c = get_clock(nodes[0].vm);
	clock_err = diff(b.clock, a.clock + (c.clock - a.clock) / 2);
	DVM_ASSERT(llabs(clock_err) <= (int64_t)(rtt + (c.clock - a.clock)),
		   "kvmclock: node 1 - node 0 = %ld ns, round trip %lu ns",
		   (long)clock_err, (unsigned long)rtt);
	/* Node 0's vCPUs have not run: its master clock waits for them. */
	DVM_ASSERT(b.flags & KVM_CLOCK_TSC_STABLE,
		   "node 1's master clock: flags %#x", b.flags);
	printf("# node 1 found %lu ns, left %ld cycles / %ld ns (round trip %lu ns)\n",
	       (unsigned long)found, (long)tsc_err, (long)clock_err,
	       (unsigned long)rtt);
}

struct runner {
	struct kvm_vcpu *vcpu;
	pthread_t thread;
};

static void *run_vcpu(void *arg)
{
	struct runner *r = arg;

	dvm_run_sync(r->vcpu, 1, "kvmclock enabled");
	dvm_run_done(r->vcpu, "token rounds");
	return NULL;
}

static void test_align(const char *transport)
{
	struct runner run[2];
	struct token tok;
	int i;

	dvm_kvm_param_write("dvm_clock_drift_ppm", 0);
	clock_cluster_up();
	check_aligned();
	run[0].vcpu = nodes[0].vcpus[0];
	run[1].vcpu = nodes[1].vcpus[1];
	for (i = 0; i < 2; i++)
		pthread_create(&run[i].thread, NULL, run_vcpu, &run[i]);
	for (i = 0; i < 2; i++)
		pthread_join(run[i].thread, NULL);
	memcpy(&tok, dsm[0].hva, sizeof(tok));
	DVM_ASSERT(tok.turn == 2 * ROUNDS, "token at turn %lu, want %u",
		   (unsigned long)tok.turn, 2 * ROUNDS);
	for (i = 0; i < 2; i++)
		DVM_ASSERT(get_clock(nodes[i].vm).flags & KVM_CLOCK_TSC_STABLE,
			   "node %d: no master clock after the rounds", i);
	dsm_cluster_down(nodes, dsm, 2, CLOCK_PAGES);
	ksft_test_result_pass("%s: node 1's clocks, 5 s ahead, aligned at placement (TSC, kvmclock, master clock); %d token rounds across nodes, time never went back\n",
			      transport, ROUNDS);
}

/* Waits (bounded) for node 1's check count to reach @n. */
static void wait_checks(struct kvm_vm *vm, uint64_t n)
{
	uint64_t deadline = dvm_now_ns() + 60ull * 1000000000;

	while (dvm_stat(vm, "dvm_clock_checks") < n) {
		DVM_ASSERT(dvm_now_ns() < deadline,
			   "node 1: %lu clock checks after 60 s, want %lu",
			   (unsigned long)dvm_stat(vm, "dvm_clock_checks"),
			   (unsigned long)n);
		usleep(10000);
	}
}

static void test_drift(void)
{
	uint64_t checks, steps, err_max, err, rtt, rtt_prev, t0, injected;
	struct kvm_vm *vm1;

	dvm_kvm_param_write("dvm_clock_period_ms", PERIOD_MS);
	dvm_kvm_param_write("dvm_clock_drift_ppm", 0);
	clock_cluster_up();
	vm1 = nodes[1].vm;
	checks = dvm_stat(vm1, "dvm_clock_checks");
	steps = dvm_stat(vm1, "dvm_clock_steps");

	/* 20 checks, >= 2 s: >= 40 ms injected, >= 2 ms per period. */
	t0 = dvm_now_ns();
	dvm_kvm_param_write("dvm_clock_drift_ppm", DRIFT_PPM);
	wait_checks(vm1, checks + 20);
	dvm_kvm_param_write("dvm_clock_drift_ppm", 0);
	injected = (dvm_now_ns() - t0) / 1000000 * DRIFT_PPM;
	err_max = dvm_stat(vm1, "dvm_clock_error_max_ns");
	DVM_ASSERT(dvm_stat(vm1, "dvm_clock_steps") >= steps + 10,
		   "drift: %lu steps in %lu checks",
		   (unsigned long)(dvm_stat(vm1, "dvm_clock_steps") - steps),
		   (unsigned long)(dvm_stat(vm1, "dvm_clock_checks") - checks));
	/* Seen, and corrected: far below what was injected in all. */
	DVM_ASSERT(err_max >= 1000000 && err_max <= injected / 4,
		   "drift: largest error found %lu ns, want 1 ms to a quarter of the %lu ns injected",
		   (unsigned long)err_max, (unsigned long)injected);

	/* The last drift is stepped away; the checks after find none. */
	checks = dvm_stat(vm1, "dvm_clock_checks");
	wait_checks(vm1, checks + 3);
	rtt_prev = dvm_stat(vm1, "dvm_clock_rtt_ns");
	wait_checks(vm1, checks + 4);
	err = dvm_stat(vm1, "dvm_clock_error_ns");
	rtt = dvm_stat(vm1, "dvm_clock_rtt_ns");
	DVM_ASSERT(err <= rtt_prev + rtt,
		   "after the drift: error %lu ns, round trips %lu and %lu ns",
		   (unsigned long)err, (unsigned long)rtt_prev,
		   (unsigned long)rtt);
	DVM_ASSERT(!dvm_stat(vm1, "dvm_clock_failed"), "%lu checks failed",
		   (unsigned long)dvm_stat(vm1, "dvm_clock_failed"));
	params_restore();
	dsm_cluster_down(nodes, dsm, 2, CLOCK_PAGES);
	ksft_test_result_pass("drift of %d ppm, %lu us injected: node 1 stepped forward, largest error %lu us; after it, %lu ns (round trip %lu ns)\n",
			      DRIFT_PPM, (unsigned long)injected / 1000,
			      (unsigned long)err_max / 1000, (unsigned long)err,
			      (unsigned long)rtt);
}

static void test_catchup(void)
{
	uint64_t khz;
	int i, v;

	if (kvm_check_cap(KVM_CAP_TSC_CONTROL)) {
		ksft_test_result_skip("catchup: this host scales TSC rates\n");
		return;
	}
	dvm_nodes_create(nodes, 2, 2, guest_code);
	dvm_nodes_join(nodes, 2, "JOIN");
	khz = __vcpu_ioctl(nodes[0].vcpus[0], KVM_GET_TSC_KHZ, NULL);
	/* 2% fast everywhere: the same rate, but caught up in software. */
	for (i = 0; i < 2; i++)
		for (v = 0; v < 2; v++)
			vcpu_ioctl(nodes[i].vcpus[v], KVM_SET_TSC_KHZ,
				   (void *)(khz * 102 / 100));
	dvm_place_round_robin(nodes, 2, 2);
	dvm_set_vcpus_all(nodes, 2);
	for (i = 0; i < 2; i++)
		DVM_ASSERT(nodes[i].ret == -1 && nodes[i].err == ERANGE &&
			   nodes[i].place.failed_node == 0 &&
			   nodes[i].place.failed_vcpu == 0,
			   "node %d: ret %d errno %d, failed node %u vCPU %u",
			   i, nodes[i].ret, nodes[i].err,
			   nodes[i].place.failed_node,
			   nodes[i].place.failed_vcpu);
	dvm_free_all(nodes, 2);
	ksft_test_result_pass("catchup: vCPUs at %lu kHz, caught up in software, refused at placement (ERANGE)\n",
			      (unsigned long)(khz * 102 / 100));
}

int main(int argc, char *argv[])
{
	const char *rdma = getenv("DVM_RDMA_ADDR");

	setvbuf(stdout, NULL, _IOLBF, 0);
	ksft_print_header();
	dvm_require_abi();
	TEST_REQUIRE(kvm_has_cap(KVM_CAP_ADJUST_CLOCK));
	TEST_REQUIRE(!access("/sys/module/kvm/parameters/dvm_clock_drift_ppm",
			    W_OK));
	ksft_set_plan(4);
	atexit(params_restore);

	test_align("tcp");
	if (rdma && *rdma) {
		dvm_rdma_addr = rdma;
		test_align("rdma");
		dvm_rdma_addr = NULL;
	} else {
		ksft_test_result_skip("rdma: DVM_RDMA_ADDR (an IPv4 address of an rxe device) not set\n");
	}
	test_drift();
	test_catchup();
	ksft_finished();
}
