// SPDX-License-Identifier: GPL-2.0
/*
 * dvm_litmus_test: x86-TSO litmus tests (MP, SB, LB, 2+2W, IRIW) on the
 * coherent guest memory of a DVM cluster, each litmus thread a vCPU on a
 * different node (a VM in this process, over loopback TCP), each with and
 * without mfence between the two accesses of every thread. The outcomes
 * TSO forbids must never be seen; the histogram of all is printed.
 *
 * Iteration i uses its own x and y, in slot i % LITMUS_SLOTS of the x and
 * of the y array, which lie on different pages of the DSM, so that pages
 * move between the nodes while the threads race. A value written in
 * iteration i is (i + 1) << 2 | v: the value of an older iteration (it
 * must be that of the previous one that used the slot) is the litmus
 * test's initial 0. Every LITMUS_CHUNK iterations the threads meet at a
 * barrier in the DSM, which keeps them in step and makes reusing a slot
 * safe. Each thread records its outcome of every iteration in memory of
 * its own node, which this process reads at the end.
 *
 * An emulated host has one CPU: a vCPU runs until it faults on a page or
 * is preempted. So that the threads interleave within iterations, each
 * one yields, at random, between its two accesses of about one iteration
 * in LITMUS_YIELD_MASK + 1 (an exit, which orders like mfence).
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dvm_dsm.h"

/* Each node's own memory for its thread's outcomes, a byte an iteration. */
#define RES_GPA		(1ULL << 33)
#define RES_GVA		RES_GPA
#define RES_SLOT	11

#define LITMUS_ITERS		100000
#define LITMUS_MAX_ITERS	(16 * 1024 * 1024)
#define LITMUS_MAX_THREADS	4

/* Bytes between two slots of an array: 64 slots a page. */
#define LITMUS_STRIDE		64
/* Iterations between two barriers: 2 pages of each array. */
#define LITMUS_CHUNK		128
/* Chunks before a slot is used again: at least 2, see guest_check_2p2w(). */
#define LITMUS_GROUPS		4
#define LITMUS_SLOTS		(LITMUS_CHUNK * LITMUS_GROUPS)
#define ARRAY_PAGES		(LITMUS_SLOTS * LITMUS_STRIDE / PAGE_SIZE)

/*
 * The DSM: a page for each thread's progress, then the x array, then the
 * y array (each page's manager is page % nodes: they are spread).
 */
#define PROG_PAGE(t)		(t)
#define X_PAGE			LITMUS_MAX_THREADS
#define Y_PAGE			(X_PAGE + ARRAY_PAGES)
#define LITMUS_PAGES		(Y_PAGE + ARRAY_PAGES)

/*
 * The vCPU asks this process to yield the CPU (GUEST_SYNC(SYNC_YIELD)):
 * at a barrier after LITMUS_YIELD_SPINS spins, and between the two
 * accesses of an iteration (after the only one of IRIW's writers) when
 * its random number has the bits of LITMUS_YIELD_MASK clear.
 */
#define LITMUS_YIELD_SPINS	16
#define LITMUS_YIELD_MASK	31
#define SYNC_YIELD		1

enum { TEST_MP, TEST_SB, TEST_LB, TEST_2P2W, TEST_IRIW };

/* Guest */

static uint64_t *dsm_prog(uint64_t t)
{
	return (uint64_t *)(DSM_GVA + PROG_PAGE(t) * PAGE_SIZE);
}

static uint64_t *dsm_x(uint64_t i)
{
	return (uint64_t *)(DSM_GVA + X_PAGE * PAGE_SIZE +
			    (i % LITMUS_SLOTS) * LITMUS_STRIDE);
}

static uint64_t *dsm_y(uint64_t i)
{
	return (uint64_t *)(DSM_GVA + Y_PAGE * PAGE_SIZE +
			    (i % LITMUS_SLOTS) * LITMUS_STRIDE);
}

static void mfence(void)
{
	asm volatile("mfence" ::: "memory");
}

/* This node's thread's random numbers (xorshift64). */
static uint64_t guest_rnd;

/* Let the other threads in, now and then, in the middle of an iteration. */
static void guest_maybe_yield(void)
{
	guest_rnd ^= guest_rnd << 13;
	guest_rnd ^= guest_rnd >> 7;
	guest_rnd ^= guest_rnd << 17;
	if (!(guest_rnd & LITMUS_YIELD_MASK))
		GUEST_SYNC(SYNC_YIELD);
}

/* What iteration @i writes: v is 1 or 2. */
static uint64_t stamp(uint64_t i, uint64_t v)
{
	return (i + 1) << 2 | v;
}

/*
 * 1 if @val, read in iteration @i, was written in iteration @i, 0 if it
 * is what the slot held before: that of the previous iteration that used
 * the slot, or 0 if none did. Anything else is a value that should be
 * gone or never was.
 */
static uint8_t seen(uint64_t val, uint64_t i)
{
	uint64_t old = i >= LITMUS_SLOTS ? i + 1 - LITMUS_SLOTS : 0;

	GUEST_ASSERT_4((val >> 2) == i + 1 || (val >> 2) == old, val, i,
		       old, 0);
	return (val >> 2) == i + 1;
}

/*
 * Publish that thread @t did @c chunks; wait until all @nr threads did.
 * Under TSO, what a thread did in its chunks is visible (stores) or done
 * (loads) once its progress is seen.
 */
static void guest_barrier(uint64_t t, uint64_t nr, uint64_t c)
{
	uint64_t u, spins;

	WRITE_ONCE(*dsm_prog(t), c);
	for (u = 0; u < nr; u++) {
		spins = 0;
		while (READ_ONCE(*dsm_prog(u)) < c) {
			asm volatile("pause");
			if (++spins == LITMUS_YIELD_SPINS) {
				GUEST_SYNC(SYNC_YIELD);
				spins = 0;
			}
		}
	}
}

/*
 * What each thread of each test does: up to two accesses, a write of a
 * value (1 or 2) or a read, to x or y.
 */
enum { OP_NONE, OP_READ, OP_WRITE };
enum { VAR_X, VAR_Y };

struct litmus_access {
	uint8_t op;
	uint8_t var;
	uint8_t val;
};

#define W(v, n)	{ OP_WRITE, VAR_##v, n }
#define R(v)	{ OP_READ, VAR_##v, 0 }

static const struct litmus_access
litmus_prog[][LITMUS_MAX_THREADS][2] = {
	[TEST_MP] = { { W(X, 1), W(Y, 1) }, { R(Y), R(X) } },
	[TEST_SB] = { { W(X, 1), R(Y) }, { W(Y, 1), R(X) } },
	[TEST_LB] = { { R(X), W(Y, 1) }, { R(Y), W(X, 1) } },
	[TEST_2P2W] = { { W(X, 1), W(Y, 2) }, { W(Y, 1), W(X, 2) } },
	[TEST_IRIW] = { { W(X, 1) }, { W(Y, 1) }, { R(X), R(Y) },
			{ R(Y), R(X) } },
};

/* One access of iteration @i; a read returns seen() of the value. */
static uint8_t guest_access(const struct litmus_access *a, uint64_t i)
{
	uint64_t *p = a->var == VAR_X ? dsm_x(i) : dsm_y(i);

	if (a->op == OP_WRITE)
		WRITE_ONCE(*p, stamp(i, a->val));
	return a->op == OP_READ ? seen(READ_ONCE(*p), i) : 0;
}

/* Iteration @i of thread @t: its outcome, bit 0 its first read. */
static uint8_t guest_iter(uint64_t test, uint64_t t, uint64_t i, bool fence)
{
	const struct litmus_access *a = litmus_prog[test][t];
	uint8_t out, reads;

	GUEST_ASSERT_2(a[0].op != OP_NONE, test, t);
	out = guest_access(&a[0], i);
	reads = a[0].op == OP_READ;
	if (fence && a[1].op != OP_NONE)
		mfence();
	guest_maybe_yield();
	if (a[1].op != OP_NONE)
		out |= guest_access(&a[1], i) << reads;
	return out;
}

/*
 * 2+2W: the final x and y of chunk @c, once both threads are past it and
 * before either uses its slots again (LITMUS_GROUPS >= 2). Bit 0: x is
 * 2, bit 1: y is 2.
 */
static void guest_check_2p2w(uint8_t *res, uint64_t c, uint64_t iters)
{
	uint64_t i, x, y;

	for (i = c * LITMUS_CHUNK; i < (c + 1) * LITMUS_CHUNK && i < iters;
	     i++) {
		x = READ_ONCE(*dsm_x(i));
		y = READ_ONCE(*dsm_y(i));
		GUEST_ASSERT_4(x == stamp(i, 1) || x == stamp(i, 2), x, y, i, 1);
		GUEST_ASSERT_4(y == stamp(i, 1) || y == stamp(i, 2), x, y, i, 2);
		res[i] = (x & 3) - 1 + (((y & 3) - 1) << 1);
	}
}

static void guest_main(uint64_t test, uint64_t t, uint64_t nr,
		       uint64_t iters, uint64_t fence)
{
	uint8_t *res = (uint8_t *)RES_GVA;
	uint64_t c, i;

	guest_rnd = 0x9e3779b97f4a7c15ULL * (t + 1);
	for (c = 0; c * LITMUS_CHUNK < iters; c++) {
		guest_barrier(t, nr, c);
		if (test == TEST_2P2W && t == 0 && c)
			guest_check_2p2w(res, c - 1, iters);
		for (i = c * LITMUS_CHUNK;
		     i < (c + 1) * LITMUS_CHUNK && i < iters; i++)
			res[i] = guest_iter(test, t, i, fence);
	}
	guest_barrier(t, nr, c);
	if (test == TEST_2P2W && t == 0 && c)
		guest_check_2p2w(res, c - 1, iters);
	GUEST_DONE();
}

/* Host */

struct litmus {
	const char *name;
	uint64_t test;
	int nr_threads;
	/* The outcome: a bit each of @vals, named so, clear means @base. */
	int nr_vals;
	const char *vals[4];
	int base;
	/* Where thread t's outcome goes in it; -1: none. */
	int shift[LITMUS_MAX_THREADS];
	/* The outcome TSO forbids, -1 if none; only with mfence? */
	int forbidden;
	bool forbidden_fenced;
};

static const struct litmus litmus_tests[] = {
	{ "MP", TEST_MP, 2, 2, { "r0", "r1" }, 0, { -1, 0 }, 1, false },
	{ "SB", TEST_SB, 2, 2, { "r0", "r1" }, 0, { 0, 1 }, 0, true },
	{ "LB", TEST_LB, 2, 2, { "r0", "r1" }, 0, { 0, 1 }, 3, false },
	{ "2+2W", TEST_2P2W, 2, 2, { "x", "y" }, 1, { 0, -1 }, 0, false },
	{ "IRIW", TEST_IRIW, 4, 4, { "r0", "r1", "r2", "r3" }, 0,
	  { -1, -1, 0, 2 }, 1 | 4, false },
};

struct litmus_node {
	struct dsm_node *d;
	uint64_t yields;
	pthread_t thread;
};

static struct dvm_node nodes[DVM_MAX_TEST_NODES];
static struct dsm_node dsm[DVM_MAX_TEST_NODES];
static struct litmus_node ln[DVM_MAX_TEST_NODES];

/*
 * @n nodes of @n vCPUs each, vCPU i on node i, joined; the DSM mapped in
 * each; @res_pages of each node's own memory for its outcomes.
 */
static void cluster_up(int n, uint64_t res_pages)
{
	int i;

	dsm_cluster_up(nodes, dsm, n, n, guest_main, LITMUS_PAGES,
		       PG_LEVEL_4K);
	for (i = 0; i < n; i++) {
		ln[i].d = &dsm[i];
		ln[i].yields = 0;
		vm_userspace_mem_region_add(nodes[i].vm, VM_MEM_SRC_ANONYMOUS,
					    RES_GPA, RES_SLOT, res_pages, 0);
		virt_map(nodes[i].vm, RES_GVA, RES_GPA, res_pages);
	}
}

static void cluster_down(int n)
{
	dsm_cluster_down(nodes, dsm, n, LITMUS_PAGES);
}

/* Run node @i's vCPU (id i) to GUEST_DONE; yield when it asks. */
static void *run_node(void *arg)
{
	struct litmus_node *l = arg;
	struct kvm_vcpu *vcpu = l->d->node->vcpus[l->d->id];
	int id = l->d->id;
	struct ucall uc;

	for (;;) {
		DVM_ASSERT_OK(__vcpu_run(vcpu), "KVM_RUN");
		DVM_ASSERT(vcpu->run->exit_reason == KVM_EXIT_IO,
			   "node %d: exit reason %u", id,
			   vcpu->run->exit_reason);
		switch (get_ucall(vcpu, &uc)) {
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT_4(uc, "values %#lx, %#lx, %#lx, %#lx");
			break;
		case UCALL_SYNC:
			DVM_ASSERT(uc.args[1] == SYNC_YIELD,
				   "node %d: GUEST_SYNC(%lu)", id,
				   (unsigned long)uc.args[1]);
			l->yields++;
			sched_yield();
			continue;
		case UCALL_DONE:
			return NULL;
		default:
			TEST_FAIL("node %d: unexpected ucall", id);
		}
	}
}

/* "MP mfence: r0=1 r1=0" */
static const char *outcome_str(const struct litmus *l, const char *name,
			       int o, char *buf, size_t size)
{
	int len, v;

	len = snprintf(buf, size, "%s %s:", l->name, name);
	for (v = 0; v < l->nr_vals; v++)
		len += snprintf(buf + len, size - len, " %s=%d", l->vals[v],
				l->base + !!(o & (1 << v)));
	return buf;
}

static uint64_t dsm_stat_sum(int n, const char *name)
{
	uint64_t sum = 0;
	int i;

	for (i = 0; i < n; i++)
		sum += dvm_stat(nodes[i].vm, name);
	return sum;
}

static uint64_t dsm_stat_max(int n, const char *name)
{
	uint64_t max = 0;
	int i;

	for (i = 0; i < n; i++)
		max = max(max, dvm_stat(nodes[i].vm, name));
	return max;
}

static void litmus_run(const struct litmus *l, uint64_t iters, bool fence)
{
	uint64_t hist[16] = { 0 }, sum = 0, forbidden = 0, t0, ms, yields = 0;
	uint64_t fetches;
	int distinct;
	uint64_t res_pages = (iters + PAGE_SIZE - 1) / PAGE_SIZE, inv;
	bool check = l->forbidden >= 0 && (fence || !l->forbidden_fenced);
	uint8_t *res[LITMUS_MAX_THREADS] = { NULL };
	int n = l->nr_threads, nr_out = 1 << l->nr_vals, i, r;
	const char *name = fence ? "mfence" : "no fence";
	char line[128];
	uint64_t it;
	int o;

	cluster_up(n, res_pages);
	for (i = 0; i < n; i++)
		vcpu_args_set(nodes[i].vcpus[i], 5, l->test, (uint64_t)i,
			      (uint64_t)n, iters, (uint64_t)fence);
	t0 = dvm_now_ns();
	for (i = 0; i < n; i++) {
		r = pthread_create(&ln[i].thread, NULL, run_node, &ln[i]);
		TEST_ASSERT(!r, "pthread_create: %d", r);
	}
	for (i = 0; i < n; i++)
		pthread_join(ln[i].thread, NULL);
	ms = (dvm_now_ns() - t0) / 1000000;

	for (i = 0; i < n; i++) {
		yields += ln[i].yields;
		if (l->shift[i] >= 0)
			res[i] = addr_gpa2hva(nodes[i].vm, RES_GPA);
	}
	for (it = 0; it < iters; it++) {
		o = 0;
		for (i = 0; i < n; i++)
			if (res[i])
				o |= res[i][it] << l->shift[i];
		DVM_ASSERT(o < nr_out, "%s %s: iteration %lu: outcome %#x",
			   l->name, name, (unsigned long)it, o);
		hist[o]++;
	}
	for (o = 0; o < nr_out; o++) {
		ksft_print_msg("%s: %lu%s\n",
			       outcome_str(l, name, o, line, sizeof(line)),
			       (unsigned long)hist[o],
			       check && o == l->forbidden ? " (forbidden)" : "");
		sum += hist[o];
	}
	inv = dsm_stat_sum(n, "dvm_dsm_inv_recv");
	ksft_print_msg("%s %s: %lu ms, DSM faults %lu (read %lu, write %lu, upgrade %lu, slowest %lu us), invalidations %lu, rejected %lu, yields %lu\n",
		       l->name, name, (unsigned long)ms,
		       (unsigned long)dsm_stat_sum(n, "dvm_dsm_fault_count"),
		       (unsigned long)dsm_stat_sum(n, "dvm_dsm_read_faults"),
		       (unsigned long)dsm_stat_sum(n, "dvm_dsm_write_faults"),
		       (unsigned long)dsm_stat_sum(n, "dvm_dsm_upgrades"),
		       (unsigned long)dsm_stat_max(n, "dvm_dsm_fault_max_ns") /
		       1000, (unsigned long)inv,
		       (unsigned long)dsm_stat_sum(n, "dvm_dsm_rejected"),
		       (unsigned long)yields);
	DVM_ASSERT(sum == iters, "%s %s: the histogram counts %lu, want %lu",
		   l->name, name, (unsigned long)sum, (unsigned long)iters);
	if (check)
		forbidden = hist[l->forbidden];
	DVM_ASSERT(!forbidden, "%s: forbidden, seen %lu times in %lu iterations",
		   outcome_str(l, name, l->forbidden, line, sizeof(line)),
		   (unsigned long)forbidden, (unsigned long)iters);
	/* Else the test tested little. */
	DVM_ASSERT(inv, "%s %s: no page was invalidated", l->name, name);
	for (o = 0, distinct = 0; o < nr_out; o++)
		distinct += !!hist[o];
	fetches = dsm_stat_sum(n, "dvm_dsm_remote_fetches");
	ksft_print_msg("%s %s: %d distinct outcomes, %lu remote fetches\n",
		       l->name, name, distinct, (unsigned long)fetches);
	/* The threads interleaved: data moved between the nodes throughout. */
	DVM_ASSERT(distinct >= 2 || fetches >= iters / 50,
		   "%s %s: one outcome only and %lu remote fetches in %lu iterations",
		   l->name, name, (unsigned long)fetches, (unsigned long)iters);
	DVM_ASSERT(fetches > 0, "%s %s: no page moved between nodes", l->name,
		   name);
	cluster_down(n);
	ksft_test_result_pass("%s %s: %lu iterations, %s\n", l->name, name,
			      (unsigned long)iters,
			      check ? "no forbidden outcome" :
				      "nothing forbidden");
}

int main(int argc, char *argv[])
{
	uint64_t iters = LITMUS_ITERS;
	char *end;
	int i;

	/* Output is often a file: keep lines in order and complete. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1) {
		iters = strtoull(argv[1], &end, 0);
		if (*end || !iters || iters > LITMUS_MAX_ITERS)
			ksft_exit_fail_msg("usage: %s [iterations, 1..%d]\n",
					   argv[0], LITMUS_MAX_ITERS);
	}
	ksft_print_header();
	dvm_require_abi();
	ksft_set_plan(2 * ARRAY_SIZE(litmus_tests));

	for (i = 0; i < ARRAY_SIZE(litmus_tests); i++) {
		litmus_run(&litmus_tests[i], iters, false);
		litmus_run(&litmus_tests[i], iters, true);
	}
	ksft_finished();
}
