// SPDX-License-Identifier: GPL-2.0
/*
 * DVM wire format: building and checking message headers. Every field of a
 * received header is checked here before any other code looks at it.
 */
#include <linux/errno.h>

#include "wire.h"

void dvm_wire_build(struct dvm_wire_hdr *hdr, const struct dvm_wire_msg *msg)
{
	hdr->magic = cpu_to_le32(DVM_WIRE_MAGIC);
	hdr->version = DVM_WIRE_VERSION;
	hdr->pad = 0;
	hdr->type = cpu_to_le16(msg->type);
	hdr->flags = cpu_to_le16(msg->flags);
	hdr->status = cpu_to_le16(msg->status);
	hdr->len = cpu_to_le32(msg->len);
	hdr->req_id = cpu_to_le64(msg->req_id);
}

static int dvm_wire_check_flags(const struct dvm_wire_msg *msg)
{
	if (msg->flags & ~DVM_WIRE_F_ALL)
		return -EINVAL;
	if ((msg->flags & DVM_WIRE_F_PAGE) && msg->len != DVM_WIRE_PAGE_SIZE)
		return -EMSGSIZE;
	/* Only replies carry a status. */
	if (!(msg->flags & DVM_WIRE_F_REPLY) && msg->status)
		return -EINVAL;
	/* A reply must name the request it answers. */
	if ((msg->flags & DVM_WIRE_F_REPLY) && !msg->req_id)
		return -EINVAL;
	return 0;
}

/**
 * dvm_wire_parse - check a received header and convert it to host order
 * @hdr: the header as received
 * @nr_types: number of message types the receiver knows
 * @msg: filled in when the header is valid
 *
 * Return: 0, or -EPROTO for a foreign magic or version, -EBADMSG for an
 * unknown type, -EMSGSIZE for a bad length, -EINVAL for bad flags, status
 * or padding. A peer that sends a bad header is dropped by the caller.
 */
int dvm_wire_parse(const struct dvm_wire_hdr *hdr, u16 nr_types,
		   struct dvm_wire_msg *msg)
{
	if (le32_to_cpu(hdr->magic) != DVM_WIRE_MAGIC ||
	    hdr->version != DVM_WIRE_VERSION)
		return -EPROTO;
	if (hdr->pad)
		return -EINVAL;

	msg->type = le16_to_cpu(hdr->type);
	msg->flags = le16_to_cpu(hdr->flags);
	msg->status = le16_to_cpu(hdr->status);
	msg->len = le32_to_cpu(hdr->len);
	msg->req_id = le64_to_cpu(hdr->req_id);

	if (msg->type >= nr_types)
		return -EBADMSG;
	if (msg->len > DVM_WIRE_MAX_PAYLOAD)
		return -EMSGSIZE;
	return dvm_wire_check_flags(msg);
}
