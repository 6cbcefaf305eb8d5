/* node/command: the leader's side. Client requests become FSM commands,
 * batched per loop turn into one Raft entry; applied results and deliveries
 * come back through the fsm sink and are written to the sessions.
 *
 * A reply is written only from the sink, i.e. after the entry was committed
 * and applied: no false success. When a proposal fails or its outcome is
 * unknown, every request it carried that is still unanswered gets a
 * retryable error. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "node.h"

/* The message headers decoded by wire are handed to the FSM as they are. */
_Static_assert(sizeof(struct wire_header) == sizeof(struct fsm_header),
               "wire_header and fsm_header differ");
_Static_assert(offsetof(struct wire_header, val_len) ==
                   offsetof(struct fsm_header, val_len),
               "wire_header and fsm_header differ");

/* Room kept for one more command when deciding whether a batch is full. */
#define CMD_SLACK 4096

uint64_t node_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
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

static void propose_cb(void *arg, int status)
{
	struct entry *e = arg;
	struct node *n = e->node;

	if (status != RG_OK) {
		entry_fail(e, WIRE_EUNKNOWN,
		           "leadership lost: outcome unknown, retry");
	}
	if (e->is_elected) {
		if (status == RG_OK && n->role == RG_ROLE_LEADER &&
		    n->term == e->term && !n->stopping) {
			n->serving = 1;
			LOG_INFO("leader of term %llu: serving clients",
			         (unsigned long long)e->term);
		} else {
			/* Try again on the next role report. */
			n->elected_term = 0;
		}
	}
	if (e->is_tick) {
		n->tick_inflight = 0;
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

	if (n->batch.count == 0 || n->cur == NULL) {
		return;
	}
	if (rg_inflight(n->rg) >= rg_max_inflight(n->rg)) {
		return; /* propose_cb calls us again */
	}
	if (fsm_batch_finish(&n->batch, &buf, &len) != 0) {
		entry_fail(n->cur, WIRE_EBUSY, "out of memory");
		goto reset;
	}
	e = n->cur;
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
	if (e->is_elected) {
		n->elected_term = 0;
	}
	if (e->is_tick) {
		n->tick_inflight = 0;
	}
reset:
	entry_free(n->cur);
	n->cur = entry_new(n);
	fsm_batch_reset(&n->batch);
}

int node_saturated(struct node *n)
{
	if (fsm_batch_size(&n->batch) + CMD_SLACK <=
	    n->cfg->max_entry - (size_t)n->cfg->fsm.max_payload) {
		return 0;
	}
	node_flush(n);
	return n->batch.count > 0;
}

/* Adds one command to the current batch. Returns 0 or a wire error code. */
static int batch_add(struct node *n, const struct fsm_cmd *cmd)
{
	int rv;

	if (n->cur == NULL && (n->cur = entry_new(n)) == NULL) {
		return WIRE_ENOMEM;
	}
	/* Client commands wait for room; the node's own small commands
	 * (session down, tick, leader elected) may use the headroom that the
	 * limit keeps, so that none of them is ever lost. */
	if (cmd->session != 0 && node_saturated(n)) {
		return WIRE_EBUSY;
	}
	rv = fsm_batch_add(&n->batch, cmd);
	if (rv != 0) {
		return rv == FSM_ENOMEM ? WIRE_ENOMEM : WIRE_EINVAL;
	}
	if (entry_add_req(n->cur, cmd->session, cmd->req_id) != 0) {
		/* The command is in the batch: its reply will still come. */
		LOG_WARN("out of memory tracking a request");
	}
	return 0;
}

void node_submit_cmd(struct node *n, const struct fsm_cmd *cmd)
{
	int rv = batch_add(n, cmd);
	if (rv != 0) {
		LOG_WARN("internal command %u dropped: %s", cmd->type,
		         wire_strerror(rv));
	}
}

/* ---------------------------------------------------------------------
 * Requests of LOCAL sessions. */

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

static void reply_stats(struct session *s, const struct wire_msg *req)
{
	struct fsm_queue_stats st;
	struct wire_msg m;
	int rv =
	    fsm_queue_stats(s->node->fsm, req->name.ptr, req->name.len, &st);

	if (rv != FSM_OK) {
		session_write_error(s, req->req_id, rv, fsm_status_str(rv));
		return;
	}
	wire_msg_init(&m, WIRE_OP_OK, req->req_id);
	m.present = WIRE_BIT(WIRE_F_STATS);
	stats_to_wire(&m.stats, req->name.ptr, req->name.len, &st);
	if (wire_encode(&s->c.out, &m) != 0) {
		session_write_error(s, req->req_id, WIRE_ENOMEM, NULL);
		return;
	}
	session_reply_done(s, req->req_id);
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

static void reply_list(struct session *s, const struct wire_msg *req,
                       int topics)
{
	struct list_ctx x = {.s = s, .failed = 0};

	if (wire_list_begin(&s->c.out, &x.l, req->req_id,
	                    topics ? WIRE_F_TOPICS : WIRE_F_LIST) != 0) {
		session_write_error(s, req->req_id, WIRE_ENOMEM, NULL);
		return;
	}
	if (topics) {
		fsm_topic_foreach(s->node->fsm, list_topic_cb, &x);
	} else {
		fsm_queue_foreach(s->node->fsm, list_queue_cb, &x);
	}
	if (x.failed) {
		s->c.out.len = x.l.frame_off;
		session_write_error(s, req->req_id, WIRE_ENOMEM, NULL);
		return;
	}
	wire_list_end(&s->c.out, &x.l);
	session_reply_done(s, req->req_id);
}

void session_answer_local(struct session *s, const struct wire_msg *m)
{
	struct fsm_cmd cmd;
	int rv;

	switch (m->op) {
	case WIRE_OP_QUEUE_STATS:
		reply_stats(s, m);
		return;
	case WIRE_OP_QUEUE_LIST:
		reply_list(s, m, 0);
		return;
	case WIRE_OP_TOPIC_LIST:
		reply_list(s, m, 1);
		return;
	default:
		break;
	}
	memset(&cmd, 0, sizeof cmd);
	cmd.time = node_now_ms();
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
	case WIRE_OP_PUBLISH:
		if (m->payload.len > s->node->cfg->fsm.max_payload) {
			char msg[96];
			snprintf(msg, sizeof msg,
			         "payload of %u bytes exceeds limit %u",
			         m->payload.len, s->node->cfg->fsm.max_payload);
			session_write_error(s, m->req_id, WIRE_ETOOBIG, msg);
			return;
		}
#ifdef RAFTMQ_TEST_FAULTS
		if (s->node->cfg->fault == 1) {
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
	default:
		session_write_error(s, m->req_id, WIRE_EPROTO,
		                    "unsupported request");
		return;
	}
	rv = batch_add(s->node, &cmd);
	if (rv != 0) {
		session_write_error(
		    s, m->req_id, rv,
		    rv == WIRE_EBUSY ? "leader is saturated; retry" : NULL);
	}
}

/* ---------------------------------------------------------------------
 * The fsm sink: results and deliveries of applied commands. */

void node_sink_result(void *data, const struct fsm_result *r)
{
	struct node *n = data;
	struct session *s;
	struct wire_msg m;

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
	if (wire_encode(&s->c.out, &m) != 0) {
		session_close(s, WIRE_ENOMEM, "out of memory");
		return;
	}
	if (s->c.out.len > n->cfg->max_session_output) {
		session_close(s, WIRE_EBUSY, "client does not read its output");
		return;
	}
	conn_flush(s, &s->c);
}

/* ---------------------------------------------------------------------
 * Leadership and time. */

static const char *role_str(int role)
{
	static const char *names[] = {"unavailable", "follower", "candidate",
	                              "leader"};
	return role >= 0 && role <= 3 ? names[role] : "?";
}

void node_role_cb(void *data, int role, uint64_t term, uint64_t leader_id,
                  int ready)
{
	struct node *n = data;
	struct session *s, *next;

	if (role != n->role || term != n->term || leader_id != n->leader_id) {
		LOG_INFO("raft: %s, term %llu, leader %llu%s", role_str(role),
		         (unsigned long long)term,
		         (unsigned long long)leader_id,
		         ready ? " (ready)" : "");
	}
	if (n->serving && (role != RG_ROLE_LEADER || term != n->term)) {
		n->serving = 0;
		LOG_INFO("no longer the serving leader: closing %u sessions",
		         n->n_sessions);
		entry_fail(n->cur, WIRE_ENOTLEADER, "not the leader any more");
		fsm_batch_reset(&n->batch);
		entry_free(n->cur);
		n->cur = entry_new(n);
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
	if (role == RG_ROLE_LEADER && ready && n->elected_term != term &&
	    !n->stopping) {
		struct fsm_cmd cmd;
		memset(&cmd, 0, sizeof cmd);
		cmd.type = FSM_CMD_LEADER_ELECTED;
		cmd.time = node_now_ms();
		cmd.u.leader_elected.term = term;
		cmd.u.leader_elected.node = n->cfg->id;
		/* Its own entry, ahead of any client command. */
		fsm_batch_reset(&n->batch);
		entry_free(n->cur);
		n->cur = entry_new(n);
		if (n->cur == NULL || batch_add(n, &cmd) != 0) {
			LOG_ERROR("cannot propose leader-elected");
			return;
		}
		n->cur->is_elected = 1;
		n->cur->term = term;
		n->elected_term = term;
		node_flush(n);
	}
}

void node_tick_cb(uv_timer_t *t)
{
	struct node *n = t->data;
	struct fsm_cmd cmd;
	uint64_t now;

	node_watch_update(n); /* retries a broken link to the leader */
	if (!n->serving || n->tick_inflight || n->stopping) {
		return;
	}
	now = node_now_ms();
	if (now < fsm_next_deadline(n->fsm)) {
		return;
	}
	memset(&cmd, 0, sizeof cmd);
	cmd.type = FSM_CMD_TICK;
	cmd.time = now;
	if (batch_add(n, &cmd) == 0) {
		n->cur->is_tick = 1;
		n->tick_inflight = 1;
		node_flush(n);
	}
}
