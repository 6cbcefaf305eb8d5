/* test_fsm_hash: the internal pointer hash table, pointer vector and the
 * counting allocator of fsm/hash.c, against plain arrays. */
#include "test_fsm_util.h"
#include "fsm/fsm_int.h"

struct item {
	uint64_t key;
	int live;
};

/* A weak hash on purpose (97 distinct values): long clusters exercise the
 * deletion. */
static uint64_t weak(uint64_t key)
{
	return (key % 97) * 0x9e3779b97f4a7c15ull;
}

static uint64_t item_hash(const void *e)
{
	return weak(((const struct item *)e)->key);
}

static int item_match(const void *e, const void *k)
{
	return ((const struct item *)e)->key == *(const uint64_t *)k;
}

static void test_htab_random(void **state)
{
	struct fsm *f = fsm_new(NULL);
	uint64_t base = fsm_memory(f), rng = 5;
	struct fsm_htab t;
	static struct item items[3000];
	uint32_t i, live = 0;

	(void)state;
	fsm_htab_init(&t, item_hash);
	for (i = 0; i < 3000; i++)
		items[i].key = i * 7919u;
	for (i = 0; i < 200000; i++) {
		uint32_t k;
		uint64_t key;

		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		k = (uint32_t)(rng >> 33) % 3000;
		key = items[k].key;
		if (items[k].live) {
			assert_ptr_equal(
			    fsm_htab_find(&t, weak(key), item_match, &key),
			    &items[k]);
			fsm_htab_remove(f, &t, &items[k]);
			items[k].live = 0;
			live--;
		} else {
			assert_null(
			    fsm_htab_find(&t, weak(key), item_match, &key));
			assert_int_equal(fsm_htab_reserve(f, &t, 1), 0);
			fsm_htab_insert(&t, &items[k]);
			items[k].live = 1;
			live++;
		}
		assert_int_equal(t.count, live);
		assert_true(t.count * 4 <= t.cap * 3);
	}
	for (i = 0; i < 3000; i++) {
		uint64_t key = items[i].key;

		assert_ptr_equal(fsm_htab_find(&t, weak(key), item_match, &key),
		                 items[i].live ? &items[i] : NULL);
	}
	fsm_htab_free(f, &t);
	assert_int_equal(fsm_memory(f), base);
	fsm_free(f);
}

static void test_vec_and_hashes(void **state)
{
	struct fsm *f = fsm_new(NULL);
	uint64_t base = fsm_memory(f);
	struct fsm_vec v = {0};
	uintptr_t i;

	(void)state;
	for (i = 1; i <= 1000; i++)
		assert_int_equal(fsm_vec_push(f, &v, (void *)i), 0);
	assert_int_equal(v.n, 1000);
	assert_ptr_equal(v.v[999], (void *)1000);
	assert_true(fsm_memory(f) > base);
	fsm_vec_free(f, &v);
	assert_int_equal(fsm_memory(f), base);
	/* Fixed functions: same input, same hash, on every node. */
	assert_int_equal(fsm_hash_bytes("abc", 3), fsm_hash_bytes("abc", 3));
	assert_true(fsm_hash_bytes("abc", 3) != fsm_hash_bytes("abd", 3));
	assert_true(fsm_hash_u64(1) != fsm_hash_u64(2));
	fsm_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_htab_random),
	    cmocka_unit_test(test_vec_and_hashes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
