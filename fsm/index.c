/* fsm/index: the per-queue seq index (chunked direct array) and dedup index
 * (open addressing over hash and seq). */
#include <string.h>

#include "fsm/fsm_int.h"

/* ---- Seq index. Seqs of a queue are dense and grow at the top, so a slot
 * is found by arithmetic, neighbours share cache lines, and a queue costs
 * 8 bytes per seq of the chunks that still hold something. The directory
 * costs 8 bytes per chunk between the oldest live chunk and the top. */

#define CHUNK_SIZE sizeof(struct fsm_seq_chunk)

static int dir_resize(struct fsm *f, struct fsm_seqidx *x, uint32_t cap)
{
	struct fsm_seq_chunk **d = fsm_mem_alloc(f, (size_t)cap * sizeof(*d));

	if (d == NULL)
		return FSM_ENOMEM;
	if (x->n)
		memcpy(d, x->dir + x->off, (size_t)x->n * sizeof(*d));
	fsm_mem_free(f, x->dir, (size_t)x->cap * sizeof(*d));
	x->dir = d;
	x->off = 0;
	x->cap = cap;
	return 0;
}

void fsm_seq_free(struct fsm *f, struct fsm_seqidx *x)
{
	uint32_t i;

	for (i = 0; i < x->n; i++)
		fsm_mem_free(f, x->dir[x->off + i], CHUNK_SIZE);
	fsm_mem_free(f, x->dir, (size_t)x->cap * sizeof(*x->dir));
	memset(x, 0, sizeof(*x));
}

/* Drops empty chunks at the low end (never the top one). */
static void trim_low(struct fsm *f, struct fsm_seqidx *x)
{
	while (x->n > 1 && x->dir[x->off] == NULL) {
		x->off++;
		x->n--;
		x->lo++;
	}
	if (x->cap > 64 && x->n < x->cap / 8)
		(void)dir_resize(f, x, x->cap / 2);
}

int fsm_seq_reserve(struct fsm *f, struct fsm_seqidx *x, uint64_t seq)
{
	uint64_t c = seq >> FSM_SEQ_CHUNK_BITS, need;
	struct fsm_seq_chunk *ch, *top;

	if (x->n > 0 && c <= x->lo + x->n - 1) {
		/* Only the top chunk may receive seqs. */
		return c == x->lo + x->n - 1 ? 0 : FSM_EINVAL;
	}
	need = x->n == 0 ? 1 : c - x->lo + 1;
	if (need > (1u << 30))
		return FSM_ENOMEM;
	if (x->off + need > x->cap) {
		uint32_t cap = x->cap ? x->cap : 4;

		while (cap < 2 * need)
			cap *= 2;
		if (cap == x->cap) {
			/* Room enough once compacted. */
			memmove(x->dir, x->dir + x->off,
			        (size_t)x->n * sizeof(*x->dir));
			x->off = 0;
		} else if (dir_resize(f, x, cap) != 0) {
			return FSM_ENOMEM;
		}
	}
	ch = fsm_mem_alloc(f, CHUNK_SIZE);
	if (ch == NULL)
		return FSM_ENOMEM;
	memset(ch, 0, CHUNK_SIZE);
	if (x->n == 0) {
		x->lo = c;
		x->dir[x->off] = ch;
		x->n = 1;
		return 0;
	}
	/* The old top may be empty: it stops being the top. */
	top = x->dir[x->off + x->n - 1];
	if (top != NULL && top->live == 0) {
		fsm_mem_free(f, top, CHUNK_SIZE);
		x->dir[x->off + x->n - 1] = NULL;
	}
	while (x->n < need)
		x->dir[x->off + x->n++] = NULL;
	x->dir[x->off + x->n - 1] = ch;
	trim_low(f, x);
	return 0;
}

void fsm_seq_put(struct fsm_seqidx *x, uint64_t seq, uintptr_t v)
{
	struct fsm_seq_chunk *ch =
	    x->dir[x->off + ((seq >> FSM_SEQ_CHUNK_BITS) - x->lo)];

	ch->slot[seq & (FSM_SEQ_CHUNK - 1)] = v;
	ch->live++;
	x->count++;
}

void fsm_seq_clear(struct fsm *f, struct fsm_seqidx *x, uint64_t seq)
{
	uint32_t i = x->off + (uint32_t)((seq >> FSM_SEQ_CHUNK_BITS) - x->lo);
	struct fsm_seq_chunk *ch = x->dir[i];

	ch->slot[seq & (FSM_SEQ_CHUNK - 1)] = 0;
	x->count--;
	if (--ch->live > 0 || i == x->off + x->n - 1)
		return;
	fsm_mem_free(f, ch, CHUNK_SIZE);
	x->dir[i] = NULL;
	if (i == x->off)
		trim_low(f, x);
}

uintptr_t fsm_seq_next(const struct fsm_seqidx *x, uint64_t *seq)
{
	uint64_t s = *seq, c;

	if (x->n == 0)
		return 0;
	if ((s >> FSM_SEQ_CHUNK_BITS) < x->lo)
		s = x->lo << FSM_SEQ_CHUNK_BITS;
	for (c = (s >> FSM_SEQ_CHUNK_BITS) - x->lo; c < x->n; c++) {
		const struct fsm_seq_chunk *ch = x->dir[x->off + c];
		uint32_t i;

		if (ch == NULL || ch->live == 0) {
			s = (x->lo + c + 1) << FSM_SEQ_CHUNK_BITS;
			continue;
		}
		for (i = s & (FSM_SEQ_CHUNK - 1); i < FSM_SEQ_CHUNK; i++)
			if (ch->slot[i] != 0) {
				*seq = ((x->lo + c) << FSM_SEQ_CHUNK_BITS) | i;
				return ch->slot[i];
			}
		s = (x->lo + c + 1) << FSM_SEQ_CHUNK_BITS;
	}
	return 0;
}

int fsm_seq_check(const struct fsm_seqidx *x)
{
	uint64_t total = 0;
	uint32_t c, i;

	if (x->off + x->n > x->cap && x->n > 0)
		return -1;
	if (x->n > 0 &&
	    (x->dir[x->off] == NULL || x->dir[x->off + x->n - 1] == NULL))
		return -1;
	for (c = 0; c < x->n; c++) {
		const struct fsm_seq_chunk *ch = x->dir[x->off + c];
		uint32_t live = 0;

		if (ch == NULL)
			continue;
		for (i = 0; i < FSM_SEQ_CHUNK; i++)
			live += ch->slot[i] != 0;
		/* Only the top chunk may stay allocated while empty. */
		if (live != ch->live || (live == 0 && c != x->n - 1))
			return -1;
		total += live;
	}
	return total == x->count ? 0 : -1;
}

/* ---- Dedup index. A slot packs the hash (high half, bit 0 forced) and the
 * low half of the seq, so probing, growing and removing never touch the
 * messages: only a slot whose hash matches is resolved through the seq
 * index and compared by id. */

static uint32_t home(uint32_t h, uint32_t cap)
{
	return (uint32_t)(((uint64_t)h * cap) >> 32);
}

static uint32_t next(uint32_t i, uint32_t cap)
{
	return i + 1 == cap ? 0 : i + 1;
}

static void dd_put(uint64_t *slots, uint32_t cap, uint64_t v)
{
	uint32_t i = home((uint32_t)(v >> 32), cap);

	while (slots[i] != 0)
		i = next(i, cap);
	slots[i] = v;
}

static int dd_resize(struct fsm *f, struct fsm_ddtab *t, uint32_t cap)
{
	uint64_t *slots = fsm_mem_calloc(f, (size_t)cap * 8);
	uint32_t i;

	if (slots == NULL)
		return FSM_ENOMEM;
	for (i = 0; i < t->cap; i++)
		if (t->slots[i] != 0)
			dd_put(slots, cap, t->slots[i]);
	fsm_mem_free(f, t->slots, (size_t)t->cap * 8);
	t->slots = slots;
	t->cap = cap;
	return 0;
}

void fsm_dd_free(struct fsm *f, struct fsm_ddtab *t)
{
	fsm_mem_free(f, t->slots, (size_t)t->cap * 8);
	memset(t, 0, sizeof(*t));
}

/* The load factor stays at or below 3/4. Big tables grow by a quarter, so
 * that it never drops below 0.6 (13.3 bytes per entry at worst): the
 * table is most of a queued message's overhead, and rehashing moves only
 * slots, never touching the messages. */
int fsm_dd_reserve(struct fsm *f, struct fsm_ddtab *t, uint32_t extra)
{
	uint64_t need = (uint64_t)t->count + extra;
	uint64_t cap = t->cap ? t->cap : 8;

	while (need * 4 > cap * 3)
		cap += cap >= 4096 ? cap / 4 : cap / 2;
	if (cap > (1ull << 31))
		return FSM_ENOMEM;
	if (cap == t->cap)
		return 0;
	return dd_resize(f, t, (uint32_t)cap);
}

void fsm_dd_insert(struct fsm_ddtab *t, uint32_t h, uint64_t seq)
{
	dd_put(t->slots, t->cap, (uint64_t)h << 32 | (uint32_t)seq);
	t->count++;
}

void fsm_dd_remove(struct fsm *f, struct fsm_ddtab *t, uint32_t h, uint64_t seq)
{
	uint64_t v = (uint64_t)h << 32 | (uint32_t)seq;
	uint32_t cap = t->cap, i, j;

	if (cap == 0)
		return;
	i = home(h, cap);
	while (t->slots[i] != v) {
		if (t->slots[i] == 0)
			return;
		i = next(i, cap);
	}
	t->slots[i] = 0;
	t->count--;
	j = i;
	for (;;) {
		uint32_t hj;

		j = next(j, cap);
		if (t->slots[j] == 0)
			break;
		hj = home((uint32_t)(t->slots[j] >> 32), cap);
		/* Move slots[j] to the hole i unless its home lies
		 * cyclically in (i, j]. */
		if (i <= j ? (hj > i && hj <= j) : (hj > i || hj <= j))
			continue;
		t->slots[i] = t->slots[j];
		t->slots[j] = 0;
		i = j;
	}
	if (t->cap > 64 && (uint64_t)t->count * 8 < t->cap)
		(void)dd_resize(f, t, t->cap / 2);
}

/* The seq in (last_seq - 2^32, last_seq] whose low half is `lo`. */
static uint64_t full_seq(uint64_t last_seq, uint32_t lo)
{
	return last_seq - (uint32_t)((uint32_t)last_seq - lo);
}

uint64_t fsm_dd_find(const struct fsm_ddtab *t, uint32_t h, uint64_t last_seq,
                     int (*match)(const void *ctx, uint64_t seq),
                     const void *ctx)
{
	uint32_t i;

	if (t->count == 0)
		return 0;
	i = home(h, t->cap);
	while (t->slots[i] != 0) {
		if ((uint32_t)(t->slots[i] >> 32) == h) {
			uint64_t seq =
			    full_seq(last_seq, (uint32_t)t->slots[i]);

			if (match(ctx, seq))
				return seq;
		}
		i = next(i, t->cap);
	}
	return 0;
}

int fsm_dd_contains(const struct fsm_ddtab *t, uint32_t h, uint64_t seq)
{
	uint64_t v = (uint64_t)h << 32 | (uint32_t)seq;
	uint32_t i;

	if (t->cap == 0)
		return 0;
	for (i = home(h, t->cap); t->slots[i] != 0; i = next(i, t->cap))
		if (t->slots[i] == v)
			return 1;
	return 0;
}
