/* tests/unit/test_node_clock: the cluster clock stamped by the leader
 * (node/clock.c, DESIGN "Time"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "node/clock.h"

#define MS 1000000ull /* ns */
#define H  (3600ull * 1000)

/* A new leader starts from the FSM clock, whatever its wall clock says. */
static void test_starts_from_fsm(void **state)
{
	struct node_clock c = {0};
	(void)state;

	node_clock_start(&c, 5000, 0, 100 * MS, 5000 + H);
	assert_int_equal(node_clock_stamp(&c, 100 * MS, 5000 + H), 5000);
	/* 1 s later: 1 s plus at most 1% of slew toward the wall. */
	assert_int_equal(node_clock_stamp(&c, 1100 * MS, 6000 + H), 6010);
}

/* A fresh cluster (nothing ever applied) may start at the wall clock. */
static void test_fresh_starts_at_wall(void **state)
{
	struct node_clock c = {0};
	(void)state;

	node_clock_start(&c, 0, 1, 0, 1700000000000ull);
	assert_int_equal(node_clock_stamp(&c, 0, 1700000000000ull),
	                 1700000000000ull);
	/* Not fresh (configuration set): from the FSM, even at 0. */
	node_clock_start(&c, 0, 0, 0, 1700000000000ull);
	assert_int_equal(node_clock_stamp(&c, 0, 1700000000000ull), 0);
}

/* The regression of the issue: after a leader at +1 h, a leader with a
 * correct wall clock keeps the cluster clock running at the monotonic
 * rate (slewing back by at most 1%), so timers of 3 s fire after ~3 s. */
static void test_skewed_history_does_not_freeze(void **state)
{
	struct node_clock c = {0};
	uint64_t wall = 1700000000000ull, fsm = wall + H, t0, t;
	(void)state;

	node_clock_start(&c, fsm, 0, 0, wall);
	t0 = node_clock_stamp(&c, 0, wall);
	assert_int_equal(t0, fsm);
	t = node_clock_stamp(&c, 3000 * MS, wall + 3000);
	assert_true(t >= t0 + 2970 && t <= t0 + 3000);
	/* Never backwards, however far the wall clock jumps. */
	for (uint64_t k = 1; k <= 1000; k++) {
		uint64_t prev = t;
		t = node_clock_stamp(&c, (3000 + k * 7) * MS,
		                     k % 2 ? 0 : UINT64_MAX / MS);
		assert_true(t >= prev);
		assert_true(t - prev <= 8);
	}
}

/* A wall clock far in the future pulls the clock forward by 1% at most:
 * no jump. */
static void test_slew_is_bounded(void **state)
{
	struct node_clock c = {0};
	uint64_t t;
	(void)state;

	node_clock_start(&c, 1000, 0, 0, 1000);
	t = node_clock_stamp(&c, 10000 * MS, 1000 + 100 * H);
	assert_int_equal(t, 1000 + 10000 + 100);
	/* Converged: no slew once the wall is reached. */
	node_clock_start(&c, 1000, 0, 0, 1000);
	t = node_clock_stamp(&c, 10000 * MS, 11050);
	assert_int_equal(t, 11050);
	t = node_clock_stamp(&c, 20000 * MS, 21050);
	assert_int_equal(t, 21050);
}

/* Stamps never decrease, also when the monotonic reading repeats or goes
 * back (it cannot, but the clock must not care), and a stopped clock
 * hands out its last stamp. */
static void test_monotonic(void **state)
{
	struct node_clock c = {0};
	uint64_t a, b;
	(void)state;

	node_clock_start(&c, 42, 0, 500 * MS, 42);
	a = node_clock_stamp(&c, 900 * MS, 442);
	b = node_clock_stamp(&c, 800 * MS, 442);
	assert_true(b >= a);
	node_clock_stop(&c);
	assert_int_equal(node_clock_stamp(&c, 5000 * MS, 5000), b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_starts_from_fsm),
	    cmocka_unit_test(test_fresh_starts_at_wall),
	    cmocka_unit_test(test_skewed_history_does_not_freeze),
	    cmocka_unit_test(test_slew_is_bounded),
	    cmocka_unit_test(test_monotonic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
