// SPDX-License-Identifier: GPL-2.0
/*
 * dvm_fault_test: joins that must fail, and clusters that lose a node.
 * A wrong key, a node id claimed twice, a peer connecting from an address
 * that is not its own, a peer that never comes, a listen address in use, a
 * signal; a node killed while every vCPU runs, a node that leaves, and
 * join/leave cycles on the same ports.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "dvm_util.h"

#define NR_CYCLES		20
#define UNREACH_TIMEOUT_MS	1500
#define KILL_NODES		3
#define KILL_VICTIM		2
#define BROKEN_LIMIT_NS		(5 * 1000000000ull)

static uint64_t ms_since(uint64_t t0)
{
	return (dvm_now_ns() - t0) / 1000000;
}

/* Both nodes of a join must fail with @err and name the other. */
static void check_failed(struct dvm_node *nodes, int n, int err,
			 const uint32_t *failed_node, const char *what)
{
	int i;

	for (i = 0; i < n; i++) {
		DVM_ASSERT(nodes[i].ret == -1 && nodes[i].err == err,
			   "%s: node %d: ret %d errno %d (%s), want errno %d (%s)",
			   what, i, nodes[i].ret, nodes[i].err,
			   strerror(nodes[i].err), err, strerror(err));
		DVM_ASSERT(!failed_node ||
			   nodes[i].join.failed_node == failed_node[i],
			   "%s: node %d: failed_node %u, want %u", what, i,
			   nodes[i].join.failed_node,
			   failed_node ? failed_node[i] : 0);
		DVM_ASSERT(dvm_state(nodes[i].vm) == KVM_DVM_STATE_NONE,
			   "%s: node %d: state %s after a failed join, want NONE",
			   what, i, dvm_state_name(dvm_state(nodes[i].vm)));
	}
}

/* Node 1's key differs in one byte: both ends fail with EACCES. */
static void test_wrong_key(void)
{
	static const uint32_t others[] = { 1, 0 };
	struct kvm_dvm_node_addr addrs[2];
	struct dvm_node nodes[2];
	uint64_t auth[2];
	int i;

	dvm_nodes_create(nodes, 2, 0, NULL);
	dvm_addrs_loopback(addrs, 2, dvm_ports(2));
	for (i = 0; i < 2; i++)
		dvm_join_init(&nodes[i].join, i, 2, addrs,
			      KVM_DVM_TRANSPORT_TCP, DVM_JOIN_TIMEOUT_MS);
	dvm_key(nodes[1].join.key, true);
	dvm_join_all(nodes, 2);
	check_failed(nodes, 2, EACCES, others, "wrong key");
	for (i = 0; i < 2; i++) {
		auth[i] = dvm_stat(nodes[i].vm, "dvm_auth_failures");
		DVM_ASSERT(auth[i] >= 1, "wrong key: node %d dvm_auth_failures %llu",
			   i, (unsigned long long)auth[i]);
	}

	/* The VMs are as before: the right key joins them. */
	dvm_nodes_join(nodes, 2, "join with the right key after EACCES");
	dvm_free_all(nodes, 2);
	ksft_test_result_pass("wrong key: EACCES on both ends (auth failures %llu, %llu), then a join with the right key\n",
			      (unsigned long long)auth[0],
			      (unsigned long long)auth[1]);
}

/* Node 0, and two VMs that both claim to be node 2 of 3; no node 1. */
static void test_duplicate_id(void)
{
	struct kvm_dvm_node_addr addrs[3];
	struct dvm_node nodes[3];
	int i;

	dvm_nodes_create(nodes, 3, 0, NULL);
	dvm_addrs_loopback(addrs, 3, dvm_ports(3));
	for (i = 0; i < 3; i++)
		dvm_join_init(&nodes[i].join, i ? 2 : 0, 3, addrs,
			      KVM_DVM_TRANSPORT_TCP, DVM_JOIN_TIMEOUT_MS);
	dvm_join_all(nodes, 3);
	check_failed(nodes, 3, EEXIST, NULL, "node 2 twice");
	DVM_ASSERT(nodes[0].join.failed_node == 2,
		   "node 2 twice: node 0's failed_node %u, want 2",
		   nodes[0].join.failed_node);
	dvm_free_all(nodes, 3);
	ksft_test_result_pass("node id 2 claimed twice: EEXIST on node 0 and both claimants\n");
}

/*
 * Node 0's table has node 1 at 127.0.0.2; node 1's own table puts it at
 * 127.0.0.3, so it connects from there.
 */
static void test_unknown_address(void)
{
	static const uint32_t others[] = { 1, 0 };
	struct kvm_dvm_node_addr addrs[2][2];
	struct dvm_node nodes[2];
	uint16_t port = dvm_ports(1);
	int i;

	dvm_nodes_create(nodes, 2, 0, NULL);
	dvm_addr_inet(&addrs[0][0], INADDR_LOOPBACK, port);
	dvm_addr_inet(&addrs[0][1], INADDR_LOOPBACK + 1, port);
	dvm_addr_inet(&addrs[1][0], INADDR_LOOPBACK, port);
	dvm_addr_inet(&addrs[1][1], INADDR_LOOPBACK + 2, port);
	for (i = 0; i < 2; i++)
		dvm_join_init(&nodes[i].join, i, 2, addrs[i],
			      KVM_DVM_TRANSPORT_TCP, DVM_JOIN_TIMEOUT_MS);
	dvm_join_all(nodes, 2);
	check_failed(nodes, 2, EADDRNOTAVAIL, others,
		     "node 1 from 127.0.0.3, expected at 127.0.0.2");
	dvm_free_all(nodes, 2);
	ksft_test_result_pass("peer from an address not in the table: EADDRNOTAVAIL on both ends\n");
}

/* Only node 1 of 2 is started: ETIMEDOUT after connect_timeout_ms. */
static void test_unreachable(void)
{
	struct kvm_dvm_node_addr addrs[2];
	struct kvm_dvm_join j;
	struct kvm_vm *vm;
	uint64_t t0, ms;
	int r, err;

	vm = vm_create_barebones();
	dvm_addrs_loopback(addrs, 2, dvm_ports(2));
	dvm_join_init(&j, 1, 2, addrs, KVM_DVM_TRANSPORT_TCP,
		      UNREACH_TIMEOUT_MS);
	t0 = dvm_now_ns();
	r = __dvm_join(vm, &j);
	err = errno;
	ms = ms_since(t0);
	DVM_ASSERT(r == -1 && err == ETIMEDOUT,
		   "node 0 absent: ret %d errno %d (%s), want ETIMEDOUT", r,
		   err, strerror(err));
	DVM_ASSERT(j.failed_node == 0, "node 0 absent: failed_node %u, want 0",
		   j.failed_node);
	DVM_ASSERT(ms >= UNREACH_TIMEOUT_MS && ms < 10000,
		   "node 0 absent: failed after %llu ms, want %d ms to 10 s",
		   (unsigned long long)ms, UNREACH_TIMEOUT_MS);
	DVM_ASSERT(dvm_state(vm) == KVM_DVM_STATE_NONE,
		   "state %s after ETIMEDOUT", dvm_state_name(dvm_state(vm)));
	kvm_vm_free(vm);
	ksft_test_result_pass("unreachable peer: ETIMEDOUT, failed_node 0, after %llu ms (timeout %d ms)\n",
			      (unsigned long long)ms, UNREACH_TIMEOUT_MS);
}

/* Node 0's listen address is taken by a socket of ours: EADDRINUSE. */
static void test_addr_in_use(void)
{
	struct kvm_dvm_node_addr addrs[2];
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	struct kvm_dvm_join j;
	struct kvm_vm *vm;
	int fd, r, err;

	dvm_addrs_loopback(addrs, 2, dvm_ports(2));
	sin.sin_port = htons(addrs[0].port);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	TEST_ASSERT(fd >= 0, "socket");
	TEST_ASSERT(!bind(fd, (struct sockaddr *)&sin, sizeof(sin)) &&
		    !listen(fd, 4), "bind/listen 127.0.0.1:%u", addrs[0].port);

	vm = vm_create_barebones();
	dvm_join_init(&j, 0, 2, addrs, KVM_DVM_TRANSPORT_TCP, 10000);
	r = __dvm_join(vm, &j);
	err = errno;
	DVM_ASSERT(r == -1 && err == EADDRINUSE,
		   "listen address in use: ret %d errno %d (%s), want EADDRINUSE",
		   r, err, strerror(err));
	DVM_ASSERT(j.failed_node == KVM_DVM_NO_NODE,
		   "listen address in use: failed_node %u, want NO_NODE",
		   j.failed_node);
	DVM_ASSERT(dvm_state(vm) == KVM_DVM_STATE_NONE,
		   "state %s after EADDRINUSE", dvm_state_name(dvm_state(vm)));
	close(fd);
	kvm_vm_free(vm);
	ksft_test_result_pass("own listen address in use: EADDRINUSE\n");
}

static bool join_returned;

/* Only there to interrupt the JOIN. */
static void sigusr1(int sig)
{
}

/* Signals the joining thread until its JOIN returns. */
static void *signal_thread(void *arg)
{
	pthread_t target = *(pthread_t *)arg;

	while (!READ_ONCE(join_returned)) {
		pthread_kill(target, SIGUSR1);
		usleep(50000);
	}
	return NULL;
}

/* A signal interrupts a JOIN waiting for a peer: EINTR, VM as before. */
static void test_signal(void)
{
	struct sigaction sa = { .sa_handler = sigusr1 }, old;
	struct kvm_dvm_node_addr addrs[2];
	struct dvm_node nodes[2];
	pthread_t self = pthread_self(), th;
	uint64_t t0, ms;
	int r, err;

	dvm_nodes_create(nodes, 2, 0, NULL);
	dvm_addrs_loopback(addrs, 2, dvm_ports(2));
	dvm_join_init(&nodes[0].join, 0, 2, addrs, KVM_DVM_TRANSPORT_TCP,
		      30000);
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: the ioctl must return EINTR. */
	TEST_ASSERT(!sigaction(SIGUSR1, &sa, &old), "sigaction");
	join_returned = false;
	TEST_ASSERT(!pthread_create(&th, NULL, signal_thread, &self),
		    "pthread_create");
	t0 = dvm_now_ns();
	r = __dvm_join(nodes[0].vm, &nodes[0].join);
	err = errno;
	ms = ms_since(t0);
	WRITE_ONCE(join_returned, true);
	pthread_join(th, NULL);
	TEST_ASSERT(!sigaction(SIGUSR1, &old, NULL), "sigaction");
	DVM_ASSERT(r == -1 && err == EINTR,
		   "signal during JOIN: ret %d errno %d (%s) after %llu ms, want EINTR",
		   r, err, strerror(err), (unsigned long long)ms);
	DVM_ASSERT(dvm_state(nodes[0].vm) == KVM_DVM_STATE_NONE,
		   "state %s after EINTR",
		   dvm_state_name(dvm_state(nodes[0].vm)));

	dvm_nodes_join(nodes, 2, "join after EINTR");
	dvm_free_all(nodes, 2);
	ksft_test_result_pass("signal during JOIN: EINTR after %llu ms, then a join\n",
			      (unsigned long long)ms);
}

/* The guest of the run tests: spins, counting, until it is stopped. */
static uint64_t guest_spins;

static void guest_spin(void)
{
	for (;;)
		WRITE_ONCE(guest_spins, READ_ONCE(guest_spins) + 1);
}

/* Until the guest of @vm counts, i.e. its vCPU is inside KVM_RUN. */
static void wait_guest_spinning(struct kvm_vm *vm, const char *what)
{
	uint64_t *spins = addr_gva2hva(vm, (vm_vaddr_t)&guest_spins);
	uint64_t end = dvm_now_ns() + 120 * 1000000000ull;

	while (!READ_ONCE(*spins) && dvm_now_ns() < end)
		usleep(1000);
	DVM_ASSERT(READ_ONCE(*spins), "%s: the guest did not run in 120 s", what);
}

/* One vCPU in KVM_RUN on a thread of its own. */
struct runner {
	struct kvm_vcpu *vcpu;
	pthread_t thread;
	int ret;
	int err;
	uint32_t exit_reason;
	uint32_t broken_node;	/* kvm_run->dvm_broken */
	int32_t broken_error;
	uint64_t t_exit;
	bool done;
};

static void *runner_thread(void *arg)
{
	struct runner *r = arg;

	r->ret = __vcpu_run(r->vcpu);
	r->err = errno;
	r->t_exit = dvm_now_ns();
	r->exit_reason = r->vcpu->run->exit_reason;
	r->broken_node = r->vcpu->run->dvm_broken.node;
	r->broken_error = r->vcpu->run->dvm_broken.error;
	WRITE_ONCE(r->done, true);
	return NULL;
}

static void runner_start(struct runner *r, struct kvm_vcpu *vcpu)
{
	memset(r, 0, sizeof(*r));
	r->vcpu = vcpu;
	TEST_ASSERT(!pthread_create(&r->thread, NULL, runner_thread, r),
		    "pthread_create");
}

/* The vCPU must leave KVM_RUN with KVM_EXIT_DVM_BROKEN within @ms. */
static void runner_wait_broken(struct runner *r, uint64_t ms, const char *what)
{
	uint64_t end = dvm_now_ns() + ms * 1000000ull;

	while (!READ_ONCE(r->done) && dvm_now_ns() < end)
		usleep(1000);
	DVM_ASSERT(READ_ONCE(r->done), "%s: vCPU %u still in KVM_RUN after %llu ms", what,
		   r->vcpu->id, (unsigned long long)ms);
	pthread_join(r->thread, NULL);
	DVM_ASSERT(r->ret == 0 && r->exit_reason == KVM_EXIT_DVM_BROKEN,
		   "%s: KVM_RUN ret %d errno %d exit_reason %#x, want 0 and KVM_EXIT_DVM_BROKEN",
		   what, r->ret, r->ret ? r->err : 0, r->exit_reason);
}

/* What a child of the kill test tells its parent. */
struct kill_report {
	int node;
	int ready;		/* 1: vCPU running; 0: result */
	uint64_t t_exit;	/* when KVM_RUN returned */
	int32_t broken_error;
};

struct kill_child {
	int node;
	int wfd;
	struct kvm_vm *vm;
};

static void report(int wfd, struct kill_report *rep)
{
	TEST_ASSERT(write(wfd, rep, sizeof(*rep)) == sizeof(*rep),
		    "write to the parent");
}

static void *kill_watch_thread(void *arg)
{
	struct kill_child *c = arg;
	struct kill_report rep = { .node = c->node, .ready = 1 };

	wait_guest_spinning(c->vm, "kill test");
	report(c->wfd, &rep);
	return NULL;
}

/* Node @node of KILL_NODES, in a child process. Exits 0 if all is well. */
static void kill_test_child(int node, struct kvm_dvm_node_addr *addrs,
			    int wfd)
{
	struct kill_report rep = { .node = node };
	struct kvm_dvm_link links[KILL_NODES];
	struct kvm_vcpu *vcpus[KILL_NODES];
	struct kill_child c = { node, wfd };
	struct kvm_dvm_state st;
	struct kvm_dvm_vcpus v;
	struct kvm_dvm_ping p;
	struct kvm_dvm_join j;
	pthread_t watcher;
	int r, err, i;

	c.vm = vm_create_with_vcpus(KILL_NODES, guest_spin, vcpus);
	dvm_join_init(&j, node, KILL_NODES, addrs, KVM_DVM_TRANSPORT_TCP,
		      DVM_JOIN_TIMEOUT_MS);
	DVM_ASSERT_OK(__dvm_join(c.vm, &j), "kill test: join");
	dvm_vcpus_init(&v, KILL_NODES);
	dvm_vcpus_set(&v, node);
	DVM_ASSERT_OK(__dvm_set_vcpus(c.vm, &v), "kill test: placement");

	TEST_ASSERT(!pthread_create(&watcher, NULL, kill_watch_thread, &c),
		    "pthread_create");
	r = __vcpu_run(vcpus[node]);
	err = errno;
	rep.t_exit = dvm_now_ns();
	pthread_join(watcher, NULL);
	DVM_ASSERT(node != KILL_VICTIM, "node %d: KVM_RUN returned, ret %d",
		   node, r);
	DVM_ASSERT(r == 0 && vcpus[node]->run->exit_reason ==
				KVM_EXIT_DVM_BROKEN,
		   "node %d: KVM_RUN ret %d errno %d exit_reason %#x, want KVM_EXIT_DVM_BROKEN",
		   node, r, r ? err : 0, vcpus[node]->run->exit_reason);

	dvm_get_state(c.vm, &st, links, KILL_NODES);
	DVM_ASSERT(st.state == KVM_DVM_STATE_BROKEN &&
		   st.broken_node == KILL_VICTIM &&
		   (st.broken_error == -ECONNRESET ||
		    st.broken_error == -ETIMEDOUT),
		   "node %d: state %s broken_node %u broken_error %d, want BROKEN %d -ECONNRESET/-ETIMEDOUT",
		   node, dvm_state_name(st.state), st.broken_node,
		   st.broken_error, KILL_VICTIM);
	/*
	 * Another survivor's BROKEN message may come before this node's own
	 * link to the victim failed; the link must fail soon after.
	 */
	for (i = 0; i < 100 && links[KILL_VICTIM].state != KVM_DVM_LINK_DOWN;
	     i++) {
		usleep(50000);
		dvm_get_state(c.vm, &st, links, KILL_NODES);
	}
	DVM_ASSERT(links[KILL_VICTIM].state == KVM_DVM_LINK_DOWN,
		   "node %d: link to the killed node: state %u, want DOWN within 5 s",
		   node, links[KILL_VICTIM].state);
	DVM_ASSERT(vcpus[node]->run->dvm_broken.node == st.broken_node &&
		   vcpus[node]->run->dvm_broken.error == st.broken_error,
		   "node %d: kvm_run->dvm_broken says node %u (%d), GET_STATE node %u (%d)",
		   node, vcpus[node]->run->dvm_broken.node,
		   vcpus[node]->run->dvm_broken.error, st.broken_node,
		   st.broken_error);
	rep.broken_error = st.broken_error;

	dvm_ping_init(&p, !node, 64, 1, 1);
	DVM_ASSERT_ERRNO(__dvm_ping(c.vm, &p), ENOLINK,
			 "broken: PING the other survivor");
	dvm_vcpus_init(&v, KILL_NODES);
	dvm_vcpus_set(&v, node);
	DVM_ASSERT_ERRNO(__dvm_set_vcpus(c.vm, &v), ENOLINK,
			 "broken: SET_LOCAL_VCPUS");
	DVM_ASSERT_ERRNO(__vcpu_run(vcpus[node]), ENOLINK, "broken: KVM_RUN");

	report(wfd, &rep);
	kvm_vm_free(c.vm);
	exit(0);
}

static void kill_children(pid_t *pids)
{
	int i;

	for (i = 0; i < KILL_NODES; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGKILL);
}

/* Exit statuses of the children read_report() reaped. */
static int reaped_status[KILL_NODES];

/*
 * Read one report, failing after @ms or when a child other than the
 * victim (once killed) exits without a report to read.
 */
static void read_report(int rfd, pid_t *pids, bool victim_killed,
			uint64_t ms, struct kill_report *rep, const char *what)
{
	uint64_t end = dvm_now_ns() + ms * 1000000ull;
	struct pollfd pfd = { .fd = rfd, .events = POLLIN };
	int i, status;
	ssize_t n;

	for (;;) {
		if (poll(&pfd, 1, 200) == 1) {
			n = read(rfd, rep, sizeof(*rep));
			if (n == sizeof(*rep))
				return;
			kill_children(pids);
			TEST_FAIL("%s: read from the children: %zd", what, n);
		}
		for (i = 0; i < KILL_NODES; i++) {
			if (!pids[i] || (victim_killed && i == KILL_VICTIM))
				continue;
			if (waitpid(pids[i], &status, WNOHANG) != pids[i])
				continue;
			pids[i] = 0;
			reaped_status[i] = status;
			/* It may have written its report before exiting. */
			if (poll(&pfd, 1, 0) == 1)
				continue;
			kill_children(pids);
			TEST_FAIL("%s: node %d exited early, status %#x", what,
				  i, status);
		}
		if (dvm_now_ns() > end) {
			kill_children(pids);
			TEST_FAIL("%s: nothing from the nodes in %llu ms",
				  what, (unsigned long long)ms);
		}
	}
}

/*
 * Three nodes, in three processes, each running its vCPU in a guest that
 * spins forever. Node 2 is killed: nodes 0 and 1 must see their vCPU
 * leave KVM_RUN with KVM_EXIT_DVM_BROKEN within 5 s, and the cluster
 * BROKEN, with node 2 lost.
 */
static void test_peer_killed(void)
{
	struct kvm_dvm_node_addr addrs[KILL_NODES];
	struct kill_report rep, results[KILL_NODES] = {};
	pid_t pids[KILL_NODES] = {}, parent = getpid();
	uint64_t t_kill, delay_ms[KILL_NODES] = {};
	int fds[2], i, status, nr_ready = 0;
	bool got[KILL_NODES] = {};

	dvm_addrs_loopback(addrs, KILL_NODES, dvm_ports(KILL_NODES));
	TEST_ASSERT(!pipe(fds), "pipe");
	fflush(stdout);
	fflush(stderr);
	for (i = 0; i < KILL_NODES; i++) {
		pids[i] = fork();
		TEST_ASSERT(pids[i] >= 0, "fork");
		if (pids[i])
			continue;
		/* Never outlive the parent, whatever happens to it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			exit(1);
		close(fds[0]);
		kill_test_child(i, addrs, fds[1]);
	}
	close(fds[1]);

	while (nr_ready < KILL_NODES) {
		read_report(fds[0], pids, false, 180000, &rep,
			    "waiting for the vCPUs to run");
		TEST_ASSERT(rep.ready && rep.node >= 0 &&
			    rep.node < KILL_NODES, "unexpected report");
		nr_ready++;
	}
	t_kill = dvm_now_ns();
	kill(pids[KILL_VICTIM], SIGKILL);
	TEST_ASSERT(waitpid(pids[KILL_VICTIM], &status, 0) ==
		    pids[KILL_VICTIM] && WIFSIGNALED(status) &&
		    WTERMSIG(status) == SIGKILL, "node 2: status %#x", status);
	pids[KILL_VICTIM] = 0;

	for (i = 0; i < KILL_NODES - 1; i++) {
		read_report(fds[0], pids, true, 60000, &rep,
			    "waiting for the survivors");
		TEST_ASSERT(!rep.ready && rep.node >= 0 &&
			    rep.node < KILL_VICTIM && !got[rep.node],
			    "unexpected report from node %d", rep.node);
		got[rep.node] = true;
		results[rep.node] = rep;
	}
	for (i = 0; i < KILL_NODES; i++) {
		if (i == KILL_VICTIM)
			continue;
		if (pids[i])
			TEST_ASSERT(waitpid(pids[i], &status, 0) == pids[i],
				    "waitpid");
		else
			status = reaped_status[i];
		DVM_ASSERT(WIFEXITED(status) && !WEXITSTATUS(status),
			   "node %d: status %#x", i, status);
		DVM_ASSERT(results[i].t_exit > t_kill,
			   "node %d: KVM_RUN returned before the kill", i);
		delay_ms[i] = (results[i].t_exit - t_kill) / 1000000;
		ksft_print_msg("node %d: KVM_EXIT_DVM_BROKEN %llu ms after the kill, broken_error %d\n",
			       i, (unsigned long long)delay_ms[i],
			       results[i].broken_error);
		DVM_ASSERT(results[i].t_exit - t_kill < BROKEN_LIMIT_NS,
			   "node %d: KVM_EXIT_DVM_BROKEN %llu ms after the kill, limit 5000 ms",
			   i, (unsigned long long)delay_ms[i]);
	}
	close(fds[0]);
	ksft_test_result_pass("node 2 killed mid-run: nodes 0/1 KVM_EXIT_DVM_BROKEN after %llu/%llu ms, BROKEN, ENOLINK\n",
			      (unsigned long long)delay_ms[0],
			      (unsigned long long)delay_ms[1]);
}

/*
 * Node 1 leaves while both vCPUs run: both leave KVM_RUN with
 * KVM_EXIT_DVM_BROKEN, node 1 is LEFT, node 0 BROKEN by node 1 with
 * -ECONNRESET.
 */
static void test_leave(void)
{
	struct kvm_dvm_link links[2];
	struct dvm_node nodes[2];
	struct runner runners[2];
	struct kvm_dvm_state st;
	uint64_t t_leave;
	int i;

	dvm_nodes_create(nodes, 2, 2, guest_spin);
	dvm_nodes_join(nodes, 2, "leave test: join");
	dvm_place_round_robin(nodes, 2, 2);
	dvm_set_vcpus_all(nodes, 2);
	dvm_assert_all_ok(nodes, 2, "leave test: placement");
	for (i = 0; i < 2; i++)
		runner_start(&runners[i], nodes[i].vcpus[i]);
	for (i = 0; i < 2; i++)
		wait_guest_spinning(nodes[i].vm, "leave test");

	t_leave = dvm_now_ns();
	DVM_ASSERT_OK(__dvm_leave(nodes[1].vm), "LEAVE node 1");
	runner_wait_broken(&runners[1], 30000, "the leaver's vCPU");
	runner_wait_broken(&runners[0], 30000, "the peer's vCPU");
	dvm_get_state(nodes[1].vm, &st, links, 2);
	DVM_ASSERT(st.state == KVM_DVM_STATE_LEFT && st.node_id == 1 &&
		   st.nr_nodes == 2,
		   "leaver: state %s node_id %u nr_nodes %u, want LEFT 1 2",
		   dvm_state_name(st.state), st.node_id, st.nr_nodes);

	dvm_wait_state(nodes[0].vm, KVM_DVM_STATE_BROKEN, 30000,
		       "the leaver's peer");
	dvm_get_state(nodes[0].vm, &st, links, 2);
	DVM_ASSERT(st.broken_node == 1 && st.broken_error == -ECONNRESET,
		   "the leaver's peer: broken_node %u broken_error %d, want 1 %d",
		   st.broken_node, st.broken_error, -ECONNRESET);
	DVM_ASSERT(runners[0].broken_node == 1 &&
		   runners[0].broken_error == -ECONNRESET &&
		   runners[1].broken_node == KVM_DVM_NO_NODE &&
		   !runners[1].broken_error,
		   "kvm_run->dvm_broken: peer's vCPU node %u (%d), want 1 (%d); leaver's node %u (%d), want none (0)",
		   runners[0].broken_node, runners[0].broken_error,
		   -ECONNRESET, runners[1].broken_node,
		   runners[1].broken_error);
	DVM_ASSERT(links[1].state == KVM_DVM_LINK_DOWN &&
		   links[0].state == KVM_DVM_LINK_SELF,
		   "the leaver's peer: links %u %u, want SELF DOWN",
		   links[0].state, links[1].state);
	DVM_ASSERT_ERRNO(__vcpu_run(nodes[0].vcpus[0]), ENOLINK,
			 "peer: KVM_RUN when broken");
	DVM_ASSERT_ERRNO(__vcpu_run(nodes[1].vcpus[1]), ENOLINK,
			 "leaver: KVM_RUN when left");

	DVM_ASSERT_OK(__dvm_leave(nodes[0].vm), "LEAVE from BROKEN");
	DVM_ASSERT(dvm_state(nodes[0].vm) == KVM_DVM_STATE_LEFT,
		   "node 0 after LEAVE: state %s",
		   dvm_state_name(dvm_state(nodes[0].vm)));
	dvm_free_all(nodes, 2);
	ksft_test_result_pass("LEAVE: leaver LEFT, peer BROKEN by it with -ECONNRESET, both vCPUs out with KVM_EXIT_DVM_BROKEN and kvm_run->dvm_broken (%llu/%llu ms)\n",
			      (unsigned long long)(runners[0].t_exit - t_leave) / 1000000,
			      (unsigned long long)(runners[1].t_exit - t_leave) / 1000000);
}

/* 2-node join, PING, LEAVE, free; NR_CYCLES times on the same ports. */
static void test_cycles(void)
{
	struct kvm_dvm_node_addr addrs[2];
	struct dvm_node nodes[2];
	struct kvm_dvm_ping p;
	uint64_t t0 = dvm_now_ns();
	char what[64];
	int c, i, first;

	dvm_addrs_loopback(addrs, 2, dvm_ports(2));
	for (c = 0; c < NR_CYCLES; c++) {
		snprintf(what, sizeof(what), "cycle %d: join", c);
		dvm_nodes_create(nodes, 2, 0, NULL);
		dvm_join_ok(nodes, 2, addrs, KVM_DVM_TRANSPORT_TCP, what);
		for (i = 0; i < 2; i++) {
			snprintf(what, sizeof(what), "cycle %d: PING from %d",
				 c, i);
			dvm_ping_init(&p, !i, 256, 10, 2);
			DVM_ASSERT_OK(__dvm_ping(nodes[i].vm, &p), what);
		}
		/* Alternate which node leaves first. */
		first = c & 1;
		for (i = 0; i < 2; i++) {
			snprintf(what, sizeof(what), "cycle %d: LEAVE node %d",
				 c, first ^ i);
			DVM_ASSERT_OK(__dvm_leave(nodes[first ^ i].vm), what);
		}
		for (i = 0; i < 2; i++)
			kvm_vm_free(nodes[i].vm);
	}
	ksft_test_result_pass("%d cycles of join, PING, LEAVE, free on ports %u-%u (%llu ms)\n",
			      NR_CYCLES, addrs[0].port, addrs[1].port,
			      (unsigned long long)ms_since(t0));
}

int main(void)
{
	ksft_print_header();
	ksft_set_plan(9);
	dvm_require_abi();

	test_wrong_key();
	test_duplicate_id();
	test_unknown_address();
	test_unreachable();
	test_addr_in_use();
	test_signal();
	test_peer_killed();
	test_leave();
	test_cycles();
	ksft_finished();
}
