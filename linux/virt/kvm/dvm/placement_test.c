// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for DVM's vCPU placement verdict: a partition, sparse ids
 * included, is accepted with its vCPU -> node map; a count mismatch, an
 * overlap, a vCPU claimed where it was not created, a created vCPU that
 * no node runs, and copies of a vCPU with another CPUID or TSC rate are
 * each refused naming the node and vCPU at fault.
 */
#include <kunit/test.h>
#include <linux/bitmap.h>
#include <linux/kvm_dvm.h>

#include "dvm.h"

#define NODES 3

struct claims {
	struct dvm_vcpu_claim *ptr[NODES];
	struct dvm_msg_verdict v;
};

/*
 * Every node creates vCPUs 0 .. @nr - 1 except those in @holes, all with
 * the same identity; vCPU i runs on node i % NODES.
 */
static struct claims *claims_round_robin(struct kunit *test, u32 nr,
					 const unsigned long *holes)
{
	struct claims *c = kunit_kzalloc(test, sizeof(*c), GFP_KERNEL);
	u32 i, id;

	KUNIT_ASSERT_NOT_NULL(test, c);
	for (i = 0; i < NODES; i++) {
		c->ptr[i] = kunit_kzalloc(test, sizeof(*c->ptr[i]), GFP_KERNEL);
		KUNIT_ASSERT_NOT_NULL(test, c->ptr[i]);
		c->ptr[i]->nr_vcpus = nr;
		c->ptr[i]->complete = true;
	}
	for (id = 0; id < nr; id++) {
		if (holes && test_bit(id, holes))
			continue;
		set_bit(id, c->ptr[id % NODES]->local);
		for (i = 0; i < NODES; i++) {
			set_bit(id, c->ptr[i]->created);
			c->ptr[i]->ids[id].cpuid_hash = 0x1234;
			c->ptr[i]->ids[id].tsc_khz = 2000000;
		}
	}
	return c;
}

static struct dvm_msg_verdict *judge(struct kunit *test, struct claims *c,
				     u32 err, u32 node, u32 vcpu)
{
	dvm_placement_judge(NODES, c->ptr, &c->v);
	KUNIT_EXPECT_EQ(test, le32_to_cpu(c->v.error), err);
	KUNIT_EXPECT_EQ(test, le32_to_cpu(c->v.node), node);
	KUNIT_EXPECT_EQ(test, le32_to_cpu(c->v.vcpu), vcpu);
	KUNIT_EXPECT_EQ(test, le32_to_cpu(c->v.pad), 0);
	return &c->v;
}

static void dvm_placement_accepts_partition(struct kunit *test)
{
	struct dvm_msg_verdict *v;
	u32 id;

	v = judge(test, claims_round_robin(test, 7, NULL), 0, KVM_DVM_NO_NODE,
		  KVM_DVM_NO_NODE);
	for (id = 0; id < KVM_DVM_MAX_VCPUS; id++)
		KUNIT_EXPECT_EQ(test, v->nodes[id],
				id < 7 ? id % NODES : KVM_DVM_VCPU_NOWHERE);
	v = judge(test, claims_round_robin(test, KVM_DVM_MAX_VCPUS, NULL), 0,
		  KVM_DVM_NO_NODE, KVM_DVM_NO_NODE);
	KUNIT_EXPECT_EQ(test, v->nodes[KVM_DVM_MAX_VCPUS - 1],
			(KVM_DVM_MAX_VCPUS - 1) % NODES);
}

/* Ids never created anywhere (QEMU's APIC IDs may leave holes). */
static void dvm_placement_accepts_sparse_ids(struct kunit *test)
{
	DECLARE_BITMAP(holes, KVM_DVM_MAX_VCPUS) = { 0 };
	struct dvm_msg_verdict *v;

	set_bit(1, holes);
	set_bit(5, holes);
	v = judge(test, claims_round_robin(test, 9, holes), 0,
		  KVM_DVM_NO_NODE, KVM_DVM_NO_NODE);
	KUNIT_EXPECT_EQ(test, v->nodes[0], 0);
	KUNIT_EXPECT_EQ(test, v->nodes[1], KVM_DVM_VCPU_NOWHERE);
	KUNIT_EXPECT_EQ(test, v->nodes[5], KVM_DVM_VCPU_NOWHERE);
	KUNIT_EXPECT_EQ(test, v->nodes[8], 2);
}

static void dvm_placement_refuses_count_mismatch(struct kunit *test)
{
	struct claims *c = claims_round_robin(test, 6, NULL);

	c->ptr[2]->nr_vcpus = 7;
	judge(test, c, EINVAL, 2, KVM_DVM_NO_NODE);
}

static void dvm_placement_refuses_overlap(struct kunit *test)
{
	struct claims *c = claims_round_robin(test, 6, NULL);

	set_bit(4, c->ptr[2]->local);	/* vCPU 4 is node 1's */
	judge(test, c, EEXIST, 2, 4);
}

static void dvm_placement_refuses_not_created(struct kunit *test)
{
	struct claims *c = claims_round_robin(test, 6, NULL);

	clear_bit(4, c->ptr[1]->created);	/* node 1 runs vCPU 4 */
	judge(test, c, ENOENT, 1, 4);
}

static void dvm_placement_refuses_unrun_vcpu(struct kunit *test)
{
	struct claims *c = claims_round_robin(test, 6, NULL);

	clear_bit(3, c->ptr[0]->local);
	clear_bit(5, c->ptr[2]->local);
	judge(test, c, ENXIO, 0, 3);
	/* Created on node 2 only: still a vCPU that must run somewhere. */
	c = claims_round_robin(test, 6, NULL);
	clear_bit(5, c->ptr[2]->local);
	clear_bit(5, c->ptr[0]->created);
	clear_bit(5, c->ptr[1]->created);
	judge(test, c, ENXIO, 2, 5);
}

static void dvm_placement_refuses_other_copies(struct kunit *test)
{
	struct claims *c = claims_round_robin(test, 6, NULL);

	c->ptr[2]->ids[4].cpuid_hash ^= 1;	/* node 1 runs vCPU 4 */
	judge(test, c, EXDEV, 2, 4);
	c = claims_round_robin(test, 6, NULL);
	c->ptr[1]->ids[4].cpuid_hash ^= 1;	/* the copy that runs */
	judge(test, c, EXDEV, 0, 4);
	c = claims_round_robin(test, 6, NULL);
	c->ptr[0]->ids[2].tsc_khz = 1000000;
	judge(test, c, ERANGE, 0, 2);
	/* The same rate everywhere, but caught up in software on node 1. */
	c = claims_round_robin(test, 6, NULL);
	c->ptr[1]->ids[5].tsc_khz = 0;
	judge(test, c, ERANGE, 1, 5);
	/* An id a node did not create: its entry there means nothing. */
	c = claims_round_robin(test, 6, NULL);
	clear_bit(3, c->ptr[2]->created);
	c->ptr[2]->ids[3].tsc_khz = 1;
	judge(test, c, 0, KVM_DVM_NO_NODE, KVM_DVM_NO_NODE);
}

static struct kunit_case dvm_placement_cases[] = {
	KUNIT_CASE(dvm_placement_accepts_partition),
	KUNIT_CASE(dvm_placement_accepts_sparse_ids),
	KUNIT_CASE(dvm_placement_refuses_count_mismatch),
	KUNIT_CASE(dvm_placement_refuses_overlap),
	KUNIT_CASE(dvm_placement_refuses_not_created),
	KUNIT_CASE(dvm_placement_refuses_unrun_vcpu),
	KUNIT_CASE(dvm_placement_refuses_other_copies),
	{}
};

static struct kunit_suite dvm_placement_suite = {
	.name = "dvm_placement",
	.test_cases = dvm_placement_cases,
};

kunit_test_suite(dvm_placement_suite);
