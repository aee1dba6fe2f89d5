// SPDX-License-Identifier: GPL-2.0
/*
 * dvm_dsm_test: the coherent guest memory of a DVM cluster, with every
 * node a VM in this host over loopback TCP. Each node maps the cluster's
 * memory file at DSM_GPA in its guest and at m->hva here; guest vCPUs,
 * KVM itself and this process all access it through the DSM.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include "dvm_dsm.h"

/* Guest programs; their arguments: node id, nodes, iterations. */
enum {
	PROG_PINGPONG, PROG_COUNTERS, PROG_KVMCLOCK, PROG_FALSE_SHARING,
	PROG_USER, PROG_EMULATED, PROG_READ_ONE, PROG_ALIAS, PROG_SOAK,
	PROG_GUEST_PT,
};

/*
 * Soak: 1 GiB, every vCPU adds pseudo-random values at pseudo-random
 * words (and reads others) until the host raises the stop flag; the
 * final memory is then known from the operations alone.
 */
#define SOAK_PAGES	(1ULL << 18)
#define SOAK_WORDS	(SOAK_PAGES * 512)
#define SOAK_SECONDS	60
#define PG_SOAK_STOP	0	/* page 0, word 0: the stop flag */

/* Guest addresses besides the memory's own mapping. */
#define ALIAS_GPA	(DSM_GPA + (1ULL << 30))
#define ALIAS_GVA	ALIAS_GPA
#define MOVED_GPA	(DSM_GPA + (2ULL << 30))
#define MOVED_GVA	MOVED_GPA
#define ALIAS_SLOT	11
#define MMIO_GPA	(DSM_GPA - (1ULL << 30))
#define MMIO_GVA	MMIO_GPA

/* Pages used by one test each. */
#define PG_USER		32	/* 8 pages */
#define PG_EMULATED	42
#define PG_FALSE	44
#define PG_PINNED	50
#define PG_ALIAS	52
#define PG_PT		54	/* a guest page table */
#define PG_TARGET	55	/* 2 pages, mapped by PG_PT in turn */
#define PG_PT_TURN	57
#define USER_WORD(p, w)	((p) * 1000 + (w))
#define EMULATED_MAGIC	0x5eed5eedcafef00dULL

static void guest_pingpong(uint64_t id, uint64_t nr, uint64_t rounds)
{
	dsm_pingpong(id, nr, rounds);
	GUEST_DONE();
}

static void guest_counters(uint64_t id, uint64_t iters)
{
	dsm_counters(id, iters);
	GUEST_DONE();
}

#define MSR_KVM_SYSTEM_TIME_NEW	0x4b564d01

/*
 * Node 1 points its kvmclock at page 40, which node 0 wrote last: KVM
 * writes the pvclock structure into a page another node owned. Node 0
 * then reads what KVM wrote there.
 */
static void guest_kvmclock(uint64_t id, uint64_t nr, uint64_t unused)
{
	uint64_t *flag = dsm_word(41, 0);
	uint32_t *pv = (uint32_t *)dsm_word(40, 0);

	if (id == 0) {
		WRITE_ONCE(*dsm_word(40, 0), 0xdeadbeefdeadbeefULL);
		WRITE_ONCE(*flag, 1);
		while (READ_ONCE(*flag) != 2)
			asm volatile("pause");
		/* version even and not 0, tsc_to_system_mul set */
		GUEST_ASSERT_1(READ_ONCE(pv[0]) && !(READ_ONCE(pv[0]) & 1),
			       READ_ONCE(pv[0]));
		GUEST_ASSERT_1(READ_ONCE(pv[6]), READ_ONCE(pv[6]));
	} else if (id == 1) {
		while (READ_ONCE(*flag) != 1)
			asm volatile("pause");
		wrmsr(MSR_KVM_SYSTEM_TIME_NEW, DSM_GPA + 40 * 4096 + 1);
		/* KVM fills it in before the next entry. */
		GUEST_SYNC(1);
		GUEST_ASSERT_1(READ_ONCE(pv[0]) && !(READ_ONCE(pv[0]) & 1),
			       READ_ONCE(pv[0]));
		WRITE_ONCE(*flag, 2);
	}
	GUEST_DONE();
}

/* Two vCPUs on two nodes write different words of one page. */
static void guest_false_sharing(uint64_t id, uint64_t iters)
{
	uint64_t *mine = dsm_word(PG_FALSE, id * 8);
	uint64_t i;

	for (i = 0; i < iters; i++)
		WRITE_ONCE(*mine, READ_ONCE(*mine) + 1);
	GUEST_DONE();
}

/* What this process wrote through another node's mapping, then ours. */
static void guest_user(void)
{
	uint64_t p, w;

	for (p = PG_USER; p < PG_USER + 8; p++)
		for (w = 0; w < 512; w += 61) {
			GUEST_ASSERT_2(READ_ONCE(*dsm_word(p, w)) ==
				       USER_WORD(p, w),
				       READ_ONCE(*dsm_word(p, w)),
				       USER_WORD(p, w));
			WRITE_ONCE(*dsm_word(p, w), USER_WORD(p, w) + 7);
		}
	GUEST_DONE();
}

/*
 * MOVSQ from the memory to MMIO: KVM emulates it and reads the source
 * operand itself, from a page another node owned.
 */
static void guest_emulated(void)
{
	asm volatile("movsq"
		     : : "S"(dsm_word(PG_EMULATED, 0)), "D"(MMIO_GVA)
		     : "memory");
	GUEST_DONE();
}

static void guest_read_one(void)
{
	GUEST_SYNC(READ_ONCE(*dsm_word(PG_PINNED, 0)));
	GUEST_DONE();
}

static uint64_t *alias_word(uint64_t base, uint64_t word)
{
	return (uint64_t *)(base + PG_ALIAS * 4096 + word * 8);
}

/*
 * One page at two guest addresses (two memslots, one file range), then
 * at a third after the memslot moved. Values come from another node too.
 */
static void guest_alias(void)
{
	WRITE_ONCE(*alias_word(DSM_GVA, 0), 1);
	GUEST_ASSERT_1(READ_ONCE(*alias_word(ALIAS_GVA, 0)) == 1,
		       READ_ONCE(*alias_word(ALIAS_GVA, 0)));
	WRITE_ONCE(*alias_word(ALIAS_GVA, 1), 2);
	GUEST_ASSERT_1(READ_ONCE(*alias_word(DSM_GVA, 1)) == 2,
		       READ_ONCE(*alias_word(DSM_GVA, 1)));
	/* The host writes 3 and 4 through another node. */
	GUEST_SYNC(1);
	GUEST_ASSERT_1(READ_ONCE(*alias_word(ALIAS_GVA, 0)) == 3,
		       READ_ONCE(*alias_word(ALIAS_GVA, 0)));
	GUEST_ASSERT_1(READ_ONCE(*alias_word(DSM_GVA, 1)) == 4,
		       READ_ONCE(*alias_word(DSM_GVA, 1)));
	/* The host moves the main memslot to MOVED_GPA. */
	GUEST_SYNC(2);
	GUEST_ASSERT_1(READ_ONCE(*alias_word(MOVED_GVA, 0)) == 3,
		       READ_ONCE(*alias_word(MOVED_GVA, 0)));
	WRITE_ONCE(*alias_word(MOVED_GVA, 2), 5);
	GUEST_ASSERT_1(READ_ONCE(*alias_word(ALIAS_GVA, 2)) == 5,
		       READ_ONCE(*alias_word(ALIAS_GVA, 2)));
	GUEST_DONE();
}

static uint64_t soak_next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static uint64_t soak_seed(uint64_t id)
{
	return 0x9e3779b97f4a7c15ULL * (id + 1);
}

/* Word 0 of page 0 is the stop flag: the soak never touches page 0. */
static uint64_t soak_word(uint64_t x)
{
	return 512 + (x >> 11) % (SOAK_WORDS - 512);
}

static void guest_soak(uint64_t id)
{
	uint64_t x = soak_seed(id), ops = 0, sum = 0, r;
	uint64_t *mem = (uint64_t *)DSM_GVA;

	while (!READ_ONCE(mem[PG_SOAK_STOP])) {
		for (r = 0; r < 64; r++, ops++) {
			soak_next(&x);
			if (!(x & 3))
				sum += READ_ONCE(mem[soak_word(x)]);
			else
				asm volatile("lock addq %1, %0"
					     : "+m"(mem[soak_word(x)])
					     : "r"((x >> 40) | 1));
		}
	}
	GUEST_SYNC(ops);
	GUEST_DONE();
}

/*
 * Guest page tables in the coherent memory: page PG_PT is the last-level
 * table of the 2 MiB at PT_GVA (every node's upper tables point at it).
 * The two vCPUs take turns: one points PT_GVA at the other target page
 * and reads through it, then the other flushes its TLB as a guest kernel
 * does after a mapping changed (INVLPG, or a CR3 reload on odd rounds)
 * and must read the new target. Under shadow paging each node's KVM
 * built its shadow of PG_PT from its own copy; a write on another node
 * never traps here, so the copy's invalidation has to drop that shadow.
 */
#define PT_GVA		(DSM_GVA + (3ULL << 30))
#define PT_INDEX	((PT_GVA >> 12) & 511)
#define TARGET_MAGIC	0x7a67e7f00d000000ULL
#define PT_FLAGS	(PTE_PRESENT_MASK | PTE_WRITABLE_MASK | \
			 PTE_ACCESSED_MASK | PTE_DIRTY_MASK)

static uint64_t pt_target_pte(uint64_t t)
{
	return (DSM_GPA + (PG_TARGET + t) * 4096) | PT_FLAGS;
}

static void pt_flush(uint64_t round)
{
	uint64_t cr3;

	if (round & 1) {
		asm volatile("mov %%cr3, %0; mov %0, %%cr3"
			     : "=r"(cr3) : : "memory");
	} else {
		asm volatile("invlpg (%0)" : : "r"(PT_GVA) : "memory");
	}
}

static void guest_pt(uint64_t id, uint64_t rounds)
{
	uint64_t *turn = dsm_word(PG_PT_TURN, 0), r, t;
	uint64_t *ready = dsm_word(PG_PT_TURN, 1);
	uint64_t *via = (uint64_t *)PT_GVA;

	/* Both nodes build their shadow of the table (target 0) first. */
	GUEST_ASSERT_1(READ_ONCE(*via) == TARGET_MAGIC, READ_ONCE(*via));
	__atomic_fetch_add(ready, 1, __ATOMIC_SEQ_CST);
	while (READ_ONCE(*ready) != 2)
		asm volatile("pause");
	for (r = 0; r < rounds; r++) {
		t = (r + 1) & 1;
		if (r % 2 == id) {
			while (READ_ONCE(*turn) != 2 * r)
				asm volatile("pause");
			WRITE_ONCE(*dsm_word(PG_PT, PT_INDEX),
				   pt_target_pte(t));
			asm volatile("invlpg (%0)" : : "r"(PT_GVA) : "memory");
			GUEST_ASSERT_2(READ_ONCE(*via) == (TARGET_MAGIC | t),
				       READ_ONCE(*via), r);
			WRITE_ONCE(*turn, 2 * r + 1);
		} else {
			while (READ_ONCE(*turn) != 2 * r + 1)
				asm volatile("pause");
			pt_flush(r);
			GUEST_ASSERT_2(READ_ONCE(*via) == (TARGET_MAGIC | t),
				       READ_ONCE(*via), r);
			WRITE_ONCE(*turn, 2 * r + 2);
		}
	}
	GUEST_DONE();
}

static void guest_main(uint64_t prog, uint64_t id, uint64_t nr,
		       uint64_t iters)
{
	switch (prog) {
	case PROG_PINGPONG:
		guest_pingpong(id, nr, iters);
		break;
	case PROG_COUNTERS:
		guest_counters(id, iters);
		break;
	case PROG_KVMCLOCK:
		guest_kvmclock(id, nr, iters);
		break;
	case PROG_FALSE_SHARING:
		guest_false_sharing(id, iters);
		break;
	case PROG_USER:
		guest_user();
		break;
	case PROG_EMULATED:
		guest_emulated();
		break;
	case PROG_READ_ONE:
		guest_read_one();
		break;
	case PROG_ALIAS:
		guest_alias();
		break;
	case PROG_SOAK:
		guest_soak(id);
		break;
	case PROG_GUEST_PT:
		guest_pt(id, iters);
		break;
	default:
		GUEST_ASSERT_1(0, prog);
	}
}

/* One vCPU run in a thread of its own, on the node it is placed on. */
struct dsm_runner {
	struct kvm_vcpu *vcpu;
	int node;
	int id;
	uint64_t last_sync;
	uint64_t mmio_data;
	bool mmio_seen;
	bool stop_at_sync;	/* return at the first GUEST_SYNC */
	bool done;		/* the thread finished */
	uint32_t exit_reason;	/* of the last KVM_RUN */
	pthread_t thread;
};

static struct dvm_node nodes[DVM_MAX_TEST_NODES];
static struct dsm_node dsm[DVM_MAX_TEST_NODES];
static struct dsm_runner runners[DVM_MAX_TEST_NODES];
static int nr_nodes, nr_vcpus;

static int __dsm_pin(struct kvm_vm *vm, unsigned long cmd, uint64_t off,
		     uint64_t size)
{
	struct kvm_dvm_pin p = { .offset = off, .size = size };

	/* Raw: the library's helper wants a constant command. */
	return ioctl(vm->fd, cmd, &p);
}

/*
 * @n nodes and @vcpus vCPUs placed round robin (vCPU v on node v % n),
 * joined, memory mapped in each node's guest and here.
 */
static uint64_t nr_pages = DSM_PAGES;

static void cluster_up_vcpus(int n, int vcpus)
{
	nr_nodes = n;
	nr_vcpus = vcpus;
	dsm_cluster_up(nodes, dsm, n, vcpus, guest_main, nr_pages,
		       nr_pages > DSM_PAGES ? PG_LEVEL_2M : PG_LEVEL_4K);
}

static void cluster_up(int n)
{
	cluster_up_vcpus(n, n);
}

static void cluster_down(int n)
{
	dsm_cluster_down(nodes, dsm, n, nr_pages);
}

static uint64_t dsm_stat(int i, const char *name)
{
	return dvm_stat(nodes[i].vm, name);
}

/* Run a vCPU to GUEST_DONE, answering GUEST_SYNC and MMIO writes. */
static void *run_vcpu(void *arg)
{
	struct dsm_runner *rn = arg;
	struct kvm_vcpu *vcpu = rn->vcpu;
	struct kvm_run *run = vcpu->run;
	struct ucall uc;

	for (;;) {
		DVM_ASSERT_OK(__vcpu_run(vcpu), "KVM_RUN");
		rn->exit_reason = run->exit_reason;
		if (run->exit_reason == KVM_EXIT_DVM_BROKEN)
			break;
		if (run->exit_reason == KVM_EXIT_MMIO) {
			DVM_ASSERT(run->mmio.is_write && run->mmio.len == 8 &&
				   run->mmio.phys_addr == MMIO_GPA,
				   "vCPU %d: MMIO %s of %u at %llx", rn->id,
				   run->mmio.is_write ? "write" : "read",
				   run->mmio.len, run->mmio.phys_addr);
			memcpy(&rn->mmio_data, run->mmio.data, 8);
			rn->mmio_seen = true;
			continue;
		}
		DVM_ASSERT(run->exit_reason == KVM_EXIT_IO,
			   "vCPU %d on node %d: exit reason %u", rn->id,
			   rn->node, run->exit_reason);
		switch (get_ucall(vcpu, &uc)) {
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT_2(uc, "values %lx, %lx");
			break;
		case UCALL_SYNC:
			rn->last_sync = uc.args[1];
			if (rn->stop_at_sync)
				goto out;
			continue;
		case UCALL_DONE:
			goto out;
		default:
			TEST_FAIL("vCPU %d: unexpected ucall", rn->id);
		}
	}
out:
	WRITE_ONCE(rn->done, true);
	return NULL;
}

static struct dsm_runner *runner_start(int vcpu, uint64_t prog,
				       uint64_t iters, bool stop_at_sync)
{
	struct dsm_runner *rn = &runners[vcpu];

	memset(rn, 0, sizeof(*rn));
	rn->node = vcpu % nr_nodes;
	rn->id = vcpu;
	rn->vcpu = nodes[rn->node].vcpus[vcpu];
	rn->stop_at_sync = stop_at_sync;
	vcpu_args_set(rn->vcpu, 4, prog, (uint64_t)vcpu, (uint64_t)nr_vcpus,
		      iters);
	pthread_create(&rn->thread, NULL, run_vcpu, rn);
	return rn;
}

/* Run again, to its next stop, a runner whose thread was joined. */
static void runner_resume_joined(struct dsm_runner *rn)
{
	rn->done = false;
	run_vcpu(rn);
}

/* Every vCPU runs @prog, each on its node, until all are done. */
static void run_all(uint64_t prog, uint64_t iters)
{
	int v;

	for (v = 0; v < nr_vcpus; v++)
		runner_start(v, prog, iters, false);
	for (v = 0; v < nr_vcpus; v++)
		pthread_join(runners[v].thread, NULL);
}

static uint64_t *hptr(int node, uint64_t page, uint64_t word)
{
	return dsm_hptr(dsm[node].hva, page, word);
}

static uint64_t hword(int node, uint64_t page, uint64_t word)
{
	return dsm_hword(dsm[node].hva, page, word);
}

static void test_abi(void)
{
	struct dvm_node *nd = &nodes[0];
	struct kvm_vm *vm;
	int fd;

	vm = vm_create_barebones();
	DVM_ASSERT_ERRNO(__dsm_create(vm, DSM_SIZE, 0), ENOTCONN,
			 "CREATE_MEMORY before JOIN");
	kvm_vm_free(vm);

	dvm_nodes_create(nodes, 2, 0, NULL);
	dvm_nodes_join(nodes, 2, "JOIN");
	DVM_ASSERT_ERRNO(__dsm_pin(nd->vm, KVM_DVM_PIN, 0, 4096), ENXIO,
			 "PIN without memory");
	DVM_ASSERT_ERRNO(__dsm_create(nd->vm, DSM_SIZE, 1), EINVAL, "flags");
	DVM_ASSERT_ERRNO(__dsm_create(nd->vm, 0, 0), EINVAL, "size 0");
	DVM_ASSERT_ERRNO(__dsm_create(nd->vm, 4095, 0), EINVAL, "size 4095");
	DVM_ASSERT_ERRNO(__dsm_create(nd->vm, KVM_DVM_MAX_MEMORY + 4096, 0),
			 EINVAL, "size above the maximum");
	fd = __dsm_create(nd->vm, DSM_SIZE, 0);
	DVM_ASSERT(fd >= 0, "CREATE_MEMORY: %s", strerror(errno));
	DVM_ASSERT_ERRNO(__dsm_create(nd->vm, DSM_SIZE, 0), EEXIST,
			 "CREATE_MEMORY twice");
	DVM_ASSERT(mmap(NULL, DSM_SIZE, PROT_READ, MAP_PRIVATE, fd, 0) ==
		   MAP_FAILED && errno == EINVAL, "MAP_PRIVATE allowed");
	DVM_ASSERT_ERRNO(__dsm_pin(nd->vm, KVM_DVM_PIN, 1, 4096), EINVAL,
			 "PIN unaligned");
	DVM_ASSERT_ERRNO(__dsm_pin(nd->vm, KVM_DVM_PIN, 0, 0), EINVAL,
			 "PIN size 0");
	DVM_ASSERT_ERRNO(__dsm_pin(nd->vm, KVM_DVM_PIN, DSM_SIZE - 4096, 8192),
			 EINVAL, "PIN past the end");
	DVM_ASSERT_ERRNO(__dsm_pin(nd->vm, KVM_DVM_UNPIN, 0, 4096), EINVAL,
			 "UNPIN of a page not pinned");
	close(fd);
	dvm_free_all(nodes, 2);
	ksft_test_result_pass("CREATE_MEMORY, mmap and PIN: bad arguments refused\n");
}

/* This process writes on one node and reads on another, every page. */
static void test_user(int n)
{
	uint64_t p, w, before, after;
	int i, from, to;

	cluster_up(n);
	before = dsm_stat(1, "dvm_dsm_zero_fills");
	DVM_ASSERT(hword(1, 5, 0) == 0, "a never written page is not zero");
	after = dsm_stat(1, "dvm_dsm_zero_fills");
	DVM_ASSERT(after == before + 1, "zero fills %lu -> %lu",
		   (unsigned long)before, (unsigned long)after);
	for (i = 0; i < 4 * n; i++) {
		from = i % n;
		to = (i + 1 + i / n) % n;
		for (p = 0; p < DSM_PAGES; p++)
			for (w = 0; w < 512; w += 97)
				WRITE_ONCE(*hptr(from, p, w),
					   (i << 24) | (p << 12) | w);
		for (p = 0; p < DSM_PAGES; p++)
			for (w = 0; w < 512; w += 97)
				DVM_ASSERT(hword(to, p, w) ==
					   ((i << 24) | (p << 12) | w),
					   "round %d node %d->%d page %lu word %lu: %lx",
					   i, from, to, (unsigned long)p,
					   (unsigned long)w,
					   (unsigned long)hword(to, p, w));
	}
	DVM_ASSERT(dsm_stat(0, "dvm_dsm_remote_fetches") > 0 &&
		   dsm_stat(0, "dvm_dsm_inv_recv") > 0,
		   "no fetch or invalidation counted");
	cluster_down(n);
	ksft_test_result_pass("%d nodes: userspace writes on one node, reads on another, %d pages\n",
			      n, DSM_PAGES);
}

static void test_pingpong(int n, uint64_t rounds)
{
	cluster_up(n);
	run_all(PROG_PINGPONG, rounds);
	dsm_pingpong_check(dsm[n - 1].hva, rounds);
	cluster_down(n);
	ksft_test_result_pass("%d nodes: ping-pong of one value, %lu rounds, random nodes\n",
			      n, (unsigned long)rounds);
}

/* Copies taken away or downgraded while the vCPUs raced, on all nodes. */
static uint64_t cluster_takes(int n, uint64_t *holds)
{
	uint64_t takes = 0;
	int i;

	*holds = 0;
	for (i = 0; i < n; i++) {
		takes += dsm_stat(i, "dvm_dsm_inv_recv") +
			 dsm_stat(i, "dvm_dsm_upgrades");
		*holds += dsm_stat(i, "dvm_dsm_holds");
	}
	return takes;
}

/* Set by "contention": vCPUs on a host with several CPUs race for pages. */
static bool contention;

/*
 * The holders' window while "contention" runs. With the default 200 us, a
 * copy was held back only once in 84 takes on a slow machine (a
 * request's round trip through TCG takes about that long), and none in
 * one CI run: 5 ms makes a request within the window the rule.
 */
#define CONTENTION_HOLD_US	5000

static void test_counters(int n, int vcpus, uint64_t iters)
{
	uint64_t takes, holds;

	cluster_up_vcpus(n, vcpus);
	run_all(PROG_COUNTERS, iters);
	dsm_counters_check(dsm[n - 1].hva, vcpus, iters);
	takes = cluster_takes(n, &holds);
	/* Every node wrote the counters' pages: they moved. */
	DVM_ASSERT(takes >= (uint64_t)n, "only %lu copies moved",
		   (unsigned long)takes);
	/*
	 * Under contention a request for a copy comes within the holder's
	 * window (dvm_dsm_hold_us, made CONTENTION_HOLD_US) after its grant,
	 * and waits it out.
	 */
	DVM_ASSERT(!contention || holds > 0,
		   "%lu copies moved under contention, none held back",
		   (unsigned long)takes);
	cluster_down(n);
	ksft_test_result_pass("%d nodes, %d vCPUs: lock inc, lock xadd, cmpxchg, spinlock: %lu increments each, exact (%lu copies taken or upgraded, %lu held back)\n",
			      n, vcpus, (unsigned long)(vcpus * iters),
			      (unsigned long)takes, (unsigned long)holds);
}

static void test_kvmclock(void)
{
	cluster_up(2);
	run_all(PROG_KVMCLOCK, 0);
	DVM_ASSERT(hword(0, 41, 0) == 2, "flag %lu",
		   (unsigned long)hword(0, 41, 0));
	cluster_down(2);
	ksft_test_result_pass("kvmclock page written by KVM on node 1, owned by node 0 before, read on node 0\n");
}

static void test_false_sharing(uint64_t iters)
{
	cluster_up(2);
	run_all(PROG_FALSE_SHARING, iters);
	DVM_ASSERT(hword(0, PG_FALSE, 0) == iters &&
		   hword(1, PG_FALSE, 8) == iters,
		   "words %lu and %lu, want %lu",
		   (unsigned long)hword(0, PG_FALSE, 0),
		   (unsigned long)hword(1, PG_FALSE, 8), (unsigned long)iters);
	cluster_down(2);
	ksft_test_result_pass("false sharing: 2 vCPUs on 2 nodes, %lu writes each to their word of one page\n",
			      (unsigned long)iters);
}

/* Written here through node 0, read and rewritten by node 1's vCPU. */
static void test_user_guest(void)
{
	uint64_t p, w;

	cluster_up(2);
	for (p = PG_USER; p < PG_USER + 8; p++)
		for (w = 0; w < 512; w += 61)
			WRITE_ONCE(*hptr(0, p, w), USER_WORD(p, w));
	runner_start(1, PROG_USER, 0, false);
	pthread_join(runners[1].thread, NULL);
	for (p = PG_USER; p < PG_USER + 8; p++)
		for (w = 0; w < 512; w += 61)
			DVM_ASSERT(hword(0, p, w) == USER_WORD(p, w) + 7,
				   "page %lu word %lu: %lu", (unsigned long)p,
				   (unsigned long)w,
				   (unsigned long)hword(0, p, w));
	cluster_down(2);
	ksft_test_result_pass("userspace on node 0 and a vCPU on node 1 share 8 pages\n");
}

static void test_emulated(void)
{
	struct dsm_runner *rn;

	cluster_up(2);
	virt_pg_map(nodes[1].vm, MMIO_GVA, MMIO_GPA);
	WRITE_ONCE(*hptr(0, PG_EMULATED, 0), EMULATED_MAGIC);
	rn = runner_start(1, PROG_EMULATED, 0, false);
	pthread_join(rn->thread, NULL);
	DVM_ASSERT(rn->mmio_seen && rn->mmio_data == EMULATED_MAGIC,
		   "MMIO write %s, data %lx", rn->mmio_seen ? "seen" : "not seen",
		   (unsigned long)rn->mmio_data);
	cluster_down(2);
	ksft_test_result_pass("KVM's emulator read an operand from a page node 0 owned\n");
}

static void sleep_ms(int ms)
{
	usleep(ms * 1000);
}

/* DSM requests node @i received: DSM_REQ and DSM_FETCH messages. */
static uint64_t dsm_requests_in(int i)
{
	struct dvm_stats s;
	uint64_t n;

	dvm_stats_open(nodes[i].vm, &s);
	n = dvm_stats_type(&s, "dvm_rx_msgs", KVM_DVM_STAT_MSG_DSM_REQ) +
	    dvm_stats_type(&s, "dvm_rx_msgs", KVM_DVM_STAT_MSG_DSM_FETCH);
	dvm_stats_close(&s);
	return n;
}

/*
 * Wait (20 s at most) until node @i received a DSM request more than
 * @before: the other node's request for a page @i keeps pinned is there,
 * and waits for the unpin.
 */
static void wait_request_in(int i, uint64_t before, const char *what)
{
	int ms;

	for (ms = 0; ms < 20000 && dsm_requests_in(i) <= before; ms++)
		sleep_ms(1);
	DVM_ASSERT(dsm_requests_in(i) > before,
		   "%s: node %d got no DSM request in 20 s", what, i);
}

/* Wait (20 s at most) until node @i's statistic @name exceeds @before. */
static void wait_stat_above(int i, const char *name, uint64_t before,
			    const char *what)
{
	int ms;

	for (ms = 0; ms < 20000 && dsm_stat(i, name) <= before; ms++)
		sleep_ms(1);
	DVM_ASSERT(dsm_stat(i, name) > before,
		   "%s: node %d's %s stayed at %lu for 20 s", what, i, name,
		   (unsigned long)before);
}

#define RMW_FIRST	8
#define RMW_PAGES	16

struct rmw_arg {
	bool done;
};

/* A plain add to memory: one instruction that loads, then stores. */
static void *rmw_pages(void *arg)
{
	struct rmw_arg *a = arg;
	uint64_t p;

	for (p = RMW_FIRST; p < RMW_FIRST + RMW_PAGES; p++)
		asm volatile("addq $1, %0" : "+m" (*hptr(1, p, 7)));
	WRITE_ONCE(a->done, true);
	return NULL;
}

/*
 * A read-modify-write instruction on pages node 1 shares, mapped
 * read-only there. page_mkwrite takes the mapping away; the instruction,
 * retried, may fault for reading first (TCG runs it as a load and a
 * store). That fault must take the page Modified, or the read and the
 * write faults would alternate for ever: each page is upgraded exactly
 * once, with no other fault on node 1.
 */
static void test_user_rmw(void)
{
	uint64_t p, up, rd, wr, rd0;
	struct rmw_arg a = { 0 };
	pthread_t t;
	int ms;

	cluster_up(2);
	for (p = RMW_FIRST; p < RMW_FIRST + RMW_PAGES; p++) {
		WRITE_ONCE(*hptr(0, p, 7), 1000 + p);
		DVM_ASSERT(hword(1, p, 7) == 1000 + p, "page %lu: %lu",
			   (unsigned long)p, (unsigned long)hword(1, p, 7));
	}
	up = dsm_stat(1, "dvm_dsm_upgrades");
	rd = dsm_stat(1, "dvm_dsm_read_faults");
	wr = dsm_stat(1, "dvm_dsm_write_faults");
	DVM_ASSERT(!pthread_create(&t, NULL, rmw_pages, &a), "pthread_create");
	for (ms = 0; ms < 20000 && !READ_ONCE(a.done); ms++)
		sleep_ms(1);
	DVM_ASSERT(READ_ONCE(a.done),
		   "read-modify-writes of shared pages did not finish in 20 s (upgrades %lu -> %lu)",
		   (unsigned long)up,
		   (unsigned long)dsm_stat(1, "dvm_dsm_upgrades"));
	pthread_join(t, NULL);
	DVM_ASSERT(dsm_stat(1, "dvm_dsm_upgrades") == up + RMW_PAGES &&
		   dsm_stat(1, "dvm_dsm_read_faults") == rd &&
		   dsm_stat(1, "dvm_dsm_write_faults") == wr,
		   "node 1: upgrades %lu -> %lu, read faults %lu -> %lu, write faults %lu -> %lu",
		   (unsigned long)up,
		   (unsigned long)dsm_stat(1, "dvm_dsm_upgrades"),
		   (unsigned long)rd,
		   (unsigned long)dsm_stat(1, "dvm_dsm_read_faults"),
		   (unsigned long)wr,
		   (unsigned long)dsm_stat(1, "dvm_dsm_write_faults"));
	rd0 = dsm_stat(0, "dvm_dsm_read_faults");
	for (p = RMW_FIRST; p < RMW_FIRST + RMW_PAGES; p++)
		DVM_ASSERT(hword(0, p, 7) == 1001 + p, "node 0 page %lu: %lu",
			   (unsigned long)p, (unsigned long)hword(0, p, 7));
	DVM_ASSERT(dsm_stat(0, "dvm_dsm_read_faults") == rd0 + RMW_PAGES,
		   "node 0: read faults %lu -> %lu", (unsigned long)rd0,
		   (unsigned long)dsm_stat(0, "dvm_dsm_read_faults"));
	cluster_down(2);
	ksft_test_result_pass("userspace read-modify-write on %d shared pages: each upgraded once, no fault loop\n",
			      RMW_PAGES);
}

/* @vm's page-directory entry for @gva (its upper tables exist). */
static uint64_t *pt_pde(struct kvm_vm *vm, uint64_t gva)
{
	uint64_t *t = addr_gpa2hva(vm, vm->pgd);
	int shift;

	for (shift = 39; shift > 21; shift -= 9) {
		uint64_t e = t[(gva >> shift) & 511];

		DVM_ASSERT(e & PTE_PRESENT_MASK, "no table for %lx at level %d",
			   (unsigned long)gva, shift);
		t = addr_gpa2hva(vm, PTE_GET_PFN(e) << vm->page_shift);
	}
	return &t[(gva >> 21) & 511];
}

/*
 * Guest page tables in the coherent memory, changed on one node while
 * the other has used them (guest_pt()). With shadow paging
 * (kvm_amd.npt=0, make check's shadow stage) each node's KVM shadows
 * the table: asserted that both nodes did, and that every round's
 * change took the table away from the node that had it.
 */
static void test_guest_pt(uint64_t rounds)
{
	bool shadow = !dvm_npt_enabled();
	uint64_t inv, zaps = 0;
	int i;

	cluster_up(2);
	for (i = 0; i < 2; i++) {
		virt_pg_map(nodes[i].vm, PT_GVA, DSM_GPA + PG_TARGET * 4096);
		*pt_pde(nodes[i].vm, PT_GVA) = (DSM_GPA + PG_PT * 4096) |
					       PT_FLAGS;
	}
	WRITE_ONCE(*hptr(0, PG_TARGET, 0), TARGET_MAGIC);
	WRITE_ONCE(*hptr(0, PG_TARGET + 1, 0), TARGET_MAGIC | 1);
	WRITE_ONCE(*hptr(0, PG_PT, PT_INDEX), pt_target_pte(0));
	inv = dsm_stat(0, "dvm_dsm_inv_recv") + dsm_stat(1, "dvm_dsm_inv_recv");
	run_all(PROG_GUEST_PT, rounds);
	inv = dsm_stat(0, "dvm_dsm_inv_recv") + dsm_stat(1, "dvm_dsm_inv_recv") -
	      inv;
	/* Each round's writer took the table and the turn page. */
	DVM_ASSERT(inv >= rounds, "%lu rounds, %lu copies taken",
		   (unsigned long)rounds, (unsigned long)inv);
	for (i = 0; shadow && i < 2; i++)
		zaps += dsm_stat(i, "dvm_dsm_shadow_zaps");
	DVM_ASSERT(!shadow || zaps >= rounds,
		   "shadow paging: %lu rounds, %lu shadowed tables dropped",
		   (unsigned long)rounds, (unsigned long)zaps);
	cluster_down(2);
	ksft_test_result_pass("guest page tables in the memory, changed on one node and used on the other after INVLPG or a CR3 reload, %lu rounds: %s paging, %lu copies taken, %lu shadow pages dropped\n",
			      (unsigned long)rounds, shadow ? "shadow" : "nested",
			      (unsigned long)inv, (unsigned long)zaps);
}

static sigjmp_buf sigbus_jmp;

static void on_sigbus(int sig)
{
	siglongjmp(sigbus_jmp, 1);
}

/* Read @p; false if the read raised SIGBUS. */
static bool read_or_sigbus(uint64_t *p, uint64_t *val)
{
	struct sigaction sa = { .sa_handler = on_sigbus }, old;
	bool ok = false;

	sigaction(SIGBUS, &sa, &old);
	if (!sigsetjmp(sigbus_jmp, 1)) {
		*val = READ_ONCE(*p);
		ok = true;
	}
	sigaction(SIGBUS, &old, NULL);
	return ok;
}

/*
 * Node 1's memory file is twice node 0's: node 0 refuses node 1's
 * request for a page it manages (SIGBUS here) and counts it; node 1's
 * own pages still work.
 */
static void test_size_mismatch(void)
{
	uint64_t val, rejected;
	uint8_t *hva[2];
	int fd[2], i;

	dvm_nodes_create(nodes, 2, 0, NULL);
	dvm_nodes_join(nodes, 2, "JOIN");
	for (i = 0; i < 2; i++) {
		fd[i] = __dsm_create(nodes[i].vm, DSM_SIZE << i, 0);
		DVM_ASSERT(fd[i] >= 0, "CREATE_MEMORY: %s", strerror(errno));
		hva[i] = mmap(NULL, DSM_SIZE << i, PROT_READ | PROT_WRITE,
			      MAP_SHARED, fd[i], 0);
		DVM_ASSERT(hva[i] != MAP_FAILED, "mmap: %s", strerror(errno));
	}
	rejected = dvm_stat(nodes[0].vm, "dvm_dsm_rejected");
	DVM_ASSERT(!read_or_sigbus(dsm_hptr(hva[1], 2, 0), &val),
		   "node 1 read page 2, which node 0 manages: %lu",
		   (unsigned long)val);
	DVM_ASSERT(dvm_stat(nodes[0].vm, "dvm_dsm_rejected") == rejected + 1,
		   "node 0 counted %lu rejected requests, want 1",
		   (unsigned long)(dvm_stat(nodes[0].vm, "dvm_dsm_rejected") -
				   rejected));
	DVM_ASSERT(read_or_sigbus(dsm_hptr(hva[1], 3, 0), &val) && !val,
		   "node 1 could not read page 3, which it manages");
	for (i = 0; i < 2; i++) {
		munmap(hva[i], DSM_SIZE << i);
		close(fd[i]);
	}
	dvm_free_all(nodes, 2);
	ksft_test_result_pass("memory files of different sizes: the other node's requests refused (SIGBUS), counted\n");
}

/*
 * Node 1 pins a page it wrote: node 0's vCPU waits for it, node 1 still
 * writes it, and after the unpin node 0 reads the last value.
 */
static void test_pin(void)
{
	uint64_t off = PG_PINNED * 4096ULL, faults, in;
	struct dsm_runner *rn;

	cluster_up(2);
	WRITE_ONCE(*hptr(1, PG_PINNED, 0), 111);
	DVM_ASSERT_OK(__dsm_pin(nodes[1].vm, KVM_DVM_PIN, off, 4096), "PIN");
	DVM_ASSERT_OK(__dsm_pin(nodes[1].vm, KVM_DVM_PIN, off, 8192),
		      "PIN twice and one more page");
	in = dsm_requests_in(1);
	rn = runner_start(0, PROG_READ_ONE, 0, false);
	wait_request_in(1, in, "PIN");
	DVM_ASSERT(!READ_ONCE(rn->done), "vCPU read a pinned page");
	faults = dsm_stat(1, "dvm_dsm_fault_count");
	WRITE_ONCE(*hptr(1, PG_PINNED, 0), 222);
	DVM_ASSERT(dsm_stat(1, "dvm_dsm_fault_count") == faults,
		   "a write to a pinned page needed a transaction");
	DVM_ASSERT_OK(__dsm_pin(nodes[1].vm, KVM_DVM_UNPIN, off, 8192),
		      "UNPIN");
	sleep_ms(300);
	DVM_ASSERT(!READ_ONCE(rn->done), "vCPU read a page still pinned");
	DVM_ASSERT_ERRNO(__dsm_pin(nodes[1].vm, KVM_DVM_UNPIN, off, 8192),
			 EINVAL, "UNPIN of a range partly pinned");
	DVM_ASSERT_OK(__dsm_pin(nodes[1].vm, KVM_DVM_UNPIN, off, 4096),
		      "UNPIN");
	pthread_join(rn->thread, NULL);
	DVM_ASSERT(rn->last_sync == 222, "vCPU read %lu, want 222",
		   (unsigned long)rn->last_sync);
	cluster_down(2);
	ksft_test_result_pass("PIN keeps a page here, the other node waits until UNPIN\n");
}

struct pin_reader {
	uint64_t *word;
	uint64_t value;
	bool done;
};

static void *read_word(void *arg)
{
	struct pin_reader *r = arg;

	r->value = READ_ONCE(*r->word);
	WRITE_ONCE(r->done, true);
	return NULL;
}

/* Map, touch and unmap memory once *go is set; then set *go to 2. */
static void *map_and_unmap(void *arg)
{
	int *go = arg;
	size_t len = 4 << 20;
	void *p;

	while (!READ_ONCE(*go))
		sleep_ms(1);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	TEST_ASSERT(p != MAP_FAILED, "mmap: %s", strerror(errno));
	memset(p, 1, len);
	TEST_ASSERT(!munmap(p, len), "munmap: %s", strerror(errno));
	WRITE_ONCE(*go, 2);
	return NULL;
}

/*
 * A thread here reads @page, which node 1 pinned: its fault waits without
 * mmap_lock, so another thread maps and unmaps memory meanwhile. Every
 * thread exists before the fault, as creating one maps its stack.
 */
static void pin_wait_unlocked(uint64_t page, uint64_t value)
{
	struct pin_reader rd = { .word = hptr(0, page, 0) };
	uint64_t off = page * 4096, in;
	pthread_t reader, mapper;
	int go = 0, ms;

	WRITE_ONCE(*hptr(1, page, 0), value);
	DVM_ASSERT_OK(__dsm_pin(nodes[1].vm, KVM_DVM_PIN, off, 4096), "PIN");
	pthread_create(&mapper, NULL, map_and_unmap, &go);
	in = dsm_requests_in(1);
	pthread_create(&reader, NULL, read_word, &rd);
	wait_request_in(1, in, "a fault on a pinned page");
	DVM_ASSERT(!READ_ONCE(rd.done), "read a pinned page");
	WRITE_ONCE(go, 1);
	for (ms = 0; ms < 20000 && READ_ONCE(go) != 2; ms += 10)
		sleep_ms(10);
	DVM_ASSERT(!READ_ONCE(rd.done), "read a pinned page");
	/* Unpin even on failure: the mapper may wait for the reader. */
	DVM_ASSERT_OK(__dsm_pin(nodes[1].vm, KVM_DVM_UNPIN, off, 4096),
		      "UNPIN");
	DVM_ASSERT(go == 2, "page %lu: mmap and munmap waited for a fault on a pinned page",
		   (unsigned long)page);
	pthread_join(reader, NULL);
	pthread_join(mapper, NULL);
	DVM_ASSERT(rd.value == value, "read %lu, want %lu",
		   (unsigned long)rd.value, (unsigned long)value);
}

/* Node 0 manages PG_PINNED, node 1 the next page. */
static void test_pin_wait_unlocked(void)
{
	cluster_up(2);
	pin_wait_unlocked(PG_PINNED, 444);
	pin_wait_unlocked(PG_PINNED + 1, 555);
	cluster_down(2);
	ksft_test_result_pass("faults waiting for pinned pages let go of mmap_lock: mmap and munmap went on\n");
}

/* The node holding a page the other waits for leaves: BROKEN, no hang. */
static void test_pinned_owner_lost(void)
{
	uint64_t t0, ms, in;
	struct dsm_runner *rn;

	cluster_up(2);
	WRITE_ONCE(*hptr(1, PG_PINNED, 0), 333);
	DVM_ASSERT_OK(__dsm_pin(nodes[1].vm, KVM_DVM_PIN, PG_PINNED * 4096ULL,
				4096), "PIN");
	in = dsm_requests_in(1);
	rn = runner_start(0, PROG_READ_ONE, 0, false);
	wait_request_in(1, in, "owner lost");
	DVM_ASSERT(!READ_ONCE(rn->done), "vCPU read a pinned page");
	t0 = dvm_now_ns();
	DVM_ASSERT_OK(__dvm_leave(nodes[1].vm), "LEAVE");
	pthread_join(rn->thread, NULL);
	ms = (dvm_now_ns() - t0) / 1000000;
	DVM_ASSERT(rn->exit_reason == KVM_EXIT_DVM_BROKEN,
		   "exit reason %u, want KVM_EXIT_DVM_BROKEN", rn->exit_reason);
	DVM_ASSERT(rn->vcpu->run->dvm_broken.node == 1 &&
		   rn->vcpu->run->dvm_broken.error == -ECONNRESET,
		   "kvm_run->dvm_broken: node %u error %d, want 1 %d",
		   rn->vcpu->run->dvm_broken.node,
		   rn->vcpu->run->dvm_broken.error, -ECONNRESET);
	DVM_ASSERT(ms < 5000, "vCPU out after %lu ms", (unsigned long)ms);
	cluster_down(2);
	ksft_test_result_pass("owner of a page lost: the waiting vCPU exits KVM_EXIT_DVM_BROKEN after %lu ms\n",
			      (unsigned long)ms);
}

/*
 * A process that only maps the memory file is killed while its fault
 * waits for a page node 1 keeps pinned: it dies at once, the request goes
 * on in a work item (handed over, counted), nothing breaks, and after the
 * unpin the page comes to node 0 with node 1's data.
 */
static void test_killed_waiter(void)
{
	uint64_t in, handed, faults, late, malformed;
	uint64_t off = PG_PINNED * 4096ULL;
	int status, ms, i;
	pid_t pid;

	cluster_up(2);
	WRITE_ONCE(*hptr(1, PG_PINNED, 0), 777);
	DVM_ASSERT_OK(__dsm_pin(nodes[1].vm, KVM_DVM_PIN, off, 4096), "PIN");
	in = dsm_requests_in(1);
	handed = dsm_stat(0, "dvm_dsm_handed_over");
	late = dsm_stat(0, "dvm_late_replies") + dsm_stat(1, "dvm_late_replies");
	malformed = dsm_stat(0, "dvm_malformed") + dsm_stat(1, "dvm_malformed");
	pid = fork();
	TEST_ASSERT(pid >= 0, "fork: %s", strerror(errno));
	if (!pid) {
		/* The child's only access: it never returns. */
		_exit(READ_ONCE(*hptr(0, PG_PINNED, 0)) == 777 ? 3 : 4);
	}
	wait_request_in(1, in, "killed waiter");
	DVM_ASSERT(!kill(pid, SIGKILL), "kill: %s", strerror(errno));
	for (ms = 0; ms < 10000; ms++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		sleep_ms(1);
	}
	DVM_ASSERT(ms < 10000, "the killed process did not die in 10 s");
	DVM_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		   "the child ended with status %#x, want SIGKILL", status);
	DVM_ASSERT(dsm_stat(0, "dvm_dsm_handed_over") == handed + 1,
		   "node 0 handed %lu requests over, want 1",
		   (unsigned long)(dsm_stat(0, "dvm_dsm_handed_over") - handed));

	/* The request is still on; after the unpin it completes. */
	faults = dsm_stat(0, "dvm_dsm_fault_count");
	DVM_ASSERT_OK(__dsm_pin(nodes[1].vm, KVM_DVM_UNPIN, off, 4096),
		      "UNPIN");
	wait_stat_above(0, "dvm_dsm_fault_count", faults,
			"the handed-over request");
	DVM_ASSERT(hword(0, PG_PINNED, 0) == 777, "node 0 read %lu, want 777",
		   (unsigned long)hword(0, PG_PINNED, 0));
	WRITE_ONCE(*hptr(0, PG_PINNED, 0), 778);
	DVM_ASSERT(hword(1, PG_PINNED, 0) == 778, "node 1 read %lu, want 778",
		   (unsigned long)hword(1, PG_PINNED, 0));
	for (i = 0; i < 2; i++)
		DVM_ASSERT(dvm_state(nodes[i].vm) == KVM_DVM_STATE_RUNNING,
			   "node %d: state %s after the kill", i,
			   dvm_state_name(dvm_state(nodes[i].vm)));
	DVM_ASSERT(dsm_stat(0, "dvm_late_replies") +
		   dsm_stat(1, "dvm_late_replies") == late &&
		   dsm_stat(0, "dvm_malformed") +
		   dsm_stat(1, "dvm_malformed") == malformed,
		   "late replies or malformed messages after the kill");
	cluster_down(2);
	ksft_test_result_pass("a waiter killed on a pinned page: dies at once, its request handed over and finished after the unpin, cluster up\n");
}

static void on_sigusr1(int sig)
{
}

struct pinner {
	struct kvm_vm *vm;
	uint64_t off;
	int ret;
	int err;
	bool done;
};

static void *pin_thread(void *arg)
{
	struct pinner *p = arg;

	p->ret = __dsm_pin(p->vm, KVM_DVM_PIN, p->off, 4096);
	p->err = p->ret ? errno : 0;
	WRITE_ONCE(p->done, true);
	return NULL;
}

/* Wait (20 s at most) for @p's PIN to return. */
static void pinner_wait(struct pinner *p, const char *what)
{
	int ms;

	for (ms = 0; ms < 20000 && !READ_ONCE(p->done); ms++)
		sleep_ms(1);
	DVM_ASSERT(READ_ONCE(p->done), "%s: PIN still waits after 20 s", what);
}

/*
 * A PIN waiting for a page pinned on the other node: a signal ends it
 * (EINTR; two nodes pinning each other's pages break the cycle so), and
 * meanwhile GET_STATE answers at once and LEAVE ends it (ENOLINK): the
 * VM's DVM lock is not held across the wait.
 */
static void test_pin_abortable(void)
{
	struct sigaction sa = { .sa_handler = on_sigusr1 };
	uint64_t off = PG_PINNED * 4096ULL, in, handed, faults, t0, get_ms;
	struct pinner p = { .off = off };
	struct kvm_dvm_state st;
	pthread_t t;

	sigaction(SIGUSR1, &sa, NULL);	/* no SA_RESTART */
	cluster_up(2);
	p.vm = nodes[0].vm;
	DVM_ASSERT_OK(__dsm_pin(nodes[1].vm, KVM_DVM_PIN, off, 4096), "PIN");

	in = dsm_requests_in(1);
	handed = dsm_stat(0, "dvm_dsm_handed_over");
	pthread_create(&t, NULL, pin_thread, &p);
	wait_request_in(1, in, "PIN on a pinned page");
	t0 = dvm_now_ns();
	dvm_get_state(nodes[0].vm, &st, NULL, 0);
	get_ms = (dvm_now_ns() - t0) / 1000000;
	DVM_ASSERT(!READ_ONCE(p.done) && st.state == KVM_DVM_STATE_RUNNING,
		   "GET_STATE while a PIN waits: state %s, PIN done %d",
		   dvm_state_name(st.state), p.done);
	pthread_kill(t, SIGUSR1);
	pinner_wait(&p, "signal");
	pthread_join(t, NULL);
	DVM_ASSERT(p.ret == -1 && p.err == EINTR,
		   "interrupted PIN: ret %d errno %d, want EINTR", p.ret, p.err);
	DVM_ASSERT(dsm_stat(0, "dvm_dsm_handed_over") == handed + 1,
		   "interrupted PIN: %lu requests handed over, want 1",
		   (unsigned long)(dsm_stat(0, "dvm_dsm_handed_over") - handed));
	/* Its request ends after the unpin; then a PIN gets the page. */
	faults = dsm_stat(0, "dvm_dsm_fault_count");
	DVM_ASSERT_OK(__dsm_pin(nodes[1].vm, KVM_DVM_UNPIN, off, 4096),
		      "UNPIN");
	wait_stat_above(0, "dvm_dsm_fault_count", faults, "interrupted PIN");
	DVM_ASSERT_OK(__dsm_pin(nodes[0].vm, KVM_DVM_PIN, off, 4096),
		      "PIN after the unpin");
	DVM_ASSERT_OK(__dsm_pin(nodes[0].vm, KVM_DVM_UNPIN, off, 4096),
		      "UNPIN");

	/* Node 1 pins again; node 0's PIN waits; LEAVE on node 0 ends it. */
	DVM_ASSERT_OK(__dsm_pin(nodes[1].vm, KVM_DVM_PIN, off, 4096), "PIN");
	memset(&p, 0, sizeof(p));
	p.vm = nodes[0].vm;
	p.off = off;
	in = dsm_requests_in(1);
	pthread_create(&t, NULL, pin_thread, &p);
	wait_request_in(1, in, "PIN before LEAVE");
	DVM_ASSERT(!READ_ONCE(p.done), "PIN of a page pinned elsewhere returned");
	DVM_ASSERT_OK(__dvm_leave(nodes[0].vm), "LEAVE while a PIN waits");
	pinner_wait(&p, "LEAVE");
	pthread_join(t, NULL);
	DVM_ASSERT(p.ret == -1 && p.err == ENOLINK,
		   "PIN ended by LEAVE: ret %d errno %d, want ENOLINK", p.ret,
		   p.err);
	dvm_wait_state(nodes[1].vm, KVM_DVM_STATE_BROKEN, 20000,
		       "the other node");
	cluster_down(2);
	ksft_test_result_pass("a PIN waiting for a page pinned elsewhere: a signal ends it (EINTR), GET_STATE answers (%lu ms), LEAVE ends it (ENOLINK)\n",
			      (unsigned long)get_ms);
}

static void test_alias_and_move(void)
{
	struct kvm_vm *vm;
	struct dsm_runner *rn;

	cluster_up(2);
	vm = nodes[1].vm;
	vm_set_user_memory_region(vm, ALIAS_SLOT, 0, ALIAS_GPA, DSM_SIZE,
				  dsm[1].hva);
	virt_map(vm, ALIAS_GVA, ALIAS_GPA, DSM_PAGES);
	virt_map(vm, MOVED_GVA, MOVED_GPA, DSM_PAGES);
	rn = runner_start(1, PROG_ALIAS, 0, true);
	pthread_join(rn->thread, NULL);
	DVM_ASSERT(rn->last_sync == 1, "sync %lu", (unsigned long)rn->last_sync);
	WRITE_ONCE(*hptr(0, PG_ALIAS, 0), 3);
	WRITE_ONCE(*hptr(0, PG_ALIAS, 1), 4);
	rn->stop_at_sync = true;
	runner_resume_joined(rn);
	DVM_ASSERT(rn->last_sync == 2, "sync %lu", (unsigned long)rn->last_sync);
	/* Move the main memslot, as QEMU moves a BAR. */
	vm_set_user_memory_region(vm, DSM_SLOT, 0, DSM_GPA, 0, dsm[1].hva);
	vm_set_user_memory_region(vm, DSM_SLOT, 0, MOVED_GPA, DSM_SIZE,
				  dsm[1].hva);
	rn->stop_at_sync = false;
	runner_resume_joined(rn);
	DVM_ASSERT(rn->done, "not done");
	DVM_ASSERT(hword(0, PG_ALIAS, 2) == 5, "word 2: %lu",
		   (unsigned long)hword(0, PG_ALIAS, 2));
	cluster_down(2);
	ksft_test_result_pass("aliases: one page at two guest addresses, then a memslot moved\n");
}

static uint64_t soak_mult(uint64_t word)
{
	return (word * 0x9e3779b97f4a7c15ULL) | 1;
}

/*
 * 1 GiB over 4 nodes, random reads and adds from every vCPU for 60 s;
 * then a checksum of all of memory, read through node 0, must equal the
 * one computed here by replaying every vCPU's operations.
 */
struct soak_sum {
	int node;
	uint64_t sum;
	pthread_t thread;
};

/*
 * The checksum of the pages node s->node manages, read there: pages
 * never written are then filled with zeroes there, without a message.
 */
static void *soak_sum(void *arg)
{
	struct soak_sum *s = arg;
	uint64_t *mem = (uint64_t *)dsm[s->node].hva, p, w;

	s->sum = 0;
	/* Page 0 has the stop flag, and nothing else: not counted. */
	for (p = s->node ? s->node : 4; p < SOAK_PAGES; p += 4) {
		for (w = p * 512; w < (p + 1) * 512; w++)
			s->sum += READ_ONCE(mem[w]) * soak_mult(w);
	}
	return NULL;
}

static void test_soak(void)
{
	uint64_t ops[4], want = 0, got = 0, x, total = 0, fetches = 0;
	struct soak_sum sums[4];
	int v, i;

	nr_pages = SOAK_PAGES;
	cluster_up_vcpus(4, 4);
	for (v = 0; v < 4; v++)
		runner_start(v, PROG_SOAK, 0, true);
	sleep(SOAK_SECONDS);
	WRITE_ONCE(*hptr(0, 0, PG_SOAK_STOP), 1);
	for (v = 0; v < 4; v++) {
		pthread_join(runners[v].thread, NULL);
		ops[v] = runners[v].last_sync;
		total += ops[v];
		DVM_ASSERT(ops[v] > 0, "vCPU %d did nothing", v);
	}
	for (i = 0; i < 4; i++)
		sums[i].node = i;
	for (v = 0; v < 4; v++) {
		x = soak_seed(v);
		for (i = 0; i < (int)ops[v]; i++) {
			soak_next(&x);
			if (x & 3)
				want += ((x >> 40) | 1) * soak_mult(soak_word(x));
		}
	}
	for (i = 0; i < 4; i++)
		pthread_create(&sums[i].thread, NULL, soak_sum, &sums[i]);
	for (i = 0; i < 4; i++) {
		pthread_join(sums[i].thread, NULL);
		got += sums[i].sum;
	}
	for (i = 0; i < 4; i++) {
		fetches += dsm_stat(i, "dvm_dsm_fault_count");
		ksft_print_msg("soak: node %d: %lu ops, %lu transactions, %lu pages held\n",
			       i, (unsigned long)ops[i],
			       (unsigned long)dsm_stat(i, "dvm_dsm_fault_count"),
			       (unsigned long)dsm_stat(i, "dvm_dsm_pages_held"));
	}
	DVM_ASSERT(got == want, "checksum %lx, want %lx", (unsigned long)got,
		   (unsigned long)want);
	cluster_down(4);
	nr_pages = DSM_PAGES;
	ksft_test_result_pass("soak: 1 GiB over 4 nodes, %d s, %lu random operations, %lu transactions: checksum of all memory exact\n",
			      SOAK_SECONDS, (unsigned long)total,
			      (unsigned long)fetches);
}

#define NR_RDMA_TESTS	5

/* The same protocol over the RDMA transport: a subset, for time. */
static void test_over_rdma(const char *addr)
{
	int i;

	if (!addr || !*addr) {
		for (i = 0; i < NR_RDMA_TESTS; i++)
			ksft_test_result_skip("over RDMA: DVM_RDMA_ADDR (an IPv4 address of an rxe device) not set\n");
		return;
	}
	ksft_print_msg("over RDMA, on %s:\n", addr);
	dvm_rdma_addr = addr;
	test_user(2);
	test_pingpong(2, 200);
	test_counters(2, 2, 400);
	test_pin();
	test_killed_waiter();
	dvm_rdma_addr = NULL;
}

int main(int argc, char *argv[])
{
	/* Output is often a file: keep lines in order and complete. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	ksft_print_header();
	dvm_require_abi();
	if (argc > 1 && !strcmp(argv[1], "soak")) {
		ksft_set_plan(1);
		test_soak();
		ksft_finished();
	}
	/*
	 * contention ITERS: the two tests where vCPUs write one page at
	 * once, longer; on a host with several CPUs a vCPU writes while
	 * another node's request takes the page away.
	 */
	if (argc > 2 && !strcmp(argv[1], "contention")) {
		uint64_t iters = strtoull(argv[2], NULL, 0) / 16 * 16;

		unsigned int hold = dvm_kvm_param_read("dvm_dsm_hold_us");

		TEST_REQUIRE(iters > 0);
		contention = true;
		dvm_kvm_param_write("dvm_dsm_hold_us", CONTENTION_HOLD_US);
		ksft_set_plan(3);
		test_false_sharing(iters);
		test_counters(2, 2, iters);
		test_counters(2, 4, iters);
		dvm_kvm_param_write("dvm_dsm_hold_us", hold);
		ksft_finished();
	}
	/* guest-pt ROUNDS: guest page tables alone (the shadow stage). */
	if (argc > 2 && !strcmp(argv[1], "guest-pt")) {
		ksft_set_plan(1);
		test_guest_pt(strtoull(argv[2], NULL, 0));
		ksft_finished();
	}
	ksft_set_plan(21 + NR_RDMA_TESTS);

	test_abi();
	test_size_mismatch();
	test_user(2);
	test_user(4);
	test_user_guest();
	test_user_rmw();
	test_pingpong(2, 200);
	test_pingpong(4, 200);
	test_pingpong(8, 100);
	test_counters(2, 2, 400);
	test_counters(4, 8, 112);
	test_false_sharing(2000);
	test_kvmclock();
	test_emulated();
	test_pin();
	test_pin_wait_unlocked();
	test_pinned_owner_lost();
	test_killed_waiter();
	test_pin_abortable();
	test_alias_and_move();
	test_guest_pt(100);
	test_over_rdma(getenv("DVM_RDMA_ADDR"));
	ksft_finished();
}
