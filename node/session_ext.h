/* node/session_ext: per-session state private to server.c and proxy.c.
 *
 * Every session is allocated by server.c as a struct session_ext whose first
 * member is the struct session of node.h, so that a struct session * of
 * any session converts to its struct session_ext *. What lives here:
 *
 *   - liveness: one timer per session enforces the HELLO deadline, then
 *     sends heartbeats on idle links and closes links whose peer stayed
 *     silent for 3 heartbeat intervals (client link and, in PROXY mode, the
 *     link to the leader);
 *   - output accounting: how many bytes of the client's output are
 *     deliveries (bounded by the state machine's session window) and how
 *     many are replies (bounded by max_session_output);
 *   - flow control of PROXY sessions: the leader link is not read while the
 *     client's output is above a watermark, and the client is not read
 *     while the leader link's output is; TCP carries the back-pressure.
 */
#ifndef RAFTMQ_NODE_SESSION_EXT_H
#define RAFTMQ_NODE_SESSION_EXT_H

#include "node.h"

/* The shortest heartbeat interval a node grants (ms). */
#define NODE_HEARTBEAT_MIN 100u
/* A peer silent for this many intervals is closed. */
#define NODE_HEARTBEAT_MISSES 3u

/* PROXY flow control: stop reading one side while the other side's queued
 * output exceeds the high mark; go on once it is below the low mark. */
#define PROXY_HIGH_WATER (8u << 20)
#define PROXY_LOW_WATER  (2u << 20)

struct session_ext {
	struct session s; /* first */
	uv_timer_t timer; /* HELLO deadline, then heartbeats */
	int timer_open;
	uint64_t accepted_at;
	/* client link */
	uint32_t hb; /* interval granted in HELLO_OK (ms), 0 = off */
	uint64_t last_recv, last_send;
	size_t out_deliv;  /* bytes of deliveries in s.c.out */
	size_t wbuf_deliv; /* bytes of deliveries in s.c.wbuf */
	int c_rpaused;     /* client not read: leader link congested */
	/* PROXY: the link to the leader */
	uint32_t up_hb; /* interval the leader granted (ms), 0 = off */
	uint64_t up_last_recv, up_last_send;
	int up_rpaused; /* leader link not read: client output above mark */
};

static inline struct session_ext *session_ext(struct session *s)
{
	return (struct session_ext *)s;
}

/* The node's liveness settings (ms). */
unsigned node_hello_timeout(const struct node *n);
unsigned node_client_heartbeat(const struct node *n);

/* Interval granted for a proposed one (ms, 0 = off). */
uint32_t node_heartbeat_grant(const struct node *n, uint32_t proposed);

/* Queues one DELIVER or CANCELLED frame for the client of a LOCAL session.
 * Deliveries never close the session (the state machine bounds what is in
 * flight to it); only a failed allocation does. Returns 0 or -1. */
int session_queue_delivery(struct session *s, const struct wire_msg *m);

/* (Re)computes the period of the session's timer. */
void session_arm_timer(struct session *s);

/* Sets TCP keepalive on a connected handle (idle 30 s, then 3 probes 10 s
 * apart). */
void node_tcp_keepalive(uv_tcp_t *t);

/* Bytes queued for the client (out and being written). */
size_t session_client_backlog(const struct session *s);

/* proxy.c: reads the leader link again (client output drained). */
void proxy_resume_up(struct session *s);
/* proxy.c: the HEARTBEAT frame to the leader (timer). */
void proxy_heartbeat(struct session *s);

#endif /* RAFTMQ_NODE_SESSION_EXT_H */
