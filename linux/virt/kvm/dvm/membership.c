// SPDX-License-Identifier: GPL-2.0
/*
 * DVM membership: joining a cluster (the mesh of authenticated links, then
 * node 0's word that every node has all of its links), placing vCPUs,
 * heartbeats, breakage when a node is lost, and leaving.
 */
#include <linux/kvm_host.h>
#include <linux/memcontrol.h>
#include <linux/slab.h>
#include <linux/sched/signal.h>
#include <net/ipv6.h>
#include <net/net_namespace.h>

#include "dvm.h"

static void dvm_to_sockaddr(const struct kvm_dvm_node_addr *a,
			    struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(a->port);
		memcpy(&sin->sin_addr, a->addr, 4);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(a->port);
		memcpy(&sin6->sin6_addr, a->addr, 16);
		sin6->sin6_scope_id = a->scope_id;
	}
}

bool dvm_addr_equal(const struct sockaddr_storage *a,
		    const struct sockaddr_storage *b, bool with_port)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const struct sockaddr_in *)a;
		const struct sockaddr_in *y = (const struct sockaddr_in *)b;

		return x->sin_addr.s_addr == y->sin_addr.s_addr &&
		       (!with_port || x->sin_port == y->sin_port);
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
		const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;

		return ipv6_addr_equal(&x->sin6_addr, &y->sin6_addr) &&
		       (!with_port || x->sin6_port == y->sin6_port);
	}
	return false;
}

/* Join progress */

void dvm_cluster_fail_join(struct dvm_cluster *c, u32 node, int err)
{
	spin_lock(&c->lock);
	if (!c->mesh_up && !c->join_err) {
		c->join_err = err;
		c->join_failed_node = node;
	}
	spin_unlock(&c->lock);
	wake_up_all(&c->wq);
}

void dvm_peer_up(struct dvm_cluster *c, struct dvm_conn *conn)
{
	wake_up_all(&c->wq);
}

static bool dvm_all_links_up(struct dvm_cluster *c)
{
	return READ_ONCE(c->nr_up) == c->nr_nodes - 1;
}

/* Node 0: once every node reported all of its links, the mesh is up. */
static void dvm_mesh_ready(struct dvm_cluster *c, u32 node)
{
	bool up = false;

	spin_lock(&c->lock);
	set_bit(node, c->ready);
	if (!c->mesh_up && !c->join_err &&
	    bitmap_full(c->ready, c->nr_nodes)) {
		c->mesh_up = true;
		up = true;
	}
	spin_unlock(&c->lock);
	if (up) {
		dvm_send_all(c, DVM_MSG_MESH_UP, NULL, 0);
		wake_up_all(&c->wq);
	}
}

int dvm_handle_mesh_ready(struct dvm_cluster *c, struct dvm_conn *conn,
			  const struct dvm_wire_msg *msg, const void *payload,
			  struct dvm_reply *reply)
{
	if (c->node_id != 0)
		return -EPROTO;
	dvm_mesh_ready(c, conn->node);
	return 0;
}

int dvm_handle_mesh_up(struct dvm_cluster *c, struct dvm_conn *conn,
		       const struct dvm_wire_msg *msg, const void *payload,
		       struct dvm_reply *reply)
{
	if (conn->node != 0)
		return -EPROTO;
	spin_lock(&c->lock);
	if (!c->join_err)
		c->mesh_up = true;
	spin_unlock(&c->lock);
	wake_up_all(&c->wq);
	return 0;
}

static int dvm_msg_errno(const struct dvm_msg_error *e, u32 nr_nodes,
			 u32 *node)
{
	u32 err = le32_to_cpu(e->error);

	*node = le32_to_cpu(e->node);
	if (!err || err >= MAX_ERRNO)
		return 0;
	if (*node >= nr_nodes && *node != KVM_DVM_NO_NODE)
		return 0;
	return -(int)err;
}

/* Another node's join failed: ours fails for the same reason. */
int dvm_handle_abort(struct dvm_cluster *c, struct dvm_conn *conn,
		     const struct dvm_wire_msg *msg, const void *payload,
		     struct dvm_reply *reply)
{
	u32 node;
	int err = dvm_msg_errno(payload, c->nr_nodes, &node);

	if (!err)
		return -EPROTO;
	/* Too late: the node that failed will be lost like any other. */
	if (READ_ONCE(c->mesh_up))
		return 0;
	dvm_cluster_fail_join(c, node == KVM_DVM_NO_NODE ? conn->node : node,
			      err);
	return 0;
}

/* Breakage */

static void dvm_kick_vcpus(struct kvm_dvm *dvm)
{
	struct kvm *kvm = dvm->kvm;

	kvm_make_all_cpus_request(kvm, KVM_REQ_DVM_BROKEN);
	/* Wakes vCPUs blocked in HLT, which do not look at other requests. */
	kvm_make_all_cpus_request(kvm, KVM_REQ_UNBLOCK);
	/* And those parked in a paused VM, or waiting in a subsystem. */
	dvm_subsys_wake(dvm);
}

static bool dvm_set_broken(struct kvm_dvm *dvm)
{
	int old = READ_ONCE(dvm->state);

	do {
		if (old != KVM_DVM_STATE_JOINED &&
		    old != KVM_DVM_STATE_RUNNING)
			return false;
	} while (!try_cmpxchg(&dvm->state, &old, KVM_DVM_STATE_BROKEN));
	return true;
}

/*
 * The cluster is broken from here on, under its lock: a request failing
 * on the lost link afterwards finds the VM BROKEN (kvm_dvm_vcpu_run()).
 * Return: true if this call broke it; then dvm_broken_notify() follows.
 */
bool dvm_break_locked(struct dvm_cluster *c, u32 node, int err)
{
	struct kvm_dvm *dvm = c->dvm;

	lockdep_assert_held(&c->lock);
	/* A node that left reports no loss: its peers see it leave. */
	if (c->broken_error || c->stopping ||
	    READ_ONCE(dvm->state) == KVM_DVM_STATE_LEFT)
		return false;
	c->broken_node = node;
	c->broken_error = err;
	queue_work(system_unbound_wq, &c->broken_work);
	/*
	 * Under the lock: a join that is about to publish JOINED either
	 * sees the breakage here or is JOINED already (dvm_join_publish()).
	 */
	WRITE_ONCE(dvm->broken_node, node);
	WRITE_ONCE(dvm->broken_error, err);
	dvm_set_broken(dvm);
	dvm_subsys_broken(c);
	return true;
}

/* After dvm_break_locked(): fail every request, wake every wait. */
void dvm_broken_notify(struct dvm_cluster *c, u32 node, int err)
{
	pr_info("kvm-dvm: node %u: cluster broken, node %u lost (%d)\n",
		c->node_id, node, err);
	dvm_calls_close(c, -ENOLINK);
	wake_up_all(&c->wq);
	dvm_kick_vcpus(c->dvm);
}

static void dvm_break(struct dvm_cluster *c, u32 node, int err)
{
	bool broke;

	spin_lock(&c->lock);
	broke = dvm_break_locked(c, node, err);
	spin_unlock(&c->lock);
	if (broke)
		dvm_broken_notify(c, node, err);
}

/* Tell the other peers which node was lost. */
static void dvm_broken_work(struct work_struct *work)
{
	struct dvm_cluster *c = container_of(work, struct dvm_cluster,
					     broken_work);
	struct dvm_msg_error e = {
		.error = cpu_to_le32(-c->broken_error),
		.node = cpu_to_le32(c->broken_node),
	};
	u32 i;

	for (i = 0; i < c->nr_nodes; i++)
		if (i != c->node_id && i != c->broken_node)
			dvm_send(c, i, DVM_MSG_BROKEN, &e, sizeof(e));
}

/**
 * dvm_cluster_lost - a node is gone
 * @c: the cluster
 * @node: the node lost
 * @err: how: -ECONNRESET (closed, left), -ETIMEDOUT (silent), -EPROTO
 *	(misbehaved) and the like
 *
 * Before the mesh is up the join fails; after, the cluster is broken.
 */
void dvm_cluster_lost(struct dvm_cluster *c, u32 node, int err)
{
	if (!READ_ONCE(c->mesh_up))
		dvm_cluster_fail_join(c, node, err);
	else
		dvm_break(c, node, err);
}

int dvm_handle_broken(struct dvm_cluster *c, struct dvm_conn *conn,
		      const struct dvm_wire_msg *msg, const void *payload,
		      struct dvm_reply *reply)
{
	u32 node;
	int err = dvm_msg_errno(payload, c->nr_nodes, &node);

	if (!err || node == KVM_DVM_NO_NODE || node == c->node_id)
		return -EPROTO;
	dvm_cluster_lost(c, node, err);
	return 0;
}

int dvm_handle_leave(struct dvm_cluster *c, struct dvm_conn *conn,
		     const struct dvm_wire_msg *msg, const void *payload,
		     struct dvm_reply *reply)
{
	/* Dropping the link loses the node: the link is down first. */
	return -ECONNRESET;
}

/* Liveness: heartbeats out, silent peers and stalled handshakes dropped. */
static void dvm_drop_silent(struct dvm_cluster *c)
{
	unsigned long timeout = c->peer_timeout;
	struct dvm_conn *conn, *silent;

	do {
		silent = NULL;
		spin_lock(&c->lock);
		list_for_each_entry(conn, &c->conns, list) {
			if (conn->auth == DVM_AUTH_DEAD)
				continue;
			if (conn->auth == DVM_AUTH_DONE ?
			    time_after(jiffies, READ_ONCE(c->peers[conn->node].last_rx) + timeout) :
			    time_after(jiffies, conn->since + timeout)) {
				silent = conn;
				break;
			}
		}
		spin_unlock(&c->lock);
		if (silent)
			dvm_conn_drop(silent, -ETIMEDOUT);
	} while (silent);
}

/*
 * One peer's heartbeat, in a work item of its own: a send that blocks on
 * one congested link (for up to the peer timeout) delays no other peer's
 * heartbeat, nor the check for silent peers.
 */
static void dvm_peer_heartbeat_work(struct work_struct *work)
{
	struct dvm_peer *p = container_of(work, struct dvm_peer, hb_work);

	dvm_send(p->c, p->id, DVM_MSG_HEARTBEAT, NULL, 0);
}

static void dvm_heartbeat_work(struct work_struct *work)
{
	struct dvm_cluster *c = container_of(to_delayed_work(work),
					     struct dvm_cluster, heartbeat);
	u32 i;

	for (i = 0; i < c->nr_nodes; i++)
		if (i != c->node_id && !READ_ONCE(c->stopping))
			queue_work(system_unbound_wq, &c->peers[i].hb_work);
	dvm_drop_silent(c);
	if (!READ_ONCE(c->stopping))
		queue_delayed_work(system_unbound_wq, &c->heartbeat,
				   msecs_to_jiffies(DVM_HEARTBEAT_MS));
}

/* Cluster lifetime */

static struct dvm_cluster *dvm_cluster_alloc(struct kvm_dvm *dvm,
					     const struct kvm_dvm_join *join,
					     const struct kvm_dvm_node_addr *addrs)
{
	struct dvm_cluster *c;
	u32 i;

	c = kvzalloc(struct_size(c, peers, join->nr_nodes), GFP_KERNEL_ACCOUNT);
	if (!c)
		return NULL;
	c->dvm = dvm;
	c->node_id = join->node_id;
	c->nr_nodes = join->nr_nodes;
	c->transport = join->transport;
	c->peer_timeout = msecs_to_jiffies(join->peer_timeout_ms ?:
					   KVM_DVM_PEER_TIMEOUT_DEFAULT_MS);
	c->net = get_net(current->nsproxy->net_ns);
	c->memcg = get_mem_cgroup_from_mm(current->mm);
	spin_lock_init(&c->lock);
	spin_lock_init(&c->claims_lock);
	INIT_LIST_HEAD(&c->conns);
	init_waitqueue_head(&c->wq);
	xa_init_flags(&c->calls, XA_FLAGS_ALLOC1);
	c->next_call_id = 1;
	INIT_DELAYED_WORK(&c->heartbeat, dvm_heartbeat_work);
	INIT_WORK(&c->reap_work, dvm_reap_work);
	INIT_WORK(&c->broken_work, dvm_broken_work);
	c->broken_node = KVM_DVM_NO_NODE;
	c->join_failed_node = KVM_DVM_NO_NODE;
	for (i = 0; i < c->nr_nodes; i++) {
		c->peers[i].id = i;
		c->peers[i].c = c;
		INIT_WORK(&c->peers[i].hb_work, dvm_peer_heartbeat_work);
		dvm_to_sockaddr(&addrs[i], &c->peers[i].addr);
	}
	return c;
}

/* Stop everything; called with no ioctl using @c. */
static void dvm_cluster_destroy(struct dvm_cluster *c, bool started)
{
	u32 i;

	spin_lock(&c->lock);
	c->stopping = true;
	spin_unlock(&c->lock);

	cancel_delayed_work_sync(&c->heartbeat);
	cancel_work_sync(&c->broken_work);
	if (started)
		c->ops->stop(c);
	cancel_work_sync(&c->reap_work);
	dvm_conns_release_all(c);
	/* A heartbeat blocked in a send ended with its connection. */
	for (i = 0; i < c->nr_nodes; i++)
		cancel_work_sync(&c->peers[i].hb_work);
	dvm_subsys_cluster_free(c);
	dvm_calls_fail(c, KVM_DVM_NO_NODE, -ENOLINK);
	WARN_ON_ONCE(!xa_empty(&c->calls));
	xa_destroy(&c->calls);
	for (i = 0; i < KVM_DVM_MAX_NODES; i++)
		kvfree(c->claims[i]);
	dvm_auth_exit(c);
	put_net(c->net);
	mem_cgroup_put(c->memcg);
	kvfree(c);
}

static const struct dvm_transport_ops *dvm_transport(u32 transport)
{
	if (transport == KVM_DVM_TRANSPORT_TCP)
		return &dvm_tcp_ops;
#ifdef CONFIG_KVM_DVM_RDMA
	if (transport == KVM_DVM_TRANSPORT_RDMA)
		return &dvm_rdma_ops;
#endif
	return NULL;
}

static long dvm_join_time_left(struct dvm_cluster *c)
{
	long left = (long)(c->deadline - jiffies);

	return left > 0 ? left : 0;
}

/*
 * For -ETIMEDOUT: the lowest peer without a link or, with all links up,
 * the lowest node that did not report its links to node 0 (on node 0),
 * or node 0 itself (elsewhere: its MESH_UP did not come).
 */
static u32 dvm_first_missing_peer(struct dvm_cluster *c)
{
	u32 i;

	for (i = 0; i < c->nr_nodes; i++)
		if (i != c->node_id && !READ_ONCE(c->peers[i].up))
			return i;
	if (c->node_id)
		return 0;
	spin_lock(&c->lock);
	i = find_first_zero_bit(c->ready, c->nr_nodes);
	spin_unlock(&c->lock);
	return i < c->nr_nodes ? i : KVM_DVM_NO_NODE;
}

static int dvm_wait_join(struct dvm_cluster *c, bool (*done)(struct dvm_cluster *))
{
	long r;

	r = wait_event_interruptible_timeout(c->wq,
					     done(c) || READ_ONCE(c->join_err),
					     dvm_join_time_left(c));
	if (READ_ONCE(c->join_err))
		return c->join_err;
	if (r < 0)
		return r == -ERESTARTSYS ? -EINTR : r;
	if (!r && !done(c)) {
		dvm_cluster_fail_join(c, dvm_first_missing_peer(c),
				      -ETIMEDOUT);
		return c->join_err;
	}
	return 0;
}

static bool dvm_mesh_is_up(struct dvm_cluster *c)
{
	return READ_ONCE(c->mesh_up);
}

static int dvm_form_mesh(struct dvm_cluster *c)
{
	int r;

	r = c->ops->start(c);
	if (r)
		return r;
	queue_delayed_work(system_unbound_wq, &c->heartbeat,
			   msecs_to_jiffies(DVM_HEARTBEAT_MS));
	r = dvm_wait_join(c, dvm_all_links_up);
	if (r)
		return r;
	if (c->node_id == 0)
		dvm_mesh_ready(c, 0);
	else
		dvm_send(c, 0, DVM_MSG_MESH_READY, NULL, 0);
	return dvm_wait_join(c, dvm_mesh_is_up);
}

/* Tell the peers we reached why this node's join failed. */
static void dvm_abort_join(struct dvm_cluster *c, int err, u32 node)
{
	struct dvm_msg_error e = {
		.error = cpu_to_le32(-err),
		.node = cpu_to_le32(node),
	};

	if (err == -EINTR || err == -ENOMEM)
		e.error = cpu_to_le32(ECONNABORTED);
	dvm_send_all(c, DVM_MSG_ABORT, &e, sizeof(e));
}

/*
 * JOINED, or BROKEN if a peer was lost since mesh-up: under the cluster's
 * lock, dvm_break() ran either before (its loss is taken over here) or
 * runs after, and then finds JOINED.
 */
static void dvm_join_publish(struct kvm_dvm *dvm, struct dvm_cluster *c)
{
	spin_lock(&c->lock);
	WRITE_ONCE(dvm->broken_node, c->broken_node);
	WRITE_ONCE(dvm->broken_error, c->broken_error);
	/* The vCPU hooks see the cluster's identity with the state. */
	smp_store_release(&dvm->state, c->broken_error ?
			  KVM_DVM_STATE_BROKEN : KVM_DVM_STATE_JOINED);
	spin_unlock(&c->lock);
}

int dvm_cluster_join(struct kvm_dvm *dvm, struct kvm_dvm_join *join,
		     const struct kvm_dvm_node_addr *addrs)
{
	struct kvm_vcpu *vcpu;
	struct dvm_cluster *c;
	bool started = false;
	unsigned long i;
	int r;

	c = dvm_cluster_alloc(dvm, join, addrs);
	if (!c)
		return -ENOMEM;
	/* From here on LEAVE can end the join (dvm_cluster_fail_join()). */
	mutex_lock(&dvm->lock);
	dvm->joining = c;
	mutex_unlock(&dvm->lock);
	c->ops = dvm_transport(join->transport);
	if (!c->ops) {
		r = -EOPNOTSUPP;
		goto fail;
	}
	r = dvm_subsys_cluster_init(c);
	if (r)
		goto fail;
	r = dvm_auth_init(c, join->key, join->key_len);
	if (r)
		goto fail;

	c->deadline = jiffies + msecs_to_jiffies(join->connect_timeout_ms);
	started = true;
	r = dvm_form_mesh(c);
	if (r) {
		join->failed_node = c->join_failed_node;
		dvm_abort_join(c, r, c->join_failed_node);
		goto fail;
	}

	mutex_lock(&dvm->lock);
	dvm->joining = NULL;
	r = READ_ONCE(c->aborted) ? -ECONNABORTED : 0;
	if (r) {
		/* A LEAVE ended it as it completed. */
		mutex_unlock(&dvm->lock);
		dvm_abort_join(c, r, KVM_DVM_NO_NODE);
		dvm_cluster_destroy(c, started);
		return r;
	}
	kvm_for_each_vcpu(i, vcpu, dvm->kvm)
		kvm_clear_request(KVM_REQ_DVM_BROKEN, vcpu);
	dvm->cluster = c;
	dvm->node_id = c->node_id;
	dvm->nr_vcpus = 0;
	dvm->nr_nodes = c->nr_nodes;
	dvm->transport = c->transport;
	dvm->forward_io = join->flags & KVM_DVM_JOIN_FORWARD_IO;
	dvm_join_publish(dvm, c);
	mutex_unlock(&dvm->lock);
	return 0;

fail:
	mutex_lock(&dvm->lock);
	dvm->joining = NULL;
	mutex_unlock(&dvm->lock);
	dvm_cluster_destroy(c, started);
	return r;
}

/*
 * Called with @dvm->lock, which it lets go of while the ioctls that use
 * the cluster without it (dvm_cluster_use()) end: every request fails and
 * every wait is woken first.
 */
void dvm_cluster_leave(struct kvm_dvm *dvm)
{
	struct dvm_cluster *c = dvm->cluster;
	int old;

	lockdep_assert_held(&dvm->lock);

	/*
	 * LEFT before the LEAVE goes out, under the cluster's lock: a peer
	 * that drops the link on it does not break this node any more
	 * (dvm_break_locked()), and a vCPU that looks again sees LEFT.
	 */
	spin_lock(&c->lock);
	old = READ_ONCE(dvm->state);
	/* Pairs with the vCPU hooks' acquire of the state. */
	smp_store_release(&dvm->state, KVM_DVM_STATE_LEFT);
	spin_unlock(&c->lock);
	if (old != KVM_DVM_STATE_BROKEN)
		dvm_send_all(c, DVM_MSG_LEAVE, NULL, 0);
	dvm_kick_vcpus(dvm);
	/* No delivery posts to the cluster's queues after this. */
	RCU_INIT_POINTER(dvm->live, NULL);
	synchronize_rcu();

	dvm->leaving = true;
	dvm_subsys_leave(dvm);
	dvm_calls_close(c, -ENOLINK);
	wake_up_all(&c->wq);
	mutex_unlock(&dvm->lock);
	wait_var_event(&dvm->users, !atomic_read(&dvm->users));
	mutex_lock(&dvm->lock);
	dvm->leaving = false;

	dvm_subsys_detach(dvm);
	dvm->cluster = NULL;
	dvm_cluster_destroy(c, true);
}
