// SPDX-License-Identifier: GPL-2.0
/*
 * DVM: the VM ioctls, the vCPU hooks and the VM's DVM lifetime.
 */
#include <linux/kvm_host.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "dvm.h"

bool kvm_dvm_is_ioctl(unsigned int ioctl)
{
	switch (ioctl) {
	case KVM_DVM_JOIN:
	case KVM_DVM_SET_LOCAL_VCPUS:
	case KVM_DVM_GET_STATE:
	case KVM_DVM_LEAVE:
	case KVM_DVM_PING:
	case KVM_DVM_CREATE_MEMORY:
	case KVM_DVM_PIN:
	case KVM_DVM_UNPIN:
	case KVM_DVM_VM_CONTROL:
		return true;
	}
	return false;
}

/* The VM's DVM state, created by its first DVM ioctl. */
static struct kvm_dvm *kvm_dvm_get(struct kvm *kvm)
{
	struct kvm_dvm *dvm = READ_ONCE(kvm->dvm);

	if (dvm)
		return dvm;

	dvm = kzalloc(sizeof(*dvm), GFP_KERNEL_ACCOUNT);
	if (!dvm)
		return NULL;
	dvm->kvm = kvm;
	mutex_init(&dvm->lock);
	dvm->broken_node = KVM_DVM_NO_NODE;
	if (dvm_subsys_vm_init(dvm)) {
		kfree(dvm);
		return NULL;
	}
	if (cmpxchg(&kvm->dvm, NULL, dvm)) {
		dvm_subsys_vm_free(dvm);
		kfree(dvm);
		dvm = READ_ONCE(kvm->dvm);
	}
	return dvm;
}

/*
 * An ioctl that waits for the network does so without @dvm->lock, so
 * that GET_STATE answers and LEAVE interrupts it meanwhile: it holds the
 * cluster as a user, and LEAVE (which closes every request and wakes
 * every wait first) frees the cluster only when no user is left.
 */
static struct dvm_cluster *dvm_cluster_use(struct kvm_dvm *dvm)
{
	lockdep_assert_held(&dvm->lock);
	atomic_inc(&dvm->users);
	return dvm->cluster;
}

static void dvm_cluster_unuse(struct kvm_dvm *dvm)
{
	if (atomic_dec_and_test(&dvm->users))
		wake_up_var(&dvm->users);
}

static bool dvm_reserved_zero(const u64 *reserved, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (reserved[i])
			return false;
	return true;
}

static int dvm_check_addr(const struct kvm_dvm_node_addr *a)
{
	static const u8 zero[12];

	if (!a->port)
		return -EINVAL;
	switch (a->family) {
	case AF_INET:
		if (a->scope_id || memcmp(a->addr + 4, zero, sizeof(zero)))
			return -EINVAL;
		return 0;
	case AF_INET6:
		return 0;
	}
	return -EINVAL;
}

static int dvm_check_addrs(const struct kvm_dvm_node_addr *addrs, u32 n)
{
	u32 i, j;

	for (i = 0; i < n; i++) {
		/* Nodes reach each other with one address family. */
		if (dvm_check_addr(&addrs[i]) ||
		    addrs[i].family != addrs[0].family)
			return -EINVAL;
		for (j = 0; j < i; j++)
			if (addrs[i].family == addrs[j].family &&
			    addrs[i].port == addrs[j].port &&
			    !memcmp(addrs[i].addr, addrs[j].addr, 16))
				return -EINVAL;
	}
	return 0;
}

static int dvm_check_join(const struct kvm_dvm_join *j)
{
	if ((j->flags & ~KVM_DVM_JOIN_FLAGS) || j->pad || j->pad2 ||
	    !dvm_reserved_zero(j->reserved, 3))
		return -EINVAL;
	if (j->nr_nodes < 2 || j->nr_nodes > KVM_DVM_MAX_NODES ||
	    j->node_id >= j->nr_nodes)
		return -EINVAL;
	if (j->transport != KVM_DVM_TRANSPORT_TCP &&
	    j->transport != KVM_DVM_TRANSPORT_RDMA)
		return -EINVAL;
	if (!j->connect_timeout_ms || j->connect_timeout_ms > 600000)
		return -EINVAL;
	if (j->peer_timeout_ms &&
	    (j->peer_timeout_ms < KVM_DVM_PEER_TIMEOUT_MIN_MS ||
	     j->peer_timeout_ms > KVM_DVM_PEER_TIMEOUT_MAX_MS))
		return -EINVAL;
	if (j->key_len < KVM_DVM_MIN_KEY || j->key_len > KVM_DVM_MAX_KEY)
		return -EINVAL;
	return 0;
}

static u32 __user *dvm_join_failed_node(void __user *argp)
{
	return argp + offsetof(struct kvm_dvm_join, failed_node);
}

static int kvm_dvm_ioctl_join(struct kvm_dvm *dvm, void __user *argp)
{
	struct kvm_dvm_node_addr *addrs = NULL;
	struct kvm_dvm_join join;
	int r;

	if (copy_from_user(&join, argp, sizeof(join)))
		return -EFAULT;
	r = dvm_check_join(&join);
	if (r)
		goto out;
	/* Writable before anything happens: no EFAULT after a join. */
	if (put_user(KVM_DVM_NO_NODE, dvm_join_failed_node(argp))) {
		r = -EFAULT;
		goto out;
	}
	addrs = memdup_user(u64_to_user_ptr(join.addrs),
			    array_size(join.nr_nodes, sizeof(*addrs)));
	if (IS_ERR(addrs)) {
		r = PTR_ERR(addrs);
		addrs = NULL;
		goto out;
	}
	r = dvm_check_addrs(addrs, join.nr_nodes);
	if (r)
		goto out;
	r = dvm_arch_vm_init(dvm->kvm);
	if (r)
		goto out;

	/* One join or placement at a time; the join waits without the lock. */
	mutex_lock(&dvm->lock);
	if ((dvm->state != KVM_DVM_STATE_NONE &&
	     dvm->state != KVM_DVM_STATE_LEFT) || dvm->busy || dvm->leaving)
		r = -EBUSY;
	else
		dvm->busy = true;
	mutex_unlock(&dvm->lock);
	if (!r) {
		join.failed_node = KVM_DVM_NO_NODE;
		dvm_subsys_join(dvm);
		r = dvm_cluster_join(dvm, &join, addrs);
		mutex_lock(&dvm->lock);
		dvm->busy = false;
		mutex_unlock(&dvm->lock);
	}

	/* Checked writable above; a racing munmap() is the caller's own. */
	if (put_user(join.failed_node, dvm_join_failed_node(argp)) && !r)
		r = -EFAULT;
out:
	memzero_explicit(join.key, sizeof(join.key));
	kfree(addrs);
	return r;
}

static int dvm_require_cluster(struct kvm_dvm *dvm)
{
	lockdep_assert_held(&dvm->lock);

	switch (dvm->state) {
	case KVM_DVM_STATE_JOINED:
	case KVM_DVM_STATE_RUNNING:
		return 0;
	case KVM_DVM_STATE_BROKEN:
		return -ENOLINK;
	}
	return -ENOTCONN;
}

static int kvm_dvm_ioctl_set_local_vcpus(struct kvm_dvm *dvm,
					 void __user *argp)
{
	struct dvm_cluster *c = NULL;
	struct kvm_dvm_vcpus *v;
	int r;

	v = memdup_user(argp, sizeof(*v));
	if (IS_ERR(v))
		return PTR_ERR(v);

	/* Writable before anything happens: no EFAULT after a placement. */
	v->failed_node = KVM_DVM_NO_NODE;
	v->failed_vcpu = KVM_DVM_NO_NODE;
	memset(v->nodes, KVM_DVM_VCPU_NOWHERE, sizeof(v->nodes));
	if (copy_to_user(argp, v, sizeof(*v))) {
		kfree(v);
		return -EFAULT;
	}

	mutex_lock(&dvm->lock);
	r = dvm_require_cluster(dvm);
	if (!r && (dvm->state == KVM_DVM_STATE_RUNNING || dvm->busy))
		r = -EBUSY;
	if (!r) {
		c = dvm_cluster_use(dvm);
		dvm->busy = true;
	}
	mutex_unlock(&dvm->lock);
	if (!r) {
		/* Waits for the verdict without the lock. */
		r = dvm_subsys_place(dvm, c);
		if (!r)
			r = dvm_cluster_place_vcpus(dvm, c, v);
		if (!r)
			dvm_subsys_placed(dvm, c);
		mutex_lock(&dvm->lock);
		dvm->busy = false;
		mutex_unlock(&dvm->lock);
		dvm_cluster_unuse(dvm);
	}

	if (copy_to_user(argp, v, sizeof(*v)) && !r)
		r = -EFAULT;
	kfree(v);
	return r;
}

/*
 * Links of the current cluster; after a leave, the last one's nodes.
 * Into @links, a kernel buffer: the user's may be guest memory, whose
 * fault may wait for the network.
 */
static void dvm_fill_links(struct kvm_dvm *dvm, struct kvm_dvm_link *links)
{
	struct dvm_cluster *c = dvm->cluster;
	u32 i;

	lockdep_assert_held(&dvm->lock);
	for (i = 0; i < dvm->nr_nodes; i++) {
		if (c) {
			dvm_peer_fill_link(c, i, &links[i]);
		} else {
			memset(&links[i], 0, sizeof(links[i]));
			links[i].node = i;
			links[i].state = i == dvm->node_id ?
					 KVM_DVM_LINK_SELF : KVM_DVM_LINK_DOWN;
		}
	}
}

static int kvm_dvm_ioctl_get_state(struct kvm_dvm *dvm, void __user *argp)
{
	struct kvm_dvm_link *links;
	struct kvm_dvm_state s;
	int r;

	if (copy_from_user(&s, argp, sizeof(s)))
		return -EFAULT;
	if (s.flags || s.pad || !dvm_reserved_zero(s.reserved, 4))
		return -EINVAL;

	links = kcalloc(KVM_DVM_MAX_NODES, sizeof(*links), GFP_KERNEL);
	if (!links)
		return -ENOMEM;
	mutex_lock(&dvm->lock);
	s.state = READ_ONCE(dvm->state);
	s.node_id = dvm->node_id;
	s.nr_nodes = dvm->nr_nodes;
	s.transport = dvm->transport;
	s.nr_vcpus = dvm->nr_vcpus;
	s.broken_node = READ_ONCE(dvm->broken_node);
	s.broken_error = READ_ONCE(dvm->broken_error);
	dvm_fill_links(dvm, links);
	mutex_unlock(&dvm->lock);

	r = 0;
	if (s.links && s.nr_nodes) {
		if (s.nr_links < s.nr_nodes)
			r = -E2BIG;
		else if (copy_to_user(u64_to_user_ptr(s.links), links,
				      s.nr_nodes * sizeof(*links)))
			r = -EFAULT;
	}
	kfree(links);
	s.nr_links = s.nr_nodes;
	if (copy_to_user(argp, &s, sizeof(s)))
		return -EFAULT;
	return r;
}

/*
 * During a join, LEAVE ends it (the JOIN fails with ECONNABORTED) and
 * succeeds; otherwise it leaves the cluster, also interrupting the
 * placement, PING or PIN that waits.
 */
static int kvm_dvm_ioctl_leave(struct kvm_dvm *dvm)
{
	int r = 0;

	mutex_lock(&dvm->lock);
	if (dvm->joining) {
		WRITE_ONCE(dvm->joining->aborted, true);
		dvm_cluster_fail_join(dvm->joining, KVM_DVM_NO_NODE,
				      -ECONNABORTED);
	} else if (dvm->state == KVM_DVM_STATE_NONE ||
		   dvm->state == KVM_DVM_STATE_LEFT || dvm->leaving) {
		r = -ENOTCONN;
	} else {
		dvm_cluster_leave(dvm);
	}
	mutex_unlock(&dvm->lock);
	return r;
}

static int dvm_check_ping(struct kvm_dvm *dvm, const struct kvm_dvm_ping *p)
{
	if (p->flags || p->pad || !dvm_reserved_zero(p->reserved, 2))
		return -EINVAL;
	if (p->node >= dvm->nr_nodes || p->node == dvm->node_id)
		return -EINVAL;
	if (p->size > DVM_WIRE_PAGE_SIZE || !p->count || p->count > 1000000 ||
	    !p->depth || p->depth > 256)
		return -EINVAL;
	return 0;
}

static int kvm_dvm_ioctl_ping(struct kvm_dvm *dvm, void __user *argp)
{
	struct dvm_cluster *c = NULL;
	struct kvm_dvm_ping p;
	int r;

	if (copy_from_user(&p, argp, sizeof(p)))
		return -EFAULT;

	mutex_lock(&dvm->lock);
	r = dvm_require_cluster(dvm);
	if (!r)
		r = dvm_check_ping(dvm, &p);
	if (!r)
		c = dvm_cluster_use(dvm);
	mutex_unlock(&dvm->lock);
	if (!r) {
		r = dvm_ping(c, &p);
		dvm_cluster_unuse(dvm);
	}

	if (!r && copy_to_user(argp, &p, sizeof(p)))
		r = -EFAULT;
	return r;
}

static int kvm_dvm_ioctl_create_memory(struct kvm_dvm *dvm,
				       void __user *argp)
{
	struct kvm_dvm_memory m;
	int r;

	if (copy_from_user(&m, argp, sizeof(m)))
		return -EFAULT;
	mutex_lock(&dvm->lock);
	r = dvm_require_cluster(dvm);
	if (!r)
		r = dvm_dsm_create(dvm, &m);
	mutex_unlock(&dvm->lock);
	return r;
}

static int kvm_dvm_ioctl_pin(struct kvm_dvm *dvm, void __user *argp,
			     bool pin)
{
	struct file *file = NULL;
	struct kvm_dvm_pin a;
	int r;

	if (copy_from_user(&a, argp, sizeof(a)))
		return -EFAULT;
	mutex_lock(&dvm->lock);
	r = dvm_require_cluster(dvm);
	if (!r)
		file = dvm_dsm_get_file(dvm);
	if (!r && !file)
		r = -ENXIO;
	if (!r)
		dvm_cluster_use(dvm);
	mutex_unlock(&dvm->lock);
	if (r)
		return r;
	/* The file keeps the DSM; LEAVE detaches it and waits for us. */
	r = dvm_dsm_pin(file->private_data, &a, pin);
	fput(file);
	dvm_cluster_unuse(dvm);
	return r;
}

static int kvm_dvm_ioctl_vm_control(struct kvm_dvm *dvm, void __user *argp)
{
	struct kvm_dvm_vm_control a;
	struct dvm_cluster *c;
	int r;

	if (copy_from_user(&a, argp, sizeof(a)))
		return -EFAULT;
	if (a.flags || a.pad || !dvm_reserved_zero(a.reserved, 2) ||
	    a.op < KVM_DVM_VM_PAUSE || a.op > KVM_DVM_VM_POWEROFF)
		return -EINVAL;
	a.failed_node = KVM_DVM_NO_NODE;

	mutex_lock(&dvm->lock);
	r = dvm_require_cluster(dvm);
	if (!r && dvm->state != KVM_DVM_STATE_RUNNING)
		r = -EBUSY;
	if (!r && dvm->node_id)
		r = -EPERM;
	if (r) {
		mutex_unlock(&dvm->lock);
		return r;
	}
	c = dvm_cluster_use(dvm);
	mutex_unlock(&dvm->lock);
	/* Waits for every node without the lock. */
	r = dvm_vm_control(dvm, c, &a);
	dvm_cluster_unuse(dvm);

	if (copy_to_user(argp, &a, sizeof(a)) && !r)
		r = -EFAULT;
	return r;
}

long kvm_dvm_vm_ioctl(struct kvm *kvm, unsigned int ioctl, unsigned long arg)
{
	void __user *argp = (void __user *)arg;
	struct kvm_dvm *dvm = kvm_dvm_get(kvm);

	if (!dvm)
		return -ENOMEM;

	switch (ioctl) {
	case KVM_DVM_JOIN:
		return kvm_dvm_ioctl_join(dvm, argp);
	case KVM_DVM_SET_LOCAL_VCPUS:
		return kvm_dvm_ioctl_set_local_vcpus(dvm, argp);
	case KVM_DVM_GET_STATE:
		return kvm_dvm_ioctl_get_state(dvm, argp);
	case KVM_DVM_LEAVE:
		return kvm_dvm_ioctl_leave(dvm);
	case KVM_DVM_PING:
		return kvm_dvm_ioctl_ping(dvm, argp);
	case KVM_DVM_CREATE_MEMORY:
		return kvm_dvm_ioctl_create_memory(dvm, argp);
	case KVM_DVM_PIN:
		return kvm_dvm_ioctl_pin(dvm, argp, true);
	case KVM_DVM_UNPIN:
		return kvm_dvm_ioctl_pin(dvm, argp, false);
	case KVM_DVM_VM_CONTROL:
		return kvm_dvm_ioctl_vm_control(dvm, argp);
	}
	return -ENOTTY;
}

/* Called first when the VM is destroyed: no ioctl can run any more. */
void kvm_dvm_destroy_vm(struct kvm *kvm)
{
	struct kvm_dvm *dvm = kvm->dvm;

	if (!dvm)
		return;
	mutex_lock(&dvm->lock);
	if (dvm->cluster)
		dvm_cluster_leave(dvm);
	mutex_unlock(&dvm->lock);
	kvm->dvm = NULL;
	dvm_subsys_vm_free(dvm);
	kfree(dvm);
}

/**
 * kvm_dvm_vcpu_run_check - may this vCPU enter KVM_RUN on this node?
 * @vcpu: the vCPU
 *
 * Return: 0 when it may; -EBUSY before the cluster placed the vCPUs,
 * -EREMOTE when another node runs it, -ENOLINK once the cluster is broken
 * or this node left it.
 */
int kvm_dvm_vcpu_run_check(struct kvm_vcpu *vcpu)
{
	struct kvm_dvm *dvm = READ_ONCE(vcpu->kvm->dvm);

	if (!dvm)
		return 0;

	/* Pairs with the release of RUNNING: @local is valid after it. */
	switch (smp_load_acquire(&dvm->state)) {
	case KVM_DVM_STATE_NONE:
		return 0;
	case KVM_DVM_STATE_JOINED:
		return -EBUSY;
	case KVM_DVM_STATE_RUNNING:
		/* Node 0 answers the I/O of another node's vCPU in its copy. */
		if (vcpu->vcpu_id >= dvm->nr_vcpus ||
		    !test_bit(vcpu->vcpu_id, dvm->local))
			return dvm->forward_io && !dvm->node_id ? 0 : -EREMOTE;
		/* What userspace set in the APIC: the mirrors follow. */
		dvm_arch_vcpu_sync(dvm, vcpu, false);
		/* A breakage from before this KVM_RUN was reported already. */
		return 0;
	}
	return -ENOLINK;
}

/* A vCPU this node runs in a RUNNING cluster. */
bool dvm_vcpu_runs_here(struct kvm_dvm *dvm, u32 vcpu_id)
{
	/* Pairs with the release of RUNNING: @local is valid after it. */
	return smp_load_acquire(&dvm->state) == KVM_DVM_STATE_RUNNING &&
	       vcpu_id < dvm->nr_vcpus && test_bit(vcpu_id, dvm->local);
}

/**
 * kvm_dvm_vcpu_remote - is this copy of a vCPU run by another node?
 * @vcpu: the vCPU
 *
 * Interrupts for it are forwarded to its owner, and userspace's writes to
 * its APIC leave the owner's registers, which this node mirrors, alone.
 * Callable from any context.
 */
bool kvm_dvm_vcpu_remote(struct kvm_vcpu *vcpu)
{
	struct kvm_dvm *dvm = READ_ONCE(vcpu->kvm->dvm);
	u32 id = vcpu->vcpu_id;

	/* Pairs with the release of RUNNING: the map is valid after it. */
	return dvm && smp_load_acquire(&dvm->state) == KVM_DVM_STATE_RUNNING &&
	       id < dvm->nr_vcpus && !test_bit(id, dvm->local) &&
	       dvm->vcpu_node[id] != KVM_DVM_VCPU_NOWHERE;
}

/**
 * dvm_live_get - the cluster of a RUNNING VM, held until dvm_live_put()
 * @dvm: the VM's DVM state
 *
 * For vCPU threads, which cannot take @dvm->lock: a LEAVE waits for the
 * holders, after failing every request and waking every wait.
 * Return: the cluster, or NULL once the VM left it.
 */
struct dvm_cluster *dvm_live_get(struct kvm_dvm *dvm)
{
	struct dvm_cluster *c;

	rcu_read_lock();
	c = rcu_dereference(dvm->live);
	if (c)
		atomic_inc(&dvm->users);
	rcu_read_unlock();
	return c;
}

void dvm_live_put(struct kvm_dvm *dvm)
{
	if (atomic_dec_and_test(&dvm->users))
		wake_up_var(&dvm->users);
}

/* KVM_EXIT_DVM_BROKEN, with the node lost and why. */
static void dvm_exit_broken(struct kvm_vcpu *vcpu, struct kvm_dvm *dvm)
{
	struct kvm_run *run = vcpu->run;

	run->exit_reason = KVM_EXIT_DVM_BROKEN;
	run->dvm_broken.node = READ_ONCE(dvm->broken_node);
	run->dvm_broken.error = READ_ONCE(dvm->broken_error);
}

/* Interrupts this vCPU's thread posted go out now (txq.c). */
static void dvm_vcpu_flush_irqs(struct kvm_dvm *dvm, struct kvm_vcpu *vcpu)
	__must_hold(&vcpu->kvm->srcu)
{
	struct dvm_cluster *c = dvm_live_get(dvm);

	if (!c)
		return;
	kvm_vcpu_srcu_read_unlock(vcpu);
	dvm_irq_flush(c);
	kvm_vcpu_srcu_read_lock(vcpu);
	dvm_live_put(dvm);
}

/*
 * In the vCPU run loop, before the guest is entered again (SRCU held):
 * leave it when the cluster broke; take this node's new TSC offset; leave
 * it to park when the VM is paused or off; send the interrupts the exit
 * posted; make the other nodes' mirrors of this vCPU's APIC follow what
 * the guest just changed.
 */
bool kvm_dvm_vcpu_exit(struct kvm_vcpu *vcpu)
{
	struct kvm_dvm *dvm = READ_ONCE(vcpu->kvm->dvm);
	bool clock;

	if (!dvm)
		return false;
	if (kvm_check_request(KVM_REQ_DVM_BROKEN, vcpu)) {
		dvm_exit_broken(vcpu, dvm);
		return true;
	}
	/* Cleared whatever the state: a pending request blocks the entry. */
	clock = kvm_check_request(KVM_REQ_DVM_CLOCK, vcpu);
	if (!dvm_vcpu_runs_here(dvm, vcpu->vcpu_id))
		return false;
	if (clock)
		dvm_clock_vcpu_run(dvm, vcpu, true);
	if (dvm_vm_park_request(dvm, vcpu))
		return true;
	if (atomic_read(&dvm->irq_deferred))
		dvm_vcpu_flush_irqs(dvm, vcpu);
	dvm_arch_vcpu_sync(dvm, vcpu, true);
	return false;
}

/*
 * After KVM_RUN: interrupts the last exit posted go out; a guest memory
 * access that failed because the cluster broke (the DSM could not get
 * the page) is reported as the breakage.
 */
static int dvm_vcpu_run_result(struct kvm_dvm *dvm, struct kvm_vcpu *vcpu,
			       int r)
{
	struct dvm_cluster *c;
	/* An exit to userspace may have posted interrupts too. */
	if (atomic_read(&dvm->irq_deferred)) {
		c = dvm_live_get(dvm);
		if (c) {
			dvm_irq_flush(c);
			dvm_live_put(dvm);
		}
	}
	if (r != -EFAULT)
		return r;
	/* Pairs with the release of BROKEN/LEFT before failing requests. */
	switch (smp_load_acquire(&dvm->state)) {
	case KVM_DVM_STATE_BROKEN:
	case KVM_DVM_STATE_LEFT:
		dvm_exit_broken(vcpu, dvm);
		return 0;
	}
	return r;
}

/* On a placed node, this node's copy of a vCPU another node runs. */
static bool dvm_vcpu_is_copy(struct kvm_dvm *dvm, struct kvm_vcpu *vcpu)
{
	return dvm->nr_vcpus && (vcpu->vcpu_id >= dvm->nr_vcpus ||
				 !test_bit(vcpu->vcpu_id, dvm->local));
}

/**
 * kvm_dvm_vcpu_run - KVM_RUN once kvm_dvm_vcpu_run_check() allowed it
 * @vcpu: the vCPU
 *
 * A vCPU this node runs enters the guest, unless the VM is paused (it
 * waits) or off (lifecycle.c). With KVM_DVM_JOIN_FORWARD_IO on a node
 * other than 0, its port and MMIO exits, triple faults and system events
 * go to node 0, and the guest goes on with node 0's answer without
 * returning to userspace. On node 0, KVM_RUN of the copy of another
 * node's vCPU answers that vCPU's accesses (arch io.c).
 */
int kvm_dvm_vcpu_run(struct kvm_vcpu *vcpu)
{
	struct kvm_dvm *dvm = READ_ONCE(vcpu->kvm->dvm);
	bool park;
	int r;

	if (!dvm)
		return kvm_arch_vcpu_ioctl_run(vcpu);
	if (dvm_vcpu_is_copy(dvm, vcpu))
		return dvm_io_proxy_run(dvm, vcpu);
	dvm_clock_vcpu_run(dvm, vcpu, false);
	r = dvm_io_resume(dvm, vcpu);
	for (;;) {
		if (!r)
			r = dvm_vm_enter(dvm, vcpu);
		if (r > 0)
			return 0;
		park = false;
		if (!r) {
			r = kvm_arch_vcpu_ioctl_run(vcpu);
			park = dvm_vm_left(dvm, vcpu, r);
		}
		/* Interrupts the vCPU posted go out before it parks. */
		r = dvm_vcpu_run_result(dvm, vcpu, park ? 0 : r);
		if (park)
			continue;
		if (r || !dvm_io_forwards(dvm, vcpu))
			return r;
		r = dvm_io_forward(dvm, vcpu);
	}
}

/**
 * kvm_dvm_set_memory_region - KVM_SET_USER_MEMORY_REGION of a DVM VM
 * @kvm: the VM
 * @mem: the slot, its number checked
 *
 * With KVM_DVM_JOIN_FORWARD_IO, from the join until LEAVE or a breakage,
 * node 0's slots are every node's (memslot.c), and the other nodes' VMMs
 * make none.
 *
 * Return: -ENOIOCTLCMD when KVM makes the slot as always; else the
 * ioctl's result: -EPERM on nodes other than 0, dvm_memslot_set()'s on
 * node 0.
 */
int kvm_dvm_set_memory_region(struct kvm *kvm,
			      const struct kvm_userspace_memory_region *mem)
{
	struct kvm_dvm *dvm = READ_ONCE(kvm->dvm);
	struct dvm_cluster *c;
	struct file *file;
	int r;

	if (!dvm)
		return -ENOIOCTLCMD;
	mutex_lock(&dvm->lock);
	if (!dvm->forward_io || (dvm->state != KVM_DVM_STATE_JOINED &&
				 dvm->state != KVM_DVM_STATE_RUNNING)) {
		mutex_unlock(&dvm->lock);
		return -ENOIOCTLCMD;
	}
	if (dvm->node_id) {
		mutex_unlock(&dvm->lock);
		return -EPERM;
	}
	c = dvm_cluster_use(dvm);
	file = dvm_dsm_get_file(dvm);
	mutex_unlock(&dvm->lock);
	/* Waits for every node without the lock. */
	r = dvm_memslot_set(dvm, c, file, mem);
	if (file)
		fput(file);
	dvm_cluster_unuse(dvm);
	return r;
}

/**
 * kvm_dvm_io_bus_bypass - does no device of this node answer @vcpu?
 * @vcpu: the vCPU that makes a port or MMIO access, or NULL
 *
 * True for a vCPU whose accesses go to node 0: this node's in-kernel
 * devices (dummy IOAPIC, PIC and PIT, ioeventfds, coalesced MMIO) are
 * not the VM's.
 */
bool kvm_dvm_io_bus_bypass(struct kvm_vcpu *vcpu)
{
	struct kvm_dvm *dvm = vcpu ? READ_ONCE(vcpu->kvm->dvm) : NULL;

	/* @node_id is valid once RUNNING is seen (dvm_vcpu_runs_here()). */
	return dvm && READ_ONCE(dvm->forward_io) &&
	       dvm_vcpu_runs_here(dvm, vcpu->vcpu_id) && dvm->node_id;
}
