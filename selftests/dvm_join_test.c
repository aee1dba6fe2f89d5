// SPDX-License-Identifier: GPL-2.0
/*
 * dvm_join_test: clusters of 2, 4 and 8 nodes, VMs of this process joined
 * over loopback TCP (IPv4, IPv6, and RDMA when an rxe address is given in
 * DVM_RDMA_ADDR). After the join every node sees every link up; PING
 * between every ordered pair moves exactly the ECHO messages it should;
 * placements that conflict are refused alike on every node and a correct
 * one stands; a node runs its own vCPUs and refuses the others.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dvm_util.h"

#define PING_COUNT	64

enum addressing {
	ADDR_PORTS,	/* 127.0.0.1, one port per node */
	ADDR_IPS,	/* 127.0.0.(i + 1), one port */
	ADDR_IPV6,	/* ::1, one port per node */
	ADDR_RDMA,	/* $DVM_RDMA_ADDR, one port per node */
};

static const char * const addressing_names[] = {
	[ADDR_PORTS] = "127.0.0.1, a port each",
	[ADDR_IPS] = "127.0.0.x, one port",
	[ADDR_IPV6] = "::1, a port each",
	[ADDR_RDMA] = "RDMA",
};

static void join_cluster(struct dvm_node *nodes, int n, enum addressing a,
			 const char *rdma_addr)
{
	struct kvm_dvm_node_addr addrs[DVM_MAX_TEST_NODES];
	uint32_t transport = KVM_DVM_TRANSPORT_TCP;
	char what[64];

	switch (a) {
	case ADDR_PORTS:
		dvm_addrs_loopback(addrs, n, dvm_ports(n));
		break;
	case ADDR_IPS:
		dvm_addrs_loopback_ips(addrs, n, dvm_ports(1));
		break;
	case ADDR_IPV6:
		dvm_addrs_loopback6(addrs, n, dvm_ports(n));
		break;
	case ADDR_RDMA:
		dvm_addrs_ip(addrs, n, rdma_addr, dvm_ports(n));
		transport = KVM_DVM_TRANSPORT_RDMA;
		break;
	}
	snprintf(what, sizeof(what), "%d-node join (%s)", n,
		 addressing_names[a]);
	dvm_join_ok(nodes, n, addrs, transport, what);
}

/* Every node: JOINED, its own id, every other link UP, its own SELF. */
static void check_joined(struct dvm_node *nodes, int n, uint32_t transport)
{
	struct kvm_dvm_link links[DVM_MAX_TEST_NODES];
	struct kvm_dvm_state st;
	int i, k;

	for (i = 0; i < n; i++) {
		dvm_get_state(nodes[i].vm, &st, links, n);
		DVM_ASSERT(st.state == KVM_DVM_STATE_JOINED &&
			   st.node_id == i && st.nr_nodes == n &&
			   st.nr_links == n && st.transport == transport &&
			   st.nr_vcpus == 0 &&
			   st.broken_node == KVM_DVM_NO_NODE &&
			   st.broken_error == 0,
			   "node %d of %d: state %s node_id %u nr_nodes %u nr_links %u transport %u nr_vcpus %u broken_node %u broken_error %d",
			   i, n, dvm_state_name(st.state), st.node_id,
			   st.nr_nodes, st.nr_links, st.transport, st.nr_vcpus,
			   st.broken_node, st.broken_error);
		for (k = 0; k < n; k++)
			DVM_ASSERT(links[k].node == k &&
				   links[k].state == (k == i ? KVM_DVM_LINK_SELF :
							       KVM_DVM_LINK_UP),
				   "node %d: links[%d] node %u state %u, want %s",
				   i, k, links[k].node, links[k].state,
				   k == i ? "SELF" : "UP");
	}
}

static void check_delta(int node, const char *name, uint64_t before,
			uint64_t after, uint64_t want, const char *what)
{
	DVM_ASSERT(after - before == want,
		   "%s: node %d %s grew by %llu, want %llu", what, node, name,
		   (unsigned long long)(after - before),
		   (unsigned long long)want);
}

/*
 * Node @src pings node @dst: the ECHO counters of both grow by exactly the
 * requests and replies, those of the others not at all.
 */
static uint64_t ping_pair(struct dvm_node *nodes, int n, int src, int dst,
			  uint32_t size, uint32_t depth)
{
	struct dvm_echo_stats before[DVM_MAX_TEST_NODES], after;
	struct kvm_dvm_link links[DVM_MAX_TEST_NODES];
	uint64_t msgs, bytes;
	struct kvm_dvm_state st;
	struct kvm_dvm_ping p;
	char what[96];
	int i;

	snprintf(what, sizeof(what), "PING %d -> %d of %d, size %u depth %u",
		 src, dst, n, size, depth);
	for (i = 0; i < n; i++)
		dvm_echo_stats(nodes[i].vm, &before[i]);
	dvm_ping_init(&p, dst, size, PING_COUNT, depth);
	DVM_ASSERT_OK(__dvm_ping(nodes[src].vm, &p), what);
	DVM_ASSERT(p.min_ns <= p.avg_ns &&
		   p.avg_ns <= p.max_ns && p.max_ns <= p.total_ns,
		   "%s: min %llu avg %llu max %llu total %llu ns", what,
		   (unsigned long long)p.min_ns, (unsigned long long)p.avg_ns,
		   (unsigned long long)p.max_ns,
		   (unsigned long long)p.total_ns);

	for (i = 0; i < n; i++) {
		bool end = i == src || i == dst;

		msgs = end ? PING_COUNT : 0;
		bytes = msgs * (DVM_WIRE_HDR_SIZE + size);
		dvm_echo_stats(nodes[i].vm, &after);
		check_delta(i, "dvm_tx_msgs[ECHO]", before[i].tx_msgs,
			    after.tx_msgs, msgs, what);
		check_delta(i, "dvm_rx_msgs[ECHO]", before[i].rx_msgs,
			    after.rx_msgs, msgs, what);
		check_delta(i, "dvm_tx_bytes[ECHO]", before[i].tx_bytes,
			    after.tx_bytes, bytes, what);
		check_delta(i, "dvm_rx_bytes[ECHO]", before[i].rx_bytes,
			    after.rx_bytes, bytes, what);
		if (i == src)
			check_delta(i, "dvm_rtt_count", before[i].rtt_count,
				    after.rtt_count, PING_COUNT, what);
	}

	/* The sender measured round trips on that link. */
	dvm_get_state(nodes[src].vm, &st, links, n);
	DVM_ASSERT(links[dst].rtt_min_ns > 0 &&
		   links[dst].rtt_min_ns <= links[dst].rtt_avg_ns &&
		   links[dst].rtt_avg_ns <= links[dst].rtt_max_ns,
		   "%s: link rtt min %llu avg %llu max %llu", what,
		   (unsigned long long)links[dst].rtt_min_ns,
		   (unsigned long long)links[dst].rtt_avg_ns,
		   (unsigned long long)links[dst].rtt_max_ns);
	return p.avg_ns;
}

static void ping_all(struct dvm_node *nodes, int n, const char *label)
{
	static const uint32_t sizes[] = { 64, 4096 };
	static const uint32_t depths[] = { 1, 16 };
	uint64_t avg[2][2] = {};
	int s, d, i, j;

	for (s = 0; s < 2; s++) {
		for (d = 0; d < 2; d++) {
			for (i = 0; i < n; i++) {
				for (j = 0; j < n; j++) {
					if (i == j)
						continue;
					avg[s][d] += ping_pair(nodes, n, i, j,
							       sizes[s],
							       depths[d]);
				}
			}
			avg[s][d] /= n * (n - 1);
		}
	}
	ksft_print_msg("%s: mean rtt us: 64 B %.1f (depth 1) %.1f (depth 16), 4096 B %.1f / %.1f\n",
		       label, avg[0][0] / 1e3, avg[0][1] / 1e3,
		       avg[1][0] / 1e3, avg[1][1] / 1e3);
	ksft_test_result_pass("%s: PING on %d ordered pairs x 4 (64/4096 B, depth 1/16) x %d, ECHO counters exact\n",
			      label, n * (n - 1), PING_COUNT);
}

/*
 * Every node called SET_LOCAL_VCPUS with nodes[i].place: all must have
 * the same verdict.
 */
static void check_verdict(struct dvm_node *nodes, int n, int err,
			  uint32_t failed_node, uint32_t failed_vcpu,
			  bool check_vcpu, const char *what)
{
	int i;

	dvm_set_vcpus_all(nodes, n);
	for (i = 0; i < n; i++) {
		struct kvm_dvm_vcpus *v = &nodes[i].place;

		DVM_ASSERT(nodes[i].ret == -1 && nodes[i].err == err,
			   "%s: node %d: ret %d errno %d (%s), want errno %d (%s)",
			   what, i, nodes[i].ret, nodes[i].err,
			   strerror(nodes[i].err), err, strerror(err));
		DVM_ASSERT(v->failed_node == failed_node,
			   "%s: node %d: failed_node %u, want %u", what, i,
			   v->failed_node, failed_node);
		DVM_ASSERT(!check_vcpu || v->failed_vcpu == failed_vcpu,
			   "%s: node %d: failed_vcpu %u, want %u", what, i,
			   v->failed_vcpu, failed_vcpu);
		DVM_ASSERT(dvm_state(nodes[i].vm) == KVM_DVM_STATE_JOINED,
			   "%s: node %d: state %s after a refusal, want JOINED",
			   what, i, dvm_state_name(dvm_state(nodes[i].vm)));
	}
}

/* Node @i's copy of vCPU @v gets another CPUID (@flip) or TSC rate. */
static void change_copy(struct dvm_node *nodes, int i, int v, bool cpuid,
			uint32_t *tsc_khz)
{
	struct kvm_vcpu *vcpu = nodes[i].vcpus[v];

	if (cpuid) {
		/* The hypervisor signature: the guest never reads it here. */
		vcpu_get_cpuid_entry(vcpu, 0x40000000)->ecx ^= 1;
		vcpu_set_cpuid(vcpu);
		return;
	}
	if (!*tsc_khz) {
		*tsc_khz = __vcpu_ioctl(vcpu, KVM_GET_TSC_KHZ, NULL);
		TEST_ASSERT(*tsc_khz > 0, "KVM_GET_TSC_KHZ: %s",
			    strerror(errno));
		/* Within KVM's tolerance: taken as it is, no scaling. */
		vcpu_ioctl(vcpu, KVM_SET_TSC_KHZ, (void *)(*tsc_khz + 1UL));
	} else {
		vcpu_ioctl(vcpu, KVM_SET_TSC_KHZ, (void *)(unsigned long)*tsc_khz);
	}
}

/* Placed: every node has the same map, node i runs vCPU i. */
static void check_map(struct dvm_node *nodes, int n, uint32_t nr_vcpus)
{
	struct kvm_dvm_state st;
	int i, id;

	for (i = 0; i < n; i++) {
		dvm_get_state(nodes[i].vm, &st, NULL, 0);
		DVM_ASSERT(st.state == KVM_DVM_STATE_RUNNING &&
			   st.nr_vcpus == nr_vcpus,
			   "node %d placed: state %s nr_vcpus %u, want RUNNING %u",
			   i, dvm_state_name(st.state), st.nr_vcpus, nr_vcpus);
		for (id = 0; id < KVM_DVM_MAX_VCPUS; id++)
			DVM_ASSERT(nodes[i].place.nodes[id] ==
				   (id < n ? id : KVM_DVM_VCPU_NOWHERE),
				   "node %d: nodes[%d] %u, want %u", i, id,
				   nodes[i].place.nodes[id],
				   id < n ? id : KVM_DVM_VCPU_NOWHERE);
	}
}

static void test_placement(struct dvm_node *nodes, int n, const char *label)
{
	struct kvm_dvm_vcpus v;
	uint32_t khz = 0;
	int i;

	/* The last node also claims vCPU 0, which node 0 has. */
	dvm_place_round_robin(nodes, n, n);
	dvm_vcpus_set(&nodes[n - 1].place, 0);
	check_verdict(nodes, n, EEXIST, n - 1, 0, true, "overlap on vCPU 0");

	/* vCPU n - 1, created on every node, claimed by none. */
	dvm_place_round_robin(nodes, n, n);
	dvm_vcpus_init(&nodes[n - 1].place, n);
	check_verdict(nodes, n, ENXIO, 0, n - 1, true, "vCPU n-1 unplaced");

	/* The last node counts one vCPU more. */
	dvm_place_round_robin(nodes, n, n);
	nodes[n - 1].place.nr_vcpus = n + 1;
	check_verdict(nodes, n, EINVAL, n - 1, 0, false, "nr_vcpus mismatch");

	/* The last node's copy of vCPU 0, which node 0 runs, differs. */
	dvm_place_round_robin(nodes, n, n);
	change_copy(nodes, n - 1, 0, true, NULL);
	check_verdict(nodes, n, EXDEV, n - 1, 0, true, "CPUID of a copy");
	change_copy(nodes, n - 1, 0, true, NULL);
	dvm_place_round_robin(nodes, n, n);
	change_copy(nodes, n - 1, 0, false, &khz);
	check_verdict(nodes, n, ERANGE, n - 1, 0, true, "TSC rate of a copy");
	change_copy(nodes, n - 1, 0, false, &khz);

	/* A vCPU this node did not create: refused here, nothing sent. */
	dvm_vcpus_init(&v, n + 1);
	dvm_vcpus_set(&v, n);
	DVM_ASSERT_ERRNO(__dvm_set_vcpus(nodes[1].vm, &v), ENOENT,
			 "claiming a vCPU not created");
	DVM_ASSERT(v.failed_node == 1 && v.failed_vcpu == n,
		   "not created: failed_node %u failed_vcpu %u, want 1 %d",
		   v.failed_node, v.failed_vcpu, n);

	/* Ids n .. n + 2 were never created: no error, they run nowhere. */
	dvm_place_round_robin(nodes, n, n);
	for (i = 0; i < n; i++)
		nodes[i].place.nr_vcpus = n + 3;
	dvm_set_vcpus_all(nodes, n);
	dvm_assert_all_ok(nodes, n, "round-robin placement after refusals");
	check_map(nodes, n, n + 3);
	ksft_test_result_pass("%s: overlap EEXIST, unplaced vCPU ENXIO, nr_vcpus mismatch EINVAL, a copy's CPUID EXDEV and TSC rate ERANGE on every node, uncreated ENOENT here; sparse ids placed, the same map on every node\n",
			      label);
}

/* Node i runs vCPU i and only it. */
static void test_run(struct dvm_node *nodes, int n, const char *label)
{
	char what[64];
	int i, v, r;

	for (i = 0; i < n; i++) {
		for (v = 0; v < n; v++) {
			struct kvm_vcpu *vcpu = nodes[i].vcpus[v];

			snprintf(what, sizeof(what), "node %d vCPU %d", i, v);
			if (v % n == i) {
				dvm_run_sync(vcpu, v, what);
				dvm_run_done(vcpu, what);
				continue;
			}
			r = __vcpu_run(vcpu);
			DVM_ASSERT_ERRNO(r, EREMOTE, what);
		}
	}
	ksft_test_result_pass("%s: each node ran its vCPU to GUEST_SYNC/DONE, EREMOTE for the %d others\n",
			      label, n - 1);
}

static void test_cluster(int n, enum addressing a)
{
	struct dvm_node nodes[DVM_MAX_TEST_NODES];
	char label[64];
	int i;

	snprintf(label, sizeof(label), "%d nodes (%s)", n,
		 addressing_names[a]);
	dvm_nodes_create(nodes, n, n, dvm_guest_sync_id);
	for (i = 0; i < n; i++)
		dvm_set_vcpu_ids(&nodes[i], n);
	join_cluster(nodes, n, a, NULL);
	check_joined(nodes, n, KVM_DVM_TRANSPORT_TCP);
	ksft_test_result_pass("%s: joined, every link UP\n", label);
	ping_all(nodes, n, label);
	test_placement(nodes, n, label);
	test_run(nodes, n, label);
	dvm_free_all(nodes, n);
}

/* A join and pings only: IPv6, RDMA. */
static void test_join_ping(int n, enum addressing a, const char *rdma_addr)
{
	struct dvm_node nodes[DVM_MAX_TEST_NODES];
	char label[64];

	snprintf(label, sizeof(label), "%d nodes (%s%s%s)", n,
		 addressing_names[a], rdma_addr ? " on " : "",
		 rdma_addr ? rdma_addr : "");
	dvm_nodes_create(nodes, n, 0, NULL);
	join_cluster(nodes, n, a, rdma_addr);
	check_joined(nodes, n, a == ADDR_RDMA ? KVM_DVM_TRANSPORT_RDMA :
						KVM_DVM_TRANSPORT_TCP);
	ping_all(nodes, n, label);
	dvm_free_all(nodes, n);
}

static bool have_ipv6_loopback(void)
{
	struct sockaddr_in6 sin6 = {
		.sin6_family = AF_INET6,
		.sin6_addr = IN6ADDR_LOOPBACK_INIT,
	};
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	bool ok;

	if (fd < 0)
		return false;
	ok = !bind(fd, (struct sockaddr *)&sin6, sizeof(sin6));
	close(fd);
	return ok;
}

/*
 * vCPU ids as QEMU makes them from APIC IDs, with holes: both nodes
 * create vCPUs 0, 2 and 5; node 0 runs 0 and 5, node 1 runs 2. Ids 1, 3
 * and 4 never exist. Node 1 runs its vCPU to the end.
 */
#define SPARSE_NR	6

static void test_sparse_ids(void)
{
	static const int ids[] = { 0, 2, 5 }, runner[] = { 0, 1, 0 };
	struct dvm_node nodes[2];
	struct kvm_vcpu *vcpu;
	int i, k, id;

	memset(nodes, 0, sizeof(nodes));
	for (i = 0; i < 2; i++) {
		nodes[i].vm = vm_create(ARRAY_SIZE(ids));
		dvm_vcpus_init(&nodes[i].place, SPARSE_NR);
		for (k = 0; k < ARRAY_SIZE(ids); k++) {
			vcpu = vm_vcpu_add(nodes[i].vm, ids[k],
					   dvm_guest_sync_id);
			vcpu_args_set(vcpu, 1, (uint64_t)ids[k]);
			nodes[i].vcpus[k] = vcpu;
			if (runner[k] == i)
				dvm_vcpus_set(&nodes[i].place, ids[k]);
		}
	}
	dvm_nodes_join(nodes, 2, "sparse ids: JOIN");
	dvm_set_vcpus_all(nodes, 2);
	dvm_assert_all_ok(nodes, 2, "sparse ids: SET_LOCAL_VCPUS");
	for (i = 0; i < 2; i++) {
		for (id = 0; id < KVM_DVM_MAX_VCPUS; id++) {
			uint8_t want = KVM_DVM_VCPU_NOWHERE;

			for (k = 0; k < ARRAY_SIZE(ids); k++)
				if (ids[k] == id)
					want = runner[k];
			DVM_ASSERT(nodes[i].place.nodes[id] == want,
				   "sparse ids: node %d: nodes[%d] %u, want %u",
				   i, id, nodes[i].place.nodes[id], want);
		}
	}
	dvm_run_sync(nodes[1].vcpus[1], 2, "sparse ids: node 1 vCPU 2");
	dvm_run_done(nodes[1].vcpus[1], "sparse ids: node 1 vCPU 2");
	DVM_ASSERT_ERRNO(__vcpu_run(nodes[1].vcpus[2]), EREMOTE,
			 "sparse ids: node 1 vCPU 5");
	dvm_free_all(nodes, 2);
	ksft_test_result_pass("sparse vCPU ids 0, 2, 5 of 6: placed, the same map on both nodes, vCPU 2 ran on node 1\n");
}

int main(void)
{
	const char *rdma = getenv("DVM_RDMA_ADDR");

	ksft_print_header();
	ksft_set_plan(3 * 4 + 1 + 1 + 2);
	dvm_require_abi();

	test_cluster(2, ADDR_PORTS);
	test_cluster(4, ADDR_IPS);
	test_cluster(8, ADDR_PORTS);
	test_sparse_ids();

	if (have_ipv6_loopback())
		test_join_ping(2, ADDR_IPV6, NULL);
	else
		ksft_test_result_skip("2 nodes over ::1: no IPv6 loopback\n");

	if (rdma && *rdma) {
		test_join_ping(2, ADDR_RDMA, rdma);
		test_join_ping(4, ADDR_RDMA, rdma);
	} else {
		ksft_test_result_skip("2 nodes over RDMA: DVM_RDMA_ADDR (an IPv4 address of an rxe device) not set\n");
		ksft_test_result_skip("4 nodes over RDMA: DVM_RDMA_ADDR (an IPv4 address of an rxe device) not set\n");
	}
	ksft_finished();
}
