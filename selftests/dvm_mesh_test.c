// SPDX-License-Identifier: GPL-2.0
/*
 * dvm_mesh_test: one node per emulated host, across the hosts' network.
 * Every host of a dvm-cluster run starts it with the same arguments:
 *
 *   dvm_mesh_test tcp|rdma          join, links, PING every peer,
 *                                   placement, run the local vCPU, leave
 *   dvm_mesh_test tcp|rdma bench    2 hosts: node 0 measures request/reply
 *                                   round trips and prints BENCH lines
 *
 * Node ids are the hosts' ids, addresses DVM_HOST_ADDRS; hosts meet at
 * barriers in the shared run directory (tools/host/barrier).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dvm_util.h"

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
};

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

	m->vm = vm_create_with_vcpus(m->n, dvm_guest_sync_id, m->vcpus);
	for (i = 0; i < m->n; i++)
		vcpu_args_set(m->vcpus[i], 1, (uint64_t)i);
	dvm_join_init(&j, m->node, m->n, m->addrs, m->transport,
		      DVM_JOIN_TIMEOUT_MS);
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
	ksft_test_result_pass("%s: node %d of %d joined, every link up\n",
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
	dvm_run_sync(m->vcpus[m->node], m->node, "local vCPU");
	dvm_run_done(m->vcpus[m->node], "local vCPU");
	for (i = 0; i < m->n; i++) {
		if (i == m->node)
			continue;
		DVM_ASSERT_ERRNO(__vcpu_run(m->vcpus[i]), EREMOTE,
				 "KVM_RUN of a remote vCPU");
	}
	ksft_test_result_pass("%s: vCPU %d placed and run here, the others EREMOTE\n",
			      m->tp, m->node);
}

static void mesh_leave(struct mesh *m)
{
	/* Nobody leaves while another node still pings. */
	host_barrier(m->tp, "done");
	DVM_ASSERT_OK(__dvm_leave(m->vm), "LEAVE");
	DVM_ASSERT(dvm_state(m->vm) == KVM_DVM_STATE_LEFT, "not LEFT");
	kvm_vm_free(m->vm);
	ksft_test_result_pass("%s: left\n", m->tp);
}

/* Node 0 measures; every figure is the mean of @count round trips. */
static void mesh_bench(struct mesh *m)
{
	static const uint32_t sizes[] = { 64, 4096 };
	struct kvm_dvm_ping p;
	int s;

	if (m->node == 0) {
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
		fflush(stdout);
	}
	host_barrier(m->tp, "bench");
}

int main(int argc, char *argv[])
{
	bool bench = argc > 2 && !strcmp(argv[2], "bench");
	struct mesh m = { };

	if (argc < 2 || (strcmp(argv[1], "tcp") && strcmp(argv[1], "rdma"))) {
		fprintf(stderr, "usage: %s tcp|rdma [bench]\n", argv[0]);
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
	ksft_set_plan(bench ? 1 : 4);

	mesh_join(&m);
	if (bench) {
		mesh_bench(&m);
	} else {
		mesh_ping_all(&m);
		mesh_place_and_run(&m);
		mesh_leave(&m);
	}
	ksft_finished();
}
