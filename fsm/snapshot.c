/* fsm/snapshot: the whole state as versioned msgpack, and its restore into
 * a fresh object that replaces the old one only when everything checked. */
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "fsm/fsm_int.h"

#define SNAP_MAGIC   "raftmq-fsm"
#define SNAP_VERSION 1

static void pack_bin(msgpack_packer *pk, const char *s, uint32_t n)
{
	msgpack_pack_bin(pk, n);
	msgpack_pack_bin_body(pk, s, n);
}

static int cmp_msg(const void *a, const void *b)
{
	const struct fsm_msg *x = *(struct fsm_msg *const *)a;
	const struct fsm_msg *y = *(struct fsm_msg *const *)b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int pack_queue(msgpack_packer *pk, const struct fsm_queue *q)
{
	const struct fsm_queue_opts *o = &q->opts;
	struct fsm_msg **v;
	uint32_t i, n = 0;
	const struct fsm_dedup *d;

	v = malloc(((size_t)q->msgs.count + 1) * sizeof(*v));
	if (v == NULL)
		return FSM_ENOMEM;
	for (i = 0; i < q->msgs.cap; i++)
		if (q->msgs.slots[i] != NULL)
			v[n++] = q->msgs.slots[i];
	qsort(v, n, sizeof(*v), cmp_msg);
	msgpack_pack_array(pk, 10);
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
	msgpack_pack_array(pk, n);
	for (i = 0; i < n; i++) {
		const struct fsm_msg *m = v[i];
		const struct fsm_aux *a = m->aux;

		msgpack_pack_array(pk, 11);
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
	}
	msgpack_pack_array(pk, q->dedup.count);
	for (d = q->dd_head; d != NULL; d = d->next) {
		msgpack_pack_array(pk, 3);
		pack_bin(pk, d->id, d->id_len);
		msgpack_pack_uint64(pk, d->time);
		msgpack_pack_uint64(pk, d->seq);
	}
	free(v);
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
	uint32_t nq = 0, nt = 0, nc = 0, i, j;
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
	msgpack_pack_array(&pk, 10);
	msgpack_pack_uint32(&pk, c->max_payload);
	msgpack_pack_uint32(&pk, c->max_name);
	msgpack_pack_uint32(&pk, c->max_queues);
	msgpack_pack_uint32(&pk, c->max_consumers);
	msgpack_pack_uint64(&pk, c->default_ack_timeout);
	msgpack_pack_uint64(&pk, c->default_max_length);
	msgpack_pack_uint64(&pk, c->default_max_bytes);
	msgpack_pack_uint64(&pk, c->default_dedup_window);
	msgpack_pack_uint32(&pk, c->max_dedup_entries);
	msgpack_pack_uint32(&pk, c->max_get);
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

static int restore_queue(struct fsm *f, const msgpack_object *o)
{
	const msgpack_object *a = arr(o, 10), *oa, *ca;
	struct fsm_queue_opts op;
	const char *name, *dlq;
	uint32_t name_len, dlq_len, id;
	struct fsm_queue *q;

	memset(&op, 0, sizeof(op));
	T(a != NULL && u32(&a[0], &id) == 0 &&
	  bin(&a[1], &name, &name_len) == 0);
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
	T(f->queues.count < f->cfg.max_queues);
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

static int restore_msgs(struct fsm *f, struct fsm_queue *q,
                        const msgpack_object *o)
{
	const msgpack_object *a = arr(o, 10), *mv, *dv;
	uint32_t n, i, nd;
	uint64_t prev = 0, prev_time = 0;

	T(a != NULL && (mv = arr_any(&a[8], &n)) != NULL);
	for (i = 0; i < n; i++) {
		const msgpack_object *e = arr(&mv[i], 11);
		uint64_t seq, ts, due, exp, cons, sess;
		uint8_t st;
		uint32_t dc, idl, pl, pll, nh;
		const char *id, *props, *payload;
		struct fsm_msg *m;
		char *pp;

		T(e != NULL && u64(&e[0], &seq) == 0 && u64(&e[1], &ts) == 0 &&
		  u8(&e[2], &st) == 0 && u32(&e[3], &dc) == 0 &&
		  u64(&e[4], &due) == 0 && u64(&e[5], &exp) == 0 &&
		  u64(&e[6], &cons) == 0 && u64(&e[7], &sess) == 0 &&
		  bin(&e[8], &id, &idl) == 0 && bin(&e[9], &props, &pl) == 0 &&
		  bin(&e[10], &payload, &pll) == 0);
		T(seq > prev && seq <= q->last_seq && st <= FSM_MS_FLIGHT &&
		  idl <= 65535 && fsm_props_valid(props, pl, &nh) == 0);
		T(st == FSM_MS_READY ? due == 0 && cons == 0 && sess == 0
		                     : due != 0);
		T(st != FSM_MS_FLIGHT || (dc > 0 && seq < q->cursor));
		T(st == FSM_MS_FLIGHT || (cons == 0 && sess == 0));
		prev = seq;
		if (fsm_htab_reserve(f, &q->msgs, 1) != 0 ||
		    fsm_timer_reserve(f, 1) != 0)
			return FSM_ENOMEM;
		T(pll >> FSM_MAX_PAYLOAD_BITS == 0 && pl <= UINT32_MAX / 2);
		m = fsm_msg_alloc(f, id, idl, pl, payload, pll, &pp);
		if (m == NULL)
			return FSM_ENOMEM;
		if (pl)
			memcpy(pp, props, pl);
		m->seq = seq;
		m->timestamp = ts;
		m->state = st;
		m->delivery_count = dc;
		if (due != 0 || exp != 0) {
			if (fsm_aux_get(f, q, m) != 0) {
				fsm_mem_free(f, m, fsm_msg_size(m));
				return FSM_ENOMEM;
			}
			m->aux->due = due;
			m->aux->expires = exp;
		}
		if (st == FSM_MS_FLIGHT) {
			struct fsm_owner *ow;

			if (cons != 0) {
				struct fsm_consumer *c =
				    fsm_consumer_find(f, cons);

				ow = c != NULL && c->q == q &&
				             c->owner.session == sess
				         ? &c->owner
				         : NULL;
			} else {
				struct fsm_session *s =
				    fsm_session_get(f, sess, 1);

				ow = s != NULL ? &s->gets : NULL;
			}
			if (ow == NULL || fsm_owner_add(f, ow, m->aux) != 0) {
				fsm_msg_discard(f, m);
				return ow == NULL ? FSM_EMALFORMED : FSM_ENOMEM;
			}
		}
		fsm_queue_insert_raw(f, q, m);
	}
	T((dv = arr_any(&a[9], &nd)) != NULL);
	T(nd <= f->cfg.max_dedup_entries);
	if (fsm_htab_reserve(f, &q->dedup, nd) != 0)
		return FSM_ENOMEM;
	for (i = 0; i < nd; i++) {
		const msgpack_object *e = arr(&dv[i], 3);
		const char *id;
		uint32_t idl;
		uint64_t t, seq;
		struct fsm_dedup *d;

		T(e != NULL && bin(&e[0], &id, &idl) == 0 &&
		  u64(&e[1], &t) == 0 && u64(&e[2], &seq) == 0);
		T(idl > 0 && idl <= 65535 && t >= prev_time && t <= f->now &&
		  seq > 0 && seq <= q->last_seq);
		T(!fsm_dedup_has(q, id, idl));
		prev_time = t;
		d = fsm_mem_alloc(f, sizeof(*d) + idl);
		if (d == NULL)
			return FSM_ENOMEM;
		d->time = t;
		d->seq = seq;
		d->id_len = (uint16_t)idl;
		d->pad = 0;
		d->hash = (uint32_t)(fsm_dedup_key(id, idl) >> 32);
		memcpy(d->id, id, idl);
		fsm_dedup_add_raw(f, q, d);
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
	T(u32(&a[1], &ver) == 0 && ver == SNAP_VERSION);
	T(u64(&a[3], &f->now) == 0 && u32(&a[4], &f->next_queue_id) == 0 &&
	  u64(&a[5], &f->next_consumer_id) == 0);
	T((qv = arr_any(&a[6], &nq)) != NULL);
	T((tv = arr_any(&a[7], &nt)) != NULL);
	T((cv = arr_any(&a[8], &nc)) != NULL);
	for (i = 0; i < nq; i++)
		if ((rc = restore_queue(f, &qv[i])) != 0)
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
		T(f->consumers.count < f->cfg.max_consumers);
		T(q->consumers.n == 0 ||
		  ((struct fsm_consumer *)q->consumers.v[q->consumers.n - 1])
		          ->id < id);
		T(!q->opts.exclusive || q->consumers.n == 0);
		if (fsm_consumer_create(f, id, q, sess, pf, &c) != 0)
			return FSM_ENOMEM;
	}
	for (i = 0; i < nq; i++) {
		const msgpack_object *qa = arr(&qv[i], 10);
		uint32_t id;
		struct fsm_queue *q;

		T(qa != NULL && u32(&qa[0], &id) == 0);
		q = fsm_queue_by_id(f, id);
		T(q != NULL);
		/* had_consumer was restored; consumer_create set it too. */
		T(q->consumers.n == 0 || q->had_consumer);
		T(q->rr == 0 || q->rr < q->consumers.n);
		if ((rc = restore_msgs(f, q, &qv[i])) != 0)
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

int fsm_restore(struct fsm *f, const void *buf, size_t len)
{
	msgpack_unpacked up;
	size_t off = 0;
	struct fsm_config cfg;
	struct fsm *nf = NULL, tmp;
	int rc = FSM_EMALFORMED;

	msgpack_unpacked_init(&up);
	if (buf == NULL || skim(buf, len) != 0 ||
	    msgpack_unpack_next(&up, buf, len, &off) !=
	        MSGPACK_UNPACK_SUCCESS ||
	    off != len)
		goto out;
	if (up.data.type != MSGPACK_OBJECT_ARRAY ||
	    up.data.via.array.size != 9 ||
	    config_from(&up.data.via.array.ptr[2], &cfg) != 0)
		goto out;
	nf = fsm_new(&cfg);
	if (nf == NULL)
		goto out;
	rc = restore_into(nf, &up.data);
	if (rc != 0)
		goto out;
	/* Swap the contents: nothing points into struct fsm itself. */
	tmp = *f;
	*f = *nf;
	*nf = tmp;
out:
	fsm_free(nf);
	msgpack_unpacked_destroy(&up);
	return rc;
}
