/* test_fsm_timer: the deadline heap seen from outside: fsm_next_deadline()
 * is exact under random deadlines, extensions, acks and ticks. */
#include "test_fsm_util.h"

static void test_next_deadline_exact(void **state)
{
	struct fsm *f = fsm_new(NULL);
	struct rec *r = rec_new();
	static uint64_t deadline[2001]; /* per seq, 0 = none */
	uint64_t rng = 11, now = 1000, i;
	uint32_t step;

	(void)state;
	test_time = now;
	assert_int_equal(declare(f, "q", NULL, r), FSM_OK);
	for (i = 1; i <= 2000; i++)
		assert_int_equal(publish(f, "q", "", "x", r), FSM_OK);
	assert_int_equal(fsm_next_deadline(f), UINT64_MAX);
	r->n_eff = 0;
	for (i = 0; i < 20; i++) {
		uint32_t k;

		assert_int_equal(
		    get_msgs(f, "q", 1, 100, 1 + (i * 7919) % 5000, 0, r),
		    FSM_OK);
		for (k = 0; k < r->n_eff; k++)
			deadline[r->eff[k].seq] = now + 1 + (i * 7919) % 5000;
		r->n_eff = 0;
	}
	for (step = 0; step < 3000; step++) {
		uint64_t s, min = UINT64_MAX;

		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		s = 1 + rng % 2000;
		switch (rng >> 61) {
		case 0:
		case 1:
			if (settle(f, FSM_CMD_EXTEND, 1, s, 0, rng % 3000 + 1,
			           r) == FSM_OK)
				deadline[s] = now + rng % 3000 + 1;
			break;
		case 2:
			if (settle(f, FSM_CMD_ACK, 1, s, 0, 0, r) == FSM_OK)
				deadline[s] = 0;
			break;
		default:
			now += rng % 50;
			test_time = now;
			assert_int_equal(tick(f, now, r), FSM_OK);
			for (i = 1; i <= 2000; i++)
				if (deadline[i] && deadline[i] <= now)
					deadline[i] = 0; /* back to READY */
			break;
		}
		for (i = 1; i <= 2000; i++)
			if (deadline[i] && deadline[i] < min)
				min = deadline[i];
		assert_int_equal(fsm_next_deadline(f), min);
	}
	test_time = 1000;
	fsm_free(f);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_next_deadline_exact),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
