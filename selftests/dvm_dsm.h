/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The DSM in selftests: the memory file mapped into a node's guest and
 * into the test, and guest programs shared by the tests that use it.
 */
#ifndef SELFTEST_DVM_DSM_H
#define SELFTEST_DVM_DSM_H

#include <sys/mman.h>

#include "dvm_util.h"

#define DSM_GPA		(1ULL << 32)
#define DSM_GVA		DSM_GPA
#define DSM_PAGES	64
#define DSM_SIZE	(DSM_PAGES * 4096ULL)
#define DSM_SLOT	10

/* Pages of the shared programs: counters 0-31, ping-pong 60-61. */
#define PG_LOCK		30
#define PG_LOCKED	31
#define PG_TURN		60
#define PG_VALUE	61

static inline uint64_t *dsm_word(uint64_t page, uint64_t word)
{
	return (uint64_t *)(DSM_GVA + page * 4096 + word * 8);
}

static inline int __dsm_create(struct kvm_vm *vm, uint64_t size,
			       uint32_t flags)
{
	struct kvm_dvm_memory m = { .size = size, .flags = flags };

	return __vm_ioctl(vm, KVM_DVM_CREATE_MEMORY, &m);
}

/*
 * Create @vm's memory file of @pages pages, map it here and at DSM_GPA
 * (DSM_GVA) in the guest, with guest page tables of @level (PG_LEVEL_4K,
 * or PG_LEVEL_2M for big memories). Returns the file; *@hva is the
 * mapping.
 */
static inline int dsm_setup(struct kvm_vm *vm, uint64_t pages, uint8_t **hva,
			    int level)
{
	uint64_t step = PG_LEVEL_SIZE(level), off;
	int fd = __dsm_create(vm, pages * 4096, 0);

	DVM_ASSERT(fd >= 0, "CREATE_MEMORY: %s", strerror(errno));
	*hva = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE, MAP_SHARED,
		    fd, 0);
	DVM_ASSERT(*hva != MAP_FAILED, "mmap: %s", strerror(errno));
	/* With KVM_DVM_JOIN_FORWARD_IO, node 0's slots are every node's. */
	if (!(dvm_join_flags & KVM_DVM_JOIN_FORWARD_IO) || !dvm_node_id(vm))
		vm_set_user_memory_region(vm, DSM_SLOT, 0, DSM_GPA,
					  pages * 4096, *hva);
	for (off = 0; off < pages * 4096; off += step)
		__virt_pg_map(vm, DSM_GVA + off, DSM_GPA + off, level);
	return fd;
}

/* A node of a test cluster in this process, its memory file mapped here. */
struct dsm_node {
	struct dvm_node *node;
	int id;
	int fd;
	uint8_t *hva;
};

/*
 * @n nodes and @vcpus vCPUs running @guest_code, placed round robin
 * (vCPU v on node v % n), joined; each node's memory file of @pages pages
 * mapped in its guest (with dsm_setup()'s @level) and here, in @dsm[i].
 */
static inline void dsm_cluster_up(struct dvm_node *nodes, struct dsm_node *dsm,
				  int n, int vcpus, void *guest_code,
				  uint64_t pages, int level)
{
	int i;

	dvm_nodes_create(nodes, n, vcpus, guest_code);
	dvm_nodes_join(nodes, n, "JOIN");
	for (i = 0; i < n; i++) {
		dsm[i].node = &nodes[i];
		dsm[i].id = i;
		dsm[i].fd = dsm_setup(nodes[i].vm, pages, &dsm[i].hva, level);
	}
	dvm_place_round_robin(nodes, n, vcpus);
	dvm_set_vcpus_all(nodes, n);
	dvm_assert_all_ok(nodes, n, "SET_LOCAL_VCPUS");
}

static inline void dsm_cluster_down(struct dvm_node *nodes,
				    struct dsm_node *dsm, int n, uint64_t pages)
{
	int i;

	for (i = 0; i < n; i++) {
		munmap(dsm[i].hva, pages * 4096);
		close(dsm[i].fd);
	}
	dvm_free_all(nodes, n);
}

static inline uint64_t *dsm_hptr(uint8_t *hva, uint64_t page, uint64_t word)
{
	return (uint64_t *)(hva + page * 4096) + word;
}

static inline uint64_t dsm_hword(uint8_t *hva, uint64_t page, uint64_t word)
{
	return READ_ONCE(*dsm_hptr(hva, page, word));
}

/* The vCPU of round @r: a fixed pseudo-random sequence. */
static inline uint64_t dsm_pingpong_vcpu(uint64_t r, uint64_t nr)
{
	return ((r + 1) * 2654435761ULL >> 11) % nr;
}

/*
 * Round r belongs to vCPU dsm_pingpong_vcpu(r): it waits for the turn
 * word to say r, checks the value the previous round's vCPU wrote and
 * writes the next one.
 */
static inline void dsm_pingpong(uint64_t id, uint64_t nr, uint64_t rounds)
{
	uint64_t *turn = dsm_word(PG_TURN, 0), *val = dsm_word(PG_VALUE, 0);
	uint64_t r;

	for (r = 0; r < rounds; r++) {
		if (dsm_pingpong_vcpu(r, nr) != id)
			continue;
		while (READ_ONCE(*turn) != r)
			asm volatile("pause");
		GUEST_ASSERT_2(READ_ONCE(*val) == r * 7, READ_ONCE(*val), r * 7);
		WRITE_ONCE(*val, (r + 1) * 7);
		WRITE_ONCE(*turn, r + 1);
	}
}

static inline void dsm_pingpong_check(uint8_t *hva, uint64_t rounds)
{
	DVM_ASSERT(dsm_hword(hva, PG_TURN, 0) == rounds &&
		   dsm_hword(hva, PG_VALUE, 0) == rounds * 7,
		   "after %lu rounds: turn %lu value %lu",
		   (unsigned long)rounds,
		   (unsigned long)dsm_hword(hva, PG_TURN, 0),
		   (unsigned long)dsm_hword(hva, PG_VALUE, 0));
}

/*
 * Every vCPU increments, @iters times: page 0 word 0 with LOCK INC; one of
 * page 0 words 8-15 with LOCK XADD; word 0 of one of pages 2-17 with a
 * CMPXCHG loop; and, under a spinlock (page PG_LOCK), the plain counters
 * PG_LOCKED word 0 and word 1 + its id.
 */
static inline void dsm_counters(uint64_t id, uint64_t iters)
{
	uint64_t *lock = dsm_word(PG_LOCK, 0), *data = dsm_word(PG_LOCKED, 0);
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
}

/* @iters a multiple of 16: every counter gets an exact share. */
static inline void dsm_counters_check(uint8_t *hva, int vcpus, uint64_t iters)
{
	uint64_t total = vcpus * iters, sum = 0;
	int i;

	DVM_ASSERT(dsm_hword(hva, 0, 0) == total, "lock inc: %lu, want %lu",
		   (unsigned long)dsm_hword(hva, 0, 0), (unsigned long)total);
	for (i = 0; i < 8; i++)
		DVM_ASSERT(dsm_hword(hva, 0, 8 + i) == total / 8,
			   "lock xadd word %d: %lu, want %lu", i,
			   (unsigned long)dsm_hword(hva, 0, 8 + i),
			   (unsigned long)total / 8);
	for (i = 0; i < 16; i++)
		DVM_ASSERT(dsm_hword(hva, 2 + i, 0) == total / 16,
			   "cmpxchg page %d: %lu, want %lu", 2 + i,
			   (unsigned long)dsm_hword(hva, 2 + i, 0),
			   (unsigned long)total / 16);
	for (i = 0; i < vcpus; i++) {
		DVM_ASSERT(dsm_hword(hva, PG_LOCKED, 1 + i) == iters,
			   "spinlock: vCPU %d did %lu, want %lu", i,
			   (unsigned long)dsm_hword(hva, PG_LOCKED, 1 + i),
			   (unsigned long)iters);
		sum += dsm_hword(hva, PG_LOCKED, 1 + i);
	}
	DVM_ASSERT(dsm_hword(hva, PG_LOCKED, 0) == total && sum == total,
		   "spinlock: %lu, want %lu",
		   (unsigned long)dsm_hword(hva, PG_LOCKED, 0),
		   (unsigned long)total);
}

#endif /* SELFTEST_DVM_DSM_H */
