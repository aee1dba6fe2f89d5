// SPDX-License-Identifier: GPL-2.0
/*
 * dvm_ioctl_fuzz_test: random DVM ioctls from several threads at once,
 * against VMs whose DVM state keeps changing.
 *
 * Four threads make a given number of calls between them, each one of the
 * nine DVM ioctls with an argument that is valid; valid but for one field
 * set to a boundary value (0, 1, the limit, one above it, ~0, random); NULL;
 * in a PROT_NONE page; in a read-only page; cut by the end of a mapping; or
 * random bytes. The VMs are a pool of four. Meanwhile a driver thread joins
 * two of them as a cluster over loopback TCP, places their vCPUs, creates
 * their memory, pings, leaves, and starts again with another pair, so that
 * the calls meet every state: NONE, JOINED, RUNNING, BROKEN and LEFT. Now
 * and then a thread also runs a vCPU, uses a memory file a CREATE_MEMORY
 * gave it, or has its call interrupted by a signal.
 *
 * Every call must return 0 (a file descriptor for CREATE_MEMORY) or -1 with
 * an errno that call may return, and none may last 30 s. Results are
 * counted by call and errno and printed; an errno the documentation does
 * not give for a call, but that is one of the DVM's, is printed, not
 * failed. Afterwards a fresh cluster must work: join, placement, KVM_RUN,
 * PING, memory written on one node and read on the other, LEAVE.
 *
 * Usage: dvm_ioctl_fuzz_test [calls [seed]]
 * The seed is printed first. Thread i draws its random numbers from seed + i,
 * so a failing run can be repeated; what a call meets depends on the other
 * threads, so the results, and the calls that follow from them, may differ.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/syscall.h>

#include "dvm_util.h"

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id	_sigev_un._tid
#endif

#define DEFAULT_CALLS		20000
/* Enough calls that each ioctl gets its share (see SCHEDULE). */
#define MIN_CALLS		1000
#define NR_FUZZERS		4
#define DRIVER_SLOT		NR_FUZZERS	/* the driver's call_slot */
#define NR_SLOTS		(NR_FUZZERS + 1)
#define CALL_LIMIT_NS		(30 * 1000000000ull)
#define WATCHDOG_TICK_US	100000

/*
 * The pool: VM 0 (two vCPUs) never joins a cluster and stays NONE; the
 * driver joins pairs of VMs 1 (barebones), 2 (two vCPUs) and 3 (barebones).
 */
#define NR_POOL			4
#define NR_VCPUS		2

/*
 * Fuzzed joins never meet a real cluster: 127.0.0.1 (other loopback
 * addresses at most), ports above Linux's ephemeral range and outside
 * dvm_ports()' windows, a window per thread. Their connect timeouts are
 * short, and at most FUZZ_MAX_SLOW_JOINS of them may be valid at once;
 * a thread that finds them all taken makes its argument invalid instead.
 */
#define FUZZ_PORT_BASE		61000
#define FUZZ_PORT_WINDOW	1000
#define FUZZ_JOIN_MIN_MS	50
#define FUZZ_JOIN_MAX_MS	300
#define FUZZ_MAX_SLOW_JOINS	2
#define FUZZ_PING_MAX_COUNT	64
/* The driver's memory; valid PIN ranges lie in it. */
#define FUZZ_MEM_PAGES		16
/* Valid fuzzed memories; bigger ones only if the kernel must refuse them. */
#define FUZZ_MEM_MAX_PAGES	256
/* One call in this many is interrupted by SIGUSR1 after 1 to 50 ms. */
#define FUZZ_SIGNAL_ONE_IN	32
#define FUZZ_SIGNAL_MAX_MS	50
/* One call in this many is followed by a KVM_RUN. */
#define FUZZ_RUN_ONE_IN		16
/* A fuzzed LEAVE hits the driver's cluster once in this many. */
#define FUZZ_LEAVE_DRIVER_ONE_IN 128

/* The driver's cluster. */
#define DRIVER_JOIN_MS		10000
#define DRIVER_GRACE_MS		5000
#define DRIVER_PLACE_MS		5000
#define DRIVER_PING_COUNT	16

/* The calls, and the other operations counted with them. */
enum {
	OP_JOIN,
	OP_SET_VCPUS,
	OP_GET_STATE,
	OP_LEAVE,
	OP_PING,
	OP_CREATE_MEMORY,
	OP_PIN,
	OP_UNPIN,
	OP_VM_CONTROL,
	NR_IOCTLS,
	OP_RUN = NR_IOCTLS,
	OP_MMAP,
	OP_ACCESS,
	OP_MMAP_PRIVATE,
	OP_FTRUNCATE,
	NR_OPS
};

/* Each block of SCHEDULE calls of a thread: these ioctls, shuffled. */
#define SCHEDULE		16
static const uint8_t schedule[SCHEDULE] = {
	OP_JOIN, OP_LEAVE, OP_SET_VCPUS, OP_SET_VCPUS,
	OP_GET_STATE, OP_GET_STATE, OP_VM_CONTROL, OP_PING,
	OP_PING, OP_CREATE_MEMORY, OP_CREATE_MEMORY, OP_PIN,
	OP_PIN, OP_VM_CONTROL, OP_UNPIN, OP_UNPIN,
};

/* Arguments. */
enum {
	KIND_VALID,
	KIND_MUTATED,
	KIND_NULL,
	KIND_PROT_NONE,
	KIND_RDONLY,
	KIND_STRADDLE,
	KIND_RANDOM,
	NR_KINDS
};

static const char * const kind_names[NR_KINDS] = {
	"valid", "mutated", "NULL", "PROT_NONE", "read-only", "straddling",
	"random",
};

/* Results: 0 (success), an errno, or one of these. */
#define NR_ERRNOS		134
#define RES_SIGBUS		NR_ERRNOS
#define RES_BADRET		(NR_ERRNOS + 1)
#define NR_RES			(NR_ERRNOS + 2)

#define ERRNO_NAME(e)		{ e, #e }
static const struct {
	int e;
	const char *name;
} errno_names[] = {
	ERRNO_NAME(EPERM), ERRNO_NAME(ENOENT), ERRNO_NAME(ESRCH),
	ERRNO_NAME(EINTR), ERRNO_NAME(EIO), ERRNO_NAME(ENXIO),
	ERRNO_NAME(E2BIG), ERRNO_NAME(EBADF), ERRNO_NAME(EAGAIN),
	ERRNO_NAME(ENOMEM), ERRNO_NAME(EACCES), ERRNO_NAME(EFAULT),
	ERRNO_NAME(EBUSY), ERRNO_NAME(EEXIST), ERRNO_NAME(ENODEV),
	ERRNO_NAME(EINVAL), ERRNO_NAME(ENFILE), ERRNO_NAME(EMFILE),
	ERRNO_NAME(ENOTTY), ERRNO_NAME(ENOSPC), ERRNO_NAME(EPIPE),
	ERRNO_NAME(ERANGE), ERRNO_NAME(ENOLINK), ERRNO_NAME(EPROTO),
	ERRNO_NAME(EOVERFLOW), ERRNO_NAME(EOPNOTSUPP),
	ERRNO_NAME(EADDRINUSE), ERRNO_NAME(EADDRNOTAVAIL),
	ERRNO_NAME(ENETUNREACH), ERRNO_NAME(ECONNABORTED),
	ERRNO_NAME(ECONNRESET), ERRNO_NAME(ENOBUFS), ERRNO_NAME(ENOTCONN),
	ERRNO_NAME(ETIMEDOUT), ERRNO_NAME(ECONNREFUSED),
	ERRNO_NAME(EHOSTUNREACH), ERRNO_NAME(ESTALE), ERRNO_NAME(EREMOTE),
	ERRNO_NAME(EREMOTEIO), ERRNO_NAME(EXDEV), ERRNO_NAME(ESHUTDOWN),
};

/* What each call may return (Documentation/virt/kvm/dvm.rst, section 3). */
static const int join_errnos[] = {
	EINVAL, EBUSY, EOPNOTSUPP, ENODEV, EADDRINUSE, EADDRNOTAVAIL, EACCES,
	ETIMEDOUT, EEXIST, ECONNRESET, EPROTO, ECONNABORTED, 0
};

static const int vcpus_errnos[] = {
	ENOTCONN, ENOLINK, EBUSY, EINVAL, EEXIST, ENXIO, ENOENT, EXDEV, ERANGE,
	EPROTO, ETIMEDOUT, 0
};

static const int state_errnos[] = { EINVAL, E2BIG, 0 };

static const int leave_errnos[] = { ENOTCONN, 0 };

static const int ping_errnos[] = {
	ENOTCONN, ENOLINK, EINVAL, EIO, ETIMEDOUT, EREMOTEIO, EPROTO, 0
};

static const int memory_errnos[] = {
	ENOTCONN, ENOLINK, EINVAL, EEXIST, EMFILE, 0
};

static const int pin_errnos[] = {
	ENOTCONN, ENOLINK, ENXIO, EINVAL, EOVERFLOW, 0
};

static const int run_errnos[] = { EBUSY, EREMOTE, ENOLINK, 0 };

static const int vm_control_errnos[] = {
	ENOTCONN, ENOLINK, EBUSY, EPERM, EINVAL, ESHUTDOWN, ETIMEDOUT, 0
};

/* Any call. */
static const int any_errnos[] = { EFAULT, EINTR, ENOMEM, 0 };

/* Not documented for the call, but the DVM's: printed, not failed. */
static const int dvm_errnos[] = {
	EFAULT, EINVAL, EBUSY, ENOTCONN, ENOLINK, ETIMEDOUT, ECONNREFUSED,
	ECONNRESET, ECONNABORTED, EADDRINUSE, EADDRNOTAVAIL, EEXIST, ENXIO,
	ENODEV, EOPNOTSUPP, E2BIG, EREMOTE, EOVERFLOW, EPROTO, EIO, EINTR,
	ENOMEM, EMFILE, EPERM, EREMOTEIO, ERANGE, ESHUTDOWN, 0
};

/* The fields of an argument, each mutated on its own. */
enum {
	F_INT,		/* an integer of 4 or 8 bytes */
	F_PAGES,	/* 8 bytes, valid values are multiples of 4096 */
	F_BYTES,	/* the key */
	F_PTR,		/* a user pointer */
	F_TABLE,	/* the join's node table, at its pointer */
	F_LOCAL,	/* the bitmap of local vCPUs */
};

struct field {
	const char *name;
	uint16_t off;
	uint8_t type;
	uint8_t size;
	uint64_t max;	/* the largest valid value */
};

#define MAX_FIELDS		16
#define FIELD(s, m, t, max)						\
	{ #m, offsetof(struct s, m), t, sizeof(((struct s *)0)->m), max }

static const struct field join_fields[] = {
	FIELD(kvm_dvm_join, flags, F_INT, KVM_DVM_JOIN_FLAGS),
	FIELD(kvm_dvm_join, node_id, F_INT, KVM_DVM_MAX_NODES - 1),
	FIELD(kvm_dvm_join, nr_nodes, F_INT, KVM_DVM_MAX_NODES),
	FIELD(kvm_dvm_join, transport, F_INT, KVM_DVM_TRANSPORT_RDMA),
	FIELD(kvm_dvm_join, connect_timeout_ms, F_INT, 600000),
	FIELD(kvm_dvm_join, key_len, F_INT, KVM_DVM_MAX_KEY),
	FIELD(kvm_dvm_join, key, F_BYTES, 0),
	FIELD(kvm_dvm_join, addrs, F_PTR, 0),
	{ "addrs[]", offsetof(struct kvm_dvm_join, addrs), F_TABLE, 0, 0 },
	FIELD(kvm_dvm_join, failed_node, F_INT, KVM_DVM_NO_NODE),
	FIELD(kvm_dvm_join, pad, F_INT, 0),
	FIELD(kvm_dvm_join, peer_timeout_ms, F_INT,
	      KVM_DVM_PEER_TIMEOUT_MAX_MS),
	FIELD(kvm_dvm_join, pad2, F_INT, 0),
	FIELD(kvm_dvm_join, reserved[0], F_INT, 0),
	FIELD(kvm_dvm_join, reserved[1], F_INT, 0),
	FIELD(kvm_dvm_join, reserved[2], F_INT, 0),
};

static const struct field vcpus_fields[] = {
	FIELD(kvm_dvm_vcpus, flags, F_INT, 0),
	FIELD(kvm_dvm_vcpus, nr_vcpus, F_INT, KVM_DVM_MAX_VCPUS),
	FIELD(kvm_dvm_vcpus, failed_node, F_INT, KVM_DVM_NO_NODE),
	FIELD(kvm_dvm_vcpus, failed_vcpu, F_INT, KVM_DVM_NO_NODE),
	FIELD(kvm_dvm_vcpus, reserved[0], F_INT, 0),
	FIELD(kvm_dvm_vcpus, reserved[1], F_INT, 0),
	{ "local[]", offsetof(struct kvm_dvm_vcpus, local), F_LOCAL, 0, 0 },
};

static const struct field state_fields[] = {
	FIELD(kvm_dvm_state, flags, F_INT, 0),
	FIELD(kvm_dvm_state, state, F_INT, KVM_DVM_STATE_LEFT),
	FIELD(kvm_dvm_state, node_id, F_INT, KVM_DVM_MAX_NODES - 1),
	FIELD(kvm_dvm_state, nr_nodes, F_INT, KVM_DVM_MAX_NODES),
	FIELD(kvm_dvm_state, transport, F_INT, KVM_DVM_TRANSPORT_RDMA),
	FIELD(kvm_dvm_state, nr_vcpus, F_INT, KVM_DVM_MAX_VCPUS),
	FIELD(kvm_dvm_state, broken_node, F_INT, KVM_DVM_NO_NODE),
	FIELD(kvm_dvm_state, broken_error, F_INT, 0xffffffffu),
	FIELD(kvm_dvm_state, nr_links, F_INT, KVM_DVM_MAX_NODES),
	FIELD(kvm_dvm_state, pad, F_INT, 0),
	FIELD(kvm_dvm_state, links, F_PTR, 0),
	FIELD(kvm_dvm_state, reserved[0], F_INT, 0),
	FIELD(kvm_dvm_state, reserved[1], F_INT, 0),
	FIELD(kvm_dvm_state, reserved[2], F_INT, 0),
	FIELD(kvm_dvm_state, reserved[3], F_INT, 0),
};

static const struct field ping_fields[] = {
	FIELD(kvm_dvm_ping, flags, F_INT, 0),
	FIELD(kvm_dvm_ping, node, F_INT, KVM_DVM_MAX_NODES - 1),
	FIELD(kvm_dvm_ping, size, F_INT, 4096),
	FIELD(kvm_dvm_ping, count, F_INT, 1000000),
	FIELD(kvm_dvm_ping, depth, F_INT, 256),
	FIELD(kvm_dvm_ping, pad, F_INT, 0),
	FIELD(kvm_dvm_ping, min_ns, F_INT, ~0ull),
	FIELD(kvm_dvm_ping, avg_ns, F_INT, ~0ull),
	FIELD(kvm_dvm_ping, max_ns, F_INT, ~0ull),
	FIELD(kvm_dvm_ping, total_ns, F_INT, ~0ull),
	FIELD(kvm_dvm_ping, reserved[0], F_INT, 0),
	FIELD(kvm_dvm_ping, reserved[1], F_INT, 0),
};

static const struct field memory_fields[] = {
	FIELD(kvm_dvm_memory, size, F_PAGES, KVM_DVM_MAX_MEMORY),
	FIELD(kvm_dvm_memory, flags, F_INT, 0),
	FIELD(kvm_dvm_memory, pad, F_INT, 0),
	FIELD(kvm_dvm_memory, reserved[0], F_INT, 0),
	FIELD(kvm_dvm_memory, reserved[1], F_INT, 0),
	FIELD(kvm_dvm_memory, reserved[2], F_INT, 0),
	FIELD(kvm_dvm_memory, reserved[3], F_INT, 0),
};

static const struct field pin_fields[] = {
	FIELD(kvm_dvm_pin, offset, F_PAGES, (FUZZ_MEM_PAGES - 1) * 4096ull),
	FIELD(kvm_dvm_pin, size, F_PAGES, FUZZ_MEM_PAGES * 4096ull),
	FIELD(kvm_dvm_pin, flags, F_INT, 0),
	FIELD(kvm_dvm_pin, pad, F_INT, 0),
	FIELD(kvm_dvm_pin, reserved[0], F_INT, 0),
	FIELD(kvm_dvm_pin, reserved[1], F_INT, 0),
};

static const struct field vm_control_fields[] = {
	FIELD(kvm_dvm_vm_control, op, F_INT, KVM_DVM_VM_POWEROFF),
	FIELD(kvm_dvm_vm_control, flags, F_INT, 0),
	FIELD(kvm_dvm_vm_control, failed_node, F_INT, KVM_DVM_NO_NODE),
	FIELD(kvm_dvm_vm_control, pad, F_INT, 0),
	FIELD(kvm_dvm_vm_control, reserved[0], F_INT, 0),
	FIELD(kvm_dvm_vm_control, reserved[1], F_INT, 0),
};

struct op_desc {
	const char *name;
	unsigned long cmd;
	size_t size;
	const struct field *fields;
	int nr_fields;
	const int *errnos;	/* NULL: results not judged */
};

#define OP(c, s, f, e)	{ #c, c, s, f, ARRAY_SIZE(f), e }

static const struct op_desc ops[NR_OPS] = {
	[OP_JOIN] = OP(KVM_DVM_JOIN, sizeof(struct kvm_dvm_join),
		       join_fields, join_errnos),
	[OP_SET_VCPUS] = OP(KVM_DVM_SET_LOCAL_VCPUS,
			    sizeof(struct kvm_dvm_vcpus), vcpus_fields,
			    vcpus_errnos),
	[OP_GET_STATE] = OP(KVM_DVM_GET_STATE, sizeof(struct kvm_dvm_state),
			    state_fields, state_errnos),
	[OP_LEAVE] = { "KVM_DVM_LEAVE", KVM_DVM_LEAVE, 0, NULL, 0,
		       leave_errnos },
	[OP_PING] = OP(KVM_DVM_PING, sizeof(struct kvm_dvm_ping), ping_fields,
		       ping_errnos),
	[OP_CREATE_MEMORY] = OP(KVM_DVM_CREATE_MEMORY,
				sizeof(struct kvm_dvm_memory), memory_fields,
				memory_errnos),
	[OP_PIN] = OP(KVM_DVM_PIN, sizeof(struct kvm_dvm_pin), pin_fields,
		      pin_errnos),
	[OP_UNPIN] = OP(KVM_DVM_UNPIN, sizeof(struct kvm_dvm_pin), pin_fields,
			pin_errnos),
	[OP_VM_CONTROL] = OP(KVM_DVM_VM_CONTROL,
			     sizeof(struct kvm_dvm_vm_control),
			     vm_control_fields, vm_control_errnos),
	[OP_RUN] = { "KVM_RUN", KVM_RUN, 0, NULL, 0, run_errnos },
	[OP_MMAP] = { "mmap(MAP_SHARED) of the memory file" },
	[OP_ACCESS] = { "access through that mapping" },
	[OP_MMAP_PRIVATE] = { "mmap(MAP_PRIVATE) of the memory file" },
	[OP_FTRUNCATE] = { "ftruncate() of the memory file" },
};

union fuzz_arg {
	struct kvm_dvm_join join;
	struct kvm_dvm_vcpus vcpus;
	struct kvm_dvm_state state;
	struct kvm_dvm_ping ping;
	struct kvm_dvm_memory mem;
	struct kvm_dvm_pin pin;
	struct kvm_dvm_vm_control ctl;
	uint8_t bytes[256];
};

/* What a thread is doing, for the watchdog. */
struct call_slot {
	uint64_t start_ns;	/* 0 between calls */
	int op;
	int vm;
	int kind;
	const char *field;
	uint64_t value;
};

struct pool_vm {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpus[NR_VCPUS];
	int nr_vcpus;
	int parked_fd;		/* a memory file a thread left open, or -1 */
	int joining;		/* valid fuzzed joins running on it */
};

struct fuzzer {
	int id;
	pthread_t thread;
	uint64_t rng;
	uint64_t calls;		/* DVM ioctls to make */
	uint64_t made;
	uint64_t counts[NR_OPS][NR_RES];
	uint64_t kinds[NR_IOCTLS][NR_KINDS];
	uint64_t mutated[NR_IOCTLS][MAX_FIELDS];
	uint64_t states[KVM_DVM_STATE_LEFT + 2];	/* GET_STATE saw */
	uint64_t exits[3];	/* KVM_RUN: ucall, DVM_BROKEN, other */
	uint64_t signals;
	struct call_slot *slot;
	int timer;
	bool has_timer;
	uint16_t port_next;
	/* The last PIN that succeeded, for a valid UNPIN. */
	bool pinned;
	int pin_vm;
	uint64_t pin_offset;
	uint64_t pin_size;
	/* A page, then a PROT_NONE page: for arguments, for tables. */
	uint8_t *edge;
	uint8_t *tedge;
	/* Two pages seen read-only, and writable at ro_rw. */
	uint8_t *ro;
	uint8_t *ro_rw;
	union fuzz_arg arg;
	struct kvm_dvm_node_addr table[KVM_DVM_MAX_NODES];
	struct kvm_dvm_link links[KVM_DVM_MAX_NODES];
};

static struct {
	uint64_t cycles, joined, placed, memories, pings;
} drv;

static struct pool_vm pool[NR_POOL];
static struct call_slot slots[NR_SLOTS];
static uint64_t seed;
static uint64_t host_ram;
static long psz;
static int protected_vms;	/* mask of the pool VMs the driver uses */
static int slow_joins;
static int driver_stop;
static int watchdog_stop;
static int fuzz_failed;
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
static char fail_msg[512];

/* xorshift64*, its state from splitmix64 so that it is never 0. */
static void rng_init(uint64_t *s, uint64_t v)
{
	v += 0x9e3779b97f4a7c15ull;
	v = (v ^ (v >> 30)) * 0xbf58476d1ce4e5b9ull;
	v = (v ^ (v >> 27)) * 0x94d049bb133111ebull;
	v ^= v >> 31;
	*s = v ? v : 1;
}

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

static uint64_t rnd_below(uint64_t *s, uint64_t n)
{
	return n ? rnd(s) % n : 0;
}

static uint64_t u64_min(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static bool errno_in(const int *list, int e)
{
	for (; list && *list; list++)
		if (*list == e)
			return true;
	return false;
}

enum { RES_DOCUMENTED, RES_UNDOCUMENTED, RES_FORBIDDEN };

static int errno_class(int op, int e)
{
	if (!ops[op].errnos || errno_in(any_errnos, e) ||
	    errno_in(ops[op].errnos, e))
		return RES_DOCUMENTED;
	return errno_in(dvm_errnos, e) ? RES_UNDOCUMENTED : RES_FORBIDDEN;
}

static int res_index(int ret, int err)
{
	if (ret != -1)
		return ret ? RES_BADRET : 0;
	return err > 0 && err < NR_ERRNOS ? err : RES_BADRET;
}

static const char *res_name(int r, char *buf, size_t size)
{
	int i;

	if (!r)
		return "ok";
	if (r == RES_SIGBUS)
		return "SIGBUS";
	if (r == RES_BADRET)
		return "bad return value";
	for (i = 0; i < ARRAY_SIZE(errno_names); i++)
		if (errno_names[i].e == r)
			return errno_names[i].name;
	snprintf(buf, size, "errno %d", r);
	return buf;
}

static void fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&fail_lock);
	if (!fuzz_failed) {
		va_start(ap, fmt);
		vsnprintf(fail_msg, sizeof(fail_msg), fmt, ap);
		va_end(ap);
		WRITE_ONCE(fuzz_failed, 1);
	}
	pthread_mutex_unlock(&fail_lock);
}

static void slot_begin(struct call_slot *s, int op, int vm, int kind,
		       const char *field, uint64_t value)
{
	s->op = op;
	s->vm = vm;
	s->kind = kind;
	s->field = field;
	s->value = value;
	__atomic_store_n(&s->start_ns, dvm_now_ns(), __ATOMIC_RELEASE);
}

static void slot_end(struct call_slot *s)
{
	__atomic_store_n(&s->start_ns, 0, __ATOMIC_RELEASE);
}

/* The watchdog: no call may last CALL_LIMIT_NS. */
static void *watchdog_thread(void *arg)
{
	struct call_slot *s;
	uint64_t start, now;
	char who[16];
	int i;

	while (!READ_ONCE(watchdog_stop)) {
		now = dvm_now_ns();
		for (i = 0; i < NR_SLOTS; i++) {
			s = &slots[i];
			start = __atomic_load_n(&s->start_ns, __ATOMIC_ACQUIRE);
			if (!start || now < start ||
			    now - start < CALL_LIMIT_NS)
				continue;
			if (i == DRIVER_SLOT)
				snprintf(who, sizeof(who), "driver");
			else
				snprintf(who, sizeof(who), "thread %d", i);
			ksft_print_msg("%s: %s on VM %d, %s argument%s%s (%#lx), running for %lu s\n",
				       who, ops[s->op].name, s->vm,
				       kind_names[s->kind],
				       s->field ? ", mutated " : "",
				       s->field ? s->field : "",
				       (unsigned long)s->value,
				       (unsigned long)((now - start) / 1000000000));
			ksft_exit_fail_msg("ioctl fuzz: a call hangs, seed %lu\n",
					   (unsigned long)seed);
		}
		usleep(WATCHDOG_TICK_US);
	}
	return NULL;
}

/* Signals: SIGUSR1 interrupts calls; SIGBUS ends a memory access. */
static __thread sigjmp_buf bus_jmp;
static __thread int bus_armed;

static void on_sigusr1(int sig)
{
}

static void on_sigbus(int sig)
{
	if (READ_ONCE(bus_armed))
		siglongjmp(bus_jmp, 1);
	/* Not ours: die of it. */
	signal(SIGBUS, SIG_DFL);
}

static void install_handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: the interrupted call returns EINTR. */
	sa.sa_handler = on_sigusr1;
	TEST_ASSERT(!sigaction(SIGUSR1, &sa, NULL), "sigaction(SIGUSR1)");
	sa.sa_handler = on_sigbus;
	TEST_ASSERT(!sigaction(SIGBUS, &sa, NULL), "sigaction(SIGBUS)");
}

/* Read and write the word at @p of a memory file's mapping. */
static bool mem_touch(uint64_t *p, uint64_t v)
{
	uint64_t old;

	if (sigsetjmp(bus_jmp, 1)) {
		WRITE_ONCE(bus_armed, 0);
		return false;
	}
	WRITE_ONCE(bus_armed, 1);
	old = READ_ONCE(*p);
	WRITE_ONCE(*p, old ^ v);
	WRITE_ONCE(bus_armed, 0);
	return true;
}

/* Now and then, SIGUSR1 to this thread during its next call. */
static bool signal_arm(struct fuzzer *t, bool always)
{
	struct itimerspec its;

	if (!t->has_timer ||
	    (!always && rnd_below(&t->rng, FUZZ_SIGNAL_ONE_IN)))
		return false;
	memset(&its, 0, sizeof(its));
	its.it_value.tv_nsec =
		(1 + rnd_below(&t->rng, FUZZ_SIGNAL_MAX_MS)) * 1000000;
	t->signals++;
	return !syscall(__NR_timer_settime, t->timer, 0, &its, NULL);
}

static void signal_disarm(struct fuzzer *t, bool armed)
{
	struct itimerspec its;

	if (!armed)
		return;
	memset(&its, 0, sizeof(its));
	syscall(__NR_timer_settime, t->timer, 0, &its, NULL);
}

static bool vm_protected(int vm)
{
	return __atomic_load_n(&protected_vms, __ATOMIC_ACQUIRE) & (1 << vm);
}

/* A pool VM the driver does not use now (VM 0 at least). */
static int unprotected_vm(struct fuzzer *t)
{
	int mask = __atomic_load_n(&protected_vms, __ATOMIC_ACQUIRE);
	int c[NR_POOL], n = 0, i;

	for (i = 0; i < NR_POOL; i++)
		if (!(mask & (1 << i)))
			c[n++] = i;
	return n ? c[rnd_below(&t->rng, n)] : 0;
}

/* A pointer to nothing of this process: kernel, non-canonical, low, top. */
static uint64_t bad_pointer(uint64_t *rng)
{
	switch (rnd_below(rng, 4)) {
	case 0:
		return 0xffff800000000000ull | (rnd(rng) & 0x7fffffffffffull);
	case 1:
		return 0x0000800000000000ull +
		       rnd_below(rng, 0xffff000000000000ull);
	case 2:
		return 1 + rnd_below(rng, 4095);
	default:
		return ~0ull - rnd_below(rng, 4096);
	}
}

/* All KVM_DVM_MAX_NODES entries valid: 127.0.0.1, this thread's ports. */
static void table_fill(struct fuzzer *t)
{
	uint16_t base = FUZZ_PORT_BASE + t->id * FUZZ_PORT_WINDOW +
			t->port_next;

	t->port_next = (t->port_next + KVM_DVM_MAX_NODES) %
		       (FUZZ_PORT_WINDOW - KVM_DVM_MAX_NODES);
	dvm_addrs_loopback(t->table, KVM_DVM_MAX_NODES, base);
}

static uint32_t join_nodes(const struct kvm_dvm_join *j)
{
	return j->nr_nodes >= 2 && j->nr_nodes <= KVM_DVM_MAX_NODES ?
	       j->nr_nodes : 2;
}

static void valid_join(struct fuzzer *t, struct kvm_dvm_join *j)
{
	uint32_t n = rnd_below(&t->rng, 16) ? 2 + rnd_below(&t->rng, 3) :
		     2 + rnd_below(&t->rng, KVM_DVM_MAX_NODES - 1);
	int i;

	table_fill(t);
	j->node_id = rnd_below(&t->rng, n);
	j->nr_nodes = n;
	j->transport = rnd_below(&t->rng, 8) ? KVM_DVM_TRANSPORT_TCP :
					      KVM_DVM_TRANSPORT_RDMA;
	j->connect_timeout_ms = FUZZ_JOIN_MIN_MS +
		rnd_below(&t->rng, FUZZ_JOIN_MAX_MS - FUZZ_JOIN_MIN_MS + 1);
	j->key_len = KVM_DVM_MIN_KEY +
		rnd_below(&t->rng, KVM_DVM_MAX_KEY - KVM_DVM_MIN_KEY + 1);
	for (i = 0; i < KVM_DVM_MAX_KEY; i++)
		j->key[i] = rnd(&t->rng);
	j->addrs = (uintptr_t)t->table;
	j->failed_node = 0x5a5a5a5a;
	if (rnd_below(&t->rng, 2))
		j->peer_timeout_ms = KVM_DVM_PEER_TIMEOUT_MIN_MS +
			rnd_below(&t->rng, KVM_DVM_PEER_TIMEOUT_MAX_MS -
					   KVM_DVM_PEER_TIMEOUT_MIN_MS + 1);
}

static void valid_pin(struct fuzzer *t, struct kvm_dvm_pin *p)
{
	uint64_t first = rnd_below(&t->rng, FUZZ_MEM_PAGES);

	p->offset = first * 4096;
	p->size = (1 + rnd_below(&t->rng,
				 u64_min(FUZZ_MEM_PAGES - first, 4))) * 4096;
}

/* A valid argument of @op; a valid UNPIN may pick its VM. */
static void fuzz_valid(struct fuzzer *t, int op, union fuzz_arg *a, int *vm)
{
	uint32_t n;

	memset(a, 0, sizeof(*a));
	switch (op) {
	case OP_JOIN:
		valid_join(t, &a->join);
		break;
	case OP_SET_VCPUS:
		n = rnd_below(&t->rng, 4) ? NR_VCPUS :
					    1 + rnd_below(&t->rng, 4);
		dvm_vcpus_init(&a->vcpus, n);
		a->vcpus.local[0] = rnd(&t->rng) & ((1ull << n) - 1);
		break;
	case OP_GET_STATE:
		if (rnd_below(&t->rng, 4)) {
			a->state.links = (uintptr_t)t->links;
			a->state.nr_links = rnd_below(&t->rng, 2) ?
				rnd_below(&t->rng, 4) : KVM_DVM_MAX_NODES;
		}
		break;
	case OP_PING:
		dvm_ping_init(&a->ping, rnd_below(&t->rng, 2),
			      rnd_below(&t->rng, 4) ?
			      rnd_below(&t->rng, 257) :
			      rnd_below(&t->rng, 4097),
			      1 + rnd_below(&t->rng, FUZZ_PING_MAX_COUNT),
			      rnd_below(&t->rng, 4) ?
			      1 + rnd_below(&t->rng, 8) :
			      1 + rnd_below(&t->rng, 256));
		break;
	case OP_CREATE_MEMORY:
		a->mem.size = 4096ull * (rnd_below(&t->rng, 2) ?
			FUZZ_MEM_PAGES :
			1 + rnd_below(&t->rng, FUZZ_MEM_MAX_PAGES));
		break;
	case OP_PIN:
		valid_pin(t, &a->pin);
		break;
	case OP_UNPIN:
		if (t->pinned && rnd_below(&t->rng, 4)) {
			*vm = t->pin_vm;
			a->pin.offset = t->pin_offset;
			a->pin.size = t->pin_size;
			t->pinned = false;
		} else {
			valid_pin(t, &a->pin);
		}
		break;
	case OP_VM_CONTROL:
		a->ctl.op = KVM_DVM_VM_PAUSE + rnd_below(&t->rng, 4);
		break;
	}
}

/* A boundary value of an integer field. */
static uint64_t boundary(uint64_t *rng, const struct field *f)
{
	bool pages = f->type == F_PAGES;
	uint64_t v;

	switch (rnd_below(rng, 8)) {
	case 0:
		v = 0;
		break;
	case 1:
		v = 1;
		break;
	case 2:
		v = f->max;
		break;
	case 3:
		v = f->max + (pages ? 4096 : 1);
		break;
	case 4:
		v = ~0ull;
		break;
	case 5:
		v = rnd(rng);
		break;
	case 6:
		/* Random, mostly in range. */
		v = f->max < ~0ull - 1 ? rnd_below(rng, f->max + 2) : rnd(rng);
		if (pages)
			v &= ~4095ull;
		break;
	default:
		v = pages ? 4096 : 1ull << (f->size * 8 - 1);
		break;
	}
	if (f->size < 8)
		v &= (1ull << (f->size * 8)) - 1;
	return v;
}

/* The join's node table, or GET_STATE's links, somewhere. */
static uint64_t fuzz_pointer(struct fuzzer *t, int op, union fuzz_arg *a)
{
	size_t bytes, cut, entry;
	bool join = op == OP_JOIN;
	uint8_t *p;

	switch (rnd_below(&t->rng, 9)) {
	case 0:
		return 0;
	case 1:
		return 1;
	case 2:
		return ~0ull;
	case 3:
		return (uintptr_t)(t->tedge + psz);
	case 4:
		/* The last entry runs into the PROT_NONE page. */
		if (join) {
			entry = sizeof(struct kvm_dvm_node_addr);
			bytes = join_nodes(&a->join) * entry;
			cut = 1 + rnd_below(&t->rng, entry - 1);
			p = t->tedge + psz - bytes + cut;
			memcpy(p, t->table, bytes - cut);
		} else {
			entry = sizeof(struct kvm_dvm_link);
			p = t->tedge + psz - entry -
			    (1 + rnd_below(&t->rng, entry - 1));
		}
		return (uintptr_t)p;
	case 5:
		if (join)
			memcpy(t->ro_rw + psz, t->table, sizeof(t->table));
		return (uintptr_t)(t->ro + psz);
	case 6:
	case 7:
		return bad_pointer(&t->rng);
	default:
		return join ? (uintptr_t)t->table : (uintptr_t)t->links;
	}
}

static const char * const table_mutations[] = {
	"family 0", "family AF_UNIX", "family 0xffff", "one entry AF_INET6",
	"port 0", "port 65535", "addr[4..15] not 0", "scope_id not 0",
	"two entries the same", "all ::1", "own entry 192.0.2.1",
	"127.0.0.x",
};

/* One entry of the node table, or the whole table. */
static uint64_t table_mutate(struct fuzzer *t, struct kvm_dvm_join *j)
{
	uint32_t n = join_nodes(j), i = rnd_below(&t->rng, n);
	struct kvm_dvm_node_addr *a = &t->table[i];
	uint64_t c = rnd_below(&t->rng, ARRAY_SIZE(table_mutations));

	switch (c) {
	case 0:
		a->family = 0;
		break;
	case 1:
		a->family = AF_UNIX;
		break;
	case 2:
		a->family = 0xffff;
		break;
	case 3:
		a->family = AF_INET6;
		break;
	case 4:
		a->port = 0;
		break;
	case 5:
		a->port = 65535;
		break;
	case 6:
		a->addr[4 + rnd_below(&t->rng, 12)] =
			1 + rnd_below(&t->rng, 255);
		break;
	case 7:
		a->scope_id = 1 + rnd_below(&t->rng, 0xfffffffe);
		break;
	case 8:
		*a = t->table[(i + 1) % n];
		break;
	case 9:
		dvm_addrs_loopback6(t->table, KVM_DVM_MAX_NODES,
				    t->table[0].port);
		break;
	case 10:
		/* Not local: bind() fails, or connects retry until the end. */
		i = j->node_id < n ? j->node_id : 0;
		dvm_addr_inet(&t->table[i], 0xc0000201, t->table[i].port);
		break;
	default:
		dvm_addr_inet(a, INADDR_LOOPBACK + 1 + rnd_below(&t->rng, 254),
			      a->port);
		break;
	}
	return c;
}

/* A bit at or above nr_vcpus, the last one, a whole word, or none. */
static uint64_t local_mutate(struct fuzzer *t, struct kvm_dvm_vcpus *v)
{
	uint64_t c = rnd_below(&t->rng, 5);

	switch (c) {
	case 0:
		if (v->nr_vcpus < KVM_DVM_MAX_VCPUS)
			dvm_vcpus_set(v, v->nr_vcpus);
		break;
	case 1:
		dvm_vcpus_set(v, KVM_DVM_MAX_VCPUS - 1);
		break;
	case 2:
		v->local[rnd_below(&t->rng, ARRAY_SIZE(v->local))] = ~0ull;
		break;
	case 3:
		memset(v->local, 0, sizeof(v->local));
		break;
	default:
		dvm_vcpus_set(v, rnd_below(&t->rng, KVM_DVM_MAX_VCPUS));
		break;
	}
	return c;
}

/* One field of @a, chosen at random, set to a boundary value. */
static const struct field *fuzz_mutate(struct fuzzer *t, int op,
				       union fuzz_arg *a, uint64_t *value)
{
	const struct op_desc *d = &ops[op];
	int i = rnd_below(&t->rng, d->nr_fields);
	const struct field *f = &d->fields[i];
	uint8_t *p = a->bytes + f->off;
	uint64_t v = 0;
	size_t k;

	t->mutated[op][i]++;
	switch (f->type) {
	case F_INT:
	case F_PAGES:
		v = boundary(&t->rng, f);
		memcpy(p, &v, f->size);
		break;
	case F_BYTES:
		v = rnd_below(&t->rng, 2);
		for (k = 0; k < f->size; k++)
			p[k] = v ? rnd(&t->rng) : 0;
		break;
	case F_PTR:
		v = fuzz_pointer(t, op, a);
		memcpy(p, &v, sizeof(v));
		break;
	case F_TABLE:
		v = table_mutate(t, &a->join);
		break;
	case F_LOCAL:
		v = local_mutate(t, &a->vcpus);
		break;
	}
	*value = v;
	return f;
}

/* Random bytes; a pointer among them still points to nothing here. */
static void fuzz_random(struct fuzzer *t, int op, union fuzz_arg *a)
{
	uint64_t v;
	size_t i;

	for (i = 0; i < sizeof(a->bytes); i += sizeof(v)) {
		v = rnd(&t->rng);
		memcpy(a->bytes + i, &v, sizeof(v));
	}
	if (op == OP_JOIN)
		a->join.addrs = bad_pointer(&t->rng);
	else if (op == OP_GET_STATE)
		a->state.links = bad_pointer(&t->rng);
}

/* The checks of KVM_DVM_JOIN's fields, before the table is read. */
static bool join_fields_ok(const struct kvm_dvm_join *j)
{
	if ((j->flags & ~KVM_DVM_JOIN_FLAGS) || j->pad || j->pad2 ||
	    j->reserved[0] || j->reserved[1] || j->reserved[2])
		return false;
	if (j->nr_nodes < 2 || j->nr_nodes > KVM_DVM_MAX_NODES ||
	    j->node_id >= j->nr_nodes)
		return false;
	if (j->transport != KVM_DVM_TRANSPORT_TCP &&
	    j->transport != KVM_DVM_TRANSPORT_RDMA)
		return false;
	if (!j->connect_timeout_ms || j->connect_timeout_ms > 600000)
		return false;
	if (j->peer_timeout_ms &&
	    (j->peer_timeout_ms < KVM_DVM_PEER_TIMEOUT_MIN_MS ||
	     j->peer_timeout_ms > KVM_DVM_PEER_TIMEOUT_MAX_MS))
		return false;
	return j->key_len >= KVM_DVM_MIN_KEY && j->key_len <= KVM_DVM_MAX_KEY;
}

/* A table the kernel can read and accepts. */
static bool join_table_ok(struct fuzzer *t, const struct kvm_dvm_join *j)
{
	static const uint8_t zero[12];
	const struct kvm_dvm_node_addr *a = t->table, *b;
	uint32_t i, k;

	if (j->addrs != (uintptr_t)t->table &&
	    j->addrs != (uintptr_t)(t->ro + psz))
		return false;
	for (i = 0; i < j->nr_nodes; i++) {
		b = &a[i];
		if (!b->port || b->family != a[0].family)
			return false;
		if (b->family == AF_INET &&
		    (b->scope_id || memcmp(b->addr + 4, zero, sizeof(zero))))
			return false;
		if (b->family != AF_INET && b->family != AF_INET6)
			return false;
		for (k = 0; k < i; k++)
			if (a[k].port == b->port &&
			    !memcmp(a[k].addr, b->addr, sizeof(b->addr)))
				return false;
	}
	return true;
}

static bool kind_writable(int kind)
{
	return kind == KIND_VALID || kind == KIND_MUTATED ||
	       kind == KIND_RANDOM;
}

/*
 * A JOIN the kernel would start: never with a long timeout, and only
 * while fewer than FUZZ_MAX_SLOW_JOINS run, else it is made invalid.
 * Mostly on a VM the driver does not use. True if it took a slot.
 */
static bool join_fixup(struct fuzzer *t, struct kvm_dvm_join *j, int kind,
		       int *vm)
{
	/*
	 * Not FORWARD_IO: node 0's KVM_RUN of a copy would wait for the
	 * accesses of a vCPU that no fuzzer runs.
	 */
	j->flags &= ~KVM_DVM_JOIN_FORWARD_IO;
	if (!join_fields_ok(j))
		return false;
	if (j->connect_timeout_ms > FUZZ_JOIN_MAX_MS) {
		j->pad2 = 1;
		return false;
	}
	if (!kind_writable(kind) || !join_table_ok(t, j))
		return false;
	if (vm_protected(*vm) && rnd_below(&t->rng, 8))
		*vm = unprotected_vm(t);
	if (__atomic_add_fetch(&slow_joins, 1, __ATOMIC_ACQ_REL) >
	    FUZZ_MAX_SLOW_JOINS) {
		__atomic_sub_fetch(&slow_joins, 1, __ATOMIC_ACQ_REL);
		switch (rnd_below(&t->rng, 4)) {
		case 0:
			j->flags = KVM_DVM_JOIN_FLAGS + 1 +
				   rnd_below(&t->rng, 0xfffffffe - KVM_DVM_JOIN_FLAGS);
			break;
		case 1:
			j->pad = 1 + rnd_below(&t->rng, 0xfffffffe);
			break;
		case 2:
			j->pad2 = 1 + rnd_below(&t->rng, 0xfffffffe);
			break;
		default:
			j->reserved[rnd_below(&t->rng, 3)] = rnd(&t->rng) | 1;
			break;
		}
		return false;
	}
	__atomic_add_fetch(&pool[*vm].joining, 1, __ATOMIC_ACQ_REL);
	return true;
}

/*
 * LEAVE: now and then where a fuzzed join runs (it ends the join), seldom
 * on the driver's cluster, so that it lives long enough to be fuzzed.
 */
static int leave_target(struct fuzzer *t, int vm)
{
	int i;

	if (!rnd_below(&t->rng, 4))
		for (i = 0; i < NR_POOL; i++)
			if (__atomic_load_n(&pool[i].joining, __ATOMIC_ACQUIRE) &&
			    !vm_protected(i))
				return i;
	if (vm_protected(vm) && rnd_below(&t->rng, FUZZ_LEAVE_DRIVER_ONE_IN))
		return unprotected_vm(t);
	return vm;
}

static bool ping_ok(const struct kvm_dvm_ping *p)
{
	return !p->flags && !p->pad && !p->reserved[0] && !p->reserved[1] &&
	       p->size <= 4096 && p->count && p->count <= 1000000 &&
	       p->depth && p->depth <= 256;
}

static bool memory_ok(const struct kvm_dvm_memory *m)
{
	return !m->flags && !m->pad && !m->reserved[0] && !m->reserved[1] &&
	       !m->reserved[2] && !m->reserved[3] && m->size &&
	       !(m->size & 4095) && m->size <= KVM_DVM_MAX_MEMORY;
}

/* Where the call finds its argument. */
static void *fuzz_place(struct fuzzer *t, int kind, union fuzz_arg *a,
			size_t size)
{
	size_t off, cut;

	switch (kind) {
	case KIND_NULL:
		return NULL;
	case KIND_PROT_NONE:
		return t->edge + psz + 8 * rnd_below(&t->rng, 64);
	case KIND_RDONLY:
		off = 8 * rnd_below(&t->rng, (psz - size) / 8);
		memcpy(t->ro_rw + off, a, size);
		return t->ro + off;
	case KIND_STRADDLE:
		if (size < 2)
			return t->edge + psz - 1;
		cut = 1 + rnd_below(&t->rng, size - 1);
		memcpy(t->edge + psz - (size - cut), a, size - cut);
		return t->edge + psz - (size - cut);
	}
	memcpy(&t->arg, a, size);
	return &t->arg;
}

static void count_res(struct fuzzer *t, int op, int ret, int err)
{
	t->counts[op][res_index(ret, err)]++;
}

/*
 * A memory file CREATE_MEMORY returned: map it, read and write a few
 * words (SIGBUS once the cluster is gone), try what it refuses, and close
 * it, or leave it open (one per VM) so that PINs find the memory.
 */
static void fuzz_memory_file(struct fuzzer *t, int vm, int fd, uint64_t size)
{
	uint64_t len = u64_min(size, FUZZ_MEM_PAGES * 4096ull), off;
	int i, n, r, none = -1;
	uint8_t *p;

	slot_begin(t->slot, OP_MMAP, vm, KIND_VALID, NULL, len);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	slot_end(t->slot);
	count_res(t, OP_MMAP, p == MAP_FAILED ? -1 : 0, errno);
	if (p != MAP_FAILED) {
		n = 1 + rnd_below(&t->rng, 3);
		for (i = 0; i < n; i++) {
			off = 8 * rnd_below(&t->rng, len / 8);
			slot_begin(t->slot, OP_ACCESS, vm, KIND_VALID, NULL,
				   off);
			r = mem_touch((uint64_t *)(p + off), rnd(&t->rng));
			slot_end(t->slot);
			t->counts[OP_ACCESS][r ? 0 : RES_SIGBUS]++;
		}
		munmap(p, len);
	}
	if (!rnd_below(&t->rng, 4)) {
		p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
		count_res(t, OP_MMAP_PRIVATE, p == MAP_FAILED ? -1 : 0, errno);
		if (p != MAP_FAILED)
			munmap(p, 4096);
	}
	if (!rnd_below(&t->rng, 4)) {
		r = ftruncate(fd, 4096 * rnd_below(&t->rng, 64));
		count_res(t, OP_FTRUNCATE, r, errno);
	}
	if (rnd_below(&t->rng, 2) &&
	    __atomic_compare_exchange_n(&pool[vm].parked_fd, &none, fd, false,
					__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return;
	close(fd);
}

/* Count a call's result; fail on one no call may have. */
static void fuzz_count(struct fuzzer *t, int op, int vm, int kind,
		       const struct field *f, uint64_t value, int ret, int err)
{
	char buf[32];
	int r;

	if (op == OP_CREATE_MEMORY && ret >= 0)
		ret = 0;
	r = res_index(ret, err);
	t->counts[op][r]++;
	if (r == RES_BADRET || (r && errno_class(op, r) == RES_FORBIDDEN))
		fuzz_fail("thread %d: %s on VM %d, %s argument%s%s (%#lx): ret %d errno %d (%s)\n",
			  t->id, ops[op].name, vm, kind_names[kind],
			  f ? ", mutated " : "", f ? f->name : "",
			  (unsigned long)value, ret, err,
			  res_name(res_index(-1, err), buf, sizeof(buf)));
}

/* One DVM ioctl. */
static void fuzz_call(struct fuzzer *t, int op)
{
	const struct op_desc *d = &ops[op];
	int vm = rnd_below(&t->rng, NR_POOL), ret, err;
	int kind = rnd_below(&t->rng, 64);
	const struct field *f = NULL;
	bool slow = false, sig;
	uint64_t value = 0;
	union fuzz_arg a;
	void *arg;

	/* Of 64: 16 valid, 28 mutated, 3 + 3 + 4 + 4 bad places, 6 random. */
	kind = kind < 16 ? KIND_VALID : kind < 44 ? KIND_MUTATED :
	       kind < 47 ? KIND_NULL : kind < 50 ? KIND_PROT_NONE :
	       kind < 54 ? KIND_RDONLY : kind < 58 ? KIND_STRADDLE :
	       KIND_RANDOM;
	fuzz_valid(t, op, &a, &vm);
	if (kind == KIND_RANDOM)
		fuzz_random(t, op, &a);
	else if (d->nr_fields && (kind == KIND_MUTATED ||
				  (kind != KIND_VALID &&
				   rnd_below(&t->rng, 2))))
		f = fuzz_mutate(t, op, &a, &value);

	switch (op) {
	case OP_JOIN:
		slow = join_fixup(t, &a.join, kind, &vm);
		break;
	case OP_LEAVE:
		vm = leave_target(t, vm);
		break;
	case OP_PING:
		/* Valid PINGs are short. */
		if (ping_ok(&a.ping) && a.ping.count > FUZZ_PING_MAX_COUNT)
			a.ping.pad = 1;
		break;
	case OP_CREATE_MEMORY:
		/* A big memory only if far too big for the host's RAM. */
		if (memory_ok(&a.mem) &&
		    a.mem.size > FUZZ_MEM_MAX_PAGES * 4096ull &&
		    a.mem.size / 64 < host_ram)
			a.mem.flags = 1;
		break;
	}
	arg = fuzz_place(t, kind, &a, d->size);
	t->kinds[op][kind]++;

	slot_begin(t->slot, op, vm, kind, f ? f->name : NULL, value);
	sig = signal_arm(t, false);
	ret = ioctl(pool[vm].vm->fd, d->cmd, arg);
	err = errno;
	signal_disarm(t, sig);
	slot_end(t->slot);
	if (slow) {
		__atomic_sub_fetch(&pool[vm].joining, 1, __ATOMIC_ACQ_REL);
		__atomic_sub_fetch(&slow_joins, 1, __ATOMIC_ACQ_REL);
	}
	fuzz_count(t, op, vm, kind, f, value, ret, err);
	if (ret < 0)
		return;

	switch (op) {
	case OP_GET_STATE:
		if (!ret && arg == &t->arg)
			t->states[u64_min(t->arg.state.state,
					  KVM_DVM_STATE_LEFT + 1)]++;
		break;
	case OP_CREATE_MEMORY:
		fuzz_memory_file(t, vm, ret, a.mem.size);
		break;
	case OP_PIN:
		if (!ret) {
			t->pinned = true;
			t->pin_vm = vm;
			t->pin_offset = a.pin.offset;
			t->pin_size = a.pin.size;
		}
		break;
	}
}

/* KVM_RUN on a vCPU of the pool. */
static void fuzz_run(struct fuzzer *t)
{
	int vm = rnd_below(&t->rng, 2) ? 0 : 2, ret, err;
	struct kvm_vcpu *vcpu;
	uint32_t reason;
	bool sig;

	vcpu = pool[vm].vcpus[rnd_below(&t->rng, pool[vm].nr_vcpus)];
	slot_begin(t->slot, OP_RUN, vm, KIND_VALID, NULL, vcpu->id);
	/* A vCPU of a VM a VM_CONTROL paused waits for RESUME: ended here. */
	sig = signal_arm(t, true);
	ret = ioctl(vcpu->fd, KVM_RUN, NULL);
	err = errno;
	signal_disarm(t, sig);
	slot_end(t->slot);
	fuzz_count(t, OP_RUN, vm, KIND_VALID, NULL, vcpu->id, ret, err);
	if (ret)
		return;
	reason = READ_ONCE(vcpu->run->exit_reason);
	t->exits[reason == KVM_EXIT_IO ? 0 :
		 reason == KVM_EXIT_DVM_BROKEN ? 1 : 2]++;
}

static void *fuzz_thread(void *arg)
{
	struct fuzzer *t = arg;
	uint8_t block[SCHEDULE], x;
	struct sigevent sev;
	uint64_t k;
	int i, j;

	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = SIGUSR1;
	sev.sigev_notify_thread_id = syscall(__NR_gettid);
	t->has_timer = !syscall(__NR_timer_create, CLOCK_MONOTONIC, &sev,
				&t->timer);

	memcpy(block, schedule, sizeof(block));
	for (k = 0; k < t->calls && !READ_ONCE(fuzz_failed); k++) {
		if (!(k % SCHEDULE)) {
			for (i = SCHEDULE - 1; i > 0; i--) {
				j = rnd_below(&t->rng, i + 1);
				x = block[i];
				block[i] = block[j];
				block[j] = x;
			}
		}
		if (!rnd_below(&t->rng, FUZZ_RUN_ONE_IN))
			fuzz_run(t);
		fuzz_call(t, block[k % SCHEDULE]);
		t->made++;
	}
	if (t->has_timer)
		syscall(__NR_timer_delete, t->timer);
	return NULL;
}

/* The driver's blocking ioctls, one thread per node. */
struct drv_op {
	int fd;
	unsigned long cmd;
	void *arg;
	int ret;
	int err;
	int done;
	pthread_t thread;
};

static void *drv_op_thread(void *arg)
{
	struct drv_op *op = arg;

	op->ret = ioctl(op->fd, op->cmd, op->arg);
	op->err = op->ret ? errno : 0;
	__atomic_store_n(&op->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Valid calls of the driver must not fail as no call may. */
static void drv_check(int op, int ret, int err)
{
	char buf[32];

	if (ret == 0 || (ret == -1 && errno_class(op, err) != RES_FORBIDDEN))
		return;
	fuzz_fail("driver: %s: ret %d errno %d (%s)\n", ops[op].name, ret, err,
		  res_name(res_index(-1, err), buf, sizeof(buf)));
}

/*
 * @cmd on both VMs at once, as a cluster needs. A call that lasts past
 * @ms, or, with @end_on_failure, whose partner failed, is ended by LEAVE.
 * True if both succeeded.
 */
static bool drv_both(struct kvm_vm **vms, int op, void **args, uint64_t ms,
		     bool end_on_failure)
{
	uint64_t end = dvm_now_ns() + ms * 1000000ull;
	struct drv_op d[2];
	bool left = false;
	int i, r, done, failed;

	for (i = 0; i < 2; i++) {
		memset(&d[i], 0, sizeof(d[i]));
		d[i].fd = vms[i]->fd;
		d[i].cmd = ops[op].cmd;
		d[i].arg = args[i];
		r = pthread_create(&d[i].thread, NULL, drv_op_thread, &d[i]);
		TEST_ASSERT(!r, "pthread_create: %d", r);
	}
	for (;;) {
		done = 0;
		failed = 0;
		for (i = 0; i < 2; i++) {
			if (!__atomic_load_n(&d[i].done, __ATOMIC_ACQUIRE))
				continue;
			done++;
			failed += !!d[i].ret;
		}
		if (done == 2)
			break;
		if (!left && ((end_on_failure && failed) || dvm_now_ns() > end)) {
			for (i = 0; i < 2; i++)
				if (!__atomic_load_n(&d[i].done,
						     __ATOMIC_ACQUIRE))
					ioctl(vms[i]->fd, KVM_DVM_LEAVE, NULL);
			left = true;
		}
		usleep(2000);
	}
	for (i = 0; i < 2; i++) {
		pthread_join(d[i].thread, NULL);
		drv_check(op, d[i].ret, d[i].err);
	}
	return !d[0].ret && !d[1].ret;
}

static bool drv_joining(int vm)
{
	return __atomic_load_n(&pool[vm].joining, __ATOMIC_ACQUIRE);
}

static void drv_sleep_ms(uint64_t *rng, uint64_t min, uint64_t max)
{
	usleep(1000 * (min + rnd_below(rng, max - min + 1)));
}

/* Joined: place the vCPUs, create the memory, ping, and stay a while. */
static void drv_cluster(struct kvm_vm **vms, const int *pair, int *fds,
			uint64_t *rng)
{
	struct call_slot *slot = &slots[DRIVER_SLOT];
	struct kvm_dvm_vcpus place[2];
	struct kvm_dvm_memory mem;
	struct kvm_dvm_ping ping;
	void *args[2];
	int i, v, ret, err;

	/*
	 * Every vCPU created must run somewhere, and only where it was
	 * created: a VM with vCPUs runs them all, a barebones one none.
	 */
	for (i = 0; i < 2; i++) {
		dvm_vcpus_init(&place[i], NR_VCPUS);
		for (v = 0; v < pool[pair[i]].nr_vcpus; v++)
			dvm_vcpus_set(&place[i], v);
		args[i] = &place[i];
	}
	slot_begin(slot, OP_SET_VCPUS, pair[0], KIND_VALID, NULL, 0);
	drv.placed += drv_both(vms, OP_SET_VCPUS, args, DRIVER_PLACE_MS,
			       false);
	slot_end(slot);

	memset(&mem, 0, sizeof(mem));
	mem.size = FUZZ_MEM_PAGES * 4096ull;
	for (i = 0; i < 2; i++) {
		slot_begin(slot, OP_CREATE_MEMORY, pair[i], KIND_VALID, NULL,
			   0);
		fds[i] = ioctl(vms[i]->fd, KVM_DVM_CREATE_MEMORY, &mem);
		err = errno;
		slot_end(slot);
		drv_check(OP_CREATE_MEMORY, fds[i] >= 0 ? 0 : fds[i], err);
	}
	drv.memories += fds[0] >= 0 && fds[1] >= 0;

	dvm_ping_init(&ping, 1, 256, DRIVER_PING_COUNT, 4);
	slot_begin(slot, OP_PING, pair[0], KIND_VALID, NULL, 0);
	ret = ioctl(vms[0]->fd, KVM_DVM_PING, &ping);
	err = errno;
	slot_end(slot);
	drv_check(OP_PING, ret, err);
	drv.pings += !ret;
	drv_sleep_ms(rng, 100, 400);
}

/*
 * The driver: joins pairs of the pool's VMs 1 to 3 in turn, each time on
 * fresh ports, and leaves one node first so that the other is BROKEN for a
 * while. It ends every cluster it formed, which also ends whatever of the
 * fuzzers waits on it (a placement, a PIN, a memory access).
 */
static void *driver_thread(void *arg)
{
	static const int pairs[][2] = {
		{ 2, 3 }, { 1, 2 }, { 3, 1 }, { 2, 1 }, { 3, 2 }, { 1, 3 },
	};
	struct call_slot *slot = &slots[DRIVER_SLOT];
	struct kvm_dvm_node_addr addrs[2];
	struct kvm_dvm_join join[2];
	struct kvm_vm *vms[2];
	int i, first, fd, fds[2], ret, err;
	const int *pair;
	uint64_t rng, c;
	void *args[2];

	rng_init(&rng, seed + NR_FUZZERS);
	for (c = 0; !READ_ONCE(driver_stop); c++) {
		pair = pairs[c % ARRAY_SIZE(pairs)];
		for (i = 0; i < 2; i++) {
			vms[i] = pool[pair[i]].vm;
			fds[i] = -1;
		}
		__atomic_store_n(&protected_vms, 1 << pair[0] | 1 << pair[1],
				 __ATOMIC_RELEASE);
		drv.cycles++;
		/* Fuzzed joins still running there would make ours EBUSY. */
		for (i = 0; i < 100 && (drv_joining(pair[0]) ||
					drv_joining(pair[1])); i++)
			usleep(10000);

		dvm_addrs_loopback(addrs, 2, dvm_ports(2));
		for (i = 0; i < 2; i++) {
			dvm_join_init(&join[i], i, 2, addrs,
				      KVM_DVM_TRANSPORT_TCP, DRIVER_JOIN_MS);
			args[i] = &join[i];
		}
		slot_begin(slot, OP_JOIN, pair[0], KIND_VALID, NULL, 0);
		ret = drv_both(vms, OP_JOIN, args,
			       DRIVER_JOIN_MS + DRIVER_GRACE_MS, true);
		slot_end(slot);
		if (ret) {
			drv.joined++;
			drv_cluster(vms, pair, fds, &rng);
		}

		first = rnd_below(&rng, 2);
		for (i = 0; i < 2; i++) {
			slot_begin(slot, OP_LEAVE, pair[first ^ i], KIND_VALID,
				   NULL, 0);
			ret = ioctl(vms[first ^ i]->fd, KVM_DVM_LEAVE, NULL);
			err = errno;
			slot_end(slot);
			drv_check(OP_LEAVE, ret, err);
			if (!i)
				drv_sleep_ms(&rng, 50, 200);
		}
		for (i = 0; i < 2; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		for (i = 0; i < NR_POOL; i++) {
			fd = __atomic_exchange_n(&pool[i].parked_fd, -1,
						 __ATOMIC_ACQ_REL);
			if (fd >= 0)
				close(fd);
		}
		__atomic_store_n(&protected_vms, 0, __ATOMIC_RELEASE);
		drv_sleep_ms(&rng, 20, 100);
	}
	return NULL;
}

static void guest_code(void)
{
	for (;;)
		GUEST_DONE();
}

static void pool_create(void)
{
	int i;

	for (i = 0; i < NR_POOL; i++) {
		pool[i].nr_vcpus = i % 2 ? 0 : NR_VCPUS;
		pool[i].vm = pool[i].nr_vcpus ?
			vm_create_with_vcpus(NR_VCPUS, guest_code,
					     pool[i].vcpus) :
			vm_create_barebones();
		pool[i].parked_fd = -1;
	}
}

static void pool_destroy(void)
{
	int i;

	for (i = 0; i < NR_POOL; i++) {
		if (pool[i].parked_fd >= 0)
			close(pool[i].parked_fd);
		kvm_vm_free(pool[i].vm);
	}
}

static struct fuzzer *fuzzer_create(int id, uint64_t calls)
{
	struct fuzzer *t = calloc(1, sizeof(*t));
	int fd;

	TEST_ASSERT(t, "calloc");
	t->id = id;
	t->calls = calls;
	t->slot = &slots[id];
	rng_init(&t->rng, seed + id);
	t->edge = dvm_guard_pages(PROT_READ | PROT_WRITE);
	t->tedge = dvm_guard_pages(PROT_READ | PROT_WRITE);
	fd = memfd_create("dvm-ioctl-fuzz", 0);
	TEST_ASSERT(fd >= 0 && !ftruncate(fd, 2 * psz), "memfd");
	t->ro_rw = mmap(NULL, 2 * psz, PROT_READ | PROT_WRITE, MAP_SHARED,
			fd, 0);
	t->ro = mmap(NULL, 2 * psz, PROT_READ, MAP_SHARED, fd, 0);
	TEST_ASSERT(t->ro_rw != MAP_FAILED && t->ro != MAP_FAILED, "mmap");
	close(fd);
	return t;
}

static void fuzzer_free(struct fuzzer *t)
{
	munmap(t->edge, 2 * psz);
	munmap(t->tedge, 2 * psz);
	munmap(t->ro, 2 * psz);
	munmap(t->ro_rw, 2 * psz);
	free(t);
}

/* Appends to a line of at most @size bytes. */
static void line_add(char *line, size_t size, const char *fmt, ...)
{
	size_t n = strlen(line);
	va_list ap;

	if (n + 1 >= size)
		return;
	va_start(ap, fmt);
	vsnprintf(line + n, size - n, fmt, ap);
	va_end(ap);
}

/* Prints the table; returns the number of undocumented results. */
static int print_results(uint64_t (*counts)[NR_RES])
{
	int op, r, undocumented = 0;
	char line[1024], buf[32];
	uint64_t total;
	bool mark;

	for (op = 0; op < NR_OPS; op++) {
		total = 0;
		for (r = 0; r < NR_RES; r++)
			total += counts[op][r];
		if (!total)
			continue;
		line[0] = 0;
		line_add(line, sizeof(line), "%s: %lu:", ops[op].name,
			 (unsigned long)total);
		for (r = 0; r < NR_RES; r++) {
			if (!counts[op][r])
				continue;
			mark = r && r < NR_ERRNOS &&
			       errno_class(op, r) == RES_UNDOCUMENTED;
			undocumented += mark;
			line_add(line, sizeof(line), " %s %lu%s,",
				 res_name(r, buf, sizeof(buf)),
				 (unsigned long)counts[op][r], mark ? "*" : "");
		}
		line[strlen(line) - 1] = 0;
		ksft_print_msg("%s\n", line);
	}
	return undocumented;
}

static void test_fuzz(uint64_t calls)
{
	uint64_t counts[NR_OPS][NR_RES] = {}, kinds[NR_KINDS] = {};
	uint64_t states[KVM_DVM_STATE_LEFT + 2] = {}, exits[3] = {};
	uint64_t made = 0, counted = 0, n, signals = 0;
	int op, r, i, k, distinct = 0, undocumented;
	int fields = 0, fields_hit = 0;
	struct fuzzer *fz[NR_FUZZERS];
	pthread_t driver, watchdog;
	bool ok = true;

	pool_create();
	for (i = 0; i < NR_FUZZERS; i++)
		fz[i] = fuzzer_create(i, calls / NR_FUZZERS +
					 (i < calls % NR_FUZZERS));
	TEST_ASSERT(!pthread_create(&watchdog, NULL, watchdog_thread, NULL),
		    "pthread_create");
	TEST_ASSERT(!pthread_create(&driver, NULL, driver_thread, NULL),
		    "pthread_create");
	for (i = 0; i < NR_FUZZERS; i++)
		TEST_ASSERT(!pthread_create(&fz[i]->thread, NULL, fuzz_thread,
					    fz[i]), "pthread_create");
	for (i = 0; i < NR_FUZZERS; i++)
		pthread_join(fz[i]->thread, NULL);
	/* Only now: the driver's LEAVEs end what the fuzzers wait for. */
	WRITE_ONCE(driver_stop, 1);
	pthread_join(driver, NULL);

	for (i = 0; i < NR_FUZZERS; i++) {
		made += fz[i]->made;
		signals += fz[i]->signals;
		for (op = 0; op < NR_OPS; op++)
			for (r = 0; r < NR_RES; r++)
				counts[op][r] += fz[i]->counts[op][r];
		for (op = 0; op < NR_IOCTLS; op++)
			for (k = 0; k < NR_KINDS; k++)
				kinds[k] += fz[i]->kinds[op][k];
		for (k = 0; k < ARRAY_SIZE(states); k++)
			states[k] += fz[i]->states[k];
		for (k = 0; k < ARRAY_SIZE(exits); k++)
			exits[k] += fz[i]->exits[k];
	}
	for (op = 0; op < NR_IOCTLS; op++) {
		fields += ops[op].nr_fields;
		for (k = 0; k < ops[op].nr_fields; k++) {
			n = 0;
			for (i = 0; i < NR_FUZZERS; i++)
				n += fz[i]->mutated[op][k];
			fields_hit += !!n;
		}
	}

	undocumented = print_results(counts);
	if (undocumented)
		ksft_print_msg("*: %d results not documented for their call (Documentation/virt/kvm/dvm.rst, section 3), tolerated\n",
			       undocumented);
	ksft_print_msg("arguments: %lu valid, %lu mutated (%d of %d fields), %lu NULL, %lu PROT_NONE, %lu read-only, %lu straddling, %lu random\n",
		       kinds[KIND_VALID], kinds[KIND_MUTATED], fields_hit,
		       fields, kinds[KIND_NULL], kinds[KIND_PROT_NONE],
		       kinds[KIND_RDONLY], kinds[KIND_STRADDLE],
		       kinds[KIND_RANDOM]);
	ksft_print_msg("GET_STATE saw NONE %lu, JOINED %lu, RUNNING %lu, BROKEN %lu, LEFT %lu, other %lu\n",
		       states[0], states[1], states[2], states[3], states[4],
		       states[5]);
	ksft_print_msg("KVM_RUN exits: ucall %lu, KVM_EXIT_DVM_BROKEN %lu, other %lu; %lu calls interrupted by a signal\n",
		       exits[0], exits[1], exits[2], signals);
	ksft_print_msg("driver: %lu clusters, %lu joined, %lu placed, %lu with memory, %lu pinged\n",
		       drv.cycles, drv.joined, drv.placed, drv.memories,
		       drv.pings);

	if (READ_ONCE(fuzz_failed)) {
		ksft_print_msg("%s", fail_msg);
		ok = false;
	}
	for (op = 0; op < NR_IOCTLS; op++) {
		n = 0;
		k = 0;
		for (r = 0; r < NR_RES; r++) {
			n += counts[op][r];
			k += !!counts[op][r];
		}
		counted += n;
		distinct += k;
		if (n < calls / 20 || k < 2) {
			ksft_print_msg("%s: %lu calls (want %lu or more), %d distinct results (want 2 or more)\n",
				       ops[op].name, (unsigned long)n,
				       (unsigned long)(calls / 20), k);
			ok = false;
		}
	}
	if (made < calls || counted != made) {
		ksft_print_msg("%lu calls made, %lu counted, want %lu\n",
			       (unsigned long)made, (unsigned long)counted,
			       (unsigned long)calls);
		ok = false;
	}
	if (!ok)
		ksft_print_msg("seed %lu reproduces the calls\n",
			       (unsigned long)seed);
	ksft_test_result(ok, "ioctl fuzz: %lu calls from %d threads, seed %lu, %d distinct (ioctl, errno) results, no hang\n",
			 (unsigned long)made, NR_FUZZERS, (unsigned long)seed,
			 distinct);

	for (i = 0; i < NR_FUZZERS; i++)
		fuzzer_free(fz[i]);
	pool_destroy();
	WRITE_ONCE(watchdog_stop, 1);
	pthread_join(watchdog, NULL);
}

/* A fresh cluster works after the fuzz, memory shared between its nodes. */
static void test_members_work(void)
{
	struct call_slot *slot = &slots[DRIVER_SLOT];
	uint64_t v = 0x0123456789abcdefull ^ seed, got, *w[2];
	struct kvm_dvm_memory mem;
	struct dvm_node nodes[2];
	struct kvm_dvm_ping ping;
	uint8_t *hva[2];
	pthread_t watchdog;
	int fd[2], i;

	WRITE_ONCE(watchdog_stop, 0);
	TEST_ASSERT(!pthread_create(&watchdog, NULL, watchdog_thread, NULL),
		    "pthread_create");
	dvm_nodes_create(nodes, 2, NR_VCPUS, guest_code);
	slot_begin(slot, OP_JOIN, 0, KIND_VALID, NULL, 0);
	dvm_nodes_join(nodes, 2, "JOIN after the fuzz");
	slot_begin(slot, OP_SET_VCPUS, 0, KIND_VALID, NULL, 0);
	dvm_place_round_robin(nodes, 2, NR_VCPUS);
	dvm_set_vcpus_all(nodes, 2);
	dvm_assert_all_ok(nodes, 2, "SET_LOCAL_VCPUS after the fuzz");
	slot_begin(slot, OP_RUN, 0, KIND_VALID, NULL, 0);
	for (i = 0; i < 2; i++)
		dvm_run_done(nodes[i].vcpus[i], "KVM_RUN after the fuzz");
	slot_begin(slot, OP_PING, 0, KIND_VALID, NULL, 100);
	dvm_ping_init(&ping, 1, 64, 100, 4);
	DVM_ASSERT_OK(__dvm_ping(nodes[0].vm, &ping),
		      "PING, count 100, after the fuzz");

	memset(&mem, 0, sizeof(mem));
	mem.size = FUZZ_MEM_PAGES * 4096ull;
	for (i = 0; i < 2; i++) {
		slot_begin(slot, OP_CREATE_MEMORY, i, KIND_VALID, NULL, 0);
		fd[i] = ioctl(nodes[i].vm->fd, KVM_DVM_CREATE_MEMORY, &mem);
		DVM_ASSERT(fd[i] >= 0, "node %d: CREATE_MEMORY after the fuzz: %s",
			   i, strerror(errno));
		hva[i] = mmap(NULL, mem.size, PROT_READ | PROT_WRITE,
			      MAP_SHARED, fd[i], 0);
		DVM_ASSERT(hva[i] != MAP_FAILED, "node %d: mmap: %s", i,
			   strerror(errno));
		w[i] = (uint64_t *)(hva[i] + 5 * 4096 + 64);
	}
	slot_begin(slot, OP_ACCESS, 0, KIND_VALID, NULL, 5 * 4096 + 64);
	WRITE_ONCE(*w[0], v);
	got = READ_ONCE(*w[1]);
	DVM_ASSERT(got == v, "written %#lx on node 0, read %#lx on node 1",
		   (unsigned long)v, (unsigned long)got);
	for (i = 0; i < 2; i++) {
		munmap(hva[i], mem.size);
		close(fd[i]);
	}

	for (i = 0; i < 2; i++) {
		slot_begin(slot, OP_LEAVE, i, KIND_VALID, NULL, 0);
		DVM_ASSERT_OK(__dvm_leave(nodes[i].vm), "LEAVE after the fuzz");
	}
	slot_end(slot);
	for (i = 0; i < 2; i++)
		kvm_vm_free(nodes[i].vm);
	WRITE_ONCE(watchdog_stop, 1);
	pthread_join(watchdog, NULL);
	ksft_test_result_pass("members keep working after the fuzz: join, placement, KVM_RUN, PING x100, memory written on node 0 read on node 1, LEAVE\n");
}

static uint64_t parse_u64(const char *s, const char *what)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 0);
	TEST_ASSERT(!errno && end != s && !*end, "%s: '%s' is not a number",
		    what, s);
	return v;
}

int main(int argc, char *argv[])
{
	uint64_t calls = DEFAULT_CALLS;

	/* Output is often a file: keep lines in order and complete. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	dvm_require_abi();
	psz = getpagesize();
	host_ram = (uint64_t)sysconf(_SC_PHYS_PAGES) * psz;
	if (argc > 1)
		calls = parse_u64(argv[1], "calls");
	seed = argc > 2 ? parse_u64(argv[2], "seed") :
	       ((uint64_t)time(NULL) << 20) ^ getpid();

	ksft_print_header();
	ksft_set_plan(2);
	ksft_print_msg("seed %lu (to repeat: %s %lu %lu)\n",
		       (unsigned long)seed, argv[0], (unsigned long)calls,
		       (unsigned long)seed);
	if (calls < MIN_CALLS) {
		ksft_print_msg("%lu calls: raised to %d\n",
			       (unsigned long)calls, MIN_CALLS);
		calls = MIN_CALLS;
	}
	install_handlers();
	test_fuzz(calls);
	test_members_work();
	ksft_finished();
}
