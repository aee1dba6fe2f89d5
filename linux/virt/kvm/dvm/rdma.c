// SPDX-License-Identifier: GPL-2.0
/*
 * DVM RDMA transport: rdma_cm and RC queue pairs. Every node listens on its
 * own address for the nodes above it and connects to the nodes below it,
 * from its own address, as the TCP transport does.
 *
 * One message is one SEND: the header and the payload, copied into a
 * pre-mapped send buffer, or the header alone followed by the page itself
 * as a second scatter/gather entry (no copy), held until the device is
 * done with it. As with TCP's sendpage, only pages that are not slab
 * memory go without a copy (a slab object is freed or reused as soon as
 * the send returns), and the page's contents must not change until the
 * peer has it. Sends return once posted, up to DVM_RDMA_TX_DEPTH of them in
 * flight per connection. Every connection keeps
 * DVM_RDMA_RX_DEPTH receive buffers posted, each large enough for any
 * message, so one receive completion is one whole message.
 *
 * Completions are reaped in softirq context and only queue work: the
 * received messages are handed to the core in order by one work item per
 * connection, in process context, where the core may sleep and send
 * replies. Messages that arrive before the connection is reported ready
 * (the acceptor's ESTABLISHED event may come after the first data) wait in
 * that queue.
 *
 * Lifetimes: an accepted connection belongs to the core from its
 * CONNECT_REQUEST on (a stalled handshake is dropped by the core). An
 * outgoing connection belongs to the transport while it is being tried
 * (every failed try before the join's deadline is retried with a new
 * cm_id) and is handed to the core once established, as a TCP connection
 * is once connected. A cm_id is only ever destroyed from process context
 * outside its own event handler; handlers that may still run are fenced
 * off with rdma_lock_handler() after the connection is marked dead.
 */
#include <linux/highmem.h>
#include <linux/net.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/wait.h>
#include <rdma/ib_verbs.h>
#include <rdma/rdma_cm.h>

#include "dvm.h"

/*
 * More receives than a peer can have sends in flight: a burst never finds
 * the receive queue empty unless the receive work lags behind.
 */
#define DVM_RDMA_RX_DEPTH	128
#define DVM_RDMA_TX_DEPTH	64
/* The receive queue ran empty: the sender retries after 0.32 ms. */
#define DVM_RDMA_MIN_RNR_TIMER	IB_RNR_TIMER_000_32
#define DVM_RDMA_BUF_SIZE	(sizeof(struct dvm_wire_hdr) + DVM_WIRE_MAX_PAYLOAD)
#define DVM_RDMA_RETRY_MS	100
#define DVM_RDMA_RESOLVE_MS	2000
/* What was sent before a shutdown gets this long to reach the peer. */
#define DVM_RDMA_LINGER_MS	1000

struct dvm_rdma;

struct dvm_rdma_rx {
	struct ib_cqe cqe;
	struct list_head list;		/* in rc->rx_done once received */
	void *buf;
	u64 dma;
	u32 len;
};

struct dvm_rdma_tx {
	struct ib_cqe cqe;
	struct list_head list;		/* in rc->tx_free when not in flight */
	void *buf;
	u64 dma;
	struct page *page;		/* sent without a copy, referenced */
	u64 page_dma;
	u32 page_len;
};

/**
 * struct dvm_rdma_conn - one RDMA connection
 * @conn: the core's part
 * @tp: the transport, while this outgoing connection is being tried
 * @pending: in @tp->pending while being tried
 * @cm_id: the current rdma_cm id; replaced only by @retry, only before
 *	@tx_ready
 * @dev: the device the resources below are on, NULL when there are none
 * @qp_live: a connection was attempted on @qp: drain it before destroying
 * @lock: protects the flags below, @rx_done, @tx_free and the queueing of
 *	@rx_work and @retry; taken from the completion handlers
 * @tx_ready: established: sends may go out
 * @rx_ready: the core knows the connection is ready: receives are handled
 * @shutdown: ops->shutdown() or teardown: sends fail, receives stop
 * @dead: being torn down: handlers and works do nothing any more
 * @rx_stopped: the receive side failed and reported it
 * @linger: shut down with sends in flight: @disc_work disconnects once
 *	they completed, or after DVM_RDMA_LINGER_MS
 * @disconnected: rdma_disconnect() was called (or is being called)
 * @err: a failed completion, reported by @rx_work after the messages
 *	received before it
 * @tx_busy: sends posted and not completed
 */
struct dvm_rdma_conn {
	struct dvm_conn conn;
	struct dvm_rdma *tp;
	struct list_head pending;
	struct rdma_cm_id *cm_id;

	struct ib_device *dev;
	struct ib_pd *pd;
	struct ib_cq *send_cq;
	struct ib_cq *recv_cq;
	struct ib_qp *qp;
	bool qp_live;
	u32 nr_rx_mapped;
	u32 nr_tx_mapped;

	spinlock_t lock;		/* the flags below, the queues */
	bool tx_ready;
	bool rx_ready;
	bool shutdown;
	bool dead;
	bool rx_stopped;
	bool linger;
	bool disconnected;
	int err;
	u32 tx_busy;
	struct list_head rx_done;
	struct list_head tx_free;
	wait_queue_head_t tx_wait;
	struct work_struct rx_work;
	struct delayed_work retry;
	struct delayed_work disc_work;

	struct dvm_rdma_rx rx[DVM_RDMA_RX_DEPTH];
	struct dvm_rdma_tx tx[DVM_RDMA_TX_DEPTH];
};

/**
 * struct dvm_rdma - the transport's state for one cluster, in c->tp
 * @lock: protects @stopped and @pending
 * @stopped: ops->stop() began: no connection is handed to the core any more
 * @pending: outgoing connections not established yet
 */
struct dvm_rdma {
	struct dvm_cluster *c;
	struct rdma_cm_id *listen_id;
	spinlock_t lock;		/* @stopped, @pending */
	bool stopped;
	struct list_head pending;
};

static struct dvm_rdma_conn *to_rdma_conn(struct dvm_conn *conn)
{
	return container_of(conn, struct dvm_rdma_conn, conn);
}

static int dvm_rdma_cm_handler(struct rdma_cm_id *id,
			       struct rdma_cm_event *ev);

/* Buffers and queue pairs */

static void dvm_rdma_reset_queues(struct dvm_rdma_conn *rc)
{
	int i;

	INIT_LIST_HEAD(&rc->rx_done);
	INIT_LIST_HEAD(&rc->tx_free);
	for (i = 0; i < DVM_RDMA_TX_DEPTH; i++)
		list_add_tail(&rc->tx[i].list, &rc->tx_free);
}

static int dvm_rdma_post_recv(struct dvm_rdma_conn *rc, struct dvm_rdma_rx *rx)
{
	struct ib_sge sge = {
		.addr = rx->dma,
		.length = DVM_RDMA_BUF_SIZE,
		.lkey = rc->pd->local_dma_lkey,
	};
	struct ib_recv_wr wr = {
		.wr_cqe = &rx->cqe,
		.sg_list = &sge,
		.num_sge = 1,
	};

	ib_dma_sync_single_for_device(rc->dev, rx->dma, DVM_RDMA_BUF_SIZE,
				      DMA_FROM_DEVICE);
	return ib_post_recv(rc->qp, &wr, NULL);
}

/* Queue @rc's receive work, unless it is being torn down. Under rc->lock. */
static void dvm_rdma_kick_rx(struct dvm_rdma_conn *rc)
{
	lockdep_assert_held(&rc->lock);
	if (rc->rx_ready && !rc->dead)
		queue_work(system_unbound_wq, &rc->rx_work);
}

static int dvm_rdma_wc_errno(const struct ib_wc *wc)
{
	/* A message larger than any receive buffer breaks the protocol. */
	return wc->status == IB_WC_LOC_LEN_ERR ? -EPROTO : -ECONNRESET;
}

/* The device is done with the page of @tx, if it had one. */
static void dvm_rdma_tx_put_page(struct dvm_rdma_conn *rc,
				 struct dvm_rdma_tx *tx)
{
	if (!tx->page)
		return;
	ib_dma_unmap_page(rc->dev, tx->page_dma, tx->page_len, DMA_TO_DEVICE);
	put_page(tx->page);
	tx->page = NULL;
}

/* Completion handlers, in softirq context. */
static void dvm_rdma_recv_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct dvm_rdma_conn *rc = cq->cq_context;
	struct dvm_rdma_rx *rx = container_of(wc->wr_cqe, struct dvm_rdma_rx,
					      cqe);
	unsigned long flags;

	spin_lock_irqsave(&rc->lock, flags);
	if (wc->status == IB_WC_SUCCESS) {
		rx->len = wc->byte_len;
		list_add_tail(&rx->list, &rc->rx_done);
	} else if (rc->tx_ready && !rc->shutdown && !rc->err) {
		/* Before that, flushes of a failed try to connect. */
		pr_debug("kvm-dvm: node %u: rdma receive from %u failed: %s\n",
			 rc->conn.c->node_id, rc->conn.node,
			 ib_wc_status_msg(wc->status));
		rc->err = dvm_rdma_wc_errno(wc);
	}
	dvm_rdma_kick_rx(rc);
	spin_unlock_irqrestore(&rc->lock, flags);
}

static void dvm_rdma_send_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct dvm_rdma_conn *rc = cq->cq_context;
	struct dvm_rdma_tx *tx = container_of(wc->wr_cqe, struct dvm_rdma_tx,
					      cqe);
	unsigned long flags;

	dvm_rdma_tx_put_page(rc, tx);
	spin_lock_irqsave(&rc->lock, flags);
	list_add(&tx->list, &rc->tx_free);
	if (!--rc->tx_busy && rc->linger && !rc->dead)
		mod_delayed_work(system_unbound_wq, &rc->disc_work, 0);
	if (wc->status != IB_WC_SUCCESS && rc->tx_ready && !rc->shutdown &&
	    !rc->err) {
		pr_debug("kvm-dvm: node %u: rdma send to %u failed: %s\n",
			 rc->conn.c->node_id, rc->conn.node,
			 ib_wc_status_msg(wc->status));
		rc->err = dvm_rdma_wc_errno(wc);
		dvm_rdma_kick_rx(rc);
	}
	spin_unlock_irqrestore(&rc->lock, flags);
	wake_up(&rc->tx_wait);
}

static void dvm_rdma_qp_event(struct ib_event *ev, void *context)
{
	struct dvm_rdma_conn *rc = context;

	/* Data came before the acceptor's ESTABLISHED: tell the CM. */
	if (ev->event == IB_EVENT_COMM_EST && !rc->conn.outgoing) {
		rdma_notify(rc->cm_id, ev->event);
		return;
	}
	pr_debug("kvm-dvm: node %u: rdma qp event %s\n", rc->conn.c->node_id,
		 ib_event_msg(ev->event));
}

/*
 * Create the protection domain, completion queues and queue pair of @rc on
 * @id's device, map the buffers and post every receive. On failure the
 * caller frees whatever was set up with dvm_rdma_free_res().
 */
static int dvm_rdma_setup_res(struct dvm_rdma_conn *rc, struct rdma_cm_id *id)
{
	struct ib_device *dev = id->device;
	struct ib_qp_init_attr attr = { };
	struct ib_pd *pd;
	struct ib_cq *cq;
	int i, r;

	rc->dev = dev;
	pd = ib_alloc_pd(dev, 0);
	if (IS_ERR(pd))
		return PTR_ERR(pd);
	rc->pd = pd;

	/* One more entry on each queue for ib_drain_qp(). */
	cq = ib_alloc_cq_any(dev, rc, DVM_RDMA_TX_DEPTH + 1, IB_POLL_SOFTIRQ);
	if (IS_ERR(cq))
		return PTR_ERR(cq);
	rc->send_cq = cq;
	cq = ib_alloc_cq_any(dev, rc, DVM_RDMA_RX_DEPTH + 1, IB_POLL_SOFTIRQ);
	if (IS_ERR(cq))
		return PTR_ERR(cq);
	rc->recv_cq = cq;

	attr.event_handler = dvm_rdma_qp_event;
	attr.qp_context = rc;
	attr.send_cq = rc->send_cq;
	attr.recv_cq = rc->recv_cq;
	attr.cap.max_send_wr = DVM_RDMA_TX_DEPTH + 1;
	attr.cap.max_recv_wr = DVM_RDMA_RX_DEPTH + 1;
	attr.cap.max_send_sge = 2;
	attr.cap.max_recv_sge = 1;
	attr.sq_sig_type = IB_SIGNAL_REQ_WR;
	attr.qp_type = IB_QPT_RC;
	r = rdma_create_qp(id, pd, &attr);
	if (r)
		return r;
	rc->qp = id->qp;

	for (; rc->nr_rx_mapped < DVM_RDMA_RX_DEPTH; rc->nr_rx_mapped++) {
		struct dvm_rdma_rx *rx = &rc->rx[rc->nr_rx_mapped];

		rx->dma = ib_dma_map_single(dev, rx->buf, DVM_RDMA_BUF_SIZE,
					    DMA_FROM_DEVICE);
		if (ib_dma_mapping_error(dev, rx->dma))
			return -ENOMEM;
	}
	for (; rc->nr_tx_mapped < DVM_RDMA_TX_DEPTH; rc->nr_tx_mapped++) {
		struct dvm_rdma_tx *tx = &rc->tx[rc->nr_tx_mapped];

		tx->dma = ib_dma_map_single(dev, tx->buf, DVM_RDMA_BUF_SIZE,
					    DMA_TO_DEVICE);
		if (ib_dma_mapping_error(dev, tx->dma))
			return -ENOMEM;
	}
	for (i = 0; i < DVM_RDMA_RX_DEPTH; i++) {
		r = dvm_rdma_post_recv(rc, &rc->rx[i]);
		if (r)
			return r;
	}
	return 0;
}

/*
 * Undo dvm_rdma_setup_res(), whatever part of it was done. No cm handler,
 * receive work or sender may use the resources any more.
 */
static void dvm_rdma_free_res(struct dvm_rdma_conn *rc, struct rdma_cm_id *id)
{
	struct dvm_rdma_tx *tx;
	u32 i;

	if (rc->qp) {
		if (rc->qp_live)
			ib_drain_qp(rc->qp);
		rdma_destroy_qp(id);
		rc->qp = NULL;
	}
	rc->qp_live = false;
	/* Waits for the completion handlers; no more run after. */
	if (rc->recv_cq)
		ib_free_cq(rc->recv_cq);
	rc->recv_cq = NULL;
	if (rc->send_cq)
		ib_free_cq(rc->send_cq);
	rc->send_cq = NULL;

	for (i = 0; i < rc->nr_tx_mapped; i++) {
		tx = &rc->tx[i];
		dvm_rdma_tx_put_page(rc, tx);
		ib_dma_unmap_single(rc->dev, tx->dma, DVM_RDMA_BUF_SIZE,
				    DMA_TO_DEVICE);
	}
	rc->nr_tx_mapped = 0;
	for (i = 0; i < rc->nr_rx_mapped; i++)
		ib_dma_unmap_single(rc->dev, rc->rx[i].dma, DVM_RDMA_BUF_SIZE,
				    DMA_FROM_DEVICE);
	rc->nr_rx_mapped = 0;
	/* No completion handler runs any more. */
	dvm_rdma_reset_queues(rc);
	rc->tx_busy = 0;
	rc->err = 0;

	if (rc->pd)
		ib_dealloc_pd(rc->pd);
	rc->pd = NULL;
	rc->dev = NULL;
}

/* Connection objects */

static void dvm_rdma_rx_work(struct work_struct *work);
static void dvm_rdma_retry_work(struct work_struct *work);
static void dvm_rdma_disc_work(struct work_struct *work);
static void dvm_rdma_disconnect(struct dvm_rdma_conn *rc,
				struct rdma_cm_id *id);

static void dvm_rdma_free_bufs(struct dvm_rdma_conn *rc)
{
	int i;

	for (i = 0; i < DVM_RDMA_RX_DEPTH; i++)
		kfree(rc->rx[i].buf);
	for (i = 0; i < DVM_RDMA_TX_DEPTH; i++)
		kfree(rc->tx[i].buf);
	kfree(rc);
}

static struct dvm_rdma_conn *dvm_rdma_conn_alloc(struct dvm_cluster *c,
						 u32 node, bool outgoing)
{
	struct dvm_rdma_conn *rc;
	int i;

	rc = kzalloc(sizeof(*rc), GFP_KERNEL_ACCOUNT);
	if (!rc)
		return NULL;
	if (dvm_conn_init(&rc->conn, c, node, outgoing)) {
		kfree(rc);
		return NULL;
	}
	INIT_LIST_HEAD(&rc->pending);
	spin_lock_init(&rc->lock);
	init_waitqueue_head(&rc->tx_wait);
	INIT_WORK(&rc->rx_work, dvm_rdma_rx_work);
	INIT_DELAYED_WORK(&rc->retry, dvm_rdma_retry_work);
	INIT_DELAYED_WORK(&rc->disc_work, dvm_rdma_disc_work);
	for (i = 0; i < DVM_RDMA_RX_DEPTH; i++) {
		rc->rx[i].cqe.done = dvm_rdma_recv_done;
		rc->rx[i].buf = kmalloc(DVM_RDMA_BUF_SIZE, GFP_KERNEL_ACCOUNT);
		if (!rc->rx[i].buf)
			goto fail;
	}
	for (i = 0; i < DVM_RDMA_TX_DEPTH; i++) {
		rc->tx[i].cqe.done = dvm_rdma_send_done;
		rc->tx[i].buf = kmalloc(DVM_RDMA_BUF_SIZE, GFP_KERNEL_ACCOUNT);
		if (!rc->tx[i].buf)
			goto fail;
	}
	dvm_rdma_reset_queues(rc);
	return rc;

fail:
	dvm_conn_free(&rc->conn);
	dvm_rdma_free_bufs(rc);
	return NULL;
}

static bool dvm_rdma_tx_idle(struct dvm_rdma_conn *rc)
{
	unsigned long flags;
	bool idle;

	spin_lock_irqsave(&rc->lock, flags);
	idle = !rc->tx_busy;
	spin_unlock_irqrestore(&rc->lock, flags);
	return idle;
}

/*
 * Tear @rc down and free it (the core's part must be freed already): no
 * handler, work or completion of it runs when this returns.
 */
static void dvm_rdma_destroy(struct dvm_rdma_conn *rc)
{
	struct rdma_cm_id *id;
	unsigned long flags;

	spin_lock_irqsave(&rc->lock, flags);
	rc->shutdown = true;
	rc->dead = true;
	spin_unlock_irqrestore(&rc->lock, flags);
	wake_up_all(&rc->tx_wait);

	/*
	 * What was sent last (a REJECT, an ABORT) reaches the peer before
	 * the queue pair is flushed, as a closed TCP socket delivers it.
	 */
	wait_event_timeout(rc->tx_wait, dvm_rdma_tx_idle(rc),
			   msecs_to_jiffies(DVM_RDMA_LINGER_MS));
	cancel_delayed_work_sync(&rc->disc_work);
	/* Nothing queues the retry or the receive work once @dead is set. */
	cancel_delayed_work_sync(&rc->retry);
	id = rc->cm_id;
	if (id) {
		/* A handler running now finishes; later ones see @dead. */
		rdma_lock_handler(id);
		rdma_unlock_handler(id);
		/* Flush what is left: a send waiting in @rx_work ends. */
		if (rc->tx_ready)
			dvm_rdma_disconnect(rc, id);
	}
	cancel_work_sync(&rc->rx_work);
	if (id) {
		dvm_rdma_free_res(rc, id);
		rdma_destroy_id(id);
	}
	dvm_rdma_free_bufs(rc);
}

/* Free a connection the core never saw. */
static void dvm_rdma_discard(struct dvm_rdma_conn *rc)
{
	void *rx_buf = rc->conn.rx_buf;

	/* The receive work may use the buffer until it is stopped. */
	dvm_rdma_destroy(rc);
	kvfree(rx_buf);
}

/* Receiving, in process context */

static int dvm_rdma_rx_one(struct dvm_rdma_conn *rc, struct dvm_rdma_rx *rx)
{
	const struct dvm_wire_hdr *hdr = rx->buf;
	struct dvm_rx msg;
	int r;

	ib_dma_sync_single_for_cpu(rc->dev, rx->dma, DVM_RDMA_BUF_SIZE,
				   DMA_FROM_DEVICE);
	if (rx->len < sizeof(*hdr) ||
	    rx->len - sizeof(*hdr) != le32_to_cpu(hdr->len)) {
		dvm_stat_count_error(rc->conn.c, false);
		return -EPROTO;
	}
	r = dvm_rx_header(&rc->conn, hdr, &msg);
	if (r)
		return r;
	if (msg.msg.len)
		memcpy(msg.buf, hdr + 1, msg.msg.len);
	/* The buffer is free again before the core acts on the message. */
	r = dvm_rdma_post_recv(rc, rx);
	if (r) {
		dvm_rx_abort(&rc->conn, &msg, -ECONNRESET);
		return READ_ONCE(rc->shutdown) ? -ECONNRESET : r;
	}
	return dvm_rx_payload(&rc->conn, &msg);
}

/* Hand the received messages to the core, in order, then any failure. */
static void dvm_rdma_rx_work(struct work_struct *work)
{
	struct dvm_rdma_conn *rc = container_of(work, struct dvm_rdma_conn,
						rx_work);
	int budget = DVM_RDMA_RX_DEPTH;
	struct dvm_rdma_rx *rx;
	unsigned long flags;
	int r = 0;

	for (;;) {
		spin_lock_irqsave(&rc->lock, flags);
		if (rc->shutdown || rc->rx_stopped) {
			spin_unlock_irqrestore(&rc->lock, flags);
			return;
		}
		if (!budget--) {
			/* Let other work run; carry on later. */
			queue_work(system_unbound_wq, &rc->rx_work);
			spin_unlock_irqrestore(&rc->lock, flags);
			return;
		}
		rx = list_first_entry_or_null(&rc->rx_done, struct dvm_rdma_rx,
					      list);
		if (rx) {
			list_del(&rx->list);
		} else if (rc->err) {
			r = rc->err;
			rc->rx_stopped = true;
		}
		spin_unlock_irqrestore(&rc->lock, flags);
		if (!rx) {
			/* A message too large for any receive buffer. */
			if (r == -EPROTO)
				dvm_stat_count_error(rc->conn.c, false);
			break;
		}

		r = dvm_rdma_rx_one(rc, rx);
		if (r) {
			spin_lock_irqsave(&rc->lock, flags);
			rc->rx_stopped = true;
			spin_unlock_irqrestore(&rc->lock, flags);
			break;
		}
	}
	if (r)
		dvm_conn_drop(&rc->conn, r);
}

/* Connection management */

static void dvm_rdma_conn_param(struct rdma_conn_param *param)
{
	memset(param, 0, sizeof(*param));
	param->flow_control = 1;
	param->retry_count = 7;
	/* A receiver out of buffers makes the sender wait, not fail. */
	param->rnr_retry_count = 7;
}

static int dvm_rdma_bind(struct rdma_cm_id *id,
			 const struct sockaddr_storage *own, bool any_port)
{
	struct sockaddr_storage addr = *own;
	int r;

	if (any_port) {
		if (addr.ss_family == AF_INET)
			((struct sockaddr_in *)&addr)->sin_port = 0;
		else
			((struct sockaddr_in6 *)&addr)->sin6_port = 0;
	}
	r = rdma_bind_addr(id, (struct sockaddr *)&addr);
	/*
	 * rdma_cm takes a loopback (or wildcard) address for any device and
	 * binds none: no RDMA device has it.
	 */
	if (!r && !id->device)
		r = -ENODEV;
	if (r == -ENODEV || r == -EADDRNOTAVAIL) {
		pr_debug("kvm-dvm: no RDMA device for %pISpc (%d)\n", &addr,
			 r);
		r = -ENODEV;
	}
	return r;
}

/* A new cm_id for @rc, bound to this node's address. */
static int dvm_rdma_create_id(struct dvm_rdma_conn *rc)
{
	struct dvm_cluster *c = rc->conn.c;
	struct rdma_cm_id *id;
	int r;

	id = rdma_create_id(c->net, dvm_rdma_cm_handler, rc, RDMA_PS_TCP,
			    IB_QPT_RC);
	if (IS_ERR(id))
		return PTR_ERR(id);
	r = dvm_rdma_bind(id, &c->peers[c->node_id].addr, true);
	if (!r)
		r = rdma_set_min_rnr_timer(id, DVM_RDMA_MIN_RNR_TIMER);
	if (r) {
		rdma_destroy_id(id);
		return r;
	}
	WRITE_ONCE(rc->cm_id, id);
	return 0;
}

static int dvm_rdma_resolve(struct dvm_rdma_conn *rc)
{
	return rdma_resolve_addr(rc->cm_id, NULL,
				 (struct sockaddr *)&rc->conn.remote,
				 DVM_RDMA_RESOLVE_MS);
}

/* An outgoing try failed: try again soon, until the join's deadline. */
static void dvm_rdma_retry_later(struct dvm_rdma_conn *rc, int err)
{
	struct dvm_cluster *c = rc->conn.c;
	unsigned long flags;

	pr_debug("kvm-dvm: node %u: rdma connect to %u: %d\n", c->node_id,
		 rc->conn.node, err);
	if (READ_ONCE(rc->tp->stopped) || READ_ONCE(c->stopping) ||
	    !time_before(jiffies, c->deadline))
		return;	/* the core reports the missing link */
	spin_lock_irqsave(&rc->lock, flags);
	if (!rc->dead)
		queue_delayed_work(system_unbound_wq, &rc->retry,
				   msecs_to_jiffies(DVM_RDMA_RETRY_MS));
	spin_unlock_irqrestore(&rc->lock, flags);
}

static void dvm_rdma_retry_work(struct work_struct *work)
{
	struct dvm_rdma_conn *rc = container_of(to_delayed_work(work),
						struct dvm_rdma_conn, retry);
	struct dvm_rdma *tp = READ_ONCE(rc->tp);
	struct rdma_cm_id *old = rc->cm_id;
	int r;

	/* Established meanwhile (handed over), or being torn down. */
	if (!tp || READ_ONCE(rc->dead) || READ_ONCE(tp->stopped))
		return;
	if (old) {
		/* Fence off the old id's handlers, then drop it. */
		rdma_lock_handler(old);
		if (!rc->tp || rc->tx_ready) {
			rdma_unlock_handler(old);
			return;
		}
		WRITE_ONCE(rc->cm_id, NULL);
		rdma_unlock_handler(old);
		dvm_rdma_free_res(rc, old);
		rdma_destroy_id(old);
	}
	r = dvm_rdma_create_id(rc);
	if (!r)
		r = dvm_rdma_resolve(rc);
	if (r)
		dvm_rdma_retry_later(rc, r);
}

/* Disconnect once, whoever asks first. */
static void dvm_rdma_disconnect(struct dvm_rdma_conn *rc, struct rdma_cm_id *id)
{
	unsigned long flags;
	bool first;

	spin_lock_irqsave(&rc->lock, flags);
	first = !rc->disconnected;
	rc->disconnected = true;
	rc->linger = false;
	spin_unlock_irqrestore(&rc->lock, flags);
	if (first)
		rdma_disconnect(id);
}

static void dvm_rdma_disc_work(struct work_struct *work)
{
	struct dvm_rdma_conn *rc = container_of(to_delayed_work(work),
						struct dvm_rdma_conn,
						disc_work);

	dvm_rdma_disconnect(rc, rc->cm_id);
}

/*
 * The peer disconnected. The messages it sent before are received (its
 * sends completed before it disconnected) but may not all be handed to
 * the core yet: answering the disconnect turns the queue pair to error,
 * which flushes the receives after them, and that flush reports the
 * loss of the connection in order.
 */
static void dvm_rdma_peer_gone(struct dvm_rdma_conn *rc, struct rdma_cm_id *id)
{
	dvm_rdma_disconnect(rc, id);
}

/* The connection failed: tell the core, unless it knows already. */
static void dvm_rdma_fail(struct dvm_rdma_conn *rc, int err)
{
	if (!READ_ONCE(rc->shutdown))
		dvm_conn_drop(&rc->conn, err);
}

/*
 * Hand an established outgoing connection to the core, unless the
 * transport is being stopped (then dvm_rdma_stop() frees it).
 */
static bool dvm_rdma_hand_over(struct dvm_rdma_conn *rc)
{
	struct dvm_rdma *tp = rc->tp;
	bool ok;

	spin_lock(&tp->lock);
	ok = !tp->stopped;
	if (ok) {
		list_del_init(&rc->pending);
		dvm_conn_add(&rc->conn);
	}
	spin_unlock(&tp->lock);
	if (ok)
		WRITE_ONCE(rc->tp, NULL);
	return ok;
}

static void dvm_rdma_established(struct dvm_rdma_conn *rc,
				 struct rdma_cm_id *id)
{
	unsigned long flags;
	bool shut;

	if (rc->conn.outgoing && !dvm_rdma_hand_over(rc))
		return;

	spin_lock_irqsave(&rc->lock, flags);
	shut = rc->shutdown;
	rc->tx_ready = !shut;
	spin_unlock_irqrestore(&rc->lock, flags);
	if (shut) {
		dvm_rdma_disconnect(rc, id);
		return;
	}

	/* The connector's first message goes out from here. */
	dvm_conn_ready(&rc->conn);

	spin_lock_irqsave(&rc->lock, flags);
	rc->rx_ready = true;
	dvm_rdma_kick_rx(rc);
	spin_unlock_irqrestore(&rc->lock, flags);
}

/* A try to connect failed before it was established. */
static void dvm_rdma_connect_failed(struct dvm_rdma_conn *rc, int err)
{
	if (rc->tp)
		dvm_rdma_retry_later(rc, err);
	else
		dvm_rdma_fail(rc, -ECONNRESET);
}

static int dvm_rdma_cm_handler(struct rdma_cm_id *id, struct rdma_cm_event *ev)
{
	struct dvm_rdma_conn *rc = id->context;
	struct rdma_conn_param param;
	int r;

	/* Torn down, or an id that a retry replaced. */
	if (READ_ONCE(rc->dead) || id != READ_ONCE(rc->cm_id))
		return 0;

	pr_debug("kvm-dvm: node %u: rdma %s %u: %s (%d)\n",
		 rc->conn.c->node_id, rc->conn.outgoing ? "to" : "from",
		 rc->conn.node, rdma_event_msg(ev->event), ev->status);

	switch (ev->event) {
	case RDMA_CM_EVENT_ADDR_RESOLVED:
		r = dvm_rdma_setup_res(rc, id);
		if (!r)
			r = rdma_resolve_route(id, DVM_RDMA_RESOLVE_MS);
		if (r)
			dvm_rdma_connect_failed(rc, r);
		break;
	case RDMA_CM_EVENT_ROUTE_RESOLVED:
		dvm_rdma_conn_param(&param);
		rc->qp_live = true;
		r = rdma_connect_locked(id, &param);
		if (r)
			dvm_rdma_connect_failed(rc, r);
		break;
	case RDMA_CM_EVENT_ESTABLISHED:
		dvm_rdma_established(rc, id);
		break;
	case RDMA_CM_EVENT_ADDR_ERROR:
	case RDMA_CM_EVENT_ROUTE_ERROR:
	case RDMA_CM_EVENT_CONNECT_ERROR:
	case RDMA_CM_EVENT_UNREACHABLE:
	case RDMA_CM_EVENT_REJECTED:
		if (rc->tx_ready)
			dvm_rdma_fail(rc, -ECONNRESET);
		else
			dvm_rdma_connect_failed(rc, -ECONNREFUSED);
		break;
	case RDMA_CM_EVENT_DISCONNECTED:
		if (rc->tp)
			dvm_rdma_connect_failed(rc, -ECONNRESET);
		else
			dvm_rdma_peer_gone(rc, id);
		break;
	case RDMA_CM_EVENT_DEVICE_REMOVAL:
		if (rc->tp)
			dvm_rdma_connect_failed(rc, -ECONNRESET);
		else
			dvm_rdma_fail(rc, -ECONNRESET);
		break;
	default:
		break;
	}
	return 0;
}

/*
 * A peer asks to connect: @id is new, the core owns the connection from
 * dvm_conn_add() on. Returning non-zero makes rdma_cm reject and destroy @id.
 */
static int dvm_rdma_conn_request(struct dvm_rdma *tp, struct rdma_cm_id *id)
{
	struct dvm_cluster *c = tp->c;
	struct rdma_conn_param param;
	struct dvm_rdma_conn *rc;
	int r;

	if (READ_ONCE(tp->stopped) || READ_ONCE(c->stopping))
		return -ECONNREFUSED;
	rc = dvm_rdma_conn_alloc(c, KVM_DVM_NO_NODE, false);
	if (!rc)
		return -ENOMEM;
	rc->cm_id = id;
	id->context = rc;
	id->event_handler = dvm_rdma_cm_handler;
	r = rdma_set_min_rnr_timer(id, DVM_RDMA_MIN_RNR_TIMER);
	if (!r)
		r = dvm_rdma_setup_res(rc, id);
	if (r) {
		pr_debug("kvm-dvm: node %u: rdma accept: %d\n", c->node_id, r);
		dvm_rdma_free_res(rc, id);
		dvm_conn_free(&rc->conn);
		dvm_rdma_free_bufs(rc);
		return r;
	}
	memcpy(&rc->conn.remote, &id->route.addr.dst_addr,
	       sizeof(rc->conn.remote));
	/*
	 * The core may drop the connection at once (too many waiting for
	 * authentication); its release waits for this handler to return,
	 * then destroys @id, which rejects the request.
	 */
	dvm_conn_add(&rc->conn);
	if (READ_ONCE(rc->shutdown))
		return 0;

	dvm_rdma_conn_param(&param);
	rc->qp_live = true;
	r = rdma_accept(id, &param);
	if (r)
		dvm_rdma_fail(rc, r);
	return 0;
}

static int dvm_rdma_listen_handler(struct rdma_cm_id *id,
				   struct rdma_cm_event *ev)
{
	struct dvm_rdma *tp = id->context;
	struct mem_cgroup *old;
	int r;

	if (ev->event == RDMA_CM_EVENT_CONNECT_REQUEST) {
		/* Charged to the joining task's memory cgroup, and capped. */
		old = set_active_memcg(tp->c->memcg);
		r = dvm_rdma_conn_request(tp, id);
		set_active_memcg(old);
		return r;
	}
	/* Events of the listener itself: nothing to do until it stops. */
	return 0;
}

static int dvm_rdma_listen(struct dvm_rdma *tp)
{
	struct dvm_cluster *c = tp->c;
	struct rdma_cm_id *id;
	int r;

	id = rdma_create_id(c->net, dvm_rdma_listen_handler, tp, RDMA_PS_TCP,
			    IB_QPT_RC);
	if (IS_ERR(id))
		return PTR_ERR(id);
	r = dvm_rdma_bind(id, &c->peers[c->node_id].addr, false);
	if (!r)
		r = rdma_listen(id, KVM_DVM_MAX_NODES * 2);
	if (r) {
		rdma_destroy_id(id);
		return r;
	}
	tp->listen_id = id;
	return 0;
}

/* Start trying to reach @node. */
static int dvm_rdma_connect(struct dvm_rdma *tp, u32 node)
{
	struct dvm_cluster *c = tp->c;
	struct dvm_rdma_conn *rc;
	int r;

	rc = dvm_rdma_conn_alloc(c, node, true);
	if (!rc)
		return -ENOMEM;
	rc->tp = tp;
	memcpy(&rc->conn.remote, &c->peers[node].addr, sizeof(rc->conn.remote));
	/* A bind failure here (no RDMA device) fails the join at once. */
	r = dvm_rdma_create_id(rc);
	if (r) {
		dvm_rdma_discard(rc);
		return r;
	}
	spin_lock(&tp->lock);
	list_add_tail(&rc->pending, &tp->pending);
	spin_unlock(&tp->lock);

	r = dvm_rdma_resolve(rc);
	if (r)
		dvm_rdma_retry_later(rc, r);
	return 0;
}

static void dvm_rdma_stop(struct dvm_cluster *c)
{
	struct dvm_rdma *tp = c->tp;
	struct dvm_rdma_conn *rc, *tmp;
	LIST_HEAD(pending);

	if (!tp)
		return;
	spin_lock(&tp->lock);
	tp->stopped = true;
	list_splice_init(&tp->pending, &pending);
	spin_unlock(&tp->lock);

	/* Waits for a CONNECT_REQUEST being handled. */
	if (tp->listen_id)
		rdma_destroy_id(tp->listen_id);
	list_for_each_entry_safe(rc, tmp, &pending, pending) {
		list_del_init(&rc->pending);
		dvm_rdma_discard(rc);
	}
	c->tp = NULL;
	kfree(tp);
}

static int dvm_rdma_start(struct dvm_cluster *c)
{
	struct dvm_rdma *tp;
	u32 node;
	int r = 0;

	tp = kzalloc(sizeof(*tp), GFP_KERNEL_ACCOUNT);
	if (!tp)
		return -ENOMEM;
	tp->c = c;
	spin_lock_init(&tp->lock);
	INIT_LIST_HEAD(&tp->pending);
	c->tp = tp;
	if (c->node_id < c->nr_nodes - 1)
		r = dvm_rdma_listen(tp);
	for (node = 0; !r && node < c->node_id; node++)
		r = dvm_rdma_connect(tp, node);
	if (r)
		dvm_rdma_stop(c);
	return r;
}

/* Sending */

/* 1: got a free buffer; 0: none free; < 0: the connection is unusable. */
static int dvm_rdma_get_tx(struct dvm_rdma_conn *rc, struct dvm_rdma_tx **txp)
{
	unsigned long flags;
	int r = 0;

	spin_lock_irqsave(&rc->lock, flags);
	if (rc->shutdown || !rc->tx_ready) {
		r = -ENOTCONN;
	} else if (!list_empty(&rc->tx_free)) {
		*txp = list_first_entry(&rc->tx_free, struct dvm_rdma_tx, list);
		list_del(&(*txp)->list);
		rc->tx_busy++;
		r = 1;
	}
	spin_unlock_irqrestore(&rc->lock, flags);
	return r;
}

static void dvm_rdma_put_tx(struct dvm_rdma_conn *rc, struct dvm_rdma_tx *tx)
{
	unsigned long flags;

	spin_lock_irqsave(&rc->lock, flags);
	list_add(&tx->list, &rc->tx_free);
	if (!--rc->tx_busy && rc->linger && !rc->dead)
		mod_delayed_work(system_unbound_wq, &rc->disc_work, 0);
	spin_unlock_irqrestore(&rc->lock, flags);
	wake_up(&rc->tx_wait);
}

static int dvm_rdma_post_send(struct dvm_rdma_conn *rc, struct dvm_rdma_tx *tx,
			      const struct dvm_wire_hdr *hdr, const void *buf,
			      struct page *page, u32 len)
{
	u32 lkey = rc->pd->local_dma_lkey;
	struct ib_sge sge[2] = {
		{ .addr = tx->dma, .length = sizeof(*hdr), .lkey = lkey },
	};
	struct ib_send_wr wr = {
		.wr_cqe = &tx->cqe,
		.sg_list = sge,
		.num_sge = 1,
		.opcode = IB_WR_SEND,
		.send_flags = IB_SEND_SIGNALED,
	};
	int r;

	memcpy(tx->buf, hdr, sizeof(*hdr));
	if (!buf && page && len && sendpage_ok(page)) {
		tx->page_dma = ib_dma_map_page(rc->dev, page, 0, len,
					       DMA_TO_DEVICE);
		if (ib_dma_mapping_error(rc->dev, tx->page_dma))
			return -ENOMEM;
		get_page(page);
		tx->page = page;
		tx->page_len = len;
		sge[1].addr = tx->page_dma;
		sge[1].length = len;
		sge[1].lkey = lkey;
		wr.num_sge = 2;
	} else if (buf && len) {
		memcpy(tx->buf + sizeof(*hdr), buf, len);
		sge[0].length += len;
	} else if (len) {
		memcpy_from_page(tx->buf + sizeof(*hdr), page, 0, len);
		sge[0].length += len;
	}
	ib_dma_sync_single_for_device(rc->dev, tx->dma, sge[0].length,
				      DMA_TO_DEVICE);
	r = ib_post_send(rc->qp, &wr, NULL);
	if (r)
		dvm_rdma_tx_put_page(rc, tx);
	return r;
}

static int dvm_rdma_send(struct dvm_conn *conn, const struct dvm_wire_hdr *hdr,
			 const void *buf, struct page *page, u32 len)
{
	struct dvm_rdma_conn *rc = to_rdma_conn(conn);
	struct dvm_rdma_tx *tx = NULL;
	long left;
	int r = 0;

	if (len > DVM_WIRE_MAX_PAYLOAD || (!buf && len > PAGE_SIZE) ||
	    (!buf && !page && len))
		return -EINVAL;

	/*
	 * A send waiting for a free buffer gives up after peer_timeout. As
	 * for TCP, only SIGKILL interrupts it: the signals a VMM uses to
	 * kick its vCPU threads must not fail a DSM request.
	 */
	left = wait_event_killable_timeout(rc->tx_wait,
					   (r = dvm_rdma_get_tx(rc, &tx)),
					   rc->conn.c->peer_timeout);
	if (left < 0)
		return -EINTR;	/* nothing went out: the link is intact */
	if (!left) {
		/* The peer has not taken anything for too long. */
		r = -ETIMEDOUT;
		goto drop;
	}
	if (r < 0)
		return r;

	r = dvm_rdma_post_send(rc, tx, hdr, buf, page, len);
	if (!r)
		return 0;
	dvm_rdma_put_tx(rc, tx);
	if (READ_ONCE(rc->shutdown))
		return -ENOTCONN;
drop:
	dvm_conn_drop(conn, r);
	return r;
}

static void dvm_rdma_shutdown(struct dvm_conn *conn)
{
	struct dvm_rdma_conn *rc = to_rdma_conn(conn);
	bool disconnect = false;
	unsigned long flags;

	/*
	 * Not established yet: the release destroys the id, which rejects
	 * or disconnects. Established (the id is not replaced any more):
	 * disconnect, once the sends in flight completed (the peer gets
	 * what was sent last), and the peer sees DISCONNECTED.
	 */
	spin_lock_irqsave(&rc->lock, flags);
	if (!rc->shutdown && rc->tx_ready && !rc->disconnected) {
		if (rc->tx_busy) {
			rc->linger = true;
			queue_delayed_work(system_unbound_wq, &rc->disc_work,
					   msecs_to_jiffies(DVM_RDMA_LINGER_MS));
		} else {
			disconnect = true;
		}
	}
	rc->shutdown = true;
	spin_unlock_irqrestore(&rc->lock, flags);
	wake_up_all(&rc->tx_wait);
	if (disconnect)
		dvm_rdma_disconnect(rc, rc->cm_id);
}

static void dvm_rdma_release(struct dvm_conn *conn)
{
	dvm_rdma_destroy(to_rdma_conn(conn));
}

const struct dvm_transport_ops dvm_rdma_ops = {
	.name = "rdma",
	.start = dvm_rdma_start,
	.stop = dvm_rdma_stop,
	.send = dvm_rdma_send,
	.shutdown = dvm_rdma_shutdown,
	.release = dvm_rdma_release,
};
