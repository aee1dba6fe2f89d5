// SPDX-License-Identifier: GPL-2.0
/*
 * DVM vCPU placement: node 0's verdict on the claims of all nodes. Every
 * vCPU created on any node runs on exactly one node, which created it
 * too; every node's copy of it has the same identity (CPUID, TSC rate)
 * as the copy that runs. The verdict carries the vCPU -> node map.
 */
#include <linux/bitmap.h>
#include <linux/errno.h>
#include <linux/kvm_dvm.h>
#include <linux/kvm_host.h>
#include <linux/slab.h>

#include "dvm.h"

static void dvm_verdict(struct dvm_msg_verdict *v, int err, u32 node,
			u32 vcpu)
{
	v->error = cpu_to_le32(err);
	v->node = cpu_to_le32(node);
	v->vcpu = cpu_to_le32(vcpu);
	v->pad = 0;
	memset(v->nodes, KVM_DVM_VCPU_NOWHERE, sizeof(v->nodes));
}

/* The node that runs @vcpu, or KVM_DVM_NO_NODE. */
static u32 dvm_claimer(u32 nr_nodes, struct dvm_vcpu_claim *const *claims,
		       u32 vcpu)
{
	u32 i;

	for (i = 0; i < nr_nodes; i++)
		if (test_bit(vcpu, claims[i]->local))
			return i;
	return KVM_DVM_NO_NODE;
}

/*
 * Every copy of @vcpu as the one of @runner: returns 0, or -EXDEV (CPUID
 * differs) or -ERANGE (TSC rate differs, or is 0: caught up in software)
 * with *@node the first node whose copy differs.
 */
static int dvm_check_copies(u32 nr_nodes, struct dvm_vcpu_claim *const *claims,
			    u32 vcpu, u32 runner, u32 *node)
{
	const struct dvm_vcpu_id *ref = &claims[runner]->ids[vcpu], *id;
	u32 i;

	for (i = 0; i < nr_nodes; i++) {
		if (!test_bit(vcpu, claims[i]->created))
			continue;
		id = &claims[i]->ids[vcpu];
		*node = i;
		if (id->cpuid_hash != ref->cpuid_hash)
			return -EXDEV;
		if (!id->tsc_khz || id->tsc_khz != ref->tsc_khz)
			return -ERANGE;
	}
	return 0;
}

/**
 * dvm_placement_judge - check the claims of every node
 * @nr_nodes: nodes, each with a claim
 * @claims: per node, the vCPUs it created and runs, and their identities
 * @v: the verdict: error 0 and the node of every vCPU id in @v->nodes,
 *	or, naming @v->node and @v->vcpu: EINVAL (@node's nr_vcpus differs
 *	from node 0's), EEXIST (@vcpu claimed by an earlier node and by
 *	@node), ENOENT (@node claims @vcpu but did not create it), ENXIO
 *	(@vcpu created on @node and run by no node),
 *	EXDEV or ERANGE (@node's copy of @vcpu has another CPUID or TSC
 *	rate than the copy that runs)
 */
void dvm_placement_judge(u32 nr_nodes, struct dvm_vcpu_claim *const *claims,
			 struct dvm_msg_verdict *v)
{
	DECLARE_BITMAP(all, KVM_DVM_MAX_VCPUS);
	DECLARE_BITMAP(both, KVM_DVM_MAX_VCPUS);
	u32 nr_vcpus = claims[0]->nr_vcpus, i, bit, runner, node;
	int err;

	bitmap_zero(all, KVM_DVM_MAX_VCPUS);
	for (i = 0; i < nr_nodes; i++) {
		if (claims[i]->nr_vcpus != nr_vcpus) {
			dvm_verdict(v, EINVAL, i, KVM_DVM_NO_NODE);
			return;
		}
		if (bitmap_and(both, all, claims[i]->local, KVM_DVM_MAX_VCPUS)) {
			bit = find_first_bit(both, KVM_DVM_MAX_VCPUS);
			dvm_verdict(v, EEXIST, i, bit);
			return;
		}
		if (!bitmap_subset(claims[i]->local, claims[i]->created,
				   KVM_DVM_MAX_VCPUS)) {
			bitmap_andnot(both, claims[i]->local,
				      claims[i]->created, KVM_DVM_MAX_VCPUS);
			bit = find_first_bit(both, KVM_DVM_MAX_VCPUS);
			dvm_verdict(v, ENOENT, i, bit);
			return;
		}
		bitmap_or(all, all, claims[i]->local, KVM_DVM_MAX_VCPUS);
	}
	for (i = 0; i < nr_nodes; i++) {
		if (bitmap_subset(claims[i]->created, all, KVM_DVM_MAX_VCPUS))
			continue;
		bitmap_andnot(both, claims[i]->created, all, KVM_DVM_MAX_VCPUS);
		dvm_verdict(v, ENXIO, i, find_first_bit(both, KVM_DVM_MAX_VCPUS));
		return;
	}
	for_each_set_bit(bit, all, KVM_DVM_MAX_VCPUS) {
		runner = dvm_claimer(nr_nodes, claims, bit);
		err = dvm_check_copies(nr_nodes, claims, bit, runner, &node);
		if (err) {
			dvm_verdict(v, -err, node, bit);
			return;
		}
	}
	dvm_verdict(v, 0, KVM_DVM_NO_NODE, KVM_DVM_NO_NODE);
	for_each_set_bit(bit, all, KVM_DVM_MAX_VCPUS)
		v->nodes[bit] = dvm_claimer(nr_nodes, claims, bit);
}

/* The protocol: every node's claim to node 0, node 0's verdict to all. */

static bool dvm_vcpu_bits_below(const unsigned long *bits, u32 nr_vcpus)
{
	return find_next_bit(bits, KVM_DVM_MAX_VCPUS, nr_vcpus) >=
	       KVM_DVM_MAX_VCPUS;
}

static void dvm_set_verdict(struct dvm_cluster *c, int err, u32 node,
			    u32 vcpu, const u8 *nodes)
{
	spin_lock(&c->lock);
	c->verdict_err = err;
	c->verdict_node = node;
	c->verdict_vcpu = vcpu;
	if (!err)
		memcpy(c->verdict_nodes, nodes, sizeof(c->verdict_nodes));
	c->verdict_ready = true;
	spin_unlock(&c->lock);
	wake_up_all(&c->wq);
}

static void dvm_free_claims(struct dvm_cluster *c)
{
	u32 i;

	lockdep_assert_held(&c->claims_lock);
	for (i = 0; i < c->nr_nodes; i++) {
		kvfree(c->claims[i]);
		c->claims[i] = NULL;
	}
}

/*
 * Node 0: take the claims' lock, with *@cl @node's claim in the making,
 * made if it has none yet: 0, -ENOMEM, or -EPROTO if its claim was judged
 * meanwhile (a node may not send before the verdict). Only @node's own
 * messages, one at a time, make or change its claim. Locked whatever it
 * returns; the caller frees *@spare after unlocking.
 */
static int dvm_claim_lock(struct dvm_cluster *c, u32 node,
			  struct dvm_vcpu_claim **cl,
			  struct dvm_vcpu_claim **spare)
	__acquires(&c->claims_lock)
{
	bool had = READ_ONCE(c->claims[node]);

	*spare = had ? NULL : kvzalloc(sizeof(**spare), GFP_KERNEL_ACCOUNT);
	spin_lock(&c->claims_lock);
	if (!c->claims[node])
		swap(c->claims[node], *spare);
	*cl = c->claims[node];
	if (!*cl)
		return had ? -EPROTO : -ENOMEM;
	return 0;
}

/* Node 0: judge and announce once every node's claim is complete. */
static void dvm_judge_if_complete(struct dvm_cluster *c)
{
	struct dvm_msg_verdict *v = &c->verdict_msg;
	bool all = true;
	u32 i;

	spin_lock(&c->claims_lock);
	for (i = 0; i < c->nr_nodes; i++)
		all &= c->claims[i] && c->claims[i]->complete;
	if (all) {
		dvm_placement_judge(c->nr_nodes, c->claims, v);
		dvm_free_claims(c);
	}
	spin_unlock(&c->claims_lock);
	if (!all)
		return;
	/*
	 * @v stays as it is until node 0's own next claim, which comes
	 * after dvm_set_verdict().
	 */
	dvm_send_all(c, DVM_MSG_VCPUS_VERDICT, v, sizeof(*v));
	dvm_set_verdict(c, -(int)le32_to_cpu(v->error), le32_to_cpu(v->node),
			le32_to_cpu(v->vcpu), v->nodes);
}

/* Node 0: a chunk of @node's vCPU identities. */
static int dvm_add_vcpu_ids(struct dvm_cluster *c, u32 node, u32 first,
			    u32 count, const struct dvm_vcpu_id *ids)
{
	struct dvm_vcpu_claim *spare, *cl;
	int r;

	r = dvm_claim_lock(c, node, &cl, &spare);
	/* In order, each id once, before the claim. */
	if (!r && (cl->complete || first != cl->info_next ||
		   count > KVM_DVM_MAX_VCPUS - first))
		r = -EPROTO;
	if (!r) {
		memcpy(&cl->ids[first], ids, count * sizeof(*ids));
		cl->info_next = first + count;
	}
	spin_unlock(&c->claims_lock);
	kvfree(spare);
	return r;
}

/* Node 0: @node's claim, after its identities. */
static int dvm_add_claim(struct dvm_cluster *c, u32 node, u32 nr_vcpus,
			 const unsigned long *local,
			 const unsigned long *created)
{
	struct dvm_vcpu_claim *spare, *cl;
	int r;

	r = dvm_claim_lock(c, node, &cl, &spare);
	if (!r && (cl->complete || cl->info_next != nr_vcpus))
		r = -EPROTO;
	if (!r) {
		cl->nr_vcpus = nr_vcpus;
		bitmap_copy(cl->local, local, KVM_DVM_MAX_VCPUS);
		bitmap_copy(cl->created, created, KVM_DVM_MAX_VCPUS);
		cl->complete = true;
	}
	spin_unlock(&c->claims_lock);
	kvfree(spare);
	if (!r)
		dvm_judge_if_complete(c);
	return r;
}

int dvm_handle_vcpu_info(struct dvm_cluster *c, struct dvm_conn *conn,
			 const struct dvm_wire_msg *msg, const void *payload,
			 struct dvm_reply *reply)
{
	const struct dvm_msg_vcpu_info *m = payload;
	u32 count = le32_to_cpu(m->count), i;
	struct dvm_vcpu_id *ids;
	int r;

	if (c->node_id != 0 || !count || count > DVM_VCPU_INFO_CHUNK ||
	    msg->len != struct_size(m, ids, count))
		return -EPROTO;
	ids = kmalloc_array(count, sizeof(*ids), GFP_KERNEL);
	if (!ids)
		return -ENOMEM;
	for (i = 0; i < count; i++) {
		ids[i].cpuid_hash = le32_to_cpu(m->ids[i].cpuid_hash);
		ids[i].tsc_khz = le32_to_cpu(m->ids[i].tsc_khz);
	}
	r = dvm_add_vcpu_ids(c, conn->node, le32_to_cpu(m->first), count, ids);
	kfree(ids);
	return r;
}

static void dvm_bitmap_from_wire(unsigned long *bits, const __le64 *wire)
{
	u64 words[KVM_DVM_MAX_VCPUS / 64];
	int i;

	for (i = 0; i < ARRAY_SIZE(words); i++)
		words[i] = le64_to_cpu(wire[i]);
	bitmap_from_arr64(bits, words, KVM_DVM_MAX_VCPUS);
}

static void dvm_bitmap_to_wire(__le64 *wire, const unsigned long *bits)
{
	u64 words[KVM_DVM_MAX_VCPUS / 64];
	int i;

	bitmap_to_arr64(words, bits, KVM_DVM_MAX_VCPUS);
	for (i = 0; i < ARRAY_SIZE(words); i++)
		wire[i] = cpu_to_le64(words[i]);
}

int dvm_handle_vcpus(struct dvm_cluster *c, struct dvm_conn *conn,
		     const struct dvm_wire_msg *msg, const void *payload,
		     struct dvm_reply *reply)
{
	const struct dvm_msg_vcpus *m = payload;
	DECLARE_BITMAP(local, KVM_DVM_MAX_VCPUS);
	DECLARE_BITMAP(created, KVM_DVM_MAX_VCPUS);
	u32 nr = le32_to_cpu(m->nr_vcpus);

	if (c->node_id != 0 || m->pad || !nr || nr > KVM_DVM_MAX_VCPUS)
		return -EPROTO;
	dvm_bitmap_from_wire(local, m->local);
	dvm_bitmap_from_wire(created, m->created);
	if (!dvm_vcpu_bits_below(local, nr) ||
	    !dvm_vcpu_bits_below(created, nr))
		return -EPROTO;
	return dvm_add_claim(c, conn->node, nr, local, created);
}

static bool dvm_verdict_errno_known(u32 err)
{
	return !err || err == EINVAL || err == EEXIST || err == ENOENT ||
	       err == ENXIO || err == EXDEV || err == ERANGE;
}

int dvm_handle_verdict(struct dvm_cluster *c, struct dvm_conn *conn,
		       const struct dvm_wire_msg *msg, const void *payload,
		       struct dvm_reply *reply)
{
	const struct dvm_msg_verdict *v = payload;
	u32 err = le32_to_cpu(v->error), i;

	if (conn->node != 0 || v->pad || !dvm_verdict_errno_known(err))
		return -EPROTO;
	for (i = 0; !err && i < KVM_DVM_MAX_VCPUS; i++)
		if (v->nodes[i] != KVM_DVM_VCPU_NOWHERE &&
		    v->nodes[i] >= c->nr_nodes)
			return -EPROTO;
	dvm_set_verdict(c, -(int)err, le32_to_cpu(v->node),
			le32_to_cpu(v->vcpu), v->nodes);
	return 0;
}

static bool dvm_placed_or_broken(struct dvm_cluster *c)
{
	return READ_ONCE(c->verdict_ready) || READ_ONCE(c->broken_error) ||
	       READ_ONCE(c->calls_closed);
}

/* The verdict names exactly this node's claim as this node's vCPUs. */
static bool dvm_verdict_matches(struct dvm_cluster *c,
				const unsigned long *local, u32 nr_vcpus)
{
	bool mine;
	u32 i;

	for (i = 0; i < KVM_DVM_MAX_VCPUS; i++) {
		if (i >= nr_vcpus && c->verdict_nodes[i] != KVM_DVM_VCPU_NOWHERE)
			return false;
		mine = c->verdict_nodes[i] == c->node_id;
		if (mine != test_bit(i, local))
			return false;
	}
	return true;
}

/* The verdict stands: RUNNING, unless the cluster broke or was left. */
static int dvm_apply_placement(struct kvm_dvm *dvm, struct dvm_cluster *c,
			       const unsigned long *local, u32 nr_vcpus)
{
	int old = KVM_DVM_STATE_JOINED;
	int r = 0;

	mutex_lock(&dvm->lock);
	if (dvm->cluster != c || dvm->leaving) {
		r = -ENOLINK;
		goto out;
	}
	dvm->nr_vcpus = nr_vcpus;
	bitmap_copy(dvm->local, local, KVM_DVM_MAX_VCPUS);
	memcpy(dvm->vcpu_node, c->verdict_nodes, sizeof(dvm->vcpu_node));
	r = dvm_subsys_commit(dvm);
	if (r)
		goto out;
	/* The vCPU hooks read @local once they see RUNNING. */
	smp_wmb();
	if (!try_cmpxchg(&dvm->state, &old, KVM_DVM_STATE_RUNNING))
		r = -ENOLINK;
	else
		rcu_assign_pointer(dvm->live, c);
out:
	mutex_unlock(&dvm->lock);
	return r;
}

/*
 * This node's claim: the vCPUs created here, all below @v->nr_vcpus, and
 * their identities; every vCPU claimed must have been created here.
 */
static int dvm_claim_fill(struct kvm *kvm, struct dvm_vcpu_claim *cl,
			  struct kvm_dvm_vcpus *v)
{
	struct kvm_vcpu *vcpu;
	unsigned long i;
	u32 id;
	int r;

	kvm_for_each_vcpu(i, vcpu, kvm) {
		id = vcpu->vcpu_id;
		if (id >= v->nr_vcpus) {
			v->failed_vcpu = id;
			return -EINVAL;
		}
		r = dvm_arch_vcpu_id(vcpu, &cl->ids[id]);
		if (r)
			return r;
		set_bit(id, cl->created);
	}
	if (!bitmap_subset(cl->local, cl->created, KVM_DVM_MAX_VCPUS)) {
		bitmap_andnot(cl->local, cl->local, cl->created,
			      KVM_DVM_MAX_VCPUS);
		v->failed_vcpu = find_first_bit(cl->local, KVM_DVM_MAX_VCPUS);
		return -ENOENT;
	}
	cl->nr_vcpus = v->nr_vcpus;
	cl->info_next = v->nr_vcpus;
	return 0;
}

/* A node other than 0 sends its identities, then its claim. */
static int dvm_send_claim(struct dvm_cluster *c, const struct dvm_vcpu_claim *cl)
{
	struct dvm_msg_vcpu_info *info;
	struct dvm_msg_vcpus *m;
	u32 first, count, i;
	int r = -ENOMEM;

	info = kmalloc(struct_size(info, ids, DVM_VCPU_INFO_CHUNK), GFP_KERNEL);
	m = kzalloc(sizeof(*m), GFP_KERNEL);
	if (!info || !m)
		goto out;
	for (first = 0; first < cl->nr_vcpus; first += count) {
		count = min_t(u32, cl->nr_vcpus - first, DVM_VCPU_INFO_CHUNK);
		info->first = cpu_to_le32(first);
		info->count = cpu_to_le32(count);
		for (i = 0; i < count; i++) {
			info->ids[i].cpuid_hash =
				cpu_to_le32(cl->ids[first + i].cpuid_hash);
			info->ids[i].tsc_khz =
				cpu_to_le32(cl->ids[first + i].tsc_khz);
		}
		r = dvm_send(c, 0, DVM_MSG_VCPU_INFO, info,
			     struct_size(info, ids, count));
		if (r)
			goto out;
	}
	m->nr_vcpus = cpu_to_le32(cl->nr_vcpus);
	dvm_bitmap_to_wire(m->local, cl->local);
	dvm_bitmap_to_wire(m->created, cl->created);
	r = dvm_send(c, 0, DVM_MSG_VCPUS, m, sizeof(*m));
out:
	kfree(m);
	kfree(info);
	return r;
}

/* This node's claim to node 0, itself included. */
static int dvm_submit_claim(struct dvm_cluster *c, struct dvm_vcpu_claim *cl)
{
	if (c->node_id != 0)
		return dvm_send_claim(c, cl);

	spin_lock(&c->claims_lock);
	if (c->claims[0]) {
		spin_unlock(&c->claims_lock);
		return -EBUSY;
	}
	c->claims[0] = cl;
	cl->complete = true;
	spin_unlock(&c->claims_lock);
	dvm_judge_if_complete(c);
	return 0;
}

static int dvm_wait_verdict(struct dvm_cluster *c, struct kvm_dvm_vcpus *v)
{
	long t = msecs_to_jiffies(DVM_PLACEMENT_TIMEOUT_MS);
	int r;

	t = wait_event_interruptible_timeout(c->wq, dvm_placed_or_broken(c), t);
	if (READ_ONCE(c->broken_error) || READ_ONCE(c->calls_closed))
		return -ENOLINK;
	if (t <= 0) {
		/*
		 * Node 0 holds this node's claim for a round that may still
		 * complete: the nodes could disagree on the placement. The
		 * cluster cannot go on; leave and join again.
		 */
		r = t < 0 ? -EINTR : -ETIMEDOUT;
		dvm_cluster_lost(c, c->node_id, r);
		return r;
	}
	if (c->verdict_err) {
		v->failed_node = c->verdict_node;
		v->failed_vcpu = c->verdict_vcpu;
		return c->verdict_err;
	}
	return 0;
}

/**
 * dvm_cluster_place_vcpus - KVM_DVM_SET_LOCAL_VCPUS in a joined cluster
 * @dvm: the VM's DVM state
 * @c: its cluster, held with dvm_cluster_use() (no @dvm->lock)
 * @v: the ioctl's argument; failed_* and nodes[] are filled in
 */
int dvm_cluster_place_vcpus(struct kvm_dvm *dvm, struct dvm_cluster *c,
			    struct kvm_dvm_vcpus *v)
{
	DECLARE_BITMAP(local, KVM_DVM_MAX_VCPUS);
	struct dvm_vcpu_claim *cl;
	int r;

	if (v->flags || v->reserved[0] || v->reserved[1] || !v->nr_vcpus ||
	    v->nr_vcpus > KVM_DVM_MAX_VCPUS)
		return -EINVAL;
	bitmap_from_arr64(local, v->local, KVM_DVM_MAX_VCPUS);
	if (!dvm_vcpu_bits_below(local, v->nr_vcpus))
		return -EINVAL;

	cl = kvzalloc(sizeof(*cl), GFP_KERNEL_ACCOUNT);
	if (!cl)
		return -ENOMEM;
	bitmap_copy(cl->local, local, KVM_DVM_MAX_VCPUS);
	r = dvm_claim_fill(dvm->kvm, cl, v);
	if (r) {
		if (r != -EINTR && r != -ENOMEM)
			v->failed_node = c->node_id;
		kvfree(cl);
		return r;
	}

	spin_lock(&c->lock);
	c->verdict_ready = false;
	spin_unlock(&c->lock);
	r = dvm_submit_claim(c, cl);
	if (c->node_id != 0 || r)
		kvfree(cl);	/* node 0's own is freed with the others */
	if (r)
		return r == -ENOTCONN ? -ENOLINK : r;

	r = dvm_wait_verdict(c, v);
	if (r)
		return r;
	if (!dvm_verdict_matches(c, local, v->nr_vcpus)) {
		dvm_cluster_lost(c, 0, -EPROTO);
		return -EPROTO;
	}
	memcpy(v->nodes, c->verdict_nodes, sizeof(v->nodes));
	return dvm_apply_placement(dvm, c, local, v->nr_vcpus);
}
