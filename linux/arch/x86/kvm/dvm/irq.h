/* SPDX-License-Identifier: GPL-2.0 */
/*
 * DVM's distributed irqchip, as lapic.c and x86.c call it: interrupts for
 * vCPUs another node runs go to their owner, and userspace's writes to
 * such a vCPU's APIC leave this node's mirror of the owner's alone.
 */
#ifndef __ARCH_X86_KVM_DVM_IRQ_H
#define __ARCH_X86_KVM_DVM_IRQ_H

#include <linux/kvm_host.h>

struct dest_map;
struct kvm_ioapic;

#ifdef CONFIG_KVM_DVM
int kvm_dvm_apic_forward(struct kvm_vcpu *vcpu, struct kvm_lapic_irq *irq,
			 struct dest_map *dest_map);
int kvm_dvm_inject_remote(struct kvm_vcpu *vcpu, u32 delivery_mode);
bool kvm_dvm_apic_write_ignored(struct kvm_vcpu *vcpu);
void kvm_dvm_ioapic_changed(struct kvm_ioapic *ioapic, int pin);
bool kvm_dvm_ioapic_eoi(struct kvm_vcpu *vcpu, int vector, int trigger_mode);
bool kvm_dvm_irqchip_dummy(struct kvm *kvm);
bool kvm_dvm_irqchip_write_ignored(struct kvm *kvm);
#else
static inline int kvm_dvm_apic_forward(struct kvm_vcpu *vcpu,
				       struct kvm_lapic_irq *irq,
				       struct dest_map *dest_map)
{
	return 0;
}

static inline int kvm_dvm_inject_remote(struct kvm_vcpu *vcpu,
					u32 delivery_mode)
{
	return -EINVAL;
}

static inline bool kvm_dvm_apic_write_ignored(struct kvm_vcpu *vcpu)
{
	return false;
}

static inline void kvm_dvm_ioapic_changed(struct kvm_ioapic *ioapic, int pin)
{
}

static inline bool kvm_dvm_ioapic_eoi(struct kvm_vcpu *vcpu, int vector,
				      int trigger_mode)
{
	return false;
}

static inline bool kvm_dvm_irqchip_dummy(struct kvm *kvm)
{
	return false;
}

static inline bool kvm_dvm_irqchip_write_ignored(struct kvm *kvm)
{
	return false;
}
#endif

#endif /* __ARCH_X86_KVM_DVM_IRQ_H */
