/* test_fsm_consumer: consumers, round robin, credit, cancel, gets, session
 * down, leader elected, exclusive and auto-delete queues. */
#include <stdio.h>

#include "test_fsm_util.h"

static void test_consume_errors(void **state)
{
	struct fsm_config cfg;
	struct fsm *f;
	struct rec *r = rec_new();
	struct fsm_queue_opts o = {0};
	struct fsm_cmd c;

	(void)state;
	fsm_config_default(&cfg);
	cfg.max_consumers = 2;
	f = fsm_new(&cfg);
	o.exclusive = 1;
	assert_int_equal(declare(f, "x", &o, r), FSM_OK);
	assert_int_equal(declare(f, "q", NULL, r), FSM_OK);
	assert_int_equal(consume(f, "q", 1, 0, r), FSM_EINVAL);
	assert_int_equal(consume(f, "", 1, 1, r), FSM_EINVAL);
	assert_int_equal(consume(f, "nope", 1, 1, r), FSM_ENOQUEUE);
	assert_int_equal(consume(f, "x", 1, 1, r), FSM_OK);
	assert_int_equal(last_res(r)->u.consume.consumer, 1);
	assert_int_equal(last_res(r)->u.consume.queue_id, 1);
	assert_int_equal(consume(f, "x", 2, 1, r), FSM_EBUSY);
	assert_int_equal(consume(f, "q", 2, 1, r), FSM_OK);
	assert_int_equal(last_res(r)->u.consume.consumer, 2);
	assert_int_equal(consume(f, "q", 2, 1, r), FSM_ELIMIT);
	c = cmd_of(FSM_CMD_CANCEL);
	c.u.cancel.consumer = 9;
	assert_int_equal(apply(f, &c, r), FSM_ENOCONSUMER);
	c.u.cancel.consumer = 1;
	assert_int_equal(apply(f, &c, r), FSM_OK);
	assert_int_equal(last_res(r)->u.consume.consumer, 1);
	assert_int_equal(consume(f, "x", 3, 1, r), FSM_OK);
	assert_int_equal(last_res(r)->u.consume.consumer, 3);
	assert_int_equal(qstats(f, "x").consumers, 1);
	assert_int_equal(get_msgs(f, "nope", 1, 1, 0, 0, r), FSM_ENOQUEUE);
	assert_int_equal(get_msgs(f, "q", 1, 0, 0, 0, r), FSM_EINVAL);
	fsm_free(f);
	free(r);
}

static void test_round_robin(void **state)
{
	struct fsm *f = fsm_new(NULL);
	struct rec *r = rec_new();
	char p[8];
	int i;

	(void)state;
	assert_int_equal(declare(f, "q", NULL, r), FSM_OK);
	assert_int_equal(consume(f, "q", 10, 2, r), FSM_OK); /* c1 */
	assert_int_equal(consume(f, "q", 11, 1, r), FSM_OK); /* c2 */
	r->n_eff = 0;
	for (i = 0; i < 5; i++) {
		p[0] = (char)('a' + i);
		p[1] = 0;
		assert_int_equal(publish(f, "q", "", p, r), FSM_OK);
	}
	/* c1, c2, c1; then no credit left. */
	assert_int_equal(r->n_eff, 3);
	assert_int_equal(r->eff[0].consumer, 1);
	assert_int_equal(r->eff[0].session, 10);
	assert_int_equal(r->eff[0].seq, 1);
	assert_int_equal(r->eff[0].delivery_count, 1);
	assert_int_equal(r->eff[1].consumer, 2);
	assert_int_equal(r->eff[1].seq, 2);
	assert_int_equal(r->eff[2].consumer, 1);
	assert_int_equal(r->eff[2].seq, 3);
	assert_memory_equal(r->eff[2].payload, "c", 1);
	assert_int_equal(qstats(f, "q").in_flight, 3);
	assert_int_equal(qstats(f, "q").ready, 2);
	/* An ack frees credit: the next message goes out at once. */
	r->n_eff = 0;
	assert_int_equal(settle(f, FSM_CMD_ACK, 1, 2, 0, 0, r), FSM_OK);
	assert_int_equal(r->n_eff, 1);
	assert_int_equal(r->eff[0].consumer, 2);
	assert_int_equal(r->eff[0].seq, 4);
	fsm_free(f);
	free(r);
}

static void test_cancel_requeue_order(void **state)
{
	struct fsm *f = fsm_new(NULL);
	struct rec *r = rec_new();
	struct fsm_cmd c;

	(void)state;
	assert_int_equal(declare(f, "q", NULL, r), FSM_OK);
	assert_int_equal(publish(f, "q", "", "1", r), FSM_OK);
	assert_int_equal(publish(f, "q", "", "2", r), FSM_OK);
	assert_int_equal(publish(f, "q", "", "3", r), FSM_OK);
	assert_int_equal(consume(f, "q", 5, 2, r), FSM_OK);
	assert_int_equal(qstats(f, "q").in_flight, 2);
	c = cmd_of(FSM_CMD_CANCEL);
	c.session = 5;
	c.u.cancel.consumer = 1;
	r->n_eff = 0;
	assert_int_equal(apply(f, &c, r), FSM_OK);
	assert_int_equal(r->n_eff, 0); /* no CANCELLED for an explicit cancel */
	assert_int_equal(qstats(f, "q").ready, 3);
	assert_int_equal(qstats(f, "q").in_flight, 0);
	/* Redelivered ones first, in seq order, counts kept; then seq 3. */
	assert_int_equal(get_msgs(f, "q", 6, 10, 0, 42, r), FSM_OK);
	assert_int_equal(last_res(r)->u.get.count, 3);
	assert_int_equal(r->eff[0].seq, 1);
	assert_int_equal(r->eff[0].delivery_count, 2);
	assert_int_equal(r->eff[0].consumer, 0);
	assert_int_equal(r->eff[0].session, 6);
	assert_int_equal(r->eff[0].req_id, 42);
	assert_int_equal(r->eff[1].seq, 2);
	assert_int_equal(r->eff[2].seq, 3);
	assert_int_equal(r->eff[2].delivery_count, 1);
	/* Session down returns the gets. */
	c = cmd_of(FSM_CMD_SESSION_DOWN);
	c.u.session_down.session = 6;
	assert_int_equal(apply(f, &c, r), FSM_OK);
	assert_int_equal(qstats(f, "q").ready, 3);
	c.u.session_down.session = 12345;
	assert_int_equal(apply(f, &c, r), FSM_OK);
	fsm_free(f);
	free(r);
}

static void test_session_down_leader(void **state)
{
	struct fsm *f = fsm_new(NULL);
	struct rec *r = rec_new();
	struct fsm_queue_opts o = {0};
	struct fsm_cmd c;

	(void)state;
	o.auto_delete = 1;
	assert_int_equal(declare(f, "auto", &o, r), FSM_OK);
	assert_int_equal(declare(f, "q", NULL, r), FSM_OK);
	assert_int_equal(consume(f, "q", 1, 5, r), FSM_OK);
	assert_int_equal(consume(f, "q", 2, 5, r), FSM_OK);
	assert_int_equal(consume(f, "auto", 2, 5, r), FSM_OK);
	assert_int_equal(publish(f, "q", "", "a", r), FSM_OK);
	assert_int_equal(publish(f, "q", "", "b", r), FSM_OK);
	assert_int_equal(publish(f, "auto", "", "c", r), FSM_OK);
	c = cmd_of(FSM_CMD_SESSION_DOWN);
	c.u.session_down.session = 2;
	r->n_eff = 0;
	assert_int_equal(apply(f, &c, r), FSM_OK);
	/* Consumer 2 cancelled (its message went to consumer 1), consumer
	 * 3 cancelled and its auto-delete queue deleted. */
	assert_int_equal(r->eff[0].type, FSM_EFFECT_CANCELLED);
	assert_int_equal(r->eff[0].consumer, 2);
	assert_int_equal(qstats(f, "q").in_flight, 2);
	assert_int_equal(qstats(f, "q").consumers, 1);
	{
		struct fsm_queue_stats s;

		assert_int_equal(fsm_queue_stats(f, "auto", 4, &s),
		                 FSM_ENOQUEUE);
	}
	assert_int_equal(get_msgs(f, "q", 9, 1, 0, 0, r), FSM_OK);
	c = cmd_of(FSM_CMD_LEADER_ELECTED);
	c.u.leader_elected.term = 2;
	c.u.leader_elected.node = 1;
	r->n_eff = 0;
	assert_int_equal(apply(f, &c, r), FSM_OK);
	assert_int_equal(r->n_eff, 1);
	assert_int_equal(r->eff[0].type, FSM_EFFECT_CANCELLED);
	assert_int_equal(r->eff[0].consumer, 1);
	assert_int_equal(r->eff[0].reason, 0);
	assert_int_equal(qstats(f, "q").in_flight, 0);
	assert_int_equal(qstats(f, "q").ready, 2);
	assert_int_equal(qstats(f, "q").consumers, 0);
	fsm_free(f);
	free(r);
}

static void test_delete_cancels(void **state)
{
	struct fsm *f = fsm_new(NULL);
	struct rec *r = rec_new();
	struct fsm_cmd c;

	(void)state;
	assert_int_equal(declare(f, "q", NULL, r), FSM_OK);
	assert_int_equal(consume(f, "q", 1, 5, r), FSM_OK);
	assert_int_equal(publish(f, "q", "", "a", r), FSM_OK);
	assert_int_equal(get_msgs(f, "q", 2, 1, 0, 0, r), FSM_OK);
	assert_int_equal(publish(f, "q", "", "b", r), FSM_OK);
	c = cmd_of(FSM_CMD_QUEUE_DELETE);
	c.u.qdelete.name = "q";
	c.u.qdelete.name_len = 1;
	r->n_eff = 0;
	assert_int_equal(apply(f, &c, r), FSM_OK);
	assert_int_equal(last_res(r)->u.removed.removed, 2);
	assert_int_equal(r->n_eff, 1);
	assert_int_equal(r->eff[0].type, FSM_EFFECT_CANCELLED);
	assert_int_equal(r->eff[0].reason, FSM_ENOQUEUE);
	c = cmd_of(FSM_CMD_CANCEL);
	c.u.cancel.consumer = 1;
	assert_int_equal(apply(f, &c, r), FSM_ENOCONSUMER);
	fsm_free(f);
	free(r);
}

static void foreach_cb(void *data, const char *name, uint32_t len,
                       const struct fsm_queue_stats *s)
{
	char *out = data;
	char tmp[64];

	snprintf(tmp, sizeof(tmp), "%.*s:%llu:%llu;", (int)len, name,
	         (unsigned long long)s->ready,
	         (unsigned long long)s->in_flight);
	strcat(out, tmp);
}

static void test_get_clamp_foreach(void **state)
{
	struct fsm_config cfg;
	struct fsm *f;
	struct rec *r = rec_new();
	char out[128] = "";
	int i;

	(void)state;
	fsm_config_default(&cfg);
	cfg.max_get = 3;
	f = fsm_new(&cfg);
	assert_int_equal(declare(f, "b", NULL, r), FSM_OK);
	assert_int_equal(declare(f, "a", NULL, r), FSM_OK);
	for (i = 0; i < 5; i++)
		assert_int_equal(publish(f, "b", "", "x", r), FSM_OK);
	r->n_eff = 0;
	assert_int_equal(get_msgs(f, "b", 1, 100, 0, 5, r), FSM_OK);
	assert_int_equal(last_res(r)->u.get.count, 3);
	assert_int_equal(r->n_eff, 3);
	assert_int_equal(get_msgs(f, "a", 1, 100, 0, 5, r), FSM_OK);
	assert_int_equal(last_res(r)->u.get.count, 0);
	fsm_queue_foreach(f, foreach_cb, out);
	assert_string_equal(out, "a:0:0;b:2:3;");
	fsm_free(f);
	free(r);
}

/* ---- Session window (issue 10 item 2). */

#define BIG      250000u
#define BIG_MSGS 300u

static char big_payload[BIG];

/* A queue "q" (max deliveries 3) holding 300 messages of 250,000 bytes. */
static struct fsm *big_queue(struct rec *r, uint64_t *window)
{
	struct fsm_config cfg;
	struct fsm_queue_opts o = {0};
	struct fsm_msg_in m;
	struct fsm *f;
	uint32_t i;

	fsm_config_default(&cfg);
	cfg.max_payload = 300000;
	*window = cfg.session_window;
	f = fsm_new(&cfg);
	assert_non_null(f);
	o.max_deliveries = 3;
	o.dlq = "dl";
	assert_int_equal(declare(f, "q", &o, r), FSM_OK);
	assert_int_equal(declare(f, "dl", NULL, r), FSM_OK);
	memset(&m, 0, sizeof(m));
	memset(big_payload, 'p', sizeof(big_payload));
	m.payload = big_payload;
	m.payload_len = BIG;
	for (i = 0; i < BIG_MSGS; i++)
		assert_int_equal(publish_msg(f, "q", &m, r), FSM_OK);
	return f;
}

/* Checks the deliveries recorded from *from on (each message once, first
 * delivery) and counts them in *seen. */
static uint32_t take_deliveries(struct rec *r, uint32_t *from, uint8_t *seen)
{
	uint32_t n = 0;

	for (; *from < r->n_eff; (*from)++) {
		if (r->eff[*from].type != FSM_EFFECT_DELIVER)
			continue;
		assert_int_equal(r->eff[*from].delivery_count, 1);
		assert_int_equal(r->eff[*from].payload_len, BIG);
		assert_false(seen[r->eff[*from].seq]);
		seen[r->eff[*from].seq] = 1;
		n++;
	}
	return n;
}

static void test_window_get(void **state)
{
	struct rec *r = rec_new();
	uint8_t seen[BIG_MSGS + 1] = {0};
	uint64_t window;
	struct fsm *f = big_queue(r, &window);
	uint32_t total = 0, rounds = 0, from, i, count;

	(void)state;
	/* One get asks for all of them: it gets what fits the window. */
	r->n_eff = 0;
	from = 0;
	assert_int_equal(get_msgs(f, "q", 7, BIG_MSGS, 0, 1, r), FSM_OK);
	count = last_res(r)->u.get.count;
	assert_int_equal(count, window / BIG);
	assert_int_equal(take_deliveries(r, &from, seen), count);
	total += count;
	/* Under the window: one more; then at it: none. */
	assert_int_equal(get_msgs(f, "q", 7, BIG_MSGS, 0, 2, r), FSM_OK);
	assert_int_equal(last_res(r)->u.get.count, 1);
	total += take_deliveries(r, &from, seen);
	assert_int_equal(get_msgs(f, "q", 7, BIG_MSGS, 0, 3, r), FSM_OK);
	assert_int_equal(last_res(r)->u.get.count, 0);
	assert_true(qstats(f, "q").in_flight * BIG <= window + BIG);
	/* Ack and get again until every message came, once. */
	while (total < BIG_MSGS) {
		assert_true(++rounds < 20);
		for (i = 1; i <= BIG_MSGS; i++)
			if (seen[i] == 1) {
				assert_int_equal(
				    settle_as(f, 7, FSM_CMD_ACK, 1, i, 0, 0, r),
				    FSM_OK);
				seen[i] = 2;
			}
		r->n_eff = 0;
		from = 0;
		assert_int_equal(get_msgs(f, "q", 7, BIG_MSGS, 0, 4, r),
		                 FSM_OK);
		assert_true(last_res(r)->u.get.count > 0);
		total += take_deliveries(r, &from, seen);
		assert_true(qstats(f, "q").in_flight * BIG <= window + BIG);
	}
	assert_int_equal(total, BIG_MSGS);
	assert_int_equal(qstats(f, "q").dead_lettered, 0);
	assert_int_equal(qstats(f, "dl").ready, 0);
	fsm_free(f);
	free(r);
}

static void test_window_consumer(void **state)
{
	struct rec *r = rec_new();
	uint8_t seen[BIG_MSGS + 1] = {0};
	uint64_t window;
	struct fsm *f = big_queue(r, &window);
	uint32_t total, from = 0, i;

	(void)state;
	r->n_eff = 0;
	assert_int_equal(consume(f, "q", 8, 1000, r), FSM_OK);
	total = take_deliveries(r, &from, seen);
	/* Assigned while the session is under its window. */
	assert_int_equal(total, window / BIG + 1);
	assert_int_equal(qstats(f, "q").in_flight, total);
	/* Each ack brings the session under the window: one more. */
	for (i = 1; i <= BIG_MSGS; i++) {
		assert_int_equal(seen[i], 1);
		assert_int_equal(settle_as(f, 8, FSM_CMD_ACK, 1, i, 0, 0, r),
		                 FSM_OK);
		total += take_deliveries(r, &from, seen);
		assert_true(qstats(f, "q").in_flight * BIG <= window + BIG);
	}
	assert_int_equal(total, BIG_MSGS);
	assert_int_equal(qstats(f, "q").acked, BIG_MSGS);
	assert_int_equal(qstats(f, "q").dead_lettered, 0);
	fsm_free(f);
	free(r);
}

/* A blocked session stops every consumer it has (the others of the queue
 * take its share); an ack on one queue resumes its consumers on the other
 * queues; a restore derives the same window state. */
static void test_window_sessions(void **state)
{
	struct fsm_config cfg;
	struct rec *r = rec_new();
	struct fsm *f, *g;
	void *buf;
	size_t len;
	char sixty[61];
	uint32_t i;

	(void)state;
	fsm_config_default(&cfg);
	cfg.session_window = 100;
	f = fsm_new(&cfg);
	memset(sixty, 'x', 60);
	sixty[60] = 0;
	assert_int_equal(declare(f, "q1", NULL, r), FSM_OK);
	assert_int_equal(declare(f, "q2", NULL, r), FSM_OK);
	assert_int_equal(consume(f, "q1", 5, 10, r), FSM_OK);
	assert_int_equal(consume(f, "q2", 5, 10, r), FSM_OK);
	assert_int_equal(consume(f, "q2", 6, 2, r), FSM_OK);
	/* 60 in flight, then 120: session 5 is blocked. */
	assert_int_equal(publish(f, "q1", "", sixty, r), FSM_OK);
	assert_int_equal(publish(f, "q1", "", sixty, r), FSM_OK);
	assert_int_equal(qstats(f, "q1").in_flight, 2);
	/* q2: consumer 2 (session 5) gets nothing, consumer 3 fills up. */
	r->n_eff = 0;
	assert_int_equal(publish(f, "q2", "", "a", r), FSM_OK);
	assert_int_equal(publish(f, "q2", "", "b", r), FSM_OK);
	assert_int_equal(publish(f, "q2", "", "c", r), FSM_OK);
	assert_int_equal(r->n_eff, 2);
	assert_int_equal(r->eff[0].consumer, 3);
	assert_int_equal(r->eff[1].consumer, 3);
	assert_int_equal(qstats(f, "q2").ready, 1);
	/* A get of the blocked session gets nothing. */
	assert_int_equal(get_msgs(f, "q2", 5, 10, 0, 1, r), FSM_OK);
	assert_int_equal(last_res(r)->u.get.count, 0);
	/* A restore derives the same state (fsm_check verifies it). */
	buf = snap(f, &len);
	g = fsm_new(&cfg);
	assert_non_null(g);
	assert_int_equal(fsm_restore(g, buf, len), FSM_OK);
	assert_int_equal(fsm_check(g), 0);
	assert_true(snap_equal(f, g));
	free(buf);
	/* An ack on q1 brings session 5 under its window: q2's message
	 * goes to consumer 2, on both replicas. */
	for (i = 0; i < 2; i++) {
		r->n_eff = 0;
		assert_int_equal(
		    settle_as(i ? g : f, 5, FSM_CMD_ACK, 1, 1, 0, 0, r),
		    FSM_OK);
		assert_int_equal(r->n_eff, 1);
		assert_int_equal(r->eff[0].consumer, 2);
		assert_int_equal(r->eff[0].seq, 3);
	}
	assert_true(snap_equal(f, g));
	fsm_free(f);
	fsm_free(g);
	free(r);
}

/* ---- Consumers per session (issue 10 item 8). */
static void test_session_consumer_cap(void **state)
{
	struct fsm_config cfg;
	struct fsm *f;
	struct rec *r = rec_new();

	(void)state;
	fsm_config_default(&cfg);
	cfg.max_session_consumers = 2;
	f = fsm_new(&cfg);
	assert_int_equal(declare(f, "q", NULL, r), FSM_OK);
	assert_int_equal(consume(f, "q", 4, 1, r), FSM_OK);
	assert_int_equal(consume(f, "q", 4, 1, r), FSM_OK);
	assert_int_equal(consume(f, "q", 4, 1, r), FSM_ELIMIT);
	assert_int_equal(last_res(r)->u.consume.consumer, 0);
	assert_int_equal(qstats(f, "q").consumers, 2);
	/* Another session has its own count; a cancel gives one back. */
	assert_int_equal(consume(f, "q", 5, 1, r), FSM_OK);
	assert_int_equal(cancel_as(f, 4, 1, r), FSM_OK);
	assert_int_equal(consume(f, "q", 4, 1, r), FSM_OK);
	assert_int_equal(consume(f, "q", 4, 1, r), FSM_ELIMIT);
	fsm_free(f);
	free(r);
}

/* ---- Owners (issue 10 item 9). */

/* Only the owner session cancels a consumer; any other gets
 * FSM_ENOCONSUMER and nothing changes. */
static void test_cancel_owner(void **state)
{
	struct fsm *f = fsm_new(NULL);
	struct rec *r = rec_new();
	uint64_t id;

	(void)state;
	assert_int_equal(declare(f, "q", NULL, r), FSM_OK);
	assert_int_equal(consume(f, "q", 5, 2, r), FSM_OK);
	id = last_res(r)->u.consume.consumer;
	assert_int_equal(publish(f, "q", "", "a", r), FSM_OK);
	r->n_eff = 0;
	assert_int_equal(cancel_as(f, 6, id, r), FSM_ENOCONSUMER);
	assert_int_equal(last_res(r)->u.consume.consumer, 0);
	assert_int_equal(r->n_eff, 0);
	assert_int_equal(qstats(f, "q").consumers, 1);
	assert_int_equal(qstats(f, "q").in_flight, 1);
	/* Still delivering to its owner. */
	assert_int_equal(publish(f, "q", "", "b", r), FSM_OK);
	assert_int_equal(r->n_eff, 1);
	assert_int_equal(r->eff[0].session, 5);
	assert_int_equal(cancel_as(f, 5, id, r), FSM_OK);
	assert_int_equal(last_res(r)->u.consume.consumer, id);
	assert_int_equal(qstats(f, "q").consumers, 0);
	assert_int_equal(qstats(f, "q").ready, 2);
	fsm_free(f);
	free(r);
}

/* Every consumer the FSM ends on its own is reported to its owner
 * session, whoever proposed the command; session down ends only that
 * session's consumers; an explicit cancel is told by its result. */
static void test_cancelled_to_owner(void **state)
{
	struct fsm *f = fsm_new(NULL);
	struct rec *r = rec_new();
	struct fsm_queue_opts o = {0};
	struct fsm_cmd c;
	uint32_t i;

	(void)state;
	o.auto_delete = 1;
	assert_int_equal(declare(f, "q", NULL, r), FSM_OK);
	assert_int_equal(declare(f, "auto", &o, r), FSM_OK);
	assert_int_equal(consume(f, "q", 5, 1, r), FSM_OK);    /* 1 */
	assert_int_equal(consume(f, "q", 6, 1, r), FSM_OK);    /* 2 */
	assert_int_equal(consume(f, "auto", 6, 1, r), FSM_OK); /* 3 */
	assert_int_equal(consume(f, "auto", 7, 1, r), FSM_OK); /* 4 */
	/* Queue deleted by session 1: each owner is told. */
	c = cmd_of(FSM_CMD_QUEUE_DELETE);
	c.u.qdelete.name = "q";
	c.u.qdelete.name_len = 1;
	r->n_eff = 0;
	assert_int_equal(apply(f, &c, r), FSM_OK);
	assert_int_equal(r->n_eff, 2);
	for (i = 0; i < 2; i++) {
		assert_int_equal(r->eff[i].type, FSM_EFFECT_CANCELLED);
		assert_int_equal(r->eff[i].reason, FSM_ENOQUEUE);
		assert_int_equal(r->eff[i].session,
		                 r->eff[i].consumer == 1 ? 5 : 6);
	}
	/* Session 6 goes down: consumer 3 only, told to session 6; the
	 * auto-delete queue keeps consumer 4. */
	c = cmd_of(FSM_CMD_SESSION_DOWN);
	c.u.session_down.session = 6;
	r->n_eff = 0;
	assert_int_equal(apply(f, &c, r), FSM_OK);
	assert_int_equal(r->n_eff, 1);
	assert_int_equal(r->eff[0].consumer, 3);
	assert_int_equal(r->eff[0].session, 6);
	assert_int_equal(qstats(f, "auto").consumers, 1);
	/* A stranger cannot cancel consumer 4 ... */
	assert_int_equal(cancel_as(f, 6, 4, r), FSM_ENOCONSUMER);
	assert_int_equal(qstats(f, "auto").consumers, 1);
	/* ... a leader change ends it, told to session 7. */
	c = cmd_of(FSM_CMD_LEADER_ELECTED);
	c.u.leader_elected.term = 3;
	r->n_eff = 0;
	assert_int_equal(apply(f, &c, r), FSM_OK);
	assert_int_equal(r->n_eff, 1);
	assert_int_equal(r->eff[0].type, FSM_EFFECT_CANCELLED);
	assert_int_equal(r->eff[0].consumer, 4);
	assert_int_equal(r->eff[0].session, 7);
	assert_int_equal(r->eff[0].reason, 0);
	fsm_free(f);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_consume_errors),
	    cmocka_unit_test(test_round_robin),
	    cmocka_unit_test(test_cancel_requeue_order),
	    cmocka_unit_test(test_session_down_leader),
	    cmocka_unit_test(test_delete_cancels),
	    cmocka_unit_test(test_get_clamp_foreach),
	    cmocka_unit_test(test_window_get),
	    cmocka_unit_test(test_window_consumer),
	    cmocka_unit_test(test_window_sessions),
	    cmocka_unit_test(test_session_consumer_cap),
	    cmocka_unit_test(test_cancel_owner),
	    cmocka_unit_test(test_cancelled_to_owner),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
