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
#define DVM_WIRE_VERSION	1

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

void dvm_wire_build(struct dvm_wire_hdr *hdr, const struct dvm_wire_msg *msg);
int dvm_wire_parse(const struct dvm_wire_hdr *hdr, u16 nr_types,
		   struct dvm_wire_msg *msg);

#endif /* __KVM_DVM_WIRE_H */
