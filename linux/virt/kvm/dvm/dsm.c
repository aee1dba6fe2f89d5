// SPDX-License-Identifier: GPL-2.0
/*
 * DVM distributed shared memory.
 *
 * The VM's guest RAM is one file (KVM_DVM_CREATE_MEMORY) that userspace
 * maps MAP_SHARED and hands to KVM as memslots. A page of the file is in
 * this node's page cache only while this node holds a valid copy of it:
 * Shared (mapped read-only) or Modified (writable, the only copy).
 * Every accessor - a vCPU's NPT fault through KVM's gfn-to-pfn lookup,
 * KVM's own copy_{to,from}_user() and pfn caches, userspace itself -
 * reaches the page through the mapping, so all of them meet the protocol
 * in dvm_dsm_fault() and dvm_dsm_page_mkwrite(). Taking a copy away
 * zaps the page's mappings, and KVM's MMU notifiers drop the NPT entries
 * of every gfn that maps it.
 *
 * Each page has a manager, page % nr_nodes, whose directory entry knows
 * the nodes holding a copy, whether one holds it Modified, and the
 * version of the data. The manager runs one transaction per page at a
 * time: a request (DVM_MSG_DSM_REQ) is granted after the other copies
 * were invalidated or downgraded (DVM_MSG_DSM_FETCH), and the next
 * transaction on the page starts once the requester confirmed it
 * installed the grant (DVM_MSG_DSM_DONE). Documentation/virt/kvm/dvm.rst
 * has the states, the messages and every race.
 */
#include <linux/anon_inodes.h>
#include <linux/delay.h>
#include <linux/file.h>
#include <linux/highmem.h>
#include <linux/kvm_host.h>
#include <linux/mm.h>
#include <linux/mount.h>
#include <linux/pagemap.h>
#include <linux/pseudo_fs.h>
#include <linux/slab.h>
#include <linux/wait_bit.h>

#include "dvm.h"
#include "trace.h"

enum dvm_dsm_state {
	DVM_DSM_INVALID,	/* no copy here, nothing in the page cache */
	DVM_DSM_SHARED,		/* a read-only copy */
	DVM_DSM_MODIFIED,	/* the only copy, writable */
};

/* dvm_dsm_page.flags: a request of this node for the page is underway */
#define DVM_DSM_FETCHING	0
/*
 * dvm_dsm_page.flags: a write found the page read-only here, and its next
 * fault, read or write, takes it Modified (see dvm_dsm_page_mkwrite())
 */
#define DVM_DSM_WANT_WRITE	1

/*
 * This node's view of one page. @state and @version change under the
 * folio lock while the page is in the page cache; a page enters or
 * leaves the cache only with DVM_DSM_FETCHING held (entering) or under
 * the folio lock (leaving, by a request of its manager).
 */
struct dvm_dsm_page {
	unsigned long flags;
	u32 version;
	u16 pins;
	u8 state;
	u32 granted;		/* when the copy was installed, dvm_dsm_now() */
};

/* The manager's directory entry of one page, under dsm->dir_lock. */
struct dvm_dsm_dir {
	u64 holders;		/* nodes with a copy */
	u32 version;		/* of the data; 0: never written */
	u32 requester;		/* waiting for its DONE, or KVM_DVM_NO_NODE */
	bool busy;		/* a transaction runs */
	bool modified;		/* the only holder has it Modified */
};

/**
 * struct dvm_dsm - the VM's memory file and its coherence state
 * @dvm: the VM's DVM state
 * @inode: the file's inode, with its page cache
 * @c_sem: held (read) by everything that talks to @c; written once,
 *	when the cluster goes away
 * @c: the cluster, NULL once detached
 * @dead: the cluster broke or went away: no new request starts
 * @wq: waiters for @dead, directory entries and pins
 */
struct dvm_dsm {
	struct kvm_dvm *dvm;
	struct inode *inode;
	u64 size;
	pgoff_t nr_pages;
	u32 node_id;
	u32 nr_nodes;
	struct rw_semaphore c_sem;
	struct dvm_cluster *c;
	bool dead;
	struct dvm_dsm_page *pages;
	struct dvm_dsm_dir *dir;
	spinlock_t dir_lock;	/* every dir entry */
	wait_queue_head_t wq;
	struct workqueue_struct *mgr_wq;	/* manager transactions */
	struct workqueue_struct *holder_wq;	/* requests to a holder */
	atomic_long_t held;			/* pages in the page cache */
	struct file *file;			/* the memory file */
	struct mutex unpin_lock;		/* an UNPIN checks, then acts */
};

/* A request that waits for a work item. */
struct dvm_dsm_work {
	struct work_struct work;
	struct dvm_dsm *dsm;
	u32 node;
	u64 req_id;
	pgoff_t page;
	u32 version;
	u8 op;			/* FETCH: enum dvm_dsm_op; REQ: write */
	u8 have;		/* REQ: the requester says it has a copy */
};

/* What a transaction grants. */
struct dvm_dsm_grant_info {
	u32 version;
	u16 flags;		/* DVM_DSM_GRANT_* */
};

/*
 * A fault that lets go of mmap_lock once its wait turns out long (a
 * pinned page, a busy directory entry, a slow peer), so that the VMM's
 * other threads map, unmap and fault meanwhile. As filemap's faults do:
 * only on the first attempt and not for FAULT_FLAG_RETRY_NOWAIT; the
 * fault finishes its request and then returns VM_FAULT_RETRY.
 */
struct dvm_dsm_waiter {
	struct vm_fault *vmf;	/* NULL: keeps mmap_lock */
	struct file *fpin;	/* once mmap_lock was let go */
	bool interruptible;	/* any signal ends the wait (KVM_DVM_PIN) */
};

/*
 * One request of this node for a page, to a remote manager (a DSM_REQ
 * call) or to this node's own (@local_work on the manager's queue, which
 * completes @call.done like a reply). The waiter may leave: a fatal
 * signal, or a fault that must not wait (FAULT_FLAG_RETRY_NOWAIT), hands
 * the request to @finish_work, which installs the grant and ends the
 * manager's transaction as the waiter would have. The request then owns
 * the page's DVM_DSM_FETCHING bit and frees itself.
 */
struct dvm_dsm_req {
	struct dvm_dsm *dsm;
	pgoff_t page;
	bool write;
	bool had;		/* this node had a copy when it asked */
	bool local;		/* this node manages the page */
	ktime_t start;
	struct dvm_call call;	/* local: done, status and resp_len only */
	struct work_struct local_work;
	struct work_struct finish_work;
	struct folio *fresh;	/* the page, if the grant brings one */
	struct dvm_msg_dsm_grant *grant;	/* and PAGE_SIZE of data */
};

/* How long a fault waits before it lets go of mmap_lock. */
#define DVM_DSM_QUICK_WAIT	msecs_to_jiffies(10)

static struct kvm_dvm_vm_stat *dvm_dsm_stat(struct dvm_dsm *dsm)
{
	return &dsm->dvm->kvm->stat.generic.dvm;
}

static void dvm_dsm_held(struct dvm_dsm *dsm, int delta)
{
	atomic_long_add(delta, &dsm->held);
	dvm_stat_add(&dvm_dsm_stat(dsm)->dsm_pages_held, delta);
}

static u32 dvm_dsm_manager(struct dvm_dsm *dsm, pgoff_t page)
{
	return page % dsm->nr_nodes;
}

static struct dvm_dsm_dir *dvm_dsm_dir_entry(struct dvm_dsm *dsm,
					     pgoff_t page)
{
	return &dsm->dir[page / dsm->nr_nodes];
}

static struct address_space *dvm_dsm_mapping(struct dvm_dsm *dsm)
{
	return dsm->inode->i_mapping;
}

static bool dvm_dsm_may_unlock(const struct dvm_dsm_waiter *dw)
{
	return dw && dw->vmf && !dw->fpin &&
	       fault_flag_allow_retry_first(dw->vmf->flags) &&
	       !(dw->vmf->flags & FAULT_FLAG_RETRY_NOWAIT);
}

/* The wait is long: let go of mmap_lock if @dw may. */
static void dvm_dsm_unlock_mmap(struct dvm_dsm_waiter *dw)
{
	if (!dvm_dsm_may_unlock(dw))
		return;
	/* The file, and with it the DSM, outlives the VMA from now on. */
	dw->fpin = get_file(dw->vmf->vma->vm_file);
	mmap_read_unlock(dw->vmf->vma->vm_mm);
}

/* Holders: what the manager asks of a node with a copy */

/*
 * A copy just installed stays at least dvm_dsm_hold_us before the manager
 * may take it away or make it read-only (Mirage's time window): the vCPU
 * that faulted for it is woken by its grant, but a request that waited
 * for the page is woken too and, on a busy CPU, may run first. Without
 * the window, readers spinning on a page a vCPU wants to write can take
 * it back before the write retires, every time.
 */
#define DVM_DSM_HOLD_MAX_US	10000
static uint dvm_dsm_hold_us = 200;
module_param(dvm_dsm_hold_us, uint, 0644);
MODULE_PARM_DESC(dvm_dsm_hold_us,
		 "DVM: how long a node keeps a page it was just granted before giving it up (0 to 10000 us)");

/* A clock of about a microsecond (1024 ns), wrapping every 73 minutes. */
static u32 dvm_dsm_now(void)
{
	return (u32)(ktime_get_ns() >> 10);
}

/*
 * Under the folio lock, for a copy about to be taken or downgraded: wait
 * out what is left of its window, the folio lock let go meanwhile.
 * Returns with the folio locked.
 */
static void dvm_dsm_hold(struct dvm_dsm *dsm, struct folio *folio,
			 struct dvm_dsm_page *pg)
{
	u32 hold = min_t(u32, READ_ONCE(dvm_dsm_hold_us), DVM_DSM_HOLD_MAX_US);
	u32 held = dvm_dsm_now() - pg->granted;

	if (held >= hold)
		return;
	folio_unlock(folio);
	usleep_range(hold - held, hold - held + hold / 4 + 10);
	folio_lock(folio);
	dvm_stat_add(&dvm_dsm_stat(dsm)->dsm_holds, 1);
}

/* How long a holder waits for a DMA pin of its copy to go. */
#define DVM_DSM_DMA_WAIT_MS	1000

/*
 * A copy pinned for DMA (FOLL_PIN: O_DIRECT, a device's window) must not
 * be taken away or made read-only behind its user: wait (with the folio
 * lock let go) until the pin is gone, DVM_DSM_DMA_WAIT_MS at most, then
 * refuse with EBUSY. Returns with the folio locked.
 */
static int dvm_dsm_wait_unpinned(struct dvm_dsm *dsm, struct folio *folio,
				 pgoff_t page)
{
	unsigned long end = jiffies + msecs_to_jiffies(DVM_DSM_DMA_WAIT_MS);

	while (folio_maybe_dma_pinned(folio)) {
		if (READ_ONCE(dsm->dead))
			return -ENOLINK;
		if (time_after(jiffies, end)) {
			pr_warn_ratelimited("kvm-dvm: node %u: page %lu is pinned for DMA here: not given away\n",
					    dsm->node_id, page);
			dvm_stat_add(&dvm_dsm_stat(dsm)->dsm_rejected, 1);
			return -EBUSY;
		}
		folio_unlock(folio);
		usleep_range(1000, 2000);
		folio_lock(folio);
	}
	return 0;
}

/*
 * Take every mapping of a copy that is about to be sent or dropped away
 * (the MMU notifiers take it out of the NPT) before its data is read: a
 * vCPU on another CPU, or the VMM, could otherwise still write it through
 * a writable mapping after the copy, and that write would be lost. With
 * the folio locked no fault maps it again; a DMA pin taken through a
 * mapping before it went is waited for. Returns with the folio locked.
 */
static int dvm_dsm_unmap_unpinned(struct dvm_dsm *dsm, struct folio *folio,
				  pgoff_t page)
{
	struct address_space *mapping = dvm_dsm_mapping(dsm);
	int r;

	do {
		r = dvm_dsm_wait_unpinned(dsm, folio, page);
		if (r)
			return r;
		unmap_mapping_range(mapping, (loff_t)page << PAGE_SHIFT,
				    PAGE_SIZE, 0);
	} while (folio_maybe_dma_pinned(folio));
	/*
	 * Once more, with no mapping left: KVM may have built a shadow page
	 * from the copy, read through the mapping between the MMU
	 * notifier's kvm_unmap_gfn_range() and the unmap. This drops it;
	 * none can be built now (kvm_dvm_remote_writes()).
	 */
	unmap_mapping_range(mapping, (loff_t)page << PAGE_SHIFT, PAGE_SIZE, 0);
	return 0;
}

static int dvm_dsm_holder_act(struct dvm_dsm *dsm, pgoff_t page, u8 op,
			      u32 version, void *data)
{
	struct address_space *mapping = dvm_dsm_mapping(dsm);
	struct dvm_dsm_page *pg = &dsm->pages[page];
	struct folio *folio;
	int r = 0;

	folio = filemap_lock_folio(mapping, page);
	if (!folio)
		goto none;
	if (pg->state == DVM_DSM_MODIFIED ||
	    (pg->state == DVM_DSM_SHARED && op != DVM_DSM_OP_FETCH_KEEP))
		dvm_dsm_hold(dsm, folio, pg);
	while (pg->pins) {
		folio_unlock(folio);
		wait_event_idle(dsm->wq, !READ_ONCE(pg->pins) ||
				READ_ONCE(dsm->dead));
		folio_lock(folio);
		if (READ_ONCE(dsm->dead)) {
			r = -ENOLINK;
			goto out;
		}
	}
	if (WARN_ON_ONCE(folio->mapping != mapping))
		goto stale_folio;
	/* A request's placeholder (dvm_dsm_reserve()) is no copy. */
	if (pg->state == DVM_DSM_INVALID) {
		folio_unlock(folio);
		folio_put(folio);
		goto none;
	}
	/*
	 * Not the copy the manager means: it goes too, and ESTALE says this
	 * node has none now. A copy asked to go goes whatever its version.
	 */
	if (pg->version != version && op != DVM_DSM_OP_INVALIDATE) {
		dvm_stat_add(&dvm_dsm_stat(dsm)->dsm_rejected, 1);
		op = DVM_DSM_OP_INVALIDATE;
		data = NULL;
		r = -ESTALE;
	}

	/* A Shared copy that stays Shared changes nothing for its users. */
	if (op != DVM_DSM_OP_FETCH_KEEP || pg->state == DVM_DSM_MODIFIED) {
		int busy = dvm_dsm_unmap_unpinned(dsm, folio, page);

		if (busy) {
			r = busy;
			goto out;
		}
	}
	/* Nobody can write it now: the copy sent is the last version. */
	if (data)
		memcpy_from_page(data, folio_page(folio, 0), 0, PAGE_SIZE);
	trace_dvm_dsm_invalidate(dsm->node_id, page, op, version);
	if (op == DVM_DSM_OP_FETCH_KEEP) {
		/* Read-only from now on: the next write faults. */
		pg->state = DVM_DSM_SHARED;
	} else {
		/*
		 * Out of the page cache, which frees it: this is the
		 * exported way to truncate one locked page.
		 */
		pg->state = DVM_DSM_INVALID;
		generic_error_remove_page(mapping, folio_page(folio, 0));
		dvm_dsm_held(dsm, -1);
	}
	goto out;

none:
	/*
	 * No copy here. Invalidating it is done already (a repeated
	 * INVALIDATE, or a copy this node lost); its data cannot be sent.
	 */
	if (op == DVM_DSM_OP_INVALIDATE)
		return 0;
	dvm_stat_add(&dvm_dsm_stat(dsm)->dsm_rejected, 1);
	return -ESTALE;
stale_folio:
	folio_unlock(folio);
	folio_put(folio);
	dvm_stat_add(&dvm_dsm_stat(dsm)->dsm_rejected, 1);
	return -ESTALE;
out:
	folio_unlock(folio);
	folio_put(folio);
	return r;
}

static void dvm_dsm_fetch_work(struct work_struct *work)
{
	struct dvm_dsm_work *w = container_of(work, struct dvm_dsm_work, work);
	struct dvm_dsm *dsm = w->dsm;
	void *data = NULL;
	int r = -ENOMEM;

	if (w->op != DVM_DSM_OP_INVALIDATE) {
		data = kmalloc(PAGE_SIZE, GFP_KERNEL);
		if (!data)
			goto reply;
	}
	r = dvm_dsm_holder_act(dsm, w->page, w->op, w->version, data);
	if (!r) {
		dvm_stat_add(&dvm_dsm_stat(dsm)->dsm_inv_recv, w->op != DVM_DSM_OP_FETCH_KEEP);
		dvm_stat_add(&dvm_dsm_stat(dsm)->dsm_bytes_out, data ? PAGE_SIZE : 0);
	}
reply:
	down_read(&dsm->c_sem);
	if (dsm->c)
		dvm_reply(dsm->c, w->node, DVM_MSG_DSM_FETCH, w->req_id, r,
			  data, data ? PAGE_SIZE : 0);
	up_read(&dsm->c_sem);
	kfree(data);
	kfree(w);
}

/* Manager: directory entries, one transaction per page at a time */

/* In a work item: the wait ends when the DSM dies. */
static int dvm_dsm_dir_lock(struct dvm_dsm *dsm, struct dvm_dsm_dir *e)
{
	spin_lock(&dsm->dir_lock);
	while (e->busy && !dsm->dead) {
		spin_unlock(&dsm->dir_lock);
		wait_event_idle(dsm->wq, !READ_ONCE(e->busy) ||
				READ_ONCE(dsm->dead));
		spin_lock(&dsm->dir_lock);
	}
	if (dsm->dead) {
		spin_unlock(&dsm->dir_lock);
		return -ENOLINK;
	}
	e->busy = true;
	e->requester = KVM_DVM_NO_NODE;
	spin_unlock(&dsm->dir_lock);
	return 0;
}

static void dvm_dsm_dir_unlock(struct dvm_dsm *dsm, struct dvm_dsm_dir *e)
{
	spin_lock(&dsm->dir_lock);
	e->busy = false;
	e->requester = KVM_DVM_NO_NODE;
	spin_unlock(&dsm->dir_lock);
	wake_up_all(&dsm->wq);
}

/* The holder that sends the data: this node if it can, else the lowest. */
static u32 dvm_dsm_pick_source(struct dvm_dsm *dsm, u64 holders)
{
	if (holders & BIT_ULL(dsm->node_id))
		return dsm->node_id;
	return __ffs64(holders);
}

/*
 * Invalidate every node in @mask except @src, from which FETCH_@src_op
 * brings the page into @data (if @src is in @mask). Remote nodes are
 * asked in parallel; this node acts on its own copy meanwhile. *@gone
 * gets, acknowledgment by acknowledgment, the nodes that no longer
 * hold a copy, also when another one failed: ESTALE says a node has
 * none.
 */
static int dvm_dsm_holders_act(struct dvm_dsm *dsm, pgoff_t page, u64 mask,
			       u32 src, u8 src_op, u32 version, void *data,
			       u64 *gone)
{
	struct dvm_msg_dsm_fetch *req;
	struct dvm_call *calls;
	int i, n = 0, r = 0, r2;
	u32 node;
	u8 op;

	*gone = 0;
	calls = kcalloc(hweight64(mask), sizeof(*calls), GFP_KERNEL);
	req = kcalloc(hweight64(mask), sizeof(*req), GFP_KERNEL);
	if (!calls || !req) {
		r = -ENOMEM;
		goto out;
	}
	for_each_set_bit(node, (unsigned long *)&mask, KVM_DVM_MAX_NODES) {
		op = node == src ? src_op : DVM_DSM_OP_INVALIDATE;
		if (node == dsm->node_id)
			continue;
		req[n].page = cpu_to_le64(page);
		req[n].version = cpu_to_le32(version);
		req[n].op = op;
		req[n].pages = cpu_to_le64(dsm->nr_pages);
		r = dvm_call_start(dsm->c, &calls[n], node, DVM_MSG_DSM_FETCH,
				   &req[n], sizeof(req[n]),
				   op == DVM_DSM_OP_INVALIDATE ? NULL : data,
				   op == DVM_DSM_OP_INVALIDATE ? 0 : PAGE_SIZE);
		if (r)
			break;
		dvm_stat_add(&dvm_dsm_stat(dsm)->dsm_inv_sent, op != DVM_DSM_OP_FETCH_KEEP);
		n++;
	}
	if (!r && (mask & BIT_ULL(dsm->node_id))) {
		node = dsm->node_id;
		op = src == node ? src_op : DVM_DSM_OP_INVALIDATE;
		r = dvm_dsm_holder_act(dsm, page, op, version,
				       src == node ? data : NULL);
		if ((!r && op != DVM_DSM_OP_FETCH_KEEP) || r == -ESTALE)
			*gone |= BIT_ULL(node);
	}
	for (i = 0; i < n; i++) {
		node = calls[i].node;
		op = node == src ? src_op : DVM_DSM_OP_INVALIDATE;
		r2 = dvm_call_wait_killable(dsm->c, &calls[i]);
		if (!r2 && calls[i].resp_max &&
		    calls[i].resp_len != PAGE_SIZE) {
			dvm_stat_add(&dvm_dsm_stat(dsm)->dsm_rejected, 1);
			r2 = -EPROTO;
		}
		if (!r2 && calls[i].resp_max)
			dvm_stat_add(&dvm_dsm_stat(dsm)->dsm_bytes_in, PAGE_SIZE);
		if ((!r2 && op != DVM_DSM_OP_FETCH_KEEP) || r2 == -ESTALE)
			*gone |= BIT_ULL(node);
		if (!r)
			r = r2;
	}
out:
	kfree(req);
	kfree(calls);
	return r;
}

/*
 * The only copy of @page's data was on @node, which lost it: the data is
 * gone while the cluster is up, so the cluster breaks (EIO, naming the
 * node) instead of failing every later access for good.
 */
static int dvm_dsm_page_lost(struct dvm_dsm *dsm, pgoff_t page, u32 node)
{
	pr_warn_ratelimited("kvm-dvm: node %u lost its copy of page %lu, the only one\n",
			    node, page);
	dvm_stat_add(&dvm_dsm_stat(dsm)->dsm_rejected, 1);
	dvm_cluster_lost(dsm->c, node, -EIO);
	return -EIO;
}

/*
 * One transaction of @requester on @page, with the directory entry
 * locked: bring every other copy in line, update the entry, say what is
 * granted. @data receives the page when the grant carries it. The entry
 * follows every acknowledgment, also when the transaction fails; a
 * source that turns out to have lost its copy is replaced by another
 * holder, if any.
 */
static int dvm_dsm_manage(struct dvm_dsm *dsm, pgoff_t page, u32 requester,
			  bool write, bool have, u32 version,
			  struct dvm_dsm_grant_info *g, void *data)
{
	struct dvm_dsm_dir *e = dvm_dsm_dir_entry(dsm, page);
	bool holder = e->holders & BIT_ULL(requester);
	u64 others, gone = 0;
	bool need_data;
	u32 src;
	int r;

	if (holder && !have) {
		/*
		 * The requester lost its copy (a grant it never installed:
		 * its request was abandoned). Unless that was the only one,
		 * the others still have the data.
		 */
		e->holders &= ~BIT_ULL(requester);
		holder = false;
		if (e->modified || !e->holders) {
			e->modified = false;
			return dvm_dsm_page_lost(dsm, page, requester);
		}
	}
	/* A holder's copy is of the directory's version. */
	if (holder && version != e->version) {
		dvm_stat_add(&dvm_dsm_stat(dsm)->dsm_rejected, 1);
		return -ESTALE;
	}
again:
	others = e->holders & ~BIT_ULL(requester);
	need_data = !holder && e->version;
	src = U32_MAX;
	r = 0;
	if (need_data && !others)
		return dvm_dsm_page_lost(dsm, page, dvm_dsm_manager(dsm, page));
	if (need_data)
		src = dvm_dsm_pick_source(dsm, others);

	g->flags = need_data ? DVM_DSM_GRANT_DATA :
		   !holder ? DVM_DSM_GRANT_ZERO : 0;
	if (write) {
		if (others)
			r = dvm_dsm_holders_act(dsm, page, others, src,
						DVM_DSM_OP_FETCH_DROP,
						e->version, data, &gone);
	} else if (e->modified && others) {
		/* The only other holder has it Modified: downgrade. */
		r = dvm_dsm_holders_act(dsm, page, others, src,
					DVM_DSM_OP_FETCH_KEEP, e->version,
					data, &gone);
	} else if (need_data) {
		r = dvm_dsm_holders_act(dsm, page, BIT_ULL(src), src,
					DVM_DSM_OP_FETCH_KEEP, e->version,
					data, &gone);
	}
	e->holders &= ~gone;
	if (!e->holders)
		e->modified = false;
	if (r == -ESTALE && src != U32_MAX && (gone & BIT_ULL(src))) {
		/* Another holder may have the data: at most one try each. */
		if (e->holders & ~BIT_ULL(requester))
			goto again;
		return dvm_dsm_page_lost(dsm, page, src);
	}
	if (r)
		return r;

	if (write) {
		e->holders = BIT_ULL(requester);
		e->modified = true;
		/* New contents to come; 0 stays "never written". */
		if (!++e->version)
			e->version = 1;
	} else {
		e->modified = e->modified && holder;
		e->holders |= BIT_ULL(requester);
	}
	g->version = e->version;
	return 0;
}

/* Requesters */

/*
 * Before asking for a page this node has no copy of: its place in the
 * page cache, charged to the caller's memory cgroup, so that installing
 * the grant cannot fail once the manager counts this node as a holder.
 * A placeholder is a folio whose page is INVALID: never mapped, and no
 * copy to the protocol (holders treat it as none).
 */
static int dvm_dsm_reserve(struct dvm_dsm *dsm, pgoff_t page,
			   struct folio *fresh)
{
	int r;

	r = filemap_add_folio(dvm_dsm_mapping(dsm), fresh, page, GFP_KERNEL);
	if (r)
		/* -EEXIST: a placeholder left by a failed request. */
		return r == -EEXIST ? 0 : r;
	folio_unlock(fresh);
	return 0;
}

/* A request that got nothing: its placeholder goes. */
static void dvm_dsm_unreserve(struct dvm_dsm *dsm, pgoff_t page)
{
	struct address_space *mapping = dvm_dsm_mapping(dsm);
	struct folio *folio;

	folio = filemap_lock_folio(mapping, page);
	if (!folio)
		return;
	if (dsm->pages[page].state == DVM_DSM_INVALID)
		generic_error_remove_page(mapping, folio_page(folio, 0));
	folio_unlock(folio);
	folio_put(folio);
}

/*
 * Put the granted page into this node's page cache, or upgrade the copy.
 * Fails only on a bug (WARN): the grant is this node's to keep.
 */
static int dvm_dsm_install(struct dvm_dsm *dsm, pgoff_t page, bool write,
			   const struct dvm_dsm_grant_info *g,
			   const void *data, struct folio *fresh)
{
	struct address_space *mapping = dvm_dsm_mapping(dsm);
	struct dvm_dsm_page *pg = &dsm->pages[page];
	struct folio *folio;
	int r;

	folio = filemap_lock_folio(mapping, page);
	if (g->flags & (DVM_DSM_GRANT_DATA | DVM_DSM_GRANT_ZERO)) {
		/* The manager took any copy away before granting one. */
		if (WARN_ON_ONCE(folio && pg->state != DVM_DSM_INVALID)) {
			pg->state = DVM_DSM_INVALID;
			generic_error_remove_page(mapping, folio_page(folio, 0));
			dvm_dsm_held(dsm, -1);
			folio_unlock(folio);
			folio_put(folio);
			folio = NULL;
		}
		if (!folio) {
			/*
			 * No placeholder: the copy this node had when it
			 * asked (an upgrade) was taken meanwhile. One page
			 * per request beyond the memory cgroup's limit, at
			 * most: the data exists nowhere else.
			 */
			r = filemap_add_folio(mapping, fresh, page,
					      GFP_KERNEL | __GFP_NOFAIL);
			if (WARN_ON_ONCE(r))
				return r;
			folio = fresh;
			folio_get(folio);
		}
		if (g->flags & DVM_DSM_GRANT_DATA)
			memcpy_to_page(folio_page(folio, 0), 0, data, PAGE_SIZE);
		else
			clear_highpage(folio_page(folio, 0));
		folio_mark_uptodate(folio);
		dvm_dsm_held(dsm, 1);
	} else if (!folio || pg->state == DVM_DSM_INVALID) {
		/* Granted without data, but the copy is gone: a bug. */
		WARN_ON_ONCE(1);
		dvm_stat_add(&dvm_dsm_stat(dsm)->dsm_rejected, 1);
		if (folio) {
			folio_unlock(folio);
			folio_put(folio);
		}
		return -ESTALE;
	}
	pg->version = g->version;
	pg->state = write ? DVM_DSM_MODIFIED : DVM_DSM_SHARED;
	pg->granted = dvm_dsm_now();
	if (write)
		clear_bit(DVM_DSM_WANT_WRITE, &pg->flags);
	folio_unlock(folio);
	folio_put(folio);
	return 0;
}

static void dvm_dsm_count_grant(struct dvm_dsm *dsm, u16 flags)
{
	struct kvm_dvm_vm_stat *s = dvm_dsm_stat(dsm);

	if (flags & DVM_DSM_GRANT_DATA)
		dvm_stat_add(&s->dsm_remote_fetches, 1);
	if (flags & DVM_DSM_GRANT_ZERO)
		dvm_stat_add(&s->dsm_zero_fills, 1);
}

static int dvm_dsm_parse_grant(struct dvm_dsm *dsm, pgoff_t page,
			       const void *buf, u32 len,
			       struct dvm_dsm_grant_info *g)
{
	const struct dvm_msg_dsm_grant *m = buf;
	u16 flags;

	if (len < sizeof(*m))
		goto bad;
	flags = le16_to_cpu(m->flags);
	if (m->pad || le64_to_cpu(m->page) != page ||
	    (flags & ~(DVM_DSM_GRANT_DATA | DVM_DSM_GRANT_ZERO)) ||
	    hweight16(flags) > 1 ||
	    len != sizeof(*m) + ((flags & DVM_DSM_GRANT_DATA) ? PAGE_SIZE : 0))
		goto bad;
	g->version = le32_to_cpu(m->version);
	g->flags = flags;
	return 0;
bad:
	dvm_stat_add(&dvm_dsm_stat(dsm)->dsm_rejected, 1);
	return -EPROTO;
}

static void dvm_dsm_req_free(struct dvm_dsm_req *req)
{
	if (req->fresh)
		folio_put(req->fresh);
	kfree(req->grant);
	kfree(req);
}

/* Everything a grant needs, before asking for it. */
static struct dvm_dsm_req *dvm_dsm_req_alloc(struct dvm_dsm *dsm,
					     pgoff_t page, bool write)
{
	struct dvm_dsm_req *req;

	req = kzalloc(sizeof(*req), GFP_KERNEL);
	if (!req)
		return NULL;
	req->dsm = dsm;
	req->page = page;
	req->write = write;
	req->local = dvm_dsm_manager(dsm, page) == dsm->node_id;
	req->start = ktime_get();
	init_completion(&req->call.done);
	req->grant = kmalloc(sizeof(*req->grant) + PAGE_SIZE, GFP_KERNEL);
	req->fresh = folio_alloc(GFP_HIGHUSER, 0);
	if (!req->grant || !req->fresh) {
		dvm_dsm_req_free(req);
		return NULL;
	}
	return req;
}

/*
 * This node manages the page: the transaction runs on the manager's
 * queue, as a remote node's request does, and "replies" by completing
 * req->call.done. The entry stays busy until the requester installed
 * the grant (dvm_dsm_req_finish()). Nothing of @req is touched after the
 * completion: the requester may free it at once.
 */
static void dvm_dsm_local_work(struct work_struct *work)
{
	struct dvm_dsm_req *req = container_of(work, struct dvm_dsm_req,
					       local_work);
	struct dvm_dsm *dsm = req->dsm;
	struct dvm_dsm_dir *e = dvm_dsm_dir_entry(dsm, req->page);
	struct dvm_dsm_page *pg = &dsm->pages[req->page];
	struct dvm_dsm_grant_info g;
	bool have;
	int r;

	r = dvm_dsm_dir_lock(dsm, e);
	if (!r) {
		/* Copies change only in transactions: stable while e is locked. */
		have = READ_ONCE(pg->state) != DVM_DSM_INVALID;
		r = dvm_dsm_manage(dsm, req->page, dsm->node_id, req->write,
				   have, have ? READ_ONCE(pg->version) : 0, &g,
				   req->grant + 1);
		if (r)
			dvm_dsm_dir_unlock(dsm, e);
	}
	if (!r) {
		req->grant->page = cpu_to_le64(req->page);
		req->grant->version = cpu_to_le32(g.version);
		req->grant->flags = cpu_to_le16(g.flags);
		req->grant->pad = 0;
		req->call.resp_len = sizeof(*req->grant) +
			(g.flags & DVM_DSM_GRANT_DATA ? PAGE_SIZE : 0);
	}
	req->call.status = r;
	complete(&req->call.done);
}

/* Send @req to the page's manager. Under dsm->c_sem. */
static int dvm_dsm_req_send(struct dvm_dsm_req *req)
{
	struct dvm_dsm *dsm = req->dsm;
	struct dvm_dsm_page *pg = &dsm->pages[req->page];
	bool have = READ_ONCE(pg->state) != DVM_DSM_INVALID;
	struct dvm_msg_dsm_req m = {
		.page = cpu_to_le64(req->page),
		.version = cpu_to_le32(have ? READ_ONCE(pg->version) : 0),
		.write = req->write,
		.have = have,
		.pages = cpu_to_le64(dsm->nr_pages),
	};

	if (req->local) {
		INIT_WORK(&req->local_work, dvm_dsm_local_work);
		queue_work(dsm->mgr_wq, &req->local_work);
		return 0;
	}
	return dvm_call_start(dsm->c, &req->call,
			      dvm_dsm_manager(dsm, req->page),
			      DVM_MSG_DSM_REQ, &m, sizeof(m), req->grant,
			      sizeof(*req->grant) + PAGE_SIZE);
}

/* The waiter may not sleep at all (KVM's first, FOLL_NOWAIT, try). */
static bool dvm_dsm_no_wait(const struct dvm_dsm_waiter *dw)
{
	return dw && dw->vmf && (dw->vmf->flags & FAULT_FLAG_RETRY_NOWAIT);
}

/*
 * Wait for @req's grant, killable (interruptible for a PIN), without
 * mmap_lock once it takes long (if @dw may let go of it). 0 once the
 * grant or the failure came; -EINTR while the request still runs.
 */
static int dvm_dsm_req_wait(struct dvm_dsm_req *req,
			    struct dvm_dsm_waiter *dw)
{
	struct completion *done = &req->call.done;

	if (dvm_dsm_may_unlock(dw)) {
		if (wait_for_completion_timeout(done, DVM_DSM_QUICK_WAIT))
			return 0;
		dvm_dsm_unlock_mmap(dw);
	}
	if (dw && dw->interruptible)
		return wait_for_completion_interruptible(done) ? -EINTR : 0;
	return wait_for_completion_killable(done) ? -EINTR : 0;
}

/*
 * The grant came (or the request failed): install it and end the
 * manager's transaction, DONE to a remote manager. A grant this node
 * cannot install leaves the manager counting a copy that is not here:
 * the cluster breaks rather than lose the page silently. Under
 * dsm->c_sem.
 */
static int dvm_dsm_req_finish(struct dvm_dsm_req *req)
{
	struct dvm_dsm *dsm = req->dsm;
	u32 mgr = dvm_dsm_manager(dsm, req->page);
	struct dvm_msg_dsm_done done = { .page = cpu_to_le64(req->page) };
	struct dvm_dsm_grant_info g;
	int r = req->call.status;

	if (r)
		return r;
	r = dvm_dsm_parse_grant(dsm, req->page, req->grant,
				req->call.resp_len, &g);
	if (!r) {
		r = dvm_dsm_install(dsm, req->page, req->write, &g,
				    req->grant + 1, req->fresh);
		trace_dvm_dsm_fetch(dsm->node_id, req->page, mgr, g.flags,
				    g.version);
	}
	if (req->local)
		dvm_dsm_dir_unlock(dsm, dvm_dsm_dir_entry(dsm, req->page));
	if (r) {
		dvm_cluster_lost(dsm->c, mgr, r == -EPROTO ? -EPROTO : -EIO);
		return r;
	}
	dvm_dsm_count_grant(dsm, g.flags);
	if (!req->local && (g.flags & DVM_DSM_GRANT_DATA))
		dvm_stat_add(&dvm_dsm_stat(dsm)->dsm_bytes_in, PAGE_SIZE);
	if (!req->local)
		dvm_send(dsm->c, mgr, DVM_MSG_DSM_DONE, &done, sizeof(done));
	return 0;
}

static void dvm_dsm_count_fault(struct dvm_dsm *dsm, bool write, bool had,
				u64 ns)
{
	struct kvm_dvm_vm_stat *s = dvm_dsm_stat(dsm);

	if (!write)
		dvm_stat_add(&s->dsm_read_faults, 1);
	else if (had)
		dvm_stat_add(&s->dsm_upgrades, 1);
	else
		dvm_stat_add(&s->dsm_write_faults, 1);
	dvm_stat_add(&s->dsm_fault_sum_ns, ns);
	dvm_stat_add(&s->dsm_fault_count, 1);
	dvm_stat_min(&s->dsm_fault_min_ns, ns);
	dvm_stat_max(&s->dsm_fault_max_ns, ns);
}

/* The end of a request: the page's placeholder, the counters, the bit. */
static void dvm_dsm_req_end(struct dvm_dsm_req *req, int r)
{
	struct dvm_dsm *dsm = req->dsm;
	struct dvm_dsm_page *pg = &dsm->pages[req->page];
	u64 ns;

	if (r)
		dvm_dsm_unreserve(dsm, req->page);
	ns = max_t(u64, 1, ktime_to_ns(ktime_sub(ktime_get(), req->start)));
	trace_dvm_dsm_fault(dsm->node_id, req->page, req->write, r, ns);
	if (!r)
		dvm_dsm_count_fault(dsm, req->write, req->had, ns);
	clear_and_wake_up_bit(DVM_DSM_FETCHING, &pg->flags);
	dvm_dsm_req_free(req);
}

/* A request whose waiter left: seen through here, on the holder queue. */
static void dvm_dsm_finish_work(struct work_struct *work)
{
	struct dvm_dsm_req *req = container_of(work, struct dvm_dsm_req,
					       finish_work);
	struct dvm_dsm *dsm = req->dsm;
	int r;

	/* Ends with the grant, or when the peer or the DSM goes. */
	wait_for_completion_state(&req->call.done, TASK_IDLE);
	down_read(&dsm->c_sem);
	r = dvm_dsm_req_finish(req);
	up_read(&dsm->c_sem);
	dvm_dsm_req_end(req, r);
}

static void dvm_dsm_req_hand_over(struct dvm_dsm_req *req)
{
	dvm_stat_add(&dvm_dsm_stat(req->dsm)->dsm_handed_over, 1);
	INIT_WORK(&req->finish_work, dvm_dsm_finish_work);
	queue_work(req->dsm->holder_wq, &req->finish_work);
}

static bool dvm_dsm_enough(struct dvm_dsm_page *pg, bool write)
{
	return READ_ONCE(pg->state) >= (write ? DVM_DSM_MODIFIED :
						DVM_DSM_SHARED);
}

/* Take @pg's DVM_DSM_FETCHING bit: this node's request for it. */
static int dvm_dsm_lock_page(struct dvm_dsm_page *pg,
			     struct dvm_dsm_waiter *dw)
{
	unsigned int state = dw && dw->interruptible ? TASK_INTERRUPTIBLE :
						       TASK_KILLABLE;

	if (!test_and_set_bit_lock(DVM_DSM_FETCHING, &pg->flags))
		return 0;
	if (dvm_dsm_may_unlock(dw) &&
	    wait_on_bit_timeout(&pg->flags, DVM_DSM_FETCHING, state,
				DVM_DSM_QUICK_WAIT))
		dvm_dsm_unlock_mmap(dw);
	return wait_on_bit_lock(&pg->flags, DVM_DSM_FETCHING, state) ?
	       -EINTR : 0;
}

/*
 * Get @page Shared (or Modified if @write) here. Sleeps; a fault's @dw
 * may let go of mmap_lock meanwhile. -EINTR leaves the request, if one
 * was sent, to a work item. A fault that may not sleep at all gets
 * -EAGAIN at once: it asks again, allowed to wait.
 */
static int dvm_dsm_acquire(struct dvm_dsm *dsm, pgoff_t page, bool write,
			   struct dvm_dsm_waiter *dw)
{
	struct dvm_dsm_page *pg = &dsm->pages[page];
	struct dvm_dsm_req *req;
	int r;

	if (dvm_dsm_no_wait(dw))
		return -EAGAIN;
	r = dvm_dsm_lock_page(pg, dw);
	if (r)
		return r;
	if (dvm_dsm_enough(pg, write)) {
		clear_and_wake_up_bit(DVM_DSM_FETCHING, &pg->flags);
		return 0;
	}
	req = dvm_dsm_req_alloc(dsm, page, write);
	if (!req) {
		clear_and_wake_up_bit(DVM_DSM_FETCHING, &pg->flags);
		return -ENOMEM;
	}
	req->had = READ_ONCE(pg->state) != DVM_DSM_INVALID;
	if (!req->had) {
		r = dvm_dsm_reserve(dsm, page, req->fresh);
		if (r) {
			clear_and_wake_up_bit(DVM_DSM_FETCHING, &pg->flags);
			dvm_dsm_req_free(req);
			return r;
		}
	}

	down_read(&dsm->c_sem);
	r = READ_ONCE(dsm->dead) ? -ENOLINK : dvm_dsm_req_send(req);
	if (!r) {
		r = dvm_dsm_req_wait(req, dw);
		if (r == -EINTR) {
			dvm_dsm_req_hand_over(req);
			up_read(&dsm->c_sem);
			return r;
		}
		r = dvm_dsm_req_finish(req);
	}
	up_read(&dsm->c_sem);
	dvm_dsm_req_end(req, r);
	return r;
}

static vm_fault_t dvm_dsm_errno_to_fault(int r)
{
	return r == -ENOMEM ? VM_FAULT_OOM : VM_FAULT_SIGBUS;
}

/*
 * The page of @vmf, locked, once this node holds it well enough; or
 * VM_FAULT_RETRY once the page came without mmap_lock, and at once, with
 * it, for a fault that may not wait (KVM's first try, FOLL_NOWAIT: KVM
 * then sets up an async page fault, whose worker faults with waiting
 * allowed, or faults again itself).
 */
static vm_fault_t dvm_dsm_fault(struct vm_fault *vmf)
{
	struct dvm_dsm_waiter dw = { .vmf = vmf };
	struct dvm_dsm *dsm = vmf->vma->vm_file->private_data;
	struct address_space *mapping = dvm_dsm_mapping(dsm);
	bool write = vmf->flags & FAULT_FLAG_WRITE;
	pgoff_t page = vmf->pgoff;
	struct folio *folio;
	int r;

	if (page >= dsm->nr_pages)
		return VM_FAULT_SIGBUS;
	if (test_bit(DVM_DSM_WANT_WRITE, &dsm->pages[page].flags))
		write = true;
	for (;;) {
		folio = filemap_lock_folio(mapping, page);
		if (folio) {
			if (dvm_dsm_enough(&dsm->pages[page], write)) {
				if (write)
					clear_bit(DVM_DSM_WANT_WRITE,
						  &dsm->pages[page].flags);
				vmf->page = folio_file_page(folio, page);
				return VM_FAULT_LOCKED;
			}
			folio_unlock(folio);
			folio_put(folio);
		}
		r = dvm_dsm_acquire(dsm, page, write, &dw);
		if (dw.fpin) {
			/* Whatever happened, vmf->vma is no more ours. */
			fput(dw.fpin);
			return VM_FAULT_RETRY;
		}
		/* mmap_lock still held, as FAULT_FLAG_RETRY_NOWAIT wants. */
		if (r == -EAGAIN)
			return VM_FAULT_RETRY;
		if (r)
			return dvm_dsm_errno_to_fault(r);
	}
}

/*
 * A write to a page mapped read-only. page_mkwrite may not let go of
 * mmap_lock (the kernel calls it without FAULT_FLAG_ALLOW_RETRY), so it
 * does not upgrade here: it takes the read-only mappings away and the
 * write faults again, in dvm_dsm_fault(), which may. An instruction that
 * reads before it writes (a read-modify-write as TCG runs it) faults for
 * reading first when it is retried: DVM_DSM_WANT_WRITE makes that fault
 * take the page Modified too, or the two faults would alternate for ever.
 */
static vm_fault_t dvm_dsm_page_mkwrite(struct vm_fault *vmf)
{
	struct dvm_dsm *dsm = vmf->vma->vm_file->private_data;
	struct folio *folio = page_folio(vmf->page);
	pgoff_t page = folio->index;

	folio_lock(folio);
	if (folio->mapping != dvm_dsm_mapping(dsm)) {
		folio_unlock(folio);
		return VM_FAULT_NOPAGE;
	}
	if (dsm->pages[page].state == DVM_DSM_MODIFIED)
		return VM_FAULT_LOCKED;
	set_bit(DVM_DSM_WANT_WRITE, &dsm->pages[page].flags);
	folio_unlock(folio);
	unmap_mapping_range(dvm_dsm_mapping(dsm), (loff_t)page << PAGE_SHIFT,
			    PAGE_SIZE, 0);
	return VM_FAULT_NOPAGE;
}

/**
 * kvm_dvm_sync_faults - whether @kvm's vCPUs fault guest memory in only
 *	themselves (no async page faults)
 * @kvm: the VM
 *
 * KVM's async page fault worker faults a page in for writing whatever
 * the access: on the DSM every read miss would take the page Modified,
 * away from every other node. And the vCPU retries the access only
 * after the worker's completion reached it, by which time a busy page
 * may be gone again. A vCPU that faults itself installs the page, maps
 * it and enters the guest in one go, within the copy's hold window, so
 * its access retires. The vCPU waits for the page meanwhile (with
 * mmap_lock let go: FAULT_FLAG_ALLOW_RETRY).
 *
 * Return: true for a VM that uses DVM.
 */
bool kvm_dvm_sync_faults(struct kvm *kvm)
{
	return READ_ONCE(kvm->dvm);
}

/**
 * kvm_dvm_remote_writes - whether other nodes write @kvm's memory
 * @kvm: the VM
 *
 * KVM's shadow paging write-protects the guest page tables it shadows
 * and trusts a shadow page until a write here traps. Another node's
 * write never traps here: when a page goes from this node (the MMU
 * notifiers' kvm_unmap_gfn_range()), the shadow pages built from it go
 * too, and are built again from the next copy.
 *
 * Return: true for a VM that uses DVM.
 */
bool kvm_dvm_remote_writes(struct kvm *kvm)
{
	return READ_ONCE(kvm->dvm);
}

/**
 * kvm_dvm_shadows_zapped - count shadow pages dropped with their page
 * @kvm: the VM
 * @nr: how many, under kvm->mmu_lock
 */
void kvm_dvm_shadows_zapped(struct kvm *kvm, u64 nr)
{
	if (nr)
		dvm_stat_add(&kvm->stat.generic.dvm.dsm_shadow_zaps, nr);
}

static const struct vm_operations_struct dvm_dsm_vm_ops = {
	.fault = dvm_dsm_fault,
	.page_mkwrite = dvm_dsm_page_mkwrite,
};

/* Incoming requests */

static void dvm_dsm_count_rejected(struct dvm_cluster *c)
{
	dvm_stat_add(&c->dvm->kvm->stat.generic.dvm.dsm_rejected, 1);
}

static void dvm_dsm_req_work(struct work_struct *work)
{
	struct dvm_dsm_work *w = container_of(work, struct dvm_dsm_work, work);
	struct dvm_dsm *dsm = w->dsm;
	struct dvm_dsm_dir *e = dvm_dsm_dir_entry(dsm, w->page);
	struct dvm_msg_dsm_grant *grant;
	struct dvm_dsm_grant_info g;
	u32 len = 0;
	int r;

	grant = kzalloc(sizeof(*grant) + PAGE_SIZE, GFP_KERNEL);
	down_read(&dsm->c_sem);
	r = grant ? dvm_dsm_dir_lock(dsm, e) : -ENOMEM;
	if (r)
		goto reply;
	r = dvm_dsm_manage(dsm, w->page, w->node, w->op, w->have, w->version,
			   &g, grant + 1);
	if (r) {
		dvm_dsm_dir_unlock(dsm, e);
		goto reply;
	}
	grant->page = cpu_to_le64(w->page);
	grant->version = cpu_to_le32(g.version);
	grant->flags = cpu_to_le16(g.flags);
	len = sizeof(*grant) + (g.flags & DVM_DSM_GRANT_DATA ? PAGE_SIZE : 0);
	dvm_stat_add(&dvm_dsm_stat(dsm)->dsm_bytes_out, len > sizeof(*grant) ? PAGE_SIZE : 0);
	/* The entry stays busy until the requester's DONE. */
	spin_lock(&dsm->dir_lock);
	e->requester = w->node;
	spin_unlock(&dsm->dir_lock);
reply:
	if (dsm->c && dvm_reply(dsm->c, w->node, DVM_MSG_DSM_REQ, w->req_id, r,
				grant, len) && !r)
		dvm_dsm_dir_unlock(dsm, e);
	up_read(&dsm->c_sem);
	kfree(grant);
	kfree(w);
}

/*
 * Hand a request of @conn's node on @page to @fn, on the manager's or the
 * holder's workqueue, which replies. It is queued under the cluster's
 * lock so that the VM's DSM cannot go away before the work item ran.
 */
static int dvm_dsm_defer(struct dvm_cluster *c, struct dvm_conn *conn,
			 const struct dvm_wire_msg *msg, work_func_t fn,
			 bool mgr, u64 pages, u64 page, u32 version, u8 op,
			 u8 have)
{
	struct dvm_dsm_work *w;
	struct dvm_dsm *dsm;
	int r = -ENODEV;

	w = kzalloc(sizeof(*w), GFP_KERNEL);
	if (!w)
		return -ENOMEM;
	INIT_WORK(&w->work, fn);
	w->node = conn->node;
	w->req_id = msg->req_id;
	w->page = page;
	w->version = version;
	w->op = op;
	w->have = have;

	spin_lock(&c->lock);
	dsm = c->dvm->dsm;
	if (dsm && pages != dsm->nr_pages) {
		/* Every node must create the same memory. */
		pr_warn_ratelimited("kvm-dvm: node %u's memory has %llu pages, node %u's %lu\n",
				    conn->node, pages, c->node_id,
				    dsm->nr_pages);
		r = -EINVAL;
	} else if (dsm && page < dsm->nr_pages) {
		w->dsm = dsm;
		queue_work(mgr ? dsm->mgr_wq : dsm->holder_wq, &w->work);
		r = DVM_REPLY_LATER;
	} else if (dsm) {
		r = -ERANGE;
	}
	spin_unlock(&c->lock);
	if (r != DVM_REPLY_LATER) {
		dvm_dsm_count_rejected(c);
		kfree(w);
	}
	return r;
}

int dvm_handle_dsm_req(struct dvm_cluster *c, struct dvm_conn *conn,
		       const struct dvm_wire_msg *msg, const void *payload,
		       struct dvm_reply *reply)
{
	const struct dvm_msg_dsm_req *m = payload;
	u64 page = le64_to_cpu(m->page);

	if (m->write > 1 || m->have > 1 || m->pad[0] || m->pad[1] ||
	    page % c->nr_nodes != c->node_id) {
		dvm_dsm_count_rejected(c);
		return -EINVAL;
	}
	return dvm_dsm_defer(c, conn, msg, dvm_dsm_req_work, true,
			     le64_to_cpu(m->pages), page,
			     le32_to_cpu(m->version), m->write, m->have);
}

int dvm_handle_dsm_fetch(struct dvm_cluster *c, struct dvm_conn *conn,
			 const struct dvm_wire_msg *msg, const void *payload,
			 struct dvm_reply *reply)
{
	const struct dvm_msg_dsm_fetch *m = payload;
	u64 page = le64_to_cpu(m->page);

	/* Only a page's manager takes copies away. */
	if (m->op >= DVM_DSM_NR_OPS || m->pad[0] || m->pad[1] || m->pad[2] ||
	    page % c->nr_nodes != conn->node) {
		dvm_dsm_count_rejected(c);
		return -EINVAL;
	}
	return dvm_dsm_defer(c, conn, msg, dvm_dsm_fetch_work, false,
			     le64_to_cpu(m->pages), page,
			     le32_to_cpu(m->version), m->op, 0);
}

int dvm_handle_dsm_done(struct dvm_cluster *c, struct dvm_conn *conn,
			const struct dvm_wire_msg *msg, const void *payload,
			struct dvm_reply *reply)
{
	const struct dvm_msg_dsm_done *m = payload;
	u64 page = le64_to_cpu(m->page);
	struct dvm_dsm_dir *e;
	struct dvm_dsm *dsm;
	bool ok = false;

	spin_lock(&c->lock);
	dsm = c->dvm->dsm;
	if (dsm && page < dsm->nr_pages &&
	    dvm_dsm_manager(dsm, page) == c->node_id) {
		e = dvm_dsm_dir_entry(dsm, page);
		spin_lock(&dsm->dir_lock);
		ok = e->busy && e->requester == conn->node;
		if (ok) {
			e->busy = false;
			e->requester = KVM_DVM_NO_NODE;
		}
		spin_unlock(&dsm->dir_lock);
		if (ok)
			wake_up_all(&dsm->wq);
	}
	spin_unlock(&c->lock);
	/* A DONE nobody waits for is counted and ignored. */
	if (!ok)
		dvm_dsm_count_rejected(c);
	return 0;
}

/* The memory file */

static struct vfsmount *dvm_dsm_mnt;
static DEFINE_MUTEX(dvm_dsm_mnt_lock);

static int dvm_dsm_init_fs_context(struct fs_context *fc)
{
	return init_pseudo(fc, 0x44564d4d) ? 0 : -ENOMEM;	/* "DVMM" */
}

static struct file_system_type dvm_dsm_fs = {
	.name = "kvm_dvm_memory",
	.init_fs_context = dvm_dsm_init_fs_context,
	.kill_sb = kill_anon_super,
};

static struct vfsmount *dvm_dsm_get_mnt(void)
{
	struct vfsmount *mnt;

	mutex_lock(&dvm_dsm_mnt_lock);
	if (!dvm_dsm_mnt) {
		mnt = kern_mount(&dvm_dsm_fs);
		if (!IS_ERR(mnt))
			dvm_dsm_mnt = mnt;
	}
	mnt = dvm_dsm_mnt ? dvm_dsm_mnt : ERR_PTR(-ENOMEM);
	mutex_unlock(&dvm_dsm_mnt_lock);
	return mnt;
}

static int dvm_dsm_mmap(struct file *file, struct vm_area_struct *vma)
{
	/* A private mapping would copy pages away from coherence. */
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	file_accessed(file);
	vma->vm_ops = &dvm_dsm_vm_ops;
	return 0;
}

static void dvm_dsm_free(struct dvm_dsm *dsm)
{
	if (dsm->mgr_wq)
		destroy_workqueue(dsm->mgr_wq);
	if (dsm->holder_wq)
		destroy_workqueue(dsm->holder_wq);
	kvfree(dsm->pages);
	kvfree(dsm->dir);
	kfree(dsm);
}

/* No request of @dsm may start; those waiting give up. */
static void dvm_dsm_kill(struct dvm_dsm *dsm)
{
	WRITE_ONCE(dsm->dead, true);
	wake_up_all(&dsm->wq);
}

/* Incoming requests no longer find @dsm. */
static void dvm_dsm_unpublish(struct dvm_dsm *dsm)
{
	struct dvm_cluster *c = dsm->c;

	lockdep_assert_held(&dsm->dvm->lock);
	spin_lock(&c->lock);
	dsm->dvm->dsm = NULL;
	spin_unlock(&c->lock);
}

static int dvm_dsm_release(struct inode *inode, struct file *file)
{
	struct dvm_dsm *dsm = file->private_data;
	struct kvm_dvm *dvm = dsm->dvm;
	struct kvm *kvm = dvm->kvm;

	mutex_lock(&dvm->lock);
	/* Still attached: the cluster is still there. */
	if (dvm->dsm == dsm) {
		/*
		 * This node's copies and its part of the directory go with
		 * the file: it is lost to the cluster, as if it had left,
		 * before any request finds the memory gone.
		 */
		dvm_cluster_lost(dsm->c, dsm->c->node_id, -ECONNRESET);
		dvm_dsm_unpublish(dsm);
		dvm_dsm_kill(dsm);
		/*
		 * What waits for a peer ends now (a grant held up by a pin,
		 * a holder's answer): the flushes below must not wait for
		 * them. No DSM request of this cluster starts again.
		 */
		dvm_calls_close_type(dsm->c, DVM_MSG_DSM_REQ, -ENOLINK);
		dvm_calls_close_type(dsm->c, DVM_MSG_DSM_FETCH, -ENOLINK);
	}
	mutex_unlock(&dvm->lock);
	/* Nobody finds it now; the queued requests end. */
	dvm_dsm_kill(dsm);
	flush_workqueue(dsm->mgr_wq);
	flush_workqueue(dsm->holder_wq);
	/* Its pages go with the inode. */
	dvm_stat_add(&kvm->stat.generic.dvm.dsm_pages_held,
		     -atomic_long_read(&dsm->held));
	iput(dsm->inode);
	dvm_dsm_free(dsm);
	kvm_put_kvm(kvm);
	return 0;
}

/*
 * The advice to drop clean pages would drop copies behind the manager's
 * back: the file takes no advice. fallocate() has no method, so it, and
 * madvise(MADV_REMOVE), fail with EOPNOTSUPP.
 */
static int dvm_dsm_fadvise(struct file *file, loff_t offset, loff_t len,
			   int advice)
{
	return 0;
}

static const struct file_operations dvm_dsm_fops = {
	.mmap = dvm_dsm_mmap,
	.release = dvm_dsm_release,
	.llseek = noop_llseek,
	.fadvise = dvm_dsm_fadvise,
};

/*
 * Every node's file has the size the cluster agreed on: ftruncate() and
 * an O_TRUNC open are refused, as for a sealed memfd.
 */
static int dvm_dsm_setattr(struct user_namespace *mnt_userns,
			   struct dentry *dentry, struct iattr *attr)
{
	if (attr->ia_valid & ATTR_SIZE)
		return -EPERM;
	return simple_setattr(mnt_userns, dentry, attr);
}

static const struct inode_operations dvm_dsm_iops = {
	.setattr = dvm_dsm_setattr,
};

/* Pages never leave unless the protocol says so: no reclaim, no move. */
static int dvm_dsm_migrate_folio(struct address_space *mapping,
				 struct folio *dst, struct folio *src,
				 enum migrate_mode mode)
{
	return -EBUSY;
}

static const struct address_space_operations dvm_dsm_aops = {
	.dirty_folio = noop_dirty_folio,
	.migrate_folio = dvm_dsm_migrate_folio,
};

static int dvm_dsm_check_memory(const struct kvm_dvm_memory *m)
{
	int i;

	if (m->flags || m->pad)
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(m->reserved); i++)
		if (m->reserved[i])
			return -EINVAL;
	if (!m->size || !PAGE_ALIGNED(m->size) ||
	    m->size > KVM_DVM_MAX_MEMORY)
		return -EINVAL;
	return 0;
}

/*
 * The metadata, dvm_dsm_page per page and a directory entry per managed
 * page, is allocated up front and charged to the caller; more than a
 * quarter of the host's memory is refused (ENOMEM) rather than left to
 * the OOM killer.
 */
#define DVM_DSM_GFP	(GFP_KERNEL_ACCOUNT | __GFP_NOWARN | __GFP_RETRY_MAYFAIL)

static bool dvm_dsm_metadata_fits(u64 nr_pages, u32 nr_nodes)
{
	u64 bytes = nr_pages * sizeof(struct dvm_dsm_page) +
		    DIV_ROUND_UP(nr_pages, nr_nodes) *
		    sizeof(struct dvm_dsm_dir);

	return bytes <= ((u64)totalram_pages() << PAGE_SHIFT) / 4;
}

static struct dvm_dsm *dvm_dsm_alloc(struct kvm_dvm *dvm, u64 size)
{
	struct dvm_cluster *c = dvm->cluster;
	struct dvm_dsm *dsm;

	if (!dvm_dsm_metadata_fits(size >> PAGE_SHIFT, c->nr_nodes))
		return NULL;

	dsm = kzalloc(sizeof(*dsm), GFP_KERNEL_ACCOUNT);
	if (!dsm)
		return NULL;
	dsm->dvm = dvm;
	dsm->size = size;
	dsm->nr_pages = size >> PAGE_SHIFT;
	dsm->node_id = c->node_id;
	dsm->nr_nodes = c->nr_nodes;
	dsm->c = c;
	init_rwsem(&dsm->c_sem);
	mutex_init(&dsm->unpin_lock);
	spin_lock_init(&dsm->dir_lock);
	init_waitqueue_head(&dsm->wq);
	dsm->pages = kvcalloc(dsm->nr_pages, sizeof(*dsm->pages), DVM_DSM_GFP);
	dsm->dir = kvcalloc(DIV_ROUND_UP(dsm->nr_pages, dsm->nr_nodes),
			    sizeof(*dsm->dir), DVM_DSM_GFP);
	dsm->mgr_wq = alloc_workqueue("kvm-dvm-dsm-mgr", WQ_UNBOUND, 0);
	dsm->holder_wq = alloc_workqueue("kvm-dvm-dsm-holder", WQ_UNBOUND, 0);
	if (!dsm->pages || !dsm->dir || !dsm->mgr_wq || !dsm->holder_wq) {
		dvm_dsm_free(dsm);
		return NULL;
	}
	return dsm;
}

/**
 * dvm_dsm_create - KVM_DVM_CREATE_MEMORY
 * @dvm: the VM's DVM state, its lock held
 * @m: the checked-in argument
 *
 * The caller checked that the cluster is up.
 *
 * Return: a new file descriptor, or -EINVAL, -EEXIST (the VM has its
 * memory), -ENOMEM.
 */
int dvm_dsm_create(struct kvm_dvm *dvm, const struct kvm_dvm_memory *m)
{
	struct dvm_cluster *c = dvm->cluster;
	struct vfsmount *mnt;
	struct dvm_dsm *dsm;
	struct inode *inode;
	struct file *file;
	int fd, r;

	lockdep_assert_held(&dvm->lock);
	r = dvm_dsm_check_memory(m);
	if (r)
		return r;
	/* One memory per cluster: a second would not be coherent with it. */
	if (dvm->dsm || c->has_memory)
		return -EEXIST;
	mnt = dvm_dsm_get_mnt();
	if (IS_ERR(mnt))
		return PTR_ERR(mnt);
	dsm = dvm_dsm_alloc(dvm, m->size);
	if (!dsm)
		return -ENOMEM;

	inode = alloc_anon_inode(mnt->mnt_sb);
	if (IS_ERR(inode)) {
		r = PTR_ERR(inode);
		goto err_free;
	}
	inode->i_mode |= S_IFREG;
	inode->i_op = &dvm_dsm_iops;
	inode->i_size = m->size;
	inode->i_mapping->a_ops = &dvm_dsm_aops;
	mapping_set_unevictable(inode->i_mapping);
	mapping_set_gfp_mask(inode->i_mapping, GFP_HIGHUSER);
	/* Ours until the DSM is freed, after the file. */
	ihold(inode);
	dsm->inode = inode;

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		r = fd;
		goto err_inode;
	}
	file = alloc_file_pseudo(inode, mnt, "kvm-dvm-memory", O_RDWR,
				 &dvm_dsm_fops);
	if (IS_ERR(file)) {
		r = PTR_ERR(file);
		put_unused_fd(fd);
		goto err_inode;
	}
	file->private_data = dsm;
	dsm->file = file;
	kvm_get_kvm(dvm->kvm);
	spin_lock(&c->lock);
	dvm->dsm = dsm;
	c->has_memory = true;
	spin_unlock(&c->lock);
	fd_install(fd, file);
	return fd;

err_inode:
	iput(inode);
	iput(inode);
err_free:
	dvm_dsm_free(dsm);
	return r;
}

static int dvm_dsm_check_pin(struct dvm_dsm *dsm, const struct kvm_dvm_pin *a)
{
	if (a->flags || a->pad || a->reserved[0] || a->reserved[1])
		return -EINVAL;
	if (!a->size || !PAGE_ALIGNED(a->offset) || !PAGE_ALIGNED(a->size) ||
	    a->offset >= dsm->size || a->size > dsm->size - a->offset)
		return -EINVAL;
	return 0;
}

static void dvm_dsm_unpin_range(struct dvm_dsm *dsm, pgoff_t first,
				pgoff_t end)
{
	struct address_space *mapping = dvm_dsm_mapping(dsm);
	struct folio *folio;
	pgoff_t p;

	for (p = first; p < end; p++) {
		folio = filemap_lock_folio(mapping, p);
		if (WARN_ON_ONCE(!folio))
			continue;
		dsm->pages[p].pins--;
		folio_unlock(folio);
		folio_put(folio);
	}
	wake_up_all(&dsm->wq);
}

static int dvm_dsm_pin_page(struct dvm_dsm *dsm, pgoff_t p)
{
	/* Any signal ends the wait: two PINs may wait for each other. */
	struct dvm_dsm_waiter dw = { .interruptible = true };
	struct address_space *mapping = dvm_dsm_mapping(dsm);
	struct dvm_dsm_page *pg = &dsm->pages[p];
	struct folio *folio;
	int r;

	for (;;) {
		folio = filemap_lock_folio(mapping, p);
		if (folio && pg->state == DVM_DSM_MODIFIED) {
			r = pg->pins < KVM_DVM_MAX_PINS ? 0 : -EOVERFLOW;
			if (!r)
				pg->pins++;
			folio_unlock(folio);
			folio_put(folio);
			return r;
		}
		if (folio) {
			folio_unlock(folio);
			folio_put(folio);
		}
		r = dvm_dsm_acquire(dsm, p, true, &dw);
		if (r)
			return r;
	}
}

/*
 * The VM's memory file, referenced, or NULL. Under the VM's DVM lock,
 * which the file's release takes before the file is freed: a file whose
 * last reference is gone already counts as none.
 */
struct file *dvm_dsm_get_file(struct kvm_dvm *dvm)
{
	lockdep_assert_held(&dvm->lock);
	if (!dvm->dsm || !get_file_rcu(dvm->dsm->file))
		return NULL;
	return dvm->dsm->file;
}

/*
 * The VM's memory file, referenced, or NULL: for the work items of the
 * cluster, which cannot take the VM's DVM lock. Under the cluster's lock,
 * which unpublishing the DSM takes.
 */
struct file *dvm_dsm_file_get(struct dvm_cluster *c)
{
	struct dvm_dsm *dsm;
	struct file *file = NULL;

	spin_lock(&c->lock);
	dsm = c->dvm->dsm;
	if (dsm && get_file_rcu(dsm->file))
		file = dsm->file;
	spin_unlock(&c->lock);
	return file;
}

/**
 * dvm_dsm_pin - KVM_DVM_PIN and KVM_DVM_UNPIN
 * @dsm: the VM's DSM, its file referenced by the caller
 * @a: the checked-in argument
 * @pin: pin (else unpin)
 *
 * A pinned page stays Modified here: requests of other nodes for it wait
 * until it is unpinned as often as it was pinned. Runs without the VM's
 * DVM lock: a PIN waits for pages.
 *
 * Return: 0, -EINVAL, -ENOLINK (the cluster broke), -EOVERFLOW (pinned
 * too often), -EINTR (a signal).
 */
int dvm_dsm_pin(struct dvm_dsm *dsm, const struct kvm_dvm_pin *a, bool pin)
{
	pgoff_t p, first, end;
	struct folio *folio;
	int r;

	r = dvm_dsm_check_pin(dsm, a);
	if (r)
		return r;
	first = a->offset >> PAGE_SHIFT;
	end = first + (a->size >> PAGE_SHIFT);
	if (pin) {
		for (p = first; p < end; p++) {
			r = dvm_dsm_pin_page(dsm, p);
			if (r) {
				dvm_dsm_unpin_range(dsm, first, p);
				return r;
			}
		}
		return 0;
	}
	/* All or nothing: every page must be pinned. Never waits. */
	mutex_lock(&dsm->unpin_lock);
	for (p = first; p < end; p++) {
		folio = filemap_lock_folio(dvm_dsm_mapping(dsm), p);
		r = folio && dsm->pages[p].pins ? 0 : -EINVAL;
		if (folio) {
			folio_unlock(folio);
			folio_put(folio);
		}
		if (r)
			break;
	}
	if (!r)
		dvm_dsm_unpin_range(dsm, first, end);
	mutex_unlock(&dsm->unpin_lock);
	return r;
}

/*
 * LEAVE, before it waits for the ioctls using the cluster: whatever waits
 * in the DSM (a PIN's request, a holder's wait for a pin) ends now.
 */
static void dvm_dsm_stop(struct kvm_dvm *dvm)
{
	lockdep_assert_held(&dvm->lock);
	if (dvm->dsm)
		dvm_dsm_kill(dvm->dsm);
}

/* The cluster broke: requests fail from now on. Under c->lock. */
static void dvm_dsm_cluster_broken(struct dvm_cluster *c)
{
	lockdep_assert_held(&c->lock);
	if (c->dvm->dsm)
		dvm_dsm_kill(c->dvm->dsm);
}

/*
 * The cluster goes away: wait until nothing of the DSM uses it. Pages
 * held here stay mapped; faults on the others fail. The file keeps the
 * DSM until it is closed.
 */
static void dvm_dsm_detach(struct kvm_dvm *dvm)
{
	struct dvm_dsm *dsm = dvm->dsm;

	lockdep_assert_held(&dvm->lock);
	if (!dsm)
		return;
	/* Requests of a later cluster must not find it. */
	dvm_dsm_unpublish(dsm);
	dvm_dsm_kill(dsm);
	dvm_calls_close(dsm->c, -ENOLINK);
	flush_workqueue(dsm->mgr_wq);
	flush_workqueue(dsm->holder_wq);
	down_write(&dsm->c_sem);
	dsm->c = NULL;
	up_write(&dsm->c_sem);
}

const struct dvm_subsys dvm_dsm_subsys = {
	.name = "dsm",
	.broken = dvm_dsm_cluster_broken,
	.leave = dvm_dsm_stop,
	.detach = dvm_dsm_detach,
};
