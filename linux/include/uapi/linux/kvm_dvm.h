/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * DVM: one KVM virtual machine spread over several hosts. The VM ioctls
 * below make a VM one node of a cluster. Documented in
 * Documentation/virt/kvm/dvm.rst.
 */
#ifndef __LINUX_KVM_DVM_H
#define __LINUX_KVM_DVM_H

#include <linux/types.h>
#include <linux/ioctl.h>

#ifndef KVMIO
#define KVMIO 0xAE
#endif

/*
 * KVM_CHECK_EXTENSION(KVM_CAP_DVM) returns the DVM features the kernel
 * has, a mask of KVM_DVM_CAP_*; 0 when it has no DVM. The number is
 * outside upstream's range on purpose. A feature added later gets a new
 * bit: userspace tests the bits it uses. (The first ABI returned a
 * version, 1; this mask is never 1, so such userspace refuses it.)
 */
#define KVM_CAP_DVM			0x44564d00
#define KVM_DVM_CAP_CLUSTER		0x1 /* JOIN .. PING, TCP */
#define KVM_DVM_CAP_RDMA		0x2 /* KVM_DVM_TRANSPORT_RDMA */
#define KVM_DVM_CAP_MEMORY		0x4 /* CREATE_MEMORY, PIN, UNPIN */
#define KVM_DVM_CAP_EXIT_INFO		0x8 /* kvm_run->dvm_broken */
#define KVM_DVM_CAP_VCPU_MAP		0x10 /* struct kvm_dvm_vcpus with nodes[] */
#define KVM_DVM_CAP_IRQCHIP		0x20 /* interrupts reach remote vCPUs */
#define KVM_DVM_CAP_IO			0x40 /* KVM_DVM_JOIN_FORWARD_IO */
#define KVM_DVM_CAP_VM_CONTROL		0x80 /* KVM_DVM_VM_CONTROL */
#define KVM_DVM_CAP_MEMSLOTS		0x100 /* node 0's memory map everywhere */

/*
 * KVM_RUN exit: the cluster lost a node. kvm_run->dvm_broken has the
 * node and the reason, as struct kvm_dvm_state does.
 */
#define KVM_EXIT_DVM_BROKEN		0x44564d01

#define KVM_DVM_MAX_NODES		64
#define KVM_DVM_MAX_KEY			64
#define KVM_DVM_MIN_KEY			16
#define KVM_DVM_MAX_VCPUS		1024
#define KVM_DVM_NO_NODE			0xffffffffu

#define KVM_DVM_TRANSPORT_TCP		1
#define KVM_DVM_TRANSPORT_RDMA		2

/* A peer silent this long is lost (struct kvm_dvm_join.peer_timeout_ms). */
#define KVM_DVM_PEER_TIMEOUT_DEFAULT_MS	3000
#define KVM_DVM_PEER_TIMEOUT_MIN_MS	1000
#define KVM_DVM_PEER_TIMEOUT_MAX_MS	600000

/* One node's address: where it listens, and where it connects from. */
struct kvm_dvm_node_addr {
	__u16 family;		/* AF_INET (2) or AF_INET6 (10) */
	__u16 port;		/* host byte order, not 0 */
	__u32 scope_id;		/* IPv6 link-local only, else 0 */
	__u8 addr[16];		/* IPv4: first 4 bytes, rest zero */
};

/*
 * struct kvm_dvm_join::flags. FORWARD_IO: this node's vCPUs send their
 * port and MMIO exits to node 0, whose KVM_RUN of its copy of the vCPU
 * answers them (Documentation/virt/kvm/dvm.rst, "I/O forwarding").
 */
#define KVM_DVM_JOIN_FORWARD_IO		0x1
#define KVM_DVM_JOIN_FLAGS		KVM_DVM_JOIN_FORWARD_IO

struct kvm_dvm_join {
	__u32 flags;		/* KVM_DVM_JOIN_*, others must be 0 */
	__u32 node_id;		/* this node, < nr_nodes */
	__u32 nr_nodes;		/* 2 .. KVM_DVM_MAX_NODES */
	__u32 transport;	/* KVM_DVM_TRANSPORT_* */
	__u32 connect_timeout_ms; /* 1 .. 600000 */
	__u32 key_len;		/* KVM_DVM_MIN_KEY .. KVM_DVM_MAX_KEY */
	__u8 key[KVM_DVM_MAX_KEY];
	__u64 addrs;		/* user pointer: nr_nodes struct kvm_dvm_node_addr */
	__u32 failed_node;	/* out: the peer that failed, or KVM_DVM_NO_NODE */
	__u32 pad;		/* must be 0 */
	__u32 peer_timeout_ms;	/* 0: the default; else MIN .. MAX */
	__u32 pad2;		/* must be 0 */
	__u64 reserved[3];	/* must be 0 */
};

/* struct kvm_dvm_vcpus::nodes[] of a vCPU id that no node runs */
#define KVM_DVM_VCPU_NOWHERE		0xff

/*
 * KVM_DVM_SET_LOCAL_VCPUS. vCPU ids may be sparse (QEMU's are APIC IDs):
 * every vCPU created on any node must be run by exactly one node, ids
 * never created are no error. The first ABI's struct, without nodes[],
 * had another size, hence another ioctl number: it fails with ENOTTY.
 */
struct kvm_dvm_vcpus {
	__u32 flags;		/* must be 0 */
	__u32 nr_vcpus;		/* ids are below it, 1 .. KVM_DVM_MAX_VCPUS */
	__u32 failed_node;	/* out: node whose assignment was refused */
	__u32 failed_vcpu;	/* out: vCPU id in conflict, or KVM_DVM_NO_NODE */
	__u64 reserved[2];	/* must be 0 */
	__u64 local[KVM_DVM_MAX_VCPUS / 64]; /* bitmap of vCPU ids run here */
	__u8 nodes[KVM_DVM_MAX_VCPUS]; /* out: the node that runs each id */
};

/* struct kvm_dvm_state::state */
#define KVM_DVM_STATE_NONE		0	/* never joined */
#define KVM_DVM_STATE_JOINED		1	/* mesh up, vCPUs not placed */
#define KVM_DVM_STATE_RUNNING		2	/* vCPUs placed, KVM_RUN allowed */
#define KVM_DVM_STATE_BROKEN		3	/* a node was lost */
#define KVM_DVM_STATE_LEFT		4	/* KVM_DVM_LEAVE done */

/* struct kvm_dvm_link::state */
#define KVM_DVM_LINK_SELF		0
#define KVM_DVM_LINK_UP			1
#define KVM_DVM_LINK_DOWN		2

struct kvm_dvm_link {
	__u32 node;
	__u32 state;		/* KVM_DVM_LINK_* */
	__u64 tx_msgs;
	__u64 rx_msgs;
	__u64 tx_bytes;
	__u64 rx_bytes;
	__u64 rtt_min_ns;	/* request/reply round trips; 0 if none */
	__u64 rtt_avg_ns;
	__u64 rtt_max_ns;
	__u64 last_rx_ms;	/* milliseconds since the last message from it */
	__u64 reserved[4];	/* out: 0, for what links will report later */
};

struct kvm_dvm_state {
	__u32 flags;		/* must be 0 */
	__u32 state;		/* KVM_DVM_STATE_* */
	__u32 node_id;
	__u32 nr_nodes;
	__u32 transport;
	__u32 nr_vcpus;		/* 0 until KVM_DVM_SET_LOCAL_VCPUS */
	__u32 broken_node;	/* the node lost, or KVM_DVM_NO_NODE */
	__s32 broken_error;	/* why, as a negative errno; 0 if not broken */
	__u32 nr_links;		/* in: room in links; out: nr_nodes */
	__u32 pad;		/* must be 0 */
	__u64 links;		/* user pointer: nr_links struct kvm_dvm_link */
	__u64 reserved[4];	/* must be 0 */
};

/*
 * Index of a message kind in the per-kind arrays of the VM's binary
 * statistics (dvm_tx_msgs, dvm_rx_msgs, dvm_tx_bytes, dvm_rx_bytes), of
 * KVM_DVM_STAT_MSG_KINDS entries. Part of this ABI, whatever number a
 * message has on the wire; entries of kinds not defined yet stay 0.
 */
#define KVM_DVM_STAT_MSG_HELLO		0
#define KVM_DVM_STAT_MSG_CHALLENGE	1
#define KVM_DVM_STAT_MSG_PROOF		2
#define KVM_DVM_STAT_MSG_WELCOME	3
#define KVM_DVM_STAT_MSG_REJECT		4
#define KVM_DVM_STAT_MSG_MESH_READY	5
#define KVM_DVM_STAT_MSG_MESH_UP	6
#define KVM_DVM_STAT_MSG_ABORT		7
#define KVM_DVM_STAT_MSG_HEARTBEAT	8
#define KVM_DVM_STAT_MSG_BROKEN		9
#define KVM_DVM_STAT_MSG_LEAVE		10
#define KVM_DVM_STAT_MSG_VCPUS		11
#define KVM_DVM_STAT_MSG_VCPUS_VERDICT	12
#define KVM_DVM_STAT_MSG_ECHO		13
#define KVM_DVM_STAT_MSG_DSM_REQ	14
#define KVM_DVM_STAT_MSG_DSM_DONE	15
#define KVM_DVM_STAT_MSG_DSM_FETCH	16
#define KVM_DVM_STAT_MSG_VCPU_INFO	17
#define KVM_DVM_STAT_MSG_IRQ		18
#define KVM_DVM_STAT_MSG_APIC_STATE	19
#define KVM_DVM_STAT_MSG_IO		20
#define KVM_DVM_STAT_MSG_CLOCK		21
#define KVM_DVM_STAT_MSG_VM_CONTROL	22
#define KVM_DVM_STAT_MSG_MEMSLOT	23
#define KVM_DVM_STAT_MSG_KINDS		32

/*
 * Index in the per-mode arrays of the VM's binary statistics
 * (dvm_irq_sent, dvm_irq_received): the delivery mode, bits 10:8 of the
 * APIC's ICR (0 fixed, 1 lowest priority, 2 SMI, 3 KVM's PV kick, 4 NMI,
 * 5 INIT, 6 STARTUP).
 */
#define KVM_DVM_STAT_IRQ_MODES		8

/* Index in the per-kind arrays dvm_io_forwarded and dvm_io_proxied. */
#define KVM_DVM_STAT_IO_PIO_OUT		0
#define KVM_DVM_STAT_IO_PIO_IN		1
#define KVM_DVM_STAT_IO_MMIO_WRITE	2
#define KVM_DVM_STAT_IO_MMIO_READ	3
#define KVM_DVM_STAT_IO_SHUTDOWN	4
#define KVM_DVM_STAT_IO_SYSTEM_EVENT	5
#define KVM_DVM_STAT_IO_KINDS		6

/* Request/reply echo to one peer, for tests and benchmarks. */
struct kvm_dvm_ping {
	__u32 flags;		/* must be 0 */
	__u32 node;		/* a peer, not this node */
	__u32 size;		/* payload bytes, 0 .. 4096 */
	__u32 count;		/* round trips, 1 .. 1000000 */
	__u32 depth;		/* requests in flight, 1 .. 256 */
	__u32 pad;		/* must be 0 */
	__u64 min_ns;		/* out */
	__u64 avg_ns;		/* out */
	__u64 max_ns;		/* out */
	__u64 total_ns;		/* out: wall time of all round trips */
	__u64 reserved[2];	/* must be 0 */
};

#define KVM_DVM_JOIN		_IOWR(KVMIO, 0xf0, struct kvm_dvm_join)
#define KVM_DVM_SET_LOCAL_VCPUS	_IOWR(KVMIO, 0xf1, struct kvm_dvm_vcpus)
#define KVM_DVM_GET_STATE	_IOWR(KVMIO, 0xf2, struct kvm_dvm_state)
#define KVM_DVM_LEAVE		_IO(KVMIO, 0xf3)
#define KVM_DVM_PING		_IOWR(KVMIO, 0xf4, struct kvm_dvm_ping)

/*
 * KVM_DVM_CREATE_MEMORY: the VM's coherent guest RAM, a file of @size
 * bytes to mmap(MAP_SHARED) and give to KVM_SET_USER_MEMORY_REGION.
 * Its pages live where they are used; see Documentation/virt/kvm/dvm.rst.
 */
#define KVM_DVM_MAX_MEMORY		0x10000000000ULL	/* 1 TiB */

struct kvm_dvm_memory {
	__u64 size;		/* bytes, a multiple of 4096, <= KVM_DVM_MAX_MEMORY */
	__u32 flags;		/* must be 0 */
	__u32 pad;		/* must be 0 */
	__u64 reserved[4];	/* must be 0 */
};

/* KVM_DVM_PIN / KVM_DVM_UNPIN: a range of the memory file, in bytes. */
#define KVM_DVM_MAX_PINS		0xffff	/* per page */

struct kvm_dvm_pin {
	__u64 offset;		/* multiple of 4096 */
	__u64 size;		/* multiple of 4096, not 0 */
	__u32 flags;		/* must be 0 */
	__u32 pad;		/* must be 0 */
	__u64 reserved[2];	/* must be 0 */
};

#define KVM_DVM_CREATE_MEMORY	_IOW(KVMIO, 0xf5, struct kvm_dvm_memory)
#define KVM_DVM_PIN		_IOW(KVMIO, 0xf6, struct kvm_dvm_pin)
#define KVM_DVM_UNPIN		_IOW(KVMIO, 0xf7, struct kvm_dvm_pin)

/*
 * KVM_DVM_VM_CONTROL, on node 0 only: the whole VM's lifecycle. See
 * Documentation/virt/kvm/dvm.rst, "VM lifecycle".
 */
#define KVM_DVM_VM_PAUSE		1	/* no vCPU of any node runs */
#define KVM_DVM_VM_RESUME		2	/* they run again */
#define KVM_DVM_VM_RESET		3	/* pause, every vCPU reset */
#define KVM_DVM_VM_POWEROFF		4	/* every KVM_RUN ends, for good */

struct kvm_dvm_vm_control {
	__u32 op;		/* KVM_DVM_VM_* */
	__u32 flags;		/* must be 0 */
	__u32 failed_node;	/* out: the node that failed, or KVM_DVM_NO_NODE */
	__u32 pad;		/* must be 0 */
	__u64 reserved[2];	/* must be 0 */
};

#define KVM_DVM_VM_CONTROL	_IOWR(KVMIO, 0xf8, struct kvm_dvm_vm_control)

#endif /* __LINUX_KVM_DVM_H */
