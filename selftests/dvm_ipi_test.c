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
 *      logical, NMI, all but self; then node 0's VMM routes its IOAPIC's
 *      pins 10 (level) and 11 (edge) to vCPU 1 and raises them: node 1
 *      mirrors the redirection table, vCPU 1's EOIs clear node 0's
 *      remote_irr, and what node 1's VMM injects into its own (dummy)
 *      IOAPIC is dropped; then MSIs to vCPU 1 with KVM_SIGNAL_MSI and
 *      through an irqfd (delivered in the eventfd's atomic wake-up), and
 *      KVM_NMI on node 0's copy of vCPU 1.
 *   5. INIT and SIPI: vCPU 1 restarts in real mode at the SIPI page,
 *      whose code does an OUT that node 1's thread sees, without any
 *      userspace help on either node.
 *
 * Then a stress: 4 nodes with one vCPU each send each other x2APIC IPIs
 * for STRESS_SECONDS (one vector per sender); each receiver acknowledges
 * on a DSM page, and a sender sends again to a vCPU once its last IPI
 * there was taken (an IPI sent before would merge in the IRR). Every
 * IPI must be taken exactly once, by its destination, and counted by
 * both nodes.
 *
 * Usage: dvm_ipi_test [rounds [stress seconds [repeat]]]
 * (repeat: how many times each transport's walk through the modes runs)
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
#define IOAPIC_SYNC	0x10a9
#define VEC_LEVEL	0xb1
#define VEC_EDGE	0xb3
#define GSI_LEVEL	10
#define GSI_EDGE	11
#define ACK_PORT	0x5a7

#ifndef APIC_LDR
#define APIC_LDR	0xd0
#endif
#ifndef APIC_DFR
#define APIC_DFR	0xe0
#endif
#ifndef APIC_LVT0
#define APIC_LVT0	0x350
#endif
#ifndef APIC_LVT_MASKED
#define APIC_LVT_MASKED	(1 << 16)
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
	uint64_t level[2];	/* VEC_LEVEL (IOAPIC pin 10) taken */
	uint64_t edge[2];	/* VEC_EDGE (IOAPIC pin 11) taken */
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

/*
 * Like a driver, ack the device (its line goes down: node 1's thread
 * lowers node 0's GSI on this OUT) before the EOI, or the IOAPIC would
 * deliver the still asserted line again.
 */
static void level_handler(struct ex_regs *regs)
{
	asm volatile("outb %%al, %%dx" : : "a"(0), "d"(ACK_PORT));
	WRITE_ONCE(SHARED->level[my_id], READ_ONCE(SHARED->level[my_id]) + 1);
	apic_eoi();
}

static void edge_handler(struct ex_regs *regs)
{
	WRITE_ONCE(SHARED->edge[my_id], READ_ONCE(SHARED->edge[my_id]) + 1);
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

/*
 * vCPU 1 waits for vCPU 0's command while vCPU 0 works through a whole
 * phase, each of whose steps vCPU 0 bounds itself: give it more, so that
 * a step that never completes is reported by vCPU 0, naming the step.
 */
static void wait_cmd(uint64_t want, uint64_t what)
{
	uint64_t t0 = rdtsc(), v;

	while ((v = READ_ONCE(SHARED->cmd)) < want) {
		GUEST_ASSERT_2(rdtsc() - t0 < 4 * wait_limit, what, v);
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
	wait_cmd(2, 100);

	xapic_write_reg(APIC_DFR, 0x0fffffff);		/* cluster */
	xapic_write_reg(APIC_LDR, 0x11 << 24);		/* cluster 1, bit 0 */
	WRITE_ONCE(SHARED->phase, 2);
	wait_cmd(3, 101);

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
	wait_cmd(5, 102);

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
	/*
	 * KVM resets the BSP's LINT0 to ExtINT: node 0's PIC, which sees
	 * the IOAPIC phase's lines too, would interrupt this vCPU.
	 */
	xapic_write_reg(APIC_LVT0, APIC_LVT_MASKED);
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
	/* Node 0's thread drives its IOAPIC, whose pins go to vCPU 1. */
	GUEST_SYNC(IOAPIC_SYNC);
	/* Node 0's thread signals MSIs, then irqfd, to vCPU 1. */
	GUEST_SYNC(MSI_SYNC);
	odd1 += 2 * rounds;
	wait_for(&SHARED->odd[1], odd1, 21);
	nmi1 += rounds;		/* and KVM_NMI on node 0's copy */
	wait_for(&SHARED->nmi[1], nmi1, 22);

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

/* Wait until *@p, a count on the DSM page as node 0 sees it, is @want. */
static void host_wait(uint64_t *p, uint64_t want, const char *what)
{
	uint64_t t0 = dvm_now_ns(), v;

	while ((v = READ_ONCE(*p)) < want)
		DVM_ASSERT(dvm_now_ns() - t0 < WAIT_SECONDS * 1000000000ull,
			   "%s: %lu, want %lu", what, (unsigned long)v,
			   (unsigned long)want);
	DVM_ASSERT(v == want, "%s: %lu, want %lu", what, (unsigned long)v,
		   (unsigned long)want);
}

static void host_wait_odd1(uint64_t want)
{
	host_wait(&((struct ipi_shared *)dsm[0].hva)->odd[1], want,
		  "vCPU 1's VEC_ODD");
}

static void ioapic_get(struct kvm_vm *vm, struct kvm_irqchip *chip)
{
	memset(chip, 0, sizeof(*chip));
	chip->chip_id = KVM_IRQCHIP_IOAPIC;
	vm_ioctl(vm, KVM_GET_IRQCHIP, chip);
}

static void ioapic_route(struct kvm_irqchip *chip, int pin, uint8_t vector,
			 bool level)
{
	memset(&chip->chip.ioapic.redirtbl[pin], 0,
	       sizeof(chip->chip.ioapic.redirtbl[pin]));
	chip->chip.ioapic.redirtbl[pin].fields.vector = vector;
	chip->chip.ioapic.redirtbl[pin].fields.trig_mode = level;
	chip->chip.ioapic.redirtbl[pin].fields.dest_id = 1;	/* vCPU 1 */
}

/* Node 0's remote_irr of @pin clears once vCPU 1's EOI reached it. */
static void wait_remote_irr_clear(struct kvm_vm *vm, int pin)
{
	struct kvm_irqchip chip;
	uint64_t t0 = dvm_now_ns();

	for (;;) {
		ioapic_get(vm, &chip);
		if (!chip.chip.ioapic.redirtbl[pin].fields.remote_irr)
			return;
		DVM_ASSERT(dvm_now_ns() - t0 < WAIT_SECONDS * 1000000000ull,
			   "node 0's IOAPIC pin %d: remote_irr stays set", pin);
		usleep(1000);
	}
}

/*
 * Node 0's VMM routes IOAPIC pins 10 (level) and 11 (edge) to vCPU 1 and
 * raises them: each interrupt is taken once on node 1, whose EOI of the
 * level one clears node 0's remote_irr so that the next is delivered.
 * Node 1's own IOAPIC mirrors node 0's table, and ignores what its VMM
 * injects or sets.
 */
static void drive_ioapic(struct kvm_vm *vm0, struct kvm_vm *vm1)
{
	struct ipi_shared *sh = (void *)dsm[0].hva;
	struct kvm_irqchip chip, mirror;
	uint64_t i;

	ioapic_get(vm0, &chip);
	ioapic_route(&chip, GSI_LEVEL, VEC_LEVEL, true);
	ioapic_route(&chip, GSI_EDGE, VEC_EDGE, false);
	vm_ioctl(vm0, KVM_SET_IRQCHIP, &chip);

	/* Node 1's chips are dummies: nothing of this reaches vCPU 1. */
	kvm_irq_line(vm1, GSI_EDGE, 1);
	kvm_irq_line(vm1, GSI_EDGE, 0);
	ioapic_get(vm1, &mirror);
	mirror.chip.ioapic.redirtbl[GSI_EDGE].fields.vector = VEC_ODD;
	vm_ioctl(vm1, KVM_SET_IRQCHIP, &mirror);

	for (i = 0; i < rounds_run; i++) {
		/* Down again when vCPU 1 acks it; remote_irr until the EOI. */
		kvm_irq_line(vm0, GSI_LEVEL, 1);
		host_wait(&sh->level[1], i + 1, "vCPU 1's level interrupts");
		wait_remote_irr_clear(vm0, GSI_LEVEL);
		kvm_irq_line(vm0, GSI_EDGE, 1);
		kvm_irq_line(vm0, GSI_EDGE, 0);
		host_wait(&sh->edge[1], i + 1, "vCPU 1's edge interrupts");
	}
	ioapic_get(vm1, &mirror);
	DVM_ASSERT(mirror.chip.ioapic.redirtbl[GSI_LEVEL].bits ==
		   chip.chip.ioapic.redirtbl[GSI_LEVEL].bits &&
		   mirror.chip.ioapic.redirtbl[GSI_EDGE].bits ==
		   chip.chip.ioapic.redirtbl[GSI_EDGE].bits,
		   "node 1's IOAPIC pins 10/11 are %#llx/%#llx, node 0's %#llx/%#llx",
		   (unsigned long long)mirror.chip.ioapic.redirtbl[GSI_LEVEL].bits,
		   (unsigned long long)mirror.chip.ioapic.redirtbl[GSI_EDGE].bits,
		   (unsigned long long)chip.chip.ioapic.redirtbl[GSI_LEVEL].bits,
		   (unsigned long long)chip.chip.ioapic.redirtbl[GSI_EDGE].bits);
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

/* KVM_NMI on node 0's copy of vCPU 1: node 1 injects it. */
static void inject_nmis(struct kvm_vcpu *copy)
{
	struct ipi_shared *sh = (void *)dsm[0].hva;
	uint64_t base = READ_ONCE(sh->nmi[1]), i;

	for (i = 0; i < rounds_run; i++) {
		vcpu_ioctl(copy, KVM_NMI, NULL);
		host_wait(&sh->nmi[1], base + i + 1, "vCPU 1's NMIs");
	}
}

/* ---- the 4-node stress ---- */

#define STRESS_NODES	4
#define STRESS_SECONDS	30
#define STRESS_VEC	0xd0	/* + the sender's id */
#define STRESS_PAGES	(2 + STRESS_NODES)

/*
 * DSM page 0: ready flags, then done flags; page 1: IPIs sent; page
 * 2 + j: taken by j.
 */
static uint64_t *stress_taken(uint64_t to, uint64_t from)
{
	return dsm_word(2 + to, from);
}

static void stress_handler(struct ex_regs *regs)
{
	uint64_t *w = stress_taken(my_id, regs->vector - STRESS_VEC);

	WRITE_ONCE(*w, READ_ONCE(*w) + 1);
	x2apic_write_reg(APIC_EOI, 0);
}

/*
 * IPIs sent by this node's vCPU, by destination. A global: the library
 * enters guest code with a stack that SSE stores of a local array would
 * find misaligned.
 */
static uint64_t sent[STRESS_NODES];

static void guest_stress(uint64_t id, uint64_t ticks, uint64_t limit)
{
	uint64_t t0, j;

	my_id = id;
	wait_limit = limit;
	x2apic = true;
	x2apic_enable();
	asm volatile("sti");
	/* Nobody sends before every APIC is enabled, everywhere. */
	WRITE_ONCE(*dsm_word(0, id), 1);
	for (j = 0; j < STRESS_NODES; j++)
		wait_for(dsm_word(0, j), 1, 200 + j);

	t0 = rdtsc();
	while (rdtsc() - t0 < ticks) {
		for (j = 0; j < STRESS_NODES; j++) {
			if (j == id || READ_ONCE(*stress_taken(j, id)) != sent[j])
				continue;
			x2apic_ipi(j, APIC_DEST_PHYSICAL | APIC_DM_FIXED |
				   (STRESS_VEC + id));
			sent[j]++;
		}
	}
	for (j = 0; j < STRESS_NODES; j++) {
		if (j != id)
			wait_for(stress_taken(j, id), sent[j], 300 + j);
		WRITE_ONCE(*dsm_word(1, id * STRESS_NODES + j), sent[j]);
	}
	/*
	 * Take the others' IPIs until each of them saw all of its own
	 * taken: only then may this vCPU stop running.
	 */
	WRITE_ONCE(*dsm_word(0, STRESS_NODES + id), 1);
	for (j = 0; j < STRESS_NODES; j++)
		wait_for(dsm_word(0, STRESS_NODES + j), 1, 400 + j);
	GUEST_DONE();
}

static struct dvm_node snodes[STRESS_NODES];
static struct dsm_node sdsm[STRESS_NODES];

/* What every node counted, and the acknowledgements as node 0 reads them. */
static void stress_dump(void)
{
	uint64_t tx[KVM_DVM_STAT_IRQ_MODES], rx[KVM_DVM_STAT_IRQ_MODES];
	int i, j;

	for (i = 0; i < STRESS_NODES; i++) {
		dvm_stat_read(snodes[i].vm, "dvm_irq_sent", tx,
			      KVM_DVM_STAT_IRQ_MODES);
		dvm_stat_read(snodes[i].vm, "dvm_irq_received", rx,
			      KVM_DVM_STAT_IRQ_MODES);
		printf("# node %d: fixed IPIs sent %lu received %lu, rejected %lu, queue full %lu, hwm %lu\n",
		       i, (unsigned long)tx[0], (unsigned long)rx[0],
		       (unsigned long)dvm_stat(snodes[i].vm, "dvm_irq_rejected"),
		       (unsigned long)dvm_stat(snodes[i].vm, "dvm_irq_queue_full"),
		       (unsigned long)dvm_stat(snodes[i].vm, "dvm_irq_queue_hwm"));
		for (j = 0; j < STRESS_NODES; j++)
			printf("# vCPU %d took %lu from vCPU %d\n", i,
			       (unsigned long)dsm_hword(sdsm[0].hva, 2 + i, j),
			       j);
	}
}

static void *run_stress_vcpu(void *arg)
{
	struct kvm_vcpu *vcpu = arg;
	struct ucall uc;
	uint64_t cmd;

	DVM_ASSERT_OK(__vcpu_run(vcpu), "IPI stress");
	DVM_ASSERT(vcpu->run->exit_reason == KVM_EXIT_IO,
		   "IPI stress: vCPU %u: %s", vcpu->id, dvm_exit_why(vcpu));
	cmd = get_ucall(vcpu, &uc);
	if (cmd == UCALL_ABORT) {
		stress_dump();
		REPORT_GUEST_ASSERT_2(uc, "step %lu, value %lu");
	}
	DVM_ASSERT(cmd == UCALL_DONE,
		   "IPI stress: vCPU %u: ucall %lu (%lx %lx %lx)", vcpu->id,
		   (unsigned long)cmd, (unsigned long)uc.args[0],
		   (unsigned long)uc.args[1], (unsigned long)uc.args[2]);
	return NULL;
}

static void test_stress(const char *transport, uint64_t seconds)
{
	uint64_t khz, total = 0, sent, taken, stat_tx = 0, stat_rx = 0;
	uint64_t modes[KVM_DVM_STAT_IRQ_MODES];
	pthread_t th[STRESS_NODES];
	uint64_t faults = 0;
	int i, j;

	dsm_cluster_up(snodes, sdsm, STRESS_NODES, STRESS_NODES, guest_stress,
		       STRESS_PAGES, PG_LEVEL_4K);
	khz = __vcpu_ioctl(snodes[0].vcpus[0], KVM_GET_TSC_KHZ, NULL);
	for (i = 0; i < STRESS_NODES; i++) {
		struct kvm_vm *vm = snodes[i].vm;

		vm_init_descriptor_tables(vm);
		for (j = 0; j < STRESS_NODES; j++)
			vcpu_init_descriptor_tables(snodes[i].vcpus[j]);
		for (j = 0; j < STRESS_NODES; j++)
			vm_install_exception_handler(vm, STRESS_VEC + j,
						     stress_handler);
		vcpu_args_set(snodes[i].vcpus[i], 3, (uint64_t)i,
			      seconds * khz * 1000,
			      khz * 1000 * WAIT_SECONDS);
	}
	for (i = 0; i < STRESS_NODES; i++)
		pthread_create(&th[i], NULL, run_stress_vcpu,
			       snodes[i].vcpus[i]);
	for (i = 0; i < STRESS_NODES; i++)
		pthread_join(th[i], NULL);

	for (i = 0; i < STRESS_NODES; i++) {
		for (j = 0; j < STRESS_NODES; j++) {
			sent = dsm_hword(sdsm[0].hva, 1, i * STRESS_NODES + j);
			taken = dsm_hword(sdsm[0].hva, 2 + j, i);
			DVM_ASSERT(sent == taken && (i == j) == !sent,
				   "vCPU %d sent %lu IPIs to vCPU %d, which took %lu",
				   i, (unsigned long)sent, j,
				   (unsigned long)taken);
			total += sent;
		}
		dvm_stat_read(snodes[i].vm, "dvm_irq_sent", modes,
			      KVM_DVM_STAT_IRQ_MODES);
		stat_tx += modes[0];
		dvm_stat_read(snodes[i].vm, "dvm_irq_received", modes,
			      KVM_DVM_STAT_IRQ_MODES);
		stat_rx += modes[0];
		faults += dvm_stat(snodes[i].vm, "dvm_dsm_read_faults") +
			  dvm_stat(snodes[i].vm, "dvm_dsm_write_faults");
		DVM_ASSERT(!dvm_stat(snodes[i].vm, "dvm_irq_rejected") &&
			   !dvm_stat(snodes[i].vm, "dvm_irq_queue_full"),
			   "node %d refused interrupts", i);
	}
	DVM_ASSERT(stat_tx == total && stat_rx == total,
		   "%lu IPIs taken, nodes counted %lu sent and %lu received",
		   (unsigned long)total, (unsigned long)stat_tx,
		   (unsigned long)stat_rx);
	/* Every acknowledgement is a DSM transaction or more. */
	DVM_ASSERT(total >= 12 && faults >= total,
		   "%lu IPIs, %lu DSM faults", (unsigned long)total,
		   (unsigned long)faults);
	dsm_cluster_down(snodes, sdsm, STRESS_NODES, STRESS_PAGES);
	ksft_test_result_pass("%s: stress: 4 nodes, %lu s: %lu IPIs, each taken once by its destination; %lu DSM faults\n",
			      transport, (unsigned long)seconds,
			      (unsigned long)total, (unsigned long)faults);
}

/* What each node counted, and the shared page as node 0 reads it. */
static void ipi_dump(void)
{
	uint64_t tx[KVM_DVM_STAT_IRQ_MODES], rx[KVM_DVM_STAT_IRQ_MODES];
	struct ipi_shared *sh = (void *)dsm[0].hva;
	int i, m;

	for (i = 0; i < 2; i++) {
		dvm_stat_read(nodes[i].vm, "dvm_irq_sent", tx,
			      KVM_DVM_STAT_IRQ_MODES);
		dvm_stat_read(nodes[i].vm, "dvm_irq_received", rx,
			      KVM_DVM_STAT_IRQ_MODES);
		printf("# node %d: interrupts sent/received by mode:", i);
		for (m = 0; m < KVM_DVM_STAT_IRQ_MODES; m++)
			printf(" %lu/%lu", (unsigned long)tx[m],
			       (unsigned long)rx[m]);
		printf("; rejected %lu, queue hwm %lu, APIC mirrors sent %lu applied %lu\n",
		       (unsigned long)dvm_stat(nodes[i].vm, "dvm_irq_rejected"),
		       (unsigned long)dvm_stat(nodes[i].vm, "dvm_irq_queue_hwm"),
		       (unsigned long)dvm_stat(nodes[i].vm, "dvm_apic_mirror_sent"),
		       (unsigned long)dvm_stat(nodes[i].vm, "dvm_apic_mirror_applied"));
	}
	printf("# shared: phase %lu cmd %lu odd %lu/%lu even %lu/%lu nmi %lu/%lu kicks %lu level %lu edge %lu\n",
	       (unsigned long)sh->phase, (unsigned long)sh->cmd,
	       (unsigned long)sh->odd[0], (unsigned long)sh->odd[1],
	       (unsigned long)sh->even[0], (unsigned long)sh->even[1],
	       (unsigned long)sh->nmi[0], (unsigned long)sh->nmi[1],
	       (unsigned long)sh->kicks, (unsigned long)sh->level[1],
	       (unsigned long)sh->edge[1]);
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
		if (r->id == 1 && run->io.port == ACK_PORT) {
			kvm_irq_line(nodes[0].vm, GSI_LEVEL, 0);
			continue;
		}
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
			printf("# vCPU %d failed\n", r->id);
			ipi_dump();
			REPORT_GUEST_ASSERT_2(uc, "step %lu, value %lu");
			break;
		case UCALL_DONE:
			DVM_ASSERT(r->id == 0, "vCPU %d: GUEST_DONE", r->id);
			return NULL;
		case UCALL_SYNC:
			DVM_ASSERT(r->id == 0 && (uc.args[1] == MSI_SYNC ||
						  uc.args[1] == IOAPIC_SYNC),
				   "vCPU %d: GUEST_SYNC %lu", r->id,
				   (unsigned long)uc.args[1]);
			if (uc.args[1] == IOAPIC_SYNC) {
				drive_ioapic(nodes[0].vm, nodes[1].vm);
			} else {
				signal_msis(r->vcpu->vm);
				inject_nmis(nodes[0].vcpus[1]);
			}
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
	vm_install_exception_handler(vm, VEC_LEVEL, level_handler);
	vm_install_exception_handler(vm, VEC_EDGE, edge_handler);
	virt_pg_map(vm, APIC_DEFAULT_GPA, APIC_DEFAULT_GPA);
}

static void check_stats(uint64_t rounds)
{
	uint64_t sent[2][KVM_DVM_STAT_IRQ_MODES];
	uint64_t rcvd[2][KVM_DVM_STAT_IRQ_MODES];
	uint64_t want[KVM_DVM_STAT_IRQ_MODES] = {
		[0] = 13 * rounds,	/* fixed: IPIs, ALLINC's remote part,
					 * IOAPIC and MSIs
					 */
		[1] = rounds,		/* lowest priority, odd vector */
		[3] = rounds,		/* PV kick */
		[4] = 3 * rounds,	/* NMI: IPIs and KVM_NMI */
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
	/* Level EOIs only: edge pins without ack notifiers need none. */
	DVM_ASSERT(dvm_stat(nodes[1].vm, "dvm_eoi_sent") == rounds &&
		   dvm_stat(nodes[0].vm, "dvm_eoi_received") == rounds &&
		   !dvm_stat(nodes[0].vm, "dvm_eoi_sent") &&
		   !dvm_stat(nodes[1].vm, "dvm_eoi_received"),
		   "EOIs: node 1 sent %lu, node 0 received %lu, want %lu",
		   (unsigned long)dvm_stat(nodes[1].vm, "dvm_eoi_sent"),
		   (unsigned long)dvm_stat(nodes[0].vm, "dvm_eoi_received"),
		   (unsigned long)rounds);
	/* KVM_SET_IRQCHIP on node 0: all 24 pins to node 1. */
	DVM_ASSERT(dvm_stat(nodes[0].vm, "dvm_ioapic_rte_sent") == 24 &&
		   dvm_stat(nodes[1].vm, "dvm_ioapic_rte_applied") == 24 &&
		   /* GSI 11 goes to the PIC and the IOAPIC: 2 x 2 drops. */
		   dvm_stat(nodes[1].vm, "dvm_irqchip_dropped") == 4 &&
		   !dvm_stat(nodes[0].vm, "dvm_irqchip_dropped"),
		   "IOAPIC entries: node 0 sent %lu, node 1 applied %lu; injections dropped on node 1 %lu",
		   (unsigned long)dvm_stat(nodes[0].vm, "dvm_ioapic_rte_sent"),
		   (unsigned long)dvm_stat(nodes[1].vm, "dvm_ioapic_rte_applied"),
		   (unsigned long)dvm_stat(nodes[1].vm, "dvm_irqchip_dropped"));
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

	check_stats(rounds);
	memcpy(&sh, dsm[0].hva, sizeof(sh));
	DVM_ASSERT(sh.odd[1] == 12 * rounds && sh.odd[0] == rounds &&
		   sh.even[0] == rounds && !sh.even[1] &&
		   sh.nmi[1] == 3 * rounds && !sh.nmi[0] &&
		   sh.kicks == rounds && sh.level[1] == rounds &&
		   sh.edge[1] == rounds && !sh.level[0] && !sh.edge[0],
		   "taken: odd %lu/%lu even %lu/%lu nmi %lu/%lu kicks %lu",
		   (unsigned long)sh.odd[0], (unsigned long)sh.odd[1],
		   (unsigned long)sh.even[0], (unsigned long)sh.even[1],
		   (unsigned long)sh.nmi[0], (unsigned long)sh.nmi[1],
		   (unsigned long)sh.kicks);
	dsm_cluster_down(nodes, dsm, 2, 1);
	ksft_test_result_pass("%s: %lu rounds of %d kinds of IPI, IOAPIC and MSI interrupts, INIT/SIPI\n",
			      transport, (unsigned long)rounds, 18);
}

int main(int argc, char *argv[])
{
	const char *rdma = getenv("DVM_RDMA_ADDR");
	uint64_t rounds = argc > 1 ? strtoull(argv[1], NULL, 0) : IPI_ROUNDS;
	uint64_t seconds = argc > 2 ? strtoull(argv[2], NULL, 0) :
				      STRESS_SECONDS;
	uint64_t repeat = argc > 3 ? strtoull(argv[3], NULL, 0) : 1, i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	ksft_print_header();
	dvm_require_abi();
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_DVM) & KVM_DVM_CAP_IRQCHIP);
	TEST_REQUIRE(rounds > 0 && repeat > 0 && repeat < 100000);
	ksft_set_plan(2 * repeat + 2);

	for (i = 0; i < repeat; i++)
		test_ipi("tcp", rounds);
	test_stress("tcp", seconds);
	if (rdma && *rdma) {
		dvm_rdma_addr = rdma;
		for (i = 0; i < repeat; i++)
			test_ipi("rdma", rounds);
		test_stress("rdma", seconds);
		dvm_rdma_addr = NULL;
	} else {
		for (i = 0; i < repeat; i++)
			ksft_test_result_skip("rdma: DVM_RDMA_ADDR (an IPv4 address of an rxe device) not set\n");
		ksft_test_result_skip("rdma: stress: DVM_RDMA_ADDR not set\n");
	}
	ksft_finished();
}
