/* SPDX-License-Identifier: GPL-2.0 */
/*
 * DVM internals shared by membership, messaging, authentication and the
 * transports. Each concept owns one file:
 *
 *   dvm.c        the VM ioctls, vCPU hooks, VM lifetime
 *   membership.c joining, vCPU placement, liveness, leaving
 *   placement.c  the verdict on the nodes' vCPU claims
 *   txq.c        interrupt events to peers, posted from any context
 *   lifecycle.c  VM-wide pause, resume, reset and power-off
 *   memslot.c    node 0's guest memory map on every node
 *   msg.c        message API: handlers, requests/replies, statistics
 *   auth.c       challenge/response on every new connection
 *   tcp.c        TCP transport
 *   rdma.c       RDMA (rdma_cm, RC queue pairs) transport
 */
#ifndef __KVM_DVM_DVM_H
#define __KVM_DVM_DVM_H

#include <linux/kvm_host.h>
#include <linux/kvm_dvm.h>
#include <linux/completion.h>
#include <linux/kref.h>
#include <linux/socket.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/xarray.h>
#include <linux/workqueue.h>
#include <uapi/linux/kvm_dvm.h>

#include "wire.h"

struct dvm_cluster;
struct dvm_clock;
struct dvm_io_slot;
struct dvm_memslots;
struct dvm_conn;
struct dvm_irq_queue;
struct crypto_shash;

/*
 * Heartbeats go out every DVM_HEARTBEAT_MS, whatever the timeouts; a peer
 * silent for the cluster's peer_timeout is lost.
 */
#define DVM_HEARTBEAT_MS	500
#define DVM_PLACEMENT_TIMEOUT_MS 30000

/**
 * struct dvm_transport_ops - what a transport provides to the core
 * @name: "tcp" or "rdma"
 * @start: bind and listen on this node's address (if any peer connects to
 *	it), and begin connecting to every lower node, retrying until the
 *	join deadline. May sleep. Connections are reported with
 *	dvm_conn_add() and, once usable, dvm_conn_ready().
 * @stop: stop listening and connecting; no dvm_conn_add() after it returns.
 * @send: send @hdr and @len payload bytes from @buf, or from @page when
 *	@buf is NULL. May sleep; serialises with other senders of @conn.
 *	Returns 0 once the message is on its way, or a negative errno. A
 *	transport may send @page without copying it, after it returned: the
 *	caller keeps the page's contents unchanged until the peer has them
 *	(the reply to a request, or the connection's end).
 * @shutdown: make @conn fail: pending and later sends return errors and
 *	the receive side stops. Callable from any process context, several
 *	times. Does not wait.
 * @release: wait until no callback runs for @conn any more and free the
 *	transport's resources, the structure embedding @conn included. Called
 *	once, from process context that is not one of @conn's own callbacks,
 *	after @shutdown and after the core freed its part (dvm_conn_free()).
 *
 * A transport that read a reply's header with dvm_rx_header() but cannot
 * deliver its payload calls dvm_rx_abort().
 */
struct dvm_transport_ops {
	const char *name;
	int (*start)(struct dvm_cluster *c);
	void (*stop)(struct dvm_cluster *c);
	int (*send)(struct dvm_conn *conn, const struct dvm_wire_hdr *hdr,
		    const void *buf, struct page *page, u32 len);
	void (*shutdown)(struct dvm_conn *conn);
	void (*release)(struct dvm_conn *conn);
};

extern const struct dvm_transport_ops dvm_tcp_ops;
extern const struct dvm_transport_ops dvm_rdma_ops;

enum dvm_auth_state {
	DVM_AUTH_WAIT_HELLO,		/* acceptor, nothing received yet */
	DVM_AUTH_WAIT_CHALLENGE,	/* connector, HELLO sent */
	DVM_AUTH_WAIT_PROOF,		/* acceptor, CHALLENGE sent */
	DVM_AUTH_WAIT_WELCOME,		/* connector, PROOF sent */
	DVM_AUTH_DONE,			/* authenticated, bound to a peer */
	DVM_AUTH_DEAD,			/* dropped, waiting to be released */
};

/**
 * struct dvm_conn - one transport connection, embedded in the transport's
 * own structure
 * @c: the cluster
 * @node: the peer at the other end: known from the start for outgoing
 *	connections, from an authenticated HELLO for incoming ones;
 *	KVM_DVM_NO_NODE until then
 * @outgoing: this node connected (it is the connector)
 * @auth: enum dvm_auth_state, changed under @c->lock
 * @remote: the peer's address as seen by the transport
 * @nonce: this side's and the other side's handshake nonces
 * @rx_buf: payload buffer for messages that are not replies
 * @list: in @c->conns, under @c->lock
 * @reap: queued for release
 * @since: jiffies when it was added, for the handshake timeout
 * @users: senders using it; it is released only when none is left
 */
struct dvm_conn {
	struct dvm_cluster *c;
	u32 node;
	bool outgoing;
	int auth;
	struct sockaddr_storage remote;
	u8 my_nonce[DVM_NONCE_SIZE];
	u8 peer_nonce[DVM_NONCE_SIZE];
	void *rx_buf;
	struct list_head list;
	bool reap;
	unsigned long since;
	atomic_t users;
};

/* Per-peer counters, also reported by KVM_DVM_GET_STATE. */
struct dvm_peer_stats {
	atomic64_t tx_msgs;
	atomic64_t rx_msgs;
	atomic64_t tx_bytes;
	atomic64_t rx_bytes;
	atomic64_t rtt_sum_ns;
	atomic64_t rtt_count;
	u64 rtt_min_ns;		/* under the cluster's lock */
	u64 rtt_max_ns;
};

struct dvm_peer {
	struct dvm_cluster *c;
	u32 id;
	struct dvm_conn *conn;	/* authenticated connection, under c->lock */
	struct work_struct hb_work;	/* sends it one heartbeat */
	bool up;
	unsigned long last_rx;	/* jiffies */
	struct sockaddr_storage addr;
	struct dvm_peer_stats stats;
	struct dvm_irq_queue *irq_queue;	/* txq.c */
};

/**
 * struct dvm_call - one request waiting for its reply
 * @id: request id on the wire
 * @node: the peer asked
 * @type: message type of the request; the reply must have the same
 * @resp: where the reply payload goes, @resp_max bytes of room
 * @resp_len: reply payload bytes received
 * @status: 0 or a negative errno (remote status, or transport failure)
 * @start: when the request was sent, for round-trip times
 * @rtt_ns: round-trip time, set with the reply
 * @done: completed exactly once, by the reply or by the peer's loss
 */
struct dvm_call {
	u32 id;
	u32 node;
	u16 type;
	void *resp;
	u32 resp_max;
	u32 resp_len;
	int status;
	ktime_t start;
	u64 rtt_ns;
	struct completion done;
};

/*
 * A request handler's result meaning "the reply comes later, through
 * dvm_reply()": the handler took what it needs of the request.
 */
#define DVM_REPLY_LATER		1

/* What a handler answers to a request. */
struct dvm_reply {
	const void *buf;
	u32 len;
};

/**
 * struct dvm_msg_type_info - how a message type is received
 * @name: for tracepoints and errors
 * @min_len: payload bytes, at least
 * @max_len: payload bytes, at most
 * @handshake: only valid before authentication (and never after)
 * @request: must carry a request id; the handler's result is the reply
 * @handler: runs in process context, in the receive path of the peer: it
 *	must not wait for other messages. Returns 0 or a negative errno:
 *	for requests the errno goes back in the reply's status; for one-way
 *	messages a negative errno means the peer misbehaved and is dropped.
 */
struct dvm_msg_type_info {
	const char *name;
	u32 min_len;
	u32 max_len;
	bool handshake;
	bool request;
	int (*handler)(struct dvm_cluster *c, struct dvm_conn *conn,
		       const struct dvm_wire_msg *msg, const void *payload,
		       struct dvm_reply *reply);
};

/**
 * struct dvm_cluster - one join: the peers, their links, the transport
 * @dvm: the VM's DVM state
 * @lock: protects @conns, every peer's @conn/@up, the join progress
 * @wq: woken on join progress, placement verdicts and breakage
 */
/*
 * The APIC registers that decide where interrupts go (the architecture's:
 * base MSR, ID, LDR, DFR, SPIV on x86).
 */
struct dvm_apic_regs {
	u64 base;
	u32 id;
	u32 ldr;
	u32 dfr;
	u32 spiv;
};

/* What must be the same in every node's copy of a vCPU. */
struct dvm_vcpu_id {
	u32 cpuid_hash;
	u32 tsc_khz;
};

/*
 * One node's vCPUs at placement, as node 0 collects them: the ids it
 * runs and the ones it created, with their identities (VCPU_INFO
 * messages, in order, then VCPUS).
 */
struct dvm_vcpu_claim {
	u32 nr_vcpus;
	u32 info_next;			/* ids covered by VCPU_INFO so far */
	bool complete;			/* its VCPUS came */
	DECLARE_BITMAP(local, KVM_DVM_MAX_VCPUS);
	DECLARE_BITMAP(created, KVM_DVM_MAX_VCPUS);
	struct dvm_vcpu_id ids[KVM_DVM_MAX_VCPUS];
};

struct dvm_cluster {
	struct kvm_dvm *dvm;
	u32 node_id;
	u32 nr_nodes;
	u32 transport;
	const struct dvm_transport_ops *ops;
	struct net *net;		/* of the task that joined */
	struct mem_cgroup *memcg;	/* of the task that joined: charged */
	void *tp;			/* the transport's listener state */
	unsigned long deadline;		/* jiffies: end of the join */
	unsigned long peer_timeout;	/* jiffies: silence, or a send stuck */
	struct crypto_shash *hmac;	/* keyed with the cluster key */

	spinlock_t lock;		/* see above */
	struct list_head conns;
	wait_queue_head_t wq;
	bool stopping;
	int join_err;			/* first failure of the join */
	bool aborted;			/* a LEAVE ended the join */
	u32 join_failed_node;
	u32 nr_up;			/* authenticated peers */
	DECLARE_BITMAP(ready, KVM_DVM_MAX_NODES);	/* node 0 only */
	bool mesh_up;

	/* vCPU placement: node 0 collects, every node waits for the verdict */
	u32 placement_gen;
	struct dvm_vcpu_claim *claims[KVM_DVM_MAX_NODES];	/* node 0 only */
	spinlock_t claims_lock;		/* claims[] */
	bool verdict_ready;
	int verdict_err;
	u32 verdict_node;
	u32 verdict_vcpu;
	u8 verdict_nodes[KVM_DVM_MAX_VCPUS];	/* the map, with verdict 0 */
	struct dvm_msg_verdict verdict_msg;	/* node 0: the last one sent */

	struct xarray calls;
	u32 next_call_id;
	int calls_closed;		/* errno of dvm_calls_close() */
	u32 calls_closed_types;		/* BIT(type): dvm_calls_close_type() */

	struct delayed_work heartbeat;
	struct work_struct reap_work;
	struct work_struct broken_work;
	u32 broken_node;
	int broken_error;
	bool has_memory;		/* KVM_DVM_CREATE_MEMORY was done */

	struct dvm_peer peers[];
};

/* struct dvm_vm_ctl::state */
enum {
	DVM_VM_RUNNING,		/* vCPUs enter the guest */
	DVM_VM_PAUSED,		/* they wait, out of the guest */
	DVM_VM_OFF,		/* every KVM_RUN ends: powered off */
};

/**
 * struct dvm_vm_ctl - the VM's lifecycle on this node (lifecycle.c)
 * @mutex: node 0: one KVM_DVM_VM_CONTROL at a time
 * @lock: @op and the request it came with
 * @state: DVM_VM_*, read locklessly by vCPU threads
 * @in_guest: local vCPUs past the point where they look at @state, on
 *	their way into the guest or in it
 * @wq: parked vCPUs, and the waits for them
 * @reset: vCPU ids whose reset is still to be done
 * @work: nodes other than 0: carries out node 0's request
 * @op: the request @work carries out (KVM_DVM_VM_*), 0 when none
 * @from: its sender
 * @req_id: its id
 * @on: the cluster it came on, compared, never followed
 */
struct dvm_vm_ctl {
	struct mutex mutex;	/* see above */
	spinlock_t lock;	/* see above */
	int state;
	atomic_t in_guest;
	wait_queue_head_t wq;
	DECLARE_BITMAP(reset, KVM_DVM_MAX_VCPUS);
	struct work_struct work;
	u32 op;
	u32 from;
	u64 req_id;
	struct dvm_cluster *on;
};

/**
 * struct kvm_dvm - DVM state of one VM, from its first DVM ioctl to the
 * VM's destruction
 * @lock: protects the fields below; never held across a network wait
 * @state: KVM_DVM_STATE_*, read locklessly by the vCPU hooks
 * @cluster: the current or last cluster, NULL when none
 * @users: ioctls using @cluster without @lock (dvm_cluster_use())
 * @busy: a JOIN or a SET_LOCAL_VCPUS runs
 * @joining: the cluster a JOIN forms, until it is published or freed
 * @leaving: a LEAVE waits for @users
 * @local: vCPUs placed on this node, valid while @state is RUNNING
 * @vcpu_node: where each vCPU id runs (KVM_DVM_VCPU_NOWHERE: no node),
 *	valid while @state is RUNNING
 * @live: @cluster from RUNNING until LEAVE, for the paths that cannot take
 *	@lock (interrupt delivery, vCPU threads): RCU, and @users to sleep
 * @apic_sent: the APIC registers each local vCPU's owner sent last
 * @irq_deferred: interrupt events local vCPU threads posted and will send
 *	(txq.c)
 */
struct kvm_dvm {
	struct kvm *kvm;
	struct dvm_dsm *dsm;		/* under @lock and the cluster's lock */
	struct mutex lock;		/* see above */
	int state;
	struct dvm_cluster *cluster;
	atomic_t users;
	bool busy;
	bool leaving;
	struct dvm_cluster *joining;
	u32 nr_vcpus;
	DECLARE_BITMAP(local, KVM_DVM_MAX_VCPUS);
	u8 vcpu_node[KVM_DVM_MAX_VCPUS];	/* the node of each vCPU id */
	struct dvm_cluster __rcu *live;
	struct dvm_apic_regs *apic_sent;	/* KVM_DVM_MAX_VCPUS entries */
	atomic_t irq_deferred;		/* posted for vCPU threads to send */
	bool forward_io;		/* KVM_DVM_JOIN_FORWARD_IO */
	struct dvm_io_slot **io;	/* by vCPU id, from placement on */
	struct dvm_clock *clock;	/* nodes other than 0, from placement on */
	struct dvm_vm_ctl ctl;		/* pause, resume, reset, power-off */
	struct dvm_memslots *memslots;	/* node 0's memory map */
	/* last cluster's identity and fate, for KVM_DVM_GET_STATE */
	u32 node_id;
	u32 nr_nodes;
	u32 transport;
	u32 broken_node;
	int broken_error;
};

/* membership.c */
int dvm_cluster_join(struct kvm_dvm *dvm, struct kvm_dvm_join *join,
		     const struct kvm_dvm_node_addr *addrs);
void dvm_cluster_leave(struct kvm_dvm *dvm);
int dvm_cluster_place_vcpus(struct kvm_dvm *dvm, struct dvm_cluster *c,
			    struct kvm_dvm_vcpus *v);
void dvm_cluster_lost(struct dvm_cluster *c, u32 node, int err);
bool dvm_break_locked(struct dvm_cluster *c, u32 node, int err);
void dvm_broken_notify(struct dvm_cluster *c, u32 node, int err);
void dvm_cluster_fail_join(struct dvm_cluster *c, u32 node, int err);
void dvm_peer_up(struct dvm_cluster *c, struct dvm_conn *conn);
int dvm_handle_mesh_ready(struct dvm_cluster *c, struct dvm_conn *conn,
			  const struct dvm_wire_msg *msg, const void *payload,
			  struct dvm_reply *reply);
int dvm_handle_mesh_up(struct dvm_cluster *c, struct dvm_conn *conn,
		       const struct dvm_wire_msg *msg, const void *payload,
		       struct dvm_reply *reply);
int dvm_handle_abort(struct dvm_cluster *c, struct dvm_conn *conn,
		     const struct dvm_wire_msg *msg, const void *payload,
		     struct dvm_reply *reply);
int dvm_handle_broken(struct dvm_cluster *c, struct dvm_conn *conn,
		      const struct dvm_wire_msg *msg, const void *payload,
		      struct dvm_reply *reply);
int dvm_handle_leave(struct dvm_cluster *c, struct dvm_conn *conn,
		     const struct dvm_wire_msg *msg, const void *payload,
		     struct dvm_reply *reply);
int dvm_handle_vcpus(struct dvm_cluster *c, struct dvm_conn *conn,
		     const struct dvm_wire_msg *msg, const void *payload,
		     struct dvm_reply *reply);
int dvm_handle_verdict(struct dvm_cluster *c, struct dvm_conn *conn,
		       const struct dvm_wire_msg *msg, const void *payload,
		       struct dvm_reply *reply);
int dvm_handle_vcpu_info(struct dvm_cluster *c, struct dvm_conn *conn,
			 const struct dvm_wire_msg *msg, const void *payload,
			 struct dvm_reply *reply);

/**
 * struct dvm_subsys - how one subsystem takes part in the life of a VM
 *	and of its clusters (subsys.c walks them; the wire table in msg.c
 *	routes their messages)
 * @name: for messages
 * @vm_init: the VM's DVM state is made, at its first DVM ioctl.
 *	Return: 0 or -ENOMEM.
 * @vm_free: the VM is destroyed, or a @vm_init failed: no ioctl, vCPU
 *	or cluster is left. Must accept what @vm_init did not make.
 * @join: a JOIN starts; the VM is busy, no cluster exists yet
 * @cluster_init: the JOIN made its cluster; no peer is connected.
 *	Return: 0 or -ENOMEM.
 * @cluster_free: the cluster is destroyed: its links are shut, nothing
 *	posts to it. Must accept what @cluster_init did not make.
 * @place: SET_LOCAL_VCPUS, before the nodes agree on a placement; no
 *	lock held, the cluster in use. Return: 0 or an errno for the caller.
 * @commit: the agreed placement is applied, dvm->lock held; the VM is
 *	not RUNNING yet. Return: 0 or -ENOMEM.
 * @placed: the VM is RUNNING; no lock held, the cluster in use
 * @broken: the cluster broke; c->lock held, must not sleep
 * @wake: whoever waits on the VM's state is to look again (the cluster
 *	broke or is being left)
 * @leave: LEAVE, dvm->lock held, before it waits for the cluster's users:
 *	whatever waits on the network in this subsystem ends now
 * @detach: LEAVE, dvm->lock held, no user of the cluster is left: no
 *	work of this subsystem may touch the cluster after it returns
 *
 * Every hook is optional. The hooks that make or start something run in
 * the order of the table in subsys.c, stopping at the first error; the
 * others run in the reverse order.
 */
struct dvm_subsys {
	const char *name;
	int (*vm_init)(struct kvm_dvm *dvm);
	void (*vm_free)(struct kvm_dvm *dvm);
	void (*join)(struct kvm_dvm *dvm);
	int (*cluster_init)(struct dvm_cluster *c);
	void (*cluster_free)(struct dvm_cluster *c);
	int (*place)(struct kvm_dvm *dvm, struct dvm_cluster *c);
	int (*commit)(struct kvm_dvm *dvm);
	void (*placed)(struct kvm_dvm *dvm, struct dvm_cluster *c);
	void (*broken)(struct dvm_cluster *c);
	void (*wake)(struct kvm_dvm *dvm);
	void (*leave)(struct kvm_dvm *dvm);
	void (*detach)(struct kvm_dvm *dvm);
};

extern const struct dvm_subsys dvm_dsm_subsys;
extern const struct dvm_subsys dvm_irq_queue_subsys;
extern const struct dvm_subsys dvm_apic_subsys;
extern const struct dvm_subsys dvm_io_subsys;
extern const struct dvm_subsys dvm_vm_ctl_subsys;
extern const struct dvm_subsys dvm_clock_subsys;
extern const struct dvm_subsys dvm_memslot_subsys;

/* subsys.c: every subsystem's hook, in order */
int dvm_subsys_vm_init(struct kvm_dvm *dvm);
void dvm_subsys_vm_free(struct kvm_dvm *dvm);
void dvm_subsys_join(struct kvm_dvm *dvm);
int dvm_subsys_cluster_init(struct dvm_cluster *c);
void dvm_subsys_cluster_free(struct dvm_cluster *c);
int dvm_subsys_place(struct kvm_dvm *dvm, struct dvm_cluster *c);
int dvm_subsys_commit(struct kvm_dvm *dvm);
void dvm_subsys_placed(struct kvm_dvm *dvm, struct dvm_cluster *c);
void dvm_subsys_broken(struct dvm_cluster *c);
void dvm_subsys_wake(struct kvm_dvm *dvm);
void dvm_subsys_leave(struct kvm_dvm *dvm);
void dvm_subsys_detach(struct kvm_dvm *dvm);

/* placement.c */
void dvm_placement_judge(u32 nr_nodes, struct dvm_vcpu_claim *const *claims,
			 struct dvm_msg_verdict *v);

/* The architecture's (arch/x86/kvm/dvm/vcpu.c, irq.c) */
int dvm_arch_vcpu_id(struct kvm_vcpu *vcpu, struct dvm_vcpu_id *id);
int dvm_arch_vm_init(struct kvm *kvm);
void dvm_arch_vcpu_sync(struct kvm_dvm *dvm, struct kvm_vcpu *vcpu,
			bool srcu_held);
int dvm_handle_irq(struct dvm_cluster *c, struct dvm_conn *conn,
		   const struct dvm_wire_msg *msg, const void *payload,
		   struct dvm_reply *reply);
int dvm_handle_apic_state(struct dvm_cluster *c, struct dvm_conn *conn,
			  const struct dvm_wire_msg *msg, const void *payload,
			  struct dvm_reply *reply);

void dvm_apic_mirror_write(struct kvm_vcpu *vcpu,
			   const struct dvm_apic_regs *r);

/* arch io.c: I/O forwarding to node 0 */
int dvm_io_proxy_run(struct kvm_dvm *dvm, struct kvm_vcpu *vcpu);
int dvm_io_resume(struct kvm_dvm *dvm, struct kvm_vcpu *vcpu);
bool dvm_io_forwards(struct kvm_dvm *dvm, struct kvm_vcpu *vcpu);
int dvm_io_forward(struct kvm_dvm *dvm, struct kvm_vcpu *vcpu);
bool dvm_io_proxy_mirror(struct dvm_cluster *c, struct kvm_vcpu *vcpu,
			 const struct dvm_apic_regs *r, u32 from, u64 req_id);
void dvm_io_proxy_mirror_done(struct kvm_dvm *dvm, struct kvm_vcpu *vcpu);
int dvm_handle_io(struct dvm_cluster *c, struct dvm_conn *conn,
		  const struct dvm_wire_msg *msg, const void *payload,
		  struct dvm_reply *reply);

/* arch clock.c: this node's guest TSC and kvmclock follow node 0's */
void dvm_clock_vcpu_run(struct kvm_dvm *dvm, struct kvm_vcpu *vcpu,
			bool loaded);
int dvm_clock_realign(struct kvm_dvm *dvm, struct dvm_cluster *c);
int dvm_handle_clock(struct dvm_cluster *c, struct dvm_conn *conn,
		     const struct dvm_wire_msg *msg, const void *payload,
		     struct dvm_reply *reply);

/* lifecycle.c: VM-wide pause, resume, reset and power-off */
int dvm_vm_control(struct kvm_dvm *dvm, struct dvm_cluster *c,
		   struct kvm_dvm_vm_control *ctl);
int dvm_vm_enter(struct kvm_dvm *dvm, struct kvm_vcpu *vcpu);
bool dvm_vm_left(struct kvm_dvm *dvm, struct kvm_vcpu *vcpu, int r);
bool dvm_vm_park_request(struct kvm_dvm *dvm, struct kvm_vcpu *vcpu);
bool dvm_vm_off_exit(struct kvm_dvm *dvm, struct kvm_vcpu *vcpu);
int dvm_handle_vm_control(struct dvm_cluster *c, struct dvm_conn *conn,
			  const struct dvm_wire_msg *msg, const void *payload,
			  struct dvm_reply *reply);

/* memslot.c: node 0's guest memory map on every node */
int dvm_memslot_set(struct kvm_dvm *dvm, struct dvm_cluster *c,
		    struct file *file,
		    const struct kvm_userspace_memory_region *mem);
int dvm_handle_memslot(struct dvm_cluster *c, struct dvm_conn *conn,
		       const struct dvm_wire_msg *msg, const void *payload,
		       struct dvm_reply *reply);

/* The architecture's lifecycle parts (arch vcpu.c, io.c) */
void dvm_arch_vcpu_reset(struct kvm_vcpu *vcpu);
void dvm_io_proxy_cancel_all(struct kvm_dvm *dvm);

/* dvm.c: the cluster of a RUNNING VM, from any context */
struct dvm_cluster *dvm_live_get(struct kvm_dvm *dvm);
void dvm_live_put(struct kvm_dvm *dvm);
bool dvm_vcpu_runs_here(struct kvm_dvm *dvm, u32 vcpu_id);

/* txq.c */
int dvm_irq_post(struct dvm_cluster *c, u32 node, const struct dvm_wire_irq *e);
void dvm_irq_flush(struct dvm_cluster *c);

/* auth.c */
int dvm_auth_init(struct dvm_cluster *c, const u8 *key, u32 key_len);
void dvm_auth_exit(struct dvm_cluster *c);
int dvm_auth_start(struct dvm_conn *conn);
int dvm_handle_hello(struct dvm_cluster *c, struct dvm_conn *conn,
		     const struct dvm_wire_msg *msg, const void *payload,
		     struct dvm_reply *reply);
int dvm_handle_challenge(struct dvm_cluster *c, struct dvm_conn *conn,
			 const struct dvm_wire_msg *msg, const void *payload,
			 struct dvm_reply *reply);
int dvm_handle_proof(struct dvm_cluster *c, struct dvm_conn *conn,
		     const struct dvm_wire_msg *msg, const void *payload,
		     struct dvm_reply *reply);
int dvm_handle_welcome(struct dvm_cluster *c, struct dvm_conn *conn,
		       const struct dvm_wire_msg *msg, const void *payload,
		       struct dvm_reply *reply);
int dvm_handle_reject(struct dvm_cluster *c, struct dvm_conn *conn,
		      const struct dvm_wire_msg *msg, const void *payload,
		      struct dvm_reply *reply);

/* msg.c: connections */
int dvm_conn_init(struct dvm_conn *conn, struct dvm_cluster *c, u32 node,
		  bool outgoing);
void dvm_conn_add(struct dvm_conn *conn);
bool dvm_conn_outgoing(struct dvm_cluster *c, u32 node);
void dvm_conn_ready(struct dvm_conn *conn);
void dvm_conn_drop(struct dvm_conn *conn, int err);
void dvm_conn_free(struct dvm_conn *conn);
void dvm_conns_release_all(struct dvm_cluster *c);
void dvm_reap_work(struct work_struct *work);

/* msg.c: receiving, as driven by a transport */
struct dvm_rx {
	struct dvm_wire_msg msg;
	void *buf;			/* where the payload goes */
	struct dvm_call *call;		/* the request a reply answers */
	bool late;			/* a reply nobody waits for any more */
};

int dvm_rx_header(struct dvm_conn *conn, const struct dvm_wire_hdr *hdr,
		  struct dvm_rx *rx);
int dvm_rx_payload(struct dvm_conn *conn, struct dvm_rx *rx);
void dvm_rx_abort(struct dvm_conn *conn, struct dvm_rx *rx, int err);

/* msg.c: sending */
int dvm_conn_send(struct dvm_conn *conn, u16 type, u16 flags, u16 status,
		  u64 req_id, const void *buf, u32 len);
int dvm_send(struct dvm_cluster *c, u32 node, u16 type, const void *buf,
	     u32 len);
void dvm_send_all(struct dvm_cluster *c, u16 type, const void *buf, u32 len);
int dvm_call_start(struct dvm_cluster *c, struct dvm_call *call, u32 node,
		   u16 type, const void *buf, u32 len, void *resp,
		   u32 resp_max);
int dvm_call_wait(struct dvm_cluster *c, struct dvm_call *call,
		  unsigned long timeout);
int dvm_call_wait_killable(struct dvm_cluster *c, struct dvm_call *call);
int dvm_call_others(struct dvm_cluster *c, u16 type, const void *buf,
		    u32 len, int (*local)(struct dvm_cluster *c, void *arg),
		    void *arg, u32 *failed);
int dvm_reply(struct dvm_cluster *c, u32 node, u16 type, u64 req_id, int err,
	      const void *buf, u32 len);
void dvm_calls_fail(struct dvm_cluster *c, u32 node, int err);
void dvm_calls_close(struct dvm_cluster *c, int err);
void dvm_calls_close_type(struct dvm_cluster *c, u16 type, int err);
void dvm_stat_add(u64 *stat, u64 val);
void dvm_stat_min(u64 *stat, u64 val);
void dvm_stat_max(u64 *stat, u64 val);

/* dsm.c */
int dvm_dsm_create(struct kvm_dvm *dvm, const struct kvm_dvm_memory *m);
struct file *dvm_dsm_get_file(struct kvm_dvm *dvm);
struct file *dvm_dsm_file_get(struct dvm_cluster *c);
int dvm_dsm_pin(struct dvm_dsm *dsm, const struct kvm_dvm_pin *a, bool pin);
int dvm_handle_dsm_req(struct dvm_cluster *c, struct dvm_conn *conn,
		       const struct dvm_wire_msg *msg, const void *payload,
		       struct dvm_reply *reply);
int dvm_handle_dsm_fetch(struct dvm_cluster *c, struct dvm_conn *conn,
			 const struct dvm_wire_msg *msg, const void *payload,
			 struct dvm_reply *reply);
int dvm_handle_dsm_done(struct dvm_cluster *c, struct dvm_conn *conn,
			const struct dvm_wire_msg *msg, const void *payload,
			struct dvm_reply *reply);
int dvm_ping(struct dvm_cluster *c, struct kvm_dvm_ping *p);
void dvm_stat_count_error(struct dvm_cluster *c, bool auth);
void dvm_peer_fill_link(struct dvm_cluster *c, u32 node,
			struct kvm_dvm_link *link);

/* membership.c: addresses */
bool dvm_addr_equal(const struct sockaddr_storage *a,
		    const struct sockaddr_storage *b, bool with_port);

#endif /* __KVM_DVM_DVM_H */
