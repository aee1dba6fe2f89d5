// SPDX-License-Identifier: GPL-2.0
/*
 * dvm_kvm_run_bench: cost of one KVM_RUN round trip (a PIO exit to
 * userspace and back) and of the first touch of a guest page (an NPT/EPT
 * fault), printed as BENCH lines for tools/bench.
 */
#include <stdio.h>
#include <time.h>

#include "kvm_util.h"
#include "processor.h"

#define NR_ROUNDS	2000
#define NR_PAGES	2048
#define BUF_GPA		0x10000000ul
#define BUF_SLOT	1

static void guest_code(uint64_t buf)
{
	uint64_t i;

	for (i = 0; i < NR_ROUNDS; i++)
		GUEST_SYNC(i);
	/* Touch fresh pages: each costs a two-dimensional paging fault. */
	for (i = 0; i < NR_PAGES; i++)
		WRITE_ONCE(*(uint64_t *)(buf + i * 4096), i);
	GUEST_DONE();
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	struct ucall uc;
	double t0, t1;
	vm_vaddr_t buf;
	int i;

	vm = __vm_create_with_one_vcpu(&vcpu, NR_PAGES + 64, guest_code);
	/* A memslot userspace never touches: the guest's first access faults. */
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, BUF_GPA, BUF_SLOT,
				    NR_PAGES, 0);
	buf = BUF_GPA;
	virt_map(vm, buf, BUF_GPA, NR_PAGES);
	vcpu_args_set(vcpu, 1, buf);
	/* The first exit pays for the guest's own page faults: skip it. */
	vcpu_run(vcpu);
	t0 = now_us();
	for (i = 1; i < NR_ROUNDS; i++) {
		vcpu_run(vcpu);
		TEST_ASSERT(get_ucall(vcpu, &uc) == UCALL_SYNC && uc.args[1] == i,
			    "round %d", i);
	}
	t1 = now_us();
	printf("BENCH kvm_run_roundtrip %.2f us\n", (t1 - t0) / (NR_ROUNDS - 1));

	/*
	 * Guest page tables for buf were built by virt_map: the loop below
	 * faults only in the second-level tables.
	 */
	t0 = now_us();
	vcpu_run(vcpu);
	t1 = now_us();
	TEST_ASSERT(get_ucall(vcpu, &uc) == UCALL_DONE, "no UCALL_DONE");
	printf("BENCH tdp_first_touch %.2f us\n", (t1 - t0) / NR_PAGES);
	kvm_vm_free(vm);
	return 0;
}
