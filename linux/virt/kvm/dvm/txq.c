// SPDX-License-Identifier: GPL-2.0
/*
 * DVM's send path for interrupts, usable from any context: deliveries
 * start with IRQs off (the x2APIC ICR fast path, irqfd) or under
 * spinlocks (the IOAPIC's), where a transport's send cannot run. Each
 * peer has a preallocated ring of interrupt events; posting one takes a
 * spinlock and never sleeps. The ring is drained in order, up to
 * DVM_IRQ_BATCH events per message, by whoever gets its drain lock
 * first: a work item on the high-priority workqueue, or the vCPU thread
 * that posted, on its way back to the guest (dvm_irq_flush()), which
 * spares a worker's wake-up on the IPI path. Either sends on the peer's
 * link like any other sender, so an interrupt waits for at most the
 * message that is on the link already, never for the queue of page
 * transfers behind it.
 *
 * A ring that is full is not waited for and nothing is dropped: the
 * cluster breaks, naming the peer, with -ENOBUFS.
 */
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "dvm.h"

/* Events waiting for one peer, at most. */
#define DVM_IRQ_QUEUE_LEN	4096

struct dvm_irq_queue {
	struct dvm_cluster *c;
	u32 node;
	spinlock_t lock;		/* @head, @count, @ring, @hwm */
	struct mutex drain_lock;	/* one drainer: the order holds */
	u32 head;
	u32 count;
	u32 hwm;			/* most events ever waiting */
	bool overflow;
	struct work_struct work;	/* drains the ring */
	struct work_struct overflow_work;	/* breaks the cluster */
	struct dvm_wire_irq batch[DVM_IRQ_BATCH];	/* the drainer's */
	struct dvm_wire_irq ring[DVM_IRQ_QUEUE_LEN];
};

static u32 dvm_irq_queue_take(struct dvm_irq_queue *q)
{
	unsigned long flags;
	u32 n, i;

	spin_lock_irqsave(&q->lock, flags);
	n = min_t(u32, q->count, DVM_IRQ_BATCH);
	for (i = 0; i < n; i++)
		q->batch[i] = q->ring[(q->head + i) % DVM_IRQ_QUEUE_LEN];
	q->head = (q->head + n) % DVM_IRQ_QUEUE_LEN;
	q->count -= n;
	spin_unlock_irqrestore(&q->lock, flags);
	return n;
}

/*
 * Send what is queued, in order. A failed send ends the link, and the
 * cluster with it: what is left is dropped with the cluster, which every
 * vCPU then reports.
 */
static void dvm_irq_queue_drain(struct dvm_irq_queue *q)
{
	struct dvm_cluster *c = q->c;
	u32 n;

	mutex_lock(&q->drain_lock);
	dvm_stat_max(&c->dvm->kvm->stat.generic.dvm.irq_queue_hwm,
		     READ_ONCE(q->hwm));
	while ((n = dvm_irq_queue_take(q)))
		dvm_send(c, q->node, DVM_MSG_IRQ, q->batch,
			 n * sizeof(struct dvm_wire_irq));
	mutex_unlock(&q->drain_lock);
}

static void dvm_irq_queue_work(struct work_struct *work)
{
	dvm_irq_queue_drain(container_of(work, struct dvm_irq_queue, work));
}

/*
 * Posted by a local vCPU's own thread, outside interrupt context: that
 * thread sends it before it enters the guest again (kvm_dvm_vcpu_exit(),
 * kvm_dvm_vcpu_run()).
 */
static bool dvm_irq_sent_by_vcpu(struct dvm_cluster *c)
{
	struct kvm_vcpu *vcpu;

	if (in_interrupt())
		return false;
	vcpu = kvm_get_running_vcpu();
	return vcpu && vcpu->kvm == c->dvm->kvm && vcpu->wants_to_run &&
	       dvm_vcpu_runs_here(c->dvm, vcpu->vcpu_id);
}

/**
 * dvm_irq_flush - send what local vCPUs posted, from a vCPU thread
 * @c: the cluster, held (dvm_live_get())
 *
 * May sleep; the caller holds no lock and not kvm->srcu.
 */
void dvm_irq_flush(struct dvm_cluster *c)
{
	u32 i;

	/*
	 * A full barrier before reading the counts: a post on another CPU
	 * either shows its count here or leaves irq_deferred set for its
	 * own thread's flush (a plain store could land after its increment
	 * and strand the post).
	 */
	atomic_xchg(&c->dvm->irq_deferred, 0);
	for (i = 0; i < c->nr_nodes; i++)
		if (c->peers[i].irq_queue && READ_ONCE(c->peers[i].irq_queue->count))
			dvm_irq_queue_drain(c->peers[i].irq_queue);
}

static void dvm_irq_queue_overflow_work(struct work_struct *work)
{
	struct dvm_irq_queue *q = container_of(work, struct dvm_irq_queue,
					       overflow_work);

	pr_warn_ratelimited("kvm-dvm: node %u: %u interrupts wait for node %u: cluster broken\n",
			    q->c->node_id, DVM_IRQ_QUEUE_LEN, q->node);
	dvm_cluster_lost(q->c, q->node, -ENOBUFS);
}

/**
 * dvm_irq_post - queue an interrupt event for a peer, from any context
 * @c: the cluster, which the caller keeps alive (RCU, see kvm_dvm.live)
 * @node: the peer that runs the destination vCPU
 * @e: the event
 *
 * Return: 0, or -ENOBUFS when the peer's queue is full: the cluster
 * breaks then.
 */
int dvm_irq_post(struct dvm_cluster *c, u32 node, const struct dvm_wire_irq *e)
{
	struct dvm_irq_queue *q;
	unsigned long flags;
	bool full;

	if (WARN_ON_ONCE(node >= c->nr_nodes || node == c->node_id))
		return -EINVAL;
	q = c->peers[node].irq_queue;
	spin_lock_irqsave(&q->lock, flags);
	full = q->count == DVM_IRQ_QUEUE_LEN;
	if (!full) {
		q->ring[(q->head + q->count) % DVM_IRQ_QUEUE_LEN] = *e;
		q->count++;
		q->hwm = max(q->hwm, q->count);
	}
	spin_unlock_irqrestore(&q->lock, flags);
	if (full) {
		dvm_stat_add(&c->dvm->kvm->stat.generic.dvm.irq_queue_full, 1);
		if (!xchg(&q->overflow, true))
			queue_work(system_unbound_wq, &q->overflow_work);
		return -ENOBUFS;
	}
	if (dvm_irq_sent_by_vcpu(c))
		atomic_inc(&c->dvm->irq_deferred);
	else
		queue_work(system_highpri_wq, &q->work);
	return 0;
}

/* With the cluster, before any peer can be sent to. */
static int dvm_irq_queues_alloc(struct dvm_cluster *c)
{
	struct dvm_irq_queue *q;
	u32 i;

	for (i = 0; i < c->nr_nodes; i++) {
		if (i == c->node_id)
			continue;
		q = kvzalloc(sizeof(*q), GFP_KERNEL_ACCOUNT);
		if (!q)
			return -ENOMEM;
		q->c = c;
		q->node = i;
		spin_lock_init(&q->lock);
		mutex_init(&q->drain_lock);
		INIT_WORK(&q->work, dvm_irq_queue_work);
		INIT_WORK(&q->overflow_work, dvm_irq_queue_overflow_work);
		c->peers[i].irq_queue = q;
	}
	return 0;
}

/*
 * When the cluster is destroyed: nothing posts any more (the VM's live
 * pointer was cleared and RCU waited for), the links are shut.
 */
static void dvm_irq_queues_free(struct dvm_cluster *c)
{
	struct dvm_irq_queue *q;
	u32 i;

	for (i = 0; i < c->nr_nodes; i++) {
		q = c->peers[i].irq_queue;
		if (!q)
			continue;
		cancel_work_sync(&q->work);
		cancel_work_sync(&q->overflow_work);
		kvfree(q);
		c->peers[i].irq_queue = NULL;
	}
}

const struct dvm_subsys dvm_irq_queue_subsys = {
	.name = "irq_queue",
	.cluster_init = dvm_irq_queues_alloc,
	.cluster_free = dvm_irq_queues_free,
};
