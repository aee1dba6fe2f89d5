// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for the DVM wire format: a header survives a round trip, and
 * every malformed field is refused with its own errno.
 */
#include <kunit/test.h>

#include "wire.h"

#define NR_TYPES 8

static void build_valid(struct dvm_wire_hdr *hdr)
{
	struct dvm_wire_msg msg = {
		.type = 3, .flags = DVM_WIRE_F_REPLY | DVM_WIRE_F_PAGE,
		.status = 0, .len = DVM_WIRE_PAGE_SIZE, .req_id = 0x1122334455ull,
	};

	dvm_wire_build(hdr, &msg);
}

static void dvm_wire_roundtrip(struct kunit *test)
{
	struct dvm_wire_hdr hdr;
	struct dvm_wire_msg msg;

	build_valid(&hdr);
	KUNIT_ASSERT_EQ(test, dvm_wire_parse(&hdr, NR_TYPES, &msg), 0);
	KUNIT_EXPECT_EQ(test, msg.type, 3);
	KUNIT_EXPECT_EQ(test, msg.flags, DVM_WIRE_F_REPLY | DVM_WIRE_F_PAGE);
	KUNIT_EXPECT_EQ(test, msg.len, DVM_WIRE_PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, msg.req_id, 0x1122334455ull);
}

static void dvm_wire_little_endian(struct kunit *test)
{
	struct dvm_wire_hdr hdr;
	const u8 *b = (const u8 *)&hdr;

	build_valid(&hdr);
	/* "DVM1", then version 1 at byte 4, type 3 at byte 6. */
	KUNIT_EXPECT_EQ(test, b[0], 'D');
	KUNIT_EXPECT_EQ(test, b[3], '1');
	KUNIT_EXPECT_EQ(test, b[4], DVM_WIRE_VERSION);
	KUNIT_EXPECT_EQ(test, b[6], 3);
	KUNIT_EXPECT_EQ(test, b[7], 0);
	KUNIT_EXPECT_EQ(test, b[16], 0x55);
}

static void dvm_wire_rejects_foreign(struct kunit *test)
{
	struct dvm_wire_hdr hdr;
	struct dvm_wire_msg msg;

	build_valid(&hdr);
	hdr.magic = cpu_to_le32(0x12345678);
	KUNIT_EXPECT_EQ(test, dvm_wire_parse(&hdr, NR_TYPES, &msg), -EPROTO);

	build_valid(&hdr);
	hdr.version = DVM_WIRE_VERSION + 1;
	KUNIT_EXPECT_EQ(test, dvm_wire_parse(&hdr, NR_TYPES, &msg), -EPROTO);

	build_valid(&hdr);
	hdr.pad = 1;
	KUNIT_EXPECT_EQ(test, dvm_wire_parse(&hdr, NR_TYPES, &msg), -EINVAL);
}

static void dvm_wire_rejects_type(struct kunit *test)
{
	struct dvm_wire_hdr hdr;
	struct dvm_wire_msg msg;

	build_valid(&hdr);
	hdr.type = cpu_to_le16(NR_TYPES);
	KUNIT_EXPECT_EQ(test, dvm_wire_parse(&hdr, NR_TYPES, &msg), -EBADMSG);
	hdr.type = cpu_to_le16(0xffff);
	KUNIT_EXPECT_EQ(test, dvm_wire_parse(&hdr, NR_TYPES, &msg), -EBADMSG);
	hdr.type = cpu_to_le16(NR_TYPES - 1);
	KUNIT_EXPECT_EQ(test, dvm_wire_parse(&hdr, NR_TYPES, &msg), 0);
}

static void dvm_wire_rejects_length(struct kunit *test)
{
	struct dvm_wire_hdr hdr;
	struct dvm_wire_msg msg;

	build_valid(&hdr);
	hdr.len = cpu_to_le32(DVM_WIRE_PAGE_SIZE - 1);
	KUNIT_EXPECT_EQ(test, dvm_wire_parse(&hdr, NR_TYPES, &msg), -EMSGSIZE);

	hdr.flags = cpu_to_le16(0);
	hdr.req_id = 0;
	hdr.len = cpu_to_le32(DVM_WIRE_MAX_PAYLOAD + 1);
	KUNIT_EXPECT_EQ(test, dvm_wire_parse(&hdr, NR_TYPES, &msg), -EMSGSIZE);
	hdr.len = cpu_to_le32(0xffffffff);
	KUNIT_EXPECT_EQ(test, dvm_wire_parse(&hdr, NR_TYPES, &msg), -EMSGSIZE);
	hdr.len = cpu_to_le32(DVM_WIRE_MAX_PAYLOAD);
	KUNIT_EXPECT_EQ(test, dvm_wire_parse(&hdr, NR_TYPES, &msg), 0);
}

static void dvm_wire_rejects_flags(struct kunit *test)
{
	struct dvm_wire_hdr hdr;
	struct dvm_wire_msg msg;

	build_valid(&hdr);
	hdr.flags = cpu_to_le16(DVM_WIRE_F_ALL + 1);
	KUNIT_EXPECT_EQ(test, dvm_wire_parse(&hdr, NR_TYPES, &msg), -EINVAL);

	/* A reply without a request id. */
	build_valid(&hdr);
	hdr.req_id = 0;
	KUNIT_EXPECT_EQ(test, dvm_wire_parse(&hdr, NR_TYPES, &msg), -EINVAL);

	/* A status on a request. */
	build_valid(&hdr);
	hdr.flags = cpu_to_le16(DVM_WIRE_F_PAGE);
	hdr.status = cpu_to_le16(5);
	KUNIT_EXPECT_EQ(test, dvm_wire_parse(&hdr, NR_TYPES, &msg), -EINVAL);
	hdr.status = 0;
	KUNIT_EXPECT_EQ(test, dvm_wire_parse(&hdr, NR_TYPES, &msg), 0);
}

static struct kunit_case dvm_wire_cases[] = {
	KUNIT_CASE(dvm_wire_roundtrip),
	KUNIT_CASE(dvm_wire_little_endian),
	KUNIT_CASE(dvm_wire_rejects_foreign),
	KUNIT_CASE(dvm_wire_rejects_type),
	KUNIT_CASE(dvm_wire_rejects_length),
	KUNIT_CASE(dvm_wire_rejects_flags),
	{}
};

static struct kunit_suite dvm_wire_suite = {
	.name = "dvm_wire",
	.test_cases = dvm_wire_cases,
};

kunit_test_suite(dvm_wire_suite);
