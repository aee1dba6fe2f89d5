/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dvm_util.h: helpers shared by DVM's selftests. Clusters of VMs in one
 * process (one pthread per node for the ioctls that block until every node
 * took part), address tables on the loopback interface, the DVM ioctls with
 * their return value and errno, and the VM's binary statistics by name.
 */
#ifndef SELFTEST_DVM_UTIL_H
#define SELFTEST_DVM_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/kvm_dvm.h>

#include "kvm_util.h"
#include "processor.h"
#include "kselftest.h"

/* Message types of linux/virt/kvm/dvm/wire.h the tests count. */
#define DVM_MSG_ECHO		14	/* on the wire, in tracepoints */
#define DVM_WIRE_HDR_SIZE	24

#define DVM_KEY_LEN		32
#define DVM_MAX_TEST_NODES	8

/* Joins that must succeed: generous, the hosts are emulated (TCG). */
#define DVM_JOIN_TIMEOUT_MS	60000

/*
 * TEST_ASSERT() reports a failure whose errno is EACCES as a skip (see
 * test_assert()), and EACCES is what a join with a wrong key returns: clear
 * it so that a failed check is always a failure.
 */
#define DVM_ASSERT(e, fmt, ...)						\
do {									\
	bool __dvm_ok = (e);						\
									\
	if (!__dvm_ok && errno == EACCES)				\
		errno = 0;						\
	test_assert(__dvm_ok, #e, __FILE__, __LINE__, fmt, ##__VA_ARGS__); \
} while (0)

/* An ioctl that must fail with @err; @what names the case. */
#define DVM_ASSERT_ERRNO(ret, err, what)				\
do {									\
	int __dvm_ret = (ret), __dvm_errno = errno;			\
									\
	DVM_ASSERT(__dvm_ret == -1 && __dvm_errno == (err),		\
		   "%s: ret %d errno %d (%s), want -1 errno %d (%s)",	\
		   (what), __dvm_ret, __dvm_ret ? __dvm_errno : 0,	\
		   __dvm_ret ? strerror(__dvm_errno) : "none", (err),	\
		   strerror(err));					\
} while (0)

/* An ioctl that must succeed; @what names the case. */
#define DVM_ASSERT_OK(ret, what)					\
do {									\
	int __dvm_ret = (ret), __dvm_errno = errno;			\
									\
	DVM_ASSERT(__dvm_ret == 0, "%s: ret %d errno %d (%s)", (what),	\
		   __dvm_ret, __dvm_errno, strerror(__dvm_errno));	\
} while (0)

static inline uint64_t dvm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static inline const char *dvm_state_name(uint32_t state)
{
	static const char * const names[] = {
		"NONE", "JOINED", "RUNNING", "BROKEN", "LEFT",
	};

	return state < ARRAY_SIZE(names) ? names[state] : "?";
}

/* What these tests use of KVM_CAP_DVM's features. */
#define DVM_TEST_CAPS	(KVM_DVM_CAP_CLUSTER | KVM_DVM_CAP_MEMORY |	\
			 KVM_DVM_CAP_EXIT_INFO | KVM_DVM_CAP_VCPU_MAP)

/* Skip unless the kernel has DVM with what these tests use. */
static inline void dvm_require_abi(void)
{
	TEST_REQUIRE((kvm_check_cap(KVM_CAP_DVM) & DVM_TEST_CAPS) ==
		     DVM_TEST_CAPS);
}

/*
 * Ports. Each process takes ports from its own window, chosen by its pid,
 * so that parallel runs do not collide, and skips a port something else
 * holds. Every cluster gets fresh ports.
 */
#define DVM_PORT_MIN		10000
#define DVM_PORT_WINDOWS	85
#define DVM_PORT_WINDOW		256

static uint16_t dvm_port_next;

static inline bool dvm_port_bindable(int family, uint16_t port)
{
	struct sockaddr_in6 sin6 = {
		.sin6_family = AF_INET6,
		.sin6_port = htons(port),
		.sin6_addr = IN6ADDR_ANY_INIT,
	};
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_ANY),
	};
	int fd, one = 1, r;

	fd = socket(family, SOCK_STREAM, 0);
	if (fd < 0)
		return family == AF_INET6;	/* no IPv6: nothing holds it */
	if (family == AF_INET6) {
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		r = bind(fd, (struct sockaddr *)&sin6, sizeof(sin6));
	} else {
		r = bind(fd, (struct sockaddr *)&sin, sizeof(sin));
	}
	close(fd);
	return r == 0;
}

/* @n consecutive ports, all free now. */
static inline uint16_t dvm_ports(int n)
{
	uint16_t first = DVM_PORT_MIN +
		(getpid() % DVM_PORT_WINDOWS) * DVM_PORT_WINDOW;
	uint16_t end = DVM_PORT_MIN + DVM_PORT_WINDOWS * DVM_PORT_WINDOW;
	int tries, i;

	if (!dvm_port_next)
		dvm_port_next = first;
	for (tries = 0; tries < 4096; tries++) {
		uint16_t base = dvm_port_next;

		if (base + n > end)
			base = DVM_PORT_MIN;
		dvm_port_next = base + n;
		for (i = 0; i < n; i++)
			if (!dvm_port_bindable(AF_INET, base + i) ||
			    !dvm_port_bindable(AF_INET6, base + i))
				break;
		if (i == n)
			return base;
	}
	TEST_FAIL("no %d free consecutive ports", n);
}

/* Address tables. @ip is an IPv4 address in host byte order. */
static inline void dvm_addr_inet(struct kvm_dvm_node_addr *a, uint32_t ip,
				 uint16_t port)
{
	uint32_t be = htonl(ip);

	memset(a, 0, sizeof(*a));
	a->family = AF_INET;
	a->port = port;
	memcpy(a->addr, &be, 4);
}

static inline void dvm_addr_inet6(struct kvm_dvm_node_addr *a,
				  const struct in6_addr *ip, uint16_t port)
{
	memset(a, 0, sizeof(*a));
	a->family = AF_INET6;
	a->port = port;
	memcpy(a->addr, ip, 16);
}

/* 127.0.0.1, ports @port_base + i. */
static inline void dvm_addrs_loopback(struct kvm_dvm_node_addr *addrs, int n,
				      uint16_t port_base)
{
	int i;

	for (i = 0; i < n; i++)
		dvm_addr_inet(&addrs[i], INADDR_LOOPBACK, port_base + i);
}

/* 127.0.0.(i + 1), all on @port. */
static inline void dvm_addrs_loopback_ips(struct kvm_dvm_node_addr *addrs,
					  int n, uint16_t port)
{
	int i;

	for (i = 0; i < n; i++)
		dvm_addr_inet(&addrs[i], INADDR_LOOPBACK + i, port);
}

/* ::1, ports @port_base + i. */
static inline void dvm_addrs_loopback6(struct kvm_dvm_node_addr *addrs, int n,
				       uint16_t port_base)
{
	int i;

	for (i = 0; i < n; i++)
		dvm_addr_inet6(&addrs[i], &in6addr_loopback, port_base + i);
}

/* One IPv4 address given as a string, ports @port_base + i. */
static inline void dvm_addrs_ip(struct kvm_dvm_node_addr *addrs, int n,
				const char *ip, uint16_t port_base)
{
	struct in_addr in;
	int i;

	TEST_ASSERT(inet_pton(AF_INET, ip, &in) == 1,
		    "'%s' is not an IPv4 address", ip);
	for (i = 0; i < n; i++)
		dvm_addr_inet(&addrs[i], ntohl(in.s_addr), port_base + i);
}

/* The cluster key of the tests; @flip changes one byte of it. */
static inline void dvm_key(uint8_t *key, bool flip)
{
	int i;

	for (i = 0; i < DVM_KEY_LEN; i++)
		key[i] = 0x5a ^ (i * 37);
	if (flip)
		key[DVM_KEY_LEN - 1] ^= 0x01;
}

/* struct kvm_dvm_join::flags of the joins dvm_join_init() prepares. */
static uint32_t dvm_join_flags;

/*
 * The peer timeout of the joins dvm_join_init() prepares. The tests run
 * up to 8 nodes in one emulated host, debug kernels included, where a
 * heartbeat may wait seconds for a CPU: a 3 s default would break
 * clusters that are only slow. Tests of loss detection set their own.
 */
#define DVM_TEST_PEER_TIMEOUT_MS	20000

static inline void dvm_join_init(struct kvm_dvm_join *j, uint32_t node_id,
				 uint32_t nr_nodes,
				 struct kvm_dvm_node_addr *addrs,
				 uint32_t transport, uint32_t timeout_ms)
{
	memset(j, 0, sizeof(*j));
	j->flags = dvm_join_flags;
	j->node_id = node_id;
	j->nr_nodes = nr_nodes;
	j->transport = transport;
	j->connect_timeout_ms = timeout_ms;
	j->peer_timeout_ms = DVM_TEST_PEER_TIMEOUT_MS;
	j->key_len = DVM_KEY_LEN;
	dvm_key(j->key, false);
	j->addrs = (uint64_t)(unsigned long)addrs;
	/* Must be overwritten by the kernel. */
	j->failed_node = 0x5a5a5a5a;
}

/* The DVM ioctls, returning the ioctl's value; errno is left as set. */
static inline int __dvm_join(struct kvm_vm *vm, struct kvm_dvm_join *j)
{
	return __vm_ioctl(vm, KVM_DVM_JOIN, j);
}

static inline int __dvm_set_vcpus(struct kvm_vm *vm, struct kvm_dvm_vcpus *v)
{
	return __vm_ioctl(vm, KVM_DVM_SET_LOCAL_VCPUS, v);
}

static inline int __dvm_get_state(struct kvm_vm *vm, struct kvm_dvm_state *st,
				  struct kvm_dvm_link *links,
				  uint32_t nr_links)
{
	memset(st, 0, sizeof(*st));
	st->links = (uint64_t)(unsigned long)links;
	st->nr_links = nr_links;
	return __vm_ioctl(vm, KVM_DVM_GET_STATE, st);
}

static inline int __dvm_leave(struct kvm_vm *vm)
{
	return __vm_ioctl(vm, KVM_DVM_LEAVE, NULL);
}

/* KVM_DVM_VM_CONTROL on node 0; @failed: the node that failed, or NULL. */
static inline int __dvm_vm_control(struct kvm_vm *vm, uint32_t op,
				   uint32_t *failed)
{
	struct kvm_dvm_vm_control a = { .op = op };
	int r;

	r = __vm_ioctl(vm, KVM_DVM_VM_CONTROL, &a);
	if (failed)
		*failed = a.failed_node;
	return r;
}

static inline void dvm_vm_control(struct kvm_vm *vm, uint32_t op)
{
	uint32_t failed = KVM_DVM_NO_NODE;
	int r = __dvm_vm_control(vm, op, &failed);

	DVM_ASSERT(!r, "KVM_DVM_VM_CONTROL %u: errno %d (%s), node %u failed",
		   op, errno, strerror(errno), failed);
}

static inline void dvm_ping_init(struct kvm_dvm_ping *p, uint32_t node,
				 uint32_t size, uint32_t count,
				 uint32_t depth)
{
	memset(p, 0, sizeof(*p));
	p->node = node;
	p->size = size;
	p->count = count;
	p->depth = depth;
}

static inline int __dvm_ping(struct kvm_vm *vm, struct kvm_dvm_ping *p)
{
	return __vm_ioctl(vm, KVM_DVM_PING, p);
}

static inline void dvm_get_state(struct kvm_vm *vm, struct kvm_dvm_state *st,
				 struct kvm_dvm_link *links, uint32_t nr_links)
{
	DVM_ASSERT_OK(__dvm_get_state(vm, st, links, nr_links),
		      "KVM_DVM_GET_STATE");
}

static inline uint32_t dvm_state(struct kvm_vm *vm)
{
	struct kvm_dvm_state st;

	dvm_get_state(vm, &st, NULL, 0);
	return st.state;
}

static inline uint32_t dvm_node_id(struct kvm_vm *vm)
{
	struct kvm_dvm_state st;

	dvm_get_state(vm, &st, NULL, 0);
	return st.node_id;
}

/*
 * Wait for @vm to reach @state (a peer's loss or leave is seen
 * asynchronously); fails after @timeout_ms.
 */
static inline void dvm_wait_state(struct kvm_vm *vm, uint32_t state,
				  uint32_t timeout_ms, const char *what)
{
	uint64_t end = dvm_now_ns() + timeout_ms * 1000000ull;
	uint32_t s;

	while ((s = dvm_state(vm)) != state && dvm_now_ns() < end)
		usleep(10000);
	DVM_ASSERT(s == state, "%s: state %s, want %s after %u ms", what,
		   dvm_state_name(s), dvm_state_name(state), timeout_ms);
}

static inline void dvm_vcpus_init(struct kvm_dvm_vcpus *v, uint32_t nr_vcpus)
{
	memset(v, 0, sizeof(*v));
	v->nr_vcpus = nr_vcpus;
	v->failed_node = 0x5a5a5a5a;
	v->failed_vcpu = 0x5a5a5a5a;
}

static inline void dvm_vcpus_set(struct kvm_dvm_vcpus *v, uint32_t id)
{
	v->local[id / 64] |= 1ull << (id % 64);
}

static inline bool dvm_vcpus_test(struct kvm_dvm_vcpus *v, uint32_t id)
{
	return v->local[id / 64] & (1ull << (id % 64));
}

/*
 * One node of a cluster in this process. The blocking ioctls (JOIN,
 * SET_LOCAL_VCPUS) of all nodes run concurrently, one thread per node.
 */
struct dvm_node {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpus[DVM_MAX_TEST_NODES];
	struct kvm_dvm_join join;
	struct kvm_dvm_vcpus place;
	unsigned long cmd;
	int ret;
	int err;
	uint64_t elapsed_ns;
	pthread_t thread;
};

static inline void *dvm_node_thread(void *arg)
{
	struct dvm_node *node = arg;
	void *p = node->cmd == KVM_DVM_JOIN ? (void *)&node->join :
					      (void *)&node->place;
	uint64_t t0 = dvm_now_ns();

	/* Raw: the library's helper wants a constant command. */
	node->ret = ioctl(node->vm->fd, node->cmd, p);
	node->err = node->ret ? errno : 0;
	node->elapsed_ns = dvm_now_ns() - t0;
	return NULL;
}

/* Issue @cmd (KVM_DVM_JOIN or KVM_DVM_SET_LOCAL_VCPUS) on all @n nodes. */
static inline void dvm_ioctl_all(struct dvm_node *nodes, int n,
				 unsigned long cmd)
{
	int i, r;

	for (i = 0; i < n; i++) {
		nodes[i].cmd = cmd;
		nodes[i].ret = -1;
		nodes[i].err = 0;
		r = pthread_create(&nodes[i].thread, NULL, dvm_node_thread,
				   &nodes[i]);
		TEST_ASSERT(!r, "pthread_create: %d", r);
	}
	for (i = 0; i < n; i++)
		pthread_join(nodes[i].thread, NULL);
}

/* nodes[i].join must be filled in; results in nodes[i].ret/.err. */
static inline void dvm_join_all(struct dvm_node *nodes, int n)
{
	dvm_ioctl_all(nodes, n, KVM_DVM_JOIN);
}

/* nodes[i].place must be filled in; results in nodes[i].ret/.err. */
static inline void dvm_set_vcpus_all(struct dvm_node *nodes, int n)
{
	dvm_ioctl_all(nodes, n, KVM_DVM_SET_LOCAL_VCPUS);
}

static inline void dvm_assert_all_ok(struct dvm_node *nodes, int n,
				     const char *what)
{
	int i;

	for (i = 0; i < n; i++)
		DVM_ASSERT(nodes[i].ret == 0,
			   "%s: node %d of %d: ret %d errno %d (%s)", what, i,
			   n, nodes[i].ret, nodes[i].err,
			   strerror(nodes[i].err));
}

/*
 * Join @n VMs as a cluster with the table @addrs: every node must
 * succeed.
 */
static inline void dvm_join_ok(struct dvm_node *nodes, int n,
			       struct kvm_dvm_node_addr *addrs,
			       uint32_t transport, const char *what)
{
	int i;

	for (i = 0; i < n; i++)
		dvm_join_init(&nodes[i].join, i, n, addrs, transport,
			      DVM_JOIN_TIMEOUT_MS);
	dvm_join_all(nodes, n);
	dvm_assert_all_ok(nodes, n, what);
	for (i = 0; i < n; i++)
		DVM_ASSERT(nodes[i].join.failed_node == KVM_DVM_NO_NODE,
			   "%s: node %d: failed_node %u after a join", what, i,
			   nodes[i].join.failed_node);
}

/* Round-robin placement of @nr_vcpus vCPUs over @n nodes. */
static inline void dvm_place_round_robin(struct dvm_node *nodes, int n,
					 uint32_t nr_vcpus)
{
	uint32_t v;
	int i;

	for (i = 0; i < n; i++) {
		dvm_vcpus_init(&nodes[i].place, nr_vcpus);
		for (v = i; v < nr_vcpus; v += n)
			dvm_vcpus_set(&nodes[i].place, v);
	}
}

/* LEAVE (from any state) and free every node's VM. */
static inline void dvm_free_all(struct dvm_node *nodes, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		if (!nodes[i].vm)
			continue;
		if (dvm_state(nodes[i].vm) != KVM_DVM_STATE_NONE &&
		    dvm_state(nodes[i].vm) != KVM_DVM_STATE_LEFT)
			DVM_ASSERT_OK(__dvm_leave(nodes[i].vm), "LEAVE");
		kvm_vm_free(nodes[i].vm);
		nodes[i].vm = NULL;
	}
}

/* Fresh VMs for @n nodes, each with @nr_vcpus vCPUs (none: barebones). */
static inline void dvm_nodes_create(struct dvm_node *nodes, int n,
				    int nr_vcpus, void *guest_code)
{
	int i;

	TEST_ASSERT(n <= DVM_MAX_TEST_NODES && nr_vcpus <= DVM_MAX_TEST_NODES,
		    "%d nodes of %d vCPUs: too many", n, nr_vcpus);
	memset(nodes, 0, n * sizeof(*nodes));
	for (i = 0; i < n; i++)
		nodes[i].vm = nr_vcpus ?
			vm_create_with_vcpus(nr_vcpus, guest_code,
					     nodes[i].vcpus) :
			vm_create_barebones();
}

/* Set (an IPv4 address of an RDMA device): dvm_nodes_join() uses RDMA. */
static const char *dvm_rdma_addr;

/*
 * Join the nodes over TCP on 127.0.0.1 with fresh ports, or over RDMA on
 * dvm_rdma_addr if it is set.
 */
static inline void dvm_nodes_join(struct dvm_node *nodes, int n,
				  const char *what)
{
	struct kvm_dvm_node_addr addrs[DVM_MAX_TEST_NODES];

	if (dvm_rdma_addr) {
		dvm_addrs_ip(addrs, n, dvm_rdma_addr, dvm_ports(n));
		dvm_join_ok(nodes, n, addrs, KVM_DVM_TRANSPORT_RDMA, what);
		return;
	}
	dvm_addrs_loopback(addrs, n, dvm_ports(n));
	dvm_join_ok(nodes, n, addrs, KVM_DVM_TRANSPORT_TCP, what);
}

/*
 * KVM_RUN of node 0's copy of another node's vCPU, its proxy under
 * KVM_DVM_JOIN_FORWARD_IO, until it returns the vCPU's next access: true;
 * false once a signal ended it with *@stop set.
 */
static inline bool dvm_proxy_next(struct kvm_vcpu *copy, bool *stop)
{
	int r;

	for (;;) {
		r = __vcpu_run(copy);
		if (!r)
			return true;
		DVM_ASSERT(errno == EINTR, "proxy KVM_RUN: ret %d errno %d (%s)",
			   r, errno, strerror(errno));
		if (READ_ONCE(*stop))
			return false;
	}
}

/* Why @vcpu's last KVM_RUN did not end in a ucall: for assertions. */
static inline const char *dvm_exit_why(struct kvm_vcpu *vcpu)
{
	static __thread char why[160];
	struct kvm_dvm_state st;

	if (vcpu->run->exit_reason != KVM_EXIT_DVM_BROKEN) {
		snprintf(why, sizeof(why), "exit reason %u",
			 vcpu->run->exit_reason);
		return why;
	}
	if (__dvm_get_state(vcpu->vm, &st, NULL, 0))
		snprintf(why, sizeof(why), "KVM_EXIT_DVM_BROKEN");
	else
		snprintf(why, sizeof(why),
			 "KVM_EXIT_DVM_BROKEN: state %s, node %u lost (%d)",
			 dvm_state_name(st.state), st.broken_node,
			 st.broken_error);
	return why;
}

/* Run @vcpu: it must exit with GUEST_SYNC(@val). */
static inline void dvm_run_sync(struct kvm_vcpu *vcpu, uint64_t val,
				const char *what)
{
	struct ucall uc;
	uint64_t cmd;

	DVM_ASSERT_OK(__vcpu_run(vcpu), what);
	DVM_ASSERT(vcpu->run->exit_reason == KVM_EXIT_IO,
		   "%s: vCPU %u: %s, want KVM_EXIT_IO", what, vcpu->id,
		   dvm_exit_why(vcpu));
	cmd = get_ucall(vcpu, &uc);
	if (cmd == UCALL_ABORT)
		REPORT_GUEST_ASSERT(uc);
	DVM_ASSERT(cmd == UCALL_SYNC && uc.args[1] == val,
		   "%s: vCPU %u ucall %lu value %lu, want UCALL_SYNC %lu",
		   what, vcpu->id, (unsigned long)cmd,
		   (unsigned long)uc.args[1], (unsigned long)val);
}

/* Run @vcpu: it must exit with GUEST_DONE(). */
static inline void dvm_run_done(struct kvm_vcpu *vcpu, const char *what)
{
	struct ucall uc;
	uint64_t cmd;

	DVM_ASSERT_OK(__vcpu_run(vcpu), what);
	DVM_ASSERT(vcpu->run->exit_reason == KVM_EXIT_IO,
		   "%s: vCPU %u: %s, want KVM_EXIT_IO", what, vcpu->id,
		   dvm_exit_why(vcpu));
	cmd = get_ucall(vcpu, &uc);
	if (cmd == UCALL_ABORT)
		REPORT_GUEST_ASSERT(uc);
	DVM_ASSERT(cmd == UCALL_DONE, "%s: vCPU %u ucall %lu, want UCALL_DONE",
		   what, vcpu->id, (unsigned long)cmd);
}

/*
 * Whether KVM uses two-dimensional paging (AMD's NPT, Intel's EPT) rather
 * than shadow page tables: kvm_amd.npt or kvm_intel.ept.
 */
static inline bool dvm_npt_enabled(void)
{
	static const char * const files[] = {
		"/sys/module/kvm_amd/parameters/npt",
		"/sys/module/kvm_intel/parameters/ept",
	};
	char c = 0;
	unsigned int i;

	for (i = 0; i < 2; i++) {
		FILE *f = fopen(files[i], "r");

		if (!f)
			continue;
		DVM_ASSERT(fread(&c, 1, 1, f) == 1, "read %s", files[i]);
		fclose(f);
		return c == 'Y' || c == '1';
	}
	DVM_ASSERT(0, "neither kvm_amd nor kvm_intel is loaded");
	return false;
}

/* The kvm module's parameter @name, an unsigned number. */
static inline unsigned int dvm_kvm_param_read(const char *name)
{
	unsigned int val;
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/kvm/parameters/%s", name);
	f = fopen(path, "r");
	DVM_ASSERT(f, "%s: %s", path, strerror(errno));
	DVM_ASSERT(fscanf(f, "%u", &val) == 1, "read %s", path);
	fclose(f);
	return val;
}

/* Writes @val to the kvm module's parameter @name (as root). */
static inline void dvm_kvm_param_write(const char *name, unsigned int val)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/kvm/parameters/%s", name);
	f = fopen(path, "w");
	DVM_ASSERT(f, "%s: %s", path, strerror(errno));
	DVM_ASSERT(fprintf(f, "%u\n", val) > 0 && !fclose(f), "write %s",
		   path);
}

/* A guest that reports its vCPU id (its first argument), then is done. */
static inline void dvm_guest_sync_id(uint64_t id)
{
	GUEST_SYNC(id);
	GUEST_DONE();
}

static inline void dvm_set_vcpu_ids(struct dvm_node *node, int nr_vcpus)
{
	int v;

	for (v = 0; v < nr_vcpus; v++)
		vcpu_args_set(node->vcpus[v], 1, (uint64_t)v);
}

/*
 * Memory for EFAULT cases: a page with @prot followed by an inaccessible
 * page. Returns the start of the first page.
 */
static inline void *dvm_guard_pages(int prot)
{
	long psz = getpagesize();
	char *p;

	p = mmap(NULL, 2 * psz, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	TEST_ASSERT(p != MAP_FAILED, "mmap");
	memset(p, 0, 2 * psz);
	TEST_ASSERT(!mprotect(p, psz, prot), "mprotect");
	TEST_ASSERT(!mprotect(p + psz, psz, PROT_NONE), "mprotect");
	return p;
}

/* The VM's binary stats (KVM_GET_STATS_FD), read by name. */
struct dvm_stats {
	int fd;
	struct kvm_stats_header hdr;
	struct kvm_stats_desc *descs;
};

static inline void dvm_stats_open(struct kvm_vm *vm, struct dvm_stats *s)
{
	s->fd = vm_get_stats_fd(vm);
	read_stats_header(s->fd, &s->hdr);
	s->descs = read_stats_descriptors(s->fd, &s->hdr);
}

static inline void dvm_stats_close(struct dvm_stats *s)
{
	free(s->descs);
	close(s->fd);
}

/*
 * Fills up to @max values of the statistic @name, returns how many it has.
 * Fails if the VM has no such statistic.
 */
static inline size_t dvm_stats_get(struct dvm_stats *s, const char *name,
				   uint64_t *data, size_t max)
{
	struct kvm_stats_desc *d;
	int i;

	for (i = 0; i < s->hdr.num_desc; i++) {
		d = get_stats_descriptor(s->descs, i, &s->hdr);
		if (strcmp(d->name, name))
			continue;
		TEST_ASSERT(d->size && d->size <= max,
			    "stat %s has %u values, room for %zu", name,
			    d->size, max);
		read_stat_data(s->fd, &s->hdr, d, data, d->size);
		return d->size;
	}
	TEST_FAIL("the VM has no statistic %s", name);
}

static inline size_t dvm_stat_read(struct kvm_vm *vm, const char *name,
				   uint64_t *data, size_t max)
{
	struct dvm_stats s;
	size_t n;

	dvm_stats_open(vm, &s);
	n = dvm_stats_get(&s, name, data, max);
	dvm_stats_close(&s);
	return n;
}

static inline uint64_t dvm_stat(struct kvm_vm *vm, const char *name)
{
	uint64_t v;

	dvm_stat_read(vm, name, &v, 1);
	return v;
}

/* One of the per message type counters (dvm_tx_msgs, ...): 32 of them. */
static inline uint64_t dvm_stats_type(struct dvm_stats *s, const char *name,
				      int type)
{
	uint64_t v[KVM_DVM_STAT_MSG_KINDS];
	size_t n = dvm_stats_get(s, name, v, KVM_DVM_STAT_MSG_KINDS);

	TEST_ASSERT(n == KVM_DVM_STAT_MSG_KINDS, "stat %s has %zu values, want %d",
		    name, n, KVM_DVM_STAT_MSG_KINDS);
	return v[type];
}

/* The ECHO counters of one node. */
struct dvm_echo_stats {
	uint64_t tx_msgs, rx_msgs, tx_bytes, rx_bytes, rtt_count;
};

static inline void dvm_echo_stats(struct kvm_vm *vm, struct dvm_echo_stats *e)
{
	struct dvm_stats s;

	dvm_stats_open(vm, &s);
	e->tx_msgs = dvm_stats_type(&s, "dvm_tx_msgs", KVM_DVM_STAT_MSG_ECHO);
	e->rx_msgs = dvm_stats_type(&s, "dvm_rx_msgs", KVM_DVM_STAT_MSG_ECHO);
	e->tx_bytes = dvm_stats_type(&s, "dvm_tx_bytes", KVM_DVM_STAT_MSG_ECHO);
	e->rx_bytes = dvm_stats_type(&s, "dvm_rx_bytes", KVM_DVM_STAT_MSG_ECHO);
	dvm_stats_get(&s, "dvm_rtt_count", &e->rtt_count, 1);
	dvm_stats_close(&s);
}

#endif /* SELFTEST_DVM_UTIL_H */
