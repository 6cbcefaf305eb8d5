/* fsm/consumer: sessions, consumers, round-robin assignment of READY
 * messages, pull gets, and the commands that end sessions. */
#include <stdlib.h>
#include <string.h>

#include "fsm/fsm_int.h"

static int c_match(const void *e, const void *k)
{
	return ((const struct fsm_consumer *)e)->id == *(const uint64_t *)k;
}

static int s_match(const void *e, const void *k)
{
	return ((const struct fsm_session *)e)->id == *(const uint64_t *)k;
}

uint64_t fsm_consumer_hash(const void *e)
{
	return fsm_hash_u64(((const struct fsm_consumer *)e)->id);
}

uint64_t fsm_session_hash(const void *e)
{
	return fsm_hash_u64(((const struct fsm_session *)e)->id);
}

struct fsm_consumer *fsm_consumer_find(const struct fsm *f, uint64_t id)
{
	return fsm_htab_find(&f->consumers, fsm_hash_u64(id), c_match, &id);
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

struct fsm_session *fsm_session_get(struct fsm *f, uint64_t id, int create)
{
	struct fsm_session *s;

	s = fsm_htab_find(&f->sessions, fsm_hash_u64(id), s_match, &id);
	if (s != NULL || !create)
		return s;
	if (fsm_htab_reserve(f, &f->sessions, 1) != 0)
		return NULL;
	s = fsm_mem_calloc(f, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->id = id;
	s->gets.session = id;
	s->gets.consumer = 0;
	s->gets.s = s;
	fsm_htab_insert(&f->sessions, s);
	return s;
}

void fsm_session_maybe_free(struct fsm *f, struct fsm_session *s)
{
	if (s->consumers.n > 0 || s->gets.flights.n > 0)
		return;
	fsm_htab_remove(f, &f->sessions, s);
	fsm_vec_free(f, &s->consumers);
	fsm_vec_free(f, &s->gets.flights);
	fsm_mem_free(f, s, sizeof(*s));
}

static struct fsm_consumer *owner_consumer(struct fsm_owner *o)
{
	return (struct fsm_consumer *)((char *)o -
	                               offsetof(struct fsm_consumer, owner));
}

/* Blocks or unblocks a session: its consumers with prefetch room gain or
 * lose their credit, and the queues of those that gain it are served again.
 * O(consumers of the session), once per transition. */
static void session_set_blocked(struct fsm *f, struct fsm_session *s,
                                uint8_t blocked)
{
	uint32_t i;

	if (s->blocked == blocked)
		return;
	s->blocked = blocked;
	for (i = 0; i < s->consumers.n; i++) {
		struct fsm_consumer *c = s->consumers.v[i];

		if (c->owner.flights.n >= c->prefetch)
			continue;
		if (blocked) {
			c->q->n_credit--;
		} else {
			c->q->n_credit++;
			fsm_mark_dirty(f, c->q);
		}
	}
}

static uint8_t session_over(const struct fsm *f, const struct fsm_session *s)
{
	return s->inflight >= f->cfg.session_window;
}

void fsm_sessions_rewindow(struct fsm *f)
{
	uint32_t i;

	for (i = 0; i < f->sessions.cap; i++) {
		struct fsm_session *s = f->sessions.slots[i];

		if (s != NULL)
			session_set_blocked(f, s, session_over(f, s));
	}
}

/* Each queue counts its consumers with free credit (prefetch room, session
 * not blocked), so that assignment costs nothing while every consumer is
 * full. */
int fsm_owner_add(struct fsm *f, struct fsm_owner *o, struct fsm_aux *a)
{
	struct fsm_session *s = o->s;

	if (fsm_vec_push(f, &o->flights, a) != 0)
		return FSM_ENOMEM;
	a->owner = o;
	a->owner_slot = o->flights.n - 1;
	if (o->consumer != 0) {
		struct fsm_consumer *c = owner_consumer(o);

		if (o->flights.n == c->prefetch && !s->blocked)
			c->q->n_credit--;
	}
	s->inflight += fsm_msg_bytes(a->msg);
	if (!s->blocked && session_over(f, s))
		session_set_blocked(f, s, 1);
	return 0;
}

void fsm_owner_remove(struct fsm *f, struct fsm_aux *a)
{
	struct fsm_owner *o = a->owner;
	struct fsm_session *s;
	struct fsm_aux *last;

	if (o == NULL)
		return;
	s = o->s;
	if (o->consumer != 0) {
		struct fsm_consumer *c = owner_consumer(o);

		if (o->flights.n == c->prefetch && !s->blocked)
			c->q->n_credit++;
	}
	last = o->flights.v[--o->flights.n];
	if (last != a) {
		o->flights.v[a->owner_slot] = last;
		last->owner_slot = a->owner_slot;
	}
	a->owner = NULL;
	a->owner_slot = 0;
	s->inflight -= fsm_msg_bytes(a->msg);
	if (s->blocked && !session_over(f, s))
		session_set_blocked(f, s, 0);
	if (o->consumer == 0)
		fsm_session_maybe_free(f, s);
}

static uint64_t owner_bytes(const struct fsm_owner *o)
{
	uint64_t n = 0;
	uint32_t i;

	for (i = 0; i < o->flights.n; i++)
		n += fsm_msg_bytes(
		    ((const struct fsm_aux *)o->flights.v[i])->msg);
	return n;
}

int fsm_session_check(const struct fsm *f, const struct fsm_session *s)
{
	uint64_t n = owner_bytes(&s->gets);
	uint32_t i;

	if (s->gets.s != s || s->gets.session != s->id)
		return -1;
	for (i = 0; i < s->consumers.n; i++) {
		const struct fsm_consumer *c = s->consumers.v[i];

		if (c->owner.s != s || c->owner.session != s->id)
			return -1;
		n += owner_bytes(&c->owner);
	}
	if (n != s->inflight || s->blocked != session_over(f, s))
		return -1;
	return 0;
}

static int cmp_aux(const void *x, const void *y)
{
	const struct fsm_aux *a = *(struct fsm_aux *const *)x;
	const struct fsm_aux *b = *(struct fsm_aux *const *)y;

	if (a->q->id != b->q->id)
		return a->q->id < b->q->id ? -1 : 1;
	return a->msg->seq < b->msg->seq ? -1 : a->msg->seq > b->msg->seq;
}

/* The owner (and, for gets, its session) may be freed by this call. The
 * order of the owner's array depends on history, so sort by (queue, seq):
 * dead-lettering in that order gives the same result after a restore. */
void fsm_owner_release(struct fsm *f, struct fsm_owner *o)
{
	uint32_t n = o->flights.n, i;
	struct fsm_aux **v;

	if (n == 0)
		return;
	v = fsm_tmp_alloc(f, n * sizeof(*v));
	if (v == NULL) {
		/* Out of memory: array order. The last requeue may free o. */
		for (i = n; i > 0; i--) {
			struct fsm_aux *a = o->flights.v[i - 1];

			fsm_msg_requeue(f, a->q, a->msg);
		}
		return;
	}
	memcpy(v, o->flights.v, n * sizeof(*v));
	qsort(v, n, sizeof(*v), cmp_aux);
	for (i = 0; i < n; i++)
		fsm_msg_requeue(f, v[i]->q, v[i]->msg);
	free(v);
}

int fsm_deliver(struct fsm *f, struct fsm_queue *q, struct fsm_msg *m,
                struct fsm_owner *o, uint64_t req_id, uint64_t deadline)
{
	struct fsm_delivery d;
	int emit = f->sink != NULL && f->sink->effect != NULL;
	struct fsm_aux *a;

	memset(&d, 0, sizeof(d));
	a = fsm_aux_get(f, q, m);
	if (a == NULL)
		return FSM_ENOMEM;
	if (fsm_timer_reserve(f, 1) != 0 ||
	    fsm_vec_reserve(f, &o->flights, 1) != 0 ||
	    (emit && fsm_msg_view(f, m, &d.msg) != 0)) {
		fsm_aux_maybe_free(f, q, m);
		return FSM_ENOMEM;
	}
	fsm_queue_take(q, m);
	m->delivery_count++;
	fsm_msg_set_state(q, m, FSM_MS_FLIGHT);
	a->due = deadline;
	fsm_owner_add(f, o, a);
	fsm_timer_update(f, a);
	if (emit) {
		d.type = FSM_EFFECT_DELIVER;
		d.session = o->session;
		d.consumer = o->consumer;
		d.req_id = req_id;
		d.queue_id = q->id;
		d.queue = q->name;
		d.queue_len = q->name_len;
		d.msg.delivery_count = m->delivery_count;
		fsm_emit_effect(f, &d);
	}
	return 0;
}

void fsm_assign(struct fsm *f, struct fsm_queue *q)
{
	uint32_t n = q->consumers.n, idle = 0;

	if (n == 0 || q->n_credit == 0)
		return;
	while (idle < n && q->n_ready > 0) {
		struct fsm_consumer *c;
		struct fsm_msg *m;

		if (q->rr >= n)
			q->rr = 0;
		c = q->consumers.v[q->rr];
		if (c->owner.flights.n >= c->prefetch || c->owner.s->blocked) {
			q->rr = (q->rr + 1) % n;
			idle++;
			continue;
		}
		m = fsm_queue_next_ready(f, q);
		if (m == NULL)
			break;
		if (fsm_deliver(f, q, m, &c->owner, 0,
		                add_sat(f->now, q->opts.ack_timeout)) != 0)
			break;
		q->rr = (q->rr + 1) % n;
		idle = 0;
	}
}

int fsm_consumer_create(struct fsm *f, uint64_t id, struct fsm_queue *q,
                        uint64_t session, uint32_t prefetch,
                        struct fsm_consumer **out)
{
	struct fsm_session *s = fsm_session_get(f, session, 1);
	struct fsm_consumer *c;

	if (s == NULL)
		return FSM_ENOMEM;
	if (fsm_htab_reserve(f, &f->consumers, 1) != 0 ||
	    fsm_vec_reserve(f, &q->consumers, 1) != 0 ||
	    fsm_vec_reserve(f, &s->consumers, 1) != 0)
		goto nomem;
	c = fsm_mem_calloc(f, sizeof(*c));
	if (c == NULL)
		goto nomem;
	c->id = id;
	c->prefetch = prefetch;
	c->q = q;
	c->owner.session = session;
	c->owner.consumer = id;
	c->owner.s = s;
	fsm_htab_insert(&f->consumers, c);
	q->consumers.v[q->consumers.n++] = c;
	s->consumers.v[s->consumers.n++] = c;
	q->had_consumer = 1;
	if (!s->blocked)
		q->n_credit++;
	*out = c;
	return 0;
nomem:
	fsm_session_maybe_free(f, s);
	return FSM_ENOMEM;
}

void fsm_consumer_cancel(struct fsm *f, struct fsm_consumer *c, int emit,
                         int reason)
{
	struct fsm_queue *q = c->q;
	struct fsm_session *s = c->owner.s;
	uint32_t i;

	fsm_owner_release(f, &c->owner);
	/* It has no flights left, hence credit unless its session's other
	 * owners keep the session blocked. */
	if (!s->blocked)
		q->n_credit--;
	fsm_htab_remove(f, &f->consumers, c);
	for (i = 0; i < q->consumers.n; i++)
		if (q->consumers.v[i] == c)
			break;
	memmove(&q->consumers.v[i], &q->consumers.v[i + 1],
	        (q->consumers.n - i - 1) * sizeof(void *));
	q->consumers.n--;
	if (i < q->rr)
		q->rr--;
	if (q->rr >= q->consumers.n)
		q->rr = 0;
	for (i = 0; i < s->consumers.n; i++)
		if (s->consumers.v[i] == c) {
			s->consumers.v[i] = s->consumers.v[--s->consumers.n];
			break;
		}
	if (emit) {
		struct fsm_delivery d;

		memset(&d, 0, sizeof(d));
		d.type = FSM_EFFECT_CANCELLED;
		d.session = c->owner.session;
		d.consumer = c->id;
		d.queue_id = q->id;
		d.queue = q->name;
		d.queue_len = q->name_len;
		d.reason = reason;
		fsm_emit_effect(f, &d);
	}
	fsm_vec_free(f, &c->owner.flights);
	fsm_mem_free(f, c, sizeof(*c));
	fsm_session_maybe_free(f, s);
	if (q->opts.auto_delete && q->had_consumer && q->consumers.n == 0)
		fsm_queue_destroy(f, q, emit);
}

static int cmp_consumer(const void *x, const void *y)
{
	const struct fsm_consumer *a = *(struct fsm_consumer *const *)x;
	const struct fsm_consumer *b = *(struct fsm_consumer *const *)y;

	return a->id < b->id ? -1 : a->id > b->id;
}

static int cmp_session(const void *x, const void *y)
{
	const struct fsm_session *a = *(struct fsm_session *const *)x;
	const struct fsm_session *b = *(struct fsm_session *const *)y;

	return a->id < b->id ? -1 : a->id > b->id;
}

/* Cancels the consumers in `v` (sorted by id here). */
static void cancel_all(struct fsm *f, struct fsm_consumer **v, uint32_t n)
{
	uint32_t i;

	qsort(v, n, sizeof(*v), cmp_consumer);
	for (i = 0; i < n; i++)
		fsm_consumer_cancel(f, v[i], 1, 0);
}

static int session_down(struct fsm *f, uint64_t id)
{
	struct fsm_session *s = fsm_session_get(f, id, 0);
	struct fsm_consumer **v;
	uint32_t n;

	if (s == NULL)
		return FSM_OK;
	n = s->consumers.n;
	v = malloc((n + 1) * sizeof(*v));
	if (v == NULL)
		return FSM_ENOMEM;
	if (n > 0)
		memcpy(v, s->consumers.v, n * sizeof(*v));
	cancel_all(f, v, n);
	free(v);
	s = fsm_session_get(f, id, 0);
	if (s != NULL)
		fsm_owner_release(f, &s->gets);
	return FSM_OK;
}

static int leader_elected(struct fsm *f)
{
	struct fsm_consumer **v;
	struct fsm_session **sv;
	uint32_t n = 0, i;

	v = malloc((f->consumers.count + 1) * sizeof(*v));
	sv = malloc((f->sessions.count + 1) * sizeof(*sv));
	if (v == NULL || sv == NULL) {
		free(v);
		free(sv);
		return FSM_ENOMEM;
	}
	for (i = 0; i < f->consumers.cap; i++)
		if (f->consumers.slots[i] != NULL)
			v[n++] = f->consumers.slots[i];
	cancel_all(f, v, n);
	n = 0;
	for (i = 0; i < f->sessions.cap; i++)
		if (f->sessions.slots[i] != NULL)
			sv[n++] = f->sessions.slots[i];
	qsort(sv, n, sizeof(*sv), cmp_session);
	/* Releasing one session's gets frees only that session. */
	for (i = 0; i < n; i++)
		fsm_owner_release(f, &sv[i]->gets);
	free(v);
	free(sv);
	return FSM_OK;
}

static int consume(struct fsm *f, const struct fsm_cmd *cmd,
                   struct fsm_result *r)
{
	struct fsm_queue *q;
	struct fsm_consumer *c;
	struct fsm_session *s;
	int rc;

	if (!fsm_name_ok(f, cmd->u.consume.queue, cmd->u.consume.queue_len) ||
	    cmd->u.consume.prefetch == 0)
		return FSM_EINVAL;
	q = fsm_queue_find(f, cmd->u.consume.queue, cmd->u.consume.queue_len);
	if (q == NULL)
		return FSM_ENOQUEUE;
	if (q->opts.exclusive && q->consumers.n > 0)
		return FSM_EBUSY;
	if (f->consumers.count >= f->cfg.max_consumers)
		return FSM_ELIMIT;
	s = fsm_session_get(f, cmd->session, 0);
	if (s != NULL && s->consumers.n >= f->cfg.max_session_consumers)
		return FSM_ELIMIT;
	rc = fsm_consumer_create(f, f->next_consumer_id + 1, q, cmd->session,
	                         cmd->u.consume.prefetch, &c);
	if (rc != 0)
		return rc;
	f->next_consumer_id++;
	fsm_mark_dirty(f, q);
	r->u.consume.consumer = c->id;
	r->u.consume.queue_id = q->id;
	return FSM_OK;
}

static int get(struct fsm *f, const struct fsm_cmd *cmd, struct fsm_result *r)
{
	struct fsm_queue *q;
	struct fsm_session *s;
	uint32_t max = cmd->u.get.max, count = 0;
	uint64_t timeout;

	if (!fsm_name_ok(f, cmd->u.get.queue, cmd->u.get.queue_len) || max == 0)
		return FSM_EINVAL;
	q = fsm_queue_find(f, cmd->u.get.queue, cmd->u.get.queue_len);
	if (q == NULL)
		return FSM_ENOQUEUE;
	if (max > f->cfg.max_get)
		max = f->cfg.max_get;
	timeout = cmd->u.get.timeout ? cmd->u.get.timeout : q->opts.ack_timeout;
	if (q->n_ready == 0)
		return FSM_OK;
	s = fsm_session_get(f, cmd->session, 1);
	if (s == NULL)
		return FSM_ENOMEM;
	/* The session's window: the first message when the session is
	 * under it, then those that fit. */
	while (count < max) {
		struct fsm_msg *m = fsm_queue_next_ready(f, q);

		if (m == NULL)
			break;
		if (count == 0 ? s->blocked
		               : s->inflight + fsm_msg_bytes(m) >
		                     f->cfg.session_window)
			break;
		if (fsm_deliver(f, q, m, &s->gets, cmd->req_id,
		                add_sat(f->now, timeout)) != 0)
			break;
		count++;
	}
	r->u.get.count = count;
	if (count == 0)
		fsm_session_maybe_free(f, s);
	return FSM_OK;
}

int fsm_cmd_consumer(struct fsm *f, const struct fsm_cmd *cmd,
                     struct fsm_result *r)
{
	struct fsm_consumer *c;

	switch (cmd->type) {
	case FSM_CMD_CONSUME:
		return consume(f, cmd, r);
	case FSM_CMD_CANCEL:
		/* Only the owner session cancels (any other gets the
		 * answer of an unknown id, and nothing changes). */
		c = fsm_consumer_find(f, cmd->u.cancel.consumer);
		if (c == NULL || c->owner.session != cmd->session)
			return FSM_ENOCONSUMER;
		r->u.consume.consumer = c->id;
		r->u.consume.queue_id = c->q->id;
		fsm_consumer_cancel(f, c, 0, 0);
		return FSM_OK;
	case FSM_CMD_GET:
		return get(f, cmd, r);
	case FSM_CMD_SESSION_DOWN:
		return session_down(f, cmd->u.session_down.session);
	default:
		return leader_elected(f);
	}
}
