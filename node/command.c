/* node/command: the leader's side. Client requests become FSM commands,
 * batched per loop turn into one Raft entry; applied results and deliveries
 * come back through the fsm sink and are written to the sessions.
 *
 * A reply is written only from the sink, i.e. after the entry was committed
 * and applied: no false success. When a proposal fails or its outcome is
 * unknown, every request it carried that is still unanswered gets a
 * retryable error; the node's own commands (session 0: session down, config
 * bootstrap) are proposed again while this node serves, never dropped.
 *
 * Every command is stamped here (batch_put) with the cluster clock
 * (clock.h) and the wall clock for display. Reads (queue stats and lists,
 * topic list, configuration) are answered after a raft barrier, so that a
 * deposed leader never answers from stale state. */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "node.h"
#include "session_ext.h"

/* FSM result statuses travel on the wire as they are (node_sink_result). */
#define SAME_STATUS(f, w) _Static_assert((int)FSM_E##f == (int)WIRE_E##w, #f)
SAME_STATUS(NOQUEUE, NOQUEUE);
SAME_STATUS(NOTOPIC, NOTOPIC);
SAME_STATUS(EXISTS, EXISTS);
SAME_STATUS(INVAL, INVAL);
SAME_STATUS(TOOBIG, TOOBIG);
SAME_STATUS(FULL, FULL);
SAME_STATUS(NOCONSUMER, NOCONSUMER);
SAME_STATUS(NOMSG, NOMSG);
SAME_STATUS(MALFORMED, MALFORMED);
SAME_STATUS(LIMIT, LIMIT);
SAME_STATUS(NOTEMPTY, NOTEMPTY);
SAME_STATUS(BUSY, INUSE);
SAME_STATUS(NOMEM, NOMEM);
SAME_STATUS(CLUSTERFULL, CLUSTERFULL);
#undef SAME_STATUS

/* The message headers decoded by wire are handed to the FSM as they are. */
_Static_assert(sizeof(struct wire_header) == sizeof(struct fsm_header),
               "wire_header and fsm_header differ");
_Static_assert(offsetof(struct wire_header, val_len) ==
                   offsetof(struct fsm_header, val_len),
               "wire_header and fsm_header differ");

/* Room kept for one more command when deciding whether a batch is full. */
#define CMD_SLACK 4096
/* raft_glue's own bound on an entry (main.c): the replicated max_entry is
 * the real limit, this only caps it. */
#define ENTRY_HARD_MAX ((size_t)64 << 20)
/* Divergence detector: a CHECK every this many ms while there is activity.
 */
#define CHECK_INTERVAL_MS 2000

uint64_t node_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static size_t entry_limit(const struct node *n)
{
	uint64_t m = fsm_config_get(n->fsm)->max_entry;
	return m < ENTRY_HARD_MAX ? (size_t)m : ENTRY_HARD_MAX;
}

static int is_diverged(const struct node *n)
{
	return n->diverged || fsm_diverged(n->fsm);
}

/* ---------------------------------------------------------------------
 * Entries and proposals. */

static struct entry *entry_new(struct node *n)
{
	struct entry *e = calloc(1, sizeof *e);
	if (e != NULL) {
		e->node = n;
	}
	return e;
}

static void entry_free(struct entry *e)
{
	if (e != NULL) {
		free(e->reqs);
		free(e->internal);
		free(e);
	}
}

static int entry_add_req(struct entry *e, uint64_t session, uint64_t req_id)
{
	if (session == 0) {
		return 0;
	}
	if (e->n_reqs == e->cap_reqs) {
		unsigned cap = e->cap_reqs == 0 ? 64 : e->cap_reqs * 2;
		struct entry_req *p = realloc(e->reqs, cap * sizeof *p);
		if (p == NULL) {
			return -1;
		}
		e->reqs = p;
		e->cap_reqs = cap;
	}
	e->reqs[e->n_reqs].session = session;
	e->reqs[e->n_reqs].req_id = req_id;
	e->n_reqs++;
	return 0;
}

/* Copies an internal command with its CONFIG keys into `dst`. */
static void internal_copy(struct internal_cmd *dst, const struct fsm_cmd *cmd)
{
	dst->cmd = *cmd;
	if (cmd->type == FSM_CMD_CONFIG) {
		uint32_t n = cmd->u.config.n_kv;
		if (n > NODE_CONFIG_KV_MAX) {
			n = NODE_CONFIG_KV_MAX;
		}
		memcpy(dst->kv, cmd->u.config.kv, n * sizeof dst->kv[0]);
		dst->cmd.u.config.kv = dst->kv;
		dst->cmd.u.config.n_kv = n;
	}
}

/* Internal commands worth proposing again when their entry failed while
 * this node still serves: a lost SESSION_DOWN leaves a ghost consumer, a
 * lost config bootstrap leaves the cluster on the defaults. Ticks and
 * checks are periodic; LEADER_ELECTED is retried by the tick. */
static int internal_keep(const struct fsm_cmd *cmd)
{
	return cmd->type == FSM_CMD_SESSION_DOWN || cmd->type == FSM_CMD_CONFIG;
}

static int internal_push(struct internal_cmd **v, unsigned *n, unsigned *cap,
                         const struct fsm_cmd *cmd)
{
	if (*n == *cap) {
		unsigned c = *cap == 0 ? 4 : *cap * 2;
		struct internal_cmd *p = realloc(*v, c * sizeof *p);
		if (p == NULL) {
			return -1;
		}
		*v = p;
		*cap = c;
	}
	internal_copy(&(*v)[*n], cmd);
	(*n)++;
	return 0;
}

static void requeue_cmd(struct node *n, const struct fsm_cmd *cmd)
{
	if (internal_push(&n->requeue, &n->n_requeue, &n->cap_requeue, cmd) !=
	    0) {
		/* Only on allocation failure: the next LEADER_ELECTED still
		 * ends every session, so this costs a ghost consumer at
		 * worst until then; say so loudly. */
		LOG_ERROR("out of memory keeping internal command %u",
		          cmd->type);
	}
}

static void requeue_clear(struct node *n)
{
	n->n_requeue = 0;
}

/* The internal commands of a failed entry go back in the queue while this
 * node serves (else the next LEADER_ELECTED covers them). */
static void requeue_entry(struct node *n, struct entry *e)
{
	if (!n->serving || n->stopping) {
		return;
	}
	for (unsigned i = 0; i < e->n_internal; i++) {
		if (internal_keep(&e->internal[i].cmd)) {
			LOG_DEBUG("internal command %u proposed again",
			          e->internal[i].cmd.type);
			requeue_cmd(n, &e->internal[i].cmd);
		}
	}
}

/* Answers every still-pending request of `e` with `code`. */
static void entry_fail(struct entry *e, int code, const char *why)
{
	for (unsigned i = 0; i < e->n_reqs; i++) {
		struct session *s =
		    node_session_find(e->node, e->reqs[i].session);
		if (s != NULL && !s->closing &&
		    reqset_has(&s->pending, e->reqs[i].req_id)) {
			session_write_error(s, e->reqs[i].req_id, code, why);
		}
	}
}

#ifdef RAFTMQ_TEST_FAULTS
static int entry_has(const struct entry *e, int type)
{
	for (unsigned i = 0; i < e->n_internal; i++) {
		if (e->internal[i].cmd.type == type) {
			return 1;
		}
	}
	return 0;
}
#endif

/* Drops the current batch, failing its requests with `code`. */
static void batch_drop(struct node *n, int code, const char *why)
{
	if (n->cur != NULL) {
		entry_fail(n->cur, code, why);
	}
	fsm_batch_reset(&n->batch);
	entry_free(n->cur);
	n->cur = entry_new(n);
}

/* Stamps `cmd` with the cluster clock and the wall clock, encodes it into
 * the current batch and records it in the current entry. Returns 0,
 * WIRE_ENOMEM, WIRE_EINVAL, or WIRE_ETOOBIG when the batch has no room for
 * it (then *alone = the size of an entry holding only this command). The
 * batch is unchanged on error. Never flushes. */
static int batch_put(struct node *n, struct fsm_cmd *cmd, size_t *alone)
{
	size_t len0 = n->batch.len;
	uint32_t count0 = n->batch.count;
	size_t limit = entry_limit(n);
	uint64_t wall = node_now_ms();
	int rv;

	if (n->cur == NULL && (n->cur = entry_new(n)) == NULL) {
		return WIRE_ENOMEM;
	}
	cmd->time = node_clock_stamp(&n->clock, uv_hrtime(), wall);
	cmd->wall = wall;
	rv = fsm_batch_add(&n->batch, cmd);
	if (rv != 0) {
		return rv == FSM_ENOMEM ? WIRE_ENOMEM : WIRE_EINVAL;
	}
	if (fsm_batch_size(&n->batch) > limit) {
		/* Measured by encoding it; roll back. */
		*alone =
		    FSM_ENTRY_HEADER + ((n->batch.len - len0 + 7) & ~(size_t)7);
		n->batch.len = len0;
		n->batch.count = count0;
		return WIRE_ETOOBIG;
	}
	if (cmd->session == 0) {
		if (internal_push(&n->cur->internal, &n->cur->n_internal,
		                  &n->cur->cap_internal, cmd) != 0) {
			LOG_WARN("out of memory tracking internal command %u",
			         cmd->type);
		}
	} else if (entry_add_req(n->cur, cmd->session, cmd->req_id) != 0) {
		/* The command is in the batch: its reply will still come. */
		LOG_WARN("out of memory tracking a request");
	}
	return 0;
}

/* Re-queued internal commands go into the current batch (those that do
 * not fit wait for the next one). */
static void requeue_drain(struct node *n)
{
	unsigned i, kept = 0;
	size_t alone;

	if (n->n_requeue == 0) {
		return;
	}
	if (!n->serving || n->stopping) {
		requeue_clear(n);
		return;
	}
	for (i = 0; i < n->n_requeue; i++) {
		struct internal_cmd ic;
		internal_copy(&ic, &n->requeue[i].cmd);
		if (batch_put(n, &ic.cmd, &alone) != 0) {
			internal_copy(&n->requeue[kept++], &ic.cmd);
		}
	}
	n->n_requeue = kept;
}

static void propose_cb(void *arg, int status)
{
	struct entry *e = arg;
	struct node *n = e->node;

	if (status != RG_OK) {
		entry_fail(e, WIRE_EUNKNOWN,
		           "leadership lost: outcome unknown, retry");
		requeue_entry(n, e);
	}
	if (e->is_elected) {
		if (status == RG_OK && n->role == RG_ROLE_LEADER &&
		    n->term == e->term && !n->stopping && !is_diverged(n)) {
			n->serving = 1;
			n->check_sent = 0;
			LOG_INFO("leader of term %llu: serving clients",
			         (unsigned long long)e->term);
		} else {
			/* The tick tries again while we lead. */
			n->elected_term = 0;
		}
	}
	if (e->is_tick) {
		n->tick_inflight = 0;
	}
	if (e->is_check) {
		n->check_inflight = 0;
	}
	entry_free(e);
	node_flush(n);
	if (n->n_paused > 0) {
		node_resume_sessions(n);
	}
}

void node_flush(struct node *n)
{
	const void *buf;
	size_t len;
	struct entry *e;
	int rv;

	if (n->rg == NULL) {
		return;
	}
	requeue_drain(n);
	if (n->batch.count == 0 || n->cur == NULL) {
		return;
	}
	if (rg_inflight(n->rg) >= rg_max_inflight(n->rg)) {
		return; /* propose_cb calls us again */
	}
	e = n->cur;
	if (fsm_batch_finish(&n->batch, &buf, &len) != 0) {
		entry_fail(e, WIRE_EBUSY, "out of memory");
		requeue_entry(n, e);
		goto reset;
	}
#ifdef RAFTMQ_TEST_FAULTS
	if ((n->cfg->fault == 3 ||
	     (n->cfg->fault == 4 && entry_has(e, FSM_CMD_SESSION_DOWN))) &&
	    !n->fault_fired) {
		/* Test-only faults 3 and 4: the first proposal of this
		 * process (3), or the first one carrying a SESSION_DOWN (4),
		 * is refused as if raft had no disk space. */
		n->fault_fired = 1;
		LOG_WARN("test fault %d: proposal refused", n->cfg->fault);
		rv = RG_NOSPACE;
	} else
#endif
		rv = rg_propose(n->rg, buf, len, propose_cb, e);
	if (rv == RG_OK) {
		n->cur = entry_new(n);
		fsm_batch_reset(&n->batch);
		return;
	}
	LOG_DEBUG("propose: %s", rg_strerror(rv));
	entry_fail(e, rv == RG_NOTLEADER ? WIRE_ENOTLEADER : WIRE_EBUSY,
	           rv == RG_NOTLEADER ? "not the leader any more"
	                              : rg_strerror(rv));
	requeue_entry(n, e);
	if (e->is_elected) {
		n->elected_term = 0;
	}
	if (e->is_tick) {
		n->tick_inflight = 0;
	}
	if (e->is_check) {
		n->check_inflight = 0;
	}
reset:
	entry_free(n->cur);
	n->cur = entry_new(n);
	fsm_batch_reset(&n->batch);
}

int node_saturated(struct node *n)
{
	const struct fsm_config *fc = fsm_config_get(n->fsm);
	size_t limit = entry_limit(n);
	size_t keep = (size_t)fc->max_payload + CMD_SLACK;
	size_t room = limit > keep ? limit - keep : 0;

	if (n->batch.count == 0 || fsm_batch_size(&n->batch) <= room) {
		return 0;
	}
	node_flush(n);
	return n->batch.count > 0;
}

/* Adds one client command to the current batch. Returns 0 or a wire error
 * code, with a text in `why` (size 160) for WIRE_ETOOBIG. */
static int batch_add(struct node *n, struct fsm_cmd *cmd, char *why)
{
	size_t alone = 0;
	int rv;

	if (node_saturated(n)) {
		return WIRE_EBUSY;
	}
	rv = batch_put(n, cmd, &alone);
	if (rv == WIRE_ETOOBIG && alone <= entry_limit(n) &&
	    n->batch.count > 0) {
		/* It fits an entry of its own: propose what we have. */
		node_flush(n);
		if (n->batch.count > 0) {
			return WIRE_EBUSY;
		}
		rv = batch_put(n, cmd, &alone);
	}
	if (rv == WIRE_ETOOBIG) {
		/* Never retryable: no entry can ever hold it. */
		snprintf(why, 160,
		         "request of %zu bytes exceeds the entry limit %zu "
		         "(max_entry)",
		         alone, entry_limit(n));
	}
	return rv;
}

/* Adds one internal command (session 0). Never dropped: when it cannot go
 * into the current batch it waits in the re-queue list. */
static int internal_add(struct node *n, struct fsm_cmd *cmd)
{
	size_t alone;
	int rv = batch_put(n, cmd, &alone);

	if (rv == WIRE_ETOOBIG && n->batch.count > 0) {
		node_flush(n);
		rv = batch_put(n, cmd, &alone);
	}
	return rv;
}

void node_submit_cmd(struct node *n, const struct fsm_cmd *cmd)
{
	struct internal_cmd ic;

	internal_copy(&ic, cmd);
	ic.cmd.session = 0;
	if (!n->serving || n->stopping) {
		return; /* the next LEADER_ELECTED ends every session */
	}
	if (internal_add(n, &ic.cmd) != 0) {
		LOG_DEBUG("internal command %u queued for the next batch",
		          ic.cmd.type);
		requeue_cmd(n, &ic.cmd);
	}
}

void node_commands_free(struct node *n)
{
	entry_free(n->cur);
	n->cur = NULL;
	free(n->requeue);
	n->requeue = NULL;
	n->n_requeue = n->cap_requeue = 0;
}

/* ---------------------------------------------------------------------
 * Reads, answered after a raft barrier. */

static void copy_opts(struct fsm_queue_opts *o, const struct wire_queue_opts *w)
{
	o->ack_timeout = w->ack_timeout;
	o->max_deliveries = w->max_deliveries;
	o->dlq = w->dlq.ptr;
	o->message_ttl = w->message_ttl;
	o->delay = w->delay;
	o->max_length = w->max_length;
	o->max_bytes = w->max_bytes;
	o->overflow = w->overflow;
	o->dedup_window = w->dedup_window;
	o->exclusive = w->exclusive;
	o->auto_delete = w->auto_delete;
}

static void stats_to_wire(struct wire_queue_stats *w, const char *name,
                          uint32_t name_len, const struct fsm_queue_stats *s)
{
	memset(w, 0, sizeof *w);
	w->name.ptr = name;
	w->name.len = name_len;
	w->queue_id = s->queue_id;
	w->ready = s->ready;
	w->delayed = s->delayed;
	w->in_flight = s->in_flight;
	w->bytes = s->bytes;
	w->consumers = s->consumers;
	w->published = s->published;
	w->acked = s->acked;
	w->dead_lettered = s->dead_lettered;
	w->expired = s->expired;
	w->dropped = s->dropped;
	w->deduplicated = s->deduplicated;
	w->last_seq = s->last_seq;
	w->opts.ack_timeout = s->opts.ack_timeout;
	w->opts.max_deliveries = s->opts.max_deliveries;
	w->opts.dlq.ptr = s->opts.dlq != NULL ? s->opts.dlq : "";
	w->opts.dlq.len = (uint32_t)strlen(w->opts.dlq.ptr);
	w->opts.message_ttl = s->opts.message_ttl;
	w->opts.delay = s->opts.delay;
	w->opts.max_length = s->opts.max_length;
	w->opts.max_bytes = s->opts.max_bytes;
	w->opts.overflow = s->opts.overflow;
	w->opts.dedup_window = s->opts.dedup_window;
	w->opts.exclusive = s->opts.exclusive;
	w->opts.auto_delete = s->opts.auto_delete;
}

static void reply_stats(struct session *s, uint64_t req_id, const char *name,
                        uint32_t name_len)
{
	struct fsm_queue_stats st;
	struct wire_msg m;
	int rv = fsm_queue_stats(s->node->fsm, name, name_len, &st);

	if (rv != FSM_OK) {
		session_write_error(s, req_id, rv, fsm_status_str(rv));
		return;
	}
	wire_msg_init(&m, WIRE_OP_OK, req_id);
	m.present = WIRE_BIT(WIRE_F_STATS);
	stats_to_wire(&m.stats, name, name_len, &st);
	if (wire_encode(&s->c.out, &m) != 0) {
		session_write_error(s, req_id, WIRE_ENOMEM, NULL);
		return;
	}
	session_reply_done(s, req_id);
}

struct list_ctx {
	struct session *s;
	struct wire_list l;
	int failed;
};

static void list_queue_cb(void *data, const char *name, uint32_t len,
                          const struct fsm_queue_stats *st)
{
	struct list_ctx *x = data;
	struct wire_queue_stats w;

	stats_to_wire(&w, name, len, st);
	if (!x->failed && wire_list_add_queue(&x->s->c.out, &x->l, &w) != 0) {
		x->failed = 1;
	}
}

static void list_topic_cb(void *data, const char *name, uint32_t len,
                          uint8_t kind, const struct fsm_binding_view *b,
                          uint32_t n_bindings)
{
	struct list_ctx *x = data;
	struct wire_binding *wb;

	if (x->failed) {
		return;
	}
	wb = calloc(n_bindings + 1, sizeof *wb);
	if (wb == NULL) {
		x->failed = 1;
		return;
	}
	for (uint32_t i = 0; i < n_bindings; i++) {
		wb[i].queue.ptr = b[i].queue;
		wb[i].queue.len = b[i].queue_len;
		wb[i].key.ptr = b[i].key;
		wb[i].key.len = b[i].key_len;
	}
	if (wire_list_add_topic(&x->s->c.out, &x->l, name, len, kind, wb,
	                        n_bindings) != 0) {
		x->failed = 1;
	}
	free(wb);
}

static void reply_list(struct session *s, uint64_t req_id, int topics)
{
	struct list_ctx x = {.s = s, .failed = 0};

	if (wire_list_begin(&s->c.out, &x.l, req_id,
	                    topics ? WIRE_F_TOPICS : WIRE_F_LIST) != 0) {
		session_write_error(s, req_id, WIRE_ENOMEM, NULL);
		return;
	}
	if (topics) {
		fsm_topic_foreach(s->node->fsm, list_topic_cb, &x);
	} else {
		fsm_queue_foreach(s->node->fsm, list_queue_cb, &x);
	}
	if (x.failed) {
		s->c.out.len = x.l.frame_off;
		session_write_error(s, req_id, WIRE_ENOMEM, NULL);
		return;
	}
	wire_list_end(&s->c.out, &x.l);
	session_reply_done(s, req_id);
}

static void reply_config(struct session *s, uint64_t req_id)
{
	struct fsm_config_kv kv[NODE_CONFIG_KV_MAX];
	struct wire_kv w[NODE_CONFIG_KV_MAX];
	struct wire_msg m;
	uint32_t n = fsm_config_to_kv(fsm_config_get(s->node->fsm), kv,
	                              NODE_CONFIG_KV_MAX);

	if (n > NODE_CONFIG_KV_MAX) {
		n = NODE_CONFIG_KV_MAX;
	}
	for (uint32_t i = 0; i < n; i++) {
		w[i].key.ptr = kv[i].key;
		w[i].key.len = kv[i].key_len;
		w[i].value = kv[i].value;
	}
	wire_msg_init(&m, WIRE_OP_OK, req_id);
	m.present = WIRE_BIT(WIRE_F_CONFIG);
	m.config = w;
	m.n_config = n;
	if (wire_encode(&s->c.out, &m) != 0) {
		session_write_error(s, req_id, WIRE_ENOMEM, NULL);
		return;
	}
	session_reply_done(s, req_id);
}

static void read_answer(struct node *n, struct read_req *r, int code,
                        const char *why)
{
	struct session *s = node_session_find(n, r->session);

	if (s == NULL || s->closing || !reqset_has(&s->pending, r->req_id)) {
		return;
	}
	if (code != 0) {
		session_write_error(s, r->req_id, code, why);
		return;
	}
	switch (r->op) {
	case WIRE_OP_QUEUE_STATS:
		reply_stats(s, r->req_id, r->name, r->name_len);
		break;
	case WIRE_OP_QUEUE_LIST:
		reply_list(s, r->req_id, 0);
		break;
	case WIRE_OP_TOPIC_LIST:
		reply_list(s, r->req_id, 1);
		break;
	case WIRE_OP_CONFIG_GET:
		reply_config(s, r->req_id);
		break;
	default:
		session_write_error(s, r->req_id, WIRE_EPROTO,
		                    "unsupported request");
		break;
	}
}

static void reads_answer(struct node *n, struct read_req *list, int code,
                         const char *why)
{
	while (list != NULL) {
		struct read_req *next = list->next;
		read_answer(n, list, code, why);
		free(list);
		list = next;
	}
}

static void reads_kick(struct node *n);

static void barrier_cb(void *arg, int status)
{
	struct node *n = arg;
	struct read_req *list = n->reads_barrier;

	n->barrier_inflight = 0;
	n->reads_barrier = NULL;
	if (status == RG_OK && n->serving && !is_diverged(n)) {
		reads_answer(n, list, 0, NULL);
	} else {
		reads_answer(n, list, WIRE_ENOTLEADER,
		             "leadership lost before the read was confirmed; "
		             "retry");
	}
	reads_kick(n);
}

/* Every read that arrived since the last barrier waits for the next one:
 * at most one barrier in flight. */
static void reads_kick(struct node *n)
{
	struct read_req *list = n->reads;
	int rv;

	if (n->barrier_inflight || list == NULL) {
		return;
	}
	n->reads = NULL;
	n->reads_tail = &n->reads;
	if (n->stopping || n->rg == NULL || !n->serving) {
		reads_answer(n, list, WIRE_ENOTLEADER,
		             "not the leader any more");
		return;
	}
	rv = rg_barrier(n->rg, barrier_cb, n);
	if (rv != RG_OK) {
		reads_answer(n, list,
		             rv == RG_NOTLEADER ? WIRE_ENOTLEADER : WIRE_EBUSY,
		             rv == RG_NOTLEADER ? "not the leader any more"
		                                : rg_strerror(rv));
		return;
	}
	n->reads_barrier = list;
	n->barrier_inflight = 1;
}

static void read_enqueue(struct session *s, const struct wire_msg *m)
{
	struct node *n = s->node;
	uint32_t nl = m->op == WIRE_OP_QUEUE_STATS ? m->name.len : 0;
	struct read_req *r = malloc(sizeof *r + nl + 1);

	if (r == NULL) {
		session_write_error(s, m->req_id, WIRE_ENOMEM, NULL);
		return;
	}
	r->next = NULL;
	r->session = s->id;
	r->req_id = m->req_id;
	r->op = m->op;
	r->name_len = nl;
	if (nl > 0) {
		memcpy(r->name, m->name.ptr, nl);
	}
	r->name[nl] = '\0';
	if (n->reads_tail == NULL) {
		n->reads_tail = &n->reads;
	}
	*n->reads_tail = r;
	n->reads_tail = &r->next;
	reads_kick(n);
}

/* ---------------------------------------------------------------------
 * Requests of LOCAL sessions. */

/* Bytes of a whole message as the replicated max_payload counts them. */
static uint64_t message_size(const struct wire_msg *m)
{
	uint64_t size = (uint64_t)m->payload.len + m->id.len + m->type.len +
	                m->correlation_id.len + m->reply_to.len;

	for (uint32_t i = 0; i < m->n_headers; i++) {
		size += (uint64_t)m->headers[i].key_len + m->headers[i].val_len;
	}
	return size;
}

/* CONFIG_SET -> a CONFIG command (bootstrap 0), checked here first so that
 * the error names the key. Returns 0, or answers the request and returns
 * -1. */
static int config_set_cmd(struct session *s, const struct wire_msg *m,
                          struct fsm_cmd *cmd, struct fsm_config_kv *kv)
{
	struct fsm_config c = *fsm_config_get(s->node->fsm);
	struct wire_iter it;
	struct wire_kv w;
	uint32_t n = 0;
	char msg[200];
	size_t off = 0;
	int r;

	wire_iter_init(&it, &m->config_raw);
	while ((r = wire_next_config(&it, &w)) == 1) {
		if (n == NODE_CONFIG_KV_MAX) {
			session_write_error(s, m->req_id, WIRE_EINVAL,
			                    "too many configuration keys");
			return -1;
		}
		if (fsm_config_set_kv(&c, w.key.ptr, w.key.len, w.value) != 0) {
			snprintf(msg, sizeof msg,
			         "unknown configuration key '%.*s' (see "
			         "'raftmq cluster config get')",
			         (int)(w.key.len > 64 ? 64 : w.key.len),
			         w.key.ptr);
			session_write_error(s, m->req_id, WIRE_EINVAL, msg);
			return -1;
		}
		kv[n].key = w.key.ptr;
		kv[n].key_len = w.key.len;
		kv[n].value = w.value;
		n++;
	}
	if (r < 0 || n == 0) {
		session_write_error(s, m->req_id, WIRE_EINVAL,
		                    r < 0 ? "malformed configuration list"
		                          : "no configuration key given");
		return -1;
	}
	if (!fsm_config_valid(&c) ||
	    c.max_entry < (uint64_t)c.max_payload + CMD_SLACK) {
		off = (size_t)snprintf(msg, sizeof msg, "invalid value for");
		for (uint32_t i = 0; i < n && off < sizeof msg - 1; i++) {
			off += (size_t)snprintf(
			    msg + off, sizeof msg - off, "%s %.*s=%" PRIu64,
			    i ? "," : "",
			    (int)(kv[i].key_len > 40 ? 40 : kv[i].key_len),
			    kv[i].key, kv[i].value);
		}
		if (off < sizeof msg - 1) {
			snprintf(msg + off, sizeof msg - off,
			         ": out of range, or max_entry would not "
			         "exceed max_payload by %d",
			         CMD_SLACK);
		}
		session_write_error(s, m->req_id, WIRE_EINVAL, msg);
		return -1;
	}
	cmd->type = FSM_CMD_CONFIG;
	cmd->u.config.bootstrap = 0;
	cmd->u.config.kv = kv;
	cmd->u.config.n_kv = n;
	return 0;
}

void session_answer_local(struct session *s, const struct wire_msg *m)
{
	struct node *n = s->node;
	struct fsm_config_kv kv[NODE_CONFIG_KV_MAX];
	struct fsm_cmd cmd;
	char why[160];
	int rv;

	if (is_diverged(n)) {
		session_write_error(s, m->req_id, WIRE_EUNAVAILABLE,
		                    NODE_DIVERGED_TEXT);
		return;
	}
	switch (m->op) {
	case WIRE_OP_QUEUE_STATS:
	case WIRE_OP_QUEUE_LIST:
	case WIRE_OP_TOPIC_LIST:
	case WIRE_OP_CONFIG_GET:
		read_enqueue(s, m);
		return;
	default:
		break;
	}
	memset(&cmd, 0, sizeof cmd);
	cmd.session = s->id;
	cmd.req_id = m->req_id;
	switch (m->op) {
	case WIRE_OP_QUEUE_DECLARE:
		cmd.type = FSM_CMD_QUEUE_DECLARE;
		cmd.u.declare.name = m->name.ptr;
		cmd.u.declare.name_len = m->name.len;
		copy_opts(&cmd.u.declare.opts, &m->opts);
		cmd.u.declare.dlq_len = m->opts.dlq.len;
		break;
	case WIRE_OP_QUEUE_DELETE:
	case WIRE_OP_QUEUE_PURGE:
		cmd.type = m->op == WIRE_OP_QUEUE_DELETE ? FSM_CMD_QUEUE_DELETE
		                                         : FSM_CMD_QUEUE_PURGE;
		cmd.u.qdelete.name = m->name.ptr;
		cmd.u.qdelete.name_len = m->name.len;
		cmd.u.qdelete.if_empty = m->if_empty;
		break;
	case WIRE_OP_TOPIC_DECLARE:
	case WIRE_OP_TOPIC_DELETE:
		cmd.type = m->op == WIRE_OP_TOPIC_DECLARE
		               ? FSM_CMD_TOPIC_DECLARE
		               : FSM_CMD_TOPIC_DELETE;
		cmd.u.topic.name = m->name.ptr;
		cmd.u.topic.name_len = m->name.len;
		cmd.u.topic.kind = m->kind;
		break;
	case WIRE_OP_BIND:
	case WIRE_OP_UNBIND:
		cmd.type =
		    m->op == WIRE_OP_BIND ? FSM_CMD_BIND : FSM_CMD_UNBIND;
		cmd.u.bind.topic = m->topic.ptr;
		cmd.u.bind.topic_len = m->topic.len;
		cmd.u.bind.queue = m->queue.ptr;
		cmd.u.bind.queue_len = m->queue.len;
		cmd.u.bind.key = m->key.ptr;
		cmd.u.bind.key_len = m->key.len;
		break;
	case WIRE_OP_PUBLISH: {
		uint64_t size = message_size(m);
		uint32_t max = fsm_config_get(n->fsm)->max_payload;
		if (size > max) {
			char msg[128];
			snprintf(msg, sizeof msg,
			         "message of %" PRIu64
			         " bytes (payload, ids, type, reply-to and "
			         "headers) exceeds max_payload %u",
			         size, max);
			session_write_error(s, m->req_id, WIRE_ETOOBIG, msg);
			return;
		}
		max = fsm_config_get(n->fsm)->max_headers;
		if (m->n_headers > max) {
			char msg[128];
			snprintf(
			    msg, sizeof msg,
			    "%u headers exceed max_headers %u (%u more are "
			    "kept for dead-lettering)",
			    m->n_headers, max, FSM_DLQ_HEADERS);
			session_write_error(s, m->req_id, WIRE_EINVAL, msg);
			return;
		}
	}
#ifdef RAFTMQ_TEST_FAULTS
		if (n->cfg->fault == 1) {
			/* Test-only fault 1: confirm a publish without
			 * proposing it (ack before commit). The chaos harness
			 * must report the resulting losses. */
			struct wire_msg ok;
			wire_msg_init(&ok, WIRE_OP_OK, m->req_id);
			ok.present = WIRE_BIT(WIRE_F_SEQ) |
			             WIRE_BIT(WIRE_F_QUEUES) |
			             WIRE_BIT(WIRE_F_DUPLICATE);
			ok.queues = 1;
			if (wire_encode(&s->c.out, &ok) == 0) {
				session_reply_done(s, m->req_id);
			}
			return;
		}
#endif
		cmd.type = FSM_CMD_PUBLISH;
		cmd.u.publish.topic = m->topic.ptr;
		cmd.u.publish.topic_len = m->topic.len;
		cmd.u.publish.key = m->key.ptr;
		cmd.u.publish.key_len = m->key.len;
		cmd.u.publish.msg.id = m->id.ptr;
		cmd.u.publish.msg.id_len = m->id.len;
		cmd.u.publish.msg.type = m->type.ptr;
		cmd.u.publish.msg.type_len = m->type.len;
		cmd.u.publish.msg.correlation_id = m->correlation_id.ptr;
		cmd.u.publish.msg.correlation_id_len = m->correlation_id.len;
		cmd.u.publish.msg.reply_to = m->reply_to.ptr;
		cmd.u.publish.msg.reply_to_len = m->reply_to.len;
		cmd.u.publish.msg.headers =
		    (const struct fsm_header *)m->headers;
		cmd.u.publish.msg.n_headers = m->n_headers;
		cmd.u.publish.msg.payload = m->payload.ptr;
		cmd.u.publish.msg.payload_len = m->payload.len;
		cmd.u.publish.msg.ttl = m->ttl;
		cmd.u.publish.msg.delay = m->delay;
		break;
	case WIRE_OP_CONSUME:
		cmd.type = FSM_CMD_CONSUME;
		cmd.u.consume.queue = m->queue.ptr;
		cmd.u.consume.queue_len = m->queue.len;
		cmd.u.consume.prefetch = m->prefetch;
		break;
	case WIRE_OP_CANCEL:
		cmd.type = FSM_CMD_CANCEL;
		cmd.u.cancel.consumer = m->consumer;
		break;
	case WIRE_OP_GET:
		cmd.type = FSM_CMD_GET;
		cmd.u.get.queue = m->queue.ptr;
		cmd.u.get.queue_len = m->queue.len;
		cmd.u.get.max = m->max;
		cmd.u.get.timeout = m->timeout;
		break;
	case WIRE_OP_ACK:
	case WIRE_OP_NACK:
	case WIRE_OP_EXTEND:
		cmd.type = m->op == WIRE_OP_ACK    ? FSM_CMD_ACK
		           : m->op == WIRE_OP_NACK ? FSM_CMD_NACK
		                                   : FSM_CMD_EXTEND;
		cmd.u.settle.queue_id = m->queue_id;
		cmd.u.settle.seq = m->seq;
		cmd.u.settle.mode = m->mode;
		cmd.u.settle.timeout = m->timeout;
		break;
	case WIRE_OP_CONFIG_SET:
		if (config_set_cmd(s, m, &cmd, kv) != 0) {
			return;
		}
		break;
	default:
		session_write_error(s, m->req_id, WIRE_EPROTO,
		                    "unsupported request");
		return;
	}
	if (cmd.type == FSM_CMD_CONSUME || cmd.type == FSM_CMD_GET) {
		s->fsm_state = 1;
	}
	why[0] = '\0';
	rv = batch_add(n, &cmd, why);
	if (rv != 0) {
		session_write_error(s, m->req_id, rv,
		                    rv == WIRE_EBUSY
		                        ? "leader is saturated; retry"
		                    : why[0] != '\0' ? why
		                                     : NULL);
	}
}

/* ---------------------------------------------------------------------
 * The fsm sink: results and deliveries of applied commands. It runs on
 * every node (session 0 results included), also while the log is replayed.
 */

void node_sink_result(void *data, const struct fsm_result *r)
{
	struct node *n = data;
	struct session *s;
	struct wire_msg m;

	if (r->type == FSM_CMD_CHECK && r->status == FSM_EDIVERGED) {
		/* Handled from the tick, outside raft's apply. */
		n->diverged = 1;
	}
	if (r->session == 0 || (s = node_session_find(n, r->session)) == NULL ||
	    s->closing) {
		return;
	}
	if (r->status != FSM_OK) {
		session_write_error(s, r->req_id, r->status,
		                    fsm_status_str(r->status));
		return;
	}
	wire_msg_init(&m, WIRE_OP_OK, r->req_id);
	m.present = 0;
	switch (r->type) {
	case FSM_CMD_QUEUE_DECLARE:
		m.present =
		    WIRE_BIT(WIRE_F_QUEUE_ID) | WIRE_BIT(WIRE_F_CREATED);
		m.queue_id = r->u.declare.queue_id;
		m.created = r->u.declare.created;
		break;
	case FSM_CMD_QUEUE_DELETE:
	case FSM_CMD_QUEUE_PURGE:
		m.present = WIRE_BIT(WIRE_F_REMOVED);
		m.removed = r->u.removed.removed;
		break;
	case FSM_CMD_PUBLISH:
		m.present = WIRE_BIT(WIRE_F_SEQ) | WIRE_BIT(WIRE_F_QUEUES) |
		            WIRE_BIT(WIRE_F_DUPLICATE);
		m.seq = r->u.publish.seq;
		m.queues = r->u.publish.queues;
		m.duplicate = r->u.publish.duplicate;
		break;
	case FSM_CMD_CONSUME:
		m.present =
		    WIRE_BIT(WIRE_F_CONSUMER) | WIRE_BIT(WIRE_F_QUEUE_ID);
		m.consumer = r->u.consume.consumer;
		m.queue_id = r->u.consume.queue_id;
		break;
	case FSM_CMD_GET:
		m.present = WIRE_BIT(WIRE_F_COUNT);
		m.count = r->u.get.count;
		break;
	default:
		break;
	}
	if (wire_encode(&s->c.out, &m) != 0) {
		session_close(s, WIRE_ENOMEM, "out of memory");
		return;
	}
	session_reply_done(s, r->req_id);
}

void node_sink_effect(void *data, const struct fsm_delivery *d)
{
	struct node *n = data;
	struct session *s = node_session_find(n, d->session);
	struct wire_msg m;

	if (s == NULL || s->closing) {
		return;
	}
	if (d->type == FSM_EFFECT_CANCELLED) {
		wire_msg_init(&m, WIRE_OP_CANCELLED, 0);
		m.consumer = d->consumer;
		m.reason = (uint32_t)d->reason;
		m.message.ptr = d->reason == FSM_ENOQUEUE
		                    ? "queue deleted"
		                    : "consumer cancelled";
		m.message.len = (uint32_t)strlen(m.message.ptr);
	} else {
		const struct fsm_msg_view *v = &d->msg;
		wire_msg_init(&m, WIRE_OP_DELIVER, d->consumer ? 0 : d->req_id);
		m.consumer = d->consumer;
		m.queue.ptr = d->queue;
		m.queue.len = d->queue_len;
		m.queue_id = d->queue_id;
		m.seq = v->seq;
		m.delivery_count = v->delivery_count;
		m.redelivered = v->delivery_count > 1;
		m.timestamp = v->timestamp;
		m.id.ptr = v->m.id != NULL ? v->m.id : "";
		m.id.len = v->m.id_len;
		m.type.ptr = v->m.type != NULL ? v->m.type : "";
		m.type.len = v->m.type_len;
		m.correlation_id.ptr =
		    v->m.correlation_id != NULL ? v->m.correlation_id : "";
		m.correlation_id.len = v->m.correlation_id_len;
		m.reply_to.ptr = v->m.reply_to != NULL ? v->m.reply_to : "";
		m.reply_to.len = v->m.reply_to_len;
		m.headers = (const struct wire_header *)v->m.headers;
		m.n_headers = v->m.n_headers;
		m.payload.ptr = v->m.payload != NULL ? v->m.payload : "";
		m.payload.len = v->m.payload_len;
	}
	/* Never closes the session for its deliveries: the FSM bounds what
	 * is in flight to one session (session_window). */
	session_queue_delivery(s, &m);
}

/* ---------------------------------------------------------------------
 * Replicated configuration, divergence, STATUS. */

static void config_diff_cb(void *arg, const char *flag, uint64_t mine,
                           uint64_t theirs)
{
	(void)arg;
	LOG_WARN("--%s %" PRIu64 " differs from the cluster's %" PRIu64
	         "; using %" PRIu64
	         "; change it with raftmq cluster config set",
	         flag, mine, theirs, theirs);
}

void node_config_check(struct node *n)
{
	uint64_t v = fsm_config_version(n->fsm);
	struct rg_info info;

	if (v == n->config_seen || !fsm_config_is_set(n->fsm) ||
	    n->rg == NULL) {
		return;
	}
	rg_info(n->rg, &info);
	if (info.applied_index < info.commit_index) {
		return; /* replaying the log: compare with the final value */
	}
	n->config_seen = v;
	node_config_fsm_diff(n->cfg, fsm_config_get(n->fsm), config_diff_cb, n);
}

/* This replica differs from the leader's: it stops serving for good (a
 * restart rebuilds it from its own log, which the operator should replace:
 * docs/operations.md). Called from the tick, outside raft's apply. */
static void diverged_stop(struct node *n)
{
	if (n->diverged_stopped) {
		return;
	}
	n->diverged_stopped = 1;
	n->diverged = 1;
	LOG_ERROR("this replica DIVERGED from the leader's (its digest "
	          "differs at a CHECK; %" PRIu64 " commands applied, digest "
	          "%016" PRIx64
	          "): it no longer serves clients; see 'Divergence' in "
	          "docs/operations.md",
	          fsm_applied(n->fsm), fsm_digest(n->fsm));
	if (n->serving) {
		n->serving = 0;
		batch_drop(n, WIRE_EUNAVAILABLE, NODE_DIVERGED_TEXT);
	}
	requeue_clear(n);
	node_clock_stop(&n->clock);
	/* No leader to proxy to, as far as clients are concerned. */
	n->leader_id = 0;
	node_close_sessions(n, WIRE_EUNAVAILABLE, NODE_DIVERGED_TEXT, 0);
	if (n->role == RG_ROLE_LEADER && rg_transfer(n->rg) != RG_OK) {
		LOG_WARN("diverged leader: leadership transfer failed");
	}
}

void node_status_fill(struct node *n, struct wire_msg *m)
{
	m->present |= WIRE_BIT(WIRE_F_APPLIED) | WIRE_BIT(WIRE_F_DIGEST) |
	              WIRE_BIT(WIRE_F_DIVERGED);
	m->applied = fsm_applied(n->fsm);
	m->digest = fsm_digest(n->fsm);
	m->diverged = (uint8_t)is_diverged(n);
}

const char *node_refusal(const struct node *n)
{
	return is_diverged(n) ? NODE_DIVERGED_TEXT : NULL;
}

uint32_t node_max_payload(const struct node *n)
{
	return fsm_config_get(n->fsm)->max_payload;
}

/* ---------------------------------------------------------------------
 * Leadership and time. */

/* A ready leader that does not serve yet proposes LEADER_ELECTED (with the
 * config bootstrap when the cluster never set its configuration) in an
 * entry of its own. From the role callback and, until it was applied, from
 * every tick: a failed proposal is retried while this node leads. */
static void propose_elected(struct node *n)
{
	struct internal_cmd ic;
	struct fsm_config_kv *kv = ic.kv;
	size_t alone;

	if (n->role != RG_ROLE_LEADER || !n->ready || n->serving ||
	    n->elected_term == n->term || n->stopping || is_diverged(n) ||
	    n->rg == NULL) {
		return;
	}
	if (rg_inflight(n->rg) >= rg_max_inflight(n->rg)) {
		return;
	}
	if (!n->clock.running) {
		/* Everything is applied (ready): fsm_now is the cluster
		 * clock. A fresh cluster starts at this leader's wall. */
		node_clock_start(&n->clock, fsm_now(n->fsm),
		                 !fsm_config_is_set(n->fsm), uv_hrtime(),
		                 node_now_ms());
	}
	requeue_clear(n);
	batch_drop(n, WIRE_ENOTLEADER, "not the leader any more");
	if (n->cur == NULL) {
		LOG_ERROR("cannot propose leader-elected: out of memory");
		return;
	}
	memset(&ic.cmd, 0, sizeof ic.cmd);
	ic.cmd.type = FSM_CMD_LEADER_ELECTED;
	ic.cmd.u.leader_elected.term = n->term;
	ic.cmd.u.leader_elected.node = n->cfg->id;
	if (batch_put(n, &ic.cmd, &alone) != 0) {
		LOG_ERROR("cannot propose leader-elected");
		batch_drop(n, WIRE_ENOTLEADER, "not the leader any more");
		return;
	}
	if (!fsm_config_is_set(n->fsm)) {
		/* The first leader seeds the replicated configuration from
		 * its flags; the FSM applies it only while none was set. */
		memset(&ic.cmd, 0, sizeof ic.cmd);
		ic.cmd.type = FSM_CMD_CONFIG;
		ic.cmd.u.config.bootstrap = 1;
		ic.cmd.u.config.kv = kv;
		ic.cmd.u.config.n_kv =
		    fsm_config_to_kv(&n->cfg->fsm, kv, NODE_CONFIG_KV_MAX);
		if (ic.cmd.u.config.n_kv > NODE_CONFIG_KV_MAX) {
			ic.cmd.u.config.n_kv = NODE_CONFIG_KV_MAX;
		}
		if (batch_put(n, &ic.cmd, &alone) != 0) {
			LOG_ERROR("cannot propose the configuration");
			batch_drop(n, WIRE_ENOTLEADER,
			           "not the leader any more");
			return;
		}
		LOG_INFO("proposing the cluster configuration from this "
		         "node's flags");
	}
	n->cur->is_elected = 1;
	n->cur->term = n->term;
	n->elected_term = n->term;
	node_flush(n);
}

void node_role_cb(void *data, int role, uint64_t term, uint64_t leader_id,
                  int ready)
{
	struct node *n = data;
	struct session *s, *next;

	if (n->diverged) {
		leader_id = 0; /* clients are not proxied by this replica */
	}
	if (role != n->role || term != n->term || leader_id != n->leader_id) {
		LOG_INFO("raft: %s, term %llu, leader %llu%s",
		         rg_role_name(role), (unsigned long long)term,
		         (unsigned long long)leader_id,
		         ready ? " (ready)" : "");
	}
	if (role != RG_ROLE_LEADER || term != n->term) {
		/* The cluster clock restarts from the FSM when we lead
		 * again. */
		node_clock_stop(&n->clock);
	}
	if (n->serving && (role != RG_ROLE_LEADER || term != n->term)) {
		n->serving = 0;
		LOG_INFO("no longer the serving leader: closing %u sessions",
		         n->n_sessions);
		batch_drop(n, WIRE_ENOTLEADER, "not the leader any more");
		requeue_clear(n);
		node_close_sessions(n, WIRE_EUNKNOWN,
		                    "leadership lost: outcome unknown, retry",
		                    1);
	}
	/* Proxies pointing to a node that no longer leads are closed: the
	 * consumer sessions behind them are gone with that leadership. */
	for (s = n->sessions; s != NULL; s = next) {
		next = s->next;
		if (s->mode == SESSION_PROXY && s->up_leader != leader_id) {
			session_close(s, WIRE_EUNKNOWN,
			              "leader changed: outcome unknown, retry");
		}
	}
	n->role = role;
	n->term = term;
	n->leader_id = leader_id;
	n->ready = ready;
	node_watch_update(n);
	propose_elected(n);
}

/* Divergence detector: the serving leader proposes its (applied, digest)
 * right after election and then every CHECK_INTERVAL_MS while commands
 * were applied, only between entries (current batch empty), in an entry of
 * its own. Entries in flight are applied before the CHECK on every replica
 * too; each compares with its own digest at that applied count when it has
 * one. A replica that missed or added commands has other counts: its
 * count at the CHECK may be below the leader's latest, so the entry also
 * carries the previous sample (older, which such a replica has passed). */
static void sample(struct node *n)
{
	uint64_t a = fsm_applied(n->fsm);

	if (a != n->sample_applied[0]) {
		n->sample_applied[1] = n->sample_applied[0];
		n->sample_digest[1] = n->sample_digest[0];
		n->sample_applied[0] = a;
		n->sample_digest[0] = fsm_digest(n->fsm);
	}
}

static void maybe_check(struct node *n)
{
	uint64_t now = uv_now(n->loop);
	uint64_t applied = fsm_applied(n->fsm);
	struct fsm_cmd cmd;
	size_t alone;

	if (!n->serving || n->check_inflight || n->batch.count > 0 ||
	    n->cur == NULL) {
		return;
	}
	if (n->check_sent && (now - n->check_at < CHECK_INTERVAL_MS ||
	                      applied <= n->check_applied + 2)) {
		return;
	}
	memset(&cmd, 0, sizeof cmd);
	cmd.type = FSM_CMD_CHECK;
	cmd.u.check.applied = applied;
	cmd.u.check.digest = fsm_digest(n->fsm);
	if (batch_put(n, &cmd, &alone) != 0) {
		return;
	}
	if (n->sample_applied[0] == applied && n->sample_applied[1] > 0 &&
	    n->sample_applied[1] < applied) {
		cmd.u.check.applied = n->sample_applied[1];
		cmd.u.check.digest = n->sample_digest[1];
		(void)batch_put(n, &cmd, &alone);
	}
	n->cur->is_check = 1;
	n->check_inflight = 1;
	n->check_sent = 1;
	n->check_at = now;
	n->check_applied = applied;
	node_flush(n);
}

void node_tick_cb(uv_timer_t *t)
{
	struct node *n = t->data;
	struct fsm_cmd cmd;
	uint64_t now;
	size_t alone;

	node_watch_update(n); /* retries a broken link to the leader */
	if (n->stopping) {
		return;
	}
	if (is_diverged(n)) {
		diverged_stop(n);
	}
	node_config_check(n);
	if (is_diverged(n)) {
		return;
	}
	sample(n);
	propose_elected(n);
	if (!n->serving) {
		return;
	}
	node_flush(n); /* re-queued internal commands */
	maybe_check(n);
	if (n->tick_inflight) {
		return;
	}
	now = node_clock_stamp(&n->clock, uv_hrtime(), node_now_ms());
	if (now < fsm_next_deadline(n->fsm)) {
		return;
	}
	memset(&cmd, 0, sizeof cmd);
	cmd.type = FSM_CMD_TICK;
	if (batch_put(n, &cmd, &alone) == 0) {
		n->cur->is_tick = 1;
		n->tick_inflight = 1;
		node_flush(n);
	}
}
