/* fsm/hash: the counting allocator, an open-addressing pointer table and a
 * growing pointer array used by every other fsm/ source. */
#include <stdlib.h>
#include <string.h>

#include "fsm/fsm_int.h"

/* The fault injector: whether this allocation must fail. */
static int inject_failure(struct fsm *f)
{
	if (f->fail_at == 0)
		return 0;
	if (f->fail_at == 1) {
		f->fail_hits++;
		return 1;
	}
	f->fail_at--;
	return 0;
}

void fsm_test_fail_alloc(struct fsm *f, uint64_t after)
{
	f->fail_at = after;
}

void fsm_alloc_failed(struct fsm *f)
{
	f->failed = 1;
}

/* Every allocation of the state goes through here, so a failure anywhere
 * (including those that apply swallows, such as fsm_mark_dirty's) marks
 * the replica failed: it may now differ from the others. */
void *fsm_mem_alloc(struct fsm *f, size_t size)
{
	void *p = inject_failure(f) ? NULL : malloc(size ? size : 1);

	if (p != NULL)
		f->mem += size + FSM_MALLOC_OVERHEAD;
	else
		f->failed = 1;
	return p;
}

void *fsm_tmp_alloc(struct fsm *f, size_t size)
{
	void *p = inject_failure(f) ? NULL : malloc(size ? size : 1);

	if (p == NULL)
		f->failed = 1;
	return p;
}

void *fsm_mem_calloc(struct fsm *f, size_t size)
{
	void *p = fsm_mem_alloc(f, size);

	if (p != NULL)
		memset(p, 0, size);
	return p;
}

void fsm_mem_free(struct fsm *f, void *p, size_t size)
{
	if (p == NULL)
		return;
	f->mem -= size + FSM_MALLOC_OVERHEAD;
	free(p);
}

void *fsm_mem_shrink(struct fsm *f, void *p, size_t old, size_t size)
{
	void *n = realloc(p, size);

	f->mem -= old - size;
	return n != NULL ? n : p;
}

/* FNV-1a, then a final mix; the seed is fixed so that nothing depends on the
 * process. Iteration order of the tables never reaches state or snapshots
 * anyway: every walk that matters sorts first. */
uint64_t fsm_hash_bytes(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return fsm_hash_u64(h);
}

uint64_t fsm_load_le64(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t lane(uint64_t h, uint64_t w)
{
	h ^= w * 0x9e3779b97f4a7c15ull;
	h = h << 31 | h >> 33;
	return h * 0xc2b2ae3d27d4eb4full;
}

/* Four independent multiply-rotate lanes over little-endian 64-bit words,
 * so the CPU overlaps them (several GB/s); the tail goes byte by byte. Not
 * cryptographic: it detects bit rot and truncation, not an adversary. */
uint64_t fsm_checksum(const void *buf, size_t n)
{
	const unsigned char *p = buf;
	uint64_t h[4] = {1, 2, 3, 4}, r;
	size_t i = 0;

	for (; i + 32 <= n; i += 32) {
		h[0] = lane(h[0], fsm_load_le64(p + i));
		h[1] = lane(h[1], fsm_load_le64(p + i + 8));
		h[2] = lane(h[2], fsm_load_le64(p + i + 16));
		h[3] = lane(h[3], fsm_load_le64(p + i + 24));
	}
	r = fsm_hash_u64(h[0]) ^ fsm_hash_u64(h[1] + 1) ^
	    fsm_hash_u64(h[2] + 2) ^ fsm_hash_u64(h[3] + 3);
	for (; i < n; i++)
		r = lane(r, p[i]);
	return fsm_hash_u64(r ^ (uint64_t)n);
}

/* For a fixed digest, distinct values give distinct results (both steps
 * are bijections), and the order of the values matters. */
uint64_t fsm_digest_mix(uint64_t d, uint64_t v)
{
	return fsm_hash_u64((d * 0x9e3779b97f4a7c15ull) ^
	                    (v + 0x632be59bd9b4e019ull));
}

uint64_t fsm_hash_u64(uint64_t v)
{
	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdull;
	v ^= v >> 33;
	v *= 0xc4ceb9fe1a85ec53ull;
	v ^= v >> 33;
	return v;
}

void fsm_htab_init(struct fsm_htab *t, uint64_t (*hash)(const void *elem))
{
	t->slots = NULL;
	t->cap = 0;
	t->count = 0;
	t->hash = hash;
}

void fsm_htab_free(struct fsm *f, struct fsm_htab *t)
{
	fsm_mem_free(f, t->slots, (size_t)t->cap * sizeof(void *));
	t->slots = NULL;
	t->cap = 0;
	t->count = 0;
}

/* Capacities grow by half, not double, to keep big tables dense; the home
 * slot is the high half of the hash scaled to the capacity. */
static uint32_t home(uint64_t h, uint32_t cap)
{
	return (uint32_t)(((h >> 32) * cap) >> 32);
}

static uint32_t next(uint32_t i, uint32_t cap)
{
	return i + 1 == cap ? 0 : i + 1;
}

static void htab_put(void **slots, uint32_t cap, void *e, uint64_t h)
{
	uint32_t i = home(h, cap);

	while (slots[i] != NULL)
		i = next(i, cap);
	slots[i] = e;
}

static int htab_resize(struct fsm *f, struct fsm_htab *t, uint32_t cap)
{
	void **slots = fsm_mem_calloc(f, (size_t)cap * sizeof(void *));
	uint32_t i;

	if (slots == NULL)
		return FSM_ENOMEM;
	for (i = 0; i < t->cap; i++)
		if (t->slots[i] != NULL)
			htab_put(slots, cap, t->slots[i], t->hash(t->slots[i]));
	fsm_mem_free(f, t->slots, (size_t)t->cap * sizeof(void *));
	t->slots = slots;
	t->cap = cap;
	return 0;
}

/* The load factor stays at or below 3/4. */
int fsm_htab_reserve(struct fsm *f, struct fsm_htab *t, uint32_t extra)
{
	uint64_t need = (uint64_t)t->count + extra;
	uint64_t cap = t->cap ? t->cap : 8;

	while (need * 4 > cap * 3)
		cap += cap / 2;
	if (cap > (1ull << 31))
		return FSM_ENOMEM;
	if (cap == t->cap)
		return 0;
	return htab_resize(f, t, (uint32_t)cap);
}

void fsm_htab_insert(struct fsm_htab *t, void *elem)
{
	htab_put(t->slots, t->cap, elem, t->hash(elem));
	t->count++;
}

void *fsm_htab_find(const struct fsm_htab *t, uint64_t h,
                    int (*match)(const void *elem, const void *key),
                    const void *key)
{
	uint32_t i;

	if (t->cap == 0)
		return NULL;
	i = home(h, t->cap);
	while (t->slots[i] != NULL) {
		if (match(t->slots[i], key))
			return t->slots[i];
		i = next(i, t->cap);
	}
	return NULL;
}

/* Linear probing deletion by shifting later members of the cluster back. */
void fsm_htab_remove(struct fsm *f, struct fsm_htab *t, void *elem)
{
	uint32_t cap = t->cap, i, j;

	if (cap == 0)
		return;
	i = home(t->hash(elem), cap);
	while (t->slots[i] != elem) {
		if (t->slots[i] == NULL)
			return;
		i = next(i, cap);
	}
	t->slots[i] = NULL;
	t->count--;
	j = i;
	for (;;) {
		uint32_t hj;

		j = next(j, cap);
		if (t->slots[j] == NULL)
			break;
		hj = home(t->hash(t->slots[j]), cap);
		/* Move slots[j] to the hole i unless its home lies
		 * cyclically in (i, j]. */
		if (i <= j ? (hj > i && hj <= j) : (hj > i || hj <= j))
			continue;
		t->slots[i] = t->slots[j];
		t->slots[j] = NULL;
		i = j;
	}
	if (t->cap > 64 && (uint64_t)t->count * 8 < t->cap)
		(void)htab_resize(f, t, t->cap / 2);
}

int fsm_vec_reserve(struct fsm *f, struct fsm_vec *v, uint32_t extra)
{
	uint64_t need = (uint64_t)v->n + extra;
	uint32_t cap = v->cap ? v->cap : 4;
	void **nv;

	if (need <= v->cap)
		return 0;
	while (cap < need) {
		if (cap >= (1u << 30))
			return FSM_ENOMEM;
		cap *= 2;
	}
	nv = fsm_mem_alloc(f, (size_t)cap * sizeof(void *));
	if (nv == NULL)
		return FSM_ENOMEM;
	if (v->n)
		memcpy(nv, v->v, (size_t)v->n * sizeof(void *));
	fsm_mem_free(f, v->v, (size_t)v->cap * sizeof(void *));
	v->v = nv;
	v->cap = cap;
	return 0;
}

int fsm_vec_push(struct fsm *f, struct fsm_vec *v, void *p)
{
	if (fsm_vec_reserve(f, v, 1) != 0)
		return FSM_ENOMEM;
	v->v[v->n++] = p;
	return 0;
}

void fsm_vec_free(struct fsm *f, struct fsm_vec *v)
{
	fsm_mem_free(f, v->v, (size_t)v->cap * sizeof(void *));
	v->v = NULL;
	v->n = v->cap = 0;
}

int fsm_name_cmp(const char *a, uint32_t alen, const char *b, uint32_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}
