/* test_fsm_queue: queue declare/delete/purge, publish, overflow, dedup, TTL,
 * delay, and the memory cost of a queued message. */
#include <stdio.h>

#include "test_fsm_util.h"

static void test_declare(void **state)
{
	struct fsm_config cfg;
	struct fsm *f;
	struct rec *r = rec_new();
	struct fsm_queue_opts o = {0};
	struct fsm_queue_stats s;
	char big[300];

	(void)state;
	fsm_config_default(&cfg);
	cfg.max_queues = 2;
	f = fsm_new(&cfg);
	assert_non_null(f);
	assert_int_equal(declare(f, "a", NULL, r), FSM_OK);
	assert_int_equal(last_res(r)->u.declare.created, 1);
	assert_int_equal(last_res(r)->u.declare.queue_id, 1);
	assert_int_equal(last_res(r)->session, 1);
	/* Same options (explicit default == 0): idempotent. */
	o.ack_timeout = cfg.default_ack_timeout;
	assert_int_equal(declare(f, "a", &o, r), FSM_OK);
	assert_int_equal(last_res(r)->u.declare.created, 0);
	assert_int_equal(last_res(r)->u.declare.queue_id, 1);
	o.ack_timeout = 5;
	assert_int_equal(declare(f, "a", &o, r), FSM_EEXISTS);
	o.ack_timeout = 0;
	o.dlq = "dead";
	assert_int_equal(declare(f, "a", &o, r), FSM_EEXISTS);
	assert_int_equal(declare(f, "", NULL, r), FSM_EINVAL);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	assert_int_equal(declare(f, big, NULL, r), FSM_EINVAL);
	o.dlq = NULL;
	o.overflow = 7;
	assert_int_equal(declare(f, "b", &o, r), FSM_EINVAL);
	o.overflow = FSM_OVERFLOW_DROP_HEAD;
	o.dlq = "dead";
	assert_int_equal(declare(f, "b", &o, r), FSM_OK);
	assert_int_equal(last_res(r)->u.declare.queue_id, 2);
	assert_int_equal(declare(f, "c", NULL, r), FSM_ELIMIT);
	assert_int_equal(last_res(r)->u.declare.queue_id, 0);
	s = qstats(f, "b");
	assert_string_equal(s.opts.dlq, "dead");
	assert_int_equal(s.opts.max_length, cfg.default_max_length);
	assert_int_equal(s.opts.overflow, FSM_OVERFLOW_DROP_HEAD);
	assert_int_equal(fsm_queue_stats(f, "zz", 2, &s), FSM_ENOQUEUE);
	fsm_free(f);
	free(r);
}

static void test_delete_purge(void **state)
{
	struct fsm *f = fsm_new(NULL);
	struct rec *r = rec_new();
	struct fsm_cmd c;

	(void)state;
	assert_int_equal(declare(f, "q", NULL, r), FSM_OK);
	assert_int_equal(publish(f, "q", "", "one", r), FSM_OK);
	assert_int_equal(last_res(r)->u.publish.seq, 1);
	assert_int_equal(last_res(r)->u.publish.queues, 1);
	assert_int_equal(publish(f, "q", "", "two", r), FSM_OK);
	assert_int_equal(last_res(r)->u.publish.seq, 2);
	c = cmd_of(FSM_CMD_QUEUE_DELETE);
	c.u.qdelete.name = "q";
	c.u.qdelete.name_len = 1;
	c.u.qdelete.if_empty = 1;
	assert_int_equal(apply(f, &c, r), FSM_ENOTEMPTY);
	c.type = FSM_CMD_QUEUE_PURGE;
	assert_int_equal(apply(f, &c, r), FSM_OK);
	assert_int_equal(last_res(r)->u.removed.removed, 2);
	assert_int_equal(qstats(f, "q").ready, 0);
	assert_int_equal(qstats(f, "q").bytes, 0);
	assert_int_equal(publish(f, "q", "", "three", r), FSM_OK);
	assert_int_equal(last_res(r)->u.publish.seq, 3);
	c.type = FSM_CMD_QUEUE_DELETE;
	c.u.qdelete.if_empty = 0;
	assert_int_equal(apply(f, &c, r), FSM_OK);
	assert_int_equal(last_res(r)->u.removed.removed, 1);
	assert_int_equal(apply(f, &c, r), FSM_ENOQUEUE);
	c.type = FSM_CMD_QUEUE_PURGE;
	assert_int_equal(apply(f, &c, r), FSM_ENOQUEUE);
	c.u.qdelete.name_len = 0;
	assert_int_equal(apply(f, &c, r), FSM_EINVAL);
	assert_int_equal(publish(f, "q", "", "x", r), FSM_ENOQUEUE);
	assert_int_equal(publish(f, "", "", "x", r), FSM_EINVAL);
	/* Unknown command type. */
	c = cmd_of(99);
	assert_int_equal(apply(f, &c, r), FSM_EINVAL);
	c = cmd_of(0);
	assert_int_equal(apply(f, &c, r), FSM_EINVAL);
	fsm_free(f);
	free(r);
}

static void test_publish_limits(void **state)
{
	struct fsm_config cfg;
	struct fsm *f;
	struct rec *r = rec_new();
	struct fsm_queue_opts o = {0};
	struct fsm_queue_stats s;

	(void)state;
	fsm_config_default(&cfg);
	cfg.max_payload = 8;
	f = fsm_new(&cfg);
	o.max_length = 2;
	assert_int_equal(declare(f, "rej", &o, r), FSM_OK);
	o.overflow = FSM_OVERFLOW_DROP_HEAD;
	assert_int_equal(declare(f, "drop", &o, r), FSM_OK);
	assert_int_equal(publish(f, "rej", "", "123456789", r), FSM_ETOOBIG);
	assert_int_equal(publish(f, "rej", "", "a", r), FSM_OK);
	assert_int_equal(publish(f, "rej", "", "b", r), FSM_OK);
	assert_int_equal(publish(f, "rej", "", "c", r), FSM_EFULL);
	s = qstats(f, "rej");
	assert_int_equal(s.ready, 2);
	assert_int_equal(s.published, 2);
	assert_int_equal(s.last_seq, 2);
	assert_int_equal(publish(f, "drop", "", "a", r), FSM_OK);
	assert_int_equal(publish(f, "drop", "", "b", r), FSM_OK);
	assert_int_equal(publish(f, "drop", "", "c", r), FSM_OK);
	assert_int_equal(last_res(r)->u.publish.seq, 3);
	s = qstats(f, "drop");
	assert_int_equal(s.ready, 2);
	assert_int_equal(s.dropped, 1);
	assert_int_equal(s.bytes, 2);
	/* The oldest went: a get sees seq 2 first. */
	r->n_eff = 0;
	assert_int_equal(get_msgs(f, "drop", 5, 10, 0, 77, r), FSM_OK);
	assert_int_equal(last_res(r)->u.get.count, 2);
	assert_int_equal(r->eff[0].seq, 2);
	assert_int_equal(r->eff[1].seq, 3);
	assert_int_equal(r->eff[0].req_id, 77);
	/* Everything is in flight: nothing to drop, so the queue is full. */
	assert_int_equal(publish(f, "drop", "", "d", r), FSM_EFULL);
	fsm_free(f);
	free(r);
}

static void test_dedup(void **state)
{
	struct fsm_config cfg;
	struct fsm *f;
	struct rec *r = rec_new();
	struct fsm_queue_opts o = {0};

	(void)state;
	fsm_config_default(&cfg);
	cfg.max_dedup_entries = 2;
	f = fsm_new(&cfg);
	o.dedup_window = 100;
	assert_int_equal(declare(f, "q", &o, r), FSM_OK);
	test_time = 1000;
	assert_int_equal(publish(f, "q", "m1", "x", r), FSM_OK);
	assert_int_equal(publish(f, "q", "m2", "y", r), FSM_OK);
	assert_int_equal(publish(f, "q", "m1", "x", r), FSM_OK);
	assert_int_equal(last_res(r)->u.publish.duplicate, 1);
	assert_int_equal(last_res(r)->u.publish.seq, 1);
	assert_int_equal(last_res(r)->u.publish.queues, 0);
	assert_int_equal(qstats(f, "q").ready, 2);
	assert_int_equal(qstats(f, "q").deduplicated, 1);
	/* Bounded index: m3 evicts m1. */
	assert_int_equal(publish(f, "q", "m3", "z", r), FSM_OK);
	assert_int_equal(publish(f, "q", "m1", "x", r), FSM_OK);
	assert_int_equal(last_res(r)->u.publish.duplicate, 0);
	assert_int_equal(last_res(r)->u.publish.seq, 4);
	/* Window: after 100 ms m3 is forgotten. */
	test_time = 1099;
	assert_int_equal(publish(f, "q", "m3", "z", r), FSM_OK);
	assert_int_equal(last_res(r)->u.publish.duplicate, 1);
	assert_int_equal(last_res(r)->u.publish.seq, 3);
	test_time = 1100;
	assert_int_equal(publish(f, "q", "m3", "z", r), FSM_OK);
	assert_int_equal(last_res(r)->u.publish.duplicate, 0);
	assert_int_equal(last_res(r)->u.publish.seq, 5);
	/* Empty ids never deduplicate. */
	assert_int_equal(publish(f, "q", "", "z", r), FSM_OK);
	assert_int_equal(publish(f, "q", "", "z", r), FSM_OK);
	assert_int_equal(last_res(r)->u.publish.seq, 7);
	test_time = 1000;
	fsm_free(f);
	free(r);
}

static void test_ttl_delay(void **state)
{
	struct fsm *f = fsm_new(NULL);
	struct rec *r = rec_new();
	struct fsm_queue_opts o = {0};
	struct fsm_queue_stats s;

	(void)state;
	o.message_ttl = 50;
	assert_int_equal(declare(f, "ttl", &o, r), FSM_OK);
	o.message_ttl = 0;
	o.delay = 30;
	assert_int_equal(declare(f, "del", &o, r), FSM_OK);
	assert_int_equal(fsm_next_deadline(f), UINT64_MAX);
	assert_int_equal(publish(f, "ttl", "", "a", r), FSM_OK); /* t=1000 */
	assert_int_equal(fsm_next_deadline(f), 1050);
	assert_int_equal(publish_full(f, "", "ttl", "", "b", 10, 0, r), FSM_OK);
	assert_int_equal(fsm_next_deadline(f), 1010);
	assert_int_equal(publish(f, "del", "", "c", r), FSM_OK);
	s = qstats(f, "del");
	assert_int_equal(s.ready, 1);
	assert_int_equal(s.delayed, 1);
	r->n_eff = 0;
	assert_int_equal(get_msgs(f, "del", 1, 5, 0, 1, r), FSM_OK);
	assert_int_equal(last_res(r)->u.get.count, 0);
	assert_int_equal(tick(f, 1010, r), FSM_OK);
	s = qstats(f, "ttl");
	assert_int_equal(s.ready, 1);
	assert_int_equal(s.expired, 1);
	assert_int_equal(fsm_next_deadline(f), 1030);
	assert_int_equal(tick(f, 1030, r), FSM_OK);
	s = qstats(f, "del");
	assert_int_equal(s.delayed, 0);
	assert_int_equal(s.ready, 1);
	assert_int_equal(get_msgs(f, "del", 1, 5, 0, 1, r), FSM_OK);
	assert_int_equal(last_res(r)->u.get.count, 1);
	/* Timers fire in any command once the clock passes them. */
	assert_int_equal(publish_full(f, "", "ttl", "", "late", 0, 0, r),
	                 FSM_OK);
	test_time = 2000;
	assert_int_equal(publish(f, "del", "", "x", r), FSM_OK);
	s = qstats(f, "ttl");
	assert_int_equal(s.ready, 0);
	assert_int_equal(s.expired, 3);
	assert_int_equal(fsm_now(f), 2000);
	test_time = 1000;
	fsm_free(f);
	free(r);
}

/* Memory per queued message: FSM_MEM_N (default 1,000,000) messages of 100
 * bytes with a 16-byte id, through fsm_apply. */
static void test_memory(void **state)
{
	struct fsm *f = fsm_new(NULL);
	const char *env = getenv("FSM_MEM_N");
	uint64_t n = env ? strtoull(env, NULL, 10) : 1000000, i;
	uint64_t before, after;
	char payload[101], id[17];
	struct fsm_cmd c = cmd_of(FSM_CMD_PUBLISH);

	(void)state;
	memset(payload, 'p', 100);
	payload[100] = 0;
	assert_int_equal(declare(f, "mem", NULL, NULL), FSM_OK);
	assert_int_equal(declare(f, "memid", NULL, NULL), FSM_OK);
	c.u.publish.key = "mem";
	c.u.publish.key_len = 3;
	c.u.publish.msg.payload = payload;
	c.u.publish.msg.payload_len = 100;
	c.time = 1000;
	before = fsm_memory(f);
	for (i = 0; i < n; i++)
		assert_int_equal(fsm_apply(f, &c, NULL), FSM_OK);
	after = fsm_memory(f);
	printf("memory: %.1f bytes overhead per queued 100-byte message "
	       "(no id, %llu messages)\n",
	       (double)(after - before) / (double)n - 100,
	       (unsigned long long)n);
	c.u.publish.key = "memid";
	c.u.publish.key_len = 5;
	c.u.publish.msg.id = id;
	c.u.publish.msg.id_len = 16;
	before = fsm_memory(f);
	for (i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "%016llx", (unsigned long long)i);
		assert_int_equal(fsm_apply(f, &c, NULL), FSM_OK);
	}
	after = fsm_memory(f);
	printf("memory: %.1f bytes overhead per queued 100-byte message "
	       "with a 16-byte id, dedup index included\n",
	       (double)(after - before) / (double)n - 116);
	assert_true((after - before) / n < 400);
	fsm_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_declare),
	    cmocka_unit_test(test_delete_purge),
	    cmocka_unit_test(test_publish_limits),
	    cmocka_unit_test(test_dedup),
	    cmocka_unit_test(test_ttl_delay),
	    cmocka_unit_test(test_memory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
