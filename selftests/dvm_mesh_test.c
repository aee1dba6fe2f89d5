// SPDX-License-Identifier: GPL-2.0
/*
 * dvm_mesh_test: one node per emulated host, across the hosts' network.
 * Every host of a dvm-cluster run starts it with the same arguments:
 *
 *   dvm_mesh_test tcp|rdma          join, links, PING every peer,
 *                                   placement, run the local vCPU: DSM
 *                                   ping-pong and counters across the
 *                                   hosts, then a token passed around a
 *                                   ring of IPIs through every host's
 *                                   vCPU; leave
 *   dvm_mesh_test tcp|rdma bench    2 hosts: node 0 measures request/reply
 *                                   round trips, DSM faults and IPI round
 *                                   trips between the hosts' vCPUs (idle,
 *                                   and while both hosts' threads bounce
 *                                   pages over the same link), prints
 *                                   BENCH lines
 *   dvm_mesh_test tcp|rdma iobench  2 hosts forwarding I/O: vCPU 1 on node
 *                                   1 times OUTs that node 0's thread
 *                                   answers through its proxy KVM_RUN, and
 *                                   OUTs to an ioeventfd of node 0; then
 *                                   node 1 checks its clocks 20 times;
 *                                   node 0 prints BENCH lines
 *   dvm_mesh_test tcp|rdma bench4   4 hosts: node 0 measures a write fault
 *                                   that invalidates 3 sharers
 *   dvm_mesh_test tcp|rdma aggregate  memory aggregation: a guest memory
 *                                   larger than any host's RAM, each
 *                                   node's vCPU writes and checks its
 *                                   own share
 *
 * Node ids are the hosts' ids, addresses DVM_HOST_ADDRS; hosts meet at
 * barriers in the shared run directory (tools/host/barrier).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "apic.h"
#include "dvm_dsm.h"

#define MESH_PORT_TCP	7100
#define MESH_PORT_RDMA	7200

struct mesh {
	struct kvm_dvm_node_addr addrs[DVM_MAX_TEST_NODES];
	struct kvm_vcpu *vcpus[DVM_MAX_TEST_NODES];
	struct kvm_vm *vm;
	uint32_t transport;
	const char *tp;
	int node;
	int n;
	int dsm_fd;
	uint8_t *hva;
	uint64_t dsm_pages;
	bool aggregate;
};

#define MESH_PEER_TIMEOUT_MS	10000
#define MESH_ROUNDS	60
#define MESH_ITERS	48

/* Aggregation: 1.5 GiB of guest memory, 450 MiB written per node. */
#define AGGR_PAGES	(1536ULL << 8)
#define AGGR_SHARE	(450ULL << 8)
#define AGGR_MAGIC	0xa66e6a7e00000000ULL

static void guest_aggregate(uint64_t id)
{
	uint64_t first = id * AGGR_SHARE, p;

	for (p = first; p < first + AGGR_SHARE; p++)
		WRITE_ONCE(*dsm_word(p, p % 512), AGGR_MAGIC | p);
	for (p = first; p < first + AGGR_SHARE; p++)
		GUEST_ASSERT_2(READ_ONCE(*dsm_word(p, p % 512)) ==
			       (AGGR_MAGIC | p), p,
			       READ_ONCE(*dsm_word(p, p % 512)));
}

/*
 * IPI round trips: vCPU 0 sends VEC_PING to vCPU 1, whose handler sends
 * VEC_PONG back. No memory is shared: each node's guest globals are its
 * own vCPU's.
 */
#define MESH_IPI_BENCH	2
#define IPI_ROUNDS	1000
#define IPI_WARMUP	50
#define VEC_PING	0xc1
#define VEC_PONG	0xc3
#define VEC_STOP	0xc5

static uint64_t pongs;
static bool ipi_stop;

static void xapic_send(uint32_t dest, uint32_t vector)
{
	xapic_write_reg(APIC_ICR2, SET_APIC_DEST_FIELD(dest));
	xapic_write_reg(APIC_ICR, APIC_DEST_PHYSICAL | APIC_DM_FIXED | vector);
}

static void ping_handler(struct ex_regs *regs)
{
	xapic_write_reg(APIC_EOI, 0);
	xapic_send(0, VEC_PONG);
}

static void pong_handler(struct ex_regs *regs)
{
	WRITE_ONCE(pongs, pongs + 1);
	xapic_write_reg(APIC_EOI, 0);
}

static void stop_handler(struct ex_regs *regs)
{
	WRITE_ONCE(ipi_stop, true);
	xapic_write_reg(APIC_EOI, 0);
}

static void ipi_round_trips(uint64_t n)
{
	uint64_t i, want;

	for (i = 0; i < n; i++) {
		want = READ_ONCE(pongs) + 1;
		xapic_send(1, VEC_PING);
		while (READ_ONCE(pongs) < want)
			cpu_relax();
	}
}

/* vCPU 0 reports the TSC ticks of IPI_ROUNDS round trips, twice. */
static void guest_ipi_bench(uint64_t id)
{
	uint64_t t0, phase;

	xapic_enable();
	asm volatile("sti");
	GUEST_SYNC(id);
	if (id) {
		for (;;) {
			asm volatile("cli");
			if (READ_ONCE(ipi_stop))
				break;
			asm volatile("sti; hlt");
		}
		GUEST_DONE();
	}
	for (phase = 0; phase < 2; phase++) {
		ipi_round_trips(IPI_WARMUP);
		t0 = rdtsc();
		ipi_round_trips(IPI_ROUNDS);
		GUEST_SYNC(rdtsc() - t0);
	}
	xapic_send(1, VEC_STOP);
	GUEST_DONE();
}

/*
 * Forwarded port I/O round trips: vCPU 1 (node 1) does IO_ROUNDS OUTs
 * that node 0's thread answers, then IO_ROUNDS to an ioeventfd of node
 * 0, and leaves the TSC ticks of each on DSM page 0. It cannot use
 * ucalls (they would be forwarded too): it ends with a triple fault.
 */
#define MESH_IO_BENCH	3
#define IO_ROUNDS	1000
#define IO_WARMUP	50
#define IO_PORT		0x5e0
#define IO_EVT_PORT	0x5e8

static void io_outs(uint16_t port, uint64_t n)
{
	uint64_t i;

	for (i = 0; i < n; i++)
		asm volatile("outb %%al, %%dx" : : "a"(0), "d"(port));
}

static void guest_io_bench(uint64_t id)
{
	struct desc_ptr idt = { .size = 0, .address = 0 };
	uint64_t t0;

	if (id != 1)
		GUEST_DONE();
	io_outs(IO_PORT, IO_WARMUP);
	t0 = rdtsc();
	io_outs(IO_PORT, IO_ROUNDS);
	WRITE_ONCE(*dsm_word(0, 0), rdtsc() - t0);
	t0 = rdtsc();
	io_outs(IO_EVT_PORT, IO_ROUNDS);
	WRITE_ONCE(*dsm_word(0, 1), rdtsc() - t0);
	asm volatile("lidt %0; int3" : : "m"(idt));
}

/*
 * A ring: vCPU 0 sends a token IPI to vCPU 1, each vCPU passes it on to
 * the next, vCPU n - 1 back to vCPU 0; RING_ROUNDS times, then a stop
 * goes round the same way.
 */
#define RING_ROUNDS	200
#define VEC_TOKEN	0xc7
#define VEC_RING_STOP	0xc9

static uint64_t ring_id, ring_n, tokens;
static bool ring_stopped;

static void token_handler(struct ex_regs *regs)
{
	WRITE_ONCE(tokens, tokens + 1);
	xapic_write_reg(APIC_EOI, 0);
	if (ring_id)
		xapic_send((ring_id + 1) % ring_n, VEC_TOKEN);
}

static void ring_stop_handler(struct ex_regs *regs)
{
	WRITE_ONCE(ring_stopped, true);
	xapic_write_reg(APIC_EOI, 0);
	if (ring_id != ring_n - 1)
		xapic_send(ring_id + 1, VEC_RING_STOP);
}

static void guest_ipi_ring(uint64_t id, uint64_t n, uint64_t limit)
{
	uint64_t r, want, t0;

	ring_id = id;
	ring_n = n;
	xapic_enable();
	asm volatile("sti");
	GUEST_SYNC(id);
	if (!id) {
		for (r = 0; r < RING_ROUNDS; r++) {
			want = READ_ONCE(tokens) + 1;
			t0 = rdtsc();
			xapic_send(1, VEC_TOKEN);
			while (READ_ONCE(tokens) < want)
				GUEST_ASSERT_2(rdtsc() - t0 < limit, r, tokens);
		}
		xapic_send(1, VEC_RING_STOP);
		WRITE_ONCE(ring_stopped, true);
	}
	for (;;) {
		asm volatile("cli");
		if (READ_ONCE(ring_stopped))
			break;
		asm volatile("sti; hlt");
	}
	GUEST_DONE();
}

/* Every vCPU says who it is, then plays on the DSM with the others. */
static void guest_mesh(uint64_t id, uint64_t nr, uint64_t aggregate)
{
	if (aggregate == MESH_IPI_BENCH)
		guest_ipi_bench(id);
	if (aggregate == MESH_IO_BENCH)
		guest_io_bench(id);
	GUEST_SYNC(id);
	if (aggregate) {
		guest_aggregate(id);
	} else {
		dsm_pingpong(id, nr, MESH_ROUNDS);
		dsm_counters(id, MESH_ITERS);
	}
	GUEST_DONE();
}

static void host_barrier(const char *tp, const char *name)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "\"%s/tools/host/barrier\" mesh-%s-%s 300",
		 getenv("DVM_TOP"), tp, name);
	TEST_ASSERT(system(cmd) == 0, "barrier %s-%s", tp, name);
}

static int mesh_env(struct mesh *m)
{
	const char *id = getenv("DVM_HOST_ID"), *nr = getenv("DVM_NR_HOSTS");
	char *addrs, *ip, *save;
	struct in_addr in;
	int i = 0;

	if (!id || !nr || !getenv("DVM_HOST_ADDRS") || !getenv("DVM_TOP"))
		return -1;
	m->node = atoi(id);
	m->n = atoi(nr);
	TEST_ASSERT(m->n >= 2 && m->n <= DVM_MAX_TEST_NODES && m->node < m->n,
		    "host %d of %d", m->node, m->n);
	addrs = strdup(getenv("DVM_HOST_ADDRS"));
	for (ip = strtok_r(addrs, ",", &save); ip && i < m->n;
	     ip = strtok_r(NULL, ",", &save), i++) {
		TEST_ASSERT(inet_pton(AF_INET, ip, &in) == 1, "address %s", ip);
		dvm_addr_inet(&m->addrs[i], ntohl(in.s_addr),
			      m->transport == KVM_DVM_TRANSPORT_TCP ?
			      MESH_PORT_TCP : MESH_PORT_RDMA);
	}
	free(addrs);
	TEST_ASSERT(i == m->n, "DVM_HOST_ADDRS has %d addresses, want %d",
		    i, m->n);
	return 0;
}

static void mesh_join(struct mesh *m)
{
	struct kvm_dvm_link links[DVM_MAX_TEST_NODES];
	struct kvm_dvm_state st;
	struct kvm_dvm_join j;
	int i;

	m->vm = vm_create_with_vcpus(m->n, guest_mesh, m->vcpus);
	for (i = 0; i < m->n; i++)
		vcpu_args_set(m->vcpus[i], 3, (uint64_t)i, (uint64_t)m->n,
			      (uint64_t)m->aggregate);
	dvm_join_init(&j, m->node, m->n, m->addrs, m->transport,
		      DVM_JOIN_TIMEOUT_MS);
	/*
	 * Up to 4 emulated hosts share 2 CPUs here: one may stall for
	 * seconds. Silence is tested elsewhere (dvm_fuzz_test).
	 */
	j.peer_timeout_ms = MESH_PEER_TIMEOUT_MS;
	host_barrier(m->tp, "created");
	DVM_ASSERT_OK(__dvm_join(m->vm, &j), "JOIN");
	DVM_ASSERT(j.failed_node == KVM_DVM_NO_NODE, "failed_node %u",
		   j.failed_node);

	dvm_get_state(m->vm, &st, links, m->n);
	DVM_ASSERT(st.state == KVM_DVM_STATE_JOINED && st.nr_nodes == m->n &&
		   st.node_id == m->node && st.transport == m->transport,
		   "state %s node %u of %u transport %u",
		   dvm_state_name(st.state), st.node_id, st.nr_nodes,
		   st.transport);
	for (i = 0; i < m->n; i++)
		DVM_ASSERT(links[i].state == (i == m->node ? KVM_DVM_LINK_SELF :
					      KVM_DVM_LINK_UP),
			   "link %d state %u", i, links[i].state);
	m->dsm_fd = dsm_setup(m->vm, m->dsm_pages, &m->hva,
			      m->aggregate ? PG_LEVEL_2M : PG_LEVEL_4K);
	ksft_test_result_pass("%s: node %d of %d joined, every link up, memory created\n",
			      m->tp, m->node, m->n);
}

static void mesh_ping_all(struct mesh *m)
{
	static const uint32_t sizes[] = { 64, 4096 };
	struct kvm_dvm_ping p;
	int peer, s;

	for (peer = 0; peer < m->n; peer++) {
		if (peer == m->node)
			continue;
		for (s = 0; s < 2; s++) {
			ksft_print_msg("%s: PING %d -> %d, %u B\n", m->tp,
				       m->node, peer, sizes[s]);
			dvm_ping_init(&p, peer, sizes[s], 100, 8);
			DVM_ASSERT_OK(__dvm_ping(m->vm, &p), "PING");
			/* A coarse host clock can make a round trip 0 ns. */
			DVM_ASSERT(p.total_ns && p.min_ns <= p.avg_ns &&
				   p.avg_ns <= p.max_ns,
				   "PING %d: min %llu avg %llu max %llu total %llu",
				   peer, p.min_ns, p.avg_ns, p.max_ns, p.total_ns);
			ksft_print_msg("%s: PING %d -> %d, %u B: avg %llu us\n",
				       m->tp, m->node, peer, sizes[s],
				       p.avg_ns / 1000);
		}
	}
	ksft_test_result_pass("%s: PING every peer, 64 B and 4 KiB, 8 in flight\n",
			      m->tp);
}

static void mesh_place_and_run(struct mesh *m)
{
	struct kvm_dvm_vcpus v;
	int i;

	dvm_vcpus_init(&v, m->n);
	dvm_vcpus_set(&v, m->node);
	DVM_ASSERT_OK(__dvm_set_vcpus(m->vm, &v), "SET_LOCAL_VCPUS");
	/* Nodes other than 0 aligned their clocks before it returned. */
	DVM_ASSERT(!m->node || (dvm_stat(m->vm, "dvm_clock_checks") >= 1 &&
				dvm_stat(m->vm, "dvm_clock_steps") >= 1 &&
				!dvm_stat(m->vm, "dvm_clock_failed")),
		   "clock after placement: %lu checks, %lu steps, %lu failed",
		   (unsigned long)dvm_stat(m->vm, "dvm_clock_checks"),
		   (unsigned long)dvm_stat(m->vm, "dvm_clock_steps"),
		   (unsigned long)dvm_stat(m->vm, "dvm_clock_failed"));
	dvm_run_sync(m->vcpus[m->node], m->node, "local vCPU");
	for (i = 0; i < m->n; i++) {
		if (i == m->node)
			continue;
		DVM_ASSERT_ERRNO(__vcpu_run(m->vcpus[i]), EREMOTE,
				 "KVM_RUN of a remote vCPU");
	}
	ksft_test_result_pass("%s: vCPU %d placed and run here, the others EREMOTE\n",
			      m->tp, m->node);
}

static uint64_t meminfo_kb(const char *field)
{
	char line[256];
	uint64_t kb = 0;
	FILE *f = fopen("/proc/meminfo", "r");

	TEST_ASSERT(f, "/proc/meminfo");
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, strlen(field)))
			kb = strtoull(line + strlen(field) + 1, NULL, 10);
	fclose(f);
	return kb;
}

/*
 * Each node's vCPU writes and checks its share of a memory bigger than
 * this host's RAM; the node holds exactly its share.
 */
static void mesh_aggregate(struct mesh *m)
{
	uint64_t t0 = dvm_now_ns(), held, total = meminfo_kb("MemTotal:");

	host_barrier(m->tp, "placed");
	dvm_run_done(m->vcpus[m->node], "aggregation");
	held = dvm_stat(m->vm, "dvm_dsm_pages_held");
	ksft_print_msg("%s: node %d: %lu MiB written and checked in %.1f s; pages held %lu (%lu MiB) of %lu; host RAM %lu MiB, MemAvailable %lu MiB\n",
		       m->tp, m->node, (unsigned long)(AGGR_SHARE >> 8),
		       (dvm_now_ns() - t0) / 1e9, (unsigned long)held,
		       (unsigned long)(held >> 8), (unsigned long)AGGR_PAGES,
		       (unsigned long)(total >> 10),
		       (unsigned long)(meminfo_kb("MemAvailable:") >> 10));
	DVM_ASSERT(AGGR_PAGES * 4 > total, "the guest memory fits this host");
	DVM_ASSERT(held == AGGR_SHARE, "node %d holds %lu pages, want %lu",
		   m->node, (unsigned long)held, (unsigned long)AGGR_SHARE);
	host_barrier(m->tp, "aggregated");
	ksft_test_result_pass("%s: %lu MiB guest memory over %d hosts of %lu MiB: node %d wrote and holds its %lu MiB\n",
			      m->tp, (unsigned long)(AGGR_PAGES >> 8), m->n,
			      (unsigned long)(total >> 10), m->node,
			      (unsigned long)(AGGR_SHARE >> 8));
}

/* Each host's vCPU plays ping-pong and counts with the others. */
static void mesh_dsm(struct mesh *m)
{
	host_barrier(m->tp, "placed");
	dvm_run_done(m->vcpus[m->node], "DSM programs");
	host_barrier(m->tp, "dsm");
	if (m->node == m->n - 1) {
		dsm_pingpong_check(m->hva, MESH_ROUNDS);
		dsm_counters_check(m->hva, m->n, MESH_ITERS);
	}
	/* Nobody leaves while the last node reads the results. */
	host_barrier(m->tp, "dsm-checked");
	ksft_test_result_pass("%s: DSM across %d hosts: ping-pong %d rounds, counters exact%s\n",
			      m->tp, m->n, MESH_ROUNDS,
			      m->node == m->n - 1 ? " (checked here)" : "");
}

static void mesh_prepare_ipis(struct mesh *m)
{
	int i;

	vm_init_descriptor_tables(m->vm);
	for (i = 0; i < m->n; i++)
		vcpu_init_descriptor_tables(m->vcpus[i]);
	vm_install_exception_handler(m->vm, VEC_PING, ping_handler);
	vm_install_exception_handler(m->vm, VEC_PONG, pong_handler);
	vm_install_exception_handler(m->vm, VEC_STOP, stop_handler);
	vm_install_exception_handler(m->vm, VEC_TOKEN, token_handler);
	vm_install_exception_handler(m->vm, VEC_RING_STOP, ring_stop_handler);
	virt_pg_map(m->vm, APIC_DEFAULT_GPA, APIC_DEFAULT_GPA);
}

/*
 * The local vCPU, done with the DSM programs, starts again at
 * guest_ipi_ring(): a token goes round every host RING_ROUNDS times.
 */
static void mesh_ipi_ring(struct mesh *m)
{
	struct kvm_vcpu *me = m->vcpus[m->node];
	uint64_t khz = __vcpu_ioctl(me, KVM_GET_TSC_KHZ, NULL);
	uint64_t sent[KVM_DVM_STAT_IRQ_MODES], rcvd[KVM_DVM_STAT_IRQ_MODES];
	uint64_t taken, want_tx, want_rx;
	struct kvm_regs regs;

	mesh_prepare_ipis(m);
	vcpu_regs_get(me, &regs);
	regs.rip = (uint64_t)guest_ipi_ring;
	regs.rdi = m->node;
	regs.rsi = m->n;
	regs.rdx = khz * 1000 * 60;
	vcpu_regs_set(me, &regs);
	/* Its APIC enabled, and on every host once it runs again. */
	dvm_run_sync(me, m->node, "IPI ring");
	host_barrier(m->tp, "ring-ready");
	dvm_run_done(me, "IPI ring");
	host_barrier(m->tp, "ring-done");

	taken = *(uint64_t *)addr_gva2hva(m->vm, (vm_vaddr_t)&tokens);
	dvm_stat_read(m->vm, "dvm_irq_sent", sent, KVM_DVM_STAT_IRQ_MODES);
	dvm_stat_read(m->vm, "dvm_irq_received", rcvd, KVM_DVM_STAT_IRQ_MODES);
	/* The tokens, and the stop except from the last vCPU. */
	want_tx = RING_ROUNDS + (m->node != m->n - 1);
	want_rx = RING_ROUNDS + (m->node != 0);
	DVM_ASSERT(taken == RING_ROUNDS && sent[0] == want_tx &&
		   rcvd[0] == want_rx,
		   "node %d: %lu tokens taken, want %d; fixed IPIs sent %lu (want %lu), received %lu (want %lu)",
		   m->node, (unsigned long)taken, RING_ROUNDS,
		   (unsigned long)sent[0], (unsigned long)want_tx,
		   (unsigned long)rcvd[0], (unsigned long)want_rx);
	ksft_test_result_pass("%s: IPI ring through %d hosts, %d rounds: node %d took every token once\n",
			      m->tp, m->n, RING_ROUNDS, m->node);
}

static void mesh_leave(struct mesh *m)
{
	/* Nobody leaves while another node still pings. */
	host_barrier(m->tp, "done");
	DVM_ASSERT_OK(__dvm_leave(m->vm), "LEAVE");
	DVM_ASSERT(dvm_state(m->vm) == KVM_DVM_STATE_LEFT, "not LEFT");
	munmap(m->hva, m->dsm_pages * 4096);
	close(m->dsm_fd);
	kvm_vm_free(m->vm);
	ksft_test_result_pass("%s: left\n", m->tp);
}

/* Node 0 measures; every figure is the mean of @count round trips. */
static void mesh_bench_ping(struct mesh *m)
{
	static const uint32_t sizes[] = { 64, 4096 };
	struct kvm_dvm_ping p;
	int s;

	for (s = 0; s < 2; s++) {
		/* Wall time per round trip, as the baselines count. */
		dvm_ping_init(&p, 1, sizes[s], 500, 1);
		DVM_ASSERT_OK(__dvm_ping(m->vm, &p), "PING");
		printf("BENCH dvm_%s_rtt_%u %.1f us\n", m->tp, sizes[s],
		       p.total_ns / 1000.0 / p.count);
		dvm_ping_init(&p, 1, sizes[s], 4000, 64);
		DVM_ASSERT_OK(__dvm_ping(m->vm, &p), "PING");
		printf("BENCH dvm_%s_msgs_per_s_%u %.0f msg/s\n", m->tp,
		       sizes[s], p.count * 1e9 / p.total_ns);
	}
}

/*
 * DSM faults between the two hosts, from this process through the memory
 * mapping (the same path as a vCPU's NPT faults, without the exits). The
 * pages measured are odd, so node 1 manages them: node 0's transaction is
 * one round trip to node 1, which also holds the data.
 */
#define BENCH_SAMPLES	400
#define BENCH_PAR_PAGES	1600
#define BENCH_THREADS	8
#define BENCH_PAGES	(4 * BENCH_SAMPLES + 2 * BENCH_PAR_PAGES)

static uint64_t bench_page(int range, int i)
{
	return range * 2 * BENCH_SAMPLES + 2 * i + 1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Time one access to each page of @range: median and 99th percentile. */
static void bench_faults(struct mesh *m, const char *name, int range,
			 bool write)
{
	uint64_t ns[BENCH_SAMPLES], t0, *p;
	int i;

	for (i = 0; i < BENCH_SAMPLES; i++) {
		p = dsm_hptr(m->hva, bench_page(range, i), 0);
		t0 = dvm_now_ns();
		if (write)
			WRITE_ONCE(*p, i + 1);
		else
			DVM_ASSERT(READ_ONCE(*p) == (uint64_t)i + 1000,
				   "page %lu: %lu", bench_page(range, i),
				   (unsigned long)READ_ONCE(*p));
		ns[i] = dvm_now_ns() - t0;
	}
	qsort(ns, BENCH_SAMPLES, sizeof(ns[0]), cmp_u64);
	printf("BENCH dsm_%s_%s_median %.1f us\n", m->tp, name,
	       ns[BENCH_SAMPLES / 2] / 1000.0);
	printf("BENCH dsm_%s_%s_p99 %.1f us\n", m->tp, name,
	       ns[BENCH_SAMPLES * 99 / 100] / 1000.0);
}

struct bench_reader {
	struct mesh *m;
	int first;
	pthread_t thread;
};

static void *bench_read_pages(void *arg)
{
	struct bench_reader *r = arg;
	uint64_t page, sum = 0;
	int i;

	for (i = r->first; i < BENCH_PAR_PAGES; i += BENCH_THREADS) {
		page = 4 * BENCH_SAMPLES + 2 * i + 1;
		sum += READ_ONCE(*dsm_hptr(r->m->hva, page, 0));
	}
	return (void *)sum;
}

static void bench_parallel(struct mesh *m)
{
	struct bench_reader r[BENCH_THREADS];
	uint64_t t0, ns, sum = 0;
	void *ret;
	int i;

	t0 = dvm_now_ns();
	for (i = 0; i < BENCH_THREADS; i++) {
		r[i].m = m;
		r[i].first = i;
		pthread_create(&r[i].thread, NULL, bench_read_pages, &r[i]);
	}
	for (i = 0; i < BENCH_THREADS; i++) {
		pthread_join(r[i].thread, &ret);
		sum += (uint64_t)ret;
	}
	ns = dvm_now_ns() - t0;
	DVM_ASSERT(sum == (uint64_t)BENCH_PAR_PAGES * 7, "sum %lu",
		   (unsigned long)sum);
	printf("BENCH dsm_%s_pages_per_s_%d_threads %.0f pages/s\n", m->tp,
	       BENCH_THREADS, BENCH_PAR_PAGES * 1e9 / ns);
}

/* Node 1 writes what node 0 then faults on. */
static void bench_fill(struct mesh *m)
{
	int i;

	for (i = 0; i < BENCH_SAMPLES; i++) {
		WRITE_ONCE(*dsm_hptr(m->hva, bench_page(0, i), 0), i + 1000);
		WRITE_ONCE(*dsm_hptr(m->hva, bench_page(1, i), 0), i + 1000);
	}
	for (i = 0; i < BENCH_PAR_PAGES; i++)
		WRITE_ONCE(*dsm_hptr(m->hva, 4 * BENCH_SAMPLES + 2 * i + 1, 0),
			   7);
}

/*
 * 4 hosts: pages 4i+1 (managed by node 1) written by node 1, read by
 * nodes 2 and 3, then written by node 0: its transaction takes the copies
 * of nodes 1, 2 and 3 away and brings the data.
 */
static uint64_t bench4_page(int i)
{
	return 4 * i + 1;
}

static void mesh_bench4(struct mesh *m)
{
	uint64_t ns[BENCH_SAMPLES], t0;
	int i;

	if (m->node == 1)
		for (i = 0; i < BENCH_SAMPLES; i++)
			WRITE_ONCE(*dsm_hptr(m->hva, bench4_page(i), 0), i + 1);
	host_barrier(m->tp, "bench4-written");
	if (m->node >= 2)
		for (i = 0; i < BENCH_SAMPLES; i++)
			DVM_ASSERT(dsm_hword(m->hva, bench4_page(i), 0) ==
				   (uint64_t)i + 1, "page %lu",
				   bench4_page(i));
	host_barrier(m->tp, "bench4-shared");
	if (m->node == 0) {
		for (i = 0; i < BENCH_SAMPLES; i++) {
			t0 = dvm_now_ns();
			WRITE_ONCE(*dsm_hptr(m->hva, bench4_page(i), 1), 1);
			ns[i] = dvm_now_ns() - t0;
			DVM_ASSERT(dsm_hword(m->hva, bench4_page(i), 0) ==
				   (uint64_t)i + 1, "page %lu",
				   bench4_page(i));
		}
		qsort(ns, BENCH_SAMPLES, sizeof(ns[0]), cmp_u64);
		printf("BENCH dsm_%s_write_fault_k3_median %.1f us\n", m->tp,
		       ns[BENCH_SAMPLES / 2] / 1000.0);
		printf("BENCH dsm_%s_write_fault_k3_p99 %.1f us\n", m->tp,
		       ns[BENCH_SAMPLES * 99 / 100] / 1000.0);
		DVM_ASSERT(dvm_stat(m->vm, "dvm_dsm_write_faults") >=
			   BENCH_SAMPLES, "write faults not counted");
	}
	host_barrier(m->tp, "bench4");
}

/* Both hosts' threads write pages the other holds: the link moves pages. */
struct page_bouncer {
	struct mesh *m;
	bool stop;
	uint64_t writes;
	pthread_t thread;
};

static void *bounce_pages(void *arg)
{
	struct page_bouncer *b = arg;
	uint64_t p;

	while (!__atomic_load_n(&b->stop, __ATOMIC_ACQUIRE))
		for (p = 0; p < 64; p++, b->writes++)
			WRITE_ONCE(*dsm_hptr(b->m->hva, p, b->m->node), b->writes);
	return NULL;
}

static void bouncer_start(struct page_bouncer *b, struct mesh *m)
{
	memset(b, 0, sizeof(*b));
	b->m = m;
	pthread_create(&b->thread, NULL, bounce_pages, b);
}

static void bouncer_stop(struct page_bouncer *b)
{
	__atomic_store_n(&b->stop, true, __ATOMIC_RELEASE);
	pthread_join(b->thread, NULL);
}

static uint64_t run_ticks(struct kvm_vcpu *vcpu)
{
	struct ucall uc;

	DVM_ASSERT_OK(__vcpu_run(vcpu), "IPI bench");
	DVM_ASSERT(vcpu->run->exit_reason == KVM_EXIT_IO, "IPI bench: %s",
		   dvm_exit_why(vcpu));
	if (get_ucall(vcpu, &uc) == UCALL_ABORT)
		REPORT_GUEST_ASSERT(uc);
	return uc.args[1];
}

/*
 * The responder runs while this thread calls system() for the barriers:
 * the child's SIGCHLD, blocked here, may interrupt its KVM_RUN.
 */
static void *run_responder(void *arg)
{
	struct kvm_vcpu *vcpu = arg;
	struct ucall uc;
	int r;

	do {
		r = __vcpu_run(vcpu);
	} while (r && errno == EINTR);
	DVM_ASSERT_OK(r, "IPI responder");
	DVM_ASSERT(vcpu->run->exit_reason == KVM_EXIT_IO &&
		   get_ucall(vcpu, &uc) == UCALL_DONE,
		   "IPI responder: %s", dvm_exit_why(vcpu));
	return NULL;
}

/*
 * vCPU 0 on node 0 and vCPU 1 on node 1 ping-pong IPIs: the mean round
 * trip, idle and while the threads of both hosts bounce pages.
 */
static void mesh_bench_ipi(struct mesh *m)
{
	struct kvm_vcpu *me = m->vcpus[m->node];
	struct page_bouncer b;
	struct kvm_dvm_vcpus v;
	double us_per_tick;
	uint64_t idle, loaded, bytes;
	pthread_t responder;

	mesh_prepare_ipis(m);
	vcpu_args_set(me, 3, (uint64_t)m->node, (uint64_t)m->n,
		      (uint64_t)MESH_IPI_BENCH);
	us_per_tick = 1000.0 / __vcpu_ioctl(me, KVM_GET_TSC_KHZ, NULL);
	dvm_vcpus_init(&v, m->n);
	dvm_vcpus_set(&v, m->node);
	DVM_ASSERT_OK(__dvm_set_vcpus(m->vm, &v), "SET_LOCAL_VCPUS");
	/* Both APICs enabled, and mirrored once the vCPUs run again. */
	dvm_run_sync(me, m->node, "IPI bench vCPU");
	if (m->node) {
		pthread_create(&responder, NULL, run_responder, me);
		host_barrier(m->tp, "ipi-ready");
		host_barrier(m->tp, "ipi-load");
		bouncer_start(&b, m);
		host_barrier(m->tp, "ipi-done");
		bouncer_stop(&b);
		pthread_join(responder, NULL);
		return;
	}
	host_barrier(m->tp, "ipi-ready");
	idle = run_ticks(me);
	host_barrier(m->tp, "ipi-load");
	bouncer_start(&b, m);
	bytes = dvm_stat(m->vm, "dvm_dsm_bytes_in");
	loaded = run_ticks(me);
	bytes = dvm_stat(m->vm, "dvm_dsm_bytes_in") - bytes;
	bouncer_stop(&b);
	dvm_run_done(me, "IPI bench");
	host_barrier(m->tp, "ipi-done");
	printf("BENCH ipi_%s_rtt %.1f us\n", m->tp,
	       idle * us_per_tick / IPI_ROUNDS);
	printf("BENCH ipi_%s_rtt_loaded %.1f us\n", m->tp,
	       loaded * us_per_tick / IPI_ROUNDS);
	/* Pages that came in while the loaded round trips ran. */
	printf("BENCH ipi_%s_loaded_pages_in %lu pages\n", m->tp,
	       (unsigned long)(bytes / 4096));
}

/* Node 0's thread: the proxy of vCPU 1 answers every OUT. */
struct io_proxy {
	struct kvm_vcpu *copy;
	pthread_t thread;
	bool stop;
	uint64_t outs;
};

static void io_stop_signal(int sig)
{
}

static void *io_proxy(void *arg)
{
	struct io_proxy *p = arg;
	struct kvm_run *run = p->copy->run;

	while (dvm_proxy_next(p->copy, &p->stop)) {
		/* vCPU 1's triple fault at the end: the VM powers off. */
		if (run->exit_reason == KVM_EXIT_SHUTDOWN) {
			dvm_vm_control(p->copy->vm, KVM_DVM_VM_POWEROFF);
			continue;
		}
		if (run->exit_reason == KVM_EXIT_SYSTEM_EVENT)
			break;
		DVM_ASSERT(run->exit_reason == KVM_EXIT_IO &&
			   run->io.port == IO_PORT &&
			   run->io.direction == KVM_EXIT_IO_OUT,
			   "proxy: exit %u port %#x", run->exit_reason,
			   run->io.port);
		p->outs++;
	}
	return NULL;
}

static void mesh_bench_clock(struct mesh *m);

/* vCPU 1's OUTs, answered by node 0's VMM, then by its ioeventfd. */
static void mesh_bench_io(struct mesh *m)
{
	struct sigaction sa = { .sa_handler = io_stop_signal };
	struct kvm_ioeventfd ioev = {
		.addr = IO_EVT_PORT, .len = 1, .flags = KVM_IOEVENTFD_FLAG_PIO,
	};
	struct io_proxy p = { .copy = m->vcpus[1] };
	struct kvm_dvm_vcpus v;
	uint64_t fired = 0;
	double us_per_tick;

	dvm_vcpus_init(&v, m->n);
	dvm_vcpus_set(&v, m->node);
	DVM_ASSERT_OK(__dvm_set_vcpus(m->vm, &v), "SET_LOCAL_VCPUS");
	/* Before the I/O bench, which ends with the VM powered off. */
	mesh_bench_clock(m);
	if (m->node) {
		host_barrier(m->tp, "io-ready");
		vcpu_args_set(m->vcpus[1], 3, 1ull, (uint64_t)m->n,
			      (uint64_t)MESH_IO_BENCH);
		DVM_ASSERT_OK(__vcpu_run(m->vcpus[1]), "IO bench");
		DVM_ASSERT(m->vcpus[1]->run->exit_reason ==
			   KVM_EXIT_SYSTEM_EVENT &&
			   m->vcpus[1]->run->system_event.type ==
			   KVM_SYSTEM_EVENT_SHUTDOWN,
			   "IO bench: %s", dvm_exit_why(m->vcpus[1]));
		host_barrier(m->tp, "io-done");
		return;
	}
	ioev.fd = eventfd(0, EFD_NONBLOCK);
	TEST_ASSERT(ioev.fd >= 0, "eventfd");
	vm_ioctl(m->vm, KVM_IOEVENTFD, &ioev);
	sigaction(SIGUSR1, &sa, NULL);
	pthread_create(&p.thread, NULL, io_proxy, &p);
	host_barrier(m->tp, "io-ready");
	host_barrier(m->tp, "io-done");
	/* The power-off ended the proxy's KVM_RUN. */
	pthread_join(p.thread, NULL);
	DVM_ASSERT(read(ioev.fd, &fired, 8) == 8 && fired == IO_ROUNDS &&
		   p.outs == IO_WARMUP + IO_ROUNDS,
		   "node 0's VMM saw %lu OUTs, its ioeventfd %lu",
		   (unsigned long)p.outs, (unsigned long)fired);
	close(ioev.fd);
	us_per_tick = 1000.0 / __vcpu_ioctl(m->vcpus[0], KVM_GET_TSC_KHZ, NULL);
	printf("BENCH io_%s_pio_rtt %.1f us\n", m->tp,
	       dsm_hword(m->hva, 0, 0) * us_per_tick / IO_ROUNDS);
	printf("BENCH io_%s_pio_ioeventfd_rtt %.1f us\n", m->tp,
	       dsm_hword(m->hva, 0, 1) * us_per_tick / IO_ROUNDS);
}

#define CLOCK_BENCH_CHECKS	20

/*
 * Node 1 checks its clocks every 100 ms, CLOCK_BENCH_CHECKS times; node 0
 * prints the largest error the checks after the first found, and the
 * shortest round trip node 1 saw on the link.
 */
static void mesh_bench_clock(struct mesh *m)
{
	uint64_t checks, deadline;

	if (m->node) {
		checks = dvm_stat(m->vm, "dvm_clock_checks");
		deadline = dvm_now_ns() + 60ull * 1000000000;
		dvm_kvm_param_write("dvm_clock_period_ms", 100);
		while (dvm_stat(m->vm, "dvm_clock_checks") <
		       checks + CLOCK_BENCH_CHECKS) {
			DVM_ASSERT(dvm_now_ns() < deadline,
				   "%lu clock checks in 60 s",
				   (unsigned long)(dvm_stat(m->vm, "dvm_clock_checks") - checks));
			usleep(10000);
		}
		dvm_kvm_param_write("dvm_clock_period_ms", 1000);
		DVM_ASSERT(!dvm_stat(m->vm, "dvm_clock_failed"),
			   "%lu clock checks failed",
			   (unsigned long)dvm_stat(m->vm, "dvm_clock_failed"));
		*dsm_hptr(m->hva, 1, 0) = dvm_stat(m->vm, "dvm_clock_error_max_ns");
		*dsm_hptr(m->hva, 1, 1) = dvm_stat(m->vm, "dvm_rtt_min_ns");
		*dsm_hptr(m->hva, 1, 2) = dvm_stat(m->vm, "dvm_clock_offset_ns");
	}
	host_barrier(m->tp, "clock-done");
	if (m->node)
		return;
	printf("BENCH clock_%s_error_max %.1f us\n", m->tp,
	       dsm_hword(m->hva, 1, 0) / 1000.0);
	printf("BENCH clock_%s_rtt_min %.1f us\n", m->tp,
	       dsm_hword(m->hva, 1, 1) / 1000.0);
	printf("BENCH clock_%s_offset_at_start %.1f us\n", m->tp,
	       dsm_hword(m->hva, 1, 2) / 1000.0);
}

static void mesh_bench(struct mesh *m)
{
	if (m->node == 0)
		mesh_bench_ping(m);
	if (m->node == 1)
		bench_fill(m);
	host_barrier(m->tp, "bench-filled");
	if (m->node == 0) {
		/* Node 1 has them Modified; node 0 reads: both Shared. */
		bench_faults(m, "read_fault", 0, false);
		/* Node 0 writes what both hold: an upgrade, no data. */
		bench_faults(m, "upgrade", 0, true);
		/* Node 0 writes pages node 1 has Modified: data, 1 copy gone. */
		bench_faults(m, "write_fault_k1", 1, true);
		bench_parallel(m);
		fflush(stdout);
	}
	host_barrier(m->tp, "bench");
	mesh_bench_ipi(m);
	fflush(stdout);
}

int main(int argc, char *argv[])
{
	bool bench = argc > 2 && !strcmp(argv[2], "bench");
	bool bench4 = argc > 2 && !strcmp(argv[2], "bench4");
	bool iobench = argc > 2 && !strcmp(argv[2], "iobench");
	struct mesh m = { };

	m.aggregate = argc > 2 && !strcmp(argv[2], "aggregate");
	if (argc < 2 || (strcmp(argv[1], "tcp") && strcmp(argv[1], "rdma")) ||
	    (argc > 2 && !bench && !bench4 && !iobench && !m.aggregate)) {
		fprintf(stderr, "usage: %s tcp|rdma [bench|bench4|iobench|aggregate]\n",
			argv[0]);
		return 2;
	}
	/* Hosts' output is a file: keep lines in order and complete. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	m.tp = argv[1];
	m.transport = strcmp(m.tp, "tcp") ? KVM_DVM_TRANSPORT_RDMA :
					    KVM_DVM_TRANSPORT_TCP;
	ksft_print_header();
	if (mesh_env(&m))
		ksft_exit_skip("not inside a dvm-cluster run of 2+ hosts\n");
	dvm_require_abi();
	ksft_set_plan(bench || bench4 ? 1 : iobench ? 2 : m.aggregate ? 4 : 6);
	TEST_ASSERT(!bench4 || m.n == 4, "bench4 needs 4 hosts");
	TEST_ASSERT(!iobench || m.n == 2, "iobench needs 2 hosts");

	m.dsm_pages = bench || bench4 ? BENCH_PAGES : m.aggregate ?
		      AGGR_PAGES : DSM_PAGES;
	if (iobench)
		dvm_join_flags = KVM_DVM_JOIN_FORWARD_IO;
	mesh_join(&m);
	if (iobench) {
		mesh_bench_io(&m);
		mesh_leave(&m);
	} else if (bench) {
		mesh_bench(&m);
	} else if (bench4) {
		mesh_bench4(&m);
	} else if (m.aggregate) {
		mesh_place_and_run(&m);
		mesh_aggregate(&m);
		mesh_leave(&m);
	} else {
		mesh_ping_all(&m);
		mesh_place_and_run(&m);
		mesh_dsm(&m);
		mesh_ipi_ring(&m);
		mesh_leave(&m);
	}
	ksft_finished();
}
