/* fsm/queue: queues, their message store (seq index, first-delivery cursor,
 * requeue heap), overflow policies, deduplication (messages and their
 * tombstones), declare/delete/purge and publish. */
#include <stdlib.h>
#include <string.h>

#include "fsm/fsm_int.h"

struct nkey {
	const char *s;
	uint32_t n;
};

static int q_match_name(const void *e, const void *k)
{
	const struct fsm_queue *q = e;
	const struct nkey *key = k;

	return q->name_len == key->n && memcmp(q->name, key->s, key->n) == 0;
}

static int q_match_id(const void *e, const void *k)
{
	return ((const struct fsm_queue *)e)->id == *(const uint32_t *)k;
}

/* Saturating: a huge dedup window never wraps around. */
static int dd_expired(const struct fsm *f, const struct fsm_queue *q,
                      uint64_t time)
{
	uint64_t end = time + q->opts.dedup_window;

	return end >= time && end <= f->now;
}

uint64_t fsm_queue_name_hash(const void *e)
{
	const struct fsm_queue *q = e;

	return fsm_hash_bytes(q->name, q->name_len);
}

uint64_t fsm_queue_id_hash(const void *e)
{
	return fsm_hash_u64(((const struct fsm_queue *)e)->id);
}

struct fsm_queue *fsm_queue_find(const struct fsm *f, const char *name,
                                 uint32_t len)
{
	struct nkey k = {name, len};

	return fsm_htab_find(&f->queues, fsm_hash_bytes(name, len),
	                     q_match_name, &k);
}

struct fsm_queue *fsm_queue_by_id(const struct fsm *f, uint32_t id)
{
	return fsm_htab_find(&f->queue_ids, fsm_hash_u64(id), q_match_id, &id);
}

struct fsm_msg *fsm_msg_find(const struct fsm_queue *q, uint64_t seq)
{
	uintptr_t v = fsm_seq_get(&q->idx, seq);
	struct fsm_msg *m;

	if (v == 0)
		return NULL;
	m = fsm_slot_msg(v);
	return m->state != FSM_MS_GONE ? m : NULL;
}

void fsm_queue_resolve_opts(const struct fsm *f, struct fsm_queue_opts *o)
{
	if (o->ack_timeout == 0)
		o->ack_timeout = f->cfg.default_ack_timeout;
	if (o->max_length == 0)
		o->max_length = f->cfg.default_max_length;
	if (o->max_bytes == 0)
		o->max_bytes = f->cfg.default_max_bytes;
	if (o->dedup_window == 0)
		o->dedup_window = f->cfg.default_dedup_window;
	o->exclusive = o->exclusive != 0;
	o->auto_delete = o->auto_delete != 0;
}

struct fsm_queue *fsm_queue_create(struct fsm *f, uint32_t id, const char *name,
                                   uint32_t len, const struct fsm_queue_opts *o,
                                   uint32_t dlq_len)
{
	struct fsm_queue *q;

	if (fsm_htab_reserve(f, &f->queues, 1) != 0 ||
	    fsm_htab_reserve(f, &f->queue_ids, 1) != 0)
		return NULL;
	q = fsm_mem_calloc(f, sizeof(*q));
	if (q == NULL)
		return NULL;
	q->name = fsm_mem_alloc(f, (size_t)len + 1);
	q->opts = *o;
	q->opts.dlq = fsm_mem_alloc(f, (size_t)dlq_len + 1);
	if (q->name == NULL || q->opts.dlq == NULL) {
		fsm_mem_free(f, q->name, (size_t)len + 1);
		fsm_mem_free(f, (void *)q->opts.dlq, (size_t)dlq_len + 1);
		fsm_mem_free(f, q, sizeof(*q));
		return NULL;
	}
	memcpy(q->name, name, len);
	q->name[len] = 0;
	q->name_len = len;
	if (dlq_len)
		memcpy((char *)q->opts.dlq, o->dlq, dlq_len);
	((char *)q->opts.dlq)[dlq_len] = 0;
	q->dlq_len = dlq_len;
	q->id = id;
	q->cursor = 1;
	q->dd_low = 1;
	fsm_htab_insert(&f->queues, q);
	fsm_htab_insert(&f->queue_ids, q);
	return q;
}

/* ---- Message properties: u32 type length, type, u32 correlation id
 * length, correlation id, u32 reply-to length, reply-to, u32 header count,
 * then per header u32 key length, key, u32 value length, value. Absent
 * (props_len 0) when all are empty. Lengths are little-endian-agnostic:
 * written and read with memcpy on the same host representation, and the
 * snapshot carries them as an opaque blob re-validated on restore. */

size_t fsm_props_size(const struct fsm_msg_in *m,
                      const struct fsm_header *extra, uint32_t n_extra)
{
	size_t n;
	uint32_t i;

	if (m->type_len == 0 && m->correlation_id_len == 0 &&
	    m->reply_to_len == 0 && m->n_headers == 0 && n_extra == 0)
		return 0;
	n = 16 + (size_t)m->type_len + m->correlation_id_len + m->reply_to_len;
	for (i = 0; i < m->n_headers; i++)
		n += 8 + (size_t)m->headers[i].key_len + m->headers[i].val_len;
	for (i = 0; i < n_extra; i++)
		n += 8 + (size_t)extra[i].key_len + extra[i].val_len;
	return n;
}

static char *put_lv(char *p, const char *s, uint32_t n)
{
	memcpy(p, &n, 4);
	if (n)
		memcpy(p + 4, s, n);
	return p + 4 + n;
}

void fsm_props_write(char *p, const struct fsm_msg_in *m,
                     const struct fsm_header *extra, uint32_t n_extra)
{
	uint32_t i, nh = m->n_headers + n_extra;

	p = put_lv(p, m->type, m->type_len);
	p = put_lv(p, m->correlation_id, m->correlation_id_len);
	p = put_lv(p, m->reply_to, m->reply_to_len);
	memcpy(p, &nh, 4);
	p += 4;
	for (i = 0; i < m->n_headers; i++) {
		p = put_lv(p, m->headers[i].key, m->headers[i].key_len);
		p = put_lv(p, m->headers[i].val, m->headers[i].val_len);
	}
	for (i = 0; i < n_extra; i++) {
		p = put_lv(p, extra[i].key, extra[i].key_len);
		p = put_lv(p, extra[i].val, extra[i].val_len);
	}
}

static int get_lv(const char **p, const char *end, const char **s, uint32_t *n)
{
	if (end - *p < 4)
		return -1;
	memcpy(n, *p, 4);
	*p += 4;
	if ((size_t)(end - *p) < *n)
		return -1;
	*s = *p;
	*p += *n;
	return 0;
}

int fsm_props_valid(const char *p, size_t n, uint32_t *n_headers)
{
	const char *end = p + n, *s;
	uint32_t l, nh, i;

	*n_headers = 0;
	if (n == 0)
		return 0;
	if (get_lv(&p, end, &s, &l) || get_lv(&p, end, &s, &l) ||
	    get_lv(&p, end, &s, &l) || end - p < 4)
		return -1;
	memcpy(&nh, p, 4);
	p += 4;
	if (nh > (size_t)(end - p) / 8)
		return -1;
	for (i = 0; i < nh; i++)
		if (get_lv(&p, end, &s, &l) || get_lv(&p, end, &s, &l))
			return -1;
	*n_headers = nh;
	return p == end ? 0 : -1;
}

size_t fsm_msg_size(const struct fsm_msg *m)
{
	uint32_t pl = fsm_msg_props_len(m);

	return sizeof(*m) + fsm_msg_id_part(m) + (m->has_props ? 4 + pl : 0) +
	       m->payload_len;
}

struct fsm_msg *fsm_msg_alloc(struct fsm *f, const char *id, uint32_t id_len,
                              uint32_t props_len, const char *payload,
                              uint32_t payload_len, char **props)
{
	size_t size = sizeof(struct fsm_msg) + (id_len ? 2 + id_len : 0) +
	              (props_len ? 4 + (size_t)props_len : 0) + payload_len;
	struct fsm_msg *m;
	char *p;

	if (id_len > UINT16_MAX || payload_len >> FSM_MAX_PAYLOAD_BITS)
		return NULL;
	m = fsm_mem_alloc(f, size);
	if (m == NULL)
		return NULL;
	memset(m, 0, sizeof(*m));
	m->payload_len = payload_len;
	m->has_id = id_len > 0;
	m->has_props = props_len > 0;
	p = m->data;
	if (id_len) {
		uint16_t n = (uint16_t)id_len;

		memcpy(p, &n, 2);
		memcpy(p + 2, id, id_len);
		p += 2 + id_len;
	}
	if (props_len) {
		memcpy(p, &props_len, 4);
		p += 4;
	}
	*props = p;
	if (payload_len)
		memcpy(p + props_len, payload, payload_len);
	return m;
}

int fsm_msg_view(struct fsm *f, const struct fsm_msg *m, struct fsm_msg_view *v)
{
	const char *p = fsm_msg_props(m), *end = p + fsm_msg_props_len(m);
	struct fsm_msg_in *in = &v->m;
	uint32_t nh = 0, i;

	memset(v, 0, sizeof(*v));
	v->seq = m->seq;
	v->timestamp = m->timestamp;
	v->delivery_count = m->delivery_count;
	in->id = fsm_msg_id(m);
	in->id_len = fsm_msg_id_len(m);
	in->payload = end;
	in->payload_len = m->payload_len;
	in->type = in->correlation_id = in->reply_to = "";
	in->headers = f->hscratch;
	if (!m->has_props)
		return 0;
	get_lv(&p, end, &in->type, &in->type_len);
	get_lv(&p, end, &in->correlation_id, &in->correlation_id_len);
	get_lv(&p, end, &in->reply_to, &in->reply_to_len);
	memcpy(&nh, p, 4);
	p += 4;
	if (nh > f->hscratch_cap) {
		uint32_t cap = nh < 16 ? 16 : nh;
		struct fsm_header *h = fsm_mem_alloc(f, cap * sizeof(*h));

		if (h == NULL)
			return FSM_ENOMEM;
		fsm_mem_free(f, f->hscratch,
		             f->hscratch_cap * sizeof(struct fsm_header));
		f->hscratch = h;
		f->hscratch_cap = cap;
	}
	for (i = 0; i < nh; i++) {
		struct fsm_header *h = &f->hscratch[i];

		get_lv(&p, end, &h->key, &h->key_len);
		get_lv(&p, end, &h->val, &h->val_len);
	}
	in->headers = f->hscratch;
	in->n_headers = nh;
	return 0;
}

/* ---- Per-state counters. */

void fsm_q_account(struct fsm_queue *q, const struct fsm_msg *m, int sign)
{
	uint64_t one = (uint64_t)(int64_t)sign;

	switch (m->state) {
	case FSM_MS_READY:
		q->n_ready += one;
		q->ready_bytes += one * fsm_msg_bytes(m);
		break;
	case FSM_MS_DELAYED:
		q->n_delayed += one;
		break;
	default:
		q->n_flight += one;
		break;
	}
}

void fsm_msg_set_state(struct fsm_queue *q, struct fsm_msg *m, uint8_t st)
{
	fsm_q_account(q, m, -1);
	m->state = st;
	fsm_q_account(q, m, 1);
}

struct fsm_aux *fsm_msg_aux(const struct fsm_queue *q, const struct fsm_msg *m)
{
	return fsm_slot_aux(fsm_seq_get(&q->idx, m->seq));
}

struct fsm_aux *fsm_aux_get(struct fsm *f, struct fsm_queue *q,
                            struct fsm_msg *m)
{
	uintptr_t *slot = fsm_seq_slot(&q->idx, m->seq);
	struct fsm_aux *a = fsm_slot_aux(*slot);

	if (a != NULL)
		return a;
	a = fsm_aux_new(f, q, m);
	if (a != NULL)
		*slot = (uintptr_t)a | 1;
	return a;
}

struct fsm_aux *fsm_aux_new(struct fsm *f, struct fsm_queue *q,
                            struct fsm_msg *m)
{
	struct fsm_aux *a = fsm_mem_calloc(f, sizeof(*a));

	if (a == NULL)
		return NULL;
	a->msg = m;
	a->q = q;
	a->heap_idx = FSM_NOIDX;
	return a;
}

void fsm_aux_maybe_free(struct fsm *f, struct fsm_queue *q, struct fsm_msg *m)
{
	uintptr_t *slot = fsm_seq_slot(&q->idx, m->seq);
	struct fsm_aux *a = fsm_slot_aux(*slot);

	if (a == NULL || m->state != FSM_MS_READY || a->expires != 0 ||
	    a->owner != NULL || fsm_timer_armed(a))
		return;
	*slot = (uintptr_t)m;
	fsm_mem_free(f, a, sizeof(*a));
}

/* ---- Deduplication. The entries are the queue's messages marked `dd`
 * and its tombstones; seq order is time order (the clock never goes back),
 * so the oldest entry is the first marked slot at or after dd_low. */

static void dd_forget(struct fsm *f, struct fsm_queue *q, uint64_t seq,
                      struct fsm_msg *m)
{
	fsm_dd_remove(f, &q->dedup,
	              fsm_dd_hash(fsm_msg_id(m), fsm_msg_id_len(m)), seq);
	m->dd = 0;
	if (m->state != FSM_MS_GONE)
		return;
	fsm_seq_clear(f, &q->idx, seq);
	q->n_tomb--;
	fsm_mem_free(f, m, fsm_msg_size(m));
}

/* The oldest entry, or NULL. */
static struct fsm_msg *dd_oldest(struct fsm_queue *q, uint64_t *seq)
{
	uint64_t s = q->dd_low;
	uintptr_t v;

	if (q->dedup.count == 0)
		return NULL;
	while ((v = fsm_seq_next(&q->idx, &s)) != 0) {
		struct fsm_msg *m = fsm_slot_msg(v);

		if (m->dd) {
			q->dd_low = s;
			*seq = s;
			return m;
		}
		s++;
	}
	return NULL;
}

/* Forgets entries past the window, and entries too far behind last_seq
 * for the index's 32-bit seqs. */
static void dd_expire(struct fsm *f, struct fsm_queue *q)
{
	struct fsm_msg *m;
	uint64_t seq;

	while ((m = dd_oldest(q, &seq)) != NULL &&
	       (dd_expired(f, q, m->timestamp) ||
	        q->last_seq - seq >= FSM_DD_SPAN))
		dd_forget(f, q, seq, m);
}

static void dd_add(struct fsm_queue *q, struct fsm_msg *m)
{
	if (q->dedup.count == 0)
		q->dd_low = m->seq;
	fsm_dd_insert(&q->dedup, fsm_dd_hash(fsm_msg_id(m), fsm_msg_id_len(m)),
	              m->seq);
	m->dd = 1;
}

struct dd_key {
	const struct fsm_queue *q;
	const char *id;
	uint32_t len;
};

static int dd_match(const void *ctx, uint64_t seq)
{
	const struct dd_key *k = ctx;
	uintptr_t v = fsm_seq_get(&k->q->idx, seq);
	const struct fsm_msg *m;

	if (v == 0)
		return 0;
	m = fsm_slot_msg(v);
	return fsm_msg_id_len(m) == k->len &&
	       memcmp(fsm_msg_id(m), k->id, k->len) == 0;
}

/* The seq of the entry with that id, or 0. */
uint64_t fsm_dedup_lookup(const struct fsm_queue *q, const char *id,
                          uint32_t len, uint32_t h)
{
	struct dd_key k = {q, id, len};

	return fsm_dd_find(&q->dedup, h, q->last_seq, dd_match, &k);
}

/* A live entry (within the window) with that id: its seq, or 0. */
static uint64_t dedup_find(const struct fsm *f, const struct fsm_queue *q,
                           const char *id, uint32_t len, uint32_t h)
{
	uint64_t seq;

	if (len == 0 || f->cfg.max_dedup_entries == 0 || q->dedup.count == 0)
		return 0;
	seq = fsm_dedup_lookup(q, id, len, h);
	if (seq != 0 &&
	    dd_expired(f, q,
	               fsm_slot_msg(fsm_seq_get(&q->idx, seq))->timestamp))
		return 0;
	return seq;
}

/* A message leaving its queue while its id counts for deduplication
 * shrinks to a tombstone in its slot: header and id only. */
static void msg_bury(struct fsm *f, struct fsm_queue *q, struct fsm_msg *m)
{
	size_t old = fsm_msg_size(m);
	uintptr_t *slot;

	m->state = FSM_MS_GONE;
	m->has_props = 0;
	m->payload_len = 0;
	m->delivery_count = 0;
	slot = fsm_seq_slot(&q->idx, m->seq);
	*slot = (uintptr_t)fsm_mem_shrink(f, m, old, fsm_msg_size(m));
	q->n_tomb++;
}

void fsm_msg_remove(struct fsm *f, struct fsm_queue *q, struct fsm_msg *m)
{
	struct fsm_aux *a = fsm_msg_aux(q, m);
	uint64_t seq = m->seq;

	if (a != NULL) {
		if (a->owner != NULL) {
			fsm_owner_remove(f, a);
			fsm_mark_dirty(f, q);
		}
		fsm_timer_remove(f, a);
		*fsm_seq_slot(&q->idx, seq) = (uintptr_t)m;
		fsm_mem_free(f, a, sizeof(*a));
	}
	fsm_q_account(q, m, -1);
	q->bytes -= fsm_msg_bytes(m);
	f->stored -= fsm_msg_bytes(m) + FSM_MSG_COST;
	if (m->dd && !dd_expired(f, q, m->timestamp)) {
		msg_bury(f, q, m);
		return;
	}
	if (m->dd)
		fsm_dd_remove(f, &q->dedup,
		              fsm_dd_hash(fsm_msg_id(m), fsm_msg_id_len(m)),
		              seq);
	fsm_seq_clear(f, &q->idx, seq);
	fsm_mem_free(f, m, fsm_msg_size(m));
}

/* ---- The requeue heap: seqs of READY messages below the cursor. Entries
 * whose message left READY are skipped when they surface. */

void fsm_rq_push(struct fsm *f, struct fsm_queue *q, uint64_t seq)
{
	uint32_t i;

	if (q->rq_n == q->rq_cap) {
		uint32_t cap = q->rq_cap ? q->rq_cap * 2 : 16;
		uint64_t *n = fsm_mem_alloc(f, (size_t)cap * 8);

		/* Out of memory: the message stays READY but unreachable
		 * until the next restore; nothing better is possible. */
		if (n == NULL)
			return;
		if (q->rq_n)
			memcpy(n, q->rq, (size_t)q->rq_n * 8);
		fsm_mem_free(f, q->rq, (size_t)q->rq_cap * 8);
		q->rq = n;
		q->rq_cap = cap;
	}
	i = q->rq_n++;
	while (i > 0 && q->rq[(i - 1) / 2] > seq) {
		q->rq[i] = q->rq[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	q->rq[i] = seq;
}

static void rq_pop(struct fsm_queue *q)
{
	uint64_t last = q->rq[--q->rq_n];
	uint32_t i = 0;

	for (;;) {
		uint32_t l = 2 * i + 1, m = l;

		if (l >= q->rq_n)
			break;
		if (l + 1 < q->rq_n && q->rq[l + 1] < q->rq[l])
			m = l + 1;
		if (q->rq[m] >= last)
			break;
		q->rq[i] = q->rq[m];
		i = m;
	}
	if (q->rq_n)
		q->rq[i] = last;
}

struct fsm_msg *fsm_queue_next_ready(struct fsm *f, struct fsm_queue *q)
{
	struct fsm_msg *m;

	(void)f;
	while (q->rq_n > 0) {
		m = fsm_msg_find(q, q->rq[0]);
		if (m != NULL && m->state == FSM_MS_READY)
			return m;
		rq_pop(q);
	}
	if (q->n_ready == 0)
		return NULL;
	while (q->cursor <= q->last_seq) {
		m = fsm_msg_find(q, q->cursor);
		if (m != NULL && m->state == FSM_MS_READY)
			return m;
		q->cursor++;
	}
	return NULL;
}

void fsm_queue_take(struct fsm_queue *q, struct fsm_msg *m)
{
	if (m->seq >= q->cursor)
		q->cursor = m->seq + 1;
	else if (q->rq_n > 0 && q->rq[0] == m->seq)
		rq_pop(q);
}

/* ---- Admission, overflow and enqueue. */

int fsm_queue_admit(const struct fsm_queue *q, uint64_t len)
{
	uint64_t n = q->n_ready + q->n_delayed + q->n_flight;
	uint64_t bytes = q->bytes;

	if (q->opts.overflow == FSM_OVERFLOW_DROP_HEAD) {
		/* Everything READY could be dropped to make room. */
		n -= q->n_ready;
		bytes -= q->ready_bytes;
	}
	if (n + 1 > q->opts.max_length || bytes + len > q->opts.max_bytes)
		return FSM_EFULL;
	return FSM_OK;
}

uint64_t fsm_msg_in_bytes(const struct fsm_msg_in *in,
                          const struct fsm_header *extra, uint32_t n_extra)
{
	uint64_t props = fsm_props_size(in, extra, n_extra);

	return (in->id_len ? 2 + (uint64_t)in->id_len : 0) +
	       (props ? 4 + props : 0) + in->payload_len;
}

int fsm_queue_reserve(struct fsm *f, struct fsm_queue *q)
{
	if (q->last_seq == UINT64_MAX - 1 ||
	    fsm_seq_reserve(f, &q->idx, q->last_seq + 1) != 0 ||
	    fsm_timer_reserve(f, 1) != 0)
		return FSM_ENOMEM;
	return 0;
}

struct fsm_msg *fsm_msg_build(struct fsm *f, const struct fsm_queue *q,
                              const struct fsm_msg_in *in,
                              const struct fsm_header *extra, uint32_t n_extra,
                              struct fsm_aux **aux)
{
	size_t props = fsm_props_size(in, extra, n_extra);
	uint64_t ttl = in->ttl ? in->ttl : q->opts.message_ttl;
	uint64_t delay = in->delay ? in->delay : q->opts.delay;
	struct fsm_msg *m;
	struct fsm_aux *a;
	char *pp;

	*aux = NULL;
	if (props > UINT32_MAX / 2)
		return NULL;
	m = fsm_msg_alloc(f, in->id, in->id_len, (uint32_t)props, in->payload,
	                  in->payload_len, &pp);
	if (m == NULL)
		return NULL;
	if (props)
		fsm_props_write(pp, in, extra, n_extra);
	if (ttl != 0 || delay != 0) {
		a = fsm_aux_new(f, (struct fsm_queue *)q, m);
		if (a == NULL) {
			fsm_mem_free(f, m, fsm_msg_size(m));
			return NULL;
		}
		a->expires = ttl ? f->now + ttl : 0;
		a->due = delay ? f->now + delay : 0;
		/* A TTL that lands on the clock (overflowing sums aside)
		 * must still be a future event. */
		if (ttl && a->expires <= f->now)
			a->expires = UINT64_MAX;
		if (delay && a->due <= f->now)
			a->due = UINT64_MAX;
		*aux = a;
	}
	return m;
}

void fsm_msg_discard(struct fsm *f, struct fsm_msg *m, struct fsm_aux *a)
{
	if (a != NULL)
		fsm_mem_free(f, a, sizeof(*a));
	fsm_mem_free(f, m, fsm_msg_size(m));
}

static void drop_head(struct fsm *f, struct fsm_queue *q, uint64_t len)
{
	while (q->n_ready + q->n_delayed + q->n_flight + 1 >
	           q->opts.max_length ||
	       q->bytes + len > q->opts.max_bytes) {
		struct fsm_msg *m = fsm_queue_next_ready(f, q);

		if (m == NULL)
			break;
		fsm_queue_take(q, m);
		q->dropped++;
		fsm_msg_remove(f, q, m);
	}
}

void fsm_queue_commit(struct fsm *f, struct fsm_queue *q, struct fsm_msg *m,
                      struct fsm_aux *a, int dedup)
{
	if (q->opts.overflow == FSM_OVERFLOW_DROP_HEAD)
		drop_head(f, q, fsm_msg_bytes(m));
	m->seq = ++q->last_seq;
	m->timestamp = f->now;
	m->state = a != NULL && a->due != 0 ? FSM_MS_DELAYED : FSM_MS_READY;
	if (a != NULL) {
		a->q = q;
		fsm_seq_put(&q->idx, m->seq, (uintptr_t)a | 1);
	} else {
		fsm_seq_put(&q->idx, m->seq, (uintptr_t)m);
	}
	fsm_q_account(q, m, 1);
	q->bytes += fsm_msg_bytes(m);
	f->stored += fsm_msg_bytes(m) + FSM_MSG_COST;
	q->published++;
	if (a != NULL)
		fsm_timer_update(f, a);
	if (q->dedup.count > 0)
		dd_expire(f, q);
	if (dedup) {
		if (q->dedup.count >= f->cfg.max_dedup_entries) {
			uint64_t seq;
			struct fsm_msg *old = dd_oldest(q, &seq);

			if (old != NULL)
				dd_forget(f, q, seq, old);
		}
		dd_add(q, m);
	}
	fsm_mark_dirty(f, q);
}

/* Restore: m carries its seq, state and `dd` flag; seqs come in increasing
 * order, after fsm_seq_reserve() and fsm_dd_reserve(). */
void fsm_queue_insert_raw(struct fsm *f, struct fsm_queue *q, struct fsm_msg *m,
                          struct fsm_aux *a)
{
	fsm_seq_put(&q->idx, m->seq,
	            a != NULL ? (uintptr_t)a | 1 : (uintptr_t)m);
	if (m->dd) {
		m->dd = 0;
		dd_add(q, m);
	}
	if (m->state == FSM_MS_GONE) {
		q->n_tomb++;
		return;
	}
	fsm_q_account(q, m, 1);
	q->bytes += fsm_msg_bytes(m);
	f->stored += fsm_msg_bytes(m) + FSM_MSG_COST;
	if (m->state == FSM_MS_READY && m->seq < q->cursor)
		fsm_rq_push(f, q, m->seq);
	if (a != NULL)
		fsm_timer_update(f, a);
}

/* ---- Commands. */

int fsm_name_ok(const struct fsm *f, const char *s, uint32_t n)
{
	return n > 0 && n <= f->cfg.max_name && s != NULL;
}

static int opts_equal(const struct fsm_queue *q, const struct fsm_queue_opts *o,
                      uint32_t dlq_len)
{
	const struct fsm_queue_opts *a = &q->opts;

	return a->ack_timeout == o->ack_timeout &&
	       a->max_deliveries == o->max_deliveries &&
	       a->message_ttl == o->message_ttl && a->delay == o->delay &&
	       a->max_length == o->max_length && a->max_bytes == o->max_bytes &&
	       a->overflow == o->overflow &&
	       a->dedup_window == o->dedup_window &&
	       a->exclusive == o->exclusive &&
	       a->auto_delete == o->auto_delete && q->dlq_len == dlq_len &&
	       (dlq_len == 0 || memcmp(a->dlq, o->dlq, dlq_len) == 0);
}

static int queue_declare(struct fsm *f, const struct fsm_cmd *c,
                         struct fsm_result *r)
{
	const char *name = c->u.declare.name;
	uint32_t len = c->u.declare.name_len;
	struct fsm_queue_opts o = c->u.declare.opts;
	uint32_t dlq_len = o.dlq != NULL ? c->u.declare.dlq_len : 0;
	struct fsm_queue *q;

	if (!fsm_name_ok(f, name, len) || o.overflow > FSM_OVERFLOW_DROP_HEAD ||
	    dlq_len > f->cfg.max_name)
		return FSM_EINVAL;
	fsm_queue_resolve_opts(f, &o);
	q = fsm_queue_find(f, name, len);
	if (q != NULL) {
		if (!opts_equal(q, &o, dlq_len))
			return FSM_EEXISTS;
		r->u.declare.queue_id = q->id;
		r->u.declare.created = 0;
		return FSM_OK;
	}
	if (f->queues.count >= f->cfg.max_queues)
		return FSM_ELIMIT;
	q = fsm_queue_create(f, f->next_queue_id + 1, name, len, &o, dlq_len);
	if (q == NULL)
		return FSM_ENOMEM;
	f->next_queue_id++;
	r->u.declare.queue_id = q->id;
	r->u.declare.created = 1;
	return FSM_OK;
}

void fsm_queue_destroy(struct fsm *f, struct fsm_queue *q, int emit)
{
	uint64_t seq = 0;
	uintptr_t v;
	uint32_t i;

	/* Detach the in-flight messages from their owners first, so that
	 * cancelling the consumers requeues nothing. */
	for (seq = 0; (v = fsm_seq_next(&q->idx, &seq)) != 0; seq++) {
		struct fsm_aux *a = fsm_slot_aux(v);

		if (a != NULL && a->owner != NULL)
			fsm_owner_remove(f, a);
	}
	q->had_consumer = 0; /* no auto-delete from inside the delete */
	while (q->consumers.n > 0)
		fsm_consumer_cancel(f, q->consumers.v[q->consumers.n - 1], emit,
		                    FSM_ENOQUEUE);
	for (seq = 0; (v = fsm_seq_next(&q->idx, &seq)) != 0; seq++) {
		struct fsm_aux *a = fsm_slot_aux(v);
		struct fsm_msg *m = fsm_slot_msg(v);

		if (a != NULL) {
			fsm_timer_remove(f, a);
			fsm_mem_free(f, a, sizeof(*a));
		}
		fsm_mem_free(f, m, fsm_msg_size(m));
	}
	f->stored -= q->bytes + FSM_MSG_COST * fsm_queue_count(q);
	fsm_seq_free(f, &q->idx);
	fsm_dd_free(f, &q->dedup);
	fsm_vec_free(f, &q->consumers);
	fsm_mem_free(f, q->rq, (size_t)q->rq_cap * 8);
	fsm_topic_unbind_queue(f, q->id);
	for (i = 0; i < f->dirty.n; i++)
		if (f->dirty.v[i] == q) {
			f->dirty.v[i] = f->dirty.v[--f->dirty.n];
			break;
		}
	fsm_htab_remove(f, &f->queues, q);
	fsm_htab_remove(f, &f->queue_ids, q);
	fsm_mem_free(f, q->name, (size_t)q->name_len + 1);
	fsm_mem_free(f, (void *)q->opts.dlq, (size_t)q->dlq_len + 1);
	fsm_mem_free(f, q, sizeof(*q));
}

static int queue_delete(struct fsm *f, const struct fsm_cmd *c,
                        struct fsm_result *r)
{
	struct fsm_queue *q;

	if (!fsm_name_ok(f, c->u.qdelete.name, c->u.qdelete.name_len))
		return FSM_EINVAL;
	q = fsm_queue_find(f, c->u.qdelete.name, c->u.qdelete.name_len);
	if (q == NULL)
		return FSM_ENOQUEUE;
	if (c->u.qdelete.if_empty && fsm_queue_count(q) > 0)
		return FSM_ENOTEMPTY;
	r->u.removed.removed = fsm_queue_count(q);
	fsm_queue_destroy(f, q, 1);
	return FSM_OK;
}

/* Removes READY and delayed messages in seq order; removals only empty
 * slots or turn them into tombstones, so the walk goes on by seq. */
static int queue_purge(struct fsm *f, const struct fsm_cmd *c,
                       struct fsm_result *r)
{
	struct fsm_queue *q;
	uint64_t n = 0, seq;
	uintptr_t v;

	if (!fsm_name_ok(f, c->u.qdelete.name, c->u.qdelete.name_len))
		return FSM_EINVAL;
	q = fsm_queue_find(f, c->u.qdelete.name, c->u.qdelete.name_len);
	if (q == NULL)
		return FSM_ENOQUEUE;
	for (seq = 0; (v = fsm_seq_next(&q->idx, &seq)) != 0; seq++) {
		struct fsm_msg *m = fsm_slot_msg(v);

		if (m->state == FSM_MS_READY || m->state == FSM_MS_DELAYED) {
			fsm_msg_remove(f, q, m);
			n++;
		}
	}
	q->rq_n = 0;
	q->cursor = q->last_seq + 1;
	r->u.removed.removed = n;
	return FSM_OK;
}

int fsm_cmd_queue(struct fsm *f, const struct fsm_cmd *c, struct fsm_result *r)
{
	switch (c->type) {
	case FSM_CMD_QUEUE_DECLARE:
		return queue_declare(f, c, r);
	case FSM_CMD_QUEUE_DELETE:
		return queue_delete(f, c, r);
	default:
		return queue_purge(f, c, r);
	}
}

/* Publish: route, check every target, allocate everything, then commit, so
 * that a failure anywhere leaves every queue unchanged. */
int fsm_cmd_publish(struct fsm *f, const struct fsm_cmd *c,
                    struct fsm_result *r)
{
	const struct fsm_msg_in *in = &c->u.publish.msg;
	struct fsm_queue *tg_s[8], **tg = tg_s;
	struct fsm_msg *mv_s[8], **mv = mv_s;
	struct fsm_aux *av_s[8], **av = av_s;
	uint64_t dup_s[8], *dup = dup_s;
	uint32_t n = 0, i, h = 0;
	uint64_t bytes, cost = 0;
	int rc = FSM_OK, use_dedup;

	if (c->u.publish.topic_len > f->cfg.max_name || in->id_len > 65535 ||
	    in->n_headers > f->cfg.max_headers)
		return FSM_EINVAL;
	/* The whole message counts (max_payload, max_bytes, windows). */
	bytes = fsm_msg_in_bytes(in, NULL, 0);
	if (bytes > f->cfg.max_payload)
		return FSM_ETOOBIG;
	use_dedup = in->id_len > 0 && f->cfg.max_dedup_entries > 0;
	if (use_dedup)
		h = fsm_dd_hash(in->id, in->id_len);
	if (c->u.publish.topic_len == 0) {
		if (!fsm_name_ok(f, c->u.publish.key, c->u.publish.key_len))
			return FSM_EINVAL;
		tg[0] =
		    fsm_queue_find(f, c->u.publish.key, c->u.publish.key_len);
		if (tg[0] == NULL)
			return FSM_ENOQUEUE;
		n = 1;
	} else {
		struct fsm_topic *t = fsm_topic_find(f, c->u.publish.topic,
		                                     c->u.publish.topic_len);

		if (t == NULL)
			return FSM_ENOTOPIC;
		if (t->bindings.n == 0)
			return FSM_OK;
		if (t->bindings.n > 8) {
			size_t k = t->bindings.n;

			tg = malloc(k * sizeof(*tg));
			mv = malloc(k * sizeof(*mv));
			av = malloc(k * sizeof(*av));
			dup = malloc(k * sizeof(*dup));
			if (tg == NULL || mv == NULL || av == NULL ||
			    dup == NULL) {
				rc = FSM_ENOMEM;
				goto out;
			}
		}
		n = fsm_topic_route(f, t, c->u.publish.key,
		                    c->u.publish.key_len, tg);
	}
	/* Check. */
	for (i = 0; i < n; i++) {
		mv[i] = NULL;
		av[i] = NULL;
		dup[i] =
		    use_dedup ? dedup_find(f, tg[i], in->id, in->id_len, h) : 0;
		if (dup[i] != 0)
			continue;
		rc = fsm_queue_admit(tg[i], bytes);
		if (rc != FSM_OK)
			goto out;
		cost += bytes + FSM_MSG_COST;
	}
	/* The state's bound: every copy, before anything changes. */
	if (cost > 0 && (f->stored > f->cfg.max_memory ||
	                 cost > f->cfg.max_memory - f->stored)) {
		rc = FSM_ECLUSTERFULL;
		goto out;
	}
	/* Allocate. */
	if (fsm_timer_reserve(f, n) != 0)
		goto nomem;
	for (i = 0; i < n; i++) {
		struct fsm_queue *q = tg[i];

		if (dup[i] != 0)
			continue;
		if (fsm_queue_reserve(f, q) != 0)
			goto nomem;
		if (use_dedup && fsm_dd_reserve(f, &q->dedup, 1) != 0)
			goto nomem;
		mv[i] = fsm_msg_build(f, q, in, NULL, 0, &av[i]);
		if (mv[i] == NULL)
			goto nomem;
	}
	/* Commit. */
	for (i = 0; i < n; i++) {
		struct fsm_queue *q = tg[i];

		if (dup[i] != 0) {
			q->deduplicated++;
			r->u.publish.duplicate = 1;
			if (i == 0)
				r->u.publish.seq = dup[i];
			continue;
		}
		fsm_queue_commit(f, q, mv[i], av[i], use_dedup);
		r->u.publish.queues++;
		if (i == 0)
			r->u.publish.seq = mv[i]->seq;
	}
	goto out;
nomem:
	rc = FSM_ENOMEM;
	for (i = 0; i < n; i++)
		if (mv[i] != NULL)
			fsm_msg_discard(f, mv[i], av[i]);
out:
	if (tg != tg_s) {
		free(tg);
		free(mv);
		free(av);
		free(dup);
	}
	return rc;
}

/* ---- Views and checks. */

void fsm_queue_stats_fill(const struct fsm_queue *q, struct fsm_queue_stats *s)
{
	memset(s, 0, sizeof(*s));
	s->queue_id = q->id;
	s->ready = q->n_ready + q->n_delayed;
	s->delayed = q->n_delayed;
	s->in_flight = q->n_flight;
	s->bytes = q->bytes;
	s->consumers = q->consumers.n;
	s->published = q->published;
	s->acked = q->acked;
	s->dead_lettered = q->dead_lettered;
	s->expired = q->expired;
	s->dropped = q->dropped;
	s->deduplicated = q->deduplicated;
	s->last_seq = q->last_seq;
	s->opts = q->opts;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_qname(const void *a, const void *b)
{
	const struct fsm_queue *x = *(struct fsm_queue *const *)a;
	const struct fsm_queue *y = *(struct fsm_queue *const *)b;

	return fsm_name_cmp(x->name, x->name_len, y->name, y->name_len);
}

struct fsm_queue **fsm_queues_sorted(const struct fsm *f, uint32_t *n)
{
	struct fsm_queue **v = malloc((f->queues.count + 1) * sizeof(*v));
	uint32_t i, k = 0;

	if (v == NULL)
		return NULL;
	for (i = 0; i < f->queues.cap; i++)
		if (f->queues.slots[i] != NULL)
			v[k++] = f->queues.slots[i];
	qsort(v, k, sizeof(*v), cmp_qname);
	*n = k;
	return v;
}

#define CHECK(x)                                                               \
	do {                                                                   \
		if (!(x))                                                      \
			return -1;                                             \
	} while (0)

/* One slot of the seq index: the message, its side record and its dedup
 * entry agree with the queue. */
static int check_slot(const struct fsm *f, const struct fsm_queue *q,
                      uint64_t seq, uintptr_t v, const uint64_t *rq)
{
	const struct fsm_msg *m = fsm_slot_msg(v);
	const struct fsm_aux *a = fsm_slot_aux(v);

	CHECK(m->seq == seq && seq > 0 && seq <= q->last_seq);
	if (m->dd) {
		CHECK(m->has_id && seq >= q->dd_low &&
		      q->last_seq - seq < FSM_DD_SPAN);
		CHECK(fsm_dd_contains(
		    &q->dedup, fsm_dd_hash(fsm_msg_id(m), fsm_msg_id_len(m)),
		    seq));
		CHECK(fsm_dedup_lookup(q, fsm_msg_id(m), fsm_msg_id_len(m),
		                       fsm_dd_hash(fsm_msg_id(m),
		                                   fsm_msg_id_len(m))) == seq);
	}
	if (m->state == FSM_MS_GONE) {
		CHECK(a == NULL && m->dd && !m->has_props &&
		      m->payload_len == 0 && m->delivery_count == 0);
		return 0;
	}
	if (m->state == FSM_MS_READY && m->seq < q->cursor)
		CHECK(rq != NULL &&
		      bsearch(&m->seq, rq, q->rq_n, 8, cmp_u64) != NULL);
	CHECK(m->state == FSM_MS_READY || a != NULL);
	CHECK(m->state != FSM_MS_FLIGHT ||
	      (m->seq < q->cursor && m->delivery_count > 0));
	if (a == NULL)
		return 0;
	CHECK(a->msg == m && a->q == q);
	CHECK((m->state == FSM_MS_FLIGHT) == (a->owner != NULL));
	CHECK(a->owner == NULL || (a->owner_slot < a->owner->flights.n &&
	                           a->owner->flights.v[a->owner_slot] == a));
	/* Each session is checked once: with its first consumer, or (no
	 * consumers) from the first message in its gets. */
	if (a->owner != NULL && a->owner->consumer == 0 && a->owner_slot == 0 &&
	    a->owner->s->consumers.n == 0)
		CHECK(fsm_session_check(f, a->owner->s) == 0);
	if (fsm_aux_key(a) == 0)
		CHECK(!fsm_timer_armed(a));
	else if (a->heap_idx != FSM_NOIDX)
		CHECK(a->heap_idx < f->heap_n && f->heap[a->heap_idx].a == a &&
		      f->heap[a->heap_idx].time == fsm_aux_key(a));
	else
		CHECK(a->fifo && a != q->tq_head);
	return 0;
}

int fsm_queue_check(const struct fsm *f, const struct fsm_queue *q)
{
	uint64_t n[4] = {0, 0, 0, 0}, bytes = 0, rbytes = 0, cnt = 0, dd = 0;
	uint64_t nfifo = 0, fifo = 0;
	uint64_t *rq = NULL, seq;
	uintptr_t v;
	uint32_t i;
	int rc = 0;

	CHECK(fsm_queue_find(f, q->name, q->name_len) == q);
	CHECK(fsm_queue_by_id(f, q->id) == q);
	CHECK(q->cursor >= 1 && q->cursor <= q->last_seq + 1);
	CHECK(fsm_seq_check(&q->idx) == 0);
	CHECK(fsm_timer_check(f, q, &nfifo) == 0);
	if (q->rq_n) {
		rq = malloc(q->rq_n * 8);
		CHECK(rq != NULL);
		memcpy(rq, q->rq, q->rq_n * 8);
		qsort(rq, q->rq_n, 8, cmp_u64);
	}
	for (seq = 0; rc == 0 && (v = fsm_seq_next(&q->idx, &seq)) != 0;
	     seq++) {
		const struct fsm_msg *m = fsm_slot_msg(v);

		rc = check_slot(f, q, seq, v, rq);
		cnt++;
		fifo += fsm_slot_aux(v) != NULL && fsm_slot_aux(v)->fifo;
		n[m->state]++;
		dd += m->dd;
		if (m->state != FSM_MS_GONE)
			bytes += fsm_msg_bytes(m);
		if (m->state == FSM_MS_READY)
			rbytes += fsm_msg_bytes(m);
	}
	free(rq);
	CHECK(rc == 0);
	CHECK(cnt == q->idx.count);
	CHECK(n[0] == q->n_ready && n[1] == q->n_delayed &&
	      n[2] == q->n_flight && n[3] == q->n_tomb);
	CHECK(bytes == q->bytes && rbytes == q->ready_bytes);
	CHECK(dd == q->dedup.count);
	CHECK(fifo == nfifo);
	CHECK(dd <
	      FSM_DD_SPAN); /* a lowered max_dedup_entries may leave more */
	cnt = 0;
	for (i = 0; i < q->consumers.n; i++) {
		const struct fsm_consumer *c = q->consumers.v[i];

		cnt += c->owner.flights.n < c->prefetch && !c->owner.s->blocked;
		CHECK(c->q == q);
		if (c->owner.s->consumers.n > 0 &&
		    c->owner.s->consumers.v[0] == c)
			CHECK(fsm_session_check(f, c->owner.s) == 0);
		CHECK(i == 0 ||
		      ((const struct fsm_consumer *)q->consumers.v[i - 1])->id <
		          c->id);
	}
	CHECK(cnt == q->n_credit);
	CHECK(q->consumers.n == 0 || q->rr < q->consumers.n);
	return 0;
}
