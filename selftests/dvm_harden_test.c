// SPDX-License-Identifier: GPL-2.0
/*
 * dvm_harden_test: what userspace must not be able to break. The memory
 * file keeps its size and its copies whatever is done to the file;
 * CREATE_MEMORY refuses what the host cannot hold, and a second memory in
 * a cluster; read-only argument structs fail before anything happens; a
 * peer lost right after mesh-up leaves its peer BROKEN; and a node torn
 * down (LEAVE, exit, SIGKILL) while guest memory and PINGs flow leaves
 * the other BROKEN, many times over.
 *
 * Usage: dvm_harden_test [teardown cycles]
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "dvm_dsm.h"

/* The file of the size tests: 16 pages; page 3 has node 1 as manager. */
#define SMALL_PAGES		16
#define SMALL_SIZE		(SMALL_PAGES * 4096ULL)
#define TEST_PAGE		3

#define MESH_UP_TRIES		20
#define BROKEN_WAIT_MS		10000
#define EFAULT_LIMIT_MS		5000

/* Teardown under traffic. */
#define TEARDOWN_CYCLES		12
#define TEARDOWN_ITERS		(1ULL << 62)	/* never done */
#define TEARDOWN_PING_SIZE	4096
#define TEARDOWN_PING_DEPTH	8
/*
 * Round trips per PING call: calls that end show the round trips that
 * were PINGs (dvm_rtt_count has the DSM's too), and the child's first
 * one that its PINGs get through.
 */
#define TEARDOWN_PING_COUNT	1000
#define TRAFFIC_WAIT_MS		60000
#define TRAFFIC_FETCHES		50
#define TRAFFIC_RTTS		200
#define CHILD_EXIT_WAIT_MS	30000

static uint64_t ms_since(uint64_t t0)
{
	return (dvm_now_ns() - t0) / 1000000;
}

/* Until *@flag is set or @ms passed; true if it was set. */
static bool wait_flag(bool *flag, uint64_t ms)
{
	uint64_t end = dvm_now_ns() + ms * 1000000ull;

	while (!READ_ONCE(*flag) && dvm_now_ns() < end)
		usleep(1000);
	return READ_ONCE(*flag);
}

/*
 * Poll GET_STATE every 10 ms until @vm is BROKEN or @ms passed; *@st is
 * the last state read. Returns the milliseconds waited.
 */
static uint64_t wait_broken(struct kvm_vm *vm, uint64_t ms,
			    struct kvm_dvm_state *st)
{
	uint64_t t0 = dvm_now_ns(), end = t0 + ms * 1000000ull;

	for (;;) {
		dvm_get_state(vm, st, NULL, 0);
		if (st->state == KVM_DVM_STATE_BROKEN || dvm_now_ns() >= end)
			break;
		usleep(10000);
	}
	return ms_since(t0);
}

/* A page of pseudo-random words derived from @seed. */
static void fill_pattern(uint64_t *page, uint64_t seed)
{
	int i;

	for (i = 0; i < 512; i++)
		page[i] = (seed + i) * 0x9e3779b97f4a7c15ULL ^ (seed << 32);
}

/* @got must be @want, all 4096 bytes. */
static void check_page(const uint8_t *got, const uint64_t *want,
		       const char *what)
{
	uint64_t copy[512];
	int i;

	memcpy(copy, got, sizeof(copy));
	for (i = 0; i < 512 && copy[i] == want[i]; i++)
		;
	DVM_ASSERT(i == 512, "%s: word %d is %#llx, want %#llx", what, i,
		   (unsigned long long)(i < 512 ? copy[i] : 0),
		   (unsigned long long)(i < 512 ? want[i] : 0));
}

static const char *errno_name(int err)
{
	switch (err) {
	case 0:
		return "none";
	case ENOLINK:
		return "ENOLINK";
	case ENOTCONN:
		return "ENOTCONN";
	case ECONNRESET:
		return "ECONNRESET";
	case ECONNABORTED:
		return "ECONNABORTED";
	case ETIMEDOUT:
		return "ETIMEDOUT";
	case EPROTO:
		return "EPROTO";
	case EIO:
		return "EIO";
	}
	return strerror(err);
}

/*
 * Cases 1 and 2 share a cluster of two nodes, each with a memory file
 * of SMALL_PAGES mapped here.
 */
static struct dvm_node size_nodes[2];
static int size_fd[2];
static uint8_t *size_hva[2];

/* The memory file keeps its size: truncation and hole punching fail. */
static void test_no_resize(void)
{
	uint64_t want[512];
	char path[64];
	const char *reopen;
	struct stat sb;
	int i, r, err;

	dvm_nodes_create(size_nodes, 2, 0, NULL);
	dvm_nodes_join(size_nodes, 2, "size test: JOIN");
	for (i = 0; i < 2; i++) {
		size_fd[i] = __dsm_create(size_nodes[i].vm, SMALL_SIZE, 0);
		DVM_ASSERT(size_fd[i] >= 0, "node %d: CREATE_MEMORY: %s", i,
			   strerror(errno));
		size_hva[i] = mmap(NULL, SMALL_SIZE, PROT_READ | PROT_WRITE,
				   MAP_SHARED, size_fd[i], 0);
		DVM_ASSERT(size_hva[i] != MAP_FAILED, "node %d: mmap: %s", i,
			   strerror(errno));
	}

	fill_pattern(want, 1);
	memcpy(size_hva[0] + TEST_PAGE * 4096, want, 4096);

	for (i = 0; i < 2; i++) {
		DVM_ASSERT_ERRNO(ftruncate(size_fd[i], 0), EPERM,
				 "ftruncate to 0");
		DVM_ASSERT_ERRNO(ftruncate(size_fd[i], 2 * SMALL_SIZE), EPERM,
				 "ftruncate to twice the size");
		DVM_ASSERT_ERRNO(fallocate(size_fd[i], 0, 0, 4096), EOPNOTSUPP,
				 "fallocate");
		DVM_ASSERT_ERRNO(fallocate(size_fd[i], FALLOC_FL_PUNCH_HOLE |
					   FALLOC_FL_KEEP_SIZE, 0, 4096),
				 EOPNOTSUPP, "fallocate(PUNCH_HOLE)");
	}
	DVM_ASSERT_ERRNO(madvise(size_hva[0] + TEST_PAGE * 4096, 4096,
				 MADV_REMOVE), EOPNOTSUPP,
			 "madvise(MADV_REMOVE) of the page node 0 wrote");

	/*
	 * Opening the file again through /proc with O_TRUNC: refused by the
	 * truncation (EPERM), or before it, as the file cannot be opened
	 * again at all (ENXIO). Either way nothing is truncated, which the
	 * size and the data below show.
	 */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", size_fd[0]);
	r = open(path, O_RDWR | O_TRUNC);
	err = errno;
	if (r >= 0)
		close(r);
	DVM_ASSERT(r == -1 && (err == EPERM || err == ENXIO),
		   "open(%s, O_RDWR | O_TRUNC): ret %d errno %d (%s), want EPERM or ENXIO",
		   path, r, r == -1 ? err : 0, r == -1 ? strerror(err) : "none");
	reopen = err == EPERM ? "EPERM" : "ENXIO";

	for (i = 0; i < 2; i++) {
		DVM_ASSERT(!fstat(size_fd[i], &sb), "fstat: %s",
			   strerror(errno));
		DVM_ASSERT(sb.st_size == SMALL_SIZE,
			   "node %d: the memory file has %lld bytes, want %llu",
			   i, (long long)sb.st_size, SMALL_SIZE);
	}
	check_page(size_hva[1] + TEST_PAGE * 4096, want,
		   "node 1 reads page 3 after node 0 wrote it");
	ksft_test_result_pass("memory file keeps its size: ftruncate EPERM, fallocate and MADV_REMOVE EOPNOTSUPP, O_TRUNC reopen %s; %llu bytes, node 0's page read exactly on node 1\n",
			      reopen, SMALL_SIZE);
}

static void check_rejected(const uint64_t *before, const char *what)
{
	uint64_t after;
	int i;

	for (i = 0; i < 2; i++) {
		after = dvm_stat(size_nodes[i].vm, "dvm_dsm_rejected");
		DVM_ASSERT(after == before[i],
			   "%s: node %d: dvm_dsm_rejected %llu -> %llu", what,
			   i, (unsigned long long)before[i],
			   (unsigned long long)after);
	}
}

/*
 * POSIX_FADV_DONTNEED on nodes holding page 3 Shared drops no copy behind
 * the manager's back. Node 1's copy is not mapped (munmap) when it gets
 * the advice, so that nothing else would keep it in the page cache.
 * Node 1 then reads the copy it still holds, node 0's next write
 * invalidates it, node 1 reads the new data; nothing is rejected, the
 * cluster stays up.
 */
static void test_fadvise(void)
{
	uint64_t want[512], rejected[2];
	int i, r;

	for (i = 0; i < 2; i++)
		rejected[i] = dvm_stat(size_nodes[i].vm, "dvm_dsm_rejected");
	/* Node 1 holds page 3 Shared since test_no_resize() read it. */
	DVM_ASSERT(!munmap(size_hva[1], SMALL_SIZE), "munmap: %s",
		   strerror(errno));
	for (i = 1; i >= 0; i--) {
		r = posix_fadvise(size_fd[i], 0, 0, POSIX_FADV_DONTNEED);
		DVM_ASSERT(r == 0, "node %d: posix_fadvise(DONTNEED): %d (%s)",
			   i, r, strerror(r));
	}
	size_hva[1] = mmap(NULL, SMALL_SIZE, PROT_READ | PROT_WRITE,
			   MAP_SHARED, size_fd[1], 0);
	DVM_ASSERT(size_hva[1] != MAP_FAILED, "mmap again: %s",
		   strerror(errno));

	fill_pattern(want, 1);
	check_page(size_hva[1] + TEST_PAGE * 4096, want,
		   "node 1 reads its copy of page 3 after fadvise");
	check_rejected(rejected, "node 1 read its copy after fadvise");

	fill_pattern(want, 2);
	memcpy(size_hva[0] + TEST_PAGE * 4096, want, 4096);
	check_page(size_hva[1] + TEST_PAGE * 4096, want,
		   "node 1 reads page 3 after fadvise and node 0's new write");
	check_rejected(rejected, "node 0 wrote, node 1 read");
	for (i = 0; i < 2; i++)
		DVM_ASSERT(dvm_state(size_nodes[i].vm) == KVM_DVM_STATE_JOINED,
			   "node %d after the fadvise case: state %s", i,
			   dvm_state_name(dvm_state(size_nodes[i].vm)));

	for (i = 0; i < 2; i++) {
		munmap(size_hva[i], SMALL_SIZE);
		close(size_fd[i]);
	}
	dvm_free_all(size_nodes, 2);
	ksft_test_result_pass("fadvise(DONTNEED) drops no copy: node 1 reads its copy, then node 0's next write; dvm_dsm_rejected stays %llu/%llu, cluster up\n",
			      (unsigned long long)rejected[0],
			      (unsigned long long)rejected[1]);
}

/*
 * The kernel refuses a memory whose metadata exceeds a quarter of RAM;
 * that metadata is at least 16 bytes per page. Whether @size is surely
 * refused on a host of @ram bytes.
 */
static bool metadata_too_big(uint64_t size, uint64_t ram)
{
	return size / 4096 * 16 > ram / 4;
}

/* Too big for this host: ENOMEM; nothing left, a small one follows. */
static void test_too_big(void)
{
	uint64_t ram, sizes[2];
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
	struct dvm_node nodes[2];
	struct stat sb;
	char tried[128];
	int i, fd, n = 0;

	/* sysinfo()'s totalram, in bytes. */
	DVM_ASSERT(pages > 0 && psz > 0, "sysconf: %ld pages of %ld bytes",
		   pages, psz);
	ram = (uint64_t)pages * psz;
	sizes[0] = KVM_DVM_MAX_MEMORY;
	sizes[1] = (ram * 128 + 4095) & ~4095ULL;
	if (sizes[1] > KVM_DVM_MAX_MEMORY)
		sizes[1] = KVM_DVM_MAX_MEMORY;

	dvm_nodes_create(nodes, 2, 0, NULL);
	dvm_nodes_join(nodes, 2, "too big: JOIN");
	tried[0] = 0;
	for (i = 0; i < 2; i++) {
		if (!metadata_too_big(sizes[i], ram)) {
			ksft_print_msg("too big: %llu GiB not tried, this host (%llu MiB) may hold its metadata\n",
				       (unsigned long long)(sizes[i] >> 30),
				       (unsigned long long)(ram >> 20));
			continue;
		}
		DVM_ASSERT_ERRNO(__dsm_create(nodes[0].vm, sizes[i], 0),
				 ENOMEM, "CREATE_MEMORY beyond the host");
		n += snprintf(tried + n, sizeof(tried) - n, "%s%llu MiB",
			      n ? ", " : "",
			      (unsigned long long)(sizes[i] >> 20));
	}

	fd = __dsm_create(nodes[0].vm, SMALL_SIZE, 0);
	DVM_ASSERT(fd >= 0, "CREATE_MEMORY of %llu bytes after ENOMEM: %s",
		   SMALL_SIZE, strerror(errno));
	DVM_ASSERT(!fstat(fd, &sb) && sb.st_size == SMALL_SIZE,
		   "the memory file after ENOMEM: %lld bytes, want %llu",
		   (long long)sb.st_size, SMALL_SIZE);
	close(fd);
	dvm_free_all(nodes, 2);
	/* From 16 GiB of RAM on, KVM_DVM_MAX_MEMORY may fit. */
	if (!n)
		ksft_test_result_skip("CREATE_MEMORY beyond the host: no size up to KVM_DVM_MAX_MEMORY is too big for %llu MiB\n",
				      (unsigned long long)(ram >> 20));
	else
		ksft_test_result_pass("CREATE_MEMORY beyond a host of %llu MiB (%s): ENOMEM, then %d pages created\n",
				      (unsigned long long)(ram >> 20), tried,
				      SMALL_PAGES);
}

/*
 * A second memory in a cluster: EEXIST. Closing the memory file loses
 * this node's part of the memory: the cluster breaks, naming it, with
 * ECONNRESET on both nodes, and no memory is created any more.
 */
static void test_one_memory(void)
{
	struct dvm_node nodes[2];
	struct kvm_dvm_state st;
	int fd, i;

	dvm_nodes_create(nodes, 2, 0, NULL);
	dvm_nodes_join(nodes, 2, "one memory: JOIN");
	fd = __dsm_create(nodes[0].vm, SMALL_SIZE, 0);
	DVM_ASSERT(fd >= 0, "CREATE_MEMORY: %s", strerror(errno));
	DVM_ASSERT_ERRNO(__dsm_create(nodes[0].vm, SMALL_SIZE, 0), EEXIST,
			 "CREATE_MEMORY while the first is open");
	close(fd);
	for (i = 0; i < 2; i++) {
		dvm_wait_state(nodes[i].vm, KVM_DVM_STATE_BROKEN, BROKEN_WAIT_MS,
			       "one memory: closed");
		dvm_get_state(nodes[i].vm, &st, NULL, 0);
		DVM_ASSERT(st.broken_node == 0 && st.broken_error == -ECONNRESET,
			   "node %d after node 0 closed its memory: node %u lost (%d), want 0 -ECONNRESET",
			   i, st.broken_node, st.broken_error);
	}
	DVM_ASSERT_ERRNO(__dsm_create(nodes[0].vm, SMALL_SIZE, 0), ENOLINK,
			 "CREATE_MEMORY after the first was closed");

	for (i = 0; i < 2; i++) {
		DVM_ASSERT_OK(__dvm_leave(nodes[i].vm), "LEAVE");
		DVM_ASSERT(dvm_state(nodes[i].vm) == KVM_DVM_STATE_LEFT,
			   "node %d after LEAVE: state %s", i,
			   dvm_state_name(dvm_state(nodes[i].vm)));
	}
	dvm_nodes_join(nodes, 2, "one memory: JOIN again after LEAVE");
	fd = __dsm_create(nodes[0].vm, SMALL_SIZE, 0);
	DVM_ASSERT(fd >= 0, "CREATE_MEMORY in a new cluster: %s",
		   strerror(errno));
	DVM_ASSERT_ERRNO(__dsm_create(nodes[0].vm, SMALL_SIZE, 0), EEXIST,
			 "CREATE_MEMORY twice in the new cluster");
	close(fd);
	dvm_free_all(nodes, 2);
	ksft_test_result_pass("one memory per cluster: EEXIST while open; closing it breaks the cluster (node 0 lost, ECONNRESET, on both nodes); created again after LEAVE and a new JOIN\n");
}

/* A copy of @len bytes of @src in a page that is then made read-only. */
static void *ro_copy(const void *src, size_t len)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	TEST_ASSERT(p != MAP_FAILED, "mmap: %s", strerror(errno));
	memcpy(p, src, len);
	TEST_ASSERT(!mprotect(p, 4096, PROT_READ), "mprotect: %s",
		    strerror(errno));
	return p;
}

static void guest_done(void)
{
	GUEST_DONE();
}

/* Read-only JOIN and SET_LOCAL_VCPUS arguments: EFAULT, state as before. */
static void test_read_only_args(void)
{
	struct kvm_dvm_node_addr addrs[2];
	struct kvm_dvm_vcpus v, *ro_vcpus;
	struct kvm_dvm_join j, *ro_join;
	struct dvm_node nodes[2];
	uint64_t t0, ms;
	int i, r, err;

	dvm_nodes_create(nodes, 2, 2, guest_done);
	dvm_addrs_loopback(addrs, 2, dvm_ports(2));

	dvm_join_init(&j, 0, 2, addrs, KVM_DVM_TRANSPORT_TCP,
		      DVM_JOIN_TIMEOUT_MS);
	ro_join = ro_copy(&j, sizeof(j));
	t0 = dvm_now_ns();
	r = __dvm_join(nodes[0].vm, ro_join);
	err = errno;
	ms = ms_since(t0);
	DVM_ASSERT(r == -1 && err == EFAULT,
		   "JOIN with a read-only struct: ret %d errno %d (%s), want EFAULT",
		   r, r ? err : 0, r ? strerror(err) : "none");
	DVM_ASSERT(ms < EFAULT_LIMIT_MS,
		   "JOIN with a read-only struct took %llu ms, limit %d",
		   (unsigned long long)ms, EFAULT_LIMIT_MS);
	DVM_ASSERT(dvm_state(nodes[0].vm) == KVM_DVM_STATE_NONE,
		   "after EFAULT from JOIN: state %s, want NONE",
		   dvm_state_name(dvm_state(nodes[0].vm)));
	munmap(ro_join, 4096);

	/* The same VM and the same addresses join: nothing was left. */
	dvm_join_ok(nodes, 2, addrs, KVM_DVM_TRANSPORT_TCP,
		    "JOIN after EFAULT");

	dvm_vcpus_init(&v, 2);
	dvm_vcpus_set(&v, 0);
	ro_vcpus = ro_copy(&v, sizeof(v));
	DVM_ASSERT_ERRNO(__dvm_set_vcpus(nodes[0].vm, ro_vcpus), EFAULT,
			 "SET_LOCAL_VCPUS with a read-only struct");
	munmap(ro_vcpus, 4096);
	for (i = 0; i < 2; i++)
		DVM_ASSERT(dvm_state(nodes[i].vm) == KVM_DVM_STATE_JOINED,
			   "node %d after EFAULT from SET_LOCAL_VCPUS: state %s, want JOINED",
			   i, dvm_state_name(dvm_state(nodes[i].vm)));

	dvm_place_round_robin(nodes, 2, 2);
	dvm_set_vcpus_all(nodes, 2);
	dvm_assert_all_ok(nodes, 2, "SET_LOCAL_VCPUS after EFAULT");
	for (i = 0; i < 2; i++)
		DVM_ASSERT(dvm_state(nodes[i].vm) == KVM_DVM_STATE_RUNNING,
			   "node %d after placement: state %s, want RUNNING",
			   i, dvm_state_name(dvm_state(nodes[i].vm)));
	for (i = 0; i < 2; i++)
		dvm_run_done(nodes[i].vcpus[i], "vCPU after EFAULT cases");
	dvm_free_all(nodes, 2);
	ksft_test_result_pass("read-only JOIN struct: EFAULT in %llu ms, state NONE; read-only SET_LOCAL_VCPUS: EFAULT, still JOINED; then both work and the vCPUs run\n",
			      (unsigned long long)ms);
}

/* A node's JOIN, and for node 0 a LEAVE as soon as it returned 0. */
struct mesh_join {
	struct dvm_node *node;
	bool leave;
	int leave_ret;
	int leave_err;
};

static void *mesh_join_thread(void *arg)
{
	struct mesh_join *mj = arg;
	struct dvm_node *nd = mj->node;

	nd->ret = __dvm_join(nd->vm, &nd->join);
	nd->err = nd->ret ? errno : 0;
	if (mj->leave && !nd->ret) {
		mj->leave_ret = __dvm_leave(nd->vm);
		mj->leave_err = mj->leave_ret ? errno : 0;
	}
	return NULL;
}

/*
 * Node 0 leaves right after its JOIN returned: node 1's JOIN fails
 * naming node 0, or succeeds and node 1 turns BROKEN by node 0.
 */
static void test_lost_at_mesh_up(void)
{
	struct kvm_dvm_node_addr addrs[2];
	struct mesh_join mj[2];
	struct dvm_node nodes[2];
	struct kvm_dvm_state st;
	int t, i, r, nr_broken = 0, nr_failed = 0;
	uint64_t ms, max_ms = 0;

	for (t = 0; t < MESH_UP_TRIES; t++) {
		dvm_nodes_create(nodes, 2, 0, NULL);
		dvm_addrs_loopback(addrs, 2, dvm_ports(2));
		for (i = 0; i < 2; i++) {
			dvm_join_init(&nodes[i].join, i, 2, addrs,
				      KVM_DVM_TRANSPORT_TCP,
				      DVM_JOIN_TIMEOUT_MS);
			nodes[i].ret = -1;
			mj[i] = (struct mesh_join){ .node = &nodes[i],
						    .leave = !i };
		}
		for (i = 0; i < 2; i++) {
			r = pthread_create(&nodes[i].thread, NULL,
					   mesh_join_thread, &mj[i]);
			TEST_ASSERT(!r, "pthread_create: %d", r);
		}
		for (i = 0; i < 2; i++)
			pthread_join(nodes[i].thread, NULL);

		DVM_ASSERT(nodes[0].ret == 0,
			   "try %d: node 0's JOIN: ret %d errno %d (%s)", t,
			   nodes[0].ret, nodes[0].err,
			   strerror(nodes[0].err));
		DVM_ASSERT(mj[0].leave_ret == 0,
			   "try %d: node 0's LEAVE: errno %d (%s)", t,
			   mj[0].leave_err, strerror(mj[0].leave_err));
		DVM_ASSERT(dvm_state(nodes[0].vm) == KVM_DVM_STATE_LEFT,
			   "try %d: node 0 after LEAVE: state %s", t,
			   dvm_state_name(dvm_state(nodes[0].vm)));

		if (nodes[1].ret) {
			DVM_ASSERT(nodes[1].ret == -1 &&
				   (nodes[1].err == ECONNRESET ||
				    nodes[1].err == ECONNABORTED) &&
				   nodes[1].join.failed_node == 0,
				   "try %d: node 1's JOIN: ret %d errno %d (%s) failed_node %u, want ECONNRESET or ECONNABORTED and 0",
				   t, nodes[1].ret, nodes[1].err,
				   strerror(nodes[1].err),
				   nodes[1].join.failed_node);
			DVM_ASSERT(dvm_state(nodes[1].vm) ==
				   KVM_DVM_STATE_NONE,
				   "try %d: node 1 after a failed JOIN: state %s",
				   t, dvm_state_name(dvm_state(nodes[1].vm)));
			nr_failed++;
		} else {
			ms = wait_broken(nodes[1].vm, BROKEN_WAIT_MS, &st);
			DVM_ASSERT(st.state == KVM_DVM_STATE_BROKEN &&
				   st.broken_node == 0 &&
				   st.broken_error == -ECONNRESET,
				   "try %d: node 1 %llu ms after its JOIN returned 0: state %s broken_node %u broken_error %d, want BROKEN 0 %d",
				   t, (unsigned long long)ms,
				   dvm_state_name(st.state), st.broken_node,
				   st.broken_error, -ECONNRESET);
			if (ms > max_ms)
				max_ms = ms;
			nr_broken++;
		}
		dvm_free_all(nodes, 2);
	}
	ksft_print_msg("peer lost at mesh-up: node 1's JOIN returned 0 then BROKEN %d times, JOIN failed %d times\n",
		       nr_broken, nr_failed);
	ksft_test_result_pass("peer lost right after mesh-up, %d tries: %d JOIN then BROKEN by node 0 (-ECONNRESET, within %llu ms), %d JOIN failed naming node 0\n",
			      MESH_UP_TRIES, nr_broken,
			      (unsigned long long)max_ms, nr_failed);
}

/*
 * Teardown under traffic: node 0 is this process, node 1 a child. Both
 * run their vCPU on the shared counters and PING each other until node 1
 * goes (LEAVE, exit or SIGKILL).
 */
enum teardown_action {
	ACT_LEAVE, ACT_EXIT, ACT_KILL, NR_ACTIONS,
};

static const char * const action_names[NR_ACTIONS] = {
	[ACT_LEAVE] = "LEAVE", [ACT_EXIT] = "exit", [ACT_KILL] = "SIGKILL",
};

/* Exit statuses of the child besides 0. */
enum {
	CHILD_SETUP = 10,	/* node 1 could not be set up */
	CHILD_SOCKET,		/* the parent went away */
	CHILD_RUN,		/* KVM_RUN returned before the action */
	CHILD_PING,		/* PING failed before the action */
	CHILD_LEAVE,		/* LEAVE failed */
};

/* Messages of the child. */
#define MSG_PINGING	'P'	/* its first PING call succeeded */

struct tnode {
	int id;
	bool child;
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpus[2];
	int fd;
	uint8_t *hva;
	pthread_t runner;
	pthread_t pinger;
	/* The local vCPU's KVM_RUN. */
	int run_ret;
	int run_err;
	uint32_t exit_reason;
	uint32_t exit_node;
	int32_t exit_error;
	bool run_done;
	/* The PING loop: round trips of the calls that succeeded. */
	uint64_t pings;
	int ping_err;
	bool ping_done;
};

/* In the child: its socket to the parent, and whether it acts now. */
static int child_sock = -1;
static bool child_acting;

static void guest_counters(uint64_t id, uint64_t iters)
{
	dsm_counters(id, iters);
	GUEST_DONE();
}

/*
 * Node @id of two: VM, JOIN, memory mapped here and in the guest, vCPU
 * @id placed here. Returns what failed (errno tells why), or NULL. No
 * assertion on the DVM ioctls: the child calls it.
 */
static const char *tnode_up(struct tnode *tn, int id,
			    struct kvm_dvm_node_addr *addrs)
{
	struct kvm_dvm_vcpus v;
	struct kvm_dvm_join j;
	uint64_t off;
	int i;

	tn->id = id;
	tn->fd = -1;
	tn->vm = vm_create_with_vcpus(2, guest_counters, tn->vcpus);
	for (i = 0; i < 2; i++)
		vcpu_args_set(tn->vcpus[i], 2, (uint64_t)i, TEARDOWN_ITERS);

	dvm_join_init(&j, id, 2, addrs, KVM_DVM_TRANSPORT_TCP,
		      DVM_JOIN_TIMEOUT_MS);
	if (__dvm_join(tn->vm, &j))
		return "JOIN";
	tn->fd = __dsm_create(tn->vm, DSM_SIZE, 0);
	if (tn->fd < 0)
		return "CREATE_MEMORY";
	tn->hva = mmap(NULL, DSM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		       tn->fd, 0);
	if (tn->hva == MAP_FAILED)
		return "mmap of the memory file";
	vm_set_user_memory_region(tn->vm, DSM_SLOT, 0, DSM_GPA, DSM_SIZE,
				  tn->hva);
	for (off = 0; off < DSM_SIZE; off += 4096)
		__virt_pg_map(tn->vm, DSM_GVA + off, DSM_GPA + off,
			      PG_LEVEL_4K);

	dvm_vcpus_init(&v, 2);
	dvm_vcpus_set(&v, id);
	if (__dvm_set_vcpus(tn->vm, &v))
		return "SET_LOCAL_VCPUS";
	return NULL;
}

static void child_send(char msg)
{
	if (send(child_sock, &msg, 1, MSG_NOSIGNAL) != 1)
		_exit(CHILD_SOCKET);
}

/* Runs the local vCPU until it leaves KVM_RUN: when node 1 went. */
static void *tnode_run(void *arg)
{
	struct tnode *tn = arg;
	struct kvm_vcpu *vcpu = tn->vcpus[tn->id];

	tn->run_ret = __vcpu_run(vcpu);
	tn->run_err = errno;
	tn->exit_reason = vcpu->run->exit_reason;
	tn->exit_node = vcpu->run->dvm_broken.node;
	tn->exit_error = vcpu->run->dvm_broken.error;
	WRITE_ONCE(tn->run_done, true);
	if (tn->child && !READ_ONCE(child_acting)) {
		fprintf(stderr, "node 1: KVM_RUN returned early: ret %d errno %d exit reason %#x\n",
			tn->run_ret, tn->run_err, tn->exit_reason);
		_exit(CHILD_RUN);
	}
	return NULL;
}

/* PINGs the other node until a PING fails. */
static void *tnode_ping(void *arg)
{
	struct tnode *tn = arg;
	struct kvm_dvm_ping p;

	for (;;) {
		dvm_ping_init(&p, !tn->id, TEARDOWN_PING_SIZE,
			      TEARDOWN_PING_COUNT, TEARDOWN_PING_DEPTH);
		if (__dvm_ping(tn->vm, &p))
			break;
		if (tn->child && !tn->pings)
			child_send(MSG_PINGING);
		WRITE_ONCE(tn->pings, tn->pings + p.count);
	}
	tn->ping_err = errno;
	WRITE_ONCE(tn->ping_done, true);
	if (tn->child && !READ_ONCE(child_acting)) {
		fprintf(stderr, "node 1: PING failed early: errno %d (%s)\n",
			tn->ping_err, strerror(tn->ping_err));
		_exit(CHILD_PING);
	}
	return NULL;
}

static int tnode_start(struct tnode *tn)
{
	if (pthread_create(&tn->runner, NULL, tnode_run, tn))
		return -1;
	return pthread_create(&tn->pinger, NULL, tnode_ping, tn) ? -1 : 0;
}

/*
 * Node 1, in the child: set up, run, tell the parent once it PINGs,
 * then do what the parent says. Never returns; fails with _exit().
 */
static void __noreturn
teardown_child(int sock, pid_t parent, struct kvm_dvm_node_addr *addrs)
{
	static struct tnode tn;
	const char *what;
	char action;

	/* Never outlive the parent, whatever happens to it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(CHILD_SETUP);
	child_sock = sock;
	tn.child = true;
	what = tnode_up(&tn, 1, addrs);
	if (what) {
		fprintf(stderr, "node 1: %s: %s\n", what, strerror(errno));
		_exit(CHILD_SETUP);
	}
	if (tnode_start(&tn)) {
		fprintf(stderr, "node 1: pthread_create failed\n");
		_exit(CHILD_SETUP);
	}

	if (read(sock, &action, 1) != 1)
		_exit(CHILD_SOCKET);
	WRITE_ONCE(child_acting, true);
	switch (action) {
	case ACT_LEAVE:
		if (__dvm_leave(tn.vm)) {
			fprintf(stderr, "node 1: LEAVE: %s\n", strerror(errno));
			_exit(CHILD_LEAVE);
		}
		_exit(0);
	case ACT_EXIT:
		_exit(0);
	}
	/* ACT_KILL: the parent kills this process. */
	for (;;)
		pause();
}

/* What the cycles of one action saw, and how node 0 ended. */
struct teardown_totals {
	int cycles[NR_ACTIONS];
	uint64_t fetches[NR_ACTIONS];
	uint64_t pings[NR_ACTIONS];
	int ping_errs[3];		/* ENOLINK, ENOTCONN, ECONNRESET */
	int by_reset;			/* broken_error -ECONNRESET */
	int by_timeout;			/* broken_error -ETIMEDOUT */
	uint64_t max_broken_ms;
};

/* The child's exit status, waiting up to @ms; kills it after that. */
static int reap_child(pid_t pid, uint64_t ms, bool *reaped)
{
	uint64_t end = dvm_now_ns() + ms * 1000000ull;
	int status = 0;

	*reaped = false;
	while (dvm_now_ns() < end) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			*reaped = true;
			return status;
		}
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return status;
}

/*
 * Until node 0's stats show DSM fetches and round trips, and the child
 * said its PINGs get through, or TRAFFIC_WAIT_MS passed.
 */
static void wait_traffic(struct tnode *tn, int sock, pid_t pid, int cycle)
{
	uint64_t end = dvm_now_ns() + TRAFFIC_WAIT_MS * 1000000ull;
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	uint64_t fetches = 0, rtts = 0;
	bool pinging = false, reaped;
	ssize_t n;
	char msg;

	for (;;) {
		if (poll(&pfd, 1, 20) == 1) {
			n = read(sock, &msg, 1);
			if (n != 1) {
				int status = reap_child(pid, 1000, &reaped);

				DVM_ASSERT(0, "cycle %d: node 1 went before the action: status %#x",
					   cycle, status);
			}
			pinging |= msg == MSG_PINGING;
		}
		DVM_ASSERT(!READ_ONCE(tn->run_done),
			   "cycle %d: node 0's KVM_RUN returned before the action: ret %d exit reason %#x",
			   cycle, tn->run_ret, tn->exit_reason);
		DVM_ASSERT(!READ_ONCE(tn->ping_done),
			   "cycle %d: node 0's PING failed before the action: errno %d (%s)",
			   cycle, tn->ping_err, strerror(tn->ping_err));
		fetches = dvm_stat(tn->vm, "dvm_dsm_remote_fetches");
		rtts = dvm_stat(tn->vm, "dvm_rtt_count");
		if (pinging && READ_ONCE(tn->pings) &&
		    fetches >= TRAFFIC_FETCHES && rtts >= TRAFFIC_RTTS)
			return;
		DVM_ASSERT(dvm_now_ns() < end,
			   "cycle %d: no traffic in %d ms: %llu fetches, %llu round trips, node 0 %s, node 1 %s",
			   cycle, TRAFFIC_WAIT_MS,
			   (unsigned long long)fetches,
			   (unsigned long long)rtts,
			   READ_ONCE(tn->pings) ? "PINGs" : "does not PING",
			   pinging ? "PINGs" : "does not PING");
	}
}

static void teardown_cycle(int cycle, struct teardown_totals *tot)
{
	enum teardown_action action = cycle % NR_ACTIONS;
	struct kvm_dvm_node_addr addrs[2];
	static struct tnode tn;
	struct kvm_dvm_state st;
	pid_t pid, parent = getpid();
	uint64_t t_act, broken_ms, fetches;
	const char *what;
	bool reaped;
	int sv[2], status, perr;
	char msg = action;

	dvm_addrs_loopback(addrs, 2, dvm_ports(2));
	TEST_ASSERT(!socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair: %s",
		    strerror(errno));
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	TEST_ASSERT(pid >= 0, "fork: %s", strerror(errno));
	if (!pid) {
		close(sv[0]);
		teardown_child(sv[1], parent, addrs);
	}
	close(sv[1]);

	memset(&tn, 0, sizeof(tn));
	what = tnode_up(&tn, 0, addrs);
	if (what) {
		perr = errno;
		status = reap_child(pid, 1000, &reaped);
		DVM_ASSERT(0, "cycle %d: node 0: %s: %s; node 1 %s, status %#x",
			   cycle, what, strerror(perr),
			   reaped ? "ended" : "killed", status);
	}
	TEST_ASSERT(!tnode_start(&tn), "pthread_create");
	wait_traffic(&tn, sv[0], pid, cycle);

	t_act = dvm_now_ns();
	/* No SIGPIPE if node 1 is gone already. */
	DVM_ASSERT(send(sv[0], &msg, 1, MSG_NOSIGNAL) == 1,
		   "cycle %d: telling node 1 to %s: %s", cycle,
		   action_names[action], strerror(errno));
	if (action == ACT_KILL)
		TEST_ASSERT(!kill(pid, SIGKILL), "kill: %s", strerror(errno));

	broken_ms = wait_broken(tn.vm, BROKEN_WAIT_MS, &st);
	DVM_ASSERT(st.state == KVM_DVM_STATE_BROKEN && st.broken_node == 1 &&
		   (st.broken_error == -ECONNRESET ||
		    st.broken_error == -ETIMEDOUT),
		   "cycle %d (%s): node 0 after %llu ms: state %s broken_node %u broken_error %d, want BROKEN 1 -ECONNRESET/-ETIMEDOUT",
		   cycle, action_names[action],
		   (unsigned long long)broken_ms, dvm_state_name(st.state),
		   st.broken_node, st.broken_error);

	DVM_ASSERT(wait_flag(&tn.run_done, BROKEN_WAIT_MS),
		   "cycle %d (%s): node 0's vCPU still in KVM_RUN %d ms after BROKEN",
		   cycle, action_names[action], BROKEN_WAIT_MS);
	pthread_join(tn.runner, NULL);
	DVM_ASSERT(tn.run_ret == 0 && tn.exit_reason == KVM_EXIT_DVM_BROKEN &&
		   tn.exit_node == 1 && tn.exit_error == st.broken_error,
		   "cycle %d (%s): node 0's KVM_RUN: ret %d errno %d exit reason %#x dvm_broken node %u error %d, want 0 KVM_EXIT_DVM_BROKEN 1 %d",
		   cycle, action_names[action], tn.run_ret,
		   tn.run_ret ? tn.run_err : 0, tn.exit_reason, tn.exit_node,
		   tn.exit_error, st.broken_error);

	/* A PING waits up to 10 s for each round trip it started. */
	DVM_ASSERT(wait_flag(&tn.ping_done, BROKEN_WAIT_MS + 5000),
		   "cycle %d (%s): node 0's PING still running after BROKEN",
		   cycle, action_names[action]);
	pthread_join(tn.pinger, NULL);
	perr = tn.ping_err;
	DVM_ASSERT(perr == ENOLINK || perr == ENOTCONN || perr == ECONNRESET,
		   "cycle %d (%s): node 0's PING ended with errno %d (%s), want ENOLINK, ENOTCONN or ECONNRESET",
		   cycle, action_names[action], perr, errno_name(perr));

	status = reap_child(pid, CHILD_EXIT_WAIT_MS, &reaped);
	DVM_ASSERT(reaped, "cycle %d (%s): node 1 did not end in %d ms",
		   cycle, action_names[action], CHILD_EXIT_WAIT_MS);
	if (action == ACT_KILL)
		DVM_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
			   "cycle %d (SIGKILL): node 1's status %#x, want killed by SIGKILL",
			   cycle, status);
	else
		DVM_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			   "cycle %d (%s): node 1's status %#x, want exit 0",
			   cycle, action_names[action], status);
	close(sv[0]);

	fetches = dvm_stat(tn.vm, "dvm_dsm_remote_fetches");
	tot->cycles[action]++;
	tot->fetches[action] += fetches;
	tot->pings[action] += tn.pings;
	tot->ping_errs[perr == ENOLINK ? 0 : perr == ENOTCONN ? 1 : 2]++;
	if (st.broken_error == -ECONNRESET)
		tot->by_reset++;
	else
		tot->by_timeout++;
	if (broken_ms > tot->max_broken_ms)
		tot->max_broken_ms = broken_ms;
	ksft_print_msg("cycle %d (%s): %llu fetches, %llu pings; BROKEN by node 1 (%s) %llu ms after the action, PING ended with %s\n",
		       cycle, action_names[action],
		       (unsigned long long)fetches,
		       (unsigned long long)tn.pings,
		       errno_name(-st.broken_error),
		       (unsigned long long)ms_since(t_act), errno_name(perr));

	DVM_ASSERT_OK(__dvm_leave(tn.vm), "node 0: LEAVE from BROKEN");
	munmap(tn.hva, DSM_SIZE);
	close(tn.fd);
	kvm_vm_free(tn.vm);
}

static void test_teardown(int cycles)
{
	struct teardown_totals tot = {};
	uint64_t fetches = 0, pings = 0;
	int c, a;

	for (c = 0; c < cycles; c++)
		teardown_cycle(c, &tot);
	for (a = 0; a < NR_ACTIONS; a++) {
		ksft_print_msg("teardown by %s: %d cycles, %llu page fetches, %llu pings\n",
			       action_names[a], tot.cycles[a],
			       (unsigned long long)tot.fetches[a],
			       (unsigned long long)tot.pings[a]);
		fetches += tot.fetches[a];
		pings += tot.pings[a];
	}
	ksft_print_msg("teardown: node 0's PING ended with ENOLINK %d, ENOTCONN %d, ECONNRESET %d times; broken_error -ECONNRESET %d, -ETIMEDOUT %d times\n",
		       tot.ping_errs[0], tot.ping_errs[1], tot.ping_errs[2],
		       tot.by_reset, tot.by_timeout);
	ksft_test_result_pass("teardown: %d cycles (%d LEAVE, %d exit, %d SIGKILL) under traffic: %llu page fetches, %llu pings; peer BROKEN by node 1 each time, within %llu ms\n",
			      cycles, tot.cycles[ACT_LEAVE], tot.cycles[ACT_EXIT],
			      tot.cycles[ACT_KILL], (unsigned long long)fetches,
			      (unsigned long long)pings,
			      (unsigned long long)tot.max_broken_ms);
}

int main(int argc, char *argv[])
{
	int cycles = TEARDOWN_CYCLES;

	/* Output is often a file: keep lines in order and complete. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	dvm_require_abi();
	if (argc > 1) {
		cycles = atoi(argv[1]);
		TEST_ASSERT(cycles > 0, "cycles: '%s' is not a positive number",
			    argv[1]);
	}
	ksft_print_header();
	ksft_set_plan(7);

	test_no_resize();
	test_fadvise();
	test_too_big();
	test_one_memory();
	test_read_only_args();
	test_lost_at_mesh_up();
	test_teardown(cycles);
	ksft_finished();
}
