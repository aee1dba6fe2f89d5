// SPDX-License-Identifier: GPL-2.0
/*
 * DVM messages: connections as the core sees them, the receive path every
 * transport drives (every field checked before use), sending, requests
 * waiting for replies, and the counters.
 */
#include <linux/kvm_host.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/wait_bit.h>

#include "dvm.h"

#define CREATE_TRACE_POINTS
#include "trace.h"

static int dvm_handle_heartbeat(struct dvm_cluster *c, struct dvm_conn *conn,
				const struct dvm_wire_msg *msg,
				const void *payload, struct dvm_reply *reply)
{
	return 0;
}

static int dvm_handle_echo(struct dvm_cluster *c, struct dvm_conn *conn,
			   const struct dvm_wire_msg *msg, const void *payload,
			   struct dvm_reply *reply)
{
	reply->buf = payload;
	reply->len = msg->len;
	return 0;
}

#define DVM_ERR_LEN	sizeof(struct dvm_msg_error)

static const struct dvm_msg_type_info dvm_msg_types[DVM_MSG_NR_TYPES] = {
	[DVM_MSG_HELLO] = { "hello", sizeof(struct dvm_msg_hello),
		sizeof(struct dvm_msg_hello), true, false, dvm_handle_hello },
	[DVM_MSG_CHALLENGE] = { "challenge", sizeof(struct dvm_msg_challenge),
		sizeof(struct dvm_msg_challenge), true, false,
		dvm_handle_challenge },
	[DVM_MSG_PROOF] = { "proof", sizeof(struct dvm_msg_proof),
		sizeof(struct dvm_msg_proof), true, false, dvm_handle_proof },
	[DVM_MSG_WELCOME] = { "welcome", 0, 0, true, false,
		dvm_handle_welcome },
	[DVM_MSG_REJECT] = { "reject", DVM_ERR_LEN, DVM_ERR_LEN, true, false,
		dvm_handle_reject },
	[DVM_MSG_MESH_READY] = { "mesh_ready", 0, 0, false, false,
		dvm_handle_mesh_ready },
	[DVM_MSG_MESH_UP] = { "mesh_up", 0, 0, false, false,
		dvm_handle_mesh_up },
	[DVM_MSG_ABORT] = { "abort", DVM_ERR_LEN, DVM_ERR_LEN, false, false,
		dvm_handle_abort },
	[DVM_MSG_HEARTBEAT] = { "heartbeat", 0, 0, false, false,
		dvm_handle_heartbeat },
	[DVM_MSG_BROKEN] = { "broken", DVM_ERR_LEN, DVM_ERR_LEN, false, false,
		dvm_handle_broken },
	[DVM_MSG_LEAVE] = { "leave", 0, 0, false, false, dvm_handle_leave },
	[DVM_MSG_VCPUS] = { "vcpus", sizeof(struct dvm_msg_vcpus),
		sizeof(struct dvm_msg_vcpus), false, false, dvm_handle_vcpus },
	[DVM_MSG_VCPUS_VERDICT] = { "vcpus_verdict",
		sizeof(struct dvm_msg_verdict), sizeof(struct dvm_msg_verdict),
		false, false, dvm_handle_verdict },
	[DVM_MSG_ECHO] = { "echo", 0, DVM_WIRE_PAGE_SIZE, false, true,
		dvm_handle_echo },
	[DVM_MSG_DSM_REQ] = { "dsm_req", sizeof(struct dvm_msg_dsm_req),
		sizeof(struct dvm_msg_dsm_req), false, true,
		dvm_handle_dsm_req },
	[DVM_MSG_DSM_DONE] = { "dsm_done", sizeof(struct dvm_msg_dsm_done),
		sizeof(struct dvm_msg_dsm_done), false, false,
		dvm_handle_dsm_done },
	[DVM_MSG_DSM_FETCH] = { "dsm_fetch", sizeof(struct dvm_msg_dsm_fetch),
		sizeof(struct dvm_msg_dsm_fetch), false, true,
		dvm_handle_dsm_fetch },
	[DVM_MSG_VCPU_INFO] = { "vcpu_info",
		sizeof(struct dvm_msg_vcpu_info) + sizeof(struct dvm_wire_vcpu_id),
		sizeof(struct dvm_msg_vcpu_info) +
		DVM_VCPU_INFO_CHUNK * sizeof(struct dvm_wire_vcpu_id),
		false, false, dvm_handle_vcpu_info },
	[DVM_MSG_IRQ] = { "irq", sizeof(struct dvm_wire_irq),
		DVM_IRQ_BATCH * sizeof(struct dvm_wire_irq), false, false,
		dvm_handle_irq },
	[DVM_MSG_APIC_STATE] = { "apic_state",
		sizeof(struct dvm_msg_apic_state),
		sizeof(struct dvm_msg_apic_state), false, true,
		dvm_handle_apic_state },
	[DVM_MSG_IO] = { "io", sizeof(struct dvm_msg_io),
		sizeof(struct dvm_msg_io) + DVM_IO_DATA_MAX, false, true,
		dvm_handle_io },
	[DVM_MSG_CLOCK] = { "clock", 0, 0, false, true, dvm_handle_clock },
	[DVM_MSG_VM_CONTROL] = { "vm_control",
		sizeof(struct dvm_msg_vm_control),
		sizeof(struct dvm_msg_vm_control), false, true,
		dvm_handle_vm_control },
	[DVM_MSG_MEMSLOT] = { "memslot", sizeof(struct dvm_msg_memslot),
		sizeof(struct dvm_msg_memslot), false, true,
		dvm_handle_memslot },
};

/* Statistics: the VM's counters are u64 fields of the binary stats. */
static_assert(sizeof(atomic64_t) == sizeof(u64));

/* Where a wire message type is counted: the uapi's own numbering. */
static const u8 dvm_msg_stat_index[DVM_MSG_NR_TYPES] = {
	[DVM_MSG_HELLO] = KVM_DVM_STAT_MSG_HELLO,
	[DVM_MSG_CHALLENGE] = KVM_DVM_STAT_MSG_CHALLENGE,
	[DVM_MSG_PROOF] = KVM_DVM_STAT_MSG_PROOF,
	[DVM_MSG_WELCOME] = KVM_DVM_STAT_MSG_WELCOME,
	[DVM_MSG_REJECT] = KVM_DVM_STAT_MSG_REJECT,
	[DVM_MSG_MESH_READY] = KVM_DVM_STAT_MSG_MESH_READY,
	[DVM_MSG_MESH_UP] = KVM_DVM_STAT_MSG_MESH_UP,
	[DVM_MSG_ABORT] = KVM_DVM_STAT_MSG_ABORT,
	[DVM_MSG_HEARTBEAT] = KVM_DVM_STAT_MSG_HEARTBEAT,
	[DVM_MSG_BROKEN] = KVM_DVM_STAT_MSG_BROKEN,
	[DVM_MSG_LEAVE] = KVM_DVM_STAT_MSG_LEAVE,
	[DVM_MSG_VCPUS] = KVM_DVM_STAT_MSG_VCPUS,
	[DVM_MSG_VCPUS_VERDICT] = KVM_DVM_STAT_MSG_VCPUS_VERDICT,
	[DVM_MSG_ECHO] = KVM_DVM_STAT_MSG_ECHO,
	[DVM_MSG_DSM_REQ] = KVM_DVM_STAT_MSG_DSM_REQ,
	[DVM_MSG_DSM_DONE] = KVM_DVM_STAT_MSG_DSM_DONE,
	[DVM_MSG_DSM_FETCH] = KVM_DVM_STAT_MSG_DSM_FETCH,
	[DVM_MSG_VCPU_INFO] = KVM_DVM_STAT_MSG_VCPU_INFO,
	[DVM_MSG_IRQ] = KVM_DVM_STAT_MSG_IRQ,
	[DVM_MSG_APIC_STATE] = KVM_DVM_STAT_MSG_APIC_STATE,
	[DVM_MSG_IO] = KVM_DVM_STAT_MSG_IO,
	[DVM_MSG_CLOCK] = KVM_DVM_STAT_MSG_CLOCK,
	[DVM_MSG_VM_CONTROL] = KVM_DVM_STAT_MSG_VM_CONTROL,
	[DVM_MSG_MEMSLOT] = KVM_DVM_STAT_MSG_MEMSLOT,
};

static_assert(DVM_MSG_NR_TYPES - 1 <= KVM_DVM_STAT_TYPES);

void dvm_stat_add(u64 *stat, u64 val)
{
	atomic64_add(val, (atomic64_t *)stat);
}

static struct kvm_dvm_vm_stat *dvm_vm_stat(struct dvm_cluster *c)
{
	return &c->dvm->kvm->stat.generic.dvm;
}

void dvm_stat_count_error(struct dvm_cluster *c, bool auth)
{
	struct kvm_dvm_vm_stat *s = dvm_vm_stat(c);

	dvm_stat_add(auth ? &s->auth_failures : &s->malformed, 1);
}

static void dvm_count_msg(struct dvm_cluster *c, u32 node, bool tx, u16 type,
			  u32 len)
{
	struct kvm_dvm_vm_stat *s = dvm_vm_stat(c);
	u64 bytes = sizeof(struct dvm_wire_hdr) + len;
	u8 i = dvm_msg_stat_index[type];
	struct dvm_peer_stats *ps;

	dvm_stat_add(tx ? &s->tx_msgs[i] : &s->rx_msgs[i], 1);
	dvm_stat_add(tx ? &s->tx_bytes[i] : &s->rx_bytes[i], bytes);
	if (node >= c->nr_nodes)
		return;
	ps = &c->peers[node].stats;
	atomic64_inc(tx ? &ps->tx_msgs : &ps->rx_msgs);
	atomic64_add(bytes, tx ? &ps->tx_bytes : &ps->rx_bytes);
}

void dvm_stat_min(u64 *stat, u64 val)
{
	u64 old = READ_ONCE(*stat);

	while ((!old || val < old) &&
	       !try_cmpxchg64((s64 *)stat, (s64 *)&old, val))
		;
}

void dvm_stat_max(u64 *stat, u64 val)
{
	u64 old = READ_ONCE(*stat);

	while (val > old && !try_cmpxchg64((s64 *)stat, (s64 *)&old, val))
		;
}

static void dvm_count_rtt(struct dvm_cluster *c, u32 node, u64 ns)
{
	struct kvm_dvm_vm_stat *s = dvm_vm_stat(c);
	struct dvm_peer_stats *ps = &c->peers[node].stats;

	dvm_stat_add(&s->rtt_sum_ns, ns);
	dvm_stat_add(&s->rtt_count, 1);
	dvm_stat_min(&s->rtt_min_ns, ns);
	dvm_stat_max(&s->rtt_max_ns, ns);
	atomic64_add(ns, &ps->rtt_sum_ns);
	atomic64_inc(&ps->rtt_count);
	dvm_stat_min(&ps->rtt_min_ns, ns);
	dvm_stat_max(&ps->rtt_max_ns, ns);
}

void dvm_peer_fill_link(struct dvm_cluster *c, u32 node,
			struct kvm_dvm_link *link)
{
	struct dvm_peer *p = &c->peers[node];
	u64 count = atomic64_read(&p->stats.rtt_count);

	memset(link, 0, sizeof(*link));
	link->node = node;
	if (node == c->node_id)
		link->state = KVM_DVM_LINK_SELF;
	else
		link->state = READ_ONCE(p->up) ? KVM_DVM_LINK_UP :
						 KVM_DVM_LINK_DOWN;
	link->tx_msgs = atomic64_read(&p->stats.tx_msgs);
	link->rx_msgs = atomic64_read(&p->stats.rx_msgs);
	link->tx_bytes = atomic64_read(&p->stats.tx_bytes);
	link->rx_bytes = atomic64_read(&p->stats.rx_bytes);
	link->rtt_min_ns = READ_ONCE(p->stats.rtt_min_ns);
	link->rtt_max_ns = READ_ONCE(p->stats.rtt_max_ns);
	if (count)
		link->rtt_avg_ns = div64_u64(atomic64_read(&p->stats.rtt_sum_ns),
					     count);
	if (node != c->node_id && p->last_rx)
		link->last_rx_ms = jiffies_to_msecs(jiffies -
						    READ_ONCE(p->last_rx));
}

/* Connections */

int dvm_conn_init(struct dvm_conn *conn, struct dvm_cluster *c, u32 node,
		  bool outgoing)
{
	conn->c = c;
	conn->node = node;
	conn->outgoing = outgoing;
	conn->auth = outgoing ? DVM_AUTH_WAIT_CHALLENGE : DVM_AUTH_WAIT_HELLO;
	INIT_LIST_HEAD(&conn->list);
	atomic_set(&conn->users, 0);
	conn->rx_buf = kvmalloc(DVM_WIRE_MAX_PAYLOAD, GFP_KERNEL_ACCOUNT);
	return conn->rx_buf ? 0 : -ENOMEM;
}

/*
 * This node has a link to @node, or its own connection to it is still
 * authenticating: nothing to dial.
 */
bool dvm_conn_outgoing(struct dvm_cluster *c, u32 node)
{
	struct dvm_conn *conn;
	bool found = READ_ONCE(c->peers[node].up);

	spin_lock(&c->lock);
	list_for_each_entry(conn, &c->conns, list)
		if (conn->outgoing && conn->node == node &&
		    conn->auth != DVM_AUTH_DEAD)
			found = true;
	spin_unlock(&c->lock);
	return found;
}

/* Unauthenticated incoming connections held at once; more are refused. */
#define DVM_MAX_PENDING_CONNS	(2 * KVM_DVM_MAX_NODES)

/* @addr is one of the node table's (any port). */
static bool dvm_addr_in_table(struct dvm_cluster *c,
			      const struct sockaddr_storage *addr)
{
	u32 i;

	for (i = 0; i < c->nr_nodes; i++)
		if (dvm_addr_equal(addr, &c->peers[i].addr, false))
			return true;
	return false;
}

/*
 * Strangers (addresses not in the node table) and members each get their
 * own allowance of unauthenticated incoming connections: a flood from
 * elsewhere cannot crowd the members out.
 */
static bool dvm_too_many_pending(struct dvm_cluster *c,
				 const struct dvm_conn *new)
{
	bool member = dvm_addr_in_table(c, &new->remote);
	struct dvm_conn *conn;
	int n = 0;

	lockdep_assert_held(&c->lock);
	list_for_each_entry(conn, &c->conns, list)
		if (conn != new && !conn->outgoing &&
		    conn->auth != DVM_AUTH_DONE &&
		    conn->auth != DVM_AUTH_DEAD &&
		    dvm_addr_in_table(c, &conn->remote) == member)
			n++;
	return n >= DVM_MAX_PENDING_CONNS;
}

/*
 * The core owns @conn from now on. An incoming connection beyond
 * DVM_MAX_PENDING_CONNS unauthenticated ones is dropped at once (a flood
 * of connections costs the node nothing but this).
 */
void dvm_conn_add(struct dvm_conn *conn)
{
	struct dvm_cluster *c = conn->c;
	bool flood;

	conn->since = jiffies;
	spin_lock(&c->lock);
	flood = !conn->outgoing && dvm_too_many_pending(c, conn);
	list_add_tail(&conn->list, &c->conns);
	spin_unlock(&c->lock);
	if (flood) {
		dvm_stat_count_error(c, false);
		dvm_conn_drop(conn, -EMFILE);
	}
}

void dvm_conn_ready(struct dvm_conn *conn)
{
	int r;

	if (!conn->outgoing)
		return;
	r = dvm_auth_start(conn);
	if (r)
		dvm_conn_drop(conn, r);
}

/*
 * A connection of this node's that was reset or closed before it
 * authenticated (a flooded listener drops it): the connector dials again
 * until the join's deadline, it fails nothing.
 */
static bool dvm_conn_err_retry(int err)
{
	return err == -ECONNRESET || err == -EPIPE || err == -ECONNABORTED;
}

/**
 * dvm_conn_drop - stop using a connection
 * @conn: the connection
 * @err: why, a negative errno
 *
 * Shuts the connection down and queues it for release. Losing a peer's
 * authenticated connection loses the peer. Callable from the
 * connection's own callbacks; does nothing the second time.
 */
void dvm_conn_drop(struct dvm_conn *conn, int err)
{
	struct dvm_cluster *c = conn->c;
	bool bound = false, broke = false, handshaking;
	u32 node = conn->node;

	spin_lock(&c->lock);
	if (conn->auth == DVM_AUTH_DEAD) {
		spin_unlock(&c->lock);
		return;
	}
	handshaking = conn->outgoing && conn->auth != DVM_AUTH_DONE;
	if (conn->auth == DVM_AUTH_DONE && c->peers[node].conn == conn) {
		/* Broken before the link is seen down (dvm_break_locked()). */
		if (c->mesh_up)
			broke = dvm_break_locked(c, node, err);
		c->peers[node].conn = NULL;
		WRITE_ONCE(c->peers[node].up, false);
		c->nr_up--;
		bound = true;
	}
	conn->auth = DVM_AUTH_DEAD;
	conn->reap = true;
	if (!c->stopping)
		queue_work(system_unbound_wq, &c->reap_work);
	spin_unlock(&c->lock);

	trace_dvm_drop(c->node_id, node, err);
	c->ops->shutdown(conn);

	if (bound) {
		dvm_stat_add(&dvm_vm_stat(c)->peers_lost, 1);
		if (broke)
			dvm_broken_notify(c, node, err);
		else
			dvm_cluster_lost(c, node, err);
		dvm_calls_fail(c, node, -ENOLINK);
	} else if (handshaking && !dvm_conn_err_retry(err)) {
		/* This node's own attempt to reach a peer failed. */
		dvm_cluster_fail_join(c, node, err);
	}
}

void dvm_conn_free(struct dvm_conn *conn)
{
	kvfree(conn->rx_buf);
	conn->rx_buf = NULL;
}

/*
 * The transport's release stops the receiver (TCP's rx thread, RDMA's
 * completion work) and frees @conn: the receive buffer, which the
 * receiver may still be filling until then, goes only after it, and
 * stays @conn's until then (a receiver between two messages takes it
 * again).
 */
static void dvm_conn_release(struct dvm_conn *conn)
{
	void *rx_buf = conn->rx_buf;

	wait_var_event(&conn->users, !atomic_read(&conn->users));
	conn->c->ops->release(conn);
	kvfree(rx_buf);
}

void dvm_reap_work(struct work_struct *work)
{
	struct dvm_cluster *c = container_of(work, struct dvm_cluster,
					     reap_work);
	struct dvm_conn *conn, *found;

	for (;;) {
		found = NULL;
		spin_lock(&c->lock);
		list_for_each_entry(conn, &c->conns, list) {
			if (conn->reap) {
				found = conn;
				list_del_init(&conn->list);
				break;
			}
		}
		spin_unlock(&c->lock);
		if (!found)
			return;
		dvm_conn_release(found);
	}
}

/* Teardown: the transport is stopped and no reaper runs any more. */
void dvm_conns_release_all(struct dvm_cluster *c)
{
	struct dvm_conn *conn;
	LIST_HEAD(dead);
	u32 i;

	spin_lock(&c->lock);
	WARN_ON_ONCE(!c->stopping);
	for (i = 0; i < c->nr_nodes; i++) {
		c->peers[i].conn = NULL;
		WRITE_ONCE(c->peers[i].up, false);
	}
	c->nr_up = 0;
	list_for_each_entry(conn, &c->conns, list)
		conn->auth = DVM_AUTH_DEAD;
	list_splice_init(&c->conns, &dead);
	spin_unlock(&c->lock);

	list_for_each_entry(conn, &dead, list)
		c->ops->shutdown(conn);
	while (!list_empty(&dead)) {
		conn = list_first_entry(&dead, struct dvm_conn, list);
		list_del_init(&conn->list);
		dvm_conn_release(conn);
	}
}

/* Receiving */

static int dvm_rx_malformed(struct dvm_conn *conn)
{
	dvm_stat_count_error(conn->c, false);
	return -EPROTO;
}

/*
 * Take the request a reply answers out of the pending ones. NULL when
 * none waits for it any more (it timed out: a late reply); an error
 * pointer when the reply does not fit the request it names.
 */
static struct dvm_call *dvm_claim_call(struct dvm_conn *conn,
				       const struct dvm_wire_msg *msg)
{
	struct dvm_cluster *c = conn->c;
	struct dvm_call *call;

	if (msg->req_id > U32_MAX || !msg->req_id)
		return ERR_PTR(-EPROTO);
	xa_lock(&c->calls);
	call = xa_load(&c->calls, msg->req_id);
	if (call && call->node == conn->node && call->type == msg->type &&
	    msg->len <= call->resp_max)
		__xa_erase(&c->calls, msg->req_id);
	else if (call)
		call = ERR_PTR(-EPROTO);
	xa_unlock(&c->calls);
	return call;
}

/**
 * dvm_rx_header - check a received header and say where its payload goes
 * @conn: the connection it came on
 * @hdr: the header as received
 * @rx: filled in: the checked header, the payload's destination
 *
 * Return: 0, or a negative errno after which the transport drops @conn:
 * -EPROTO for anything malformed, counted.
 */
int dvm_rx_header(struct dvm_conn *conn, const struct dvm_wire_hdr *hdr,
		  struct dvm_rx *rx)
{
	const struct dvm_msg_type_info *info;
	struct dvm_wire_msg *msg = &rx->msg;
	struct dvm_cluster *c = conn->c;
	bool authed;

	rx->call = NULL;
	rx->late = false;
	rx->buf = conn->rx_buf;
	if (dvm_wire_parse(hdr, DVM_MSG_NR_TYPES, msg))
		return dvm_rx_malformed(conn);

	info = &dvm_msg_types[msg->type];
	authed = READ_ONCE(conn->auth) == DVM_AUTH_DONE;
	if (!info->handler || info->handshake == authed)
		return dvm_rx_malformed(conn);

	if (msg->flags & DVM_WIRE_F_REPLY) {
		if (!info->request)
			return dvm_rx_malformed(conn);
		rx->call = dvm_claim_call(conn, msg);
		if (IS_ERR(rx->call)) {
			rx->call = NULL;
			return dvm_rx_malformed(conn);
		}
		/* Late: counted, its payload read and dropped. */
		rx->late = !rx->call;
		if (rx->late)
			dvm_stat_add(&dvm_vm_stat(c)->late_replies, 1);
		else
			rx->buf = rx->call->resp;
	} else if (info->request != !!msg->req_id ||
		   msg->len < info->min_len || msg->len > info->max_len) {
		return dvm_rx_malformed(conn);
	}

	trace_dvm_recv(c->node_id, conn->node, msg->type, msg->flags,
		       msg->len, msg->req_id);
	dvm_count_msg(c, authed ? conn->node : KVM_DVM_NO_NODE, false,
		      msg->type, msg->len);
	if (authed)
		WRITE_ONCE(c->peers[conn->node].last_rx, jiffies);
	return 0;
}

static void dvm_complete_call(struct dvm_cluster *c, struct dvm_call *call,
			      u32 len, int status)
{
	/* At least 1 ns: 0 means "none yet" in the minimums. */
	call->rtt_ns = max_t(u64, 1, ktime_to_ns(ktime_sub(ktime_get(),
							   call->start)));
	call->resp_len = len;
	call->status = status;
	if (!status)
		dvm_count_rtt(c, call->node, call->rtt_ns);
	complete(&call->done);
}

void dvm_rx_abort(struct dvm_conn *conn, struct dvm_rx *rx, int err)
{
	if (rx->call)
		dvm_complete_call(conn->c, rx->call, 0, err);
	rx->call = NULL;
}

/*
 * A reply's status, a peer's number: only the errnos a DVM handler
 * answers pass. A peer's ENOMEM is its own shortage, not this node's
 * (which the fault path would retry for ever): EREMOTEIO. Anything else
 * is counted as malformed and becomes EPROTO.
 */
static int dvm_status_errno(struct dvm_cluster *c, u16 status)
{
	switch (status) {
	case 0:
	case EINVAL:
	case ERANGE:
	case ENODEV:
	case ENXIO:
	case EBUSY:
	case EIO:
	case EPROTO:
	case ESTALE:
	case EINTR:
	case EAGAIN:
	case ENOLINK:
	case ENOTCONN:
	case ETIMEDOUT:
	case ECONNRESET:
	case EOVERFLOW:
	case ESHUTDOWN:
		return -(int)status;
	case ENOMEM:
		return -EREMOTEIO;
	}
	dvm_stat_count_error(c, false);
	return -EPROTO;
}

/**
 * dvm_rx_payload - act on a message whose payload is in place
 * @conn: the connection it came on
 * @rx: as filled by dvm_rx_header()
 *
 * Return: 0, or a negative errno after which the transport drops @conn.
 */
int dvm_rx_payload(struct dvm_conn *conn, struct dvm_rx *rx)
{
	const struct dvm_wire_msg *msg = &rx->msg;
	const struct dvm_msg_type_info *info = &dvm_msg_types[msg->type];
	struct dvm_reply reply = { };
	int r;

	if (rx->call) {
		dvm_complete_call(conn->c, rx->call, msg->len,
				  dvm_status_errno(conn->c, msg->status));
		return 0;
	}
	if (rx->late)
		return 0;

	r = info->handler(conn->c, conn, msg, rx->buf, &reply);
	if (r == DVM_REPLY_LATER)
		return 0;
	if (info->request) {
		/* The reply's status is the handler's errno. */
		r = dvm_conn_send(conn, msg->type, DVM_WIRE_F_REPLY,
				  r < 0 ? min(-r, (int)U16_MAX) : 0,
				  msg->req_id, r < 0 ? NULL : reply.buf,
				  r < 0 ? 0 : reply.len);
		/* Not sent because this node is broken: the link stays. */
		return r == -ENOLINK ? 0 : r;
	}
	if (r == -EPROTO)
		return dvm_rx_malformed(conn);
	return r;
}

/* Sending */

int dvm_conn_send(struct dvm_conn *conn, u16 type, u16 flags, u16 status,
		  u64 req_id, const void *buf, u32 len)
{
	struct dvm_cluster *c = conn->c;
	struct dvm_wire_msg msg = {
		.type = type, .flags = flags, .status = status,
		.len = len, .req_id = req_id,
	};
	struct dvm_wire_hdr hdr;
	struct page *page = NULL;
	int r;

	if (WARN_ON_ONCE(len > DVM_WIRE_MAX_PAYLOAD || type >= DVM_MSG_NR_TYPES))
		return -EINVAL;
	/*
	 * A broken node says so to its peers and nothing else: a reply it
	 * sent after its breakage (an error, its DSM dead) could reach a
	 * peer before the BROKEN and fail an access there while the peer
	 * still runs. Their requests end when they break in turn.
	 */
	if (READ_ONCE(c->broken_error) && type != DVM_MSG_BROKEN &&
	    type != DVM_MSG_LEAVE)
		return -ENOLINK;
	/* A whole page goes without a copy where the transport can. */
	if (len == PAGE_SIZE && PAGE_ALIGNED(buf) && !is_vmalloc_addr(buf) &&
	    virt_addr_valid(buf)) {
		page = virt_to_page(buf);
		buf = NULL;
	}
	dvm_wire_build(&hdr, &msg);
	trace_dvm_send(c->node_id, conn->node, type, flags, len, req_id);
	r = c->ops->send(conn, &hdr, buf, page, len);
	if (!r)
		dvm_count_msg(c, READ_ONCE(conn->auth) == DVM_AUTH_DONE ?
			      conn->node : KVM_DVM_NO_NODE, true, type, len);
	return r;
}

/* The authenticated connection to @node, held against release. */
static struct dvm_conn *dvm_get_peer_conn(struct dvm_cluster *c, u32 node)
{
	struct dvm_conn *conn;

	spin_lock(&c->lock);
	conn = c->peers[node].conn;
	if (conn)
		atomic_inc(&conn->users);
	spin_unlock(&c->lock);
	return conn;
}

static void dvm_put_peer_conn(struct dvm_conn *conn)
{
	if (atomic_dec_and_test(&conn->users))
		wake_up_var(&conn->users);
}

static int dvm_send_msg(struct dvm_cluster *c, u32 node, u16 type,
			u64 req_id, const void *buf, u32 len)
{
	struct dvm_conn *conn;
	int r;

	if (node >= c->nr_nodes || node == c->node_id)
		return -EINVAL;
	conn = dvm_get_peer_conn(c, node);
	if (!conn)
		return -ENOTCONN;
	r = dvm_conn_send(conn, type, 0, 0, req_id, buf, len);
	dvm_put_peer_conn(conn);
	return r;
}

/* One-way message to one peer. */
int dvm_send(struct dvm_cluster *c, u32 node, u16 type, const void *buf,
	     u32 len)
{
	return dvm_send_msg(c, node, type, 0, buf, len);
}

/* One-way message to every connected peer, best effort. */
void dvm_send_all(struct dvm_cluster *c, u16 type, const void *buf, u32 len)
{
	u32 i;

	for (i = 0; i < c->nr_nodes; i++)
		if (i != c->node_id)
			dvm_send(c, i, type, buf, len);
}

/**
 * dvm_call_start - send a request; its reply completes @call
 * @c: the cluster
 * @call: caller-owned until dvm_call_wait() returns
 * @node: the peer
 * @type: a request type
 * @buf: request payload, @len bytes
 * @len: payload bytes
 * @resp: room for the reply's payload, @resp_max bytes
 * @resp_max: bytes of room
 *
 * Return: 0 when the request is on its way; then dvm_call_wait*() must be
 * called, or @call->done waited for by a caller that never gives up on the
 * reply (the DSM's requests: the reply, or the peer's loss, ends them). A
 * negative errno otherwise.
 */
int dvm_call_start(struct dvm_cluster *c, struct dvm_call *call, u32 node,
		   u16 type, const void *buf, u32 len, void *resp,
		   u32 resp_max)
{
	int r;

	init_completion(&call->done);
	call->node = node;
	call->type = type;
	call->resp = resp;
	call->resp_max = resp_max;
	call->resp_len = 0;
	call->status = 0;
	r = xa_alloc_cyclic(&c->calls, &call->id, call, xa_limit_32b,
			    &c->next_call_id, GFP_KERNEL);
	if (r < 0)
		return r;
	/* Pairs with dvm_calls_close*(): fail what starts after them. */
	if (READ_ONCE(c->calls_closed) ||
	    (READ_ONCE(c->calls_closed_types) & BIT(type))) {
		if (xa_erase(&c->calls, call->id) == call)
			return c->calls_closed ?: -ENOLINK;
		wait_for_completion(&call->done);
		return call->status;
	}
	call->start = ktime_get();
	r = dvm_send_msg(c, node, type, call->id, buf, len);
	if (r) {
		if (xa_erase(&c->calls, call->id) == call)
			return r;
		/* Lost or answered meanwhile: wait for the other side. */
		wait_for_completion(&call->done);
		return call->status ? call->status : r;
	}
	return 0;
}

int dvm_call_wait(struct dvm_cluster *c, struct dvm_call *call,
		  unsigned long timeout)
{
	if (!wait_for_completion_timeout(&call->done, timeout)) {
		if (xa_erase(&c->calls, call->id) == call)
			return -ETIMEDOUT;
		wait_for_completion(&call->done);
	}
	return call->status;
}

/*
 * As dvm_call_wait() without a timeout, but a fatal signal ends the wait
 * (-EINTR). Not counted as a hung task however long the peer takes.
 */
int dvm_call_wait_killable(struct dvm_cluster *c, struct dvm_call *call)
{
	if (wait_for_completion_killable(&call->done)) {
		if (xa_erase(&c->calls, call->id) == call)
			return -EINTR;
		wait_for_completion(&call->done);
	}
	return call->status;
}

static void dvm_first_error(int *r, u32 *failed, int err, u32 node)
{
	if (err && !*r) {
		*r = err;
		*failed = node;
	}
}

/**
 * dvm_call_others - the same request to every other node at once
 * @c: the cluster
 * @type: the request's type; its replies carry no payload
 * @buf: the payload, @len bytes
 * @len: payload bytes
 * @local: this node's part, run while the others do theirs, or NULL
 * @arg: for @local
 * @failed: set to the node that failed first (this one for @local)
 *
 * Waits for every reply without a time limit: a fatal signal (-EINTR) or
 * a peer's loss ends the wait.
 *
 * Return: 0, or the first failure's errno.
 */
int dvm_call_others(struct dvm_cluster *c, u16 type, const void *buf,
		    u32 len, int (*local)(struct dvm_cluster *c, void *arg),
		    void *arg, u32 *failed)
{
	struct dvm_call *calls;
	int r = 0, err;
	u32 i;

	calls = kcalloc(c->nr_nodes, sizeof(*calls), GFP_KERNEL_ACCOUNT);
	if (!calls)
		return -ENOMEM;
	for (i = 0; i < c->nr_nodes; i++) {
		calls[i].node = KVM_DVM_NO_NODE;
		if (i == c->node_id)
			continue;
		err = dvm_call_start(c, &calls[i], i, type, buf, len, NULL, 0);
		if (err)
			calls[i].node = KVM_DVM_NO_NODE;
		dvm_first_error(&r, failed, err, i);
	}
	if (local)
		dvm_first_error(&r, failed, local(c, arg), c->node_id);
	for (i = 0; i < c->nr_nodes; i++)
		if (calls[i].node != KVM_DVM_NO_NODE)
			dvm_first_error(&r, failed,
					dvm_call_wait_killable(c, &calls[i]),
					i);
	kfree(calls);
	return r;
}

/**
 * dvm_reply - answer a request whose handler returned DVM_REPLY_LATER
 * @c: the cluster
 * @node: the peer that asked
 * @type: the request's type
 * @req_id: the request's id
 * @err: 0, or a negative errno for the reply's status (then no payload)
 * @buf: payload, @len bytes
 * @len: payload bytes
 *
 * Return: 0 once the reply is on its way, or a negative errno (the peer
 * is gone: the cluster breaks anyway).
 */
int dvm_reply(struct dvm_cluster *c, u32 node, u16 type, u64 req_id, int err,
	      const void *buf, u32 len)
{
	struct dvm_conn *conn;
	int r;

	if (WARN_ON_ONCE(node >= c->nr_nodes || node == c->node_id))
		return -EINVAL;
	conn = dvm_get_peer_conn(c, node);
	if (!conn)
		return -ENOTCONN;
	r = dvm_conn_send(conn, type, DVM_WIRE_F_REPLY,
			  err < 0 ? min(-err, (int)U16_MAX) : 0, req_id,
			  err < 0 ? NULL : buf, err < 0 ? 0 : len);
	dvm_put_peer_conn(conn);
	return r;
}

/* Complete the requests waiting on @node (all if KVM_DVM_NO_NODE). */
void dvm_calls_fail(struct dvm_cluster *c, u32 node, int err)
{
	struct dvm_call *call;
	unsigned long id;

	xa_lock(&c->calls);
	xa_for_each(&c->calls, id, call) {
		if (node != KVM_DVM_NO_NODE && call->node != node)
			continue;
		__xa_erase(&c->calls, id);
		call->status = err;
		complete(&call->done);
	}
	xa_unlock(&c->calls);
}

/* Fail every pending request of @type and, from now on, every new one. */
void dvm_calls_close_type(struct dvm_cluster *c, u16 type, int err)
{
	static_assert(DVM_MSG_NR_TYPES <= 32);

	struct dvm_call *call;
	unsigned long id;

	xa_lock(&c->calls);
	WRITE_ONCE(c->calls_closed_types, c->calls_closed_types | BIT(type));
	xa_for_each(&c->calls, id, call) {
		if (call->type != type)
			continue;
		__xa_erase(&c->calls, id);
		call->status = err;
		complete(&call->done);
	}
	xa_unlock(&c->calls);
}

/* Fail every pending request and, from now on, every new one. */
void dvm_calls_close(struct dvm_cluster *c, int err)
{
	xa_lock(&c->calls);
	WRITE_ONCE(c->calls_closed, err);
	xa_unlock(&c->calls);
	dvm_calls_fail(c, KVM_DVM_NO_NODE, err);
}

/* KVM_DVM_PING: echo round trips, @p->depth of them in flight. */
struct dvm_ping_slot {
	struct dvm_call call;
	void *req;
	void *resp;
	bool busy;
};

static void dvm_ping_fill(void *buf, u32 size, u32 seq)
{
	u32 i;

	for (i = 0; i < size; i++)
		((u8 *)buf)[i] = (u8)(seq * 131 + i);
}

static void dvm_ping_free(struct dvm_ping_slot *slots, u32 depth)
{
	u32 i;

	for (i = 0; i < depth; i++) {
		free_page((unsigned long)slots[i].req);
		kfree(slots[i].resp);
	}
	kvfree(slots);
}

static struct dvm_ping_slot *dvm_ping_alloc(u32 depth)
{
	struct dvm_ping_slot *slots;
	u32 i;

	slots = kvcalloc(depth, sizeof(*slots), GFP_KERNEL_ACCOUNT);
	if (!slots)
		return NULL;
	for (i = 0; i < depth; i++) {
		/* Requests are pages: a 4 KiB echo goes without copies. */
		slots[i].req = (void *)__get_free_page(GFP_KERNEL_ACCOUNT);
		slots[i].resp = kmalloc(DVM_WIRE_PAGE_SIZE, GFP_KERNEL_ACCOUNT);
		if (!slots[i].req || !slots[i].resp) {
			dvm_ping_free(slots, depth);
			return NULL;
		}
	}
	return slots;
}

/*
 * An echo is waited for as long as the peer may stay silent before it is
 * lost (the join's peer_timeout_ms); a reply after that is late, counted
 * and dropped.
 */
static int dvm_ping_finish(struct dvm_cluster *c, struct dvm_ping_slot *s,
			   struct kvm_dvm_ping *p, u32 *done)
{
	int r = dvm_call_wait(c, &s->call, c->peer_timeout);

	s->busy = false;
	if (r)
		return r;
	if (s->call.resp_len != p->size || memcmp(s->req, s->resp, p->size))
		return -EIO;
	p->min_ns = *done ? min(p->min_ns, s->call.rtt_ns) : s->call.rtt_ns;
	p->max_ns = max(p->max_ns, s->call.rtt_ns);
	p->avg_ns += s->call.rtt_ns;	/* the sum until the end */
	(*done)++;
	return 0;
}

int dvm_ping(struct dvm_cluster *c, struct kvm_dvm_ping *p)
{
	struct dvm_ping_slot *slots, *s;
	u32 sent = 0, done = 0, i;
	ktime_t start;
	int r = 0;

	slots = dvm_ping_alloc(p->depth);
	if (!slots)
		return -ENOMEM;
	p->min_ns = 0;
	p->max_ns = 0;
	p->avg_ns = 0;
	start = ktime_get();
	while (done < p->count && !r) {
		s = &slots[sent % p->depth];
		if (s->busy) {
			r = dvm_ping_finish(c, s, p, &done);
			continue;
		}
		if (sent == p->count) {
			/* Collect the ones still in flight. */
			s = &slots[done % p->depth];
			r = dvm_ping_finish(c, s, p, &done);
			continue;
		}
		dvm_ping_fill(s->req, p->size, sent);
		r = dvm_call_start(c, &s->call, p->node, DVM_MSG_ECHO, s->req,
				   p->size, s->resp, DVM_WIRE_PAGE_SIZE);
		if (!r) {
			s->busy = true;
			sent++;
		}
		if (signal_pending(current))
			r = -EINTR;
	}
	/* On an error, the requests in flight still own their slots. */
	for (i = 0; i < p->depth; i++)
		if (slots[i].busy)
			dvm_call_wait(c, &slots[i].call, c->peer_timeout);
	p->total_ns = ktime_to_ns(ktime_sub(ktime_get(), start));
	if (done)
		p->avg_ns = div64_u64(p->avg_ns, done);
	dvm_ping_free(slots, p->depth);
	return r;
}
