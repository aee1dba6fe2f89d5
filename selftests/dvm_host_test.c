// SPDX-License-Identifier: GPL-2.0
/*
 * dvm_host_test: the emulated host runs what DVM builds on. KVM with
 * two-dimensional paging, guests whose exits, memory and atomics are
 * observed exactly from the host side.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "kselftest.h"

#define NR_SYNCS	500
#define BUF_PAGES	64
#define BUF_WORDS	(BUF_PAGES * 4096 / sizeof(uint64_t))
#define NR_INCS		20000
#define NR_VCPUS	2

static void guest_sync_loop(void)
{
	int i;

	for (i = 0; i < NR_SYNCS; i++)
		GUEST_SYNC(i);
	GUEST_DONE();
}

/* Every exit reaches userspace in order, with the value the guest sent. */
static void test_sync_exits(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	struct ucall uc;
	int i;

	vm = vm_create_with_one_vcpu(&vcpu, guest_sync_loop);
	for (i = 0; i < NR_SYNCS; i++) {
		vcpu_run(vcpu);
		TEST_ASSERT(vcpu->run->exit_reason == KVM_EXIT_IO,
			    "exit %d: reason %u, want KVM_EXIT_IO", i,
			    vcpu->run->exit_reason);
		TEST_ASSERT(get_ucall(vcpu, &uc) == UCALL_SYNC,
			    "exit %d: expected UCALL_SYNC", i);
		TEST_ASSERT(uc.args[1] == i, "exit %d: guest sent %lu", i,
			    (unsigned long)uc.args[1]);
	}
	vcpu_run(vcpu);
	TEST_ASSERT(get_ucall(vcpu, &uc) == UCALL_DONE, "no UCALL_DONE");
	kvm_vm_free(vm);
	ksft_test_result_pass("%d exits observed in order\n", NR_SYNCS);
}

static void guest_transform(uint64_t *buf)
{
	uint64_t i;

	for (i = 0; i < BUF_WORDS; i++)
		buf[i] = ~buf[i] + i;
	GUEST_DONE();
}

/* Memory written by the host is read by the guest, and the other way. */
static void test_memory_roundtrip(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	vm_vaddr_t gva;
	struct ucall uc;
	uint64_t *hva, i;

	vm = vm_create_with_one_vcpu(&vcpu, guest_transform);
	gva = vm_vaddr_alloc_pages(vm, BUF_PAGES);
	hva = addr_gva2hva(vm, gva);
	for (i = 0; i < BUF_WORDS; i++)
		hva[i] = i * 0x9e3779b97f4a7c15ull;
	vcpu_args_set(vcpu, 1, gva);
	vcpu_run(vcpu);
	TEST_ASSERT(get_ucall(vcpu, &uc) == UCALL_DONE, "guest did not finish");
	for (i = 0; i < BUF_WORDS; i++)
		TEST_ASSERT(hva[i] == ~(i * 0x9e3779b97f4a7c15ull) + i,
			    "word %lu: 0x%lx", (unsigned long)i,
			    (unsigned long)hva[i]);
	kvm_vm_free(vm);
	ksft_test_result_pass("%d pages transformed by the guest\n", BUF_PAGES);
}

static uint64_t shared_counter;

static void guest_lock_inc(void)
{
	int i;

	for (i = 0; i < NR_INCS; i++)
		__atomic_fetch_add(&shared_counter, 1, __ATOMIC_SEQ_CST);
	GUEST_DONE();
}

static void *vcpu_thread(void *arg)
{
	struct kvm_vcpu *vcpu = arg;
	struct ucall uc;

	vcpu_run(vcpu);
	TEST_ASSERT(get_ucall(vcpu, &uc) == UCALL_DONE, "vCPU %u did not finish",
		    vcpu->id);
	return NULL;
}

/* Locked increments from concurrent vCPUs are never lost. */
static void test_smp_atomics(void)
{
	struct kvm_vcpu *vcpus[NR_VCPUS];
	pthread_t threads[NR_VCPUS];
	struct kvm_vm *vm;
	int i;

	vm = vm_create_with_vcpus(NR_VCPUS, guest_lock_inc, vcpus);
	for (i = 0; i < NR_VCPUS; i++)
		pthread_create(&threads[i], NULL, vcpu_thread, vcpus[i]);
	for (i = 0; i < NR_VCPUS; i++)
		pthread_join(threads[i], NULL);
	sync_global_from_guest(vm, shared_counter);
	TEST_ASSERT(shared_counter == NR_VCPUS * NR_INCS, "counter %lu, want %d",
		    (unsigned long)shared_counter, NR_VCPUS * NR_INCS);
	kvm_vm_free(vm);
	ksft_test_result_pass("%d vCPUs x %d locked increments exact\n",
			      NR_VCPUS, NR_INCS);
}

static char read_param(const char *path)
{
	char c = 0;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return 0;
	if (read(fd, &c, 1) != 1)
		c = 0;
	close(fd);
	return c;
}

/* DVM enforces page states in the second-level page tables. */
static void test_tdp_enabled(void)
{
	char npt = read_param("/sys/module/kvm_amd/parameters/npt");
	char ept = read_param("/sys/module/kvm_intel/parameters/ept");

	ksft_test_result(npt == 'Y' || ept == 'Y',
			 "two-dimensional paging on (npt=%c ept=%c)\n",
			 npt ? npt : '-', ept ? ept : '-');
}

int main(void)
{
	ksft_print_header();
	ksft_set_plan(4);
	test_tdp_enabled();
	test_sync_exits();
	test_memory_roundtrip();
	test_smp_atomics();
	ksft_finished();
}
