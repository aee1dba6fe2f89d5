// SPDX-License-Identifier: GPL-2.0
/*
 * dvm_io_test: port and MMIO accesses of a vCPU on node 1 reach node 0
 * (KVM_DVM_JOIN_FORWARD_IO) and complete there.
 *
 * vCPU 1 first enables x2APIC: node 0's proxy, which holds the copy's
 * mutex while it waits, applies the new APIC base itself.
 *
 * vCPU 1 runs on node 1; node 0's thread runs KVM_RUN of node 0's copy of
 * vCPU 1, the proxy, and answers what the proxy returns: OUT and IN of 1,
 * 2 and 4 bytes, rep outsb and rep insb over page boundaries, MMIO
 * writes and reads of 1, 2, 4, 8 and 16 bytes (KVM splits the last in
 * two). Node 0's own devices answer without its thread: its in-kernel
 * IOAPIC (a register read), an ioeventfd (fires) and a coalesced MMIO
 * zone (the write lands in node 0's ring). Node 1's VMM sees none of
 * these exits. vCPU 1 checks what it reads, node 0's thread what it was
 * written. Node 1's vCPU ends with a triple fault, which goes to node 0
 * too: its thread sees KVM_EXIT_SHUTDOWN of the copy and powers the VM
 * off (KVM_DVM_VM_CONTROL), which ends node 1's KVM_RUN with
 * KVM_EXIT_SYSTEM_EVENT and the proxy's too. Both nodes' counters of
 * forwarded accesses must match the exits seen.
 *
 * memslot: node 0's thread maps, moves and unmaps a slot of the memory
 * file while vCPU 1 runs on node 1, each time while it handles vCPU 1's
 * OUT asking for it: the next access of vCPU 1 already sees the new map
 * (memory where mapped, an MMIO exit to node 0 where not). Node 1's VMM
 * makes no slot of its own (EPERM), node 0's outside the memory file is
 * refused (EXDEV).
 *
 * vCPU 1 cannot use ucalls: they are port I/O, forwarded like the rest,
 * and node 0's copy has not the registers that locate them. It reports
 * on the DSM page instead.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "apic.h"
#include "dvm_dsm.h"

#define IO_PORT		0x5e0	/* node 0's thread answers */
#define EVT_PORT	0x5e8	/* an ioeventfd of node 0 */
#define MMIO_GPA	0xc0000000ull	/* no memory: MMIO */
#define COAL_GPA	(MMIO_GPA + 0x1000)	/* coalesced on node 0 */
#define IOAPIC_GPA	0xfec00000ull
#define IOAPIC_VERSION	0x00170011u	/* KVM's: 24 pins, version 0x11 */
#define STR_LEN		5000	/* rep outsb/insb, over page boundaries */
#define STR_OFF		4000	/* from this byte of DSM page 1 */
#define IO_PAGES	4
#define SIGNAL_ROUNDS	300
#define MAP_PORT	0x5f0	/* OUT: node 0's thread changes the map */
#define MAP_GPA_A	0xe0000000ull	/* where the slot is mapped first */
#define MAP_GPA_B	0xe0200000ull	/* then moved */
#define MAP_SLOT	11
#define MAP_PAGE	3	/* of the memory file, in the slot */
#define MAP_MAGIC	0x6d656d736c6f7421ull
#define MAP_WRITTEN	0x7772697474656e21ull
#define UNMAPPED	0x756e6d6170706564ull	/* node 0's MMIO answer */

enum { TEST_ACCESSES, TEST_SIGNALS, TEST_BREAK, TEST_MEMSLOT };

/* DSM page 0: vCPU 1's report. */
struct io_report {
	uint64_t done;		/* 1: every check passed */
	uint64_t step;		/* else the first that failed */
	uint64_t value;		/* and what it read */
};

#define REPORT	((struct io_report *)DSM_GVA)
#define STR	((uint8_t *)DSM_GVA + 4096 + STR_OFF)

static const uint64_t in_value[9] = {
	[1] = 0xa1, [2] = 0xb2c3, [4] = 0xd4e5f6a7,
	[8] = 0x0f1e2d3c4b5a6978ull,
};

static const uint32_t out_value[3] = { 0x11, 0x2233, 0x44556677 };

static uint8_t out_pattern(uint32_t i)
{
	return i * 7 + 3;
}

static uint8_t in_pattern(uint32_t i)
{
	return i * 5 + 1;
}

static uint64_t mmio_out_value(uint32_t size)
{
	return 0x8877665544332211ull >> (8 * (8 - size));
}

/* Triple fault: KVM_EXIT_SHUTDOWN, which node 1 forwards to node 0. */
static void __noreturn guest_end(void)
{
	struct desc_ptr idt = { .size = 0, .address = 0 };

	asm volatile("lidt %0; int3" : : "m"(idt));
	for (;;)
		asm volatile("hlt");
}

static void guest_check(bool ok, uint64_t step, uint64_t value)
{
	if (ok)
		return;
	WRITE_ONCE(REPORT->step, step);
	WRITE_ONCE(REPORT->value, value);
	guest_end();
}

static void guest_pio(void)
{
	uint64_t src, dst, n;
	uint8_t b;
	uint16_t w;
	uint32_t l, i;

	asm volatile("outb %%al, %%dx" : : "a"(out_value[0]), "d"(IO_PORT));
	asm volatile("outw %%ax, %%dx" : : "a"(out_value[1]), "d"(IO_PORT));
	asm volatile("outl %%eax, %%dx" : : "a"(out_value[2]), "d"(IO_PORT));
	asm volatile("inb %%dx, %%al" : "=a"(b) : "d"(IO_PORT));
	guest_check(b == in_value[1], 1, b);
	asm volatile("inw %%dx, %%ax" : "=a"(w) : "d"(IO_PORT));
	guest_check(w == in_value[2], 2, w);
	asm volatile("inl %%dx, %%eax" : "=a"(l) : "d"(IO_PORT));
	guest_check(l == in_value[4], 4, l);

	for (i = 0; i < STR_LEN; i++)
		STR[i] = out_pattern(i);
	src = (uint64_t)STR;
	n = STR_LEN;
	asm volatile("cld; rep outsb" : "+S"(src), "+c"(n) : "d"(IO_PORT)
		     : "memory");
	for (i = 0; i < STR_LEN; i++)
		STR[i] = 0;
	dst = (uint64_t)STR;
	n = STR_LEN;
	asm volatile("cld; rep insb" : "+D"(dst), "+c"(n) : "d"(IO_PORT)
		     : "memory");
	for (i = 0; i < STR_LEN; i++)
		guest_check(STR[i] == in_pattern(i), 5, i);
}

static void guest_mmio(void)
{
	void *p = (void *)MMIO_GPA;
	uint64_t lo, hi, v;

	WRITE_ONCE(*(uint8_t *)p, mmio_out_value(1));
	WRITE_ONCE(*(uint16_t *)p, mmio_out_value(2));
	WRITE_ONCE(*(uint32_t *)p, mmio_out_value(4));
	WRITE_ONCE(*(uint64_t *)p, mmio_out_value(8));
	/* 16 bytes: KVM makes two exits of 8. */
	lo = mmio_out_value(8);
	hi = ~lo;
	asm volatile("movq %0, %%xmm0; movq %1, %%xmm1;"
		     "punpcklqdq %%xmm1, %%xmm0; movdqu %%xmm0, (%2)"
		     : : "r"(lo), "r"(hi), "r"(p) : "xmm0", "xmm1", "memory");

	v = READ_ONCE(*(uint8_t *)p);
	guest_check(v == (uint8_t)in_value[8], 11, v);
	v = READ_ONCE(*(uint16_t *)p);
	guest_check(v == (uint16_t)in_value[8], 12, v);
	v = READ_ONCE(*(uint32_t *)p);
	guest_check(v == (uint32_t)in_value[8], 14, v);
	v = READ_ONCE(*(uint64_t *)p);
	guest_check(v == in_value[8], 18, v);
	asm volatile("movdqu (%2), %%xmm0; movq %%xmm0, %0;"
		     "punpckhqdq %%xmm0, %%xmm0; movq %%xmm0, %1"
		     : "=r"(lo), "=r"(hi) : "r"(p) : "xmm0", "memory");
	guest_check(lo == in_value[8] && hi == ~in_value[8], 32, hi);
}

/* Node 0's in-kernel devices answer these: its thread sees nothing. */
static void guest_in_kernel(void)
{
	uint32_t *ioapic = (uint32_t *)IOAPIC_GPA, v;

	WRITE_ONCE(ioapic[0], 1);		/* IOREGSEL: version */
	v = READ_ONCE(ioapic[4]);		/* IOWIN */
	guest_check(v == IOAPIC_VERSION, 40, v);
	asm volatile("outb %%al, %%dx" : : "a"(1), "d"(EVT_PORT));
	WRITE_ONCE(*(uint32_t *)COAL_GPA, 0xfeedface);
}

/* INs answered 1, 2, 3...: none lost, none made twice. */
static void guest_count(uint64_t rounds)
{
	uint32_t v;
	uint64_t i;

	for (i = 1; i <= rounds; i++) {
		asm volatile("inl %%dx, %%eax" : "=a"(v) : "d"(IO_PORT));
		guest_check(v == i, 50, v);
	}
}

static uint64_t guest_read(uint64_t gpa)
{
	return READ_ONCE(*(uint64_t *)gpa);
}

/* Each OUT to MAP_PORT: node 0 changed the map before it completes. */
static void guest_memslot(void)
{
	uint64_t v;

	v = guest_read(MAP_GPA_A);
	guest_check(v == UNMAPPED, 60, v);
	asm volatile("outl %%eax, %%dx" : : "a"(1), "d"(MAP_PORT));
	v = guest_read(MAP_GPA_A);
	guest_check(v == MAP_MAGIC, 61, v);
	asm volatile("outl %%eax, %%dx" : : "a"(2), "d"(MAP_PORT));
	v = guest_read(MAP_GPA_B);
	guest_check(v == MAP_MAGIC, 62, v);
	v = guest_read(MAP_GPA_A);
	guest_check(v == UNMAPPED, 63, v);
	WRITE_ONCE(*(uint64_t *)MAP_GPA_B, MAP_WRITTEN);
	asm volatile("outl %%eax, %%dx" : : "a"(3), "d"(MAP_PORT));
	v = guest_read(MAP_GPA_B);
	guest_check(v == UNMAPPED, 64, v);
}

static void guest_code(uint64_t test, uint64_t rounds)
{
	switch (test) {
	case TEST_ACCESSES:
		/* Node 0's proxy of this vCPU applies the new APIC base. */
		x2apic_enable();
		guest_pio();
		guest_mmio();
		guest_in_kernel();
		break;
	case TEST_SIGNALS:
		guest_count(rounds);
		break;
	case TEST_BREAK:
		guest_count(1);
		break;
	case TEST_MEMSLOT:
		guest_memslot();
		break;
	}
	WRITE_ONCE(REPORT->done, 1);
	guest_end();
}

/* Node 0's thread: the proxy's exits, checked and answered. */
struct proxy {
	struct kvm_vcpu *copy;
	pthread_t thread;
	bool stop;
	uint32_t exits[KVM_DVM_STAT_IO_KINDS];
	uint32_t outs, ins;	/* bytes of the rep strings */
	uint32_t step;		/* of the fixed sequence below */
	uint32_t mmio_writes, mmio_reads;
};

static void proxy_pio(struct proxy *p, struct kvm_run *run)
{
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	uint32_t i, v = 0;

	TEST_ASSERT(run->io.port == IO_PORT, "proxy: port %#x",
		    run->io.port);
	if (run->io.direction == KVM_EXIT_IO_OUT) {
		p->exits[KVM_DVM_STAT_IO_PIO_OUT]++;
		if (p->step < 3) {
			/* OUT of 1, 2, 4 bytes */
			TEST_ASSERT(run->io.size == 1u << p->step &&
				    run->io.count == 1,
				    "OUT %u: size %u count %u", p->step,
				    run->io.size, run->io.count);
			memcpy(&v, data, run->io.size);
			TEST_ASSERT(v == out_value[p->step], "OUT %u: %#x",
				    p->step, v);
			p->step++;
			return;
		}
		TEST_ASSERT(run->io.size == 1 && p->step == 6,
			    "rep outsb: size %u at step %u", run->io.size,
			    p->step);
		for (i = 0; i < run->io.count; i++, p->outs++)
			TEST_ASSERT(data[i] == out_pattern(p->outs),
				    "rep outsb: byte %u is %#x", p->outs,
				    data[i]);
		if (p->outs == STR_LEN)
			p->step++;
		return;
	}
	p->exits[KVM_DVM_STAT_IO_PIO_IN]++;
	if (p->step >= 3 && p->step < 6) {
		TEST_ASSERT(run->io.size == 1u << (p->step - 3) &&
			    run->io.count == 1, "IN %u: size %u count %u",
			    p->step, run->io.size, run->io.count);
		memcpy(data, &in_value[run->io.size], run->io.size);
		p->step++;
		return;
	}
	TEST_ASSERT(run->io.size == 1 && p->step == 7,
		    "rep insb: size %u at step %u", run->io.size, p->step);
	for (i = 0; i < run->io.count; i++, p->ins++)
		data[i] = in_pattern(p->ins);
	if (p->ins == STR_LEN)
		p->step++;
}

/* Writes of 1, 2, 4, 8, then 8 and 8; reads the same. */
static const uint32_t mmio_sizes[] = { 1, 2, 4, 8, 8, 8 };

static void proxy_mmio(struct proxy *p, struct kvm_run *run)
{
	uint64_t v = 0, want;
	uint32_t n;

	TEST_ASSERT(run->mmio.phys_addr == MMIO_GPA ||
		    run->mmio.phys_addr == MMIO_GPA + 8,
		    "proxy: MMIO at %#llx", run->mmio.phys_addr);
	if (run->mmio.is_write) {
		n = p->mmio_writes++;
		p->exits[KVM_DVM_STAT_IO_MMIO_WRITE]++;
		TEST_ASSERT(p->step == 8 && n < 6 &&
			    run->mmio.len == mmio_sizes[n],
			    "MMIO write %u: %u bytes at step %u", n,
			    run->mmio.len, p->step);
		memcpy(&v, run->mmio.data, run->mmio.len);
		want = n < 5 ? mmio_out_value(mmio_sizes[n]) :
			       ~mmio_out_value(8);
		TEST_ASSERT(v == want && run->mmio.phys_addr ==
			    MMIO_GPA + (n == 5 ? 8 : 0),
			    "MMIO write %u: %#lx at %#llx", n,
			    (unsigned long)v, run->mmio.phys_addr);
		if (n == 5)
			p->step++;
		return;
	}
	n = p->mmio_reads++;
	p->exits[KVM_DVM_STAT_IO_MMIO_READ]++;
	TEST_ASSERT(p->step == 9 && n < 6 && run->mmio.len == mmio_sizes[n],
		    "MMIO read %u: %u bytes at step %u", n, run->mmio.len,
		    p->step);
	v = run->mmio.phys_addr == MMIO_GPA + 8 ? ~in_value[8] : in_value[8];
	memcpy(run->mmio.data, &v, run->mmio.len);
}

static void stop_handler(int sig)
{
}

/*
 * Node 1's triple fault, as node 0's copy's exit: node 0's VMM powers the
 * VM off (QEMU's -no-reboot). Every KVM_RUN ends with the power-off,
 * the proxy's next one too.
 */
static void proxy_shutdown(struct kvm_vm *vm, uint32_t *exits)
{
	exits[KVM_DVM_STAT_IO_SHUTDOWN]++;
	dvm_vm_control(vm, KVM_DVM_VM_POWEROFF);
}

static bool is_poweroff(struct kvm_run *run)
{
	return run->exit_reason == KVM_EXIT_SYSTEM_EVENT &&
	       run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN;
}

static void *proxy_thread(void *arg)
{
	struct proxy *p = arg;
	struct kvm_run *run = p->copy->run;

	while (dvm_proxy_next(p->copy, &p->stop)) {
		if (run->exit_reason == KVM_EXIT_IO)
			proxy_pio(p, run);
		else if (run->exit_reason == KVM_EXIT_MMIO)
			proxy_mmio(p, run);
		else if (run->exit_reason == KVM_EXIT_SHUTDOWN)
			proxy_shutdown(p->copy->vm, p->exits);
		else if (!is_poweroff(run))
			TEST_FAIL("proxy: exit reason %u", run->exit_reason);
		else
			break;
	}
	return NULL;
}

static struct dvm_node nodes[2];
static struct dsm_node dsm[2];

static void map_mmio(struct kvm_vm *vm)
{
	virt_pg_map(vm, MMIO_GPA, MMIO_GPA);
	virt_pg_map(vm, COAL_GPA, COAL_GPA);
	virt_pg_map(vm, IOAPIC_GPA, IOAPIC_GPA);
	virt_pg_map(vm, MAP_GPA_A, MAP_GPA_A);
	virt_pg_map(vm, MAP_GPA_B, MAP_GPA_B);
}

static void check_stats(struct proxy *p)
{
	uint64_t fwd[KVM_DVM_STAT_IO_KINDS], prx[KVM_DVM_STAT_IO_KINDS];
	/* The in-kernel ones: ioeventfd; IOREGSEL and coalesced; IOWIN. */
	uint32_t kernel[KVM_DVM_STAT_IO_KINDS] = { 1, 0, 2, 1 };
	uint64_t total = 0;
	int k;

	dvm_stat_read(nodes[1].vm, "dvm_io_forwarded", fwd,
		      KVM_DVM_STAT_IO_KINDS);
	dvm_stat_read(nodes[0].vm, "dvm_io_proxied", prx,
		      KVM_DVM_STAT_IO_KINDS);
	for (k = 0; k < KVM_DVM_STAT_IO_KINDS; k++) {
		DVM_ASSERT(fwd[k] == p->exits[k] + kernel[k] &&
			   prx[k] == fwd[k],
			   "kind %d: node 1 forwarded %lu, node 0 proxied %lu, its VMM saw %u, want %u more",
			   k, (unsigned long)fwd[k], (unsigned long)prx[k],
			   p->exits[k], kernel[k]);
		total += fwd[k];
	}
	DVM_ASSERT(dvm_stat(nodes[0].vm, "dvm_io_in_kernel") == 4 &&
		   !dvm_stat(nodes[0].vm, "dvm_io_rejected") &&
		   !dvm_stat(nodes[1].vm, "dvm_io_rejected") &&
		   dvm_stat(nodes[1].vm, "dvm_io_rtt_count") == total,
		   "in kernel %lu, rejected %lu/%lu, round trips %lu of %lu",
		   (unsigned long)dvm_stat(nodes[0].vm, "dvm_io_in_kernel"),
		   (unsigned long)dvm_stat(nodes[0].vm, "dvm_io_rejected"),
		   (unsigned long)dvm_stat(nodes[1].vm, "dvm_io_rejected"),
		   (unsigned long)dvm_stat(nodes[1].vm, "dvm_io_rtt_count"),
		   (unsigned long)total);
	/* rep strings: KVM splits them, never across a page of the string. */
	DVM_ASSERT(p->exits[KVM_DVM_STAT_IO_PIO_OUT] >= 3 + 2 &&
		   p->exits[KVM_DVM_STAT_IO_PIO_IN] >= 3 + 2,
		   "rep strings in %u OUT and %u IN exits",
		   p->exits[KVM_DVM_STAT_IO_PIO_OUT],
		   p->exits[KVM_DVM_STAT_IO_PIO_IN]);
}

/* What node 0's ioeventfd and coalesced MMIO zone got. */
static void check_in_kernel(int efd)
{
	struct kvm_coalesced_mmio_ring *ring;
	struct kvm_coalesced_mmio *e;
	uint64_t n = 0;

	DVM_ASSERT(read(efd, &n, 8) == 8 && n == 1,
		   "node 0's ioeventfd: %lu", (unsigned long)n);
	ring = (void *)((char *)nodes[0].vcpus[1]->run +
			KVM_COALESCED_MMIO_PAGE_OFFSET * getpagesize());
	DVM_ASSERT(ring->last == ring->first + 1,
		   "node 0's coalesced ring: first %u last %u", ring->first,
		   ring->last);
	e = &ring->coalesced_mmio[ring->first];
	DVM_ASSERT(e->phys_addr == COAL_GPA && e->len == 4 &&
		   *(uint32_t *)e->data == 0xfeedface,
		   "coalesced entry: %u bytes at %#llx: %#x", e->len,
		   (unsigned long long)e->phys_addr, *(uint32_t *)e->data);
}

/* Two nodes that forward I/O; vCPU 1 on node 1 runs @test. */
static void io_cluster_up(uint64_t test, uint64_t rounds)
{
	int i;

	dvm_join_flags = KVM_DVM_JOIN_FORWARD_IO;
	dsm_cluster_up(nodes, dsm, 2, 2, guest_code, IO_PAGES, PG_LEVEL_4K);
	dvm_join_flags = 0;
	for (i = 0; i < 2; i++)
		map_mmio(nodes[i].vm);
	vcpu_args_set(nodes[1].vcpus[1], 2, test, rounds);
}

/*
 * Node 1's vCPU ended with its triple fault, which node 0 answered with
 * the power-off; all its checks passed.
 */
static void check_report(struct kvm_run *run)
{
	struct io_report rep;

	DVM_ASSERT(is_poweroff(run),
		   "node 1: %s, want KVM_EXIT_SYSTEM_EVENT (shutdown) only",
		   dvm_exit_why(nodes[1].vcpus[1]));
	memcpy(&rep, dsm[1].hva, sizeof(rep));
	DVM_ASSERT(rep.done, "vCPU 1 failed step %lu: read %#lx",
		   (unsigned long)rep.step, (unsigned long)rep.value);
}

static void test_io(const char *transport)
{
	struct kvm_coalesced_mmio_zone zone = {
		.addr = COAL_GPA, .size = 4096,
	};
	struct kvm_ioeventfd ioev = {
		.addr = EVT_PORT, .len = 1, .flags = KVM_IOEVENTFD_FLAG_PIO,
	};
	struct proxy p = { };
	struct kvm_run *run;
	uint64_t base;
	int efd;

	io_cluster_up(TEST_ACCESSES, 0);
	efd = eventfd(0, EFD_NONBLOCK);
	TEST_ASSERT(efd >= 0, "eventfd");
	ioev.fd = efd;
	vm_ioctl(nodes[0].vm, KVM_IOEVENTFD, &ioev);
	vm_ioctl(nodes[0].vm, KVM_REGISTER_COALESCED_MMIO, &zone);

	p.copy = nodes[0].vcpus[1];
	pthread_create(&p.thread, NULL, proxy_thread, &p);

	run = nodes[1].vcpus[1]->run;
	DVM_ASSERT_OK(__vcpu_run(nodes[1].vcpus[1]), "node 1's KVM_RUN");
	check_report(run);

	/* The power-off ended the proxy's KVM_RUN too. */
	pthread_join(p.thread, NULL);
	DVM_ASSERT(p.exits[KVM_DVM_STAT_IO_SHUTDOWN] == 1 &&
		   dvm_stat(nodes[0].vm, "dvm_vm_poweroffs") == 1 &&
		   dvm_stat(nodes[1].vm, "dvm_vm_poweroffs") == 1,
		   "%u triple faults at node 0, power-offs %lu/%lu",
		   p.exits[KVM_DVM_STAT_IO_SHUTDOWN],
		   (unsigned long)dvm_stat(nodes[0].vm, "dvm_vm_poweroffs"),
		   (unsigned long)dvm_stat(nodes[1].vm, "dvm_vm_poweroffs"));
	DVM_ASSERT(p.step == 9 && p.outs == STR_LEN && p.ins == STR_LEN &&
		   p.mmio_reads == 6,
		   "proxy at step %u: %u bytes out, %u in, %u MMIO reads",
		   p.step, p.outs, p.ins, p.mmio_reads);
	check_stats(&p);
	check_in_kernel(efd);
	base = vcpu_get_msr(nodes[0].vcpus[1], MSR_IA32_APICBASE);
	DVM_ASSERT(base & X2APIC_ENABLE,
		   "node 0's copy of vCPU 1: APIC base %#lx, not x2APIC",
		   (unsigned long)base);
	close(efd);
	dsm_cluster_down(nodes, dsm, 2, IO_PAGES);
	ksft_test_result_pass("%s: node 1's PIO (1/2/4 bytes, rep of %d over pages), MMIO (1-16 bytes), triple fault answered by node 0's VMM; IOAPIC, ioeventfd, coalesced MMIO by node 0's kernel; power-off ends both\n",
			      transport, STR_LEN);
}

/* ---- node 0's memory map ---- */

struct mapper {
	struct kvm_vcpu *copy;
	pthread_t thread;
	uint32_t outs;
	uint32_t unmapped_reads;
	uint64_t written;
};

/* Node 0's VMM moves memory as vCPU 1's OUTs ask, as a device would. */
static void mapper_out(struct mapper *p, uint32_t v)
{
	struct kvm_vm *vm = p->copy->vm;
	void *page = dsm[0].hva + MAP_PAGE * 4096;

	TEST_ASSERT(v == p->outs + 1, "map OUT %u after %u", v, p->outs);
	p->outs = v;
	switch (v) {
	case 1:
		vm_set_user_memory_region(vm, MAP_SLOT, 0, MAP_GPA_A, 4096,
					  page);
		break;
	case 2:
		vm_set_user_memory_region(vm, MAP_SLOT, 0, MAP_GPA_A, 0, page);
		vm_set_user_memory_region(vm, MAP_SLOT, 0, MAP_GPA_B, 4096,
					  page);
		break;
	case 3:
		p->written = READ_ONCE(*(uint64_t *)page);
		vm_set_user_memory_region(vm, MAP_SLOT, 0, MAP_GPA_B, 0, page);
		break;
	}
}

static void *mapper_thread(void *arg)
{
	struct mapper *p = arg;
	struct kvm_run *run = p->copy->run;
	uint64_t v = UNMAPPED;

	for (;;) {
		DVM_ASSERT_OK(__vcpu_run(p->copy), "proxy KVM_RUN");
		if (run->exit_reason == KVM_EXIT_SHUTDOWN) {
			dvm_vm_control(p->copy->vm, KVM_DVM_VM_POWEROFF);
			continue;
		}
		if (is_poweroff(run))
			return NULL;
		if (run->exit_reason == KVM_EXIT_IO) {
			TEST_ASSERT(run->io.port == MAP_PORT &&
				    run->io.size == 4 &&
				    run->io.direction == KVM_EXIT_IO_OUT,
				    "mapper: port %#x", run->io.port);
			mapper_out(p, *(uint32_t *)((uint8_t *)run +
						    run->io.data_offset));
			continue;
		}
		TEST_ASSERT(run->exit_reason == KVM_EXIT_MMIO &&
			    !run->mmio.is_write && run->mmio.len == 8 &&
			    (run->mmio.phys_addr == MAP_GPA_A ||
			     run->mmio.phys_addr == MAP_GPA_B),
			    "mapper: exit %u at %#llx", run->exit_reason,
			    run->mmio.phys_addr);
		p->unmapped_reads++;
		memcpy(run->mmio.data, &v, 8);
	}
}

static void test_memslot(const char *transport)
{
	uint64_t anon_size = 4096, *anon;
	struct mapper p = { };

	io_cluster_up(TEST_MEMSLOT, 0);
	*(uint64_t *)(dsm[0].hva + MAP_PAGE * 4096) = MAP_MAGIC;
	p.copy = nodes[0].vcpus[1];
	pthread_create(&p.thread, NULL, mapper_thread, &p);
	DVM_ASSERT_OK(__vcpu_run(nodes[1].vcpus[1]), "node 1's KVM_RUN");
	check_report(nodes[1].vcpus[1]->run);
	pthread_join(p.thread, NULL);
	/* Reads where nothing was mapped: before, after the move, after. */
	DVM_ASSERT(p.outs == 3 && p.unmapped_reads == 3 &&
		   p.written == MAP_WRITTEN,
		   "node 0: %u map changes, %u unmapped reads, page %#lx",
		   p.outs, p.unmapped_reads, (unsigned long)p.written);
	/* The memory file's slot, then 4 changes: each on both nodes. */
	DVM_ASSERT(dvm_stat(nodes[0].vm, "dvm_memslot_updates") == 5 &&
		   dvm_stat(nodes[1].vm, "dvm_memslot_updates") == 5,
		   "slot changes: node 0 sent %lu, node 1 applied %lu, want 5",
		   (unsigned long)dvm_stat(nodes[0].vm, "dvm_memslot_updates"),
		   (unsigned long)dvm_stat(nodes[1].vm,
					   "dvm_memslot_updates"));

	DVM_ASSERT_ERRNO(__vm_set_user_memory_region(nodes[1].vm, MAP_SLOT,
						     0, MAP_GPA_A, 4096,
						     dsm[1].hva),
			 EPERM, "node 1's own slot");
	anon = mmap(NULL, anon_size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	TEST_ASSERT(anon != MAP_FAILED, "mmap");
	DVM_ASSERT_ERRNO(__vm_set_user_memory_region(nodes[0].vm, MAP_SLOT,
						     0, MAP_GPA_A, anon_size,
						     anon),
			 EXDEV, "node 0's slot outside the memory file");
	munmap(anon, anon_size);
	dsm_cluster_down(nodes, dsm, 2, IO_PAGES);
	ksft_test_result_pass("%s: node 0 maps, moves and unmaps a slot of the memory file while handling node 1's OUTs; node 1's next access sees each map; node 1's own slot refused (EPERM), node 0's outside the file (EXDEV)\n",
			      transport);
}

/* ---- signals and immediate_exit on both sides ---- */

struct runner {
	struct kvm_vcpu *vcpu;
	pthread_t thread;
	bool stop;
	uint32_t exits[KVM_DVM_STAT_IO_KINDS];
	uint32_t answered;	/* the proxy: INs answered */
	uint32_t eintr;		/* KVM_RUN ended by a signal or immediate_exit */
	uint32_t immediate;	/* KVM_RUN called with immediate_exit */
};

/*
 * Node 0's thread answers each IN with the next number, every other one
 * after 2 ms; every fourth answer goes with immediate_exit set: it is
 * sent, then KVM_RUN ends.
 */
static void *counter_proxy(void *arg)
{
	struct runner *p = arg;
	struct kvm_run *run = p->vcpu->run;
	uint32_t v;
	int r;

	for (;;) {
		r = __vcpu_run(p->vcpu);
		run->immediate_exit = 0;
		if (r && errno == EINTR) {
			p->eintr++;
			if (READ_ONCE(p->stop))
				return NULL;
			continue;
		}
		DVM_ASSERT_OK(r, "proxy KVM_RUN");
		if (run->exit_reason == KVM_EXIT_SHUTDOWN) {
			proxy_shutdown(p->vcpu->vm, p->exits);
			continue;
		}
		if (is_poweroff(run))
			return NULL;
		TEST_ASSERT(run->exit_reason == KVM_EXIT_IO &&
			    run->io.direction == KVM_EXIT_IO_IN &&
			    run->io.port == IO_PORT && run->io.size == 4 &&
			    run->io.count == 1,
			    "proxy: exit %u, want IN of 4 bytes",
			    run->exit_reason);
		v = ++p->answered;
		/* Slow answers: node 1 waits, the signals find it waiting. */
		if (v % 2)
			usleep(2000);
		memcpy((uint8_t *)run + run->io.data_offset, &v, 4);
		if (!(v % 4)) {
			run->immediate_exit = 1;
			p->immediate++;
		}
	}
}

/* Node 1's thread: after every third EINTR, one KVM_RUN with immediate_exit. */
static void *counting_vcpu(void *arg)
{
	struct runner *n = arg;
	struct kvm_run *run = n->vcpu->run;
	int r;

	for (;;) {
		r = __vcpu_run(n->vcpu);
		run->immediate_exit = 0;
		if (r && errno == EINTR) {
			if (!(++n->eintr % 3)) {
				run->immediate_exit = 1;
				n->immediate++;
			}
			continue;
		}
		DVM_ASSERT_OK(r, "node 1's KVM_RUN");
		check_report(run);
		WRITE_ONCE(n->stop, true);
		return NULL;
	}
}

static void test_signals(const char *transport)
{
	struct runner p = { }, n = { };
	uint64_t fwd[KVM_DVM_STAT_IO_KINDS], prx[KVM_DVM_STAT_IO_KINDS];
	uint64_t kicks = 0, interrupted;

	io_cluster_up(TEST_SIGNALS, SIGNAL_ROUNDS);
	p.vcpu = nodes[0].vcpus[1];
	n.vcpu = nodes[1].vcpus[1];
	pthread_create(&p.thread, NULL, counter_proxy, &p);
	pthread_create(&n.thread, NULL, counting_vcpu, &n);
	/* Signals at both threads while accesses are in flight. */
	while (!READ_ONCE(n.stop)) {
		pthread_kill(n.thread, SIGUSR1);
		pthread_kill(p.thread, SIGUSR1);
		kicks++;
		usleep(300);
	}
	pthread_join(n.thread, NULL);
	/* The power-off ended the proxy's KVM_RUN. */
	pthread_join(p.thread, NULL);
	DVM_ASSERT(p.exits[KVM_DVM_STAT_IO_SHUTDOWN] == 1,
		   "%u triple faults at node 0",
		   p.exits[KVM_DVM_STAT_IO_SHUTDOWN]);

	dvm_stat_read(nodes[1].vm, "dvm_io_forwarded", fwd,
		      KVM_DVM_STAT_IO_KINDS);
	dvm_stat_read(nodes[0].vm, "dvm_io_proxied", prx,
		      KVM_DVM_STAT_IO_KINDS);
	interrupted = dvm_stat(nodes[1].vm, "dvm_io_interrupted");
	DVM_ASSERT(p.answered == SIGNAL_ROUNDS &&
		   fwd[KVM_DVM_STAT_IO_PIO_IN] == SIGNAL_ROUNDS &&
		   prx[KVM_DVM_STAT_IO_PIO_IN] == SIGNAL_ROUNDS,
		   "%u INs answered, node 1 forwarded %lu, node 0 proxied %lu, want %d",
		   p.answered, (unsigned long)fwd[KVM_DVM_STAT_IO_PIO_IN],
		   (unsigned long)prx[KVM_DVM_STAT_IO_PIO_IN], SIGNAL_ROUNDS);
	/* The interleavings that matter happened. */
	DVM_ASSERT(interrupted && n.immediate && p.immediate &&
		   p.eintr > p.immediate,
		   "node 1: %lu accesses interrupted, %u immediate exits; node 0: %u EINTR, %u immediate exits",
		   (unsigned long)interrupted, n.immediate, p.eintr,
		   p.immediate);
	dsm_cluster_down(nodes, dsm, 2, IO_PAGES);
	ksft_test_result_pass("%s: %d INs each made and answered once through %lu signals: node 1 left KVM_RUN %u times (%lu with an access in flight, %u immediate exits), node 0's proxy %u times\n",
			      transport, SIGNAL_ROUNDS, (unsigned long)kicks,
			      n.eintr, (unsigned long)interrupted, n.immediate,
			      p.eintr);
}

/* ---- node 0 lost while node 1's access waits ---- */

/* Node 0's thread takes the access and never answers it. */
static void *silent_proxy(void *arg)
{
	struct runner *p = arg;

	DVM_ASSERT_OK(__vcpu_run(p->vcpu), "proxy KVM_RUN");
	TEST_ASSERT(p->vcpu->run->exit_reason == KVM_EXIT_IO,
		    "proxy: exit %u", p->vcpu->run->exit_reason);
	return NULL;
}

static void *broken_vcpu(void *arg)
{
	struct runner *n = arg;

	DVM_ASSERT_OK(__vcpu_run(n->vcpu), "node 1's KVM_RUN");
	return NULL;
}

static void test_break(const char *transport)
{
	struct runner p = { }, n = { };
	struct kvm_run *run;
	int err;

	io_cluster_up(TEST_BREAK, 0);
	p.vcpu = nodes[0].vcpus[1];
	n.vcpu = nodes[1].vcpus[1];
	run = n.vcpu->run;
	pthread_create(&p.thread, NULL, silent_proxy, &p);
	pthread_create(&n.thread, NULL, broken_vcpu, &n);
	pthread_join(p.thread, NULL);
	DVM_ASSERT_OK(__dvm_leave(nodes[0].vm), "node 0's LEAVE");
	pthread_join(n.thread, NULL);
	DVM_ASSERT(run->exit_reason == KVM_EXIT_DVM_BROKEN &&
		   run->dvm_broken.node == 0 && run->dvm_broken.error < 0,
		   "node 1: %s, want KVM_EXIT_DVM_BROKEN naming node 0",
		   dvm_exit_why(n.vcpu));
	DVM_ASSERT(!dvm_stat(nodes[1].vm, "dvm_io_rtt_count"),
		   "node 1 got an answer");
	err = run->dvm_broken.error;
	dsm_cluster_down(nodes, dsm, 2, IO_PAGES);
	ksft_test_result_pass("%s: node 0 leaves with node 1's access unanswered: node 1's KVM_RUN ends in KVM_EXIT_DVM_BROKEN naming node 0 (%d)\n",
			      transport, err);
}

int main(int argc, char *argv[])
{
	const char *rdma = getenv("DVM_RDMA_ADDR");
	struct sigaction sa = { .sa_handler = stop_handler };
	int i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	ksft_print_header();
	dvm_require_abi();
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_DVM) & KVM_DVM_CAP_IO);
	/* No SA_RESTART: the signal ends the proxy's KVM_RUN with EINTR. */
	sigaction(SIGUSR1, &sa, NULL);
	ksft_set_plan(8);

	test_io("tcp");
	test_memslot("tcp");
	test_signals("tcp");
	test_break("tcp");
	if (rdma && *rdma) {
		dvm_rdma_addr = rdma;
		test_io("rdma");
		test_memslot("rdma");
		test_signals("rdma");
		test_break("rdma");
		dvm_rdma_addr = NULL;
	} else {
		for (i = 0; i < 4; i++)
			ksft_test_result_skip("rdma: DVM_RDMA_ADDR (an IPv4 address of an rxe device) not set\n");
	}
	ksft_finished();
}
