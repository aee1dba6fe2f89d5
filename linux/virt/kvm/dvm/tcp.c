// SPDX-License-Identifier: GPL-2.0
/*
 * DVM TCP transport: in-kernel sockets. Every node listens on its own
 * address for the nodes above it and connects to the nodes below it, from
 * its own address. Messages go out as they are (header, then payload; a
 * page payload with sendpage, without a copy) under a per-connection lock,
 * so each link keeps its order. One receive thread per link reads a header,
 * asks the core where the payload goes, and reads it straight there.
 */
#include <linux/kthread.h>
#include <linux/net.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <net/sock.h>
#include <net/tcp.h>

#include "dvm.h"

/* A failed connect is retried after this long. */
#define DVM_TCP_CONNECT_RETRY_MS 100

struct dvm_tcp_conn {
	struct dvm_conn conn;
	struct socket *sock;
	struct task_struct *rx_thread;
	struct mutex tx_lock;	/* one message at a time on the stream */
	bool shut;
};

struct dvm_tcp {
	struct dvm_cluster *c;
	struct socket *listener;
	struct task_struct *acceptor;
	struct task_struct *connector;
};

static struct dvm_tcp_conn *to_tcp_conn(struct dvm_conn *conn)
{
	return container_of(conn, struct dvm_tcp_conn, conn);
}

/*
 * Read @len bytes. @partial says whether part of the message was read
 * already: a peer that closes in the middle of a message sent a truncated
 * one, which is counted as malformed.
 */
static int dvm_tcp_recv(struct dvm_tcp_conn *tc, void *buf, size_t len,
			bool partial)
{
	struct msghdr msg = { .msg_flags = MSG_NOSIGNAL };
	struct kvec iov;
	int r;

	while (len) {
		iov.iov_base = buf;
		iov.iov_len = len;
		r = kernel_recvmsg(tc->sock, &msg, &iov, 1, len, MSG_WAITALL);
		if (r <= 0) {
			if (partial && !READ_ONCE(tc->shut))
				dvm_stat_count_error(tc->conn.c, false);
			return r ? r : -ECONNRESET;
		}
		partial = true;
		buf += r;
		len -= r;
	}
	return 0;
}

/* Read messages until the connection fails or is dropped. */
static int dvm_tcp_rx_loop(struct dvm_tcp_conn *tc)
{
	struct dvm_wire_hdr hdr;
	struct dvm_rx rx;
	int r;

	for (;;) {
		r = dvm_tcp_recv(tc, &hdr, sizeof(hdr), false);
		if (r)
			return r;
		r = dvm_rx_header(&tc->conn, &hdr, &rx);
		if (r)
			return r;
		if (rx.msg.len) {
			r = dvm_tcp_recv(tc, rx.buf, rx.msg.len, true);
			if (r) {
				dvm_rx_abort(&tc->conn, &rx, r);
				return r;
			}
		}
		r = dvm_rx_payload(&tc->conn, &rx);
		if (r)
			return r;
	}
}

/*
 * Every thread here ends only through kthread_stop(), which the core or
 * dvm_tcp_stop() calls after it is done with the thread's work.
 */
static int dvm_tcp_wait_for_stop(void)
{
	for (;;) {
		set_current_state(TASK_INTERRUPTIBLE);
		if (kthread_should_stop())
			break;
		schedule();
	}
	__set_current_state(TASK_RUNNING);
	return 0;
}

static int dvm_tcp_rx_thread(void *data)
{
	struct dvm_tcp_conn *tc = data;

	/* What the peer's messages cost is the joining task's. */
	set_active_memcg(tc->conn.c->memcg);

	dvm_conn_drop(&tc->conn, dvm_tcp_rx_loop(tc));

	/* The core releases the connection, which stops this thread. */
	return dvm_tcp_wait_for_stop();
}

/* A blocked send gives up after the cluster's peer_timeout. */
static void dvm_tcp_tune(struct dvm_cluster *c, struct socket *sock)
{
	tcp_sock_set_nodelay(sock->sk);
	sock->sk->sk_sndtimeo = c->peer_timeout;
	sock->sk->sk_allocation = GFP_KERNEL;
}

/* Wrap a connected socket; on failure the socket is released. */
static int dvm_tcp_add(struct dvm_cluster *c, struct socket *sock, u32 node,
		       bool outgoing)
{
	struct task_struct *task;
	struct dvm_tcp_conn *tc;
	int r;

	tc = kzalloc(sizeof(*tc), GFP_KERNEL_ACCOUNT);
	if (!tc) {
		sock_release(sock);
		return -ENOMEM;
	}
	tc->sock = sock;
	mutex_init(&tc->tx_lock);
	dvm_tcp_tune(c, sock);
	r = dvm_conn_init(&tc->conn, c, node, outgoing);
	if (r)
		goto fail;
	r = kernel_getpeername(sock, (struct sockaddr *)&tc->conn.remote);
	if (r < 0)
		goto fail;
	tc->rx_thread = kthread_create(dvm_tcp_rx_thread, tc, "kvm-dvm-rx/%u",
				       c->node_id);
	if (IS_ERR(tc->rx_thread)) {
		r = PTR_ERR(tc->rx_thread);
		goto fail;
	}
	/* One reference for the connection, one for the wake-up below. */
	task = tc->rx_thread;
	get_task_struct(task);
	get_task_struct(task);

	/* From here on @tc may be dropped and released at any time. */
	dvm_conn_add(&tc->conn);
	/* The handshake's first message goes out before anything is read. */
	dvm_conn_ready(&tc->conn);
	wake_up_process(task);
	put_task_struct(task);
	return 0;

fail:
	dvm_conn_free(&tc->conn);
	sock_release(sock);
	kfree(tc);
	return r;
}

static int dvm_tcp_socket(struct dvm_cluster *c, struct socket **sock)
{
	int family = c->peers[c->node_id].addr.ss_family;

	return sock_create_kern(c->net, family, SOCK_STREAM, IPPROTO_TCP,
				sock);
}

static int dvm_tcp_addrlen(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) :
					  sizeof(struct sockaddr_in6);
}

static int dvm_tcp_acceptor(void *data)
{
	struct dvm_tcp *t = data;
	struct socket *sock;
	int r;

	/*
	 * Connections of strangers too are charged to the joining task's
	 * memory cgroup (and capped: dvm_conn_add()).
	 */
	set_active_memcg(t->c->memcg);
	while (!kthread_should_stop()) {
		r = kernel_accept(t->listener, &sock, 0);
		if (r) {
			if (r == -EAGAIN || r == -EINTR || r == -ECONNABORTED)
				continue;
			break;
		}
		dvm_tcp_add(t->c, sock, KVM_DVM_NO_NODE, false);
	}
	return dvm_tcp_wait_for_stop();
}

/* One attempt to reach @node; 0 once a connection is handed to the core. */
static int dvm_tcp_connect_one(struct dvm_cluster *c, u32 node)
{
	struct sockaddr_storage src = c->peers[c->node_id].addr;
	struct sockaddr_storage *dst = &c->peers[node].addr;
	struct socket *sock;
	int r;

	r = dvm_tcp_socket(c, &sock);
	if (r)
		return r;
	/* Connect from our own address, port chosen by the stack. */
	if (src.ss_family == AF_INET)
		((struct sockaddr_in *)&src)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&src)->sin6_port = 0;
	r = kernel_bind(sock, (struct sockaddr *)&src, dvm_tcp_addrlen(&src));
	if (r)
		goto fail;
	sock->sk->sk_sndtimeo = msecs_to_jiffies(1000);
	r = kernel_connect(sock, (struct sockaddr *)dst, dvm_tcp_addrlen(dst),
			   0);
	if (r)
		goto fail;
	return dvm_tcp_add(c, sock, node, true);
fail:
	sock_release(sock);
	return r;
}

/* Reach every lower node, retrying until the join's deadline. */
static int dvm_tcp_connector(void *data)
{
	struct dvm_tcp *t = data;
	struct dvm_cluster *c = t->c;
	long retry = msecs_to_jiffies(DVM_TCP_CONNECT_RETRY_MS);
	DECLARE_BITMAP(todo, KVM_DVM_MAX_NODES);
	bool all_up;
	u32 node;
	int r;

	set_active_memcg(c->memcg);
	for (;;) {
		/*
		 * A lower node with no link and no handshake underway: one
		 * whose connection was reset before authenticating (its
		 * listener was flooded, say) is tried again. Until every
		 * lower node's link is up.
		 */
		bitmap_zero(todo, KVM_DVM_MAX_NODES);
		all_up = true;
		for (node = 0; node < c->node_id; node++) {
			all_up &= READ_ONCE(c->peers[node].up);
			if (!dvm_conn_outgoing(c, node))
				set_bit(node, todo);
		}
		if (all_up || kthread_should_stop() || READ_ONCE(c->mesh_up) ||
		    !time_before(jiffies, c->deadline))
			break;
		for_each_set_bit(node, todo, KVM_DVM_MAX_NODES) {
			r = dvm_tcp_connect_one(c, node);
			if (r)
				pr_debug("kvm-dvm: node %u: connect to %u: %d\n",
					 c->node_id, node, r);
			if (kthread_should_stop())
				break;
		}
		schedule_timeout_interruptible(retry);
	}
	return dvm_tcp_wait_for_stop();
}

static int dvm_tcp_listen(struct dvm_tcp *t)
{
	struct dvm_cluster *c = t->c;
	struct sockaddr_storage *own = &c->peers[c->node_id].addr;
	int r;

	r = dvm_tcp_socket(c, &t->listener);
	if (r)
		return r;
	sock_set_reuseaddr(t->listener->sk);
	r = kernel_bind(t->listener, (struct sockaddr *)own,
			dvm_tcp_addrlen(own));
	if (!r)
		r = kernel_listen(t->listener, KVM_DVM_MAX_NODES * 2);
	if (r)
		return r;
	t->acceptor = kthread_run(dvm_tcp_acceptor, t, "kvm-dvm-acc/%u",
				  c->node_id);
	if (IS_ERR(t->acceptor)) {
		r = PTR_ERR(t->acceptor);
		t->acceptor = NULL;
		return r;
	}
	get_task_struct(t->acceptor);
	return 0;
}

static void dvm_tcp_stop(struct dvm_cluster *c)
{
	struct dvm_tcp *t = c->tp;

	if (!t)
		return;
	if (t->connector) {
		kthread_stop(t->connector);
		put_task_struct(t->connector);
	}
	if (t->listener)
		kernel_sock_shutdown(t->listener, SHUT_RDWR);
	if (t->acceptor) {
		kthread_stop(t->acceptor);
		put_task_struct(t->acceptor);
	}
	if (t->listener)
		sock_release(t->listener);
	kfree(t);
	c->tp = NULL;
}

static int dvm_tcp_start(struct dvm_cluster *c)
{
	struct dvm_tcp *t;
	int r;

	t = kzalloc(sizeof(*t), GFP_KERNEL_ACCOUNT);
	if (!t)
		return -ENOMEM;
	t->c = c;
	c->tp = t;
	if (c->node_id < c->nr_nodes - 1) {
		r = dvm_tcp_listen(t);
		if (r)
			goto fail;
	}
	if (c->node_id > 0) {
		t->connector = kthread_run(dvm_tcp_connector, t,
					   "kvm-dvm-con/%u", c->node_id);
		if (IS_ERR(t->connector)) {
			r = PTR_ERR(t->connector);
			t->connector = NULL;
			goto fail;
		}
		get_task_struct(t->connector);
	}
	return 0;
fail:
	dvm_tcp_stop(c);
	return r;
}

static int dvm_tcp_send_all(struct socket *sock, struct kvec *iov, int n,
			    size_t len, int more)
{
	struct msghdr msg = { .msg_flags = MSG_NOSIGNAL | more };
	int r;

	r = kernel_sendmsg(sock, &msg, iov, n, len);
	if (r < 0)
		return r;
	/* A short send leaves the stream unusable: the caller shuts it. */
	return r == len ? 0 : -ETIMEDOUT;
}

static int dvm_tcp_send_locked(struct dvm_tcp_conn *tc,
			       const struct dvm_wire_hdr *hdr, const void *buf,
			       struct page *page, u32 len)
{
	struct kvec iov[2] = {
		{ .iov_base = (void *)hdr, .iov_len = sizeof(*hdr) },
		{ .iov_base = (void *)buf, .iov_len = len },
	};
	int r;

	if (page && sendpage_ok(page)) {
		r = dvm_tcp_send_all(tc->sock, iov, 1, sizeof(*hdr), MSG_MORE);
		if (r)
			return r;
		r = kernel_sendpage(tc->sock, page, 0, len, MSG_NOSIGNAL);
		if (r < 0)
			return r;
		return r == len ? 0 : -ETIMEDOUT;
	}
	if (page)
		iov[1].iov_base = page_address(page);
	return dvm_tcp_send_all(tc->sock, iov, len ? 2 : 1,
				sizeof(*hdr) + len, 0);
}

static int dvm_tcp_send(struct dvm_conn *conn, const struct dvm_wire_hdr *hdr,
			const void *buf, struct page *page, u32 len)
{
	struct dvm_tcp_conn *tc = to_tcp_conn(conn);
	sigset_t blocked, old;
	int r;

	/*
	 * A signal to the sending task must not cut a message in half: that
	 * would end the link. Only SIGKILL still interrupts, and the task's
	 * VM goes away with it.
	 */
	siginitsetinv(&blocked, sigmask(SIGKILL));
	sigprocmask(SIG_BLOCK, &blocked, &old);
	mutex_lock(&tc->tx_lock);
	if (READ_ONCE(tc->shut))
		r = -ENOTCONN;
	else
		r = dvm_tcp_send_locked(tc, hdr, buf, page, len);
	mutex_unlock(&tc->tx_lock);
	sigprocmask(SIG_SETMASK, &old, NULL);
	/* A peer that closed its end is lost as ECONNRESET, however seen. */
	if (r == -EPIPE)
		r = -ECONNRESET;
	if (r && r != -ENOTCONN)
		dvm_conn_drop(conn, r);
	return r;
}

static void dvm_tcp_shutdown(struct dvm_conn *conn)
{
	struct dvm_tcp_conn *tc = to_tcp_conn(conn);

	WRITE_ONCE(tc->shut, true);
	kernel_sock_shutdown(tc->sock, SHUT_RDWR);
}

static void dvm_tcp_release(struct dvm_conn *conn)
{
	struct dvm_tcp_conn *tc = to_tcp_conn(conn);

	kthread_stop(tc->rx_thread);
	put_task_struct(tc->rx_thread);
	sock_release(tc->sock);
	kfree(tc);
}

const struct dvm_transport_ops dvm_tcp_ops = {
	.name = "tcp",
	.start = dvm_tcp_start,
	.stop = dvm_tcp_stop,
	.send = dvm_tcp_send,
	.shutdown = dvm_tcp_shutdown,
	.release = dvm_tcp_release,
};
