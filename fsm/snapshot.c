/* fsm/snapshot: the whole state as versioned msgpack, and its restore into
 * a fresh object that replaces the old one only when everything checked. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "fsm/fsm_int.h"

#define SNAP_MAGIC "raftmq-fsm"
/* Version 4: element 2 (the configuration) becomes [config, config_set,
 * applied, digest], config being a map of every field of struct fsm_config
 * by name (bin key -> uint; a name this code does not know is refused, a
 * missing one takes its default, so a new field needs no new version).
 * Versions 1-3 stored the 10 first fields as an array: they restore with
 * config_set = 1 (they stored a configuration), applied and digest 0.
 * Version 3: version 2 followed by a 16-byte trailer, SNAP_TRAILER and the
 * little-endian fsm_checksum() of every byte before it. raft 0.22.1 checks
 * only the snapshot's metadata file, so without it a bit flipped on disk
 * inside a message would be restored silently.
 * Version 2: tombstones and the dedup mark travel with the messages.
 * Restore still reads versions 2 and 1 (dedup entries in a list of their
 * own), which carry no trailer. */
#define SNAP_VERSION     4
#define SNAP_TRAILER     "rmqsum01"
#define SNAP_TRAILER_LEN 16

/* Room for the configuration's fields (fsm_config_to_kv). */
#define SNAP_CONFIG_MAX 64

static void pack_bin(msgpack_packer *pk, const char *s, uint32_t n)
{
	msgpack_pack_bin(pk, n);
	msgpack_pack_bin_body(pk, s, n);
}

static int pack_queue(msgpack_packer *pk, const struct fsm_queue *q)
{
	const struct fsm_queue_opts *o = &q->opts;
	uint64_t seq;
	uintptr_t v;

	if (q->idx.count > UINT32_MAX)
		return FSM_ENOMEM;
	msgpack_pack_array(pk, 9);
	msgpack_pack_uint32(pk, q->id);
	pack_bin(pk, q->name, q->name_len);
	msgpack_pack_array(pk, 11);
	msgpack_pack_uint64(pk, o->ack_timeout);
	msgpack_pack_uint32(pk, o->max_deliveries);
	pack_bin(pk, o->dlq, q->dlq_len);
	msgpack_pack_uint64(pk, o->message_ttl);
	msgpack_pack_uint64(pk, o->delay);
	msgpack_pack_uint64(pk, o->max_length);
	msgpack_pack_uint64(pk, o->max_bytes);
	msgpack_pack_uint8(pk, o->overflow);
	msgpack_pack_uint64(pk, o->dedup_window);
	msgpack_pack_uint8(pk, o->exclusive);
	msgpack_pack_uint8(pk, o->auto_delete);
	msgpack_pack_array(pk, 6);
	msgpack_pack_uint64(pk, q->published);
	msgpack_pack_uint64(pk, q->acked);
	msgpack_pack_uint64(pk, q->dead_lettered);
	msgpack_pack_uint64(pk, q->expired);
	msgpack_pack_uint64(pk, q->dropped);
	msgpack_pack_uint64(pk, q->deduplicated);
	msgpack_pack_uint64(pk, q->last_seq);
	msgpack_pack_uint64(pk, q->cursor);
	msgpack_pack_uint32(pk, q->rr);
	msgpack_pack_uint8(pk, q->had_consumer);
	/* Messages and tombstones in seq order. */
	msgpack_pack_array(pk, (uint32_t)q->idx.count);
	for (seq = 0; (v = fsm_seq_next(&q->idx, &seq)) != 0; seq++) {
		const struct fsm_msg *m = fsm_slot_msg(v);
		const struct fsm_aux *a = fsm_slot_aux(v);

		msgpack_pack_array(pk, 12);
		msgpack_pack_uint64(pk, m->seq);
		msgpack_pack_uint64(pk, m->timestamp);
		msgpack_pack_uint8(pk, m->state);
		msgpack_pack_uint32(pk, m->delivery_count);
		msgpack_pack_uint64(
		    pk, a != NULL && m->state != FSM_MS_READY ? a->due : 0);
		msgpack_pack_uint64(pk, a != NULL ? a->expires : 0);
		msgpack_pack_uint64(
		    pk, a != NULL && a->owner != NULL ? a->owner->consumer : 0);
		msgpack_pack_uint64(
		    pk, a != NULL && a->owner != NULL ? a->owner->session : 0);
		pack_bin(pk, fsm_msg_id(m), fsm_msg_id_len(m));
		pack_bin(pk, fsm_msg_props(m), fsm_msg_props_len(m));
		pack_bin(pk, fsm_msg_payload(m), m->payload_len);
		msgpack_pack_uint8(pk, m->dd);
	}
	return 0;
}

static int cmp_consumer(const void *a, const void *b)
{
	const struct fsm_consumer *x = *(struct fsm_consumer *const *)a;
	const struct fsm_consumer *y = *(struct fsm_consumer *const *)b;

	return x->id < y->id ? -1 : x->id > y->id;
}

int fsm_snapshot(const struct fsm *f, void **buf, size_t *len)
{
	const struct fsm_config *c = &f->cfg;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	struct fsm_queue **qv = NULL;
	struct fsm_topic **tv = NULL;
	struct fsm_consumer **cv = NULL;
	uint32_t nq = 0, nt = 0, nc = 0, nk, i, j;
	struct fsm_config_kv kv[SNAP_CONFIG_MAX];
	int rc = FSM_ENOMEM;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	qv = fsm_queues_sorted(f, &nq);
	tv = fsm_topics_sorted(f, &nt);
	cv = malloc((f->consumers.count + 1) * sizeof(*cv));
	if (qv == NULL || tv == NULL || cv == NULL)
		goto out;
	for (i = 0; i < f->consumers.cap; i++)
		if (f->consumers.slots[i] != NULL)
			cv[nc++] = f->consumers.slots[i];
	qsort(cv, nc, sizeof(*cv), cmp_consumer);

	msgpack_pack_array(&pk, 9);
	pack_bin(&pk, SNAP_MAGIC, sizeof(SNAP_MAGIC) - 1);
	msgpack_pack_uint32(&pk, SNAP_VERSION);
	msgpack_pack_array(&pk, 4);
	nk = fsm_config_to_kv(c, kv, SNAP_CONFIG_MAX);
	if (nk > SNAP_CONFIG_MAX)
		goto out;
	msgpack_pack_map(&pk, nk);
	for (i = 0; i < nk; i++) {
		pack_bin(&pk, kv[i].key, kv[i].key_len);
		msgpack_pack_uint64(&pk, kv[i].value);
	}
	msgpack_pack_uint8(&pk, f->config_set);
	msgpack_pack_uint64(&pk, f->applied);
	msgpack_pack_uint64(&pk, f->digest);
	msgpack_pack_uint64(&pk, f->now);
	msgpack_pack_uint32(&pk, f->next_queue_id);
	msgpack_pack_uint64(&pk, f->next_consumer_id);
	msgpack_pack_array(&pk, nq);
	for (i = 0; i < nq; i++)
		if (pack_queue(&pk, qv[i]) != 0)
			goto out;
	msgpack_pack_array(&pk, nt);
	for (i = 0; i < nt; i++) {
		const struct fsm_topic *t = tv[i];

		msgpack_pack_array(&pk, 3);
		pack_bin(&pk, t->name, t->name_len);
		msgpack_pack_uint8(&pk, t->kind);
		msgpack_pack_array(&pk, t->bindings.n);
		for (j = 0; j < t->bindings.n; j++) {
			const struct fsm_binding *b = t->bindings.v[j];

			msgpack_pack_array(&pk, 2);
			msgpack_pack_uint32(&pk, b->queue_id);
			pack_bin(&pk, b->key, b->key_len);
		}
	}
	msgpack_pack_array(&pk, nc);
	for (i = 0; i < nc; i++) {
		msgpack_pack_array(&pk, 4);
		msgpack_pack_uint64(&pk, cv[i]->id);
		msgpack_pack_uint32(&pk, cv[i]->q->id);
		msgpack_pack_uint64(&pk, cv[i]->owner.session);
		msgpack_pack_uint32(&pk, cv[i]->prefetch);
	}
	{
		unsigned char t[SNAP_TRAILER_LEN];
		uint64_t sum = fsm_checksum(sb.data, sb.size);

		memcpy(t, SNAP_TRAILER, 8);
		for (i = 0; i < 8; i++)
			t[8 + i] = (unsigned char)(sum >> (8 * i));
		msgpack_sbuffer_write(&sb, (const char *)t, sizeof t);
	}
	if (sb.data == NULL)
		goto out;
	*buf = sb.data;
	*len = sb.size;
	sb.data = NULL;
	rc = 0;
out:
	msgpack_sbuffer_destroy(&sb);
	free(qv);
	free(tv);
	free(cv);
	return rc;
}

/* ---- Restore. Every field is type- and range-checked; the new state is
 * finally run through fsm_check(). */

#define T(x)                                                                   \
	do {                                                                   \
		if (!(x))                                                      \
			goto bad;                                              \
	} while (0)

static const msgpack_object *arr(const msgpack_object *o, uint32_t n)
{
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != n)
		return NULL;
	return o->via.array.ptr;
}

static const msgpack_object *arr_any(const msgpack_object *o, uint32_t *n)
{
	if (o->type != MSGPACK_OBJECT_ARRAY)
		return NULL;
	*n = o->via.array.size;
	return o->via.array.ptr;
}

static int u64(const msgpack_object *o, uint64_t *v)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return -1;
	*v = o->via.u64;
	return 0;
}

static int u32(const msgpack_object *o, uint32_t *v)
{
	uint64_t x;

	if (u64(o, &x) != 0 || x > UINT32_MAX)
		return -1;
	*v = (uint32_t)x;
	return 0;
}

static int u8(const msgpack_object *o, uint8_t *v)
{
	uint64_t x;

	if (u64(o, &x) != 0 || x > 255)
		return -1;
	*v = (uint8_t)x;
	return 0;
}

static int bin(const msgpack_object *o, const char **s, uint32_t *n)
{
	if (o->type != MSGPACK_OBJECT_BIN)
		return -1;
	*s = o->via.bin.size ? o->via.bin.ptr : "";
	*n = o->via.bin.size;
	return 0;
}

static int restore_queue(struct fsm *f, const msgpack_object *o, uint32_t ver)
{
	const msgpack_object *a = arr(o, ver == 1 ? 10 : 9), *oa, *ca;
	struct fsm_queue_opts op;
	const char *name, *dlq;
	uint32_t name_len, dlq_len, id;
	struct fsm_queue *q;

	memset(&op, 0, sizeof(op));
	T(a != NULL && u32(&a[0], &id) == 0 &&
	  bin(&a[1], &name, &name_len) == 0);
	/* Limits are those of the restore configuration (fsm_restore): the
	 * hard bounds, as a state may exceed a limit lowered after it was
	 * built. */
	T(id > 0 && id <= f->next_queue_id && fsm_name_ok(f, name, name_len));
	T(fsm_queue_find(f, name, name_len) == NULL &&
	  fsm_queue_by_id(f, id) == NULL);
	oa = arr(&a[2], 11);
	T(oa != NULL && u64(&oa[0], &op.ack_timeout) == 0 &&
	  u32(&oa[1], &op.max_deliveries) == 0 &&
	  bin(&oa[2], &dlq, &dlq_len) == 0 &&
	  u64(&oa[3], &op.message_ttl) == 0 && u64(&oa[4], &op.delay) == 0 &&
	  u64(&oa[5], &op.max_length) == 0 && u64(&oa[6], &op.max_bytes) == 0 &&
	  u8(&oa[7], &op.overflow) == 0 && u64(&oa[8], &op.dedup_window) == 0 &&
	  u8(&oa[9], &op.exclusive) == 0 && u8(&oa[10], &op.auto_delete) == 0);
	T(op.ack_timeout && op.max_length && op.max_bytes && op.dedup_window &&
	  op.overflow <= 1 && op.exclusive <= 1 && op.auto_delete <= 1 &&
	  dlq_len <= f->cfg.max_name);
	op.dlq = dlq;
	q = fsm_queue_create(f, id, name, name_len, &op, dlq_len);
	if (q == NULL)
		return FSM_ENOMEM;
	ca = arr(&a[3], 6);
	T(ca != NULL && u64(&ca[0], &q->published) == 0 &&
	  u64(&ca[1], &q->acked) == 0 && u64(&ca[2], &q->dead_lettered) == 0 &&
	  u64(&ca[3], &q->expired) == 0 && u64(&ca[4], &q->dropped) == 0 &&
	  u64(&ca[5], &q->deduplicated) == 0);
	T(u64(&a[4], &q->last_seq) == 0 && u64(&a[5], &q->cursor) == 0 &&
	  u32(&a[6], &q->rr) == 0 && u8(&a[7], &q->had_consumer) == 0);
	T(q->last_seq < UINT64_MAX && q->cursor >= 1 &&
	  q->cursor <= q->last_seq + 1 && q->had_consumer <= 1);
	return 0;
bad:
	return FSM_EMALFORMED;
}

/* One message or tombstone as read from a snapshot. */
struct snap_msg {
	uint64_t seq, ts, due, exp, cons, sess;
	uint8_t st, dd;
	uint32_t dc, idl, pl, pll;
	const char *id, *props, *payload;
};

/* Version 2 entries have 12 fields, version 1 entries the first 11. */
static int read_msg(const msgpack_object *o, uint32_t ver, struct snap_msg *sm)
{
	const msgpack_object *e = arr(o, ver == 1 ? 11 : 12);

	sm->dd = 0;
	if (e == NULL || u64(&e[0], &sm->seq) || u64(&e[1], &sm->ts) ||
	    u8(&e[2], &sm->st) || u32(&e[3], &sm->dc) || u64(&e[4], &sm->due) ||
	    u64(&e[5], &sm->exp) || u64(&e[6], &sm->cons) ||
	    u64(&e[7], &sm->sess) || bin(&e[8], &sm->id, &sm->idl) ||
	    bin(&e[9], &sm->props, &sm->pl) ||
	    bin(&e[10], &sm->payload, &sm->pll) ||
	    (ver != 1 && u8(&e[11], &sm->dd)))
		return -1;
	return 0;
}

/* A version 1 dedup entry [id, time, seq] read as a tombstone. */
static int read_dedup_v1(const msgpack_object *o, struct snap_msg *sm)
{
	const msgpack_object *e = arr(o, 3);

	memset(sm, 0, sizeof(*sm));
	sm->st = FSM_MS_GONE;
	sm->dd = 1;
	sm->props = sm->payload = "";
	if (e == NULL || bin(&e[0], &sm->id, &sm->idl) || u64(&e[1], &sm->ts) ||
	    u64(&e[2], &sm->seq))
		return -1;
	return 0;
}

struct restore_ctx {
	uint64_t prev, prev_time;
	uint64_t nd;
};

static int restore_msg(struct fsm *f, struct fsm_queue *q,
                       const struct snap_msg *sm, struct restore_ctx *rc)
{
	struct fsm_aux *ax = NULL;
	struct fsm_msg *m;
	uint32_t nh;
	char *pp;

	T(sm->seq > rc->prev && sm->seq <= q->last_seq &&
	  sm->st <= FSM_MS_GONE && sm->idl <= 65535 &&
	  fsm_props_valid(sm->props, sm->pl, &nh) == 0);
	/* Dedup entries: ids unique, times in seq order, not past the
	 * clock, within the index's seq span, bounded in number. */
	T(sm->dd <= 1 && (sm->st != FSM_MS_GONE || sm->dd == 1));
	if (sm->dd) {
		T(sm->idl > 0 && sm->ts >= rc->prev_time && sm->ts <= f->now &&
		  q->last_seq - sm->seq < FSM_DD_SPAN);
		T(++rc->nd <= FSM_DD_SPAN - 1);
		T(fsm_dedup_lookup(q, sm->id, sm->idl,
		                   fsm_dd_hash(sm->id, sm->idl)) == 0);
		rc->prev_time = sm->ts;
	}
	T(sm->st != FSM_MS_GONE ||
	  (sm->dc == 0 && sm->due == 0 && sm->exp == 0 && sm->cons == 0 &&
	   sm->sess == 0 && sm->pl == 0 && sm->pll == 0));
	T(sm->st == FSM_MS_READY || sm->st == FSM_MS_GONE
	      ? sm->due == 0 && sm->cons == 0 && sm->sess == 0
	      : sm->due != 0);
	T(sm->st != FSM_MS_FLIGHT || (sm->dc > 0 && sm->seq < q->cursor));
	T(sm->st == FSM_MS_FLIGHT || (sm->cons == 0 && sm->sess == 0));
	T(sm->pll >> FSM_MAX_PAYLOAD_BITS == 0 && sm->pl <= UINT32_MAX / 2);
	rc->prev = sm->seq;
	if (fsm_seq_reserve(f, &q->idx, sm->seq) != 0 ||
	    fsm_dd_reserve(f, &q->dedup, sm->dd) != 0 ||
	    fsm_timer_reserve(f, 1) != 0)
		return FSM_ENOMEM;
	m = fsm_msg_alloc(f, sm->id, sm->idl, sm->pl, sm->payload, sm->pll,
	                  &pp);
	if (m == NULL)
		return FSM_ENOMEM;
	if (sm->pl)
		memcpy(pp, sm->props, sm->pl);
	m->seq = sm->seq;
	m->timestamp = sm->ts;
	m->state = sm->st;
	m->delivery_count = sm->dc;
	m->dd = sm->dd;
	if (sm->due != 0 || sm->exp != 0) {
		ax = fsm_aux_new(f, q, m);
		if (ax == NULL) {
			fsm_mem_free(f, m, fsm_msg_size(m));
			return FSM_ENOMEM;
		}
		ax->due = sm->due;
		ax->expires = sm->exp;
	}
	if (sm->st == FSM_MS_FLIGHT) {
		struct fsm_owner *ow;

		if (sm->cons != 0) {
			struct fsm_consumer *c = fsm_consumer_find(f, sm->cons);

			ow = c != NULL && c->q == q &&
			             c->owner.session == sm->sess
			         ? &c->owner
			         : NULL;
		} else {
			struct fsm_session *s = fsm_session_get(f, sm->sess, 1);

			ow = s != NULL ? &s->gets : NULL;
		}
		if (ow == NULL || fsm_owner_add(f, ow, ax) != 0) {
			fsm_msg_discard(f, m, ax);
			return ow == NULL ? FSM_EMALFORMED : FSM_ENOMEM;
		}
	}
	fsm_queue_insert_raw(f, q, m, ax);
	return 0;
bad:
	return FSM_EMALFORMED;
}

/* Messages and tombstones in seq order. Version 1 kept the dedup entries
 * apart ([id, time, seq], in seq order): an entry whose message is still
 * there marks it, the others become tombstones. */
static int restore_msgs(struct fsm *f, struct fsm_queue *q,
                        const msgpack_object *o, uint32_t ver)
{
	const msgpack_object *a = arr(o, ver == 1 ? 10 : 9), *mv, *dv = NULL;
	struct restore_ctx ctx = {0, 0, 0};
	uint32_t n, nd = 0, i = 0, j = 0;
	int rc;

	T(a != NULL && (mv = arr_any(&a[8], &n)) != NULL);
	if (ver == 1)
		T((dv = arr_any(&a[9], &nd)) != NULL);
	while (i < n || j < nd) {
		struct snap_msg sm = {0}, sd = {0};

		if (i < n)
			T(read_msg(&mv[i], ver, &sm) == 0);
		if (j < nd)
			T(read_dedup_v1(&dv[j], &sd) == 0);
		if (i < n && (j == nd || sm.seq < sd.seq)) {
			i++;
		} else if (i < n && sm.seq == sd.seq) {
			T(sm.idl == sd.idl && sm.ts == sd.ts &&
			  memcmp(sm.id, sd.id, sm.idl) == 0);
			sm.dd = 1;
			i++;
			j++;
		} else {
			sm = sd;
			j++;
		}
		if ((rc = restore_msg(f, q, &sm, &ctx)) != 0)
			return rc;
	}
	return 0;
bad:
	return FSM_EMALFORMED;
}

static int restore_into(struct fsm *f, const msgpack_object *root)
{
	const msgpack_object *a = arr(root, 9), *qv, *tv, *cv;
	const char *magic;
	uint32_t ml, ver, nq, nt, nc, i, j;
	int rc;

	T(a != NULL && bin(&a[0], &magic, &ml) == 0);
	T(ml == sizeof(SNAP_MAGIC) - 1 && memcmp(magic, SNAP_MAGIC, ml) == 0);
	T(u32(&a[1], &ver) == 0 && ver >= 1 && ver <= SNAP_VERSION);
	T(u64(&a[3], &f->now) == 0 && u32(&a[4], &f->next_queue_id) == 0 &&
	  u64(&a[5], &f->next_consumer_id) == 0);
	T((qv = arr_any(&a[6], &nq)) != NULL);
	T((tv = arr_any(&a[7], &nt)) != NULL);
	T((cv = arr_any(&a[8], &nc)) != NULL);
	for (i = 0; i < nq; i++)
		if ((rc = restore_queue(f, &qv[i], ver)) != 0)
			return rc;
	for (i = 0; i < nc; i++) {
		const msgpack_object *e = arr(&cv[i], 4);
		uint64_t id, sess;
		uint32_t qid, pf;
		struct fsm_queue *q;
		struct fsm_consumer *c;

		T(e != NULL && u64(&e[0], &id) == 0 && u32(&e[1], &qid) == 0 &&
		  u64(&e[2], &sess) == 0 && u32(&e[3], &pf) == 0);
		q = fsm_queue_by_id(f, qid);
		T(q != NULL && pf > 0 && id > 0 && id <= f->next_consumer_id);
		T(fsm_consumer_find(f, id) == NULL);
		T(q->consumers.n == 0 ||
		  ((struct fsm_consumer *)q->consumers.v[q->consumers.n - 1])
		          ->id < id);
		T(!q->opts.exclusive || q->consumers.n == 0);
		if (fsm_consumer_create(f, id, q, sess, pf, &c) != 0)
			return FSM_ENOMEM;
	}
	for (i = 0; i < nq; i++) {
		const msgpack_object *qa = arr(&qv[i], ver == 1 ? 10 : 9);
		uint32_t id;
		struct fsm_queue *q;

		T(qa != NULL && u32(&qa[0], &id) == 0);
		q = fsm_queue_by_id(f, id);
		T(q != NULL);
		/* had_consumer was restored; consumer_create set it too. */
		T(q->consumers.n == 0 || q->had_consumer);
		T(q->rr == 0 || q->rr < q->consumers.n);
		if ((rc = restore_msgs(f, q, &qv[i], ver)) != 0)
			return rc;
	}
	for (i = 0; i < nt; i++) {
		const msgpack_object *e = arr(&tv[i], 3), *bv;
		const char *name;
		uint32_t len, nb;
		uint8_t kind;
		struct fsm_cmd c;
		struct fsm_result r;
		struct fsm_topic *t;

		T(e != NULL && bin(&e[0], &name, &len) == 0 &&
		  u8(&e[1], &kind) == 0 && (bv = arr_any(&e[2], &nb)) != NULL);
		T(fsm_topic_find(f, name, len) == NULL);
		memset(&c, 0, sizeof(c));
		c.type = FSM_CMD_TOPIC_DECLARE;
		c.u.topic.name = name;
		c.u.topic.name_len = len;
		c.u.topic.kind = kind;
		rc = fsm_cmd_topic(f, &c, &r);
		if (rc != 0)
			return rc == FSM_ENOMEM ? rc : FSM_EMALFORMED;
		t = fsm_topic_find(f, name, len);
		for (j = 0; j < nb; j++) {
			const msgpack_object *b = arr(&bv[j], 2);
			uint32_t qid, kl;
			const char *key;

			T(b != NULL && u32(&b[0], &qid) == 0 &&
			  bin(&b[1], &key, &kl) == 0);
			T(fsm_queue_by_id(f, qid) != NULL &&
			  kl <= f->cfg.max_name);
			T(t->bindings.n == j);
			if (fsm_topic_bind(f, t, qid, key, kl) != 0)
				return FSM_ENOMEM;
			T(t->bindings.n == j + 1);
		}
	}
	T(fsm_check(f) == 0);
	return 0;
bad:
	return FSM_EMALFORMED;
}

static uint64_t be(const unsigned char *p, int n)
{
	uint64_t v = 0;

	while (n-- > 0)
		v = v << 8 | *p++;
	return v;
}

/* Walks the msgpack bytes without building anything, and fails when a
 * container claims more elements than bytes remain: msgpack-c allocates
 * from the declared counts, which a corrupt snapshot must not control. */
static int skim(const unsigned char *p, size_t len)
{
	size_t pos = 0;
	uint64_t pending = 1;

	while (pending > 0) {
		unsigned b;
		uint64_t skip = 0, items = 0;
		int lb = 0;

		if (pos >= len)
			return -1;
		b = p[pos++];
		if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 ||
		    b == 0xc3) {
			;
		} else if (b <= 0x8f) {
			items = 2ull * (b & 0xf);
		} else if (b <= 0x9f) {
			items = b & 0xf;
		} else if (b <= 0xbf) {
			skip = b & 0x1f;
		} else {
			switch (b) {
			case 0xc4:
			case 0xd9:
				lb = 1;
				break;
			case 0xc5:
			case 0xda:
				lb = 2;
				break;
			case 0xc6:
			case 0xdb:
				lb = 4;
				break;
			case 0xc7:
				lb = 1;
				skip = 1;
				break;
			case 0xc8:
				lb = 2;
				skip = 1;
				break;
			case 0xc9:
				lb = 4;
				skip = 1;
				break;
			case 0xca:
			case 0xce:
			case 0xd2:
				skip = 4;
				break;
			case 0xcb:
			case 0xcf:
			case 0xd3:
				skip = 8;
				break;
			case 0xcc:
			case 0xd0:
				skip = 1;
				break;
			case 0xcd:
			case 0xd1:
				skip = 2;
				break;
			case 0xd4:
				skip = 2;
				break;
			case 0xd5:
				skip = 3;
				break;
			case 0xd6:
				skip = 5;
				break;
			case 0xd7:
				skip = 9;
				break;
			case 0xd8:
				skip = 17;
				break;
			case 0xdc:
			case 0xde:
				lb = -2;
				break;
			case 0xdd:
			case 0xdf:
				lb = -4;
				break;
			default:
				return -1;
			}
			if (lb != 0) {
				int n = lb < 0 ? -lb : lb;

				if (len - pos < (size_t)n)
					return -1;
				if (lb > 0)
					skip += be(p + pos, n);
				else
					items =
					    be(p + pos, n) *
					    (b == 0xde || b == 0xdf ? 2 : 1);
				pos += (size_t)n;
			}
		}
		if (skip > len - pos || items > len - pos)
			return -1;
		pos += skip;
		pending += items;
		pending--;
	}
	return pos == len ? 0 : -1;
}

static int config_from(const msgpack_object *o, struct fsm_config *c);

/* The configuration, config_set, applied and digest of a snapshot of
 * version `ver`; fields a snapshot does not name keep their defaults. */
struct snap_head {
	struct fsm_config cfg;
	uint8_t config_set;
	uint64_t applied, digest;
};

static int config_map(const msgpack_object *o, struct fsm_config *c)
{
	uint32_t i, j;
	struct fsm_config_kv kv[SNAP_CONFIG_MAX];
	uint32_t nk = fsm_config_to_kv(c, kv, SNAP_CONFIG_MAX);

	if (o->type != MSGPACK_OBJECT_MAP || o->via.map.size > nk ||
	    nk > SNAP_CONFIG_MAX)
		return -1;
	for (i = 0; i < o->via.map.size; i++) {
		const msgpack_object_kv *e = &o->via.map.ptr[i];
		const char *key;
		uint32_t kl;
		uint64_t v;

		if (bin(&e->key, &key, &kl) != 0 || u64(&e->val, &v) != 0 ||
		    fsm_config_set_kv(c, key, kl, v) != 0)
			return -1;
		for (j = 0; j < i; j++) {
			const msgpack_object *k = &o->via.map.ptr[j].key;

			if (k->via.bin.size == kl &&
			    memcmp(k->via.bin.ptr, key, kl) == 0)
				return -1; /* named twice */
		}
	}
	return 0;
}

static int head_from(const msgpack_object *o, uint32_t ver, struct snap_head *h)
{
	const msgpack_object *a;

	fsm_config_default(&h->cfg);
	if (ver >= 4) {
		a = arr(o, 4);
		return a == NULL || config_map(&a[0], &h->cfg) != 0 ||
		               u8(&a[1], &h->config_set) != 0 ||
		               h->config_set > 1 || u64(&a[2], &h->applied) ||
		               u64(&a[3], &h->digest)
		           ? -1
		           : 0;
	}
	h->config_set = 1;
	h->applied = h->digest = 0;
	return config_from(o, &h->cfg);
}

static int config_from(const msgpack_object *o, struct fsm_config *c)
{
	const msgpack_object *a = arr(o, 10);

	if (a == NULL || u32(&a[0], &c->max_payload) ||
	    u32(&a[1], &c->max_name) || u32(&a[2], &c->max_queues) ||
	    u32(&a[3], &c->max_consumers) ||
	    u64(&a[4], &c->default_ack_timeout) ||
	    u64(&a[5], &c->default_max_length) ||
	    u64(&a[6], &c->default_max_bytes) ||
	    u64(&a[7], &c->default_dedup_window) ||
	    u32(&a[8], &c->max_dedup_entries) || u32(&a[9], &c->max_get))
		return -1;
	return 0;
}

/* The length of the msgpack body when `buf` ends with a trailer whose
 * checksum matches; otherwise `len` unchanged (versions 1 and 2 have no
 * trailer; a version 3 body without a good one is refused below). */
static size_t checked_len(const unsigned char *buf, size_t len)
{
	size_t body = len - SNAP_TRAILER_LEN;

	if (len < SNAP_TRAILER_LEN ||
	    memcmp(buf + body, SNAP_TRAILER, 8) != 0 ||
	    fsm_load_le64(buf + body + 8) != fsm_checksum(buf, body))
		return len;
	return body;
}

/* Version 3 and later must have had a good trailer, earlier ones none. */
static bool trailer_fits_version(const msgpack_object *root, bool trailer)
{
	const msgpack_object *v;

	if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size < 2)
		return false;
	v = &root->via.array.ptr[1];
	if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return false;
	return (v->via.u64 >= 3) == trailer;
}

/* The configuration a state is rebuilt under: the stored one with every
 * limit that restore checks raised to its hard bound. Lowering a limit
 * never touches existing state, so a valid state may exceed the limits
 * in force (more queues than max_queues, longer names than max_name, more
 * dedup entries than max_dedup_entries, ...). */
static void restore_config(struct fsm_config *c)
{
	c->max_name = 65535;
	c->max_queues = UINT32_MAX;
	c->max_consumers = UINT32_MAX;
	c->max_dedup_entries = UINT32_MAX;
	c->max_session_consumers = UINT32_MAX;
	c->max_headers = 1024 - FSM_DLQ_HEADERS;
	c->max_memory = UINT64_MAX;
}

int fsm_restore(struct fsm *f, const void *buf, size_t len)
{
	msgpack_unpacked up;
	size_t off = 0, body;
	struct snap_head head;
	struct fsm_config relaxed;
	struct fsm *nf = NULL, tmp;
	struct fsm_check_ent *ring;
	uint32_t ver;
	int rc = FSM_EMALFORMED;

	msgpack_unpacked_init(&up);
	if (buf == NULL)
		goto out;
	body = checked_len(buf, len);
	if (skim(buf, body) != 0 ||
	    msgpack_unpack_next(&up, buf, body, &off) !=
	        MSGPACK_UNPACK_SUCCESS ||
	    off != body || !trailer_fits_version(&up.data, body != len))
		goto out;
	if (up.data.type != MSGPACK_OBJECT_ARRAY ||
	    up.data.via.array.size != 9 ||
	    u32(&up.data.via.array.ptr[1], &ver) != 0 ||
	    head_from(&up.data.via.array.ptr[2], ver, &head) != 0 ||
	    !fsm_config_valid(&head.cfg))
		goto out;
	relaxed = head.cfg;
	restore_config(&relaxed);
	nf = fsm_new(&relaxed);
	if (nf == NULL) {
		rc = FSM_ENOMEM;
		goto out;
	}
	rc = restore_into(nf, &up.data);
	if (rc != 0)
		goto out;
	nf->cfg = head.cfg;
	nf->config_set = head.config_set;
	nf->applied = head.applied;
	nf->digest = head.digest;
	/* Swap the contents: nothing points into struct fsm itself. What is
	 * node-local stays: the divergence and failure flags, the fault
	 * injector, and the CHECK ring, emptied (its digests describe a
	 * history this state may not share). The configuration version
	 * moves, so that a node polling it sees the restored values. */
	tmp = *f;
	*f = *nf;
	*nf = tmp;
	ring = f->ring;
	f->ring = nf->ring;
	nf->ring = ring;
	f->ring_n = f->ring_next = 0;
	f->config_version = nf->config_version + 1;
	f->diverged = nf->diverged;
	f->failed = nf->failed;
	f->fail_at = nf->fail_at;
	f->fail_hits = nf->fail_hits;
out:
	fsm_free(nf);
	msgpack_unpacked_destroy(&up);
	return rc;
}
