// SPDX-License-Identifier: GPL-2.0
/*
 * dvm_fuzz_test: a hostile TCP client against a node's DVM port.
 *
 * The test forms clusters of in-process VMs over loopback TCP and speaks
 * the DVM wire protocol itself (see linux/virt/kvm/dvm/wire.h): garbage
 * before authentication must only cost the sender its connection, garbage
 * from an authenticated peer must break the cluster with -EPROTO, a silent
 * peer must break it with -ETIMEDOUT, and a correct ECHO exchange shows
 * that the client speaks the protocol, so the negative cases mean something.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/if_alg.h>
#include <linux/kvm_dvm.h>

#include "kvm_util.h"
#include "kselftest.h"

#ifndef SOL_ALG
#define SOL_ALG			279
#endif

/* The wire format, copied from linux/virt/kvm/dvm/wire.h. */
#define WIRE_MAGIC		0x314d5644u
#define WIRE_VERSION		2
#define WIRE_MAX_PAYLOAD	(4096 + 256)
#define WIRE_F_REPLY		0x1

enum {
	MSG_HELLO = 1,
	MSG_CHALLENGE,
	MSG_PROOF,
	MSG_WELCOME,
	MSG_REJECT,
	MSG_MESH_READY,
	MSG_MESH_UP,
	MSG_ABORT,
	MSG_HEARTBEAT,
	MSG_BROKEN,
	MSG_LEAVE,
	MSG_VCPUS,
	MSG_VCPUS_VERDICT,
	MSG_ECHO,
	MSG_DSM_REQ,
	MSG_DSM_DONE,
	MSG_DSM_FETCH,
	MSG_VCPU_INFO,
	MSG_IRQ,
	MSG_APIC_STATE,
	MSG_IO,
	MSG_CLOCK,
	MSG_VM_CONTROL,
	MSG_MEMSLOT,
};

/* Interrupt events (dvm.rst, "Interrupts"). */
struct wire_irq {
	uint32_t vcpu;
	uint8_t kind;
	uint8_t mode;
	uint8_t vector;
	uint8_t flags;
	uint32_t pad[2];
};

struct wire_apic_state {
	uint32_t vcpu;
	uint32_t pad;
	uint64_t base;
	uint32_t id;
	uint32_t ldr;
	uint32_t dfr;
	uint32_t spiv;
};

/* A forwarded access (dvm.rst, "I/O forwarding"), then its data. */
struct wire_io {
	uint32_t vcpu;
	uint8_t kind;
	uint8_t size;
	uint16_t count;
	uint64_t addr;
	uint8_t data[16];
};

#define WIRE_IO_HDR	16

struct wire_dsm_req {
	uint64_t page;
	uint32_t version;
	uint8_t write;
	uint8_t have;
	uint8_t pad[2];
	uint64_t pages;
};

struct wire_dsm_fetch {
	uint64_t page;
	uint32_t version;
	uint8_t op;
	uint8_t pad[3];
	uint64_t pages;
};

#define DSM_GRANT_ZERO		0x2

#define NONCE_SIZE		32
#define MAC_SIZE		32
#define LABEL_SIZE		8
#define LABEL_ACCEPTOR		"DVMCHAL1"
#define LABEL_CONNECTOR		"DVMPROF1"

/* All multi-byte fields of the wire structs are little endian. */
struct wire_hdr {
	uint32_t magic;
	uint8_t version;
	uint8_t pad;
	uint16_t type;
	uint16_t flags;
	uint16_t status;
	uint32_t len;
	uint64_t req_id;
};

struct wire_hello {
	uint32_t node_id;
	uint32_t nr_nodes;
	uint32_t target;
	uint32_t transport;
	uint8_t nonce[NONCE_SIZE];
};

struct wire_challenge {
	uint32_t node_id;
	uint32_t pad;
	uint8_t nonce[NONCE_SIZE];
	uint8_t mac[MAC_SIZE];
};

struct wire_proof {
	uint8_t mac[MAC_SIZE];
};

struct wire_error {
	uint32_t error;
	uint32_t node;
};

static_assert(sizeof(struct wire_hdr) == 24, "wire header");
static_assert(sizeof(struct wire_hello) == 48, "hello");
static_assert(sizeof(struct wire_challenge) == 72, "challenge");
static_assert(sizeof(struct wire_proof) == 32, "proof");
static_assert(sizeof(struct wire_error) == 8, "error");

/* A message in host byte order: the header fields, then the payload. */
struct msg {
	uint32_t magic;
	uint8_t version;
	uint8_t pad;
	uint16_t type;
	uint16_t flags;
	uint16_t status;
	uint32_t len;
	uint64_t req_id;
	uint8_t data[WIRE_MAX_PAYLOAD];
};

#define NR_NODES		2
#define JOIN_TIMEOUT_MS		30000
#define CLOSE_TIMEOUT_MS	5000
#define HEARTBEAT_MS		500
#define ECHO_SIZE		4096
#define ECHO_REQ_ID		7

#define NR_PRE_CASES		16
#define NR_POST_CASES		11
#define NR_TESTS		(NR_PRE_CASES + 1 + 1 + NR_POST_CASES + 2 + 1 + 1 + 1 + 1 + 1 + 2 + 1 + 1)
#define DSM_FILE_PAGES		16

static const uint8_t cluster_key[32] = {
	0x44, 0x56, 0x4d, 0x2d, 0x66, 0x75, 0x7a, 0x7a,
	0x9c, 0x21, 0x5e, 0x07, 0xd3, 0x8a, 0x41, 0xbb,
	0x10, 0x62, 0xef, 0x35, 0x7c, 0x98, 0x0d, 0xa6,
	0x53, 0xc4, 0x2f, 0x81, 0x6e, 0xb9, 0x17, 0xf0,
};

static uint16_t next_port;
static uint64_t rng_state;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ull + ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned int ms)
{
	usleep(ms * 1000);
}

static uint64_t rng_next(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void rng_fill(void *buf, size_t len)
{
	uint8_t *p = buf;
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = rng_next() >> 32;
}

/* Listen ports of one cluster: consecutive, fresh for every cluster. */
static uint16_t ports_alloc(unsigned int n)
{
	uint16_t base = next_port;

	next_port += n;
	return base;
}

static void noop_handler(int sig)
{
}

/* ---- HMAC-SHA256 through AF_ALG ---- */

static int hmac_tfm = -1;
static char hmac_why[160];

static bool hmac_sha256(const void *key, size_t key_len, const void *data,
			size_t len, uint8_t mac[MAC_SIZE])
{
	bool ok = false;
	int op;

	if (setsockopt(hmac_tfm, SOL_ALG, ALG_SET_KEY, key, key_len))
		return false;
	op = accept(hmac_tfm, NULL, 0);
	if (op < 0)
		return false;
	if (send(op, data, len, 0) == (ssize_t)len &&
	    read(op, mac, MAC_SIZE) == MAC_SIZE)
		ok = true;
	close(op);
	return ok;
}

/* Sets hmac_why when HMAC is unavailable. */
static void hmac_init(void)
{
	/* RFC 4231, test case 2. */
	static const uint8_t want[MAC_SIZE] = {
		0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e,
		0x6a, 0x04, 0x24, 0x26, 0x08, 0x95, 0x75, 0xc7,
		0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83,
		0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43,
	};
	static const char data[] = "what do ya want for nothing?";
	struct sockaddr_alg sa = {
		.salg_family = AF_ALG,
		.salg_type = "hash",
		.salg_name = "hmac(sha256)",
	};
	uint8_t mac[MAC_SIZE];
	int fd;

	fd = socket(AF_ALG, SOCK_SEQPACKET, 0);
	if (fd < 0) {
		snprintf(hmac_why, sizeof(hmac_why), "socket(AF_ALG): %s",
			 strerror(errno));
		return;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		snprintf(hmac_why, sizeof(hmac_why),
			 "AF_ALG hmac(sha256): %s", strerror(errno));
		close(fd);
		return;
	}
	hmac_tfm = fd;
	if (!hmac_sha256("Jefe", 4, data, strlen(data), mac)) {
		snprintf(hmac_why, sizeof(hmac_why),
			 "AF_ALG hmac(sha256) does not hash: %s",
			 strerror(errno));
		close(fd);
		hmac_tfm = -1;
		return;
	}
	TEST_ASSERT(!memcmp(mac, want, MAC_SIZE),
		    "AF_ALG hmac(sha256) fails RFC 4231 test case 2");
}

static bool hmac_ok(void)
{
	return hmac_tfm >= 0;
}

/* mac = HMAC(key, label || le32 connector || le32 acceptor || nc || na) */
static void auth_mac(const char *label, uint32_t connector, uint32_t acceptor,
		     const uint8_t *nonce_c, const uint8_t *nonce_a,
		     uint8_t mac[MAC_SIZE])
{
	uint8_t buf[LABEL_SIZE + 8 + 2 * NONCE_SIZE];
	uint32_t v;

	memcpy(buf, label, LABEL_SIZE);
	v = htole32(connector);
	memcpy(buf + LABEL_SIZE, &v, 4);
	v = htole32(acceptor);
	memcpy(buf + LABEL_SIZE + 4, &v, 4);
	memcpy(buf + LABEL_SIZE + 8, nonce_c, NONCE_SIZE);
	memcpy(buf + LABEL_SIZE + 8 + NONCE_SIZE, nonce_a, NONCE_SIZE);
	TEST_ASSERT(hmac_sha256(cluster_key, sizeof(cluster_key), buf,
				sizeof(buf), mac),
		    "HMAC-SHA256 failed: %s", strerror(errno));
}

/* ---- VM binary stats ---- */

/* Element @idx of the VM stat @name; false if there is no such stat. */
static bool stat_read(struct kvm_vm *vm, const char *name, uint32_t idx,
		      uint64_t *val)
{
	struct kvm_stats_header hdr;
	struct kvm_stats_desc *desc;
	bool found = false;
	size_t dsize, total;
	char *descs;
	uint32_t i;
	int fd;

	fd = __vm_ioctl(vm, KVM_GET_STATS_FD, NULL);
	TEST_ASSERT(fd >= 0, "KVM_GET_STATS_FD: %s", strerror(errno));
	TEST_ASSERT(pread(fd, &hdr, sizeof(hdr), 0) == sizeof(hdr),
		    "reading the stats header");
	dsize = sizeof(*desc) + hdr.name_size;
	total = dsize * hdr.num_desc;
	descs = malloc(total);
	TEST_ASSERT(descs, "out of memory");
	TEST_ASSERT(pread(fd, descs, total, hdr.desc_offset) == (ssize_t)total,
		    "reading the stats descriptors");
	for (i = 0; i < hdr.num_desc; i++) {
		desc = (struct kvm_stats_desc *)(descs + i * dsize);
		if (strncmp(desc->name, name, hdr.name_size))
			continue;
		if (idx < desc->size)
			found = pread(fd, val, sizeof(*val),
				      hdr.data_offset + desc->offset +
				      idx * sizeof(*val)) == sizeof(*val);
		break;
	}
	free(descs);
	close(fd);
	return found;
}

static uint64_t stat_get(struct kvm_vm *vm, const char *name, uint32_t idx)
{
	uint64_t val;

	TEST_ASSERT(stat_read(vm, name, idx, &val),
		    "VM stat %s[%u] not found", name, idx);
	return val;
}

static uint64_t malformed(struct kvm_vm *vm)
{
	return stat_get(vm, "dvm_malformed", 0);
}

static uint64_t auth_failures(struct kvm_vm *vm)
{
	return stat_get(vm, "dvm_auth_failures", 0);
}

/*
 * Wait until A's dvm_malformed and dvm_auth_failures reach at least the
 * wanted values, give a late second increment a chance to show, and
 * check that they are exactly the wanted values.
 */
static bool counters_exact(struct kvm_vm *vm, uint64_t want_m, uint64_t want_a)
{
	uint64_t deadline = now_ms() + 3000;
	uint64_t m, a;

	for (;;) {
		m = malformed(vm);
		a = auth_failures(vm);
		if ((m >= want_m && a >= want_a) || now_ms() > deadline)
			break;
		sleep_ms(20);
	}
	sleep_ms(200);
	m = malformed(vm);
	a = auth_failures(vm);
	if (m == want_m && a == want_a)
		return true;
	ksft_print_msg("dvm_malformed %lu (want %lu), dvm_auth_failures %lu (want %lu)\n",
		       (unsigned long)m, (unsigned long)want_m,
		       (unsigned long)a, (unsigned long)want_a);
	return false;
}

/* ---- DVM ioctls ---- */

struct joiner {
	struct kvm_vm *vm;
	uint32_t node_id;
	uint16_t port_base;
	pthread_t thread;
	bool started;
	int done;
	int ret;		/* 0 or -errno */
	uint32_t failed_node;
	uint32_t peer_timeout_ms;	/* the join's; 0: the default */
	uint32_t flags;			/* the join's, from join_flags */
};

/* KVM_DVM_JOIN_* of the joins join_start() starts. */
static uint32_t join_flags;

static void fill_addrs(struct kvm_dvm_node_addr *addrs, uint16_t port_base)
{
	int i;

	memset(addrs, 0, NR_NODES * sizeof(*addrs));
	for (i = 0; i < NR_NODES; i++) {
		addrs[i].family = AF_INET;
		addrs[i].port = port_base + i;
		addrs[i].addr[0] = 127;
		addrs[i].addr[3] = 1;
	}
}

static void *join_thread(void *arg)
{
	struct kvm_dvm_node_addr addrs[NR_NODES];
	struct joiner *j = arg;
	struct kvm_dvm_join join;

	fill_addrs(addrs, j->port_base);
	memset(&join, 0, sizeof(join));
	join.node_id = j->node_id;
	join.nr_nodes = NR_NODES;
	join.transport = KVM_DVM_TRANSPORT_TCP;
	join.connect_timeout_ms = JOIN_TIMEOUT_MS;
	join.key_len = sizeof(cluster_key);
	memcpy(join.key, cluster_key, sizeof(cluster_key));
	join.addrs = (uintptr_t)addrs;
	join.peer_timeout_ms = j->peer_timeout_ms;
	join.flags = j->flags;
	j->ret = __vm_ioctl(j->vm, KVM_DVM_JOIN, &join) ? -errno : 0;
	j->failed_node = join.failed_node;
	__atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void join_start(struct joiner *j, struct kvm_vm *vm, uint32_t node_id,
		       uint16_t port_base, uint32_t peer_timeout_ms)
{
	memset(j, 0, sizeof(*j));
	j->vm = vm;
	j->node_id = node_id;
	j->port_base = port_base;
	j->peer_timeout_ms = peer_timeout_ms;
	j->flags = join_flags;
	TEST_ASSERT(!pthread_create(&j->thread, NULL, join_thread, j),
		    "pthread_create");
	j->started = true;
}

static bool join_done(struct joiner *j)
{
	return __atomic_load_n(&j->done, __ATOMIC_ACQUIRE);
}

/*
 * Wait up to @timeout_ms for the JOIN to return, then interrupt it with
 * a signal (JOIN returns -EINTR). Returns JOIN's result.
 */
static int join_finish(struct joiner *j, int timeout_ms)
{
	uint64_t deadline = now_ms() + timeout_ms;

	if (!j->started)
		return j->ret;
	while (!join_done(j) && now_ms() < deadline)
		sleep_ms(10);
	if (!join_done(j)) {
		ksft_print_msg("node %u: JOIN still blocked, interrupting it\n",
			       j->node_id);
		deadline = now_ms() + 30000;
		while (!join_done(j)) {
			TEST_ASSERT(now_ms() < deadline,
				    "JOIN of node %u ignores signals",
				    j->node_id);
			pthread_kill(j->thread, SIGUSR1);
			sleep_ms(100);
		}
	}
	pthread_join(j->thread, NULL);
	j->started = false;
	return j->ret;
}

static int get_state(struct kvm_vm *vm, struct kvm_dvm_state *st,
		     struct kvm_dvm_link *links)
{
	memset(st, 0, sizeof(*st));
	memset(links, 0, NR_NODES * sizeof(*links));
	st->nr_links = NR_NODES;
	st->links = (uintptr_t)links;
	return __vm_ioctl(vm, KVM_DVM_GET_STATE, st) ? -errno : 0;
}

static uint32_t state_of(struct kvm_vm *vm)
{
	struct kvm_dvm_link links[NR_NODES];
	struct kvm_dvm_state st;
	int r = get_state(vm, &st, links);

	TEST_ASSERT(!r, "GET_STATE: %s", strerror(-r));
	return st.state;
}

/* The VM is node @self of a formed cluster, every link up. */
static bool check_joined(struct kvm_vm *vm, uint32_t self)
{
	struct kvm_dvm_link links[NR_NODES];
	struct kvm_dvm_state st;
	bool ok = true;
	int i, r;

	r = get_state(vm, &st, links);
	if (r) {
		ksft_print_msg("node %u: GET_STATE: %s\n", self, strerror(-r));
		return false;
	}
	if (st.state != KVM_DVM_STATE_JOINED || st.node_id != self ||
	    st.nr_nodes != NR_NODES || st.broken_node != KVM_DVM_NO_NODE ||
	    st.broken_error) {
		ksft_print_msg("node %u: state %u node_id %u nr_nodes %u broken_node %u broken_error %d\n",
			       self, st.state, st.node_id, st.nr_nodes,
			       st.broken_node, st.broken_error);
		ok = false;
	}
	for (i = 0; i < NR_NODES; i++) {
		uint32_t want = i == self ? KVM_DVM_LINK_SELF : KVM_DVM_LINK_UP;

		if (links[i].node != i || links[i].state != want) {
			ksft_print_msg("node %u: link %d: node %u state %u, want state %u\n",
				       self, i, links[i].node, links[i].state,
				       want);
			ok = false;
		}
	}
	return ok;
}

/*
 * Poll GET_STATE until the VM is BROKEN or @timeout_ms passed; @when is
 * the time it was first seen broken. Returns false on timeout.
 */
static bool wait_broken(struct kvm_vm *vm, int timeout_ms,
			struct kvm_dvm_state *st, uint64_t *when)
{
	uint64_t deadline = now_ms() + timeout_ms;
	struct kvm_dvm_link links[NR_NODES];
	int r;

	for (;;) {
		r = get_state(vm, st, links);
		TEST_ASSERT(!r, "GET_STATE: %s", strerror(-r));
		*when = now_ms();
		if (st->state == KVM_DVM_STATE_BROKEN)
			return true;
		if (*when > deadline)
			return false;
		sleep_ms(20);
	}
}

static bool ping(struct kvm_vm *vm, uint32_t self, uint32_t node)
{
	struct kvm_dvm_ping p;

	memset(&p, 0, sizeof(p));
	p.node = node;
	p.size = 4096;
	p.count = 100;
	p.depth = 8;
	if (__vm_ioctl(vm, KVM_DVM_PING, &p)) {
		ksft_print_msg("PING %u->%u: %s\n", self, node, strerror(errno));
		return false;
	}
	ksft_print_msg("PING %u->%u: 100 x 4096 bytes, avg %lu ns max %lu ns\n",
		       self, node, (unsigned long)p.avg_ns,
		       (unsigned long)p.max_ns);
	return true;
}

static void vm_leave_free(struct kvm_vm *vm)
{
	__vm_ioctl(vm, KVM_DVM_LEAVE, NULL);
	kvm_vm_free(vm);
}

/* ---- the wire ---- */

static void msg_init(struct msg *m, uint16_t type, uint16_t flags,
		     uint64_t req_id, const void *data, uint32_t len)
{
	m->magic = WIRE_MAGIC;
	m->version = WIRE_VERSION;
	m->pad = 0;
	m->type = type;
	m->flags = flags;
	m->status = 0;
	m->len = len;
	m->req_id = req_id;
	if (data && len)
		memcpy(m->data, data, len);
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	ssize_t r;

	while (len) {
		r = send(fd, p, len, MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		p += r;
		len -= r;
	}
	return 0;
}

/*
 * Send the first @nbytes bytes (all if < 0) of @m as it goes on the wire:
 * the header as given (m->len need not match what follows), then the
 * payload, at most WIRE_MAX_PAYLOAD bytes of it.
 */
static int msg_send(int fd, const struct msg *m, ssize_t nbytes)
{
	static uint8_t buf[sizeof(struct wire_hdr) + WIRE_MAX_PAYLOAD];
	struct wire_hdr hdr;
	size_t total, plen;

	hdr.magic = htole32(m->magic);
	hdr.version = m->version;
	hdr.pad = m->pad;
	hdr.type = htole16(m->type);
	hdr.flags = htole16(m->flags);
	hdr.status = htole16(m->status);
	hdr.len = htole32(m->len);
	hdr.req_id = htole64(m->req_id);
	plen = m->len < WIRE_MAX_PAYLOAD ? m->len : WIRE_MAX_PAYLOAD;
	memcpy(buf, &hdr, sizeof(hdr));
	memcpy(buf + sizeof(hdr), m->data, plen);
	total = sizeof(hdr) + plen;
	if (nbytes >= 0 && (size_t)nbytes < total)
		total = nbytes;
	return write_all(fd, buf, total);
}

static int send_simple(int fd, uint16_t type, uint16_t flags, uint64_t req_id,
		       const void *data, uint32_t len)
{
	static struct msg m;

	msg_init(&m, type, flags, req_id, data, len);
	return msg_send(fd, &m, -1);
}

/* Read exactly @len bytes by @deadline: len, 0 on EOF, -errno. */
static ssize_t read_full(int fd, void *buf, size_t len, uint64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	uint8_t *p = buf;
	size_t got = 0;
	uint64_t t;
	ssize_t r;

	while (got < len) {
		t = now_ms();
		if (t >= deadline)
			return -ETIMEDOUT;
		r = poll(&pfd, 1, deadline - t);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0)
			continue;
		r = recv(fd, p + got, len - got, 0);
		if (r == 0)
			return 0;
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		got += r;
	}
	return len;
}

/* Receive one message: 1, 0 on EOF, -errno (-EPROTO: not a DVM message). */
static int msg_recv(int fd, struct msg *m, int timeout_ms)
{
	uint64_t deadline = now_ms() + timeout_ms;
	struct wire_hdr hdr;
	ssize_t r;

	r = read_full(fd, &hdr, sizeof(hdr), deadline);
	if (r <= 0)
		return r;
	m->magic = le32toh(hdr.magic);
	m->version = hdr.version;
	m->pad = hdr.pad;
	m->type = le16toh(hdr.type);
	m->flags = le16toh(hdr.flags);
	m->status = le16toh(hdr.status);
	m->len = le32toh(hdr.len);
	m->req_id = le64toh(hdr.req_id);
	if (m->magic != WIRE_MAGIC || m->version != WIRE_VERSION || m->pad ||
	    m->len > WIRE_MAX_PAYLOAD) {
		ksft_print_msg("bad header from node 0: magic 0x%x version %u pad %u len %u\n",
			       m->magic, m->version, m->pad, m->len);
		return -EPROTO;
	}
	if (!m->len)
		return 1;
	r = read_full(fd, m->data, m->len, deadline);
	return r <= 0 ? r : 1;
}

/*
 * Read and drop whatever comes until the peer closes the connection
 * (EOF or reset). Returns 0 when closed, -ETIMEDOUT or -errno.
 */
static int wait_closed(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	uint64_t deadline = now_ms() + timeout_ms;
	size_t junk = 0;
	uint8_t buf[4096];
	uint64_t t;
	ssize_t r;

	for (;;) {
		t = now_ms();
		if (t >= deadline) {
			ksft_print_msg("connection still open after %d ms (%zu bytes received)\n",
				       timeout_ms, junk);
			return -ETIMEDOUT;
		}
		r = poll(&pfd, 1, deadline - t);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0)
			continue;
		r = recv(fd, buf, sizeof(buf), 0);
		if (r == 0)
			return 0;
		if (r < 0) {
			if (errno == ECONNRESET)
				return 0;
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		junk += r;
	}
}

/*
 * A TCP connection to 127.0.0.1:@port from 127.0.0.1 (node 1's table
 * address), retried while nobody listens yet.
 */
static int tcp_connect_from(uint16_t port, uint32_t src, int timeout_ms)
{
	uint64_t deadline = now_ms() + timeout_ms;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int fd, one = 1;

	sin.sin_addr.s_addr = htonl(src);
	for (;;) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		TEST_ASSERT(fd >= 0, "socket: %s", strerror(errno));
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		sin.sin_port = 0;
		TEST_ASSERT(!bind(fd, (struct sockaddr *)&sin, sizeof(sin)),
			    "bind 127.0.0.1:0: %s", strerror(errno));
		sin.sin_port = htons(port);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (!connect(fd, (struct sockaddr *)&sin, sizeof(sin)))
			return fd;
		sin.sin_addr.s_addr = htonl(src);
		close(fd);
		if (errno != ECONNREFUSED || now_ms() > deadline) {
			ksft_print_msg("connect to port %u: %s\n", port,
				       strerror(errno));
			return -1;
		}
		sleep_ms(20);
	}
}

static int tcp_connect(uint16_t port, int timeout_ms)
{
	return tcp_connect_from(port, INADDR_LOOPBACK, timeout_ms);
}

static void hello_init(struct msg *m, uint32_t node, uint32_t nr_nodes,
		       uint32_t target, const uint8_t *nonce)
{
	struct wire_hello h;

	h.node_id = htole32(node);
	h.nr_nodes = htole32(nr_nodes);
	h.target = htole32(target);
	h.transport = htole32(KVM_DVM_TRANSPORT_TCP);
	memcpy(h.nonce, nonce, NONCE_SIZE);
	msg_init(m, MSG_HELLO, 0, 0, &h, sizeof(h));
}

/*
 * Run the connector's side of the handshake as node 1 towards node 0 up to
 * and including PROOF (a corrupted MAC unless @good_proof); the verdict is
 * left for the caller. Node 0's CHALLENGE is checked, its MAC too when
 * HMAC is available.
 */
static bool handshake(int fd, bool good_proof, struct msg *m)
{
	uint8_t nonce_c[NONCE_SIZE], mac[MAC_SIZE];
	struct wire_challenge ch;
	int r;

	rng_fill(nonce_c, sizeof(nonce_c));
	hello_init(m, 1, NR_NODES, 0, nonce_c);
	r = msg_send(fd, m, -1);
	if (r) {
		ksft_print_msg("sending HELLO: %s\n", strerror(-r));
		return false;
	}
	r = msg_recv(fd, m, 10000);
	if (r != 1) {
		ksft_print_msg("no CHALLENGE: %s\n", r ? strerror(-r) : "EOF");
		return false;
	}
	if (m->type != MSG_CHALLENGE || m->flags || m->status ||
	    m->len != sizeof(ch)) {
		ksft_print_msg("want CHALLENGE, got type %u flags 0x%x status %u len %u\n",
			       m->type, m->flags, m->status, m->len);
		return false;
	}
	memcpy(&ch, m->data, sizeof(ch));
	if (le32toh(ch.node_id) != 0 || ch.pad) {
		ksft_print_msg("CHALLENGE: node_id %u pad %u\n",
			       le32toh(ch.node_id), le32toh(ch.pad));
		return false;
	}
	if (hmac_ok()) {
		auth_mac(LABEL_ACCEPTOR, 1, 0, nonce_c, ch.nonce, mac);
		if (memcmp(mac, ch.mac, MAC_SIZE)) {
			ksft_print_msg("CHALLENGE: node 0's MAC is wrong\n");
			return false;
		}
		auth_mac(LABEL_CONNECTOR, 1, 0, nonce_c, ch.nonce, mac);
	} else {
		rng_fill(mac, sizeof(mac));
	}
	if (!good_proof)
		mac[7] ^= 0x10;
	r = send_simple(fd, MSG_PROOF, 0, 0, mac, sizeof(mac));
	if (r) {
		ksft_print_msg("sending PROOF: %s\n", strerror(-r));
		return false;
	}
	return true;
}

/* The next message must be a REJECT carrying @error. */
static bool expect_reject(int fd, uint32_t error, struct msg *m)
{
	struct wire_error e;
	int r;

	r = msg_recv(fd, m, 10000);
	if (r != 1) {
		ksft_print_msg("no REJECT: %s\n", r ? strerror(-r) : "EOF");
		return false;
	}
	if (m->type != MSG_REJECT || m->len != sizeof(e)) {
		ksft_print_msg("want REJECT, got type %u len %u\n", m->type,
			       m->len);
		return false;
	}
	memcpy(&e, m->data, sizeof(e));
	if (le32toh(e.error) != error) {
		ksft_print_msg("REJECT error %u (node %u), want %u\n",
			       le32toh(e.error), le32toh(e.node), error);
		return false;
	}
	return true;
}

/* ---- pre-authentication garbage ---- */

struct pre_case {
	const char *name;
	bool auth;		/* counted in dvm_auth_failures */
	bool need_hmac;
	bool (*attack)(int fd);
};

static struct msg pre_msg;

static bool send_or_report(int fd, const struct msg *m, ssize_t nbytes)
{
	int r = msg_send(fd, m, nbytes);

	/* The server may have dropped us already: that is fine. */
	if (r && r != -EPIPE && r != -ECONNRESET) {
		ksft_print_msg("send: %s\n", strerror(-r));
		return false;
	}
	return true;
}

static void valid_hello(struct msg *m)
{
	uint8_t nonce[NONCE_SIZE];

	rng_fill(nonce, sizeof(nonce));
	hello_init(m, 1, NR_NODES, 0, nonce);
}

static bool attack_random(int fd)
{
	uint8_t buf[256];

	int r;

	rng_fill(buf, sizeof(buf));
	if (buf[0] == (WIRE_MAGIC & 0xff))
		buf[0] ^= 0xff;
	r = write_all(fd, buf, sizeof(buf));
	if (r && r != -EPIPE && r != -ECONNRESET) {
		ksft_print_msg("send: %s\n", strerror(-r));
		return false;
	}
	return true;
}

static bool attack_bad_magic(int fd)
{
	valid_hello(&pre_msg);
	pre_msg.magic = WIRE_MAGIC ^ 0x01000000;
	return send_or_report(fd, &pre_msg, -1);
}

static bool attack_bad_version(int fd)
{
	valid_hello(&pre_msg);
	pre_msg.version = WIRE_VERSION + 1;
	return send_or_report(fd, &pre_msg, -1);
}

static bool attack_bad_pad(int fd)
{
	valid_hello(&pre_msg);
	pre_msg.pad = 1;
	return send_or_report(fd, &pre_msg, -1);
}

static bool attack_unknown_type(int fd)
{
	msg_init(&pre_msg, 200, 0, 0, NULL, 0);
	return send_or_report(fd, &pre_msg, -1);
}

/* Only the header: the server must not wait for the payload. */
static bool attack_oversized(int fd)
{
	valid_hello(&pre_msg);
	pre_msg.len = WIRE_MAX_PAYLOAD + 1;
	return send_or_report(fd, &pre_msg, sizeof(struct wire_hdr));
}

static bool attack_truncated_header(int fd)
{
	valid_hello(&pre_msg);
	if (!send_or_report(fd, &pre_msg, 10))
		return false;
	shutdown(fd, SHUT_WR);
	return true;
}

/* A header announcing @len payload bytes, 10 of them, then EOF. */
static bool truncated_payload(int fd, uint32_t len)
{
	valid_hello(&pre_msg);
	pre_msg.len = len;
	if (!send_or_report(fd, &pre_msg, sizeof(struct wire_hdr) + 10))
		return false;
	shutdown(fd, SHUT_WR);
	return true;
}

static bool attack_truncated_hello(int fd)
{
	return truncated_payload(fd, sizeof(struct wire_hello));
}

static bool attack_truncated_100(int fd)
{
	return truncated_payload(fd, 100);
}

static bool attack_echo_first(int fd)
{
	uint8_t data[16];

	rng_fill(data, sizeof(data));
	msg_init(&pre_msg, MSG_ECHO, 0, 1, data, sizeof(data));
	return send_or_report(fd, &pre_msg, -1);
}

static bool attack_hello_short(int fd)
{
	valid_hello(&pre_msg);
	pre_msg.len = sizeof(struct wire_hello) - 1;
	return send_or_report(fd, &pre_msg, -1);
}

static bool attack_hello_node(int fd)
{
	uint8_t nonce[NONCE_SIZE];

	rng_fill(nonce, sizeof(nonce));
	hello_init(&pre_msg, NR_NODES, NR_NODES, 0, nonce);
	return send_or_report(fd, &pre_msg, -1);
}

static bool attack_hello_target(int fd)
{
	uint8_t nonce[NONCE_SIZE];

	rng_fill(nonce, sizeof(nonce));
	hello_init(&pre_msg, 1, NR_NODES, 1, nonce);
	return send_or_report(fd, &pre_msg, -1);
}

static bool attack_hello_not_above(int fd)
{
	uint8_t nonce[NONCE_SIZE];

	rng_fill(nonce, sizeof(nonce));
	hello_init(&pre_msg, 0, NR_NODES, 0, nonce);
	return send_or_report(fd, &pre_msg, -1);
}

static bool attack_bad_proof(int fd)
{
	return handshake(fd, false, &pre_msg) &&
	       expect_reject(fd, EACCES, &pre_msg);
}

static bool attack_duplicate(int fd)
{
	return handshake(fd, true, &pre_msg) &&
	       expect_reject(fd, EEXIST, &pre_msg);
}

static const struct pre_case pre_cases[NR_PRE_CASES] = {
	{ "256 random bytes", false, false, attack_random },
	{ "bad magic", false, false, attack_bad_magic },
	{ "bad version", false, false, attack_bad_version },
	{ "nonzero header pad", false, false, attack_bad_pad },
	{ "unknown type 200", false, false, attack_unknown_type },
	{ "oversized len", false, false, attack_oversized },
	{ "truncated header then close", false, false, attack_truncated_header },
	{ "HELLO with 10 of 48 payload bytes then close", false, false,
	  attack_truncated_hello },
	{ "header announcing 100 bytes, 10 sent, then close", false, false,
	  attack_truncated_100 },
	{ "ECHO request before HELLO", false, false, attack_echo_first },
	{ "HELLO with a 47-byte payload", false, false, attack_hello_short },
	{ "HELLO with node_id >= nr_nodes", false, false, attack_hello_node },
	{ "HELLO with target != acceptor", false, false, attack_hello_target },
	{ "HELLO from a node not above the acceptor", false, false,
	  attack_hello_not_above },
	{ "HELLO, then PROOF with a wrong MAC", true, false, attack_bad_proof },
	{ "authenticated duplicate of node 1: REJECT EEXIST", true, true,
	  attack_duplicate },
};

static void run_pre_case(struct kvm_vm *a, uint16_t port,
			 const struct pre_case *pc)
{
	uint64_t m0, a0;
	bool ok;
	int fd;

	if (pc->need_hmac && !hmac_ok()) {
		ksft_test_result_skip("pre-auth: %s: %s\n", pc->name, hmac_why);
		return;
	}
	m0 = malformed(a);
	a0 = auth_failures(a);
	fd = tcp_connect(port, 5000);
	if (fd < 0) {
		ksft_test_result_fail("pre-auth: %s: cannot connect\n", pc->name);
		return;
	}
	ok = pc->attack(fd);
	if (wait_closed(fd, CLOSE_TIMEOUT_MS)) {
		ksft_print_msg("node 0 did not close the connection\n");
		ok = false;
	}
	close(fd);
	if (!counters_exact(a, m0 + !pc->auth, a0 + pc->auth))
		ok = false;
	ksft_test_result(ok, "pre-auth: %s: dropped, %s +1\n", pc->name,
			 pc->auth ? "dvm_auth_failures" : "dvm_malformed");
}

static void test_pre_auth(void)
{
	struct joiner ja, jb;
	struct kvm_vm *a, *b;
	uint16_t port = ports_alloc(NR_NODES);
	bool formed, ok;
	int ra, rb, i;

	a = vm_create_barebones();
	b = vm_create_barebones();
	join_start(&ja, a, 0, port, 0);
	join_start(&jb, b, 1, port, 0);
	ra = join_finish(&ja, 2 * JOIN_TIMEOUT_MS);
	rb = join_finish(&jb, 2 * JOIN_TIMEOUT_MS);
	formed = !ra && !rb;
	if (!formed)
		ksft_print_msg("JOIN: node 0 %s (failed_node %u), node 1 %s (failed_node %u)\n",
			       strerror(-ra), ja.failed_node, strerror(-rb),
			       jb.failed_node);
	else
		formed = check_joined(a, 0) && check_joined(b, 1);

	for (i = 0; i < NR_PRE_CASES; i++) {
		if (formed)
			run_pre_case(a, port, &pre_cases[i]);
		else
			ksft_test_result_fail("pre-auth: %s: no cluster\n",
					      pre_cases[i].name);
	}

	ok = formed && ping(a, 0, 1) && ping(b, 1, 0) &&
	     check_joined(a, 0) && check_joined(b, 1);
	if (formed && stat_get(a, "dvm_peers_lost", 0)) {
		ksft_print_msg("node 0 lost a peer\n");
		ok = false;
	}
	ksft_test_result(ok, "pre-auth: cluster unaffected, PING both ways\n");
	vm_leave_free(a);
	vm_leave_free(b);
}

/* ---- the test as an authenticated node 1 ---- */

struct client {
	struct kvm_vm *vm;	/* node 0 */
	struct joiner j;
	uint16_t port;
	int fd;
	bool silent;		/* no heartbeats */
	uint16_t echo_status;	/* answer ECHO requests with it, no payload */
	uint64_t next_hb;
	uint64_t last_tx;
};

static struct msg client_msg;

static int client_send(struct client *c, uint16_t type, uint16_t flags,
		       uint64_t req_id, const void *data, uint32_t len)
{
	int r = send_simple(c->fd, type, flags, req_id, data, len);

	if (!r)
		c->last_tx = now_ms();
	return r;
}

/*
 * Act as a well-behaved node 1 for up to @timeout_ms: a HEARTBEAT every
 * 500 ms (unless silent), ECHO requests answered, heartbeats dropped.
 * Returns 1 with the message in @m when one of type @want arrives (for
 * ECHO: a reply), 2 once *@stop is set, 0 on EOF, else -errno.
 */
static int client_serve(struct client *c, int timeout_ms, int want, int *stop,
			struct msg *m)
{
	uint64_t deadline = now_ms() + timeout_ms;
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	uint64_t t, wait;
	int r;

	for (;;) {
		if (stop && __atomic_load_n(stop, __ATOMIC_ACQUIRE))
			return 2;
		t = now_ms();
		if (!c->silent && t >= c->next_hb) {
			r = client_send(c, MSG_HEARTBEAT, 0, 0, NULL, 0);
			if (r)
				return r;
			c->next_hb = t + HEARTBEAT_MS;
		}
		if (t >= deadline)
			return -ETIMEDOUT;
		wait = deadline - t;
		if (wait > 50)
			wait = 50;
		r = poll(&pfd, 1, wait);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0)
			continue;
		r = msg_recv(c->fd, m, 5000);
		if (r <= 0)
			return r;
		if (m->type == MSG_HEARTBEAT && !m->len)
			continue;
		if (m->type == MSG_ECHO && !(m->flags & WIRE_F_REPLY) &&
		    c->echo_status) {
			static struct msg e;

			msg_init(&e, MSG_ECHO, WIRE_F_REPLY, m->req_id, NULL, 0);
			e.status = c->echo_status;
			r = msg_send(c->fd, &e, -1);
			if (r)
				return r;
			continue;
		}
		if (m->type == MSG_ECHO && !(m->flags & WIRE_F_REPLY)) {
			r = client_send(c, MSG_ECHO, WIRE_F_REPLY, m->req_id,
					m->data, m->len);
			if (r)
				return r;
			continue;
		}
		if (m->type == want)
			return 1;
		ksft_print_msg("node 1: unexpected message type %u flags 0x%x len %u\n",
			       m->type, m->flags, m->len);
	}
}

static void client_end(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->j.started) {
		/* Interrupt a JOIN that is still waiting for node 1. */
		join_finish(&c->j, 0);
	}
	vm_leave_free(c->vm);
}

/*
 * Node 0 is a fresh VM joining a 2-node cluster with @peer_timeout_ms;
 * the test is node 1: handshake, MESH_READY, MESH_UP, and node 0's JOIN
 * returns 0.
 */
static bool client_join_timeout(struct client *c, uint32_t peer_timeout_ms)
{
	struct msg *m = &client_msg;
	int r;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->vm = vm_create_barebones();
	c->port = ports_alloc(NR_NODES);
	join_start(&c->j, c->vm, 0, c->port, peer_timeout_ms);
	c->fd = tcp_connect(c->port, JOIN_TIMEOUT_MS);
	if (c->fd < 0 || !handshake(c->fd, true, m))
		return false;
	r = msg_recv(c->fd, m, 10000);
	if (r != 1 || m->type != MSG_WELCOME || m->len) {
		ksft_print_msg("want WELCOME: %s, type %u len %u\n",
			       r < 0 ? strerror(-r) : r ? "ok" : "EOF",
			       r == 1 ? m->type : 0, r == 1 ? m->len : 0);
		return false;
	}
	r = client_send(c, MSG_MESH_READY, 0, 0, NULL, 0);
	if (r) {
		ksft_print_msg("sending MESH_READY: %s\n", strerror(-r));
		return false;
	}
	c->next_hb = now_ms() + HEARTBEAT_MS;
	r = client_serve(c, JOIN_TIMEOUT_MS, MSG_MESH_UP, &c->j.done, m);
	if (r == 2) {
		if (c->j.ret) {
			ksft_print_msg("node 0: JOIN: %s (failed_node %u)\n",
				       strerror(-c->j.ret), c->j.failed_node);
			return false;
		}
		r = client_serve(c, 10000, MSG_MESH_UP, NULL, m);
	}
	if (r != 1) {
		ksft_print_msg("no MESH_UP: %s\n",
			       r ? strerror(-r) : "EOF");
		return false;
	}
	r = client_serve(c, JOIN_TIMEOUT_MS, 0, &c->j.done, m);
	if (r != 2) {
		ksft_print_msg("node 0's JOIN does not return: %s\n",
			       r ? strerror(-r) : "EOF");
		return false;
	}
	join_finish(&c->j, 0);
	if (c->j.ret) {
		ksft_print_msg("node 0: JOIN: %s (failed_node %u)\n",
			       strerror(-c->j.ret), c->j.failed_node);
		return false;
	}
	return check_joined(c->vm, 0);
}

static bool client_join(struct client *c)
{
	return client_join_timeout(c, 0);
}

static void test_echo(void)
{
	static uint8_t payload[ECHO_SIZE];
	struct msg *m = &client_msg;
	uint64_t rx0, rxb0, tx0;
	struct client c;
	bool ok = false;
	int r;

	if (!hmac_ok()) {
		ksft_test_result_skip("ECHO as node 1: %s\n", hmac_why);
		return;
	}
	if (!client_join(&c))
		goto out;
	rng_fill(payload, sizeof(payload));
	rx0 = stat_get(c.vm, "dvm_rx_msgs", KVM_DVM_STAT_MSG_ECHO);
	rxb0 = stat_get(c.vm, "dvm_rx_bytes", KVM_DVM_STAT_MSG_ECHO);
	tx0 = stat_get(c.vm, "dvm_tx_msgs", KVM_DVM_STAT_MSG_ECHO);
	r = client_send(&c, MSG_ECHO, 0, ECHO_REQ_ID, payload, sizeof(payload));
	if (r) {
		ksft_print_msg("sending ECHO: %s\n", strerror(-r));
		goto out;
	}
	r = client_serve(&c, 10000, MSG_ECHO, NULL, m);
	if (r != 1) {
		ksft_print_msg("no ECHO reply: %s\n", r ? strerror(-r) : "EOF");
		goto out;
	}
	if (m->flags != WIRE_F_REPLY || m->req_id != ECHO_REQ_ID ||
	    m->status || m->len != sizeof(payload) ||
	    memcmp(m->data, payload, sizeof(payload))) {
		ksft_print_msg("ECHO reply: flags 0x%x req_id %lu status %u len %u, payload %s\n",
			       m->flags, (unsigned long)m->req_id, m->status,
			       m->len, m->len == sizeof(payload) &&
			       !memcmp(m->data, payload, sizeof(payload)) ?
			       "identical" : "differs");
		goto out;
	}
	ok = check_joined(c.vm, 0);
	if (stat_get(c.vm, "dvm_rx_msgs", KVM_DVM_STAT_MSG_ECHO) != rx0 + 1 ||
	    stat_get(c.vm, "dvm_rx_bytes", KVM_DVM_STAT_MSG_ECHO) !=
	    rxb0 + sizeof(struct wire_hdr) + sizeof(payload) ||
	    stat_get(c.vm, "dvm_tx_msgs", KVM_DVM_STAT_MSG_ECHO) != tx0 + 1) {
		ksft_print_msg("node 0's ECHO stats: rx_msgs +%lu rx_bytes +%lu tx_msgs +%lu\n",
			       (unsigned long)(stat_get(c.vm, "dvm_rx_msgs", KVM_DVM_STAT_MSG_ECHO) - rx0),
			       (unsigned long)(stat_get(c.vm, "dvm_rx_bytes", KVM_DVM_STAT_MSG_ECHO) - rxb0),
			       (unsigned long)(stat_get(c.vm, "dvm_tx_msgs", KVM_DVM_STAT_MSG_ECHO) - tx0));
		ok = false;
	}
	if (malformed(c.vm) || auth_failures(c.vm)) {
		ksft_print_msg("node 0 counted the test client: dvm_malformed %lu dvm_auth_failures %lu\n",
			       (unsigned long)malformed(c.vm),
			       (unsigned long)auth_failures(c.vm));
		ok = false;
	}
out:
	client_end(&c);
	ksft_test_result(ok, "ECHO as node 1: req_id %d, %d bytes echoed\n",
			 ECHO_REQ_ID, ECHO_SIZE);
}

/* ---- post-authentication garbage ---- */

struct post_case {
	const char *name;
	int error;		/* the expected broken_error */
	void (*attack)(struct client *c, struct msg *m);
};

static void post_bad_magic(struct client *c, struct msg *m)
{
	msg_init(m, MSG_HEARTBEAT, 0, 0, NULL, 0);
	m->magic = WIRE_MAGIC ^ 0x01000000;
	msg_send(c->fd, m, -1);
}

static void post_oversized(struct client *c, struct msg *m)
{
	msg_init(m, MSG_ECHO, 0, 1, NULL, 0);
	m->len = WIRE_MAX_PAYLOAD + 1;
	msg_send(c->fd, m, sizeof(struct wire_hdr));
}

static void post_unknown_type(struct client *c, struct msg *m)
{
	msg_init(m, 200, 0, 0, NULL, 0);
	msg_send(c->fd, m, -1);
}

static void post_stray_reply(struct client *c, struct msg *m)
{
	uint8_t data[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

	/* Id 0 is never a request's. */
	msg_init(m, MSG_ECHO, WIRE_F_REPLY, 0, data, sizeof(data));
	msg_send(c->fd, m, -1);
}

static void post_hello(struct client *c, struct msg *m)
{
	valid_hello(m);
	msg_send(c->fd, m, -1);
}

static void post_truncated(struct client *c, struct msg *m)
{
	uint8_t data[100];

	rng_fill(data, sizeof(data));
	msg_init(m, MSG_ECHO, 0, 2, data, sizeof(data));
	msg_send(c->fd, m, sizeof(struct wire_hdr) + 10);
	shutdown(c->fd, SHUT_WR);
	c->silent = true;
}

/* Placement messages (dvm.rst 4.4); node 0 has not placed anything. */
#define VCPUS_LEN	(8 + 2 * 128)
#define VERDICT_LEN	(16 + 1024)

static void send_vcpu_info(struct client *c, struct msg *m, uint32_t first,
			   uint32_t count, uint32_t entries)
{
	uint32_t data[2 + 2 * 4] = { first, count };

	msg_init(m, MSG_VCPU_INFO, 0, 0, data, 8 + 8 * entries);
	msg_send(c->fd, m, -1);
}

static void post_vcpu_info_order(struct client *c, struct msg *m)
{
	send_vcpu_info(c, m, 256, 1, 1);
}

static void post_vcpu_info_count(struct client *c, struct msg *m)
{
	send_vcpu_info(c, m, 0, 2, 1);
}

static void send_vcpus(struct client *c, struct msg *m, uint32_t nr,
		       uint64_t created0)
{
	static uint8_t data[VCPUS_LEN];

	memset(data, 0, sizeof(data));
	memcpy(data, &nr, 4);
	memcpy(data + 8 + 128, &created0, 8);
	msg_init(m, MSG_VCPUS, 0, 0, data, sizeof(data));
	msg_send(c->fd, m, -1);
}

static void post_vcpus_no_info(struct client *c, struct msg *m)
{
	send_vcpus(c, m, 1, 0);
}

static void post_vcpus_created_high(struct client *c, struct msg *m)
{
	send_vcpu_info(c, m, 0, 1, 1);
	send_vcpus(c, m, 1, 1ull << 1);
}

static void post_verdict_from_1(struct client *c, struct msg *m)
{
	static uint8_t data[VERDICT_LEN];

	memset(data + 16, 0xff, 1024);
	msg_init(m, MSG_VCPUS_VERDICT, 0, 0, data, sizeof(data));
	msg_send(c->fd, m, -1);
}

static const struct post_case post_cases[NR_POST_CASES] = {
	{ "bad magic", -EPROTO, post_bad_magic },
	{ "oversized len", -EPROTO, post_oversized },
	{ "unknown type 200", -EPROTO, post_unknown_type },
	{ "REPLY with request id 0", -EPROTO, post_stray_reply },
	{ "HELLO after authentication", -EPROTO, post_hello },
	{ "truncated ECHO payload then close", -ECONNRESET, post_truncated },
	{ "VCPU_INFO not starting at id 0", -EPROTO, post_vcpu_info_order },
	{ "VCPU_INFO with fewer entries than its count", -EPROTO,
	  post_vcpu_info_count },
	{ "VCPUS without its VCPU_INFO", -EPROTO, post_vcpus_no_info },
	{ "VCPUS with a vCPU created at nr_vcpus", -EPROTO,
	  post_vcpus_created_high },
	{ "VCPUS_VERDICT from node 1", -EPROTO, post_verdict_from_1 },
};

static void run_post_case(const struct post_case *pc)
{
	struct msg *m = &client_msg;
	struct kvm_dvm_state st;
	struct client c;
	uint64_t m0, when;
	bool ok = false;
	int r;

	if (!hmac_ok()) {
		ksft_test_result_skip("post-auth: %s: %s\n", pc->name, hmac_why);
		return;
	}
	if (!client_join(&c))
		goto out;
	m0 = malformed(c.vm);
	pc->attack(&c, m);
	/* Keep heartbeating: only the bad message may break the cluster. */
	r = client_serve(&c, 2 * CLOSE_TIMEOUT_MS, 0, NULL, m);
	if (r && r != -ECONNRESET && r != -EPIPE) {
		ksft_print_msg("node 0 did not close the connection: %s\n",
			       strerror(-r));
		goto out;
	}
	if (!wait_broken(c.vm, 5000, &st, &when)) {
		ksft_print_msg("node 0 is not BROKEN: state %u\n", st.state);
		goto out;
	}
	ok = st.broken_node == 1 && st.broken_error == pc->error;
	if (!ok)
		ksft_print_msg("broken_node %u broken_error %d, want 1 and %d\n",
			       st.broken_node, st.broken_error, pc->error);
	if (!counters_exact(c.vm, m0 + 1, auth_failures(c.vm)))
		ok = false;
out:
	client_end(&c);
	ksft_test_result(ok, "post-auth: %s: BROKEN, node 1, %s\n", pc->name,
			 pc->error == -EPROTO ? "-EPROTO" : "-ECONNRESET");
}

/* ---- irqchip messages from an authenticated peer ---- */

struct placer {
	struct kvm_vm *vm;
	int ret;
	int done;
	pthread_t thread;
};

/* Node 0 places 1 vCPU id that no node created or runs. */
static void *place_thread(void *arg)
{
	struct placer *p = arg;
	static struct kvm_dvm_vcpus v;

	memset(&v, 0, sizeof(v));
	v.nr_vcpus = 1;
	p->ret = __vm_ioctl(p->vm, KVM_DVM_SET_LOCAL_VCPUS, &v) ? -errno : 0;
	__atomic_store_n(&p->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* As node 1: no vCPU created, none run; node 0's verdict must stand. */
static bool client_place(struct client *c, struct msg *m)
{
	static uint8_t vcpus[VCPUS_LEN];
	uint32_t info[4] = { 0, 1, 0, 0 };
	struct placer p = { .vm = c->vm };
	uint32_t one = 1, err;
	int r;

	pthread_create(&p.thread, NULL, place_thread, &p);
	r = client_send(c, MSG_VCPU_INFO, 0, 0, info, sizeof(info));
	memset(vcpus, 0, sizeof(vcpus));
	memcpy(vcpus, &one, 4);
	if (!r)
		r = client_send(c, MSG_VCPUS, 0, 0, vcpus, sizeof(vcpus));
	if (!r)
		r = client_serve(c, JOIN_TIMEOUT_MS, MSG_VCPUS_VERDICT, NULL, m);
	if (r == 1) {
		memcpy(&err, m->data, 4);
		r = client_serve(c, JOIN_TIMEOUT_MS, 0, &p.done, m);
	}
	pthread_join(p.thread, NULL);
	if (r != 2 || err || p.ret) {
		ksft_print_msg("placement: serve %d, verdict %u, node 0 %s\n",
			       r, err, strerror(-p.ret));
		return false;
	}
	return true;
}

static bool is_running(struct kvm_vm *vm, struct kvm_dvm_state *st)
{
	struct kvm_dvm_link links[NR_NODES];

	return !get_state(vm, st, links) &&
	       st->state == KVM_DVM_STATE_RUNNING &&
	       links[1].state == KVM_DVM_LINK_UP;
}

static bool send_irqs(struct client *c, const struct wire_irq *e, int n,
		      uint32_t len)
{
	return !client_send(c, MSG_IRQ, 0, 0, e, len ? len : n * sizeof(*e));
}

/* An APIC_STATE request: its reply's status, or -1 without a reply. */
static int apic_state_status(struct client *c, struct msg *m, uint32_t vcpu,
			     uint32_t pad, uint64_t req_id)
{
	struct wire_apic_state a = {
		.vcpu = vcpu, .pad = pad, .base = 0xfee00900, .spiv = 0x1ff,
	};

	if (client_send(c, MSG_APIC_STATE, 0, req_id, &a, sizeof(a)) ||
	    client_serve(c, 10000, MSG_APIC_STATE, NULL, m) != 1 ||
	    !(m->flags & WIRE_F_REPLY) || m->req_id != req_id)
		return -1;
	return m->status;
}

/*
 * Bad interrupt events and APIC registers from node 1 are refused and
 * counted one by one (dvm_irq_rejected); nothing is malformed, the link
 * stays up and node 0 stays RUNNING.
 */
static void test_irq_bad(void)
{
	const struct wire_irq good = { .vcpu = 0, .kind = 0, .mode = 0,
				       .vector = 0x40 };
	struct msg *m = &client_msg;
	struct wire_irq e[3];
	struct kvm_dvm_state st;
	uint64_t m0, rej, want = 0;
	struct client c;
	bool ok = false;
	int s1, s2;

	if (!hmac_ok()) {
		ksft_test_result_skip("irqchip messages: %s\n", hmac_why);
		return;
	}
	if (!client_join(&c) || !client_place(&c, m))
		goto out;
	m0 = malformed(c.vm);
	rej = stat_get(c.vm, "dvm_irq_rejected", 0);

	e[0] = good;
	e[0].vcpu = 5;				/* beyond nr_vcpus */
	ok = send_irqs(&c, e, 1, 0);
	e[0] = good;
	e[0].mode = 7;				/* ExtINT */
	ok = ok && send_irqs(&c, e, 1, 0);
	e[0] = good;
	e[0].flags = 0x80;
	ok = ok && send_irqs(&c, e, 1, 0);
	e[0] = good;
	e[0].pad[1] = 1;
	ok = ok && send_irqs(&c, e, 1, 0);
	e[0] = good;
	e[0].kind = 9;
	ok = ok && send_irqs(&c, e, 1, 0);
	ok = ok && send_irqs(&c, &good, 1, 0);	/* vCPU 0: nobody runs it */
	e[0] = e[1] = e[2] = good;
	e[1].mode = 200;
	ok = ok && send_irqs(&c, e, 3, 0);	/* three events, all refused */
	ok = ok && send_irqs(&c, e, 3, 24);	/* not whole events */
	e[0] = good;
	e[0].kind = 2;				/* RTE, not from node 0 */
	e[0].vector = 0;
	ok = ok && send_irqs(&c, e, 1, 0);
	e[0] = good;
	e[0].kind = 1;				/* EOI for a vCPU not node 1's */
	ok = ok && send_irqs(&c, e, 1, 0);
	want = 1 + 1 + 1 + 1 + 1 + 1 + 3 + 1 + 1 + 1;
	s1 = apic_state_status(&c, m, 0, 0, 11);	/* node 0's vCPU */
	s2 = apic_state_status(&c, m, 0, 1, 12);	/* pad set */
	want += 2;
	if (!ok || s1 != EINVAL || s2 != EINVAL) {
		ksft_print_msg("sending: %s; APIC_STATE replies %d and %d, want %d\n",
			       ok ? "ok" : "failed", s1, s2, EINVAL);
		ok = false;
		goto out;
	}
	/* The APIC_STATE replies came after every event was handled. */
	rej = stat_get(c.vm, "dvm_irq_rejected", 0) - rej;
	ok = rej == want && malformed(c.vm) == m0 && is_running(c.vm, &st);
	if (!ok)
		ksft_print_msg("dvm_irq_rejected +%lu (want %lu), malformed +%lu, state %u\n",
			       (unsigned long)rej, (unsigned long)want,
			       (unsigned long)(malformed(c.vm) - m0), st.state);
out:
	client_end(&c);
	ksft_test_result(ok, "irqchip messages: %lu bad events and APIC states refused and counted, link up\n",
			 (unsigned long)want);
}

/* An IO request of @len bytes: its reply's status, or -1 without a reply. */
static int io_status(struct client *c, struct msg *m,
		     const struct wire_io *io, uint32_t len, uint64_t req_id)
{
	if (client_send(c, MSG_IO, 0, req_id, io, len) ||
	    client_serve(c, 10000, MSG_IO, NULL, m) != 1 ||
	    !(m->flags & WIRE_F_REPLY) || m->req_id != req_id)
		return -1;
	return m->status;
}

/* Each IO request is refused with @want, counted; link up, RUNNING. */
static bool io_cases(struct client *c, struct msg *m,
		     const struct wire_io *io, const uint32_t *len, int n,
		     int want)
{
	uint64_t rej = stat_get(c->vm, "dvm_io_rejected", 0);
	uint64_t m0 = malformed(c->vm);
	struct kvm_dvm_state st;
	int i, r;

	for (i = 0; i < n; i++) {
		r = io_status(c, m, &io[i], len[i], 100 + i);
		if (r != want) {
			ksft_print_msg("IO case %d: status %d, want %d\n", i, r,
				       want);
			return false;
		}
	}
	rej = stat_get(c->vm, "dvm_io_rejected", 0) - rej;
	if (rej != n || malformed(c->vm) != m0 || !is_running(c->vm, &st)) {
		ksft_print_msg("dvm_io_rejected +%lu (want %d), malformed +%lu, state %u\n",
			       (unsigned long)rej, n,
			       (unsigned long)(malformed(c->vm) - m0), st.state);
		return false;
	}
	return true;
}

/*
 * Forwarded accesses node 0 cannot take: to a node 0 that does not
 * forward I/O, ENODEV; to one that does, malformed ones and ones of a
 * vCPU node 1 does not run, EINVAL. Counted, the link stays up.
 */
static void test_io_bad(void)
{
	const struct wire_io good = { .vcpu = 0, .kind = 0, .size = 1,
				      .count = 1, .addr = 0x80 };
	struct wire_io io[12];
	uint32_t len[12];
	struct msg *m = &client_msg;
	struct client c;
	bool ok = false;
	int i;

	if (!hmac_ok()) {
		ksft_test_result_skip("IO messages: %s\n", hmac_why);
		return;
	}
	for (i = 0; i < 12; i++) {
		io[i] = good;
		len[i] = WIRE_IO_HDR + 1;
	}
	if (!client_join(&c) || !client_place(&c, m))
		goto out;
	if (!io_cases(&c, m, io, len, 1, ENODEV))
		goto out;
	client_end(&c);

	join_flags = KVM_DVM_JOIN_FORWARD_IO;
	ok = client_join(&c) && client_place(&c, m);
	join_flags = 0;
	if (!ok)
		goto out;
	io[1].vcpu = 5;				/* beyond nr_vcpus */
	io[2].kind = 4;
	io[3].size = 3;
	io[4].count = 0;
	io[5].size = 2;				/* ends above port 0xffff */
	io[5].addr = 0xffff;
	len[5] = WIRE_IO_HDR + 2;
	io[6].kind = 1;				/* an IN of 8 KiB */
	io[6].size = 4;
	io[6].count = 2048;
	len[6] = WIRE_IO_HDR;
	io[7].kind = 3;				/* MMIO read of 9 bytes */
	io[7].size = 9;
	len[7] = WIRE_IO_HDR;
	io[8].kind = 2;				/* MMIO write, count 2 */
	io[8].count = 2;
	io[9].kind = 3;				/* wraps */
	io[9].size = 8;
	io[9].addr = ~0ull - 3;
	len[9] = WIRE_IO_HDR;
	len[10] = WIRE_IO_HDR + 2;		/* one byte too many */
	len[11] = WIRE_IO_HDR;			/* an OUT without its byte */
	/* io[0]: well formed, but vCPU 0 is not node 1's. */
	ok = io_cases(&c, m, io, len, 12, EINVAL);
out:
	client_end(&c);
	ksft_test_result(ok, "IO messages: refused ENODEV when node 0 does not forward, EINVAL when malformed or not the sender's vCPU (12 kinds); counted, link up\n");
}

/*
 * Node 0 answers CLOCK with its clocks: without a vCPU, ENODEV; with one,
 * 24 bytes, the vCPU's TSC rate, only the flag it defines, a kvmclock and
 * a TSC that move forward. A CLOCK with a payload is malformed: counted,
 * and the link is dropped.
 */
static void test_clock(void)
{
	struct wire_clock {
		uint64_t kvmclock_ns;
		uint64_t guest_tsc;
		uint32_t tsc_khz;
		uint32_t flags;
	} a = { }, b;
	struct msg *m = &client_msg;
	uint64_t m0, pad = 0;
	struct kvm_vcpu *vcpu;
	struct client c;
	long khz = 0;
	bool ok = false;

	if (!hmac_ok()) {
		ksft_test_result_skip("CLOCK messages: %s\n", hmac_why);
		return;
	}
	if (!client_join(&c) || !client_place(&c, m))
		goto out;
	/* Node 0 created no vCPU: it has no TSC to give. */
	if (client_send(&c, MSG_CLOCK, 0, 199, NULL, 0) ||
	    client_serve(&c, 10000, MSG_CLOCK, NULL, m) != 1 ||
	    m->req_id != 199 || m->status != ENODEV || m->len)
		goto bad;
	/* Its copy of vCPU 0, which node 1 runs. */
	vcpu = __vm_vcpu_add(c.vm, 0);
	khz = __vcpu_ioctl(vcpu, KVM_GET_TSC_KHZ, NULL);
	if (client_send(&c, MSG_CLOCK, 0, 200, NULL, 0) ||
	    client_serve(&c, 10000, MSG_CLOCK, NULL, m) != 1 ||
	    m->req_id != 200 || m->status || m->len != sizeof(a))
		goto bad;
	memcpy(&a, m->data, sizeof(a));
	if (client_send(&c, MSG_CLOCK, 0, 201, NULL, 0) ||
	    client_serve(&c, 10000, MSG_CLOCK, NULL, m) != 1 ||
	    m->req_id != 201 || m->status || m->len != sizeof(b))
		goto bad;
	memcpy(&b, m->data, sizeof(b));
	if (le32toh(a.tsc_khz) != khz || le32toh(a.flags) & ~1u ||
	    le64toh(b.kvmclock_ns) <= le64toh(a.kvmclock_ns) ||
	    le64toh(b.guest_tsc) <= le64toh(a.guest_tsc))
		goto bad;
	m0 = malformed(c.vm);
	if (client_send(&c, MSG_CLOCK, 0, 202, &pad, sizeof(pad)))
		goto bad;
	/* The link ends: EOF, or a reset. */
	ok = client_serve(&c, 10000, MSG_CLOCK, NULL, m) <= 0 &&
	     malformed(c.vm) == m0 + 1;
	goto out;
bad:
	ksft_print_msg("CLOCK: status %u len %u, rate %u (want %ld)\n",
		       m->status, m->len, le32toh(a.tsc_khz), khz);
out:
	client_end(&c);
	ksft_test_result(ok, "CLOCK messages: node 0 answers ENODEV without a vCPU, then its rate and clocks, which move forward; one with a payload is malformed\n");
}

/*
 * VM_CONTROL and MEMSLOT come from node 0 to the others: node 0 refuses
 * them from node 1 (EINVAL) and does nothing, the link staying up; a
 * VM_CONTROL of the wrong length is malformed: counted, and the link is
 * dropped.
 */
static void test_vm_control(void)
{
	struct {
		uint32_t op;
		uint32_t flags;
	} v = { htole32(KVM_DVM_VM_PAUSE), 0 };
	struct {
		uint32_t slot;
		uint32_t flags;
		uint64_t gpa;
		uint64_t size;
		uint64_t offset;
	} ms = { htole32(11), 0, htole64(0xe0000000), htole64(4096), 0 };
	struct msg *m = &client_msg;
	struct client c;
	bool ok = false;
	uint64_t m0;

	if (!hmac_ok()) {
		ksft_test_result_skip("VM_CONTROL messages: %s\n", hmac_why);
		return;
	}
	if (!client_join(&c) || !client_place(&c, m))
		goto out;
	if (client_send(&c, MSG_VM_CONTROL, 0, 300, &v, sizeof(v)) ||
	    client_serve(&c, 10000, MSG_VM_CONTROL, NULL, m) != 1 ||
	    m->req_id != 300 || m->status != EINVAL || m->len ||
	    stat_get(c.vm, "dvm_vm_pauses", 0))
		goto bad;
	if (client_send(&c, MSG_MEMSLOT, 0, 302, &ms, sizeof(ms)) ||
	    client_serve(&c, 10000, MSG_MEMSLOT, NULL, m) != 1 ||
	    m->req_id != 302 || m->status != EINVAL || m->len ||
	    stat_get(c.vm, "dvm_memslot_updates", 0))
		goto bad;
	m0 = malformed(c.vm);
	if (client_send(&c, MSG_VM_CONTROL, 0, 301, &v, sizeof(v) / 2))
		goto bad;
	ok = client_serve(&c, 10000, MSG_VM_CONTROL, NULL, m) <= 0 &&
	     malformed(c.vm) == m0 + 1;
	goto out;
bad:
	ksft_print_msg("VM_CONTROL: status %u len %u\n", m->status, m->len);
out:
	client_end(&c);
	ksft_test_result(ok, "VM_CONTROL and MEMSLOT messages: node 0 refuses them from node 1 (EINVAL) and changes nothing; a VM_CONTROL of the wrong length is malformed\n");
}

/*
 * Node 1 (this process) goes silent right after a heartbeat: node 0, which
 * joined with @peer_timeout_ms (0: the default), breaks with
 * -ETIMEDOUT after that long and at most @slack_ms more.
 */
static void test_heartbeat_timeout(uint32_t peer_timeout_ms, uint64_t slack_ms)
{
	uint64_t timeout = peer_timeout_ms ? peer_timeout_ms :
					     KVM_DVM_PEER_TIMEOUT_DEFAULT_MS;
	struct msg *m = &client_msg;
	struct kvm_dvm_state st;
	uint64_t t0, when = 0;
	struct client c;
	bool ok = false;
	int r;

	if (!hmac_ok()) {
		ksft_test_result_skip("silent node 1: %s\n", hmac_why);
		return;
	}
	if (!client_join_timeout(&c, peer_timeout_ms))
		goto out;
	/* A second of normal life, then silence right after a heartbeat. */
	r = client_serve(&c, 1000, 0, NULL, m);
	if (r != -ETIMEDOUT) {
		ksft_print_msg("node 1's link: %s\n", r ? strerror(-r) : "EOF");
		goto out;
	}
	r = client_send(&c, MSG_HEARTBEAT, 0, 0, NULL, 0);
	TEST_ASSERT(!r, "sending HEARTBEAT: %s", strerror(-r));
	t0 = c.last_tx;
	c.silent = true;
	if (!wait_broken(c.vm, timeout + slack_ms + 4000, &st, &when)) {
		ksft_print_msg("node 0 not BROKEN %lu ms after node 1 went silent\n",
			       (unsigned long)(when - t0));
		goto out;
	}
	ksft_print_msg("peer timeout %lu ms: node 0 BROKEN %lu ms after node 1's last message\n",
		       (unsigned long)timeout, (unsigned long)(when - t0));
	/* Not before the timeout; after it, at most a heartbeat and slack. */
	ok = st.broken_node == 1 && st.broken_error == -ETIMEDOUT &&
	     when - t0 >= timeout && when - t0 < timeout + slack_ms;
	if (!ok)
		ksft_print_msg("broken_node %u broken_error %d after %lu ms, want 1, %d, %lu..%lu ms\n",
			       st.broken_node, st.broken_error,
			       (unsigned long)(when - t0), -ETIMEDOUT,
			       (unsigned long)timeout,
			       (unsigned long)(timeout + slack_ms));
out:
	client_end(&c);
	ksft_test_result(ok, "silent node 1, peer timeout %lu ms: BROKEN with -ETIMEDOUT in %lu..%lu ms\n",
			 (unsigned long)timeout, (unsigned long)timeout,
			 (unsigned long)(timeout + slack_ms));
}

/*
 * One DSM request of node 1 to node 0: the reply's status (a positive
 * errno) and payload land in @m. Returns false if no reply came.
 */
static bool dsm_ask(struct client *c, struct msg *m, uint16_t type,
		    const void *req, uint32_t len, uint64_t req_id)
{
	int r = client_send(c, type, 0, req_id, req, len);

	if (!r)
		r = client_serve(c, 10000, type, NULL, m);
	if (r != 1 || m->flags != WIRE_F_REPLY || m->req_id != req_id) {
		ksft_print_msg("DSM request type %u: no reply (%s)\n", type,
			       r == 1 ? "other message" :
			       r ? strerror(-r) : "EOF");
		return false;
	}
	return true;
}

struct dsm_case {
	const char *name;
	uint16_t type;
	/* For FETCH: page, version, op (in write); pages 0 is the right one. */
	struct wire_dsm_req req;
	int status;			/* errno expected in the reply */
};

/* Node 0 manages even pages; node 1 (the client) odd ones. */
static const struct dsm_case dsm_cases[] = {
	{ "REQ to a node that does not manage the page", MSG_DSM_REQ,
	  { .page = 1 }, EINVAL },
	{ "REQ for a page outside the memory", MSG_DSM_REQ,
	  { .page = 1000 }, ERANGE },
	{ "REQ with write 2", MSG_DSM_REQ, { .page = 2, .write = 2 }, EINVAL },
	{ "REQ with nonzero padding", MSG_DSM_REQ,
	  { .page = 2, .pad = { 1 } }, EINVAL },
	{ "REQ claiming a copy the manager does not know", MSG_DSM_REQ,
	  { .page = 4, .have = 1, .version = 9 }, 0 },
	{ "FETCH from a node that is not the manager", MSG_DSM_FETCH,
	  { .page = 2 }, EINVAL },
	{ "FETCH with an unknown op", MSG_DSM_FETCH,
	  { .page = 3, .write = 7 }, EINVAL },
	{ "FETCH_KEEP of a page not held there", MSG_DSM_FETCH,
	  { .page = 3, .write = 1 }, ESTALE },
	{ "INVALIDATE of a page not held there: done already",
	  MSG_DSM_FETCH, { .page = 3 }, 0 },
	{ "REQ from a node whose memory has another size", MSG_DSM_REQ,
	  { .page = 2, .pages = DSM_FILE_PAGES * 2 }, EINVAL },
	{ "FETCH from a manager whose memory has another size",
	  MSG_DSM_FETCH, { .page = 3, .pages = DSM_FILE_PAGES - 1 }, EINVAL },
};

/*
 * DSM messages from an authenticated peer with bad fields: each is
 * refused with an error reply and counted in dvm_dsm_rejected, the link
 * stays up, and a good request still works.
 */
static void test_dsm_bad(void)
{
	struct msg *m = &client_msg;
	struct wire_dsm_fetch fetch;
	struct wire_dsm_req dreq;
	struct kvm_dvm_memory mem = { .size = DSM_FILE_PAGES * 4096 };
	uint64_t done_page = 6, rejected0, m0;
	unsigned int i, want_rejected = 0;
	struct client c;
	bool ok = false;
	int fd = -1;

	if (!hmac_ok()) {
		ksft_test_result_skip("DSM messages with bad fields: %s\n",
				      hmac_why);
		return;
	}
	if (!client_join(&c))
		goto out;
	fd = __vm_ioctl(c.vm, KVM_DVM_CREATE_MEMORY, &mem);
	if (fd < 0) {
		ksft_print_msg("CREATE_MEMORY: %s\n", strerror(errno));
		goto out;
	}
	rejected0 = stat_get(c.vm, "dvm_dsm_rejected", 0);
	m0 = malformed(c.vm);
	for (i = 0; i < ARRAY_SIZE(dsm_cases); i++) {
		const struct dsm_case *dc = &dsm_cases[i];
		const void *req = &dreq;
		uint32_t len = sizeof(dreq);

		dreq = dc->req;
		if (!dreq.pages)
			dreq.pages = DSM_FILE_PAGES;
		if (dc->type == MSG_DSM_FETCH) {
			memset(&fetch, 0, sizeof(fetch));
			fetch.page = dreq.page;
			fetch.op = dreq.write;
			fetch.pages = dreq.pages;
			req = &fetch;
			len = sizeof(fetch);
		}
		if (!dsm_ask(&c, m, dc->type, req, len, 100 + i))
			goto out;
		/* A claimed copy the manager does not know is ignored. */
		if (m->status != dc->status ||
		    (!dc->status && dc->type == MSG_DSM_REQ &&
		     (m->len != 16 || !(m->data[12] & DSM_GRANT_ZERO))) ||
		    (!dc->status && dc->type == MSG_DSM_FETCH && m->len)) {
			ksft_print_msg("%s: status %u len %u, want %d\n",
				       dc->name, m->status, m->len,
				       dc->status);
			goto out;
		}
		if (!dc->status && dc->type == MSG_DSM_REQ) {
			done_page = dc->req.page;
			client_send(&c, MSG_DSM_DONE, 0, 0, &done_page, 8);
		} else if (dc->status) {
			want_rejected++;
		}
	}
	/* A DONE nobody waits for. */
	done_page = 8;
	client_send(&c, MSG_DSM_DONE, 0, 0, &done_page, 8);
	want_rejected++;
	client_serve(&c, 500, 0, NULL, m);
	ok = check_joined(c.vm, 0) && malformed(c.vm) == m0 &&
	     stat_get(c.vm, "dvm_dsm_rejected", 0) - rejected0 ==
	     want_rejected;
	if (!ok)
		ksft_print_msg("dvm_dsm_rejected +%lu (want %u), dvm_malformed +%lu\n",
			       (unsigned long)(stat_get(c.vm, "dvm_dsm_rejected",
							0) - rejected0),
			       want_rejected,
			       (unsigned long)(malformed(c.vm) - m0));
out:
	if (fd >= 0)
		close(fd);
	client_end(&c);
	ksft_test_result(ok, "DSM messages with bad fields: refused, counted, link kept\n");
}

/* ---- randomized wire fuzzing, counted ---- */

/* Frames each fuzzer sends: argv[1] (make check-long: 100000). */
static uint64_t fuzz_frames = 2000;

/* A frame of @type with @len random payload bytes, or a mutated header. */
static void fuzz_frame(struct msg *m, uint16_t type, uint32_t len)
{
	rng_fill(m->data, len);
	msg_init(m, type, 0, 0, NULL, len);
	/* A quarter: one random bit of the header flipped. */
	if (rng_next() % 4 == 0) {
		switch (rng_next() % 7) {
		case 0:
			m->magic ^= 1u << (rng_next() % 32);
			break;
		case 1:
			m->version ^= 1u << (rng_next() % 8);
			break;
		case 2:
			m->pad ^= 1u << (rng_next() % 8);
			break;
		case 3:
			m->type ^= 1u << (rng_next() % 16);
			break;
		case 4:
			m->flags ^= 1u << (rng_next() % 16);
			break;
		case 5:
			m->len ^= 1u << (rng_next() % 32);
			break;
		default:
			m->req_id ^= 1ull << (rng_next() % 64);
			break;
		}
	}
}

/*
 * Before authentication: @fuzz_frames frames, each on a connection of its
 * own (a bad one drops it), HELLOs with random payloads and mutated
 * headers, random bytes, every handshake type. Node 0 must drop or
 * answer each, count what it drops, and the cluster must not notice.
 */
static void test_wire_fuzz_pre(void)
{
	static const uint16_t types[] = { MSG_HELLO, MSG_CHALLENGE, MSG_PROOF,
					  MSG_WELCOME, MSG_REJECT, MSG_ECHO,
					  MSG_HEARTBEAT, MSG_DSM_REQ };
	static const uint32_t lens[] = { 48, 72, 32, 0, 8, 64, 0, 24 };
	struct msg *m = &client_msg;
	uint64_t sent = 0, m0, a0, t0;
	struct joiner ja, jb;
	struct kvm_vm *a, *b;
	uint16_t port = ports_alloc(NR_NODES);
	int fd, i, k;
	bool ok;

	a = vm_create_barebones();
	b = vm_create_barebones();
	join_start(&ja, a, 0, port, 0);
	join_start(&jb, b, 1, port, 0);
	ok = !join_finish(&ja, 2 * JOIN_TIMEOUT_MS) &&
	     !join_finish(&jb, 2 * JOIN_TIMEOUT_MS);
	m0 = malformed(a);
	a0 = auth_failures(a);
	t0 = now_ms();
	while (ok && sent < fuzz_frames) {
		fd = tcp_connect(port, 5000);
		if (fd < 0) {
			ok = false;
			break;
		}
		k = rng_next() % ARRAY_SIZE(types);
		if (rng_next() % 8 == 0) {
			/* Plain garbage. */
			rng_fill(m, sizeof(struct wire_hdr) + 64);
			write_all(fd, m, sizeof(struct wire_hdr) + 64);
		} else {
			if (types[k] == MSG_HELLO && rng_next() % 2)
				valid_hello(m);
			else
				fuzz_frame(m, types[k], lens[k]);
			if (types[k] == MSG_HELLO && rng_next() % 2)
				m->data[rng_next() % 16] ^= 1 << (rng_next() % 8);
			send_or_report(fd, m, -1);
		}
		sent++;
		close(fd);
	}
	/* Let node 0 finish with the last connections before it is asked. */
	for (i = 0; ok && i < 100; i++)
		sleep_ms(20);
	ksft_print_msg("wire fuzz before authentication: %lu frames in %lu ms, dvm_malformed +%lu, dvm_auth_failures +%lu\n",
		       (unsigned long)sent, (unsigned long)(now_ms() - t0),
		       (unsigned long)(malformed(a) - m0),
		       (unsigned long)(auth_failures(a) - a0));
	ok = ok && malformed(a) > m0 && check_joined(a, 0) &&
	     check_joined(b, 1) && ping(a, 0, 1) && ping(b, 1, 0) &&
	     !stat_get(a, "dvm_peers_lost", 0);
	ksft_test_result(ok, "wire fuzz before authentication: %lu frames, seeded; members unaffected\n",
			 (unsigned long)sent);
	vm_leave_free(a);
	vm_leave_free(b);
}

/* The pages of the client's outstanding DSM requests, by request id. */
#define FUZZ_REQS	256
static uint64_t fuzz_req_page[FUZZ_REQS];

/* Drain what node 0 sent; a grant is answered with its DONE. */
static int fuzz_drain(struct client *c, struct msg *m, uint64_t *replies)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	uint64_t page;
	int r;

	while (poll(&pfd, 1, 0) == 1) {
		r = msg_recv(c->fd, m, 5000);
		if (r <= 0)
			return r ? r : -ECONNRESET;
		if (m->type == MSG_ECHO && !(m->flags & WIRE_F_REPLY)) {
			r = client_send(c, MSG_ECHO, WIRE_F_REPLY, m->req_id,
					m->data, m->len);
			if (r)
				return r;
			continue;
		}
		if (!(m->flags & WIRE_F_REPLY))
			continue;
		(*replies)++;
		if (m->type == MSG_DSM_REQ && !m->status) {
			page = fuzz_req_page[m->req_id % FUZZ_REQS];
			r = client_send(c, MSG_DSM_DONE, 0, 0, &page, 8);
			if (r)
				return r;
		}
	}
	if (!c->silent && now_ms() >= c->next_hb) {
		r = client_send(c, MSG_HEARTBEAT, 0, 0, NULL, 0);
		if (r)
			return r;
		c->next_hb = now_ms() + HEARTBEAT_MS;
	}
	return 0;
}

/* One frame from an authenticated node 1: DSM and ECHO fields random. */
static int fuzz_post_frame(struct client *c, struct msg *m, uint64_t seq)
{
	struct wire_dsm_fetch f;
	struct wire_dsm_req q;
	uint64_t page;

	switch (rng_next() % 8) {
	case 0:
	case 1:
		memset(&q, 0, sizeof(q));
		q.page = htole64(rng_next() % 4 ? (rng_next() % DSM_FILE_PAGES) & ~1ull :
						 rng_next());
		q.version = htole32(rng_next() % 4 ? 0 : rng_next());
		q.write = rng_next() % 8 ? rng_next() % 2 : rng_next();
		q.have = rng_next() % 8 ? rng_next() % 2 : rng_next();
		q.pages = htole64(rng_next() % 16 ? DSM_FILE_PAGES : rng_next());
		if (rng_next() % 16 == 0)
			q.pad[rng_next() % 2] = rng_next();
		fuzz_req_page[seq % FUZZ_REQS] = le64toh(q.page);
		return client_send(c, MSG_DSM_REQ, 0, seq, &q, sizeof(q));
	case 2:
	case 3:
		memset(&f, 0, sizeof(f));
		f.page = htole64(rng_next() % 4 ? rng_next() % DSM_FILE_PAGES :
						  rng_next());
		f.version = htole32(rng_next() % 4 ? 0 : rng_next());
		f.op = rng_next() % 8 ? rng_next() % 3 : rng_next();
		f.pages = htole64(rng_next() % 16 ? DSM_FILE_PAGES : rng_next());
		return client_send(c, MSG_DSM_FETCH, 0, seq, &f, sizeof(f));
	case 4:
		page = rng_next() % 4 ? rng_next() % DSM_FILE_PAGES : rng_next();
		return client_send(c, MSG_DSM_DONE, 0, 0, &page, 8);
	case 5:
		rng_fill(m->data, 64);
		return client_send(c, MSG_ECHO, 0, seq, m->data,
				   rng_next() % 64);
	case 6:
		/* A reply to no request, or to one long answered. */
		return client_send(c, MSG_ECHO, WIRE_F_REPLY,
				   rng_next() % 2 ? rng_next() | 1 : seq, NULL, 0);
	default:
		/* Anything: most of these end the link. */
		if (rng_next() % 16)
			return client_send(c, MSG_HEARTBEAT, 0, 0, NULL, 0);
		fuzz_frame(m, rng_next() % 20, rng_next() % 64);
		return msg_send(c->fd, m, -1);
	}
}

/*
 * After authentication: @fuzz_frames frames from node 1 (the test) to
 * node 0: DSM requests, fetches and DONEs with random fields, ECHOs,
 * stray replies, mutated frames. Node 0 answers or refuses each (counted)
 * and keeps the link, or breaks the cluster with the documented error
 * for the frames that must (EPROTO; EIO when node 1 claims to have lost
 * a page only it had), after which node 1 joins again.
 */
static void test_wire_fuzz_post(void)
{
	struct kvm_dvm_memory mem = { .size = DSM_FILE_PAGES * 4096 };
	uint64_t sent = 0, replies = 0, breaks = 0, t0, seq = 1000;
	uint64_t by_err[3] = { 0 }, rejected = 0, late = 0;
	struct msg *m = &client_msg;
	struct kvm_dvm_state st;
	struct client c;
	uint64_t when;
	bool ok = true;
	int fd = -1, r, i;

	if (!hmac_ok()) {
		ksft_test_result_skip("wire fuzz after authentication: %s\n",
				      hmac_why);
		return;
	}
	t0 = now_ms();
	while (ok && sent < fuzz_frames) {
		if (!client_join(&c)) {
			ok = false;
			break;
		}
		fd = __vm_ioctl(c.vm, KVM_DVM_CREATE_MEMORY, &mem);
		if (fd < 0) {
			ksft_print_msg("CREATE_MEMORY: %s\n", strerror(errno));
			ok = false;
			break;
		}
		c.next_hb = now_ms() + HEARTBEAT_MS;
		r = 0;
		while (!r && sent < fuzz_frames) {
			r = fuzz_post_frame(&c, m, seq++);
			if (!r)
				sent++;
			if (!r)
				r = fuzz_drain(&c, m, &replies);
		}
		/* Out of frames: the link must still be up, or be broken. */
		for (i = 0; !r && i < 30; i++) {
			sleep_ms(10);
			r = fuzz_drain(&c, m, &replies);
		}
		/*
		 * A break for a page node 1 lost (EIO) leaves node 1's link
		 * up: node 0 then sends it nothing but BROKEN or LEAVE.
		 */
		if (!r && state_of(c.vm) != KVM_DVM_STATE_BROKEN) {
			if (!check_joined(c.vm, 0))
				ok = false;
		} else {
			breaks++;
			if (!wait_broken(c.vm, 10000, &st, &when)) {
				ksft_print_msg("the link went, node 0 is not BROKEN: state %u\n",
					       st.state);
				ok = false;
			} else if (st.broken_node != 1 ||
				   (st.broken_error != -EPROTO &&
				    st.broken_error != -EIO &&
				    st.broken_error != -ECONNRESET)) {
				ksft_print_msg("BROKEN by node %u with %d\n",
					       st.broken_node, st.broken_error);
				ok = false;
			} else {
				by_err[st.broken_error == -EPROTO ? 0 :
				       st.broken_error == -EIO ? 1 : 2]++;
			}
		}
		rejected += stat_get(c.vm, "dvm_dsm_rejected", 0);
		late += stat_get(c.vm, "dvm_late_replies", 0);
		close(fd);
		client_end(&c);
	}
	ksft_print_msg("wire fuzz after authentication: %lu frames in %lu ms, %lu replies, %lu DSM refusals, %lu late replies, %lu breaks (EPROTO %lu, EIO %lu, ECONNRESET %lu)\n",
		       (unsigned long)sent, (unsigned long)(now_ms() - t0),
		       (unsigned long)replies, (unsigned long)rejected,
		       (unsigned long)late, (unsigned long)breaks,
		       (unsigned long)by_err[0], (unsigned long)by_err[1],
		       (unsigned long)by_err[2]);
	ok = ok && sent == fuzz_frames && replies && rejected;
	ksft_test_result(ok, "wire fuzz after authentication: %lu frames, %lu replies, %lu refusals, %lu breaks each with the documented error\n",
			 (unsigned long)sent, (unsigned long)replies,
			 (unsigned long)rejected, (unsigned long)breaks);
}

/* A stranger's connections at once, from 127.0.0.2: more than the cap. */
#define FLOOD_CONNS	160

/*
 * While node 0 joins, a stranger (127.0.0.2, without the key) sends it a
 * PROOF with a wrong MAC, a REJECT, and a flood of connections it keeps
 * open. Node 0's JOIN must not fail for any of that: the real node 1
 * joins next and both succeed; the stranger costs only its own
 * connections (counted).
 */
static void test_stranger_during_join(void)
{
	static int flood[FLOOD_CONNS];
	struct msg *m = &client_msg;
	uint16_t port = ports_alloc(NR_NODES);
	uint32_t stranger = INADDR_LOOPBACK + 1;
	struct wire_error rej = { .error = htole32(EACCES) };
	uint64_t a0, m0;
	struct joiner ja, jb;
	struct kvm_vm *a, *b;
	bool ok = true;
	int fd, i, n = 0, ra, rb;

	if (!hmac_ok()) {
		ksft_test_result_skip("stranger during a join: %s\n", hmac_why);
		return;
	}
	a = vm_create_barebones();
	b = vm_create_barebones();
	join_start(&ja, a, 0, port, 0);
	fd = tcp_connect_from(port, stranger, JOIN_TIMEOUT_MS);
	a0 = auth_failures(a);
	m0 = malformed(a);
	if (fd < 0 || !handshake(fd, false, m)) {
		ok = false;
	} else if (wait_closed(fd, CLOSE_TIMEOUT_MS)) {
		ksft_print_msg("a bad PROOF: node 0 kept the connection\n");
		ok = false;
	}
	if (fd >= 0)
		close(fd);
	fd = tcp_connect_from(port, stranger, 5000);
	if (fd >= 0) {
		valid_hello(m);
		send_or_report(fd, m, -1);
		msg_recv(fd, m, 10000);		/* the CHALLENGE */
		msg_init(m, MSG_REJECT, 0, 0, &rej, sizeof(rej));
		send_or_report(fd, m, -1);
		wait_closed(fd, CLOSE_TIMEOUT_MS);
		close(fd);
	}
	for (i = 0; i < FLOOD_CONNS; i++) {
		flood[i] = tcp_connect_from(port, stranger, 1000);
		n += flood[i] >= 0;
	}
	if (join_done(&ja)) {
		ksft_print_msg("node 0's JOIN ended during the attack: %s\n",
			       strerror(-ja.ret));
		ok = false;
	}
	/* The member arrives while the stranger's connections are open. */
	join_start(&jb, b, 1, port, 0);
	rb = join_finish(&jb, 2 * JOIN_TIMEOUT_MS);
	ra = join_finish(&ja, 2 * JOIN_TIMEOUT_MS);
	for (i = 0; i < FLOOD_CONNS; i++)
		if (flood[i] >= 0)
			close(flood[i]);
	ksft_print_msg("stranger: %d connections held open; node 0: auth failures +%lu, malformed +%lu; JOIN %s / %s\n",
		       n, (unsigned long)(auth_failures(a) - a0),
		       (unsigned long)(malformed(a) - m0), strerror(-ra),
		       strerror(-rb));
	ok = ok && !ra && !rb && auth_failures(a) > a0 &&
	     check_joined(a, 0) && check_joined(b, 1) && ping(a, 0, 1);
	vm_leave_free(a);
	vm_leave_free(b);
	ksft_test_result(ok, "a stranger during a join (bad PROOF, REJECT, %d connections held): both members join\n",
			 FLOOD_CONNS);
}

/* KVM_DVM_PING of node 0 to node 1 (the test), from a thread. */
struct pinger {
	struct kvm_vm *vm;
	pthread_t thread;
	int ret;
	int err;
	int done;
};

static void *pinger_thread(void *arg)
{
	struct pinger *pg = arg;
	struct kvm_dvm_ping p;

	memset(&p, 0, sizeof(p));
	p.node = 1;
	p.size = 8;
	p.count = 1;
	p.depth = 1;
	pg->ret = __vm_ioctl(pg->vm, KVM_DVM_PING, &p);
	pg->err = pg->ret ? errno : 0;
	__atomic_store_n(&pg->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * Node 1 answers node 0's ECHO with @status: node 0's PING must fail
 * with @want, and @malformed more malformed messages are counted.
 */
static bool peer_status_case(struct client *c, uint16_t status, int want,
			     uint64_t malformed_more)
{
	struct msg *m = &client_msg;
	struct pinger pg = { .vm = c->vm };
	uint64_t m0 = malformed(c->vm);
	int r;

	c->echo_status = status;
	pthread_create(&pg.thread, NULL, pinger_thread, &pg);
	r = client_serve(c, 20000, -1, &pg.done, m);
	pthread_join(pg.thread, NULL);
	if (r != 2 || pg.ret != -1 || pg.err != want ||
	    malformed(c->vm) != m0 + malformed_more) {
		ksft_print_msg("ECHO answered with status %u: serve %d, PING %d (%s), want %s; malformed +%lu, want +%lu\n",
			       status, r, pg.ret, strerror(pg.err),
			       strerror(want),
			       (unsigned long)(malformed(c->vm) - m0),
			       (unsigned long)malformed_more);
		return false;
	}
	return true;
}

/*
 * A reply to a request nobody waits for any more (a PING that timed out)
 * is counted in dvm_late_replies, its payload dropped: the link stays up.
 */
static bool late_reply_case(struct client *c)
{
	static uint8_t data[4096];
	struct msg *m = &client_msg;
	uint64_t late0 = stat_get(c->vm, "dvm_late_replies", 0);
	uint64_t m0 = malformed(c->vm);
	int r;

	rng_fill(data, sizeof(data));
	r = client_send(c, MSG_ECHO, WIRE_F_REPLY, 0xdead0001, data,
			sizeof(data));
	if (!r)
		r = client_serve(c, 1000, -1, NULL, m);
	/* Served a second of heartbeats: the link is still there. */
	if (r != -ETIMEDOUT ||
	    stat_get(c->vm, "dvm_late_replies", 0) != late0 + 1 ||
	    malformed(c->vm) != m0) {
		ksft_print_msg("late reply: serve %s, late +%lu (want 1), malformed +%lu (want 0)\n",
			       strerror(-r),
			       (unsigned long)(stat_get(c->vm, "dvm_late_replies", 0) - late0),
			       (unsigned long)(malformed(c->vm) - m0));
		return false;
	}
	return true;
}

/*
 * A peer's errno is a number like any other: only a whitelist passes
 * (a status of 512 would reach userspace as ERESTARTSYS), its ENOMEM is
 * EREMOTEIO, the rest EPROTO and counted. The link stays up.
 */
static void test_peer_status(void)
{
	struct client c;
	bool ok = false;

	if (!hmac_ok()) {
		ksft_test_result_skip("peer errnos: %s\n", hmac_why);
		return;
	}
	if (!client_join(&c))
		goto out;
	ok = peer_status_case(&c, 512, EPROTO, 1) &&
	     peer_status_case(&c, 0xffff, EPROTO, 1) &&
	     peer_status_case(&c, ENOMEM, EREMOTEIO, 0) &&
	     peer_status_case(&c, ESTALE, ESTALE, 0);
	c.echo_status = 0;
	ok = ok && late_reply_case(&c) && check_joined(c.vm, 0);
out:
	client_end(&c);
	ksft_test_result(ok, "peer errnos: 512 and 65535 are EPROTO (counted), ENOMEM EREMOTEIO, ESTALE passes; a late reply is counted, not fatal; link up\n");
}

int main(int argc, char *argv[])
{
	struct sigaction sa;
	int i;

	if (argc > 1)
		fuzz_frames = strtoull(argv[1], NULL, 0);
	if (argc > 2)
		rng_state = strtoull(argv[2], NULL, 0);

	ksft_print_header();
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_DVM) & KVM_DVM_CAP_CLUSTER);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = noop_handler;
	sigaction(SIGUSR1, &sa, NULL);	/* no SA_RESTART: JOIN gets -EINTR */
	signal(SIGPIPE, SIG_IGN);

	next_port = 10000 + (getpid() % 1000) * 20;
	if (argc <= 2)
		rng_state = ((uint64_t)getpid() << 32) ^ now_ms() ^
			    0x9e3779b97f4a7c15ull;
	ksft_print_msg("seed %lu (to repeat: %s %lu %lu)\n",
		       (unsigned long)rng_state, argv[0],
		       (unsigned long)fuzz_frames, (unsigned long)rng_state);
	hmac_init();

	ksft_set_plan(NR_TESTS);
	ksft_print_msg("ports from %u, HMAC %s%s\n", next_port,
		       hmac_ok() ? "via AF_ALG" : "unavailable: ", hmac_why);
	test_pre_auth();
	test_echo();
	for (i = 0; i < NR_POST_CASES; i++)
		run_post_case(&post_cases[i]);
	test_heartbeat_timeout(0, 3000);
	test_heartbeat_timeout(7000, 3000);
	test_dsm_bad();
	test_irq_bad();
	test_io_bad();
	test_clock();
	test_vm_control();
	test_peer_status();
	test_wire_fuzz_pre();
	test_wire_fuzz_post();
	test_stranger_during_join();
	ksft_finished();
}
