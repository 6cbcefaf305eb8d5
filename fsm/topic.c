/* fsm/topic: topics (exchanges), bindings and routing: fanout, direct, and
 * AMQP-style '.'-word patterns. */
#include <stdlib.h>
#include <string.h>

#include "fsm/fsm_int.h"

struct nkey {
	const char *s;
	uint32_t n;
};

uint64_t fsm_topic_hash(const void *e)
{
	const struct fsm_topic *t = e;

	return fsm_hash_bytes(t->name, t->name_len);
}

static int t_match(const void *e, const void *k)
{
	const struct fsm_topic *t = e;
	const struct nkey *key = k;

	return t->name_len == key->n && memcmp(t->name, key->s, key->n) == 0;
}

struct fsm_topic *fsm_topic_find(const struct fsm *f, const char *name,
                                 uint32_t len)
{
	struct nkey k = {name, len};

	return fsm_htab_find(&f->topics, fsm_hash_bytes(name, len), t_match,
	                     &k);
}

void fsm_topic_destroy(struct fsm *f, struct fsm_topic *t)
{
	uint32_t i;

	for (i = 0; i < t->bindings.n; i++) {
		struct fsm_binding *b = t->bindings.v[i];

		fsm_mem_free(f, b, sizeof(*b) + b->key_len);
	}
	fsm_vec_free(f, &t->bindings);
	fsm_htab_remove(f, &f->topics, t);
	fsm_mem_free(f, t, sizeof(*t) + t->name_len);
}

/* Word boundaries of a '.'-separated string: start offsets and lengths.
 * The empty string has no words. */
struct words {
	uint32_t n;
	const char *s[64];
	uint32_t len[64];
	const char **hs;
	uint32_t *hlen;
};

static int split(const char *s, uint32_t n, struct words *w)
{
	uint32_t i, start = 0, k = 0, cnt = n ? 1 : 0;

	for (i = 0; i < n; i++)
		cnt += s[i] == '.';
	w->hs = w->s;
	w->hlen = w->len;
	if (cnt > 64) {
		w->hs = malloc(cnt * sizeof(*w->hs));
		w->hlen = malloc(cnt * sizeof(*w->hlen));
		if (w->hs == NULL || w->hlen == NULL) {
			free(w->hs);
			free(w->hlen);
			return -1;
		}
	}
	w->n = cnt;
	if (n == 0)
		return 0;
	for (i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			w->hs[k] = s + start;
			w->hlen[k] = i - start;
			k++;
			start = i + 1;
		}
	}
	return 0;
}

static void words_free(struct words *w)
{
	if (w->hs != w->s) {
		free(w->hs);
		free(w->hlen);
	}
}

static int word_is(const struct words *w, uint32_t i, char c)
{
	return w->hlen[i] == 1 && w->hs[i][0] == c;
}

/* '#' matches any run of words (including none) and '*' exactly one: the
 * classic wildcard match with one backtracking point, O(words^2) at worst. */
int fsm_topic_match(const char *pat, uint32_t plen, const char *key,
                    uint32_t klen)
{
	struct words p, k;
	uint32_t pi = 0, ki = 0, mark = 0;
	int64_t star = -1;
	int ok;

	if (split(pat, plen, &p) != 0)
		return 0;
	if (split(key, klen, &k) != 0) {
		words_free(&p);
		return 0;
	}
	while (ki < k.n) {
		if (pi < p.n && word_is(&p, pi, '#')) {
			star = pi++;
			mark = ki;
		} else if (pi < p.n &&
		           (word_is(&p, pi, '*') ||
		            (p.hlen[pi] == k.hlen[ki] &&
		             memcmp(p.hs[pi], k.hs[ki], k.hlen[ki]) == 0))) {
			pi++;
			ki++;
		} else if (star >= 0) {
			pi = (uint32_t)star + 1;
			ki = ++mark;
		} else {
			break;
		}
	}
	while (pi < p.n && word_is(&p, pi, '#'))
		pi++;
	ok = ki == k.n && pi == p.n;
	words_free(&p);
	words_free(&k);
	return ok;
}

static int cmp_qname(const void *a, const void *b)
{
	const struct fsm_queue *x = *(struct fsm_queue *const *)a;
	const struct fsm_queue *y = *(struct fsm_queue *const *)b;

	return fsm_name_cmp(x->name, x->name_len, y->name, y->name_len);
}

uint32_t fsm_topic_route(const struct fsm *f, const struct fsm_topic *t,
                         const char *key, uint32_t key_len,
                         struct fsm_queue **out)
{
	uint32_t i, n = 0, k = 0;

	for (i = 0; i < t->bindings.n; i++) {
		const struct fsm_binding *b = t->bindings.v[i];
		int hit;

		if (t->kind == FSM_TOPIC_FANOUT)
			hit = 1;
		else if (t->kind == FSM_TOPIC_DIRECT)
			hit =
			    b->key_len == key_len &&
			    (key_len == 0 || memcmp(b->key, key, key_len) == 0);
		else
			hit = fsm_topic_match(b->key, b->key_len, key, key_len);
		if (hit)
			out[n++] = fsm_queue_by_id(f, b->queue_id);
	}
	qsort(out, n, sizeof(*out), cmp_qname);
	for (i = 0; i < n; i++)
		if (k == 0 || out[k - 1] != out[i])
			out[k++] = out[i];
	return k;
}

void fsm_topic_unbind_queue(struct fsm *f, uint32_t queue_id)
{
	uint32_t i, j, k;

	for (i = 0; i < f->topics.cap; i++) {
		struct fsm_topic *t = f->topics.slots[i];

		if (t == NULL)
			continue;
		for (j = 0, k = 0; j < t->bindings.n; j++) {
			struct fsm_binding *b = t->bindings.v[j];

			if (b->queue_id == queue_id)
				fsm_mem_free(f, b, sizeof(*b) + b->key_len);
			else
				t->bindings.v[k++] = b;
		}
		t->bindings.n = k;
	}
}

static int cmp_tname(const void *a, const void *b)
{
	const struct fsm_topic *x = *(struct fsm_topic *const *)a;
	const struct fsm_topic *y = *(struct fsm_topic *const *)b;

	return fsm_name_cmp(x->name, x->name_len, y->name, y->name_len);
}

struct fsm_topic **fsm_topics_sorted(const struct fsm *f, uint32_t *n)
{
	struct fsm_topic **v = malloc((f->topics.count + 1) * sizeof(*v));
	uint32_t i, k = 0;

	if (v == NULL)
		return NULL;
	for (i = 0; i < f->topics.cap; i++)
		if (f->topics.slots[i] != NULL)
			v[k++] = f->topics.slots[i];
	qsort(v, k, sizeof(*v), cmp_tname);
	*n = k;
	return v;
}

static int topic_declare(struct fsm *f, const struct fsm_cmd *c,
                         struct fsm_result *r)
{
	const char *name = c->u.topic.name;
	uint32_t len = c->u.topic.name_len;
	struct fsm_topic *t;

	if (!fsm_name_ok(f, name, len) || c->u.topic.kind > FSM_TOPIC_TOPIC)
		return FSM_EINVAL;
	t = fsm_topic_find(f, name, len);
	if (t != NULL) {
		if (t->kind != c->u.topic.kind)
			return FSM_EEXISTS;
		r->u.declare.created = 0;
		return FSM_OK;
	}
	if (f->topics.count >= f->cfg.max_queues)
		return FSM_ELIMIT;
	if (fsm_htab_reserve(f, &f->topics, 1) != 0)
		return FSM_ENOMEM;
	t = fsm_mem_calloc(f, sizeof(*t) + len);
	if (t == NULL)
		return FSM_ENOMEM;
	t->name_len = len;
	t->kind = c->u.topic.kind;
	memcpy(t->name, name, len);
	fsm_htab_insert(&f->topics, t);
	r->u.declare.created = 1;
	return FSM_OK;
}

/* Adds a binding (no-op when the same queue and key are bound already). */
int fsm_topic_bind(struct fsm *f, struct fsm_topic *t, uint32_t queue_id,
                   const char *key, uint32_t key_len)
{
	struct fsm_binding *b;
	uint32_t i;

	for (i = 0; i < t->bindings.n; i++) {
		b = t->bindings.v[i];
		if (b->queue_id == queue_id && b->key_len == key_len &&
		    (key_len == 0 || memcmp(b->key, key, key_len) == 0))
			return FSM_OK;
	}
	if (fsm_vec_reserve(f, &t->bindings, 1) != 0)
		return FSM_ENOMEM;
	b = fsm_mem_alloc(f, sizeof(*b) + key_len);
	if (b == NULL)
		return FSM_ENOMEM;
	b->queue_id = queue_id;
	b->key_len = key_len;
	if (key_len)
		memcpy(b->key, key, key_len);
	t->bindings.v[t->bindings.n++] = b;
	return FSM_OK;
}

static int topic_bind(struct fsm *f, const struct fsm_cmd *c, int bind)
{
	struct fsm_topic *t;
	struct fsm_queue *q;
	uint32_t i;

	if (!fsm_name_ok(f, c->u.bind.topic, c->u.bind.topic_len) ||
	    !fsm_name_ok(f, c->u.bind.queue, c->u.bind.queue_len) ||
	    c->u.bind.key_len > f->cfg.max_name)
		return FSM_EINVAL;
	t = fsm_topic_find(f, c->u.bind.topic, c->u.bind.topic_len);
	if (t == NULL)
		return FSM_ENOTOPIC;
	q = fsm_queue_find(f, c->u.bind.queue, c->u.bind.queue_len);
	if (q == NULL)
		return FSM_ENOQUEUE;
	if (bind)
		return fsm_topic_bind(f, t, q->id, c->u.bind.key,
		                      c->u.bind.key_len);
	for (i = 0; i < t->bindings.n; i++) {
		struct fsm_binding *b = t->bindings.v[i];

		if (b->queue_id == q->id && b->key_len == c->u.bind.key_len &&
		    (b->key_len == 0 ||
		     memcmp(b->key, c->u.bind.key, b->key_len) == 0)) {
			fsm_mem_free(f, b, sizeof(*b) + b->key_len);
			memmove(&t->bindings.v[i], &t->bindings.v[i + 1],
			        (t->bindings.n - i - 1) * sizeof(void *));
			t->bindings.n--;
			break;
		}
	}
	return FSM_OK;
}

int fsm_cmd_topic(struct fsm *f, const struct fsm_cmd *c, struct fsm_result *r)
{
	struct fsm_topic *t;

	switch (c->type) {
	case FSM_CMD_TOPIC_DECLARE:
		return topic_declare(f, c, r);
	case FSM_CMD_TOPIC_DELETE:
		if (!fsm_name_ok(f, c->u.topic.name, c->u.topic.name_len))
			return FSM_EINVAL;
		t = fsm_topic_find(f, c->u.topic.name, c->u.topic.name_len);
		if (t == NULL)
			return FSM_ENOTOPIC;
		fsm_topic_destroy(f, t);
		return FSM_OK;
	case FSM_CMD_BIND:
		return topic_bind(f, c, 1);
	default:
		return topic_bind(f, c, 0);
	}
}

void fsm_topic_foreach(const struct fsm *f,
                       void (*cb)(void *data, const char *name, uint32_t len,
                                  uint8_t kind,
                                  const struct fsm_binding_view *b,
                                  uint32_t n_bindings),
                       void *data)
{
	struct fsm_topic **v;
	uint32_t n = 0, i, j;

	v = fsm_topics_sorted(f, &n);
	if (v == NULL)
		return;
	for (i = 0; i < n; i++) {
		struct fsm_topic *t = v[i];
		struct fsm_binding_view *bv;

		bv = malloc((t->bindings.n + 1) * sizeof(*bv));
		if (bv == NULL)
			break;
		for (j = 0; j < t->bindings.n; j++) {
			const struct fsm_binding *b = t->bindings.v[j];
			const struct fsm_queue *q =
			    fsm_queue_by_id(f, b->queue_id);

			bv[j].queue = q->name;
			bv[j].queue_len = q->name_len;
			bv[j].key = b->key;
			bv[j].key_len = b->key_len;
		}
		cb(data, t->name, t->name_len, t->kind, bv, t->bindings.n);
		free(bv);
	}
	free(v);
}
