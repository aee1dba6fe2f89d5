// SPDX-License-Identifier: GPL-2.0
/*
 * DVM: node 0's guest memory map on every node. See
 * Documentation/virt/kvm/dvm.rst, "The guest memory map".
 *
 * With KVM_DVM_JOIN_FORWARD_IO node 0's VMM owns the memory map: its
 * device models move memory as the guest programs them (PAM, SMRAM, PCI
 * BARs, ROMs). From the join on, each of its KVM_SET_USER_MEMORY_REGION
 * maps part of the VM's memory file, or deletes a slot. Once node 0 made
 * the change, it sends it (DVM_MSG_MEMSLOT: slot, flags, guest address,
 * size, file offset) to every other node and returns only when all have
 * it: an access that made node 0's VMM move memory completes after every
 * node has the new map.
 *
 * The other nodes refuse their own VMM's slots. Each keeps node 0's table,
 * changed in the order node 0 made the changes (one work item), and from
 * its placement on applies it, at the address where its VMM mapped the
 * memory file.
 */
#include <linux/kvm_host.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

#include "dvm.h"

#define DVM_MEMSLOT_ENTRIES	(KVM_ADDRESS_SPACE_NUM * KVM_USER_MEM_SLOTS)
#define DVM_MEMSLOT_FLAGS	(KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY)

/* A change node 0 sent, waiting for the work item. */
struct dvm_memslot_update {
	struct list_head list;
	struct dvm_msg_memslot m;
	u32 from;
	u64 req_id;
	struct dvm_cluster *on;	/* valid until LEAVE flushed the work */
};

/* One slot of node 0's table, as it made it. */
struct dvm_memslot {
	bool used;
	u32 flags;
	u64 gpa;
	u64 size;
	u64 offset;		/* in the memory file */
};

/**
 * struct dvm_memslots - node 0's memory map
 * @mutex: node 0: one change at a time, sent in the order made; other
 *	nodes: @table and @applied
 * @lock: @queue, @stopped
 * @queue: changes received, in order
 * @work: applies them, one after the other
 * @applied: the table is in KVM's slots (from the placement on)
 * @stopped: LEAVE flushed @work: changes are refused until a new JOIN
 * @table: by address space and slot
 */
struct dvm_memslots {
	struct mutex mutex;	/* see above */
	spinlock_t lock;	/* see above */
	struct list_head queue;
	struct work_struct work;
	bool applied;
	bool stopped;
	struct dvm_memslot table[DVM_MEMSLOT_ENTRIES];
};

static struct kvm_dvm_vm_stat *dvm_memslot_stats(struct kvm_dvm *dvm)
{
	return &dvm->kvm->stat.generic.dvm;
}

/* KVM's slot number of table entry @i: address space in bits 16 on. */
static u32 dvm_memslot_id(u32 i)
{
	return (i / KVM_USER_MEM_SLOTS) << 16 | (i % KVM_USER_MEM_SLOTS);
}

/* The table entry of KVM's slot number, or -1. */
static int dvm_memslot_index(u32 slot)
{
	u32 as = slot >> 16, id = (u16)slot;

	if (as >= KVM_ADDRESS_SPACE_NUM || id >= KVM_USER_MEM_SLOTS)
		return -1;
	return as * KVM_USER_MEM_SLOTS + id;
}

/* Node 0: where in the memory file the slot's memory is. */
static int dvm_memslot_offset(struct file *file,
			      const struct kvm_userspace_memory_region *mem,
			      u64 *offset)
{
	unsigned long hva = mem->userspace_addr;
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	int r = -EXDEV;

	if (!file)
		return -ENXIO;
	if (hva != mem->userspace_addr || hva + mem->memory_size < hva)
		return -EINVAL;
	mmap_read_lock(mm);
	vma = vma_lookup(mm, hva);
	if (vma && vma->vm_file == file &&
	    mem->memory_size <= vma->vm_end - hva) {
		*offset = ((u64)vma->vm_pgoff << PAGE_SHIFT) +
			  (hva - vma->vm_start);
		r = 0;
	}
	mmap_read_unlock(mm);
	return r;
}

/* Node 0: the change to every other node, which all apply it. */
static int dvm_memslot_send(struct kvm_dvm *dvm, struct dvm_cluster *c,
			    const struct dvm_msg_memslot *m)
{
	struct kvm_dvm_vm_stat *st = dvm_memslot_stats(dvm);
	u64 start = ktime_get_ns();
	u32 failed;
	int r;

	r = dvm_call_others(c, DVM_MSG_MEMSLOT, m, sizeof(*m), NULL, NULL,
			    &failed);
	if (!r) {
		dvm_stat_add(&st->memslot_updates, 1);
		dvm_stat_max(&st->memslot_max_ns, ktime_get_ns() - start);
	}
	return r;
}

/**
 * dvm_memslot_set - KVM_SET_USER_MEMORY_REGION of node 0, which forwards
 * @dvm: the VM's DVM state, JOINED or RUNNING
 * @c: its cluster, in use by the caller
 * @file: the memory file, referenced, or NULL when none was created
 * @mem: the slot
 *
 * Return: 0 once every node has the change; -ENXIO without a memory file,
 * -EXDEV for memory outside it; KVM's errno; a node's (the change stays
 * made here: the VM cannot go on); -EINTR on a fatal signal.
 */
int dvm_memslot_set(struct kvm_dvm *dvm, struct dvm_cluster *c,
		    struct file *file,
		    const struct kvm_userspace_memory_region *mem)
{
	struct dvm_memslots *ms = dvm->memslots;
	struct dvm_msg_memslot m = {
		.slot = cpu_to_le32(mem->slot),
		.flags = cpu_to_le32(mem->flags),
		.gpa = cpu_to_le64(mem->guest_phys_addr),
		.size = cpu_to_le64(mem->memory_size),
	};
	u64 offset = 0;
	int r;

	if (mem->memory_size) {
		r = dvm_memslot_offset(file, mem, &offset);
		if (r)
			return r;
		m.offset = cpu_to_le64(offset);
	} else {
		m.flags = 0;
		m.gpa = 0;
	}
	r = mutex_lock_killable(&ms->mutex);
	if (r)
		return r;
	r = kvm_set_memory_region(dvm->kvm, mem);
	if (!r)
		r = dvm_memslot_send(dvm, c, &m);
	mutex_unlock(&ms->mutex);
	return r;
}

/*
 * Other nodes: where their VMM mapped @size bytes of the memory file at
 * @offset, in one mapping. Return: 0, or -ENXIO when it did not.
 */
static int dvm_memslot_hva(struct kvm_dvm *dvm, struct dvm_cluster *c,
			   u64 offset, u64 size, unsigned long *hva)
{
	struct mm_struct *mm = dvm->kvm->mm;
	struct vm_area_struct *vma;
	struct file *file;
	u64 start, len;
	int r = -ENXIO;

	file = dvm_dsm_file_get(c);
	if (!file)
		return -ENXIO;
	if (!mmget_not_zero(mm)) {
		fput(file);
		return -ENXIO;
	}
	mmap_read_lock(mm);
	{
		VMA_ITERATOR(vmi, mm, 0);

		for_each_vma(vmi, vma) {
			if (vma->vm_file != file)
				continue;
			start = (u64)vma->vm_pgoff << PAGE_SHIFT;
			len = vma->vm_end - vma->vm_start;
			if (offset >= start && offset - start <= len &&
			    size <= len - (offset - start)) {
				*hva = vma->vm_start + (offset - start);
				r = 0;
				break;
			}
		}
	}
	mmap_read_unlock(mm);
	mmput(mm);
	fput(file);
	return r;
}

/* Other nodes: table entry @i into KVM's slots. */
static int dvm_memslot_apply(struct kvm_dvm *dvm, struct dvm_cluster *c,
			     u32 i)
{
	const struct dvm_memslot *e = &dvm->memslots->table[i];
	struct kvm_userspace_memory_region mem = {
		.slot = dvm_memslot_id(i),
	};
	unsigned long hva;
	int r;

	if (e->used) {
		r = dvm_memslot_hva(dvm, c, e->offset, e->size, &hva);
		if (r)
			return r;
		mem.flags = e->flags;
		mem.guest_phys_addr = e->gpa;
		mem.memory_size = e->size;
		mem.userspace_addr = hva;
	}
	r = kvm_set_memory_region(dvm->kvm, &mem);
	if (!r)
		dvm_stat_add(&dvm_memslot_stats(dvm)->memslot_updates, 1);
	return r;
}

/* Other nodes: node 0's change in the table, and in KVM once placed. */
static int dvm_memslot_change(struct kvm_dvm *dvm, struct dvm_cluster *c,
			      const struct dvm_msg_memslot *m)
{
	struct dvm_memslots *ms = dvm->memslots;
	int i = dvm_memslot_index(le32_to_cpu(m->slot));
	struct dvm_memslot *e = &ms->table[i];
	struct dvm_memslot old = *e;
	int r = 0;

	lockdep_assert_held(&ms->mutex);
	/* A slot node 0 made before the join is not node 0's map here. */
	if (!m->size && !e->used)
		return 0;
	e->used = m->size != 0;
	e->flags = le32_to_cpu(m->flags);
	e->gpa = le64_to_cpu(m->gpa);
	e->size = le64_to_cpu(m->size);
	e->offset = le64_to_cpu(m->offset);
	if (ms->applied)
		r = dvm_memslot_apply(dvm, c, i);
	if (r)
		*e = old;
	return r;
}

/* Other nodes: node 0's changes, in the order they came. */
static void dvm_memslot_work(struct work_struct *work)
{
	struct dvm_memslots *ms = container_of(work, struct dvm_memslots,
					       work);
	struct dvm_memslot_update *u;
	struct kvm_dvm *dvm;
	int r;

	for (;;) {
		spin_lock(&ms->lock);
		u = list_first_entry_or_null(&ms->queue,
					     struct dvm_memslot_update, list);
		if (u)
			list_del(&u->list);
		spin_unlock(&ms->lock);
		if (!u)
			return;
		dvm = u->on->dvm;
		mutex_lock(&ms->mutex);
		r = dvm_memslot_change(dvm, u->on, &u->m);
		mutex_unlock(&ms->mutex);
		dvm_reply(u->on, u->from, DVM_MSG_MEMSLOT, u->req_id, r,
			  NULL, 0);
		kfree(u);
	}
}

static bool dvm_memslot_msg_ok(const struct dvm_msg_memslot *m)
{
	u32 flags = le32_to_cpu(m->flags);
	u64 gpa = le64_to_cpu(m->gpa), size = le64_to_cpu(m->size);
	u64 offset = le64_to_cpu(m->offset);

	if (dvm_memslot_index(le32_to_cpu(m->slot)) < 0)
		return false;
	if (!size)
		return !flags && !gpa && !offset;
	return !(flags & ~DVM_MEMSLOT_FLAGS) && PAGE_ALIGNED(gpa) &&
	       PAGE_ALIGNED(size) && PAGE_ALIGNED(offset) &&
	       gpa + size > gpa && offset + size > offset;
}

/*
 * DVM_MSG_MEMSLOT on a node other than 0: node 0's change, put in the
 * table in order by the work item, which answers. It may come before this
 * node's JOIN returned. Refused (-EINVAL) when malformed or not from
 * node 0.
 */
int dvm_handle_memslot(struct dvm_cluster *c, struct dvm_conn *conn,
		       const struct dvm_wire_msg *msg, const void *payload,
		       struct dvm_reply *reply)
{
	struct dvm_memslots *ms = c->dvm->memslots;
	struct dvm_memslot_update *u;

	if (!c->node_id || conn->node || !dvm_memslot_msg_ok(payload))
		return -EINVAL;
	u = kmalloc(sizeof(*u), GFP_KERNEL_ACCOUNT);
	if (!u)
		return -ENOMEM;
	memcpy(&u->m, payload, sizeof(u->m));
	u->from = conn->node;
	u->req_id = msg->req_id;
	u->on = c;
	spin_lock(&ms->lock);
	if (ms->stopped) {
		spin_unlock(&ms->lock);
		kfree(u);
		return -ENOLINK;
	}
	list_add_tail(&u->list, &ms->queue);
	spin_unlock(&ms->lock);
	queue_work(system_unbound_wq, &ms->work);
	return DVM_REPLY_LATER;
}

/**
 * dvm_memslot_place - at placement, nodes other than 0: node 0's map
 *	into KVM's slots
 * @dvm: the VM's DVM state
 * @c: its cluster, in use by the caller
 *
 * Return: 0, or the first slot's errno (-ENXIO: the VMM did not map the
 * memory file where node 0's slots are).
 */
static int dvm_memslot_place(struct kvm_dvm *dvm, struct dvm_cluster *c)
{
	struct dvm_memslots *ms = dvm->memslots;
	int r = 0;
	u32 i;

	if (!c->node_id || !dvm->forward_io)
		return 0;
	mutex_lock(&ms->mutex);
	for (i = 0; i < DVM_MEMSLOT_ENTRIES && !r; i++)
		if (ms->table[i].used)
			r = dvm_memslot_apply(dvm, c, i);
	ms->applied = !r;
	mutex_unlock(&ms->mutex);
	return r;
}

static int dvm_memslots_alloc(struct kvm_dvm *dvm)
{
	struct dvm_memslots *ms;

	ms = kvzalloc(sizeof(*ms), GFP_KERNEL_ACCOUNT);
	if (!ms)
		return -ENOMEM;
	mutex_init(&ms->mutex);
	spin_lock_init(&ms->lock);
	INIT_LIST_HEAD(&ms->queue);
	INIT_WORK(&ms->work, dvm_memslot_work);
	dvm->memslots = ms;
	return 0;
}

/* A JOIN starts from an empty table. */
static void dvm_memslots_start(struct kvm_dvm *dvm)
{
	struct dvm_memslots *ms = dvm->memslots;

	mutex_lock(&ms->mutex);
	memset(ms->table, 0, sizeof(ms->table));
	ms->applied = false;
	mutex_unlock(&ms->mutex);
	spin_lock(&ms->lock);
	ms->stopped = false;
	spin_unlock(&ms->lock);
}

/*
 * LEAVE, before the cluster is freed: the changes not applied yet are
 * dropped (their node waits no more), and none is taken any more. The
 * slots made stay KVM's.
 */
static void dvm_memslots_stop(struct kvm_dvm *dvm)
{
	struct dvm_memslots *ms = dvm->memslots;
	struct dvm_memslot_update *u, *n;
	LIST_HEAD(dropped);

	if (!ms)
		return;
	spin_lock(&ms->lock);
	ms->stopped = true;
	list_splice_init(&ms->queue, &dropped);
	spin_unlock(&ms->lock);
	cancel_work_sync(&ms->work);
	list_for_each_entry_safe(u, n, &dropped, list)
		kfree(u);
}

static void dvm_memslots_free(struct kvm_dvm *dvm)
{
	dvm_memslots_stop(dvm);
	kvfree(dvm->memslots);
	dvm->memslots = NULL;
}

const struct dvm_subsys dvm_memslot_subsys = {
	.name = "memslot",
	.vm_init = dvm_memslots_alloc,
	.vm_free = dvm_memslots_free,
	.join = dvm_memslots_start,
	.place = dvm_memslot_place,
	.detach = dvm_memslots_stop,
};
