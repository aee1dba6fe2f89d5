// SPDX-License-Identifier: GPL-2.0
/*
 * dvm_abi_test: the DVM ioctls' ABI. The capability, every bad argument of
 * every ioctl with its exact errno, and the errors of each state (before
 * the join, joined, placed, left, broken).
 */
#include <stdio.h>
#include <string.h>

#include "dvm_util.h"

#define NR_NODES	2

static char what[128];

#define CASE(fmt, ...) (snprintf(what, sizeof(what), fmt, ##__VA_ARGS__), what)

#define KNOWN_CAPS	(KVM_DVM_CAP_CLUSTER | KVM_DVM_CAP_RDMA |	\
			 KVM_DVM_CAP_MEMORY | KVM_DVM_CAP_EXIT_INFO |	\
			 KVM_DVM_CAP_VCPU_MAP | KVM_DVM_CAP_IRQCHIP |	\
			 KVM_DVM_CAP_IO | KVM_DVM_CAP_VM_CONTROL |	\
			 KVM_DVM_CAP_MEMSLOTS)

/*
 * A feature mask: the same on /dev/kvm and a VM fd, no unknown bit, what
 * these tests use, and never 1 (the first ABI's version number).
 */
static void test_cap(void)
{
	struct kvm_vm *vm;
	int v, vv;

	v = kvm_check_cap(KVM_CAP_DVM);
	vm = vm_create_barebones();
	vv = vm_check_cap(vm, KVM_CAP_DVM);
	kvm_vm_free(vm);
	ksft_test_result(v == vv && !(v & ~KNOWN_CAPS) &&
			 (v & DVM_TEST_CAPS) == DVM_TEST_CAPS &&
			 (v & KVM_DVM_CAP_IRQCHIP) && v != 1,
			 "KVM_CAP_DVM is %#x on /dev/kvm and %#x on a VM fd: cluster, memory, exit info, vCPU map, irqchip%s\n",
			 v, vv, v & KVM_DVM_CAP_RDMA ? ", RDMA" : "");
}

static void join_expect(struct kvm_vm *vm, struct kvm_dvm_join *j, int err,
			const char *name)
{
	DVM_ASSERT_ERRNO(__dvm_join(vm, j), err, name);
}

/* Every argument KVM_DVM_JOIN refuses before it does anything. */
static void test_join_args(void)
{
	struct kvm_dvm_node_addr addrs[3], bad[3], *edge;
	struct kvm_dvm_join base, j;
	long psz = getpagesize();
	int nr_cases = 0, i;
	struct kvm_vm *vm;
	char *guard;

	vm = vm_create_barebones();
	dvm_addrs_loopback(addrs, 3, dvm_ports(3));
	/*
	 * Valid but for the case under test. Should the kernel accept a bad
	 * argument, node 0 waits for node 1, which never comes: ETIMEDOUT.
	 */
	dvm_join_init(&base, 0, 2, addrs, KVM_DVM_TRANSPORT_TCP, 300);

#define JOIN_CASE(err, stmt, name) do {					\
	j = base;							\
	memcpy(bad, addrs, sizeof(bad));				\
	stmt;								\
	join_expect(vm, &j, err, name);					\
	nr_cases++;							\
} while (0)

	JOIN_CASE(EINVAL, j.flags = KVM_DVM_JOIN_FLAGS + 1, "flags, unknown bit");
	JOIN_CASE(EINVAL, j.flags = 0x80000000u, "flags 1 << 31");
	JOIN_CASE(EINVAL, j.pad = 1, "pad 1");
	JOIN_CASE(EINVAL, j.pad2 = 1, "pad2 1");
	for (i = 0; i < 3; i++)
		JOIN_CASE(EINVAL, j.reserved[i] = 1, CASE("reserved[%d] 1", i));
	JOIN_CASE(EINVAL, j.peer_timeout_ms = 1, "peer_timeout_ms 1");
	JOIN_CASE(EINVAL, j.peer_timeout_ms = KVM_DVM_PEER_TIMEOUT_MIN_MS - 1,
		  "peer_timeout_ms 999");
	JOIN_CASE(EINVAL, j.peer_timeout_ms = KVM_DVM_PEER_TIMEOUT_MAX_MS + 1,
		  "peer_timeout_ms 600001");
	JOIN_CASE(EINVAL, j.peer_timeout_ms = ~0u, "peer_timeout_ms ~0");
	JOIN_CASE(EINVAL, j.nr_nodes = 0, "nr_nodes 0");
	JOIN_CASE(EINVAL, j.nr_nodes = 1, "nr_nodes 1");
	JOIN_CASE(EINVAL, j.nr_nodes = KVM_DVM_MAX_NODES + 1, "nr_nodes 65");
	JOIN_CASE(EINVAL, j.nr_nodes = ~0u, "nr_nodes ~0");
	JOIN_CASE(EINVAL, j.node_id = 2, "node_id 2 of 2");
	JOIN_CASE(EINVAL, j.node_id = ~0u, "node_id ~0");
	JOIN_CASE(EINVAL, (j.nr_nodes = 64, j.node_id = 64), "node_id 64 of 64");
	JOIN_CASE(EINVAL, j.transport = 0, "transport 0");
	JOIN_CASE(EINVAL, j.transport = 3, "transport 3");
	JOIN_CASE(EINVAL, j.transport = ~0u, "transport ~0");
	JOIN_CASE(EINVAL, j.connect_timeout_ms = 0, "connect_timeout_ms 0");
	JOIN_CASE(EINVAL, j.connect_timeout_ms = 600001,
		  "connect_timeout_ms 600001");
	JOIN_CASE(EINVAL, j.connect_timeout_ms = ~0u, "connect_timeout_ms ~0");
	JOIN_CASE(EINVAL, j.key_len = 0, "key_len 0");
	JOIN_CASE(EINVAL, j.key_len = KVM_DVM_MIN_KEY - 1, "key_len 15");
	JOIN_CASE(EINVAL, j.key_len = KVM_DVM_MAX_KEY + 1, "key_len 65");
	JOIN_CASE(EINVAL, j.key_len = ~0u, "key_len ~0");

	/* The table is read after the fields are checked, and only then. */
	JOIN_CASE(EFAULT, j.addrs = 0, "addrs NULL");
	/* Node 0's entry at the end of a page, node 1's in the next. */
	guard = dvm_guard_pages(PROT_READ | PROT_WRITE);
	edge = (void *)(guard + psz - sizeof(*edge));
	memcpy(edge, &addrs[0], sizeof(*edge));
	JOIN_CASE(EFAULT, j.addrs = (unsigned long)edge,
		  "addrs: node 1's entry in an inaccessible page");
	JOIN_CASE(EFAULT, j.addrs = (unsigned long)(guard + psz),
		  "addrs in an inaccessible page");
	JOIN_CASE(EINVAL, (j.flags = KVM_DVM_JOIN_FLAGS + 1, j.addrs = 0),
		  "flags 1 and addrs NULL: flags checked first");
	JOIN_CASE(EINVAL, (j.nr_nodes = 65, j.addrs = 0),
		  "nr_nodes 65 and addrs NULL: nr_nodes checked first");
	JOIN_CASE(EINVAL, (j.key_len = 8, j.addrs = 0),
		  "key_len 8 and addrs NULL: key_len checked first");
	JOIN_CASE(EINVAL,
		  (j.transport = 7, j.addrs = (unsigned long)(guard + psz)),
		  "transport 7 and addrs unreadable: transport checked first");

	/* The addresses: every entry, not only this node's. */
	base.addrs = (unsigned long)bad;
	JOIN_CASE(EINVAL, bad[1].family = 0, "node 1: family 0");
	JOIN_CASE(EINVAL, bad[0].family = AF_UNIX, "node 0: family AF_UNIX");
	JOIN_CASE(EINVAL, bad[1].family = 0xffff, "node 1: family 0xffff");
	JOIN_CASE(EINVAL, bad[1].port = 0, "node 1: port 0");
	JOIN_CASE(EINVAL, bad[0].port = 0, "node 0: port 0");
	JOIN_CASE(EINVAL, bad[1].addr[4] = 1, "node 1: AF_INET, addr[4] 1");
	JOIN_CASE(EINVAL, bad[0].addr[15] = 0x80,
		  "node 0: AF_INET, addr[15] 0x80");
	JOIN_CASE(EINVAL, bad[1].scope_id = 1, "node 1: AF_INET, scope_id 1");
	JOIN_CASE(EINVAL, bad[1] = bad[0], "nodes 0 and 1: same address");
	JOIN_CASE(EINVAL, (j.nr_nodes = 3, bad[2] = bad[0]),
		  "3 nodes, 0 and 2: same address");
	JOIN_CASE(EINVAL,
		  (dvm_addrs_loopback6(bad, 2, addrs[0].port), bad[1] = bad[0]),
		  "nodes 0 and 1: same IPv6 address");
	base.addrs = (unsigned long)addrs;

	/* The argument itself. */
	DVM_ASSERT_ERRNO(ioctl(vm->fd, KVM_DVM_JOIN, NULL), EFAULT,
			 "argument NULL");
	nr_cases++;

	DVM_ASSERT(dvm_state(vm) == KVM_DVM_STATE_NONE,
		   "state %s after refused joins, want NONE",
		   dvm_state_name(dvm_state(vm)));
	munmap(guard, 2 * psz);
	kvm_vm_free(vm);
	ksft_test_result_pass("KVM_DVM_JOIN: %d bad arguments refused\n",
			      nr_cases);
#undef JOIN_CASE
}

/* Raw GET_STATE with an argument the caller built. */
static int get_state_raw(struct kvm_vm *vm, struct kvm_dvm_state *st)
{
	return __vm_ioctl(vm, KVM_DVM_GET_STATE, st);
}

/*
 * KVM_DVM_GET_STATE: bad arguments, never joined, and the links array of
 * a joined node (@joined, node @self of NR_NODES).
 */
static void test_get_state_args(struct kvm_vm *joined, uint32_t self)
{
	struct kvm_dvm_link links[KVM_DVM_MAX_NODES];
	long psz = getpagesize();
	struct kvm_dvm_state st;
	struct kvm_vm *vms[2];
	int nr_cases = 0, i, k;
	struct kvm_vm *vm;
	char *guard;

	vms[0] = vm_create_barebones();
	vms[1] = joined;
	for (k = 0; k < 2; k++) {
		vm = vms[k];
#define ST_CASE(stmt, name) do {					\
	memset(&st, 0, sizeof(st));					\
	stmt;								\
	DVM_ASSERT_ERRNO(get_state_raw(vm, &st), EINVAL,		\
			 CASE("%s: %s", k ? "joined" : "never joined", name)); \
	nr_cases++;							\
} while (0)
		ST_CASE(st.flags = 1, "flags 1");
		ST_CASE(st.flags = ~0u, "flags ~0");
		ST_CASE(st.pad = 1, "pad 1");
		for (i = 0; i < 4; i++)
			ST_CASE(st.reserved[i] = 1, "reserved[i] 1");
#undef ST_CASE
		DVM_ASSERT_ERRNO(ioctl(vm->fd, KVM_DVM_GET_STATE, NULL), EFAULT,
				 k ? "joined: argument NULL" :
				     "never joined: argument NULL");
		nr_cases++;
	}

	/* Never joined: NONE, no nodes, no links written. */
	vm = vms[0];
	memset(links, 0xa5, sizeof(links));
	memset(&st, 0, sizeof(st));
	st.state = 0x77;
	st.nr_nodes = 0x77;
	st.links = (unsigned long)links;
	st.nr_links = 4;
	DVM_ASSERT_OK(get_state_raw(vm, &st), "never joined, 4 links");
	DVM_ASSERT(st.state == KVM_DVM_STATE_NONE && st.nr_nodes == 0 &&
		   st.nr_links == 0,
		   "never joined: state %u nr_nodes %u nr_links %u, want NONE 0 0",
		   st.state, st.nr_nodes, st.nr_links);
	memset(&st, 0, sizeof(st));
	st.links = (unsigned long)links;
	DVM_ASSERT_OK(get_state_raw(vm, &st), "never joined, links, nr_links 0");
	DVM_ASSERT(st.state == KVM_DVM_STATE_NONE && st.nr_links == 0,
		   "never joined, nr_links 0: state %u nr_links %u",
		   st.state, st.nr_links);
	DVM_ASSERT_OK(__dvm_get_state(vm, &st, NULL, 0),
		      "never joined, links NULL");
	DVM_ASSERT(st.state == KVM_DVM_STATE_NONE && st.nr_nodes == 0 &&
		   st.nr_links == 0, "never joined, links NULL: state %u",
		   st.state);
	nr_cases += 3;
	kvm_vm_free(vms[0]);

	/* Joined: the links array must have room for every node. */
	vm = joined;
	for (i = 0; i < NR_NODES; i++) {
		DVM_ASSERT_ERRNO(__dvm_get_state(vm, &st, links, i), E2BIG,
				 CASE("joined: nr_links %d", i));
		DVM_ASSERT(st.nr_links == NR_NODES,
			   "E2BIG with nr_links %d: nr_links out %u, want %d",
			   i, st.nr_links, NR_NODES);
		nr_cases++;
	}
	DVM_ASSERT_OK(__dvm_get_state(vm, &st, NULL, 0),
		      "joined, links NULL, nr_links 0");
	DVM_ASSERT(st.nr_links == NR_NODES && st.nr_nodes == NR_NODES,
		   "links NULL: nr_links out %u nr_nodes %u, want %d",
		   st.nr_links, st.nr_nodes, NR_NODES);
	DVM_ASSERT_OK(__dvm_get_state(vm, &st, NULL, 5),
		      "joined, links NULL, nr_links 5");
	DVM_ASSERT(st.nr_links == NR_NODES, "links NULL, nr_links 5: out %u",
		   st.nr_links);
	nr_cases += 2;

	guard = dvm_guard_pages(PROT_READ);
	DVM_ASSERT_ERRNO(__dvm_get_state(vm, &st, (void *)guard, NR_NODES),
			 EFAULT, "joined, links read-only");
	TEST_ASSERT(!mprotect(guard, psz, PROT_READ | PROT_WRITE), "mprotect");
	DVM_ASSERT_ERRNO(__dvm_get_state(vm, &st,
					 (void *)(guard + psz - sizeof(links[0])),
					 NR_NODES),
			 EFAULT, "joined, links[1] in an inaccessible page");
	DVM_ASSERT_ERRNO(__dvm_get_state(vm, &st, (void *)(guard + psz),
					 NR_NODES),
			 EFAULT, "joined, links in an inaccessible page");
	munmap(guard, 2 * psz);
	nr_cases += 3;

	memset(links, 0xa5, sizeof(links));
	DVM_ASSERT_OK(__dvm_get_state(vm, &st, links, KVM_DVM_MAX_NODES),
		      "joined, 64 links");
	DVM_ASSERT(st.state == KVM_DVM_STATE_JOINED && st.node_id == self &&
		   st.nr_nodes == NR_NODES && st.nr_links == NR_NODES &&
		   st.transport == KVM_DVM_TRANSPORT_TCP && st.nr_vcpus == 0 &&
		   st.broken_node == KVM_DVM_NO_NODE && st.broken_error == 0,
		   "joined: state %s node_id %u nr_nodes %u nr_links %u transport %u nr_vcpus %u broken_node %u broken_error %d",
		   dvm_state_name(st.state), st.node_id, st.nr_nodes,
		   st.nr_links, st.transport, st.nr_vcpus, st.broken_node,
		   st.broken_error);
	for (i = 0; i < NR_NODES; i++)
		DVM_ASSERT(links[i].node == i &&
			   links[i].state == (i == self ? KVM_DVM_LINK_SELF :
							  KVM_DVM_LINK_UP),
			   "joined: links[%d] node %u state %u", i,
			   links[i].node, links[i].state);
	nr_cases++;
	ksft_test_result_pass("KVM_DVM_GET_STATE: %d cases\n", nr_cases);
}

/* The first ABI's struct, without nodes[]: another ioctl number. */
struct kvm_dvm_vcpus_v1 {
	uint8_t b[offsetof(struct kvm_dvm_vcpus, nodes)];
};

#define KVM_DVM_SET_LOCAL_VCPUS_V1 _IOWR(KVMIO, 0xf1, struct kvm_dvm_vcpus_v1)

/* A binary built for the first ABI gets ENOTTY, nothing happens. */
static void set_vcpus_first_abi(struct kvm_vm *joined,
				const struct kvm_dvm_vcpus *v)
{
	struct kvm_dvm_vcpus_v1 v1;

	memcpy(&v1, v, sizeof(v1));
	DVM_ASSERT_ERRNO(ioctl(joined->fd, KVM_DVM_SET_LOCAL_VCPUS_V1, &v1),
			 ENOTTY, "SET_LOCAL_VCPUS of the first ABI");
}

/* KVM_DVM_SET_LOCAL_VCPUS: bad arguments on a joined node. */
static void test_set_vcpus_args(struct kvm_vm *joined)
{
	struct kvm_dvm_vcpus v, base;
	struct kvm_vm *vm;
	int nr_cases = 0, i;

	vm = vm_create_barebones();
	dvm_vcpus_init(&base, 1);
	dvm_vcpus_set(&base, 0);
	v = base;
	DVM_ASSERT_ERRNO(__dvm_set_vcpus(vm, &v), ENOTCONN, "never joined");
	kvm_vm_free(vm);
	nr_cases++;

	/*
	 * Valid but for the case under test. Should the kernel accept one,
	 * it waits for the other node, which never calls: ETIMEDOUT.
	 */
#define VCPUS_CASE(stmt, name) do {					\
	v = base;							\
	stmt;								\
	DVM_ASSERT_ERRNO(__dvm_set_vcpus(joined, &v), EINVAL, name);	\
	nr_cases++;							\
} while (0)
	VCPUS_CASE(v.flags = 1, "flags 1");
	VCPUS_CASE(v.flags = 0x80000000u, "flags 1 << 31");
	for (i = 0; i < 2; i++)
		VCPUS_CASE(v.reserved[i] = 1, CASE("reserved[%d] 1", i));
	VCPUS_CASE(v.nr_vcpus = 0, "nr_vcpus 0");
	VCPUS_CASE((v.nr_vcpus = 0, memset(v.local, 0, sizeof(v.local))),
		   "nr_vcpus 0, no vCPU");
	VCPUS_CASE(v.nr_vcpus = KVM_DVM_MAX_VCPUS + 1, "nr_vcpus 1025");
	VCPUS_CASE(v.nr_vcpus = ~0u, "nr_vcpus ~0");
	VCPUS_CASE(dvm_vcpus_set(&v, 1), "bit 1 with nr_vcpus 1");
	VCPUS_CASE((v.nr_vcpus = 64, dvm_vcpus_set(&v, 64)),
		   "bit 64 with nr_vcpus 64");
	VCPUS_CASE((v.nr_vcpus = 1000, dvm_vcpus_set(&v, 1023)),
		   "bit 1023 with nr_vcpus 1000");
	VCPUS_CASE((v.nr_vcpus = 1023, dvm_vcpus_set(&v, 1023)),
		   "bit 1023 with nr_vcpus 1023");
#undef VCPUS_CASE
	/* Valid, but this barebones VM created no vCPU: refused here. */
	v = base;
	DVM_ASSERT_ERRNO(__dvm_set_vcpus(joined, &v), ENOENT,
			 "a vCPU not created here");
	DVM_ASSERT(v.failed_node == 0 && v.failed_vcpu == 0,
		   "a vCPU not created here: failed_node %u failed_vcpu %u, want 0 0",
		   v.failed_node, v.failed_vcpu);
	for (i = 0; i < KVM_DVM_MAX_VCPUS; i++)
		DVM_ASSERT(v.nodes[i] == KVM_DVM_VCPU_NOWHERE,
			   "refused: nodes[%d] %u, want KVM_DVM_VCPU_NOWHERE",
			   i, v.nodes[i]);
	nr_cases++;
	set_vcpus_first_abi(joined, &base);
	nr_cases++;
	DVM_ASSERT_ERRNO(ioctl(joined->fd, KVM_DVM_SET_LOCAL_VCPUS, NULL),
			 EFAULT, "argument NULL");
	nr_cases++;
	DVM_ASSERT(dvm_state(joined) == KVM_DVM_STATE_JOINED,
		   "state %s after refused placements, want JOINED",
		   dvm_state_name(dvm_state(joined)));
	ksft_test_result_pass("KVM_DVM_SET_LOCAL_VCPUS: %d bad arguments refused\n",
			      nr_cases);
}

static void check_ping_out(struct kvm_dvm_ping *p, const char *name)
{
	DVM_ASSERT(p->min_ns <= p->avg_ns &&
		   p->avg_ns <= p->max_ns && p->max_ns <= p->total_ns,
		   "%s: min %llu avg %llu max %llu total %llu ns", name,
		   (unsigned long long)p->min_ns, (unsigned long long)p->avg_ns,
		   (unsigned long long)p->max_ns,
		   (unsigned long long)p->total_ns);
}

/* KVM_DVM_PING: bad arguments on node 0 of a joined 2-node cluster. */
static void test_ping_args(struct dvm_node *nodes)
{
	struct kvm_dvm_ping p, base;
	struct kvm_vm *vm;
	int nr_cases = 0, i;

	vm = vm_create_barebones();
	dvm_ping_init(&p, 1, 64, 1, 1);
	DVM_ASSERT_ERRNO(__dvm_ping(vm, &p), ENOTCONN, "never joined");
	kvm_vm_free(vm);
	nr_cases++;

	vm = nodes[0].vm;
	dvm_ping_init(&base, 1, 64, 4, 2);
#define PING_CASE(stmt, name) do {					\
	p = base;							\
	stmt;								\
	DVM_ASSERT_ERRNO(__dvm_ping(vm, &p), EINVAL, name);		\
	nr_cases++;							\
} while (0)
	PING_CASE(p.flags = 1, "flags 1");
	PING_CASE(p.flags = 0x80000000u, "flags 1 << 31");
	PING_CASE(p.pad = 1, "pad 1");
	for (i = 0; i < 2; i++)
		PING_CASE(p.reserved[i] = 1, CASE("reserved[%d] 1", i));
	PING_CASE(p.node = 0, "node == self");
	PING_CASE(p.node = NR_NODES, "node 2 of 2");
	PING_CASE(p.node = KVM_DVM_NO_NODE, "node ~0");
	PING_CASE(p.size = 4097, "size 4097");
	PING_CASE(p.size = ~0u, "size ~0");
	PING_CASE(p.count = 0, "count 0");
	PING_CASE(p.count = 1000001, "count 1000001");
	PING_CASE(p.depth = 0, "depth 0");
	PING_CASE(p.depth = 257, "depth 257");
#undef PING_CASE
	DVM_ASSERT_ERRNO(ioctl(vm->fd, KVM_DVM_PING, NULL), EFAULT,
			 "argument NULL");
	nr_cases++;

	/* The limits themselves are valid, and the results are filled. */
	dvm_ping_init(&p, 1, 0, 1, 1);
	DVM_ASSERT_OK(__dvm_ping(vm, &p), "size 0 count 1 depth 1");
	check_ping_out(&p, "size 0 count 1 depth 1");
	dvm_ping_init(&p, 1, 4096, 256, 256);
	DVM_ASSERT_OK(__dvm_ping(vm, &p), "size 4096 count 256 depth 256");
	check_ping_out(&p, "size 4096 count 256 depth 256");
	dvm_ping_init(&p, 0, 100, 3, 1);
	DVM_ASSERT_OK(__dvm_ping(nodes[1].vm, &p), "node 1 to node 0");
	check_ping_out(&p, "node 1 to node 0");
	nr_cases += 3;
	ksft_test_result_pass("KVM_DVM_PING: %d cases\n", nr_cases);
}

static void test_leave_args(void)
{
	struct kvm_vm *vm = vm_create_barebones();

	DVM_ASSERT_ERRNO(__dvm_leave(vm), ENOTCONN, "never joined");
	DVM_ASSERT(dvm_state(vm) == KVM_DVM_STATE_NONE, "state %s, want NONE",
		   dvm_state_name(dvm_state(vm)));
	kvm_vm_free(vm);
	ksft_test_result_pass("KVM_DVM_LEAVE: ENOTCONN before a join\n");
}

static void run_expect(struct kvm_vcpu *vcpu, int err, const char *name)
{
	DVM_ASSERT_ERRNO(__vcpu_run(vcpu), err,
			 CASE("KVM_RUN vCPU %u: %s", vcpu->id, name));
}

/* The errors of each state, on a 2-node cluster of 2 vCPUs. */
static void test_state_errors(void)
{
	struct kvm_dvm_node_addr addrs[NR_NODES];
	struct dvm_node nodes[NR_NODES];
	struct kvm_dvm_link links[NR_NODES];
	struct kvm_dvm_state st;
	struct kvm_dvm_vcpus v;
	struct kvm_dvm_ping p;
	struct kvm_dvm_join j;
	int i;

	dvm_nodes_create(nodes, NR_NODES, NR_NODES, dvm_guest_sync_id);
	for (i = 0; i < NR_NODES; i++) {
		struct kvm_vm *vm = nodes[i].vm;

		dvm_set_vcpu_ids(&nodes[i], NR_NODES);
		dvm_vcpus_init(&v, NR_NODES);
		dvm_vcpus_set(&v, i);
		DVM_ASSERT_ERRNO(__dvm_set_vcpus(vm, &v), ENOTCONN,
				 "SET_LOCAL_VCPUS before the join");
		DVM_ASSERT_ERRNO(__dvm_leave(vm), ENOTCONN,
				 "LEAVE before the join");
		dvm_ping_init(&p, !i, 64, 1, 1);
		DVM_ASSERT_ERRNO(__dvm_ping(vm, &p), ENOTCONN,
				 "PING before the join");
		dvm_get_state(vm, &st, links, NR_NODES);
		DVM_ASSERT(st.state == KVM_DVM_STATE_NONE && st.nr_nodes == 0 &&
			   st.nr_links == 0,
			   "GET_STATE before the join: state %s nr_nodes %u nr_links %u",
			   dvm_state_name(st.state), st.nr_nodes, st.nr_links);
	}

	dvm_nodes_join(nodes, NR_NODES, "2-node join");
	for (i = 0; i < NR_NODES; i++) {
		struct kvm_vm *vm = nodes[i].vm;

		/* Arguments are checked before the state. */
		dvm_addrs_loopback(addrs, NR_NODES, dvm_ports(NR_NODES));
		dvm_join_init(&j, i, NR_NODES, addrs, KVM_DVM_TRANSPORT_TCP,
			      300);
		j.flags = KVM_DVM_JOIN_FLAGS + 1;
		join_expect(vm, &j, EINVAL, "JOIN with an unknown flag when joined");
		j.flags = 0;
		join_expect(vm, &j, EBUSY, "JOIN when joined");
		run_expect(nodes[i].vcpus[i], EBUSY, "joined, not placed");
		run_expect(nodes[i].vcpus[!i], EBUSY,
			   "joined, not placed, not local after placement");
		DVM_ASSERT_ERRNO(__dvm_get_state(vm, &st, links, 1), E2BIG,
				 "GET_STATE with 1 link");
		DVM_ASSERT(st.nr_links == NR_NODES,
			   "GET_STATE E2BIG: nr_links %u, want %d",
			   st.nr_links, NR_NODES);
		DVM_ASSERT(dvm_state(vm) == KVM_DVM_STATE_JOINED,
			   "node %d: state %s, want JOINED", i,
			   dvm_state_name(dvm_state(vm)));
	}

	dvm_place_round_robin(nodes, NR_NODES, NR_NODES);
	dvm_set_vcpus_all(nodes, NR_NODES);
	dvm_assert_all_ok(nodes, NR_NODES, "round-robin placement");
	for (i = 0; i < NR_NODES; i++) {
		struct kvm_vm *vm = nodes[i].vm;

		dvm_get_state(vm, &st, links, NR_NODES);
		DVM_ASSERT(st.state == KVM_DVM_STATE_RUNNING &&
			   st.nr_vcpus == NR_NODES,
			   "node %d placed: state %s nr_vcpus %u", i,
			   dvm_state_name(st.state), st.nr_vcpus);
		v = nodes[i].place;
		DVM_ASSERT_ERRNO(__dvm_set_vcpus(vm, &v), EBUSY,
				 "SET_LOCAL_VCPUS when placed");
		dvm_join_init(&j, i, NR_NODES, addrs, KVM_DVM_TRANSPORT_TCP,
			      300);
		join_expect(vm, &j, EBUSY, "JOIN when running");
		dvm_run_sync(nodes[i].vcpus[i], i, "local vCPU");
		run_expect(nodes[i].vcpus[!i], EREMOTE, "not local");
	}

	/* Node 1 leaves: LEFT for it, BROKEN for node 0. */
	DVM_ASSERT_OK(__dvm_leave(nodes[1].vm), "LEAVE node 1");
	dvm_get_state(nodes[1].vm, &st, links, NR_NODES);
	DVM_ASSERT(st.state == KVM_DVM_STATE_LEFT && st.node_id == 1 &&
		   st.nr_nodes == NR_NODES && st.nr_links == NR_NODES,
		   "after LEAVE: state %s node_id %u nr_nodes %u nr_links %u",
		   dvm_state_name(st.state), st.node_id, st.nr_nodes,
		   st.nr_links);
	DVM_ASSERT_ERRNO(__dvm_leave(nodes[1].vm), ENOTCONN, "LEAVE twice");
	v = nodes[1].place;
	DVM_ASSERT_ERRNO(__dvm_set_vcpus(nodes[1].vm, &v), ENOTCONN,
			 "SET_LOCAL_VCPUS after LEAVE");
	dvm_ping_init(&p, 0, 64, 1, 1);
	DVM_ASSERT_ERRNO(__dvm_ping(nodes[1].vm, &p), ENOTCONN,
			 "PING after LEAVE");
	run_expect(nodes[1].vcpus[1], ENOLINK, "left");

	dvm_wait_state(nodes[0].vm, KVM_DVM_STATE_BROKEN, 30000,
		       "node 0 after node 1 left");
	dvm_ping_init(&p, 1, 64, 1, 1);
	DVM_ASSERT_ERRNO(__dvm_ping(nodes[0].vm, &p), ENOLINK,
			 "PING when broken");
	v = nodes[0].place;
	DVM_ASSERT_ERRNO(__dvm_set_vcpus(nodes[0].vm, &v), ENOLINK,
			 "SET_LOCAL_VCPUS when broken");
	run_expect(nodes[0].vcpus[0], ENOLINK, "broken");
	dvm_join_init(&j, 0, NR_NODES, addrs, KVM_DVM_TRANSPORT_TCP, 300);
	join_expect(nodes[0].vm, &j, EBUSY, "JOIN when broken");
	DVM_ASSERT_OK(__dvm_leave(nodes[0].vm), "LEAVE when broken");
	DVM_ASSERT(dvm_state(nodes[0].vm) == KVM_DVM_STATE_LEFT,
		   "node 0 after LEAVE: state %s",
		   dvm_state_name(dvm_state(nodes[0].vm)));

	/* After LEAVE the VMs may join again. */
	dvm_nodes_join(nodes, NR_NODES, "join again after LEAVE");
	for (i = 0; i < NR_NODES; i++) {
		dvm_get_state(nodes[i].vm, &st, links, NR_NODES);
		DVM_ASSERT(st.state == KVM_DVM_STATE_JOINED &&
			   st.nr_vcpus == 0 &&
			   st.broken_node == KVM_DVM_NO_NODE &&
			   st.broken_error == 0,
			   "node %d joined again: state %s nr_vcpus %u broken_node %u broken_error %d",
			   i, dvm_state_name(st.state), st.nr_vcpus,
			   st.broken_node, st.broken_error);
	}
	dvm_free_all(nodes, NR_NODES);
	ksft_test_result_pass("state errors: ENOTCONN, EBUSY, E2BIG, EREMOTE, ENOLINK\n");
}

int main(void)
{
	struct dvm_node nodes[NR_NODES];

	ksft_print_header();
	ksft_set_plan(7);
	test_cap();
	test_join_args();
	test_leave_args();

	dvm_nodes_create(nodes, NR_NODES, 0, NULL);
	dvm_nodes_join(nodes, NR_NODES, "2-node join");
	test_get_state_args(nodes[1].vm, 1);
	test_set_vcpus_args(nodes[0].vm);
	test_ping_args(nodes);
	dvm_free_all(nodes, NR_NODES);

	test_state_errors();
	ksft_finished();
}
