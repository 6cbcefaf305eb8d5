/* fsm/fsm: the state machine object, command dispatch, the clock, result and
 * effect sinks, read-only views and the invariant checker. */
#include <stddef.h>
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
    [FSM_ECLUSTERFULL] = "cluster full",
    [FSM_EDIVERGED] = "replica diverged",
};

const char *fsm_status_str(int status)
{
	if (status < 0 || status >= FSM_STATUS_MAX)
		return "unknown status";
	return status_text[status];
}

/* Every field of struct fsm_config, by name: FSM_CMD_CONFIG, `cluster
 * config get|set` and the snapshot (version 4) use these names. */
#define CONFIG_FIELD(name)                                                     \
	{                                                                      \
#name, sizeof(#name) - 1, offsetof(struct fsm_config, name),   \
		    sizeof(((struct fsm_config *)0)->name)                     \
	}

static const struct config_field {
	const char *name;
	uint32_t len;
	size_t off;
	size_t width; /* 4 or 8 */
} config_fields[] = {
    CONFIG_FIELD(max_payload),         CONFIG_FIELD(max_name),
    CONFIG_FIELD(max_queues),          CONFIG_FIELD(max_consumers),
    CONFIG_FIELD(default_ack_timeout), CONFIG_FIELD(default_max_length),
    CONFIG_FIELD(default_max_bytes),   CONFIG_FIELD(default_dedup_window),
    CONFIG_FIELD(max_dedup_entries),   CONFIG_FIELD(max_get),
    CONFIG_FIELD(max_headers),         CONFIG_FIELD(max_memory),
    CONFIG_FIELD(session_window),      CONFIG_FIELD(max_session_consumers),
    CONFIG_FIELD(max_entry),
};

#define N_CONFIG_FIELDS (sizeof(config_fields) / sizeof(config_fields[0]))

/* Every field is in the table (a field added to the struct without an
 * entry would change the size). */
_Static_assert(sizeof(struct fsm_config) == 96, "config fields in the table");

static uint64_t config_field_get(const struct fsm_config *c,
                                 const struct config_field *d)
{
	const char *p = (const char *)c + d->off;

	if (d->width == 4) {
		uint32_t v;

		memcpy(&v, p, 4);
		return v;
	} else {
		uint64_t v;

		memcpy(&v, p, 8);
		return v;
	}
}

uint32_t fsm_config_to_kv(const struct fsm_config *c, struct fsm_config_kv *kv,
                          uint32_t max)
{
	uint32_t i;

	for (i = 0; i < N_CONFIG_FIELDS && i < max; i++) {
		kv[i].key = config_fields[i].name;
		kv[i].key_len = config_fields[i].len;
		kv[i].value = config_field_get(c, &config_fields[i]);
	}
	return (uint32_t)N_CONFIG_FIELDS;
}

int fsm_config_set_kv(struct fsm_config *c, const char *key, uint32_t key_len,
                      uint64_t value)
{
	uint32_t i;

	if (key == NULL && key_len > 0)
		return FSM_EINVAL;
	for (i = 0; i < N_CONFIG_FIELDS; i++) {
		const struct config_field *d = &config_fields[i];
		char *p = (char *)c + d->off;

		if (d->len != key_len || memcmp(d->name, key, key_len) != 0)
			continue;
		if (d->width == 4) {
			uint32_t v = (uint32_t)value;

			if (value > UINT32_MAX)
				return FSM_EINVAL;
			memcpy(p, &v, 4);
		} else {
			memcpy(p, &value, 8);
		}
		return 0;
	}
	return FSM_EINVAL;
}

static int config_equal(const struct fsm_config *a, const struct fsm_config *b)
{
	uint32_t i;

	for (i = 0; i < N_CONFIG_FIELDS; i++)
		if (config_field_get(a, &config_fields[i]) !=
		    config_field_get(b, &config_fields[i]))
			return 0;
	return 1;
}

/* DLQ_HEADER_ROOM: the two headers dead-lettering adds, their origin queue
 * name aside: keys "x-death-reason" (14) and "x-death-queue" (13), the
 * longest reason ("max-deliveries", 14; 32 allowed) and a msgpack header
 * of at most 5 bytes for each of the 4 strings: 79, rounded up. */
#define DLQ_HEADER_ROOM 128
/* The delivery frame's envelope: type, queue name field, consumer, seq,
 * timestamp, delivery count, msgpack headers of the message's fields. A
 * message's own fields are inside max_payload already. */
#define DELIVERY_ENVELOPE 4096

size_t fsm_max_delivery_size(const struct fsm_config *c)
{
	return (size_t)c->max_payload + DLQ_HEADER_ROOM + c->max_name +
	       DELIVERY_ENVELOPE;
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
	c->max_memory = 256ull << 20;
	c->session_window = 16u << 20;
	c->max_session_consumers = 1000;
	c->max_entry = 1u << 20;
}

int fsm_config_valid(const struct fsm_config *c)
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
	if (!fsm_config_valid(config))
		return NULL;
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return NULL;
	/* The CHECK ring is node-local bookkeeping, not state: not charged,
	 * so that fsm_memory() is the same on every replica. */
	f->ring = malloc(FSM_CHECK_RING * sizeof(*f->ring));
	if (f->ring == NULL) {
		free(f);
		return NULL;
	}
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
	free(f->ring);
	free(f);
}

/* Odd multipliers for combining the fields of one record before a single
 * mix: a change in any one field always changes the sum. */
#define K1 0x9e3779b97f4a7c15ull
#define K2 0xc2b2ae3d27d4eb4full
#define K3 0x165667b19e3779f9ull
#define K4 0xd6e8feb86659fd93ull
#define K5 0xff51afd7ed558ccdull

/* Every effect goes into the digest, whether or not the caller listens. */
void fsm_emit_effect(struct fsm *f, const struct fsm_delivery *d)
{
	f->digest = fsm_digest_mix(
	    f->digest, d->type + d->session * K1 + d->consumer * K2 +
	                   (uint64_t)d->queue_id * K3 + d->msg.seq * K4 +
	                   (uint64_t)d->msg.delivery_count * K5);
	if (f->user_sink != NULL && f->user_sink->effect != NULL)
		f->user_sink->effect(f->user_sink->data, d);
}

static void noop_effect(void *data, const struct fsm_delivery *d)
{
	(void)data;
	(void)d;
}

/* What apply sees as its sink (fsm_emit_effect calls the caller's). */
static const struct fsm_sink apply_sink = {NULL, NULL, noop_effect};

void fsm_mark_dirty(struct fsm *f, struct fsm_queue *q)
{
	if (q->dirty)
		return;
	/* Without room in the list the queue is served at its next change;
	 * only an allocation failure gets here, and it marked f failed. */
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

/* FSM_CMD_CONFIG: all or nothing, on a copy. */
static int cmd_config(struct fsm *f, const struct fsm_cmd *c)
{
	struct fsm_config n = f->cfg;
	uint32_t i;

	if (c->u.config.bootstrap && f->config_set)
		return FSM_OK;
	if (c->u.config.n_kv > 0 && c->u.config.kv == NULL)
		return FSM_EINVAL;
	for (i = 0; i < c->u.config.n_kv; i++) {
		const struct fsm_config_kv *kv = &c->u.config.kv[i];

		if (fsm_config_set_kv(&n, kv->key, kv->key_len, kv->value) != 0)
			return FSM_EINVAL;
	}
	if (!fsm_config_valid(&n))
		return FSM_EINVAL;
	/* Lowering a limit leaves existing state alone: queues keep their
	 * resolved options, stored messages stay; only what comes next is
	 * checked against the new values. */
	if (!f->config_set || !config_equal(&n, &f->cfg)) {
		f->cfg = n;
		f->config_version++;
		/* A new session_window blocks or frees sessions now. */
		fsm_sessions_rewindow(f);
	}
	f->config_set = 1;
	return FSM_OK;
}

/* FSM_CMD_CHECK: compares with this replica's digest after the same number
 * of commands. The leader read (applied, digest) between two entries, and
 * every entry it had applied then was applied here before this CHECK, so
 * replicas that applied the same entries have the same entry boundaries:
 *   - `applied` is in the ring: the digests must be equal;
 *   - it is not, although the ring reaches back to it (it lies between two
 *     of this replica's boundaries, or beyond the last): this replica
 *     applied different entries (one skipped, say), whatever the digests;
 *   - it is older than the ring (or the ring was emptied by a restore):
 *     nothing to compare, OK. */
static int cmd_check(struct fsm *f, const struct fsm_cmd *c)
{
	uint64_t want = c->u.check.applied;
	uint32_t i;

	if (f->ring_n == 0 ||
	    want < f->ring[(f->ring_next + FSM_CHECK_RING - f->ring_n) %
	                   FSM_CHECK_RING]
	               .applied)
		return FSM_OK;
	for (i = 0; i < f->ring_n; i++) {
		const struct fsm_check_ent *e =
		    &f->ring[(f->ring_next + FSM_CHECK_RING - 1 - i) %
		             FSM_CHECK_RING];

		if (e->applied == want) {
			if (e->digest == c->u.check.digest)
				return FSM_OK;
			break;
		}
		if (e->applied < want)
			break; /* the ring is in increasing order */
	}
	f->diverged = 1;
	return FSM_EDIVERGED;
}

/* Folds a command's outcome into the digest: who asked (session, request
 * id: a replica that skipped an entry then applies other requests at the
 * same count, even when their results look alike), its type, status and the
 * fields of its result (zero when it failed). */
static void digest_result(struct fsm *f, const struct fsm_result *r)
{
	uint64_t v = f->applied * K1 + r->type * K2 +
	             (uint64_t)(int64_t)r->status * K3 +
	             fsm_hash_u64(r->session) + r->req_id * K5;

	switch (r->type) {
	case FSM_CMD_QUEUE_DECLARE:
		v += r->u.declare.queue_id * K4 + r->u.declare.created * K5;
		break;
	case FSM_CMD_QUEUE_DELETE:
	case FSM_CMD_QUEUE_PURGE:
		v += r->u.removed.removed * K4;
		break;
	case FSM_CMD_PUBLISH:
		v += r->u.publish.seq * K4 + r->u.publish.queues * K5 +
		     r->u.publish.duplicate;
		break;
	case FSM_CMD_CONSUME:
		v += r->u.consume.consumer * K4 + r->u.consume.queue_id * K5;
		break;
	case FSM_CMD_GET:
		v += r->u.get.count * K4;
		break;
	default:
		break;
	}
	f->digest = fsm_digest_mix(f->digest, v);
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
	f->sink = &apply_sink;
	f->user_sink = sink;
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
	case FSM_CMD_CONFIG:
		rc = cmd_config(f, cmd);
		break;
	case FSM_CMD_CHECK:
		rc = cmd_check(f, cmd);
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
	/* Allocation failures that surface as a status (plain malloc of a
	 * temporary) mark the replica failed like those of the allocator. */
	if (rc == FSM_ENOMEM)
		f->failed = 1;
	f->applied++;
	if (cmd->type != FSM_CMD_CHECK)
		digest_result(f, &r);
	if (sink != NULL && sink->result != NULL)
		sink->result(sink->data, &r);
	f->sink = NULL;
	f->user_sink = NULL;
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
	struct fsm_check_ent *e;

	if (n < 0) {
		struct fsm_result r;

		memset(&r, 0, sizeof(r));
		r.status = n == -FSM_ENOMEM ? FSM_ENOMEM : FSM_EMALFORMED;
		/* A valid entry this replica could not present: the others
		 * applied it. */
		if (n == -FSM_ENOMEM)
			f->failed = 1;
		if (sink != NULL && sink->result != NULL)
			sink->result(sink->data, &r);
		return -1;
	}
	e = &f->ring[f->ring_next];
	e->applied = f->applied;
	e->digest = f->digest;
	f->ring_next = (f->ring_next + 1) % FSM_CHECK_RING;
	if (f->ring_n < FSM_CHECK_RING)
		f->ring_n++;
	return n;
}

uint64_t fsm_now(const struct fsm *f)
{
	return f->now;
}

const struct fsm_config *fsm_config_get(const struct fsm *f)
{
	return &f->cfg;
}

int fsm_config_is_set(const struct fsm *f)
{
	return f->config_set;
}

uint64_t fsm_config_version(const struct fsm *f)
{
	return f->config_version;
}

uint64_t fsm_applied(const struct fsm *f)
{
	return f->applied;
}

uint64_t fsm_digest(const struct fsm *f)
{
	return f->digest;
}

int fsm_diverged(const struct fsm *f)
{
	return f->diverged;
}

int fsm_failed(const struct fsm *f)
{
	return f->failed;
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
	uint64_t stored = 0;

	if (f->queues.count != f->queue_ids.count || f->dirty.n != 0)
		return -1;
	for (i = 0; i < f->queues.cap; i++) {
		const struct fsm_queue *q = f->queues.slots[i];

		if (q == NULL)
			continue;
		if (q->id > f->next_queue_id || q->dirty ||
		    fsm_queue_check(f, q) != 0)
			return -1;
		stored += q->bytes + FSM_MSG_COST * fsm_queue_count(q);
	}
	if (stored != f->stored)
		return -1;
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
