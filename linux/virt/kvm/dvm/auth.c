// SPDX-License-Identifier: GPL-2.0
/*
 * DVM authentication: on every new connection both ends prove that they
 * know the cluster key, with HMAC-SHA256 over fresh nonces from both.
 *
 *   connector -> acceptor  HELLO     its node id, a nonce
 *   acceptor -> connector  CHALLENGE its nonce, its MAC over both
 *   connector -> acceptor  PROOF     its MAC over both
 *   acceptor -> connector  WELCOME, or REJECT with an errno
 *
 * Only then does the acceptor believe the connector's node id, check it
 * against the connection's source address and bind the connection to it.
 */
#include <crypto/hash.h>
#include <crypto/algapi.h>
#include <linux/random.h>

#include "dvm.h"

/*
 * The key lives on only inside the HMAC transform (which wipes it when
 * freed): the caller wipes its own copy once this returned.
 */
int dvm_auth_init(struct dvm_cluster *c, const u8 *key, u32 key_len)
{
	int r;

	c->hmac = crypto_alloc_shash("hmac(sha256)", 0, 0);
	if (IS_ERR(c->hmac)) {
		r = PTR_ERR(c->hmac);
		c->hmac = NULL;
		return r;
	}
	if (WARN_ON_ONCE(crypto_shash_digestsize(c->hmac) != DVM_MAC_SIZE))
		return -EINVAL;
	return crypto_shash_setkey(c->hmac, key, key_len);
}

void dvm_auth_exit(struct dvm_cluster *c)
{
	crypto_free_shash(c->hmac);
	c->hmac = NULL;
}

static int dvm_auth_mac(struct dvm_cluster *c, const char *label,
			u32 connector, u32 acceptor, const u8 *nonce_c,
			const u8 *nonce_a, u8 *mac)
{
	SHASH_DESC_ON_STACK(desc, c->hmac);
	__le32 ids[2] = { cpu_to_le32(connector), cpu_to_le32(acceptor) };
	int r;

	desc->tfm = c->hmac;
	r = crypto_shash_init(desc) ?:
	    crypto_shash_update(desc, label, DVM_AUTH_LABEL_SIZE) ?:
	    crypto_shash_update(desc, (u8 *)ids, sizeof(ids)) ?:
	    crypto_shash_update(desc, nonce_c, DVM_NONCE_SIZE) ?:
	    crypto_shash_update(desc, nonce_a, DVM_NONCE_SIZE) ?:
	    crypto_shash_final(desc, mac);
	shash_desc_zero(desc);
	return r;
}

static void dvm_auth_reject(struct dvm_conn *conn, int err)
{
	struct dvm_msg_error rej = {
		.error = cpu_to_le32(-err),
		.node = cpu_to_le32(conn->c->node_id),
	};

	dvm_conn_send(conn, DVM_MSG_REJECT, 0, 0, 0, &rej, sizeof(rej));
}

/*
 * A peer that proved it knows the key but cannot be admitted fails the
 * join on both ends: it gets a REJECT, and this node's join fails.
 */
static int dvm_auth_refuse(struct dvm_conn *conn, int err)
{
	dvm_stat_count_error(conn->c, true);
	dvm_auth_reject(conn, err);
	dvm_cluster_fail_join(conn->c, conn->node, err);
	return err;
}

/* Connector: the connection is up, say who we are. */
int dvm_auth_start(struct dvm_conn *conn)
{
	struct dvm_cluster *c = conn->c;
	struct dvm_msg_hello hello = {
		.node_id = cpu_to_le32(c->node_id),
		.nr_nodes = cpu_to_le32(c->nr_nodes),
		.target = cpu_to_le32(conn->node),
		.transport = cpu_to_le32(c->transport),
	};

	get_random_bytes(conn->my_nonce, DVM_NONCE_SIZE);
	memcpy(hello.nonce, conn->my_nonce, DVM_NONCE_SIZE);
	WRITE_ONCE(conn->auth, DVM_AUTH_WAIT_CHALLENGE);
	return dvm_conn_send(conn, DVM_MSG_HELLO, 0, 0, 0, &hello,
			     sizeof(hello));
}

/* Acceptor: a connector says who it is; nothing is believed yet. */
int dvm_handle_hello(struct dvm_cluster *c, struct dvm_conn *conn,
		     const struct dvm_wire_msg *msg, const void *payload,
		     struct dvm_reply *reply)
{
	const struct dvm_msg_hello *hello = payload;
	struct dvm_msg_challenge ch = { .node_id = cpu_to_le32(c->node_id) };
	u32 id = le32_to_cpu(hello->node_id);
	int r;

	if (conn->outgoing || conn->auth != DVM_AUTH_WAIT_HELLO)
		return -EPROTO;
	if (le32_to_cpu(hello->nr_nodes) != c->nr_nodes ||
	    le32_to_cpu(hello->transport) != c->transport ||
	    le32_to_cpu(hello->target) != c->node_id ||
	    id >= c->nr_nodes || id <= c->node_id) {
		dvm_auth_reject(conn, -EINVAL);
		return -EPROTO;
	}

	conn->node = id;
	memcpy(conn->peer_nonce, hello->nonce, DVM_NONCE_SIZE);
	get_random_bytes(conn->my_nonce, DVM_NONCE_SIZE);
	memcpy(ch.nonce, conn->my_nonce, DVM_NONCE_SIZE);
	r = dvm_auth_mac(c, DVM_AUTH_LABEL_ACCEPTOR, id, c->node_id,
			 conn->peer_nonce, conn->my_nonce, ch.mac);
	if (r)
		return r;
	WRITE_ONCE(conn->auth, DVM_AUTH_WAIT_PROOF);
	return dvm_conn_send(conn, DVM_MSG_CHALLENGE, 0, 0, 0, &ch, sizeof(ch));
}

/* Connector: the acceptor proves itself; we prove ourselves. */
int dvm_handle_challenge(struct dvm_cluster *c, struct dvm_conn *conn,
			 const struct dvm_wire_msg *msg, const void *payload,
			 struct dvm_reply *reply)
{
	const struct dvm_msg_challenge *ch = payload;
	struct dvm_msg_proof proof;
	u8 mac[DVM_MAC_SIZE];
	int r;

	if (!conn->outgoing || conn->auth != DVM_AUTH_WAIT_CHALLENGE ||
	    le32_to_cpu(ch->node_id) != conn->node || ch->pad)
		return -EPROTO;

	memcpy(conn->peer_nonce, ch->nonce, DVM_NONCE_SIZE);
	r = dvm_auth_mac(c, DVM_AUTH_LABEL_ACCEPTOR, c->node_id, conn->node,
			 conn->my_nonce, conn->peer_nonce, mac);
	if (r)
		return r;
	if (crypto_memneq(mac, ch->mac, DVM_MAC_SIZE))
		return dvm_auth_refuse(conn, -EACCES);

	r = dvm_auth_mac(c, DVM_AUTH_LABEL_CONNECTOR, c->node_id, conn->node,
			 conn->my_nonce, conn->peer_nonce, proof.mac);
	if (r)
		return r;
	WRITE_ONCE(conn->auth, DVM_AUTH_WAIT_WELCOME);
	return dvm_conn_send(conn, DVM_MSG_PROOF, 0, 0, 0, &proof,
			     sizeof(proof));
}

/* Make @conn the link to its node; false if the node has one already. */
static bool dvm_auth_bind(struct dvm_cluster *c, struct dvm_conn *conn)
{
	struct dvm_peer *peer = &c->peers[conn->node];
	bool bound = false;

	spin_lock(&c->lock);
	if (!peer->conn && conn->auth != DVM_AUTH_DEAD && !c->stopping) {
		peer->conn = conn;
		WRITE_ONCE(peer->last_rx, jiffies);
		WRITE_ONCE(peer->up, true);
		c->nr_up++;
		WRITE_ONCE(conn->auth, DVM_AUTH_DONE);
		bound = true;
	}
	spin_unlock(&c->lock);
	return bound;
}

/* Acceptor: the connector proves itself; admit it or refuse it. */
int dvm_handle_proof(struct dvm_cluster *c, struct dvm_conn *conn,
		     const struct dvm_wire_msg *msg, const void *payload,
		     struct dvm_reply *reply)
{
	const struct dvm_msg_proof *proof = payload;
	u8 mac[DVM_MAC_SIZE];
	int r;

	if (conn->outgoing || conn->auth != DVM_AUTH_WAIT_PROOF)
		return -EPROTO;
	r = dvm_auth_mac(c, DVM_AUTH_LABEL_CONNECTOR, conn->node, c->node_id,
			 conn->peer_nonce, conn->my_nonce, mac);
	if (r)
		return r;
	if (crypto_memneq(mac, proof->mac, DVM_MAC_SIZE)) {
		/*
		 * From the node's own address: that node has another key,
		 * the join fails on both ends. From anywhere else: a
		 * stranger, who costs only its own connection.
		 */
		if (dvm_addr_equal(&conn->remote, &c->peers[conn->node].addr,
				   false))
			return dvm_auth_refuse(conn, -EACCES);
		dvm_stat_count_error(c, true);
		dvm_auth_reject(conn, -EACCES);
		return -EACCES;
	}
	if (!dvm_addr_equal(&conn->remote, &c->peers[conn->node].addr, false))
		return dvm_auth_refuse(conn, -EADDRNOTAVAIL);
	if (!dvm_auth_bind(c, conn))
		return dvm_auth_refuse(conn, -EEXIST);

	r = dvm_conn_send(conn, DVM_MSG_WELCOME, 0, 0, 0, NULL, 0);
	if (r)
		return r;
	dvm_peer_up(c, conn);
	return 0;
}

/* Connector: admitted. */
int dvm_handle_welcome(struct dvm_cluster *c, struct dvm_conn *conn,
		       const struct dvm_wire_msg *msg, const void *payload,
		       struct dvm_reply *reply)
{
	if (!conn->outgoing || conn->auth != DVM_AUTH_WAIT_WELCOME)
		return -EPROTO;
	if (!dvm_auth_bind(c, conn))
		return -EPROTO;
	dvm_peer_up(c, conn);
	return 0;
}

/* Either end: the other refused us, with a reason. */
int dvm_handle_reject(struct dvm_cluster *c, struct dvm_conn *conn,
		      const struct dvm_wire_msg *msg, const void *payload,
		      struct dvm_reply *reply)
{
	const struct dvm_msg_error *rej = payload;
	u32 err = le32_to_cpu(rej->error);

	if (!err || err >= MAX_ERRNO)
		return -EPROTO;
	dvm_stat_count_error(c, true);
	/*
	 * The node this node dialled refuses it, or a connector from its
	 * own table address found our MAC wrong (another key): during a
	 * join, both ends fail. Once the cluster is formed this changes
	 * nothing. A REJECT from anywhere else proves nothing (no MAC yet):
	 * only that connection goes.
	 */
	if (conn->outgoing ||
	    (conn->node != KVM_DVM_NO_NODE &&
	     dvm_addr_equal(&conn->remote, &c->peers[conn->node].addr, false)))
		dvm_cluster_fail_join(c, conn->node, -err);
	return -ECONNREFUSED;
}
