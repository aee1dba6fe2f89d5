// SPDX-License-Identifier: GPL-2.0
/*
 * DVM on x86: what must be the same in every node's copy of a vCPU,
 * compared by node 0 at placement (virt/kvm/dvm/placement.c), and a
 * vCPU's reset when node 0 resets the VM (virt/kvm/dvm/lifecycle.c).
 */
#include <linux/jhash.h>
#include <linux/kvm_host.h>

#include "../x86.h"
#include "../lapic.h"
#include "../mmu.h"
#include "../../../../virt/kvm/dvm/dvm.h"

/*
 * Bits KVM itself changes as the guest runs (kvm_update_cpuid_runtime():
 * OSXSAVE, APIC, OSPKE, MWAIT, XSAVE sizes) say nothing about how the
 * vCPU was configured: they are left out.
 */
static void dvm_cpuid_mask_runtime(struct kvm_cpuid_entry2 *e)
{
	switch (e->function) {
	case 0x1:
		e->ecx &= ~(BIT(27) | BIT(3));	/* OSXSAVE, MWAIT */
		e->edx &= ~BIT(9);		/* APIC */
		break;
	case 0x7:
		if (!e->index)
			e->ecx &= ~BIT(4);	/* OSPKE */
		break;
	case 0xd:
		if (e->index <= 1)
			e->ebx = 0;		/* XSAVE area sizes */
		break;
	}
}

/* Independent of the entries' order, which KVM does not care about. */
static u32 dvm_cpuid_hash(const struct kvm_cpuid_entry2 *entries, int nent)
{
	struct kvm_cpuid_entry2 e;
	u32 words[7], sum = 0;
	int i;

	for (i = 0; i < nent; i++) {
		e = entries[i];
		dvm_cpuid_mask_runtime(&e);
		words[0] = e.function;
		words[1] = e.index;
		words[2] = e.flags;
		words[3] = e.eax;
		words[4] = e.ebx;
		words[5] = e.ecx;
		words[6] = e.edx;
		sum += jhash2(words, ARRAY_SIZE(words), 0);
	}
	return jhash_2words(sum, nent, 0);
}

/**
 * dvm_arch_vcpu_id - what must be the same in every copy of @vcpu
 * @vcpu: a vCPU of this node
 * @id: filled in: a hash of its CPUID entries, its TSC rate (0 if KVM
 *	catches it up in software: a rate beyond KVM's tolerance of the
 *	host's, without TSC scaling)
 *
 * Return: 0, or -EINTR when killed waiting for the vCPU's mutex.
 */
int dvm_arch_vcpu_id(struct kvm_vcpu *vcpu, struct dvm_vcpu_id *id)
{
	if (mutex_lock_killable(&vcpu->mutex))
		return -EINTR;
	id->cpuid_hash = dvm_cpuid_hash(vcpu->arch.cpuid_entries,
					vcpu->arch.cpuid_nent);
	/* A rate KVM keeps up in software (no scaling) cannot be aligned. */
	id->tsc_khz = vcpu->arch.tsc_always_catchup ? 0 :
		      vcpu->arch.virtual_tsc_khz;
	mutex_unlock(&vcpu->mutex);
	return 0;
}

/**
 * dvm_arch_vcpu_reset - put a vCPU in the state of a processor reset
 * @vcpu: a vCPU this node runs, its mutex held, not loaded
 *
 * KVM's INIT (what RESET and INIT share: registers, segments, EFER, CR4,
 * the APIC's registers, pending events) and what only RESET does: the
 * APIC's base MSR and ID, caches off (CR0.CD and NW), application
 * processors waiting for INIT and SIPI. KVM's own RESET is only for vCPUs
 * that never ran. An exit being completed belongs to the run before the
 * reset and is dropped. The TSC follows node 0's when the VM resumes.
 */
void dvm_arch_vcpu_reset(struct kvm_vcpu *vcpu)
{
	int idx;

	vcpu_load(vcpu);
	idx = srcu_read_lock(&vcpu->kvm->srcu);
	vcpu->arch.complete_userspace_io = NULL;
	vcpu->mmio_needed = 0;
	vcpu->arch.pio.count = 0;
	/* DVM VMs have no SMM (dvm.rst); a reset leaves it anyway. */
	vcpu->arch.hflags &= ~(HF_SMM_MASK | HF_SMM_INSIDE_NMI_MASK);
	kvm_vcpu_reset(vcpu, true);
	kvm_lapic_reset(vcpu, false);
	if (vcpu->arch.apic)
		vcpu->arch.apic->pending_events = 0;
	WARN_ON_ONCE(kvm_set_cr0(vcpu, X86_CR0_ET | X86_CR0_CD | X86_CR0_NW));
	vcpu->arch.mp_state = kvm_vcpu_is_reset_bsp(vcpu) ?
			      KVM_MP_STATE_RUNNABLE :
			      KVM_MP_STATE_UNINITIALIZED;
	kvm_mmu_reset_context(vcpu);
	kvm_make_request(KVM_REQ_EVENT, vcpu);
	srcu_read_unlock(&vcpu->kvm->srcu, idx);
	vcpu_put(vcpu);
}
