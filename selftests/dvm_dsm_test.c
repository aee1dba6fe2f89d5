// SPDX-License-Identifier: GPL-2.0
/*
 * dvm_dsm_test: the coherent guest memory of a DVM cluster, with every
 * node a VM in this host over loopback TCP. Each node maps the cluster's
 * memory file at DSM_GPA in its guest and at m->hva here; guest vCPUs,
 * KVM itself and this process all access it through the DSM.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "dvm_util.h"

#define DSM_GPA		(1ULL << 32)
#define DSM_GVA		DSM_GPA
#define DSM_PAGES	64
#define DSM_SIZE	(DSM_PAGES * 4096ULL)
#define DSM_SLOT	10

/* Guest programs; their arguments: node id, nodes, iterations. */
enum { PROG_PINGPONG, PROG_COUNTERS, PROG_KVMCLOCK };

static uint64_t *dsm_word(uint64_t page, uint64_t word)
{
	return (uint64_t *)(DSM_GVA + page * 4096 + word * 8);
}

/* The node of round @r: a fixed pseudo-random sequence. */
static uint64_t pingpong_node(uint64_t r, uint64_t nr)
{
	return ((r + 1) * 2654435761ULL >> 11) % nr;
}

/*
 * Page 0 word 0 is the round; page 1 word 0 the value of that round.
 * Round r belongs to pingpong_node(r): it reads the value the previous
 * round's node wrote and writes the next one.
 */
static void guest_pingpong(uint64_t id, uint64_t nr, uint64_t rounds)
{
	uint64_t *turn = dsm_word(0, 0), *val = dsm_word(1, 0);
	uint64_t r;

	for (r = 0; r < rounds; r++) {
		if (pingpong_node(r, nr) != id)
			continue;
		while (READ_ONCE(*turn) != r)
			asm volatile("pause");
		GUEST_ASSERT_2(READ_ONCE(*val) == r * 7, READ_ONCE(*val), r * 7);
		WRITE_ONCE(*val, (r + 1) * 7);
		WRITE_ONCE(*turn, r + 1);
	}
	GUEST_DONE();
}

/* Counters: see counters_check(). Page 30: spinlock, page 31: its data. */
static void guest_counters(uint64_t id, uint64_t nr, uint64_t iters)
{
	uint64_t *lock = dsm_word(30, 0), *data = dsm_word(31, 0);
	uint64_t i, one, old;

	for (i = 0; i < iters; i++) {
		asm volatile("lock incq %0" : "+m"(*dsm_word(0, 0)));
		one = 1;
		asm volatile("lock xaddq %1, %0"
			     : "+m"(*dsm_word(0, 8 + i % 8)), "+r"(one));
		old = READ_ONCE(*dsm_word(2 + i % 16, 0));
		while (!__atomic_compare_exchange_n(dsm_word(2 + i % 16, 0),
						    &old, old + 1, false,
						    __ATOMIC_SEQ_CST,
						    __ATOMIC_SEQ_CST))
			;
		while (__atomic_exchange_n(lock, 1, __ATOMIC_ACQUIRE))
			while (READ_ONCE(*lock))
				asm volatile("pause");
		/* Plain increments: only the lock keeps them exact. */
		WRITE_ONCE(data[0], READ_ONCE(data[0]) + 1);
		WRITE_ONCE(data[1 + id], READ_ONCE(data[1 + id]) + 1);
		__atomic_store_n(lock, 0, __ATOMIC_RELEASE);
	}
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

static void guest_main(uint64_t prog, uint64_t id, uint64_t nr,
		       uint64_t iters)
{
	if (prog == PROG_PINGPONG)
		guest_pingpong(id, nr, iters);
	else if (prog == PROG_COUNTERS)
		guest_counters(id, nr, iters);
	else
		guest_kvmclock(id, nr, iters);
}

struct dsm_node {
	struct dvm_node *node;
	int id;
	int fd;
	uint8_t *hva;
	pthread_t thread;
};

static struct dvm_node nodes[DVM_MAX_TEST_NODES];
static struct dsm_node dsm[DVM_MAX_TEST_NODES];

static int __dsm_create(struct kvm_vm *vm, uint64_t size, uint32_t flags)
{
	struct kvm_dvm_memory m = { .size = size, .flags = flags };

	return ioctl(vm->fd, KVM_DVM_CREATE_MEMORY, &m);
}

static int __dsm_pin(struct kvm_vm *vm, unsigned long cmd, uint64_t off,
		     uint64_t size)
{
	struct kvm_dvm_pin p = { .offset = off, .size = size };

	return ioctl(vm->fd, cmd, &p);
}

/* n nodes of one vCPU each, joined, placed, memory mapped in each. */
static void cluster_up(int n)
{
	int i;

	dvm_nodes_create(nodes, n, n, guest_main);
	dvm_nodes_join(nodes, n, "JOIN");
	for (i = 0; i < n; i++) {
		struct kvm_vm *vm = nodes[i].vm;

		dsm[i].node = &nodes[i];
		dsm[i].id = i;
		dsm[i].fd = __dsm_create(vm, DSM_SIZE, 0);
		DVM_ASSERT(dsm[i].fd >= 0, "CREATE_MEMORY: %s",
			   strerror(errno));
		dsm[i].hva = mmap(NULL, DSM_SIZE, PROT_READ | PROT_WRITE,
				  MAP_SHARED, dsm[i].fd, 0);
		DVM_ASSERT(dsm[i].hva != MAP_FAILED, "mmap: %s",
			   strerror(errno));
		vm_set_user_memory_region(vm, DSM_SLOT, 0, DSM_GPA, DSM_SIZE,
					  dsm[i].hva);
		virt_map(vm, DSM_GVA, DSM_GPA, DSM_PAGES);
	}
	dvm_place_round_robin(nodes, n, n);
	dvm_set_vcpus_all(nodes, n);
	dvm_assert_all_ok(nodes, n, "SET_LOCAL_VCPUS");
}

static void cluster_down(int n)
{
	int i;

	for (i = 0; i < n; i++) {
		munmap(dsm[i].hva, DSM_SIZE);
		close(dsm[i].fd);
	}
	dvm_free_all(nodes, n);
}

static uint64_t dsm_stat(int i, const char *name)
{
	return dvm_stat(nodes[i].vm, name);
}

/* Run node @i's vCPU (id i) to GUEST_DONE, answering GUEST_SYNC. */
static void *run_node(void *arg)
{
	struct dsm_node *d = arg;
	struct kvm_vcpu *vcpu = d->node->vcpus[d->id];
	struct ucall uc;

	for (;;) {
		DVM_ASSERT_OK(__vcpu_run(vcpu), "KVM_RUN");
		DVM_ASSERT(vcpu->run->exit_reason == KVM_EXIT_IO,
			   "node %d: exit reason %u", d->id,
			   vcpu->run->exit_reason);
		switch (get_ucall(vcpu, &uc)) {
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT_2(uc, "values %lx, %lx");
			break;
		case UCALL_SYNC:
			continue;
		case UCALL_DONE:
			return NULL;
		default:
			TEST_FAIL("node %d: unexpected ucall", d->id);
		}
	}
}

static void run_all(int n, uint64_t prog, uint64_t iters)
{
	int i;

	for (i = 0; i < n; i++)
		vcpu_args_set(nodes[i].vcpus[i], 4, prog, (uint64_t)i,
			      (uint64_t)n, iters);
	for (i = 0; i < n; i++)
		pthread_create(&dsm[i].thread, NULL, run_node, &dsm[i]);
	for (i = 0; i < n; i++)
		pthread_join(dsm[i].thread, NULL);
}

static uint64_t *hptr(int node, uint64_t page, uint64_t word)
{
	return (uint64_t *)(dsm[node].hva + page * 4096) + word;
}

static uint64_t hword(int node, uint64_t page, uint64_t word)
{
	return READ_ONCE(*hptr(node, page, word));
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
	run_all(n, PROG_PINGPONG, rounds);
	DVM_ASSERT(hword(0, 0, 0) == rounds && hword(n - 1, 1, 0) == rounds * 7,
		   "after %lu rounds: turn %lu value %lu",
		   (unsigned long)rounds, (unsigned long)hword(0, 0, 0),
		   (unsigned long)hword(n - 1, 1, 0));
	cluster_down(n);
	ksft_test_result_pass("%d nodes: ping-pong of one value, %lu rounds, random nodes\n",
			      n, (unsigned long)rounds);
}

static void test_counters(int n, uint64_t iters)
{
	uint64_t total = n * iters, sum = 0;
	int i;

	cluster_up(n);
	run_all(n, PROG_COUNTERS, iters);
	DVM_ASSERT(hword(0, 0, 0) == total, "lock inc: %lu, want %lu",
		   (unsigned long)hword(0, 0, 0), (unsigned long)total);
	for (i = 0; i < 8; i++)
		DVM_ASSERT(hword(1 % n, 0, 8 + i) == total / 8,
			   "lock xadd word %d: %lu, want %lu", i,
			   (unsigned long)hword(1 % n, 0, 8 + i),
			   (unsigned long)total / 8);
	for (i = 0; i < 16; i++)
		DVM_ASSERT(hword(i % n, 2 + i, 0) == total / 16,
			   "cmpxchg page %d: %lu, want %lu", 2 + i,
			   (unsigned long)hword(i % n, 2 + i, 0),
			   (unsigned long)total / 16);
	for (i = 0; i < n; i++) {
		DVM_ASSERT(hword(0, 31, 1 + i) == iters,
			   "spinlock: node %d did %lu, want %lu", i,
			   (unsigned long)hword(0, 31, 1 + i),
			   (unsigned long)iters);
		sum += hword(0, 31, 1 + i);
	}
	DVM_ASSERT(hword(0, 31, 0) == total && sum == total,
		   "spinlock: %lu, want %lu", (unsigned long)hword(0, 31, 0),
		   (unsigned long)total);
	cluster_down(n);
	ksft_test_result_pass("%d nodes: lock inc, lock xadd, cmpxchg, spinlock: %lu increments each, exact\n",
			      n, (unsigned long)total);
}

static void test_kvmclock(void)
{
	cluster_up(2);
	run_all(2, PROG_KVMCLOCK, 0);
	DVM_ASSERT(hword(0, 41, 0) == 2, "flag %lu",
		   (unsigned long)hword(0, 41, 0));
	cluster_down(2);
	ksft_test_result_pass("kvmclock page written by KVM on node 1, owned by node 0 before, read on node 0\n");
}

int main(int argc, char *argv[])
{
	/* Output is often a file: keep lines in order and complete. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	ksft_print_header();
	dvm_require_abi();
	ksft_set_plan(7);

	test_abi();
	test_user(2);
	test_user(4);
	test_pingpong(2, 200);
	test_pingpong(4, 200);
	test_counters(2, 400);
	test_kvmclock();
	ksft_finished();
}
