/* tests/unit/test_fsm_index: the per-queue seq index (chunked direct array)
 * and the dedup table of fsm/index.c, against simple references. */
#include "test_fsm_util.h"
#include "fsm/fsm_int.h"

/* The seq index against a plain array: growing seqs with jumps (several
 * chunks at once), random clears, ordered walks; memory back to zero. */
static void test_seqidx_random(void **state)
{
	struct fsm *f = fsm_new(NULL);
	uint64_t base = fsm_memory(f), rng = 7, top = 0, live = 0, i, s;
	struct fsm_seqidx x;
	static uint8_t has[200000];
	uintptr_t v;

	(void)state;
	memset(&x, 0, sizeof(x));
	memset(has, 0, sizeof(has));
	for (i = 0; i < 100000; i++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		if ((rng >> 60) < 9 && top + 1000 < 200000) {
			/* Insert, mostly dense, sometimes far ahead. */
			top +=
			    (rng >> 50) % 40 == 0 ? 1 + (rng >> 20) % 900 : 1;
			assert_int_equal(fsm_seq_reserve(f, &x, top), 0);
			assert_int_equal(fsm_seq_get(&x, top), 0);
			fsm_seq_put(&x, top, (uintptr_t)top << 1);
			has[top] = 1;
			live++;
		} else if (live > 0) {
			/* Clear the oldest or a random live seq. */
			s = (rng >> 30) % 2 ? 0 : (rng >> 20) % (top + 1);
			v = fsm_seq_next(&x, &s);
			if (v == 0) {
				s = 0;
				v = fsm_seq_next(&x, &s);
			}
			assert_true(v != 0 && has[s]);
			assert_int_equal(v, (uintptr_t)s << 1);
			fsm_seq_clear(f, &x, s);
			has[s] = 0;
			live--;
		}
		assert_int_equal(x.count, live);
		if (i % 997 == 0) {
			uint64_t n = 0, prev = 0;

			assert_int_equal(fsm_seq_check(&x), 0);
			for (s = 0; (v = fsm_seq_next(&x, &s)) != 0; s++) {
				assert_true(has[s] && s > prev);
				assert_int_equal(v, (uintptr_t)s << 1);
				prev = s;
				n++;
			}
			assert_int_equal(n, live);
		}
	}
	for (s = 1; s <= top; s++)
		assert_int_equal(fsm_seq_get(&x, s),
		                 has[s] ? (uintptr_t)s << 1 : 0);
	/* Reserving below the top is refused. */
	if (top > FSM_SEQ_CHUNK)
		assert_true(fsm_seq_reserve(f, &x, top - FSM_SEQ_CHUNK) != 0);
	fsm_seq_free(f, &x);
	assert_int_equal(fsm_memory(f), base);
	fsm_free(f);
}

/* The dedup table with colliding hashes and seqs across 2^32 boundaries:
 * the low halves stored give back the full seqs below last_seq. */
struct ddset {
	uint64_t seq[512];
	uint32_t h[512];
	uint8_t live[512];
};

static int dd_is(const void *ctx, uint64_t seq)
{
	return *(const uint64_t *)ctx == seq;
}

static void test_ddtab(void **state)
{
	struct fsm *f = fsm_new(NULL);
	uint64_t base = fsm_memory(f), rng = 11, last = (5ull << 32) + 100;
	struct fsm_ddtab t;
	static struct ddset d;
	uint32_t i, live = 0;

	(void)state;
	memset(&t, 0, sizeof(t));
	for (i = 0; i < 512; i++) {
		/* Within (last - 2^32, last], around 2^32 multiples. */
		d.seq[i] = last - (i * 0x7fffffull + (i % 3) * 0x10000000ull) %
		                      0xffffffffull;
		d.h[i] = ((i % 13) * 0x9e3779b9u) | 1u;
		d.live[i] = 0;
	}
	for (i = 0; i < 100000; i++) {
		uint32_t k;

		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		k = (uint32_t)(rng >> 33) % 512;
		assert_int_equal(
		    fsm_dd_find(&t, d.h[k], last, dd_is, &d.seq[k]),
		    d.live[k] ? d.seq[k] : 0);
		assert_int_equal(fsm_dd_contains(&t, d.h[k], d.seq[k]),
		                 d.live[k]);
		if (d.live[k]) {
			fsm_dd_remove(f, &t, d.h[k], d.seq[k]);
			live--;
		} else {
			assert_int_equal(fsm_dd_reserve(f, &t, 1), 0);
			fsm_dd_insert(&t, d.h[k], d.seq[k]);
			live++;
		}
		d.live[k] ^= 1;
		assert_int_equal(t.count, live);
		assert_true(t.count * 4 <= t.cap * 3);
	}
	fsm_dd_free(f, &t);
	assert_int_equal(fsm_memory(f), base);
	fsm_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_seqidx_random),
	    cmocka_unit_test(test_ddtab),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
