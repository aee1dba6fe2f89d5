// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for DVM's vCPU placement verdict: a partition is accepted;
 * a count mismatch, an overlap and a hole are each refused naming the
 * node and vCPU at fault.
 */
#include <kunit/test.h>
#include <linux/bitmap.h>
#include <linux/kvm_dvm.h>

#include "dvm.h"

#define NODES 3

struct claims {
	unsigned long bits[NODES][BITS_TO_LONGS(KVM_DVM_MAX_VCPUS)];
	unsigned long *ptr[NODES];
	u32 nr[NODES];
};

/* vCPU i on node i % NODES, @nr vCPUs. */
static void claims_round_robin(struct claims *c, u32 nr)
{
	u32 i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < NODES; i++) {
		c->ptr[i] = c->bits[i];
		c->nr[i] = nr;
	}
	for (i = 0; i < nr; i++)
		set_bit(i, c->bits[i % NODES]);
}

static void expect_verdict(struct kunit *test, struct claims *c, u32 err,
			   u32 node, u32 vcpu)
{
	struct dvm_msg_verdict v;

	dvm_placement_judge(NODES, c->ptr, c->nr, &v);
	KUNIT_EXPECT_EQ(test, le32_to_cpu(v.error), err);
	KUNIT_EXPECT_EQ(test, le32_to_cpu(v.node), node);
	KUNIT_EXPECT_EQ(test, le32_to_cpu(v.vcpu), vcpu);
	KUNIT_EXPECT_EQ(test, le32_to_cpu(v.pad), 0);
}

static void dvm_placement_accepts_partition(struct kunit *test)
{
	struct claims c;

	claims_round_robin(&c, 7);
	expect_verdict(test, &c, 0, KVM_DVM_NO_NODE, KVM_DVM_NO_NODE);
	claims_round_robin(&c, KVM_DVM_MAX_VCPUS);
	expect_verdict(test, &c, 0, KVM_DVM_NO_NODE, KVM_DVM_NO_NODE);
}

static void dvm_placement_refuses_count_mismatch(struct kunit *test)
{
	struct claims c;

	claims_round_robin(&c, 6);
	c.nr[2] = 7;
	expect_verdict(test, &c, EINVAL, 2, KVM_DVM_NO_NODE);
}

static void dvm_placement_refuses_overlap(struct kunit *test)
{
	struct claims c;

	claims_round_robin(&c, 6);
	set_bit(4, c.bits[2]);	/* vCPU 4 is node 1's */
	expect_verdict(test, &c, EEXIST, 2, 4);
}

static void dvm_placement_refuses_hole(struct kunit *test)
{
	struct claims c;

	claims_round_robin(&c, 6);
	clear_bit(3, c.bits[0]);
	clear_bit(5, c.bits[2]);
	expect_verdict(test, &c, ENXIO, KVM_DVM_NO_NODE, 3);
}

static struct kunit_case dvm_placement_cases[] = {
	KUNIT_CASE(dvm_placement_accepts_partition),
	KUNIT_CASE(dvm_placement_refuses_count_mismatch),
	KUNIT_CASE(dvm_placement_refuses_overlap),
	KUNIT_CASE(dvm_placement_refuses_hole),
	{}
};

static struct kunit_suite dvm_placement_suite = {
	.name = "dvm_placement",
	.test_cases = dvm_placement_cases,
};

kunit_test_suite(dvm_placement_suite);
