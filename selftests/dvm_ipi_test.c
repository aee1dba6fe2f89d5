// SPDX-License-Identifier: GPL-2.0
/*
 * dvm_ipi_test: interrupts between vCPUs on different nodes, in every
 * delivery mode a guest uses (after upstream's xapic_ipi_test).
 *
 * vCPU 0 runs on node 0, vCPU 1 on node 1; every node has both vCPUs.
 * vCPU 0 sends, vCPU 1 receives; they meet on a DSM page, where each
 * interrupt handler counts what it took, by vCPU and vector. Each IPI is
 * waited for before the next is sent; at the end the counts must be
 * exact (no IPI lost, duplicated or taken by the wrong vCPU) and equal
 * to DVM's counters of interrupts forwarded and received, by mode.
 *
 * Phases, each set up by vCPU 1 before it says it is ready, so that the
 * sender's node must have mirrored vCPU 1's new APIC registers:
 *   1. xAPIC, flat logical (LDR 0x02): physical fixed, logical fixed,
 *      lowest priority to both vCPUs (vector hashing: an odd vector goes
 *      to vCPU 1, an even one to vCPU 0, on every node), NMI, all but
 *      self, all including self, the PV send-IPI hypercall.
 *   2. xAPIC cluster logical (LDR 0x11): logical fixed.
 *   3. The PV kick (KVM_HC_KICK_CPU) wakes vCPU 1 from HLT with
 *      interrupts off.
 *   4. x2APIC: physical fixed (KVM's IRQs-off fast path), cluster
 *      logical, NMI, all but self; then node 0's VMM signals MSIs to
 *      vCPU 1 with KVM_SIGNAL_MSI and through an irqfd (delivered in
 *      the eventfd's atomic wake-up).
 *   5. INIT and SIPI: vCPU 1 restarts in real mode at the SIPI page,
 *      whose code does an OUT that node 1's thread sees, without any
 *      userspace help on either node.
 *
 * Usage: dvm_ipi_test [rounds]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "apic.h"
#include "dvm_dsm.h"

#define IPI_ROUNDS	20
#define VEC_ODD		0xa5
#define VEC_EVEN	0xa6
#define SIPI_GPA	0x8000
#define TRAMP_PORT	0x5a5
#define TRAMP_VALUE	0x1234
#define WAIT_SECONDS	60
#define MSI_SYNC	0x3151
#define MSI_GSI		5

#ifndef APIC_LDR
#define APIC_LDR	0xd0
#endif
#ifndef APIC_DFR
#define APIC_DFR	0xe0
#endif

#ifndef KVM_HC_KICK_CPU
#define KVM_HC_KICK_CPU	5
#endif
#ifndef KVM_HC_SEND_IPI
#define KVM_HC_SEND_IPI	10
#endif

/* On the DSM page: written by one vCPU each, read by the other. */
struct ipi_shared {
	uint64_t phase;		/* vCPU 1: ready for phase N */
	uint64_t cmd;		/* vCPU 0: done with phase N - 1 */
	uint64_t odd[2];	/* VEC_ODD taken, by vCPU */
	uint64_t even[2];	/* VEC_EVEN taken, by vCPU */
	uint64_t nmi[2];	/* NMIs taken, by vCPU */
	uint64_t kicks;		/* vCPU 1's wake-ups from HLT */
};

#define SHARED	((struct ipi_shared *)DSM_GVA)

/* Each node runs one vCPU: the guest's globals are that vCPU's. */
static uint64_t my_id;
static bool x2apic;
static uint64_t wait_limit;	/* TSC ticks */

static void apic_eoi(void)
{
	if (x2apic)
		x2apic_write_reg(APIC_EOI, 0);
	else
		xapic_write_reg(APIC_EOI, 0);
}

static void odd_handler(struct ex_regs *regs)
{
	WRITE_ONCE(SHARED->odd[my_id], READ_ONCE(SHARED->odd[my_id]) + 1);
	apic_eoi();
}

static void even_handler(struct ex_regs *regs)
{
	WRITE_ONCE(SHARED->even[my_id], READ_ONCE(SHARED->even[my_id]) + 1);
	apic_eoi();
}

static void nmi_handler(struct ex_regs *regs)
{
	WRITE_ONCE(SHARED->nmi[my_id], READ_ONCE(SHARED->nmi[my_id]) + 1);
}

/* Wait until *@p reaches @want; it must not pass it. */
static void wait_for(uint64_t *p, uint64_t want, uint64_t what)
{
	uint64_t t0 = rdtsc(), v;

	while ((v = READ_ONCE(*p)) < want) {
		GUEST_ASSERT_2(rdtsc() - t0 < wait_limit, what, v);
		cpu_relax();
	}
	GUEST_ASSERT_2(v == want, what, v);
}

static void xapic_ipi(uint32_t dest, uint32_t icr)
{
	xapic_write_reg(APIC_ICR2, SET_APIC_DEST_FIELD(dest));
	xapic_write_reg(APIC_ICR, icr);
}

static void x2apic_ipi(uint32_t dest, uint32_t icr)
{
	x2apic_write_reg(APIC_ICR, ((uint64_t)dest << 32) | icr);
}

static void receiver(uint64_t rounds)
{
	uint64_t i;

	xapic_enable();
	xapic_write_reg(APIC_DFR, 0xffffffff);		/* flat */
	xapic_write_reg(APIC_LDR, 0x02 << 24);
	asm volatile("sti");
	WRITE_ONCE(SHARED->phase, 1);
	wait_for(&SHARED->cmd, 2, 100);

	xapic_write_reg(APIC_DFR, 0x0fffffff);		/* cluster */
	xapic_write_reg(APIC_LDR, 0x11 << 24);		/* cluster 1, bit 0 */
	WRITE_ONCE(SHARED->phase, 2);
	wait_for(&SHARED->cmd, 3, 101);

	/* Only a kick (or an NMI) ends HLT with interrupts off. */
	asm volatile("cli");
	WRITE_ONCE(SHARED->phase, 3);
	for (i = 0; i < rounds; i++) {
		asm volatile("hlt");
		WRITE_ONCE(SHARED->kicks, i + 1);
	}

	x2apic_enable();
	x2apic = true;
	asm volatile("sti");
	WRITE_ONCE(SHARED->phase, 4);
	wait_for(&SHARED->cmd, 5, 102);

	/* INIT and SIPI end this. */
	asm volatile("cli");
	WRITE_ONCE(SHARED->phase, 5);
	for (;;)
		asm volatile("hlt");
}

static void sender(uint64_t rounds)
{
	uint64_t odd1 = 0, odd0 = 0, even0 = 0, nmi1 = 0, i;

	xapic_enable();
	xapic_write_reg(APIC_DFR, 0xffffffff);
	xapic_write_reg(APIC_LDR, 0x01 << 24);
	asm volatile("sti");
	wait_for(&SHARED->phase, 1, 1);

	for (i = 0; i < rounds; i++) {
		xapic_ipi(1, APIC_DEST_PHYSICAL | APIC_DM_FIXED | VEC_ODD);
		wait_for(&SHARED->odd[1], ++odd1, 2);
	}
	for (i = 0; i < rounds; i++) {
		xapic_ipi(0x02, APIC_DEST_LOGICAL | APIC_DM_FIXED | VEC_ODD);
		wait_for(&SHARED->odd[1], ++odd1, 3);
	}
	for (i = 0; i < rounds; i++) {
		xapic_ipi(0x03, APIC_DEST_LOGICAL | APIC_DM_LOWEST | VEC_ODD);
		wait_for(&SHARED->odd[1], ++odd1, 4);
		xapic_ipi(0x03, APIC_DEST_LOGICAL | APIC_DM_LOWEST | VEC_EVEN);
		wait_for(&SHARED->even[0], ++even0, 5);
	}
	for (i = 0; i < rounds; i++) {
		xapic_ipi(1, APIC_DEST_PHYSICAL | APIC_DM_NMI);
		wait_for(&SHARED->nmi[1], ++nmi1, 6);
	}
	for (i = 0; i < rounds; i++) {
		xapic_ipi(0, APIC_DEST_ALLBUT | APIC_DM_FIXED | VEC_ODD);
		wait_for(&SHARED->odd[1], ++odd1, 7);
	}
	for (i = 0; i < rounds; i++) {
		xapic_ipi(0, APIC_DEST_ALLINC | APIC_DM_FIXED | VEC_ODD);
		wait_for(&SHARED->odd[1], ++odd1, 8);
		wait_for(&SHARED->odd[0], ++odd0, 9);
	}
	for (i = 0; i < rounds; i++) {
		GUEST_ASSERT_EQ(kvm_hypercall(KVM_HC_SEND_IPI, 1 << 1, 0, 0,
					      APIC_DM_FIXED | VEC_ODD), 1);
		wait_for(&SHARED->odd[1], ++odd1, 10);
	}

	/* Cluster model on both, or flat LDR 0x01 would match 0x11. */
	xapic_write_reg(APIC_DFR, 0x0fffffff);
	xapic_write_reg(APIC_LDR, 0x12 << 24);
	WRITE_ONCE(SHARED->cmd, 2);
	wait_for(&SHARED->phase, 2, 11);
	for (i = 0; i < rounds; i++) {
		xapic_ipi(0x11, APIC_DEST_LOGICAL | APIC_DM_FIXED | VEC_ODD);
		wait_for(&SHARED->odd[1], ++odd1, 12);
	}

	WRITE_ONCE(SHARED->cmd, 3);
	wait_for(&SHARED->phase, 3, 13);
	for (i = 0; i < rounds; i++) {
		kvm_hypercall(KVM_HC_KICK_CPU, 0, 1, 0, 0);
		wait_for(&SHARED->kicks, i + 1, 14);
	}

	wait_for(&SHARED->phase, 4, 15);
	x2apic_enable();
	x2apic = true;
	for (i = 0; i < rounds; i++) {
		x2apic_ipi(1, APIC_DEST_PHYSICAL | APIC_DM_FIXED | VEC_ODD);
		wait_for(&SHARED->odd[1], ++odd1, 16);
	}
	for (i = 0; i < rounds; i++) {
		/* x2APIC cluster 0, bit 1: the LDR of x2APIC ID 1. */
		x2apic_ipi(0x2, APIC_DEST_LOGICAL | APIC_DM_FIXED | VEC_ODD);
		wait_for(&SHARED->odd[1], ++odd1, 17);
	}
	for (i = 0; i < rounds; i++) {
		x2apic_ipi(1, APIC_DEST_PHYSICAL | APIC_DM_NMI);
		wait_for(&SHARED->nmi[1], ++nmi1, 18);
	}
	for (i = 0; i < rounds; i++) {
		x2apic_ipi(0, APIC_DEST_ALLBUT | APIC_DM_FIXED | VEC_ODD);
		wait_for(&SHARED->odd[1], ++odd1, 19);
	}
	/* Node 0's thread signals MSIs, then irqfd, to vCPU 1. */
	GUEST_SYNC(MSI_SYNC);
	odd1 += 2 * rounds;
	wait_for(&SHARED->odd[1], odd1, 21);

	WRITE_ONCE(SHARED->cmd, 5);
	wait_for(&SHARED->phase, 5, 20);
	x2apic_ipi(1, APIC_DEST_PHYSICAL | APIC_DM_INIT | APIC_INT_ASSERT |
		   APIC_INT_LEVELTRIG);
	x2apic_ipi(1, APIC_DEST_PHYSICAL | APIC_DM_INIT | APIC_INT_LEVELTRIG);
	x2apic_ipi(1, APIC_DEST_PHYSICAL | APIC_DM_STARTUP |
		   (SIPI_GPA >> 12));
	GUEST_DONE();
}

static void guest_code(uint64_t id, uint64_t rounds, uint64_t limit)
{
	my_id = id;
	wait_limit = limit;
	if (id)
		receiver(rounds);
	else
		sender(rounds);
}

/*
 * Real mode at SIPI_GPA (CS 0x0800, IP 0): out %ax, (%dx) with ax =
 * TRAMP_VALUE, dx = TRAMP_PORT, then HLT for good.
 */
static const uint8_t trampoline[] = {
	0xba, TRAMP_PORT & 0xff, TRAMP_PORT >> 8,	/* mov $port, %dx */
	0xb8, TRAMP_VALUE & 0xff, TRAMP_VALUE >> 8,	/* mov $value, %ax */
	0xef,						/* out %ax, (%dx) */
	0xf4,						/* hlt */
	0xeb, 0xfd,					/* jmp hlt */
};

static struct dvm_node nodes[2];
static struct dsm_node dsm[2];

struct ipi_runner {
	struct kvm_vcpu *vcpu;
	int id;
	bool trampoline_ran;
	pthread_t thread;
};

static uint64_t rounds_run;

/* Wait until vCPU 1 took @want VEC_ODD, as node 0 sees the DSM page. */
static void host_wait_odd1(uint64_t want)
{
	struct ipi_shared *sh = (void *)dsm[0].hva;
	uint64_t t0 = dvm_now_ns(), v;

	while ((v = READ_ONCE(sh->odd[1])) < want)
		DVM_ASSERT(dvm_now_ns() - t0 < WAIT_SECONDS * 1000000000ull,
			   "vCPU 1 took %lu VEC_ODD, want %lu",
			   (unsigned long)v, (unsigned long)want);
	DVM_ASSERT(v == want, "vCPU 1 took %lu VEC_ODD, want %lu",
		   (unsigned long)v, (unsigned long)want);
}

/* MSIs from node 0's VMM to vCPU 1 (x2APIC ID 1), then via an irqfd. */
static void signal_msis(struct kvm_vm *vm)
{
	struct kvm_msi msi = {
		.address_lo = 0xfee00000 | (1 << 12), .data = VEC_ODD,
	};
	struct {
		struct kvm_irq_routing r;
		struct kvm_irq_routing_entry e;
	} rt = {
		.r.nr = 1,
		.e = { .gsi = MSI_GSI, .type = KVM_IRQ_ROUTING_MSI,
		       .u.msi = { .address_lo = msi.address_lo,
				  .data = VEC_ODD } },
	};
	struct ipi_shared *sh = (void *)dsm[0].hva;
	uint64_t base = READ_ONCE(sh->odd[1]), one = 1, i;
	struct kvm_irqfd irqfd = { .gsi = MSI_GSI };
	int efd;

	for (i = 0; i < rounds_run; i++) {
		DVM_ASSERT(__vm_ioctl(vm, KVM_SIGNAL_MSI, &msi) == 1,
			   "KVM_SIGNAL_MSI: %s", strerror(errno));
		host_wait_odd1(base + i + 1);
	}
	vm_ioctl(vm, KVM_SET_GSI_ROUTING, &rt.r);
	efd = eventfd(0, 0);
	TEST_ASSERT(efd >= 0, "eventfd");
	irqfd.fd = efd;
	vm_ioctl(vm, KVM_IRQFD, &irqfd);
	for (i = 0; i < rounds_run; i++) {
		TEST_ASSERT(write(efd, &one, 8) == 8, "eventfd write");
		host_wait_odd1(base + rounds_run + i + 1);
	}
	irqfd.flags = KVM_IRQFD_FLAG_DEASSIGN;
	vm_ioctl(vm, KVM_IRQFD, &irqfd);
	close(efd);
}

static void *run_vcpu(void *arg)
{
	struct ipi_runner *r = arg;
	struct kvm_run *run = r->vcpu->run;
	struct ucall uc;

	for (;;) {
		DVM_ASSERT_OK(__vcpu_run(r->vcpu), "KVM_RUN");
		DVM_ASSERT(run->exit_reason == KVM_EXIT_IO,
			   "vCPU %d: %s, want KVM_EXIT_IO", r->id,
			   dvm_exit_why(r->vcpu));
		if (r->id == 1 && run->io.port == TRAMP_PORT) {
			DVM_ASSERT(run->io.direction == KVM_EXIT_IO_OUT &&
				   run->io.size == 2 &&
				   *(uint16_t *)((char *)run + run->io.data_offset) ==
				   TRAMP_VALUE,
				   "vCPU 1: bad OUT from the SIPI page");
			r->trampoline_ran = true;
			return NULL;
		}
		switch (get_ucall(r->vcpu, &uc)) {
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT_2(uc, "step %lu, value %lu");
			break;
		case UCALL_DONE:
			DVM_ASSERT(r->id == 0, "vCPU %d: GUEST_DONE", r->id);
			return NULL;
		case UCALL_SYNC:
			DVM_ASSERT(r->id == 0 && uc.args[1] == MSI_SYNC,
				   "vCPU %d: GUEST_SYNC %lu", r->id,
				   (unsigned long)uc.args[1]);
			signal_msis(r->vcpu->vm);
			break;
		default:
			TEST_FAIL("vCPU %d: unexpected ucall", r->id);
		}
	}
}

static void node_prepare(struct kvm_vm *vm, struct kvm_vcpu **vcpus)
{
	int v;

	vm_init_descriptor_tables(vm);
	for (v = 0; v < 2; v++)
		vcpu_init_descriptor_tables(vcpus[v]);
	vm_install_exception_handler(vm, VEC_ODD, odd_handler);
	vm_install_exception_handler(vm, VEC_EVEN, even_handler);
	vm_install_exception_handler(vm, NMI_VECTOR, nmi_handler);
	virt_pg_map(vm, APIC_DEFAULT_GPA, APIC_DEFAULT_GPA);
}

static void check_stats(uint64_t rounds)
{
	uint64_t sent[2][KVM_DVM_STAT_IRQ_MODES];
	uint64_t rcvd[2][KVM_DVM_STAT_IRQ_MODES];
	uint64_t want[KVM_DVM_STAT_IRQ_MODES] = {
		[0] = 11 * rounds,	/* fixed (remote part of ALLINC, MSIs) */
		[1] = rounds,		/* lowest priority, odd vector */
		[3] = rounds,		/* PV kick */
		[4] = 2 * rounds,	/* NMI */
		[5] = 1,		/* INIT (the de-assert is not sent) */
		[6] = 1,		/* STARTUP */
	};
	int i, m;

	for (i = 0; i < 2; i++) {
		dvm_stat_read(nodes[i].vm, "dvm_irq_sent", sent[i],
			      KVM_DVM_STAT_IRQ_MODES);
		dvm_stat_read(nodes[i].vm, "dvm_irq_received", rcvd[i],
			      KVM_DVM_STAT_IRQ_MODES);
		DVM_ASSERT(!dvm_stat(nodes[i].vm, "dvm_irq_rejected"),
			   "node %d rejected %lu interrupt events", i,
			   (unsigned long)dvm_stat(nodes[i].vm,
						   "dvm_irq_rejected"));
	}
	for (m = 0; m < KVM_DVM_STAT_IRQ_MODES; m++) {
		DVM_ASSERT(sent[0][m] == want[m] && rcvd[1][m] == want[m] &&
			   !sent[1][m] && !rcvd[0][m],
			   "mode %d: node 0 sent %lu, node 1 received %lu, want %lu; node 1 sent %lu, node 0 received %lu",
			   m, (unsigned long)sent[0][m],
			   (unsigned long)rcvd[1][m], (unsigned long)want[m],
			   (unsigned long)sent[1][m],
			   (unsigned long)rcvd[0][m]);
	}
	/* vCPU 1 changed its APIC 4 times before INIT, node 0 mirrored. */
	DVM_ASSERT(dvm_stat(nodes[0].vm, "dvm_apic_mirror_applied") >= 4 &&
		   dvm_stat(nodes[1].vm, "dvm_apic_mirror_applied") >= 3,
		   "APIC mirrors applied: node 0 %lu, node 1 %lu",
		   (unsigned long)dvm_stat(nodes[0].vm, "dvm_apic_mirror_applied"),
		   (unsigned long)dvm_stat(nodes[1].vm, "dvm_apic_mirror_applied"));
}

static void test_ipi(const char *transport, uint64_t rounds)
{
	struct ipi_runner r[2];
	struct ipi_shared sh;
	uint64_t limit;
	int i;

	rounds_run = rounds;
	dsm_cluster_up(nodes, dsm, 2, 2, guest_code, 1, PG_LEVEL_4K);
	for (i = 0; i < 2; i++)
		node_prepare(nodes[i].vm, nodes[i].vcpus);
	memcpy(addr_gpa2hva(nodes[1].vm, SIPI_GPA), trampoline,
	       sizeof(trampoline));
	limit = (uint64_t)__vcpu_ioctl(nodes[0].vcpus[0], KVM_GET_TSC_KHZ,
				       NULL) * 1000 * WAIT_SECONDS;
	for (i = 0; i < 2; i++) {
		r[i].vcpu = nodes[i].vcpus[i];
		r[i].id = i;
		r[i].trampoline_ran = false;
		vcpu_args_set(r[i].vcpu, 3, (uint64_t)i, rounds, limit);
		pthread_create(&r[i].thread, NULL, run_vcpu, &r[i]);
	}
	for (i = 0; i < 2; i++)
		pthread_join(r[i].thread, NULL);
	DVM_ASSERT(r[1].trampoline_ran, "vCPU 1 did not run the SIPI page");

	memcpy(&sh, dsm[0].hva, sizeof(sh));
	DVM_ASSERT(sh.odd[1] == 12 * rounds && sh.odd[0] == rounds &&
		   sh.even[0] == rounds && !sh.even[1] &&
		   sh.nmi[1] == 2 * rounds && !sh.nmi[0] &&
		   sh.kicks == rounds,
		   "taken: odd %lu/%lu even %lu/%lu nmi %lu/%lu kicks %lu",
		   (unsigned long)sh.odd[0], (unsigned long)sh.odd[1],
		   (unsigned long)sh.even[0], (unsigned long)sh.even[1],
		   (unsigned long)sh.nmi[0], (unsigned long)sh.nmi[1],
		   (unsigned long)sh.kicks);
	check_stats(rounds);
	dsm_cluster_down(nodes, dsm, 2, 1);
	ksft_test_result_pass("%s: %lu rounds of %d kinds of IPI and MSI, INIT/SIPI\n",
			      transport, (unsigned long)rounds, 16);
}

int main(int argc, char *argv[])
{
	const char *rdma = getenv("DVM_RDMA_ADDR");
	uint64_t rounds = argc > 1 ? strtoull(argv[1], NULL, 0) : IPI_ROUNDS;

	setvbuf(stdout, NULL, _IOLBF, 0);
	ksft_print_header();
	dvm_require_abi();
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_DVM) & KVM_DVM_CAP_IRQCHIP);
	TEST_REQUIRE(rounds > 0);
	ksft_set_plan(2);

	test_ipi("tcp", rounds);
	if (rdma && *rdma) {
		dvm_rdma_addr = rdma;
		test_ipi("rdma", rounds);
		dvm_rdma_addr = NULL;
	} else {
		ksft_test_result_skip("rdma: DVM_RDMA_ADDR (an IPv4 address of an rxe device) not set\n");
	}
	ksft_finished();
}
