/* SPDX-License-Identifier: GPL-2.0 */
/*
 * DVM hooks called from generic and arch KVM code, and DVM's VM
 * statistics. Everything else of DVM lives in virt/kvm/dvm/.
 */
#ifndef __LINUX_KVM_DVM_HOOKS_H
#define __LINUX_KVM_DVM_HOOKS_H

#include <linux/errno.h>
#include <linux/types.h>
#include <uapi/linux/kvm_dvm.h>

struct kvm;
struct kvm_vcpu;
struct kvm_userspace_memory_region;

/* Per-kind arrays in the statistics: KVM_DVM_STAT_MSG_* (uapi). */
#define KVM_DVM_STAT_TYPES	KVM_DVM_STAT_MSG_KINDS

#ifdef CONFIG_KVM_DVM

/* What KVM_CHECK_EXTENSION(KVM_CAP_DVM) reports. */
#define KVM_DVM_CAPS							\
	(KVM_DVM_CAP_CLUSTER | KVM_DVM_CAP_MEMORY | KVM_DVM_CAP_EXIT_INFO |\
	 KVM_DVM_CAP_VCPU_MAP | KVM_DVM_CAP_IRQCHIP | KVM_DVM_CAP_IO |	\
	 KVM_DVM_CAP_VM_CONTROL | KVM_DVM_CAP_MEMSLOTS |		\
	 (IS_ENABLED(CONFIG_KVM_DVM_RDMA) ? KVM_DVM_CAP_RDMA : 0))

struct kvm_dvm_vm_stat {
	u64 tx_msgs[KVM_DVM_STAT_TYPES];
	u64 rx_msgs[KVM_DVM_STAT_TYPES];
	u64 tx_bytes[KVM_DVM_STAT_TYPES];
	u64 rx_bytes[KVM_DVM_STAT_TYPES];
	u64 malformed;
	u64 auth_failures;
	u64 peers_lost;
	u64 rtt_min_ns;
	u64 rtt_max_ns;
	u64 rtt_sum_ns;
	u64 rtt_count;
	/* DSM */
	u64 dsm_read_faults;
	u64 dsm_write_faults;
	u64 dsm_upgrades;
	u64 dsm_remote_fetches;
	u64 dsm_zero_fills;
	u64 dsm_inv_sent;
	u64 dsm_inv_recv;
	u64 dsm_bytes_in;
	u64 dsm_bytes_out;
	u64 dsm_pages_held;
	u64 dsm_rejected;
	u64 dsm_fault_min_ns;
	u64 dsm_fault_max_ns;
	u64 dsm_fault_sum_ns;
	u64 dsm_fault_count;
	u64 dsm_handed_over;
	u64 dsm_holds;
	u64 dsm_shadow_zaps;
	u64 late_replies;
	/* distributed irqchip */
	u64 irq_sent[KVM_DVM_STAT_IRQ_MODES];
	u64 irq_received[KVM_DVM_STAT_IRQ_MODES];
	u64 irq_rejected;
	u64 irq_queue_full;
	u64 irq_queue_hwm;
	u64 apic_mirror_sent;
	u64 apic_mirror_applied;
	u64 apic_writes_ignored;
	u64 eoi_sent;
	u64 eoi_received;
	u64 ioapic_rte_sent;
	u64 ioapic_rte_applied;
	u64 irqchip_dropped;
	/* I/O forwarding */
	u64 io_forwarded[KVM_DVM_STAT_IO_KINDS];
	u64 io_proxied[KVM_DVM_STAT_IO_KINDS];
	u64 io_in_kernel;
	u64 io_rejected;
	u64 io_interrupted;
	u64 io_rtt_min_ns;
	u64 io_rtt_max_ns;
	u64 io_rtt_sum_ns;
	u64 io_rtt_count;
	/* clock alignment with node 0 */
	u64 clock_checks;
	u64 clock_steps;
	u64 clock_ahead;
	u64 clock_failed;
	u64 clock_offset_ns;
	u64 clock_error_ns;
	u64 clock_error_max_ns;
	u64 clock_rtt_ns;
	/* VM lifecycle */
	u64 vm_pauses;
	u64 vm_resumes;
	u64 vm_resets;
	u64 vm_poweroffs;
	u64 vm_parked;
	u64 vm_vcpu_resets;
	/* node 0's memory map */
	u64 memslot_updates;
	u64 memslot_max_ns;
};

#define KVM_DVM_STATS_DESC(field, type, unit, exp, sz)			\
	{								\
		{							\
			STATS_DESC_COMMON(type, unit, KVM_STATS_BASE_POW10,\
					  exp, sz, 0),			\
			.offset = offsetof(struct kvm_vm_stat,		\
					   generic.dvm.field)		\
		},							\
		.name = "dvm_" #field,					\
	}

#define KVM_DVM_STATS_COUNTERS(field, unit)				\
	KVM_DVM_STATS_DESC(field, KVM_STATS_TYPE_CUMULATIVE, unit, 0,	\
			   KVM_DVM_STAT_TYPES)

#define KVM_DVM_STATS_COUNT(field)					\
	KVM_DVM_STATS_DESC(field, KVM_STATS_TYPE_CUMULATIVE,		\
			   KVM_STATS_UNIT_NONE, 0, 1)

/* Appended to KVM_GENERIC_VM_STATS(), hence the leading comma. */
#define KVM_DVM_VM_STATS()						\
	, KVM_DVM_STATS_COUNTERS(tx_msgs, KVM_STATS_UNIT_NONE),		\
	KVM_DVM_STATS_COUNTERS(rx_msgs, KVM_STATS_UNIT_NONE),		\
	KVM_DVM_STATS_COUNTERS(tx_bytes, KVM_STATS_UNIT_BYTES),		\
	KVM_DVM_STATS_COUNTERS(rx_bytes, KVM_STATS_UNIT_BYTES),		\
	KVM_DVM_STATS_DESC(malformed, KVM_STATS_TYPE_CUMULATIVE,	\
			   KVM_STATS_UNIT_NONE, 0, 1),			\
	KVM_DVM_STATS_DESC(auth_failures, KVM_STATS_TYPE_CUMULATIVE,	\
			   KVM_STATS_UNIT_NONE, 0, 1),			\
	KVM_DVM_STATS_DESC(peers_lost, KVM_STATS_TYPE_CUMULATIVE,	\
			   KVM_STATS_UNIT_NONE, 0, 1),			\
	KVM_DVM_STATS_DESC(rtt_min_ns, KVM_STATS_TYPE_INSTANT,		\
			   KVM_STATS_UNIT_SECONDS, -9, 1),		\
	KVM_DVM_STATS_DESC(rtt_max_ns, KVM_STATS_TYPE_PEAK,		\
			   KVM_STATS_UNIT_SECONDS, -9, 1),		\
	KVM_DVM_STATS_DESC(rtt_sum_ns, KVM_STATS_TYPE_CUMULATIVE,	\
			   KVM_STATS_UNIT_SECONDS, -9, 1),		\
	KVM_DVM_STATS_DESC(rtt_count, KVM_STATS_TYPE_CUMULATIVE,	\
			   KVM_STATS_UNIT_NONE, 0, 1),			\
	KVM_DVM_STATS_COUNT(dsm_read_faults),				\
	KVM_DVM_STATS_COUNT(dsm_write_faults),				\
	KVM_DVM_STATS_COUNT(dsm_upgrades),				\
	KVM_DVM_STATS_COUNT(dsm_remote_fetches),			\
	KVM_DVM_STATS_COUNT(dsm_zero_fills),				\
	KVM_DVM_STATS_COUNT(dsm_inv_sent),				\
	KVM_DVM_STATS_COUNT(dsm_inv_recv),				\
	KVM_DVM_STATS_DESC(dsm_bytes_in, KVM_STATS_TYPE_CUMULATIVE,	\
			   KVM_STATS_UNIT_BYTES, 0, 1),			\
	KVM_DVM_STATS_DESC(dsm_bytes_out, KVM_STATS_TYPE_CUMULATIVE,	\
			   KVM_STATS_UNIT_BYTES, 0, 1),			\
	KVM_DVM_STATS_DESC(dsm_pages_held, KVM_STATS_TYPE_INSTANT,	\
			   KVM_STATS_UNIT_NONE, 0, 1),			\
	KVM_DVM_STATS_COUNT(dsm_rejected),				\
	KVM_DVM_STATS_DESC(dsm_fault_min_ns, KVM_STATS_TYPE_INSTANT,	\
			   KVM_STATS_UNIT_SECONDS, -9, 1),		\
	KVM_DVM_STATS_DESC(dsm_fault_max_ns, KVM_STATS_TYPE_PEAK,	\
			   KVM_STATS_UNIT_SECONDS, -9, 1),		\
	KVM_DVM_STATS_DESC(dsm_fault_sum_ns, KVM_STATS_TYPE_CUMULATIVE,	\
			   KVM_STATS_UNIT_SECONDS, -9, 1),		\
	KVM_DVM_STATS_COUNT(dsm_fault_count),				\
	KVM_DVM_STATS_COUNT(dsm_handed_over),				\
	KVM_DVM_STATS_COUNT(dsm_holds),					\
	KVM_DVM_STATS_COUNT(dsm_shadow_zaps),				\
	KVM_DVM_STATS_COUNT(late_replies),				\
	KVM_DVM_STATS_DESC(irq_sent, KVM_STATS_TYPE_CUMULATIVE,		\
			   KVM_STATS_UNIT_NONE, 0, KVM_DVM_STAT_IRQ_MODES),\
	KVM_DVM_STATS_DESC(irq_received, KVM_STATS_TYPE_CUMULATIVE,	\
			   KVM_STATS_UNIT_NONE, 0, KVM_DVM_STAT_IRQ_MODES),\
	KVM_DVM_STATS_COUNT(irq_rejected),				\
	KVM_DVM_STATS_COUNT(irq_queue_full),				\
	KVM_DVM_STATS_DESC(irq_queue_hwm, KVM_STATS_TYPE_PEAK,		\
			   KVM_STATS_UNIT_NONE, 0, 1),			\
	KVM_DVM_STATS_COUNT(apic_mirror_sent),				\
	KVM_DVM_STATS_COUNT(apic_mirror_applied),			\
	KVM_DVM_STATS_COUNT(apic_writes_ignored),			\
	KVM_DVM_STATS_COUNT(eoi_sent),					\
	KVM_DVM_STATS_COUNT(eoi_received),				\
	KVM_DVM_STATS_COUNT(ioapic_rte_sent),				\
	KVM_DVM_STATS_COUNT(ioapic_rte_applied),			\
	KVM_DVM_STATS_COUNT(irqchip_dropped),				\
	KVM_DVM_STATS_DESC(io_forwarded, KVM_STATS_TYPE_CUMULATIVE,	\
			   KVM_STATS_UNIT_NONE, 0, KVM_DVM_STAT_IO_KINDS),\
	KVM_DVM_STATS_DESC(io_proxied, KVM_STATS_TYPE_CUMULATIVE,	\
			   KVM_STATS_UNIT_NONE, 0, KVM_DVM_STAT_IO_KINDS),\
	KVM_DVM_STATS_COUNT(io_in_kernel),				\
	KVM_DVM_STATS_COUNT(io_rejected),				\
	KVM_DVM_STATS_COUNT(io_interrupted),				\
	KVM_DVM_STATS_DESC(io_rtt_min_ns, KVM_STATS_TYPE_INSTANT,	\
			   KVM_STATS_UNIT_SECONDS, -9, 1),		\
	KVM_DVM_STATS_DESC(io_rtt_max_ns, KVM_STATS_TYPE_PEAK,		\
			   KVM_STATS_UNIT_SECONDS, -9, 1),		\
	KVM_DVM_STATS_DESC(io_rtt_sum_ns, KVM_STATS_TYPE_CUMULATIVE,	\
			   KVM_STATS_UNIT_SECONDS, -9, 1),		\
	KVM_DVM_STATS_COUNT(io_rtt_count),				\
	KVM_DVM_STATS_COUNT(clock_checks),				\
	KVM_DVM_STATS_COUNT(clock_steps),				\
	KVM_DVM_STATS_COUNT(clock_ahead),				\
	KVM_DVM_STATS_COUNT(clock_failed),				\
	KVM_DVM_STATS_DESC(clock_offset_ns, KVM_STATS_TYPE_INSTANT,	\
			   KVM_STATS_UNIT_SECONDS, -9, 1),		\
	KVM_DVM_STATS_DESC(clock_error_ns, KVM_STATS_TYPE_INSTANT,	\
			   KVM_STATS_UNIT_SECONDS, -9, 1),		\
	KVM_DVM_STATS_DESC(clock_error_max_ns, KVM_STATS_TYPE_PEAK,	\
			   KVM_STATS_UNIT_SECONDS, -9, 1),		\
	KVM_DVM_STATS_DESC(clock_rtt_ns, KVM_STATS_TYPE_INSTANT,	\
			   KVM_STATS_UNIT_SECONDS, -9, 1),		\
	KVM_DVM_STATS_COUNT(vm_pauses),					\
	KVM_DVM_STATS_COUNT(vm_resumes),				\
	KVM_DVM_STATS_COUNT(vm_resets),					\
	KVM_DVM_STATS_COUNT(vm_poweroffs),				\
	KVM_DVM_STATS_COUNT(vm_parked),					\
	KVM_DVM_STATS_COUNT(vm_vcpu_resets),				\
	KVM_DVM_STATS_COUNT(memslot_updates),				\
	KVM_DVM_STATS_DESC(memslot_max_ns, KVM_STATS_TYPE_PEAK,	\
			   KVM_STATS_UNIT_SECONDS, -9, 1)

long kvm_dvm_vm_ioctl(struct kvm *kvm, unsigned int ioctl, unsigned long arg);
bool kvm_dvm_is_ioctl(unsigned int ioctl);
void kvm_dvm_destroy_vm(struct kvm *kvm);
int kvm_dvm_vcpu_run_check(struct kvm_vcpu *vcpu);
bool kvm_dvm_vcpu_exit(struct kvm_vcpu *vcpu);
int kvm_dvm_vcpu_run(struct kvm_vcpu *vcpu);
bool kvm_dvm_io_bus_bypass(struct kvm_vcpu *vcpu);
bool kvm_dvm_vcpu_remote(struct kvm_vcpu *vcpu);
bool kvm_dvm_sync_faults(struct kvm *kvm);
bool kvm_dvm_remote_writes(struct kvm *kvm);
void kvm_dvm_shadows_zapped(struct kvm *kvm, u64 nr);
int kvm_dvm_set_memory_region(struct kvm *kvm,
			      const struct kvm_userspace_memory_region *mem);

#else /* !CONFIG_KVM_DVM */

struct kvm_dvm_vm_stat {
};

#define KVM_DVM_VM_STATS()

static inline long kvm_dvm_vm_ioctl(struct kvm *kvm, unsigned int ioctl,
				    unsigned long arg)
{
	return -ENOTTY;
}

static inline bool kvm_dvm_is_ioctl(unsigned int ioctl)
{
	return false;
}

static inline void kvm_dvm_destroy_vm(struct kvm *kvm)
{
}

static inline int kvm_dvm_vcpu_run_check(struct kvm_vcpu *vcpu)
{
	return 0;
}

static inline bool kvm_dvm_vcpu_exit(struct kvm_vcpu *vcpu)
{
	return false;
}

int kvm_arch_vcpu_ioctl_run(struct kvm_vcpu *vcpu);

static inline int kvm_dvm_vcpu_run(struct kvm_vcpu *vcpu)
{
	return kvm_arch_vcpu_ioctl_run(vcpu);
}

static inline bool kvm_dvm_io_bus_bypass(struct kvm_vcpu *vcpu)
{
	return false;
}

static inline int
kvm_dvm_set_memory_region(struct kvm *kvm,
			  const struct kvm_userspace_memory_region *mem)
{
	return -ENOIOCTLCMD;
}

static inline bool kvm_dvm_vcpu_remote(struct kvm_vcpu *vcpu)
{
	return false;
}

static inline bool kvm_dvm_sync_faults(struct kvm *kvm)
{
	return false;
}

static inline bool kvm_dvm_remote_writes(struct kvm *kvm)
{
	return false;
}

static inline void kvm_dvm_shadows_zapped(struct kvm *kvm, u64 nr)
{
}

#endif /* CONFIG_KVM_DVM */

#endif /* __LINUX_KVM_DVM_HOOKS_H */
