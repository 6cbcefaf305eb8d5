/* raft_glue/rg_transport: raft's TCP transport wrapped to set TCP_NODELAY. */
#ifndef RAFTMQ_RG_TRANSPORT_H
#define RAFTMQ_RG_TRANSPORT_H

#include <raft.h>
#include <raft/uv.h>

/* A raft_uv_transport (version 1) that delegates to raft_uv_tcp_init()'s
 * transport and sets TCP_NODELAY on every accepted and connected stream.
 * Give `&t->outer` to raft_uv_init(). */
struct rg_transport {
	struct raft_uv_transport outer; /* what raft sees */
	struct raft_uv_transport inner; /* raft's own TCP transport */
	raft_uv_accept_cb accept_cb;
	raft_uv_transport_close_cb close_cb;
};

/* Initialises both transports; `bind_address` may be NULL. Returns 0 or a
 * RAFT_* code with a message in t->outer.errmsg. On failure nothing needs
 * closing. */
int rg_transport_init(struct rg_transport *t, uv_loop_t *loop,
                      const char *bind_address);

/* Frees the inner transport: call after raft's close callback (or directly
 * when raft_init failed). */
void rg_transport_close(struct rg_transport *t);

#endif /* RAFTMQ_RG_TRANSPORT_H */
