/* fsm/fsm: the state machine object, command dispatch, the clock, result and
 * effect sinks, read-only views and the invariant checker. */
#include <stdlib.h>
#include <string.h>

#include "fsm/codec.h"
#include "fsm/fsm_int.h"

static const char *const status_text[FSM_STATUS_MAX] = {
    [FSM_OK] = "ok",
    [FSM_ENOQUEUE] = "no such queue",
    [FSM_ENOTOPIC] = "no such topic",
    [FSM_EEXISTS] = "exists with different options",
    [FSM_EINVAL] = "invalid argument",
    [FSM_ETOOBIG] = "payload too big",
    [FSM_EFULL] = "queue full",
    [FSM_ENOCONSUMER] = "no such consumer",
    [FSM_ENOMSG] = "no such message",
    [FSM_EMALFORMED] = "malformed command",
    [FSM_ELIMIT] = "limit reached",
    [FSM_ENOTEMPTY] = "queue not empty",
    [FSM_EBUSY] = "exclusive queue busy",
    [FSM_ENOMEM] = "out of memory",
};

const char *fsm_status_str(int status)
{
	if (status < 0 || status >= FSM_STATUS_MAX)
		return "unknown status";
	return status_text[status];
}

void fsm_config_default(struct fsm_config *c)
{
	c->max_payload = 256 * 1024;
	c->max_name = 255;
	c->max_queues = 10000;
	c->max_consumers = 100000;
	c->default_ack_timeout = 30000;
	c->default_max_length = 10000000;
	c->default_max_bytes = 1ull << 30;
	c->default_dedup_window = 120000;
	c->max_dedup_entries = 1000000;
	c->max_get = 1000;
	c->max_headers = 1024 - FSM_DLQ_HEADERS;
	c->max_memory = 2ull << 30;
	c->session_window = 16u << 20;
	c->max_session_consumers = 1000;
	c->max_entry = 1u << 20;
}

static int config_ok(const struct fsm_config *c)
{
	return c->max_name > 0 && c->max_name <= 65535 &&
	       (c->max_payload >> FSM_MAX_PAYLOAD_BITS) == 0 &&
	       c->max_queues > 0 && c->max_consumers > 0 &&
	       c->default_ack_timeout > 0 && c->default_max_length > 0 &&
	       c->default_max_bytes > 0 && c->default_dedup_window > 0 &&
	       c->max_get > 0 && c->max_headers > 0 &&
	       c->max_headers <= 1024 - FSM_DLQ_HEADERS && c->max_memory > 0 &&
	       c->session_window > 0 && c->max_session_consumers > 0 &&
	       c->max_entry >= 64 * 1024;
}

struct fsm *fsm_new(const struct fsm_config *config)
{
	struct fsm *f;
	struct fsm_config def;

	if (config == NULL) {
		fsm_config_default(&def);
		config = &def;
	}
	if (!config_ok(config))
		return NULL;
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return NULL;
	f->mem = sizeof(*f) + FSM_MALLOC_OVERHEAD;
	f->cfg = *config;
	fsm_htab_init(&f->queues, fsm_queue_name_hash);
	fsm_htab_init(&f->queue_ids, fsm_queue_id_hash);
	fsm_htab_init(&f->topics, fsm_topic_hash);
	fsm_htab_init(&f->consumers, fsm_consumer_hash);
	fsm_htab_init(&f->sessions, fsm_session_hash);
	return f;
}

void fsm_free(struct fsm *f)
{
	uint32_t i;

	if (f == NULL)
		return;
	while (f->queues.count > 0) {
		uint32_t n = 0;
		struct fsm_queue **qv = fsm_queues_sorted(f, &n);

		if (qv == NULL)
			break;
		for (i = 0; i < n; i++)
			fsm_queue_destroy(f, qv[i], 0);
		free(qv);
	}
	while (f->topics.count > 0) {
		uint32_t n = 0;
		struct fsm_topic **tv = fsm_topics_sorted(f, &n);

		if (tv == NULL)
			break;
		for (i = 0; i < n; i++)
			fsm_topic_destroy(f, tv[i]);
		free(tv);
	}
	while (f->sessions.count > 0) {
		for (i = 0; i < f->sessions.cap; i++)
			if (f->sessions.slots[i] != NULL) {
				struct fsm_session *s = f->sessions.slots[i];

				s->consumers.n = 0;
				s->gets.flights.n = 0;
				fsm_session_maybe_free(f, s);
				break;
			}
	}
	fsm_htab_free(f, &f->queues);
	fsm_htab_free(f, &f->queue_ids);
	fsm_htab_free(f, &f->topics);
	fsm_htab_free(f, &f->consumers);
	fsm_htab_free(f, &f->sessions);
	fsm_mem_free(f, f->heap, (size_t)f->heap_cap * sizeof(*f->heap));
	fsm_vec_free(f, &f->dirty);
	fsm_mem_free(f, f->hscratch, f->hscratch_cap * sizeof(*f->hscratch));
	free(f);
}

void fsm_emit_effect(struct fsm *f, const struct fsm_delivery *d)
{
	if (f->sink != NULL && f->sink->effect != NULL)
		f->sink->effect(f->sink->data, d);
}

void fsm_mark_dirty(struct fsm *f, struct fsm_queue *q)
{
	if (q->dirty)
		return;
	/* Without room in the list the queue is served at its next change;
	 * only an allocation failure gets here. */
	if (fsm_vec_push(f, &f->dirty, q) == 0)
		q->dirty = 1;
}

static int cmp_qid(const void *a, const void *b)
{
	const struct fsm_queue *x = *(struct fsm_queue *const *)a;
	const struct fsm_queue *y = *(struct fsm_queue *const *)b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* Assigns READY messages of every queue that changed, in queue id order. */
void fsm_run_dirty(struct fsm *f)
{
	uint32_t i;

	if (f->dirty.n == 0)
		return;
	qsort(f->dirty.v, f->dirty.n, sizeof(void *), cmp_qid);
	for (i = 0; i < f->dirty.n; i++) {
		struct fsm_queue *q = f->dirty.v[i];

		q->dirty = 0;
		fsm_assign(f, q);
	}
	f->dirty.n = 0;
}

int fsm_apply(struct fsm *f, const struct fsm_cmd *cmd,
              const struct fsm_sink *sink)
{
	struct fsm_result r;
	int rc;

	memset(&r, 0, sizeof(r));
	r.type = cmd->type;
	r.session = cmd->session;
	r.req_id = cmd->req_id;
	if (cmd->type == 0 || cmd->type >= FSM_CMD_MAX) {
		rc = FSM_EINVAL;
		goto out;
	}
	f->sink = sink;
	/* Time first: timers due by the command's time fire before it, and
	 * whatever they freed is handed out before the command runs. */
	if (cmd->time > f->now)
		f->now = cmd->time;
	fsm_timer_fire(f);
	fsm_run_dirty(f);
	switch (cmd->type) {
	case FSM_CMD_QUEUE_DECLARE:
	case FSM_CMD_QUEUE_DELETE:
	case FSM_CMD_QUEUE_PURGE:
		rc = fsm_cmd_queue(f, cmd, &r);
		break;
	case FSM_CMD_TOPIC_DECLARE:
	case FSM_CMD_TOPIC_DELETE:
	case FSM_CMD_BIND:
	case FSM_CMD_UNBIND:
		rc = fsm_cmd_topic(f, cmd, &r);
		break;
	case FSM_CMD_PUBLISH:
		rc = fsm_cmd_publish(f, cmd, &r);
		break;
	case FSM_CMD_CONSUME:
	case FSM_CMD_CANCEL:
	case FSM_CMD_GET:
	case FSM_CMD_SESSION_DOWN:
	case FSM_CMD_LEADER_ELECTED:
		rc = fsm_cmd_consumer(f, cmd, &r);
		break;
	case FSM_CMD_ACK:
	case FSM_CMD_NACK:
	case FSM_CMD_EXTEND:
		rc = fsm_cmd_settle(f, cmd, &r);
		break;
	default: /* FSM_CMD_TICK */
		rc = FSM_OK;
		break;
	}
	fsm_run_dirty(f);
	fsm_timer_trim(f);
	if (rc != FSM_OK)
		memset(&r.u, 0, sizeof(r.u));
out:
	r.status = rc;
	if (sink != NULL && sink->result != NULL)
		sink->result(sink->data, &r);
	f->sink = NULL;
	return rc;
}

struct entry_ctx {
	struct fsm *f;
	const struct fsm_sink *sink;
};

static int entry_cb(void *data, const struct fsm_cmd *cmd)
{
	struct entry_ctx *c = data;

	fsm_apply(c->f, cmd, c->sink);
	return 0;
}

int fsm_apply_entry(struct fsm *f, const void *buf, size_t len,
                    const struct fsm_sink *sink)
{
	struct entry_ctx c = {f, sink};
	int n = fsm_entry_decode(buf, len, entry_cb, &c);

	if (n < 0) {
		struct fsm_result r;

		memset(&r, 0, sizeof(r));
		r.status = n == -FSM_ENOMEM ? FSM_ENOMEM : FSM_EMALFORMED;
		if (sink != NULL && sink->result != NULL)
			sink->result(sink->data, &r);
		return -1;
	}
	return n;
}

uint64_t fsm_now(const struct fsm *f)
{
	return f->now;
}

uint64_t fsm_next_deadline(const struct fsm *f)
{
	return f->heap_n > 0 ? f->heap[0].time : UINT64_MAX;
}

uint64_t fsm_memory(const struct fsm *f)
{
	return f->mem;
}

int fsm_queue_stats(const struct fsm *f, const char *name, uint32_t name_len,
                    struct fsm_queue_stats *out)
{
	const struct fsm_queue *q = fsm_queue_find(f, name, name_len);

	if (q == NULL)
		return FSM_ENOQUEUE;
	fsm_queue_stats_fill(q, out);
	return FSM_OK;
}

void fsm_queue_foreach(const struct fsm *f,
                       void (*cb)(void *data, const char *name, uint32_t len,
                                  const struct fsm_queue_stats *s),
                       void *data)
{
	struct fsm_queue **v;
	uint32_t n = 0, i;

	v = fsm_queues_sorted(f, &n);
	if (v == NULL)
		return;
	for (i = 0; i < n; i++) {
		struct fsm_queue_stats s;

		fsm_queue_stats_fill(v[i], &s);
		cb(data, v[i]->name, v[i]->name_len, &s);
	}
	free(v);
}

static int check_owner(const struct fsm_owner *o)
{
	uint32_t i;

	for (i = 0; i < o->flights.n; i++) {
		const struct fsm_aux *a = o->flights.v[i];

		if (a->owner != o || a->owner_slot != i ||
		    a->msg->state != FSM_MS_FLIGHT)
			return -1;
	}
	return 0;
}

int fsm_check(const struct fsm *f)
{
	uint32_t i, j;

	if (f->queues.count != f->queue_ids.count || f->dirty.n != 0)
		return -1;
	for (i = 0; i < f->queues.cap; i++) {
		const struct fsm_queue *q = f->queues.slots[i];

		if (q == NULL)
			continue;
		if (q->id > f->next_queue_id || q->dirty ||
		    fsm_queue_check(f, q) != 0)
			return -1;
	}
	for (i = 0; i < f->heap_n; i++) {
		const struct fsm_heap_ent *e = &f->heap[i];

		if (e->a->heap_idx != i || e->time != fsm_aux_key(e->a) ||
		    e->seq != e->a->msg->seq || e->queue_id != e->a->q->id)
			return -1;
		if (i > 0 && f->heap[(i - 1) / 4].time > e->time)
			return -1;
	}
	for (i = 0; i < f->consumers.cap; i++) {
		const struct fsm_consumer *c = f->consumers.slots[i];
		const struct fsm_session *s;
		int found = 0;

		if (c == NULL)
			continue;
		if (c->id > f->next_consumer_id || c->owner.consumer != c->id ||
		    c->owner.flights.n > c->prefetch || check_owner(&c->owner))
			return -1;
		if (fsm_queue_by_id(f, c->q->id) != c->q)
			return -1;
		s = fsm_session_get((struct fsm *)f, c->owner.session, 0);
		if (s == NULL)
			return -1;
		for (j = 0; j < s->consumers.n; j++)
			found |= s->consumers.v[j] == c;
		if (!found)
			return -1;
	}
	for (i = 0; i < f->sessions.cap; i++) {
		const struct fsm_session *s = f->sessions.slots[i];

		if (s == NULL)
			continue;
		if (s->consumers.n == 0 && s->gets.flights.n == 0)
			return -1;
		if (s->gets.session != s->id || s->gets.consumer != 0 ||
		    check_owner(&s->gets))
			return -1;
	}
	return 0;
}
