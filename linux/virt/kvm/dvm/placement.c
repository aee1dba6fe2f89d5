// SPDX-License-Identifier: GPL-2.0
/*
 * DVM vCPU placement: node 0's verdict on the claims of all nodes. Every
 * vCPU id below the agreed count runs on exactly one node.
 */
#include <linux/bitmap.h>
#include <linux/errno.h>
#include <linux/kvm_dvm.h>

#include "dvm.h"

static void dvm_verdict(struct dvm_msg_verdict *v, int err, u32 node,
			u32 vcpu)
{
	v->error = cpu_to_le32(err);
	v->node = cpu_to_le32(node);
	v->vcpu = cpu_to_le32(vcpu);
	v->pad = 0;
}

/**
 * dvm_placement_judge - check the claims of every node
 * @nr_nodes: nodes, each with a claim
 * @claims: per node, the bitmap of vCPU ids it runs
 * @nr_vcpus: per node, the VM's vCPU count it says
 * @v: the verdict: error 0, or EINVAL (counts differ; @node: the first
 *	node that differs from node 0), EEXIST (@vcpu claimed by an earlier
 *	node and by @node), ENXIO (@vcpu claimed by none)
 */
void dvm_placement_judge(u32 nr_nodes, unsigned long *const *claims,
			 const u32 *nr_vcpus, struct dvm_msg_verdict *v)
{
	DECLARE_BITMAP(all, KVM_DVM_MAX_VCPUS);
	DECLARE_BITMAP(both, KVM_DVM_MAX_VCPUS);
	u32 i, bit;

	bitmap_zero(all, KVM_DVM_MAX_VCPUS);
	for (i = 0; i < nr_nodes; i++) {
		if (nr_vcpus[i] != nr_vcpus[0]) {
			dvm_verdict(v, EINVAL, i, KVM_DVM_NO_NODE);
			return;
		}
		if (bitmap_and(both, all, claims[i], KVM_DVM_MAX_VCPUS)) {
			bit = find_first_bit(both, KVM_DVM_MAX_VCPUS);
			dvm_verdict(v, EEXIST, i, bit);
			return;
		}
		bitmap_or(all, all, claims[i], KVM_DVM_MAX_VCPUS);
	}
	bit = find_first_zero_bit(all, nr_vcpus[0]);
	if (bit < nr_vcpus[0])
		dvm_verdict(v, ENXIO, KVM_DVM_NO_NODE, bit);
	else
		dvm_verdict(v, 0, KVM_DVM_NO_NODE, KVM_DVM_NO_NODE);
}
