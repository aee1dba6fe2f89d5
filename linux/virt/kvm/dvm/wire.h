/* SPDX-License-Identifier: GPL-2.0 */
/*
 * DVM wire format: the fixed header in front of every message between
 * nodes, whatever the transport. All fields are little endian. A message
 * is the header followed by exactly @len payload bytes; nothing is padded.
 */
#ifndef __KVM_DVM_WIRE_H
#define __KVM_DVM_WIRE_H

#include <linux/bits.h>
#include <linux/types.h>
#include <asm/byteorder.h>
#include <linux/build_bug.h>

#define DVM_WIRE_MAGIC		0x314d5644	/* "DVM1" on the wire */
#define DVM_WIRE_VERSION	2

/* Largest payload of any message: one page plus a small descriptor. */
#define DVM_WIRE_MAX_PAYLOAD	(4096 + 256)

/* The message answers the request with the same @req_id. */
#define DVM_WIRE_F_REPLY	BIT(0)
/* The payload is exactly one 4 KiB page of guest memory. */
#define DVM_WIRE_F_PAGE		BIT(1)
#define DVM_WIRE_F_ALL		(DVM_WIRE_F_REPLY | DVM_WIRE_F_PAGE)

#define DVM_WIRE_PAGE_SIZE	4096

struct dvm_wire_hdr {
	__le32 magic;
	__u8 version;
	__u8 pad;		/* must be zero */
	__le16 type;		/* message type, below the receiver's limit */
	__le16 flags;		/* DVM_WIRE_F_* */
	__le16 status;		/* replies: positive errno, 0 on success */
	__le32 len;		/* payload bytes that follow the header */
	__le64 req_id;		/* 0 for one-way messages */
};

static_assert(sizeof(struct dvm_wire_hdr) == 24);

/* A header checked by dvm_wire_parse(), in host byte order. */
struct dvm_wire_msg {
	u16 type;
	u16 flags;
	u16 status;
	u32 len;
	u64 req_id;
};

/*
 * Message types. Types 1-5 are the handshake: a connection carries nothing
 * else until it is authenticated, and never carries them again after.
 */
enum dvm_msg_type {
	DVM_MSG_NONE = 0,	/* never valid */
	DVM_MSG_HELLO,		/* connector -> acceptor: struct dvm_msg_hello */
	DVM_MSG_CHALLENGE,	/* acceptor -> connector: struct dvm_msg_challenge */
	DVM_MSG_PROOF,		/* connector -> acceptor: struct dvm_msg_proof */
	DVM_MSG_WELCOME,	/* acceptor -> connector: no payload */
	DVM_MSG_REJECT,		/* either way: struct dvm_msg_error */
	DVM_MSG_MESH_READY,	/* node -> node 0: all my links are up */
	DVM_MSG_MESH_UP,	/* node 0 -> all: every link is up */
	DVM_MSG_ABORT,		/* join failed: struct dvm_msg_error */
	DVM_MSG_HEARTBEAT,	/* one-way, no payload */
	DVM_MSG_BROKEN,		/* a node was lost: struct dvm_msg_error */
	DVM_MSG_LEAVE,		/* the sender leaves the cluster */
	DVM_MSG_VCPUS,		/* node -> node 0: struct dvm_msg_vcpus */
	DVM_MSG_VCPUS_VERDICT,	/* node 0 -> all: struct dvm_msg_verdict */
	DVM_MSG_ECHO,		/* request: the reply carries the same payload */
	/* node -> page's manager: struct dvm_msg_dsm_req; the reply is a
	 * struct dvm_msg_dsm_grant, followed by the page if it says so
	 */
	DVM_MSG_DSM_REQ,
	DVM_MSG_DSM_DONE,	/* requester -> manager: struct dvm_msg_dsm_done */
	/* manager -> holder: struct dvm_msg_dsm_fetch; the reply carries the
	 * page for DVM_DSM_OP_FETCH_*, nothing for DVM_DSM_OP_INVALIDATE
	 */
	DVM_MSG_DSM_FETCH,
	/* node -> node 0, before its DVM_MSG_VCPUS: struct dvm_msg_vcpu_info */
	DVM_MSG_VCPU_INFO,
	/* one-way: 1 .. DVM_IRQ_BATCH struct dvm_wire_irq, for vCPUs the
	 * receiver runs, applied in order
	 */
	DVM_MSG_IRQ,
	/* owner -> all, request: struct dvm_msg_apic_state; empty reply */
	DVM_MSG_APIC_STATE,
	/* node -> node 0, request: struct dvm_msg_io; the reply: what the
	 * access read, size * count bytes (none for writes)
	 */
	DVM_MSG_IO,
	/* node -> node 0, request, no payload: struct dvm_msg_clock */
	DVM_MSG_CLOCK,
	/* node 0 -> all, request: struct dvm_msg_vm_control */
	DVM_MSG_VM_CONTROL,
	/* node 0 -> all, request: struct dvm_msg_memslot */
	DVM_MSG_MEMSLOT,
	DVM_MSG_NR_TYPES
};

/* Statistics count a type under its uapi index (msg.c), not this number. */

#define DVM_NONCE_SIZE		32
#define DVM_MAC_SIZE		32	/* HMAC-SHA256 */

struct dvm_msg_hello {
	__le32 node_id;		/* the connector */
	__le32 nr_nodes;
	__le32 target;		/* the acceptor it means to reach */
	__le32 transport;
	__u8 nonce[DVM_NONCE_SIZE];
};

struct dvm_msg_challenge {
	__le32 node_id;		/* the acceptor */
	__le32 pad;		/* must be zero */
	__u8 nonce[DVM_NONCE_SIZE];
	__u8 mac[DVM_MAC_SIZE];	/* see dvm_auth_mac() */
};

struct dvm_msg_proof {
	__u8 mac[DVM_MAC_SIZE];
};

struct dvm_msg_error {
	__le32 error;		/* positive errno */
	__le32 node;		/* the node it is about, or ~0 */
};

struct dvm_msg_verdict {
	__le32 error;		/* positive errno, 0: the placement stands */
	__le32 node;		/* the node refused, or ~0 */
	__le32 vcpu;		/* the vCPU in conflict, or ~0 */
	__le32 pad;		/* must be zero */
	/* with error 0: the node of each vCPU id, or KVM_DVM_VCPU_NOWHERE */
	__u8 nodes[1024];
};

/*
 * HMAC-SHA256 under the cluster key of: the 8-byte label, the connector's
 * and the acceptor's node id (__le32 each), the connector's nonce, the
 * acceptor's nonce. The acceptor proves itself with label "DVMCHAL1", the
 * connector with "DVMPROF1".
 */
#define DVM_AUTH_LABEL_ACCEPTOR	"DVMCHAL1"
#define DVM_AUTH_LABEL_CONNECTOR "DVMPROF1"
#define DVM_AUTH_LABEL_SIZE	8

struct dvm_msg_vcpus {
	__le32 nr_vcpus;
	__le32 pad;		/* must be zero */
	__le64 local[1024 / 64];	/* the ids run here */
	__le64 created[1024 / 64];	/* the ids of the vCPUs created here */
};

/* What must be the same in every node's copy of a vCPU. */
struct dvm_wire_vcpu_id {
	__le32 cpuid_hash;	/* of the CPUID entries, see dvm_arch_vcpu_id() */
	__le32 tsc_khz;
};

/*
 * The identities of the vCPUs created on the sender with ids first to
 * first + count - 1 (entries of ids not created are zero), in chunks of
 * at most DVM_VCPU_INFO_CHUNK ids, in order, all before DVM_MSG_VCPUS.
 */
#define DVM_VCPU_INFO_CHUNK	256

struct dvm_msg_vcpu_info {
	__le32 first;
	__le32 count;		/* 1 .. DVM_VCPU_INFO_CHUNK */
	struct dvm_wire_vcpu_id ids[];
};

/* DSM: see Documentation/virt/kvm/dvm.rst, "Distributed shared memory". */
struct dvm_msg_dsm_req {
	__le64 page;		/* page index in the memory file */
	__le32 version;		/* the requester's copy, 0 if it has none */
	__u8 write;		/* 1: wants Modified, 0: wants Shared */
	__u8 have;		/* 1: the requester holds a copy */
	__u8 pad[2];		/* must be zero */
	__le64 pages;		/* the sender's memory file: the receiver's size */
};

#define DVM_DSM_GRANT_DATA	BIT(0)	/* the page follows the grant */
#define DVM_DSM_GRANT_ZERO	BIT(1)	/* never written: a zero page */

struct dvm_msg_dsm_grant {
	__le64 page;		/* the page requested: a late grant says it */
	__le32 version;		/* of the data the requester now holds */
	__le16 flags;		/* DVM_DSM_GRANT_* */
	__le16 pad;		/* must be zero */
};

struct dvm_msg_dsm_done {
	__le64 page;
};

enum dvm_dsm_op {
	DVM_DSM_OP_INVALIDATE,	/* drop the copy */
	DVM_DSM_OP_FETCH_KEEP,	/* send the page, keep it Shared */
	DVM_DSM_OP_FETCH_DROP,	/* send the page, then drop it */
	DVM_DSM_NR_OPS
};

struct dvm_msg_dsm_fetch {
	__le64 page;
	__le32 version;		/* the copy the manager believes is there */
	__u8 op;		/* enum dvm_dsm_op */
	__u8 pad[3];		/* must be zero */
	__le64 pages;		/* the sender's memory file: the receiver's size */
};

/*
 * Distributed irqchip: see Documentation/virt/kvm/dvm.rst, "Interrupts".
 * An interrupt for a vCPU another node runs travels as one event; the
 * sender resolved the destination, the owner accepts it as its own LAPIC
 * would (kvm_apic_set_irq()).
 */
enum dvm_irq_kind {
	DVM_IRQ_DELIVER,	/* accept @mode/@vector on @vcpu's LAPIC */
	DVM_IRQ_EOI,		/* node -> node 0: @vcpu ended @vector */
	DVM_IRQ_RTE,		/* node 0 -> all: IOAPIC pin @vcpu is @data */
	DVM_IRQ_NR_KINDS
};

#define DVM_IRQ_F_LEVEL		BIT(0)	/* DELIVER: asserted */
#define DVM_IRQ_F_TRIG_LEVEL	BIT(1)	/* DELIVER, EOI: level-triggered */
#define DVM_IRQ_F_NOTIFY	BIT(2)	/* RTE: node 0 wants its EOIs */
#define DVM_IRQ_F_ALL		(DVM_IRQ_F_LEVEL | DVM_IRQ_F_TRIG_LEVEL)

/* Delivery modes on the wire: the ICR's bits 10:8 (APIC_DM_* >> 8). */
#define DVM_IRQ_MODE_FIXED	0
#define DVM_IRQ_MODE_LOWEST	1
#define DVM_IRQ_MODE_SMI	2
#define DVM_IRQ_MODE_REMRD	3	/* KVM's PV kick */
#define DVM_IRQ_MODE_NMI	4
#define DVM_IRQ_MODE_INIT	5
#define DVM_IRQ_MODE_STARTUP	6
#define DVM_IRQ_NR_MODES	8	/* 7, ExtINT, is never forwarded */

struct dvm_wire_irq {
	__le32 vcpu;		/* DELIVER: the destination, run by the
				 * receiver; EOI: run by the sender; RTE:
				 * the IOAPIC pin
				 */
	__u8 kind;		/* enum dvm_irq_kind */
	__u8 mode;		/* DELIVER: DVM_IRQ_MODE_*; else 0 */
	__u8 vector;		/* DELIVER, EOI; RTE: 0 */
	__u8 flags;		/* DVM_IRQ_F_* */
	__le64 data;		/* RTE: the redirection entry; else 0 */
};

static_assert(sizeof(struct dvm_wire_irq) == 16);

#define DVM_IRQ_BATCH		64	/* events in one DVM_MSG_IRQ, at most */

/*
 * The registers that decide where an interrupt goes, as the vCPU's owner
 * has them; every other node keeps them in its copy of the vCPU.
 */
struct dvm_msg_apic_state {
	__le32 vcpu;
	__le32 pad;		/* must be zero */
	__le64 base;		/* MSR_IA32_APICBASE */
	__le32 id;		/* APIC_ID register */
	__le32 ldr;		/* APIC_LDR */
	__le32 dfr;		/* APIC_DFR */
	__le32 spiv;		/* APIC_SPIV */
};

/* struct dvm_msg_io::kind, also the index of the dvm_io_* statistics */
enum dvm_io_kind {
	DVM_IO_PIO_OUT,
	DVM_IO_PIO_IN,
	DVM_IO_MMIO_WRITE,
	DVM_IO_MMIO_READ,
	DVM_IO_SHUTDOWN,	/* KVM_EXIT_SHUTDOWN: size, count, addr 0 */
	DVM_IO_SYSTEM_EVENT,	/* addr: type; size 8, count: ndata */
	DVM_IO_NR_KINDS
};

#define DVM_IO_EVENT_DATA_MAX	16	/* kvm_run->system_event.data[] */

#define DVM_IO_DATA_MAX		4096	/* bytes of one forwarded access */

/*
 * A port or MMIO access of a vCPU that the sender runs, for node 0's
 * devices. PIO: size 1, 2 or 4, count accesses of a rep ins/outs, all
 * of one port; MMIO: size 1 to 8, count 1.
 */
struct dvm_msg_io {
	__le32 vcpu;
	__u8 kind;		/* enum dvm_io_kind */
	__u8 size;
	__le16 count;
	__le64 addr;		/* port, or guest physical address */
	__u8 data[];		/* writes: size * count bytes; reads: none */
};

static_assert(sizeof(struct dvm_msg_io) == 16);

/* Node 0's clocks, read as it answers a DVM_MSG_CLOCK. */
#define DVM_CLOCK_F_STABLE	0x1	/* its kvmclock uses the master clock */

struct dvm_msg_clock {
	__le64 kvmclock_ns;	/* the VM's kvmclock */
	__le64 guest_tsc;	/* the guest TSC of its vCPUs */
	__le32 tsc_khz;		/* their TSC rate */
	__le32 flags;		/* DVM_CLOCK_F_* */
};

static_assert(sizeof(struct dvm_msg_clock) == 24);

/* What node 0 asks of every node's vCPUs: KVM_DVM_VM_* (uapi) */
struct dvm_msg_vm_control {
	__le32 op;
	__le32 flags;		/* must be zero */
};

static_assert(sizeof(struct dvm_msg_vm_control) == 8);

/* A change of node 0's memory map: a slot of the memory file, or none. */
struct dvm_msg_memslot {
	__le32 slot;		/* KVM's: address space << 16 | slot id */
	__le32 flags;		/* KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY */
	__le64 gpa;		/* guest physical address */
	__le64 size;		/* bytes; 0: the slot is deleted */
	__le64 offset;		/* in the memory file */
};

static_assert(sizeof(struct dvm_msg_memslot) == 32);

void dvm_wire_build(struct dvm_wire_hdr *hdr, const struct dvm_wire_msg *msg);
int dvm_wire_parse(const struct dvm_wire_hdr *hdr, u16 nr_types,
		   struct dvm_wire_msg *msg);

#endif /* __KVM_DVM_WIRE_H */
