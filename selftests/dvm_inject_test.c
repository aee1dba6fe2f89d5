// SPDX-License-Identifier: GPL-2.0
/*
 * dvm_inject_test: the DSM under the kernel's own fault injection.
 *
 * failslab (Documentation/fault-injection/fault-injection.rst) fails
 * slab allocations of the tasks marked with make-it-fail: here the vCPU
 * threads (faults, requests, placeholders), DVM's receive threads (the
 * handlers of every message) and the kernel's workers, which run the
 * DSM's manager and holder work and the transports' work. Meanwhile the
 * vCPUs of 2 nodes count with locked instructions, CMPXCHG loops and a
 * spinlock on shared pages (dsm_counters()).
 *
 * A DSM access that fails for lack of memory fails the access (KVM_RUN
 * returns EFAULT or ENOMEM with the cluster still RUNNING) and leaves
 * the directory and the copies consistent: the vCPU runs again and the
 * counters end exact. A failure that leaves no consistent state breaks
 * the cluster with a documented error instead; a page is never lost
 * while the cluster stays up. The test asserts that failures were
 * injected and that vCPU accesses failed and were retried.
 *
 * The page allocator's failures (fail_page_alloc) are not injected: most
 * page allocations in these tasks, KVM's own included, print a warning
 * with a stack trace when they fail, which the test platform counts as a
 * kernel problem.
 *
 * Usage: dvm_inject_test [rounds]
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "dvm_dsm.h"

#define FAILSLAB	"/sys/kernel/debug/failslab"

#define INJECT_NODES	2
#define INJECT_VCPUS	4
#define INJECT_ITERS	160		/* a multiple of 16 */
#define INJECT_ROUNDS	2
/* Per round: at most this many failures, each allocation failing with
 * INJECT_PERCENT % probability.
 */
#define INJECT_TIMES	400
#define INJECT_PERCENT	3
/* A vCPU whose accesses fail this often in a row is stuck, not unlucky. */
#define RETRY_LIMIT	100000
#define PROGRESS_S	10

static struct dvm_node nodes[INJECT_NODES];
static struct dsm_node dsm[INJECT_NODES];

struct inject_runner {
	struct kvm_vcpu *vcpu;
	int id;
	uint64_t retries;		/* KVM_RUN failed, cluster up */
	uint64_t efaults, enomems;
	bool broken;			/* exited KVM_EXIT_DVM_BROKEN */
	bool done;
	int run_errno;			/* KVM_RUN's other failure, or 0 */
	pthread_t thread;
};

static struct inject_runner runners[INJECT_VCPUS];

/* Tasks marked with make-it-fail, to unmark. */
static pid_t *marked;
static int nr_marked, max_marked;

static void guest_main(uint64_t id, uint64_t iters)
{
	dsm_counters(id, iters);
	GUEST_DONE();
}

static int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -1;
}

static void set_attr(const char *name, const char *val)
{
	char path[128];

	snprintf(path, sizeof(path), FAILSLAB "/%s", name);
	DVM_ASSERT(!write_file(path, val), "writing %s to %s: %s", val, path,
		   strerror(errno));
}

static long get_attr(const char *name)
{
	char path[128], buf[32] = "";
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), FAILSLAB "/%s", name);
	fd = open(path, O_RDONLY);
	DVM_ASSERT(fd >= 0, "%s: %s", path, strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	DVM_ASSERT(n > 0, "reading %s", path);
	return strtol(buf, NULL, 0);
}

/* failslab's directory exists: mounting debugfs if needed. */
static bool have_failslab(void)
{
	struct stat s;

	if (!stat(FAILSLAB, &s))
		return true;
	mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
	return !stat(FAILSLAB, &s);
}

static void inject_off(void)
{
	set_attr("probability", "0");
	set_attr("times", "0");
}

/* Fail slab allocations of marked tasks, @times at most. */
static void inject_on(int times)
{
	char buf[16];

	set_attr("verbose", "0");
	set_attr("task-filter", "Y");
	set_attr("ignore-gfp-wait", "N");
	set_attr("cache-filter", "N");
	set_attr("space", "0");
	set_attr("interval", "1");
	snprintf(buf, sizeof(buf), "%d", times);
	set_attr("times", buf);
	snprintf(buf, sizeof(buf), "%d", INJECT_PERCENT);
	set_attr("probability", buf);
}

static void mark_task(const char *path, pid_t pid)
{
	if (write_file(path, "1"))
		return;		/* gone meanwhile */
	if (nr_marked == max_marked) {
		max_marked = max_marked ? 2 * max_marked : 64;
		marked = realloc(marked, max_marked * sizeof(*marked));
		TEST_ASSERT(marked, "realloc");
	}
	marked[nr_marked++] = pid;
}

/*
 * Mark the kernel's workers and DVM's receive threads. Returns how many
 * receive threads there were.
 */
static int mark_kernel_tasks(void)
{
	char path[64], comm[64];
	struct dirent *d;
	int rx = 0, fd;
	ssize_t n;
	DIR *dir;

	dir = opendir("/proc");
	TEST_ASSERT(dir, "opendir /proc");
	while ((d = readdir(dir))) {
		pid_t pid = atoi(d->d_name);

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/comm", pid);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		n = read(fd, comm, sizeof(comm) - 1);
		close(fd);
		if (n <= 0)
			continue;
		comm[n] = 0;
		if (strncmp(comm, "kworker/", 8) &&
		    strncmp(comm, "kvm-dvm-rx/", 11))
			continue;
		rx += !strncmp(comm, "kvm-dvm-rx/", 11);
		snprintf(path, sizeof(path), "/proc/%d/make-it-fail", pid);
		mark_task(path, pid);
	}
	closedir(dir);
	return rx;
}

static void unmark_tasks(void)
{
	char path[64];
	int i;

	for (i = 0; i < nr_marked; i++) {
		snprintf(path, sizeof(path), "/proc/%d/make-it-fail",
			 marked[i]);
		write_file(path, "0");
	}
	nr_marked = 0;
}

/*
 * Run to GUEST_DONE; a KVM_RUN that fails while the cluster is up (an
 * access that could not get its page for lack of memory) runs again.
 */
static void *run_vcpu(void *arg)
{
	struct inject_runner *rn = arg;
	struct kvm_run *run = rn->vcpu->run;
	uint64_t in_a_row = 0;
	struct ucall uc;

	/* This thread's allocations may fail from now on. */
	DVM_ASSERT(!write_file("/proc/thread-self/make-it-fail", "1"),
		   "make-it-fail: %s", strerror(errno));
	for (;;) {
		if (__vcpu_run(rn->vcpu)) {
			if ((errno != EFAULT && errno != ENOMEM) ||
			    ++in_a_row > RETRY_LIMIT) {
				rn->run_errno = errno;
				break;
			}
			rn->retries++;
			rn->efaults += errno == EFAULT;
			rn->enomems += errno == ENOMEM;
			continue;
		}
		in_a_row = 0;
		if (run->exit_reason == KVM_EXIT_DVM_BROKEN) {
			rn->broken = true;
			break;
		}
		DVM_ASSERT(run->exit_reason == KVM_EXIT_IO,
			   "vCPU %d: exit reason %u", rn->id, run->exit_reason);
		switch (get_ucall(rn->vcpu, &uc)) {
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT_2(uc, "values %lx, %lx");
			break;
		case UCALL_DONE:
			goto out;
		default:
			TEST_FAIL("vCPU %d: unexpected ucall", rn->id);
		}
	}
out:
	write_file("/proc/thread-self/make-it-fail", "0");
	WRITE_ONCE(rn->done, true);
	return NULL;
}

static bool all_done(void)
{
	int v;

	for (v = 0; v < INJECT_VCPUS; v++)
		if (!READ_ONCE(runners[v].done))
			return false;
	return true;
}

/*
 * Wait for the vCPUs, saying every PROGRESS_S seconds how far they are:
 * a slow round shows what moves and what does not.
 */
static void wait_runners(int round)
{
	uint64_t t0 = dvm_now_ns(), next = t0 + PROGRESS_S * 1000000000ull;
	char line[256];
	int v, len;

	while (!all_done()) {
		usleep(20000);
		if (dvm_now_ns() < next)
			continue;
		next += PROGRESS_S * 1000000000ull;
		len = snprintf(line, sizeof(line),
			       "round %d, %lu s: failslab times left %ld; transactions",
			       round, (unsigned long)((dvm_now_ns() - t0) / 1000000000ull),
			       get_attr("times"));
		for (v = 0; v < INJECT_NODES; v++)
			len += snprintf(line + len, sizeof(line) - len, " %lu",
					(unsigned long)dvm_stat(nodes[v].vm,
								"dvm_dsm_fault_count"));
		len += snprintf(line + len, sizeof(line) - len, "; retries");
		for (v = 0; v < INJECT_VCPUS; v++)
			len += snprintf(line + len, sizeof(line) - len, " %lu%s",
					(unsigned long)READ_ONCE(runners[v].retries),
					READ_ONCE(runners[v].done) ? " (done)" : "");
		ksft_print_msg("%s\n", line);
	}
	for (v = 0; v < INJECT_VCPUS; v++)
		pthread_join(runners[v].thread, NULL);
}

/* A breakage the documentation allows under memory pressure. */
static bool documented_breakage(int err)
{
	return err == -EIO || err == -EPROTO || err == -ECONNRESET ||
	       err == -ETIMEDOUT;
}

struct round_result {
	uint64_t injected, retries, efaults, enomems;
	bool broken;
};

static void inject_round(int round, struct round_result *res)
{
	struct kvm_dvm_state st[INJECT_NODES];
	long left;
	int i, v, rx;

	dsm_cluster_up(nodes, dsm, INJECT_NODES, INJECT_VCPUS, guest_main,
		       DSM_PAGES, PG_LEVEL_4K);
	for (v = 0; v < INJECT_VCPUS; v++) {
		runners[v] = (struct inject_runner){
			.vcpu = nodes[v % INJECT_NODES].vcpus[v],
			.id = v,
		};
		vcpu_args_set(runners[v].vcpu, 2, (uint64_t)v,
			      (uint64_t)INJECT_ITERS);
	}

	rx = mark_kernel_tasks();
	/* TCP has a receive thread per link; RDMA receives in workers. */
	DVM_ASSERT(dvm_rdma_addr || rx >= INJECT_NODES,
		   "round %d: %d kvm-dvm-rx threads marked, want %d or more",
		   round, rx, INJECT_NODES);
	inject_on(INJECT_TIMES);
	for (v = 0; v < INJECT_VCPUS; v++)
		TEST_ASSERT(!pthread_create(&runners[v].thread, NULL, run_vcpu,
					    &runners[v]), "pthread_create");
	wait_runners(round);
	left = get_attr("times");
	inject_off();
	unmark_tasks();

	ksft_print_msg("round %d: %ld slab allocations failed\n", round,
		       INJECT_TIMES - left);
	res->injected += INJECT_TIMES - left;
	for (v = 0; v < INJECT_VCPUS; v++) {
		res->retries += runners[v].retries;
		res->efaults += runners[v].efaults;
		res->enomems += runners[v].enomems;
		DVM_ASSERT(!runners[v].run_errno,
			   "round %d: vCPU %d: KVM_RUN failed with %s (%lu failures before)",
			   round, v, strerror(runners[v].run_errno),
			   (unsigned long)runners[v].retries);
	}

	for (i = 0; i < INJECT_NODES; i++)
		dvm_get_state(nodes[i].vm, &st[i], NULL, 0);
	if (st[0].state == KVM_DVM_STATE_RUNNING &&
	    st[1].state == KVM_DVM_STATE_RUNNING) {
		for (v = 0; v < INJECT_VCPUS; v++)
			DVM_ASSERT(!runners[v].broken,
				   "round %d: vCPU %d exited BROKEN, the cluster is up",
				   round, v);
		/* Every copy consistent: each node reads the exact counts. */
		for (i = 0; i < INJECT_NODES; i++)
			dsm_counters_check(dsm[i].hva, INJECT_VCPUS,
					   INJECT_ITERS);
	} else {
		res->broken = true;
		for (i = 0; i < INJECT_NODES; i++) {
			DVM_ASSERT(st[i].state == KVM_DVM_STATE_BROKEN &&
				   documented_breakage(st[i].broken_error),
				   "round %d: node %d: state %s, node %u lost (%d)",
				   round, i, dvm_state_name(st[i].state),
				   st[i].broken_node, st[i].broken_error);
			ksft_print_msg("round %d: node %d: BROKEN, node %u lost (%s)\n",
				       round, i, st[i].broken_node,
				       strerror(-st[i].broken_error));
		}
	}
	dsm_cluster_down(nodes, dsm, INJECT_NODES, DSM_PAGES);
}

static void test_inject(const char *transport, int rounds)
{
	struct round_result res = { 0 };
	int round;

	for (round = 0; round < rounds; round++)
		inject_round(round, &res);
	ksft_print_msg("%s: %d rounds: %lu slab allocations failed, %lu vCPU accesses failed and retried (%lu EFAULT, %lu ENOMEM)%s\n",
		       transport, rounds, (unsigned long)res.injected,
		       (unsigned long)res.retries, (unsigned long)res.efaults,
		       (unsigned long)res.enomems,
		       res.broken ? ", cluster broken at least once" : "");
	DVM_ASSERT(res.injected > 0, "%s: no allocation failed", transport);
	DVM_ASSERT(res.retries > 0,
		   "%s: %lu allocations failed, no vCPU access failed",
		   transport, (unsigned long)res.injected);
	ksft_test_result_pass("%s: %d vCPUs on %d nodes count under failslab: exact, or BROKEN with a documented error\n",
			      transport, INJECT_VCPUS, INJECT_NODES);
}

int main(int argc, char *argv[])
{
	const char *rdma = getenv("DVM_RDMA_ADDR");
	int rounds = argc > 1 ? atoi(argv[1]) : INJECT_ROUNDS;

	/* Output is often a file: keep lines in order and complete. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	ksft_print_header();
	dvm_require_abi();
	TEST_REQUIRE(rounds > 0);
	TEST_REQUIRE(!geteuid());
	TEST_REQUIRE(have_failslab());
	ksft_set_plan(2);

	test_inject("tcp", rounds);
	if (rdma && *rdma) {
		dvm_rdma_addr = rdma;
		test_inject("rdma", rounds);
		dvm_rdma_addr = NULL;
	} else {
		ksft_test_result_skip("rdma: DVM_RDMA_ADDR (an IPv4 address of an rxe device) not set\n");
	}
	ksft_finished();
}
