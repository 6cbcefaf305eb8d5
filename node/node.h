/* node: the raftmq server process: client sessions, forwarding, batching.
 *
 * Roles of a client connection (a session):
 *
 *   NEW    HELLO and STATUS are answered; the first other request decides:
 *   LOCAL  this node is the serving leader: requests become FSM commands,
 *          batched into Raft entries; replies and deliveries are written
 *          when the leader applies them (through the fsm sink);
 *   PROXY  this node follows a known leader: it opens one connection to the
 *          leader's client port for this session and relays frames both
 *          ways unchanged, answering only HELLO and STATUS itself.
 *
 * A leader "serves" only after its LEADER_ELECTED command has been applied:
 * that command ends every session of earlier terms in the FSM, so their
 * in-flight deliveries become ready again. When this node stops serving
 * (or the leader a proxy points to changes), every affected session is
 * closed after each of its unanswered requests got a retryable error:
 * clients reconnect, re-register consumers and retry with the same message
 * ids, which the FSM deduplicates.
 */
#ifndef RAFTMQ_NODE_H
#define RAFTMQ_NODE_H

#include <stdint.h>

#include <uv.h>

#include "../fsm/codec.h"
#include "../fsm/fsm.h"
#include "../raft_glue/rg.h"
#include "../wire/wire.h"
#include "clock.h"
#include "config.h"
#include "reqset.h"

enum session_mode { SESSION_NEW = 0, SESSION_LOCAL = 1, SESSION_PROXY = 2 };

/* One direction of a TCP stream: input buffer and output queue. */
struct conn {
	uv_tcp_t tcp;
	char *in; /* (owned) received, not yet consumed bytes */
	size_t in_len, in_cap;
	struct wire_buf out;  /* queued, not yet handed to uv_write */
	struct wire_buf wbuf; /* being written by `wreq` */
	uv_write_t wreq;
	int writing;
	int open; /* tcp initialised and not yet closed */
};

struct session {
	struct node *node;
	uint64_t id;
	int mode; /* enum session_mode */
	int hello;
	int closing;
	int paused;       /* not reading: the leader's batch is full */
	int fsm_state;    /* sent CONSUME or GET: the FSM may hold state of this
	                     session, so closing it proposes SESSION_DOWN */
	unsigned handles; /* open uv handles; freed at 0 */
	struct conn c;    /* the client */
	struct reqset pending; /* requests not answered yet */
	/* PROXY only */
	struct conn up;
	uv_connect_t up_connect;
	int up_connected;
	uint64_t up_leader;          /* leader id the link points to */
	struct session *next, *prev; /* node's list */
	struct session *hnext;       /* id hash chain (LOCAL sessions) */
};

/* Fields of a CONFIG command: at most this many keys. */
#define NODE_CONFIG_KV_MAX 64

/* A node-internal command (session 0) with its own storage, kept so that it
 * can be proposed again when its entry was not proposed or failed: a
 * SESSION_DOWN or a config bootstrap is never dropped. */
struct internal_cmd {
	struct fsm_cmd cmd;
	struct fsm_config_kv kv[NODE_CONFIG_KV_MAX]; /* CONFIG keys */
};

/* Requests carried by one proposed entry, to answer them when it fails. */
struct entry_req {
	uint64_t session;
	uint64_t req_id;
};

struct entry {
	struct node *node;
	struct entry_req *reqs;
	unsigned n_reqs, cap_reqs;
	int is_elected; /* the LEADER_ELECTED entry of `term` */
	int is_tick;
	int is_check;
	uint64_t term;
	/* internal commands it carries, to re-queue them on failure */
	struct internal_cmd *internal;
	unsigned n_internal, cap_internal;
};

/* A read (queue stats/list, topic list, config get) waiting for a read
 * barrier, so that a deposed leader never answers from stale state. */
struct read_req {
	struct read_req *next;
	uint64_t session;
	uint64_t req_id;
	uint8_t op;
	uint32_t name_len;
	char name[]; /* queue name of QUEUE_STATS */
};

#define NODE_SESSION_BUCKETS 4096

struct node {
	uv_loop_t *loop;
	struct node_config *cfg;
	struct fsm *fsm;
	struct rg *rg;
	uv_tcp_t listener;
	uv_signal_t sigterm, sigint;
	uv_check_t check;
	uv_timer_t ticker;
	/* leadership as last reported by raft_glue */
	int role;
	uint64_t term;
	uint64_t leader_id;
	int ready;
	int serving;           /* our LEADER_ELECTED of `term` applied */
	uint64_t elected_term; /* term for which LEADER_ELECTED was proposed */
	int tick_inflight;
	/* the cluster clock while this node leads (clock.h) */
	struct node_clock clock;
	/* internal commands waiting for the next batch (re-queued) */
	struct internal_cmd *requeue;
	unsigned n_requeue, cap_requeue;
	/* replicated configuration: the version last compared with the
	 * flags */
	uint64_t config_seen;
	/* divergence detector */
	int diverged;           /* this replica differs: serves no client */
	int diverged_stopped;   /* ... and its sessions were closed */
	int check_inflight;     /* a CHECK entry is being proposed */
	int check_sent;         /* a CHECK was proposed in this term */
	uint64_t check_at;      /* uv_now() of the last CHECK */
	uint64_t check_applied; /* fsm_applied() that it carried */
	/* (applied, digest) sampled by the tick at its last two changes */
	uint64_t sample_applied[2], sample_digest[2];
	/* reads waiting for a barrier, and those of the barrier in flight */
	struct read_req *reads, **reads_tail;
	struct read_req *reads_barrier;
	int barrier_inflight;
	int fault_fired; /* test-only faults that fire once */
	/* batching */
	struct fsm_batch batch;
	struct entry *cur; /* requests of `batch` */
	/* sessions */
	struct session *sessions; /* every open session */
	unsigned n_sessions;
	unsigned n_paused; /* sessions with `paused` set */
	struct session *by_id[NODE_SESSION_BUCKETS];
	uint64_t next_session;
	int stopping;
	int exit_code;
	/* watch.c: idle link to the leader, to see its process die */
	struct {
		uv_tcp_t tcp;
		uv_connect_t req;
		int open;        /* tcp initialised and not yet closed */
		uint64_t leader; /* the leader it connects to */
		uint64_t retry_at;
		char scratch[64];
		uv_write_t wreq;
		char hello[96]; /* the HELLO it sends (heartbeats off) */
	} watch;
	/* scratch for decoding message headers */
	struct wire_header hdr_scratch[1024];
};

/* server.c */
int node_listen(struct node *n);
void node_close_sessions(struct node *n, int code, const char *why,
                         int only_local);
struct session *node_session_find(struct node *n, uint64_t id);
void session_close(struct session *s, int code, const char *why);
void conn_flush(struct session *s, struct conn *c);
void conn_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf);
int session_write_error(struct session *s, uint64_t req_id, int code,
                        const char *msg);
void session_reply_done(struct session *s, uint64_t req_id);
void session_answer_local(struct session *s, const struct wire_msg *m);
void session_status(struct session *s, uint64_t req_id);
void node_resume_sessions(struct node *n);

/* watch.c: called on every role change and every tick. */
void node_watch_update(struct node *n);
void node_watch_stop(struct node *n);

/* proxy.c */
/* host:port -> IPv4 address (names through getaddrinfo); 0 or -1. */
int node_resolve(const char *addr, struct sockaddr_storage *out);
int proxy_start(struct session *s);
void proxy_forward(struct session *s, const char *frame, size_t len,
                   const struct wire_msg *m);

/* command.c: LOCAL requests -> FSM commands, and the fsm sink. */
void node_submit_cmd(struct node *n, const struct fsm_cmd *cmd);
void node_flush(struct node *n);
/* Frees the current entry and the re-queued commands (at exit). */
void node_commands_free(struct node *n);
/* 1 when the current batch is full and cannot be proposed yet. */
int node_saturated(struct node *n);
void node_role_cb(void *data, int role, uint64_t term, uint64_t leader_id,
                  int ready);
void node_sink_result(void *data, const struct fsm_result *r);
void node_sink_effect(void *data, const struct fsm_delivery *d);
void node_tick_cb(uv_timer_t *t);
uint64_t node_now_ms(void);
/* Compares the flags with the replicated configuration when its version
 * changed (at start once the log is applied, then from the tick), logging
 * each difference at warn. */
void node_config_check(struct node *n);

/* Hooks for server.c (owned by another change; to be wired in there):
 * - node_status_fill(): session_status() calls it on the STATUS reply it
 *   built, which gains applied, digest and diverged;
 * - node_refusal(): choose_mode() calls it first; when it returns a text,
 *   the request is answered WIRE_EUNAVAILABLE with it (a diverged replica
 *   serves no client, not even through a proxy);
 * - node_max_payload(): HELLO_OK's max_payload (the replicated limit, not
 *   the flag). */
#define NODE_DIVERGED_TEXT "replica diverged; see docs/operations.md"
void node_status_fill(struct node *n, struct wire_msg *m);
const char *node_refusal(const struct node *n);
uint32_t node_max_payload(const struct node *n);

#endif /* RAFTMQ_NODE_H */
