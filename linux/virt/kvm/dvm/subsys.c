// SPDX-License-Identifier: GPL-2.0
/*
 * DVM: the subsystems that take part in a VM's and its clusters' lives,
 * and the walks over their hooks (struct dvm_subsys in dvm.h).
 *
 * The order matters where one subsystem uses another: the DSM comes
 * first because every other one may move pages, and it is detached last;
 * the clock is started after the lifecycle state is reset for the VM
 * that is being placed.
 */
#include <linux/kvm_host.h>

#include "dvm.h"

static const struct dvm_subsys *const dvm_subsystems[] = {
	&dvm_dsm_subsys,
	&dvm_irq_queue_subsys,
	&dvm_apic_subsys,
	&dvm_io_subsys,
	&dvm_vm_ctl_subsys,
	&dvm_clock_subsys,
	&dvm_memslot_subsys,
};

/* The @i-th subsystem in the table's order, NULL past the last. */
static const struct dvm_subsys *dvm_subsys_fwd(unsigned int i)
{
	return i < ARRAY_SIZE(dvm_subsystems) ? dvm_subsystems[i] : NULL;
}

/* The @i-th subsystem in reverse order, NULL past the first. */
static const struct dvm_subsys *dvm_subsys_rev(unsigned int i)
{
	unsigned int n = ARRAY_SIZE(dvm_subsystems);

	return i < n ? dvm_subsystems[n - 1 - i] : NULL;
}

/* Names the subsystem whose hook failed (dynamic debug: kvm-dvm subsys). */
static int dvm_subsys_check(const struct dvm_subsys *s, const char *hook,
			    int r)
{
	if (r)
		pr_debug("kvm-dvm: %s: %s failed: %d\n", s->name, hook, r);
	return r;
}

/* Return: 0, or -ENOMEM with nothing of the VM's DVM state left made. */
int dvm_subsys_vm_init(struct kvm_dvm *dvm)
{
	const struct dvm_subsys *s;
	unsigned int i;
	int r = 0;

	for (i = 0; !r && (s = dvm_subsys_fwd(i)); i++)
		if (s->vm_init)
			r = dvm_subsys_check(s, "vm_init",
					     s->vm_init(dvm));
	if (r)
		dvm_subsys_vm_free(dvm);
	return r;
}

void dvm_subsys_vm_free(struct kvm_dvm *dvm)
{
	const struct dvm_subsys *s;
	unsigned int i;

	for (i = 0; (s = dvm_subsys_rev(i)); i++)
		if (s->vm_free)
			s->vm_free(dvm);
}

void dvm_subsys_join(struct kvm_dvm *dvm)
{
	const struct dvm_subsys *s;
	unsigned int i;

	for (i = 0; (s = dvm_subsys_fwd(i)); i++)
		if (s->join)
			s->join(dvm);
}

/* On failure the cluster's destruction frees what was made. */
int dvm_subsys_cluster_init(struct dvm_cluster *c)
{
	const struct dvm_subsys *s;
	unsigned int i;
	int r = 0;

	for (i = 0; !r && (s = dvm_subsys_fwd(i)); i++)
		if (s->cluster_init)
			r = dvm_subsys_check(s, "cluster_init",
					     s->cluster_init(c));
	return r;
}

void dvm_subsys_cluster_free(struct dvm_cluster *c)
{
	const struct dvm_subsys *s;
	unsigned int i;

	for (i = 0; (s = dvm_subsys_rev(i)); i++)
		if (s->cluster_free)
			s->cluster_free(c);
}

int dvm_subsys_place(struct kvm_dvm *dvm, struct dvm_cluster *c)
{
	const struct dvm_subsys *s;
	unsigned int i;
	int r = 0;

	for (i = 0; !r && (s = dvm_subsys_fwd(i)); i++)
		if (s->place)
			r = dvm_subsys_check(s, "place",
					     s->place(dvm, c));
	return r;
}

int dvm_subsys_commit(struct kvm_dvm *dvm)
{
	const struct dvm_subsys *s;
	unsigned int i;
	int r = 0;

	lockdep_assert_held(&dvm->lock);
	for (i = 0; !r && (s = dvm_subsys_fwd(i)); i++)
		if (s->commit)
			r = dvm_subsys_check(s, "commit",
					     s->commit(dvm));
	return r;
}

void dvm_subsys_placed(struct kvm_dvm *dvm, struct dvm_cluster *c)
{
	const struct dvm_subsys *s;
	unsigned int i;

	for (i = 0; (s = dvm_subsys_fwd(i)); i++)
		if (s->placed)
			s->placed(dvm, c);
}

void dvm_subsys_broken(struct dvm_cluster *c)
{
	const struct dvm_subsys *s;
	unsigned int i;

	lockdep_assert_held(&c->lock);
	for (i = 0; (s = dvm_subsys_rev(i)); i++)
		if (s->broken)
			s->broken(c);
}

void dvm_subsys_wake(struct kvm_dvm *dvm)
{
	const struct dvm_subsys *s;
	unsigned int i;

	for (i = 0; (s = dvm_subsys_fwd(i)); i++)
		if (s->wake)
			s->wake(dvm);
}

void dvm_subsys_leave(struct kvm_dvm *dvm)
{
	const struct dvm_subsys *s;
	unsigned int i;

	lockdep_assert_held(&dvm->lock);
	for (i = 0; (s = dvm_subsys_rev(i)); i++)
		if (s->leave)
			s->leave(dvm);
}

void dvm_subsys_detach(struct kvm_dvm *dvm)
{
	const struct dvm_subsys *s;
	unsigned int i;

	lockdep_assert_held(&dvm->lock);
	for (i = 0; (s = dvm_subsys_rev(i)); i++)
		if (s->detach)
			s->detach(dvm);
}
