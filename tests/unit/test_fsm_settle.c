/* test_fsm_settle: ack, nack, extend, redelivery deadlines, max deliveries
 * and dead-lettering. */
#include "test_fsm_util.h"

static void test_ack_errors(void **state)
{
	struct fsm *f = fsm_new(NULL);
	struct rec *r = rec_new();

	(void)state;
	assert_int_equal(declare(f, "q", NULL, r), FSM_OK);
	assert_int_equal(publish(f, "q", "", "a", r), FSM_OK);
	assert_int_equal(settle(f, FSM_CMD_ACK, 9, 1, 0, 0, r), FSM_ENOQUEUE);
	/* Never delivered: not ackable. */
	assert_int_equal(settle(f, FSM_CMD_ACK, 1, 1, 0, 0, r), FSM_ENOMSG);
	assert_int_equal(settle(f, FSM_CMD_ACK, 1, 7, 0, 0, r), FSM_ENOMSG);
	assert_int_equal(settle(f, FSM_CMD_NACK, 1, 1, 0, 0, r), FSM_ENOMSG);
	assert_int_equal(settle(f, FSM_CMD_NACK, 1, 1, 5, 0, r), FSM_EINVAL);
	assert_int_equal(settle(f, FSM_CMD_EXTEND, 1, 1, 0, 0, r), FSM_ENOMSG);
	assert_int_equal(get_msgs(f, "q", 1, 1, 0, 0, r), FSM_OK);
	assert_int_equal(settle(f, FSM_CMD_ACK, 1, 1, 0, 0, r), FSM_OK);
	assert_int_equal(settle(f, FSM_CMD_ACK, 1, 1, 0, 0, r), FSM_ENOMSG);
	assert_int_equal(qstats(f, "q").acked, 1);
	assert_int_equal(qstats(f, "q").ready + qstats(f, "q").in_flight, 0);
	fsm_free(f);
	free(r);
}

static void test_deadline_extend_late_ack(void **state)
{
	struct fsm *f = fsm_new(NULL);
	struct rec *r = rec_new();
	struct fsm_queue_opts o = {0};

	(void)state;
	o.ack_timeout = 100;
	assert_int_equal(declare(f, "q", &o, r), FSM_OK);
	assert_int_equal(publish(f, "q", "", "a", r), FSM_OK);
	assert_int_equal(get_msgs(f, "q", 1, 1, 0, 0, r), FSM_OK);
	assert_int_equal(fsm_next_deadline(f), 1100);
	assert_int_equal(settle(f, FSM_CMD_EXTEND, 1, 1, 0, 500, r), FSM_OK);
	assert_int_equal(fsm_next_deadline(f), 1500);
	assert_int_equal(tick(f, 1499, r), FSM_OK);
	assert_int_equal(qstats(f, "q").in_flight, 1);
	assert_int_equal(tick(f, 1500, r), FSM_OK);
	assert_int_equal(qstats(f, "q").in_flight, 0);
	assert_int_equal(qstats(f, "q").ready, 1);
	assert_int_equal(fsm_next_deadline(f), UINT64_MAX);
	/* A late ack of a requeued message is honoured. */
	assert_int_equal(settle(f, FSM_CMD_EXTEND, 1, 1, 0, 5, r), FSM_ENOMSG);
	assert_int_equal(settle(f, FSM_CMD_ACK, 1, 1, 0, 0, r), FSM_OK);
	assert_int_equal(qstats(f, "q").ready, 0);
	/* Nack requeue keeps the count; the next delivery is count 2. */
	assert_int_equal(publish(f, "q", "", "b", r), FSM_OK);
	assert_int_equal(get_msgs(f, "q", 1, 1, 0, 0, r), FSM_OK);
	assert_int_equal(settle(f, FSM_CMD_NACK, 1, 2, FSM_NACK_REQUEUE, 0, r),
	                 FSM_OK);
	r->n_eff = 0;
	assert_int_equal(get_msgs(f, "q", 1, 1, 0, 0, r), FSM_OK);
	assert_int_equal(r->eff[0].seq, 2);
	assert_int_equal(r->eff[0].delivery_count, 2);
	fsm_free(f);
	free(r);
}

static void test_deadletter(void **state)
{
	struct fsm *f = fsm_new(NULL);
	struct rec *r = rec_new();
	struct fsm_queue_opts o = {0};
	struct fsm_queue_stats s;

	(void)state;
	o.ack_timeout = 10;
	o.max_deliveries = 2;
	o.dlq = "dlq";
	assert_int_equal(declare(f, "q", &o, r), FSM_OK);
	o.dlq = "missing";
	assert_int_equal(declare(f, "q2", &o, r), FSM_OK);
	assert_int_equal(declare(f, "dlq", NULL, r), FSM_OK);
	assert_int_equal(publish(f, "q", "", "a", r), FSM_OK);
	assert_int_equal(publish(f, "q", "", "b", r), FSM_OK);
	assert_int_equal(publish(f, "q2", "", "c", r), FSM_OK);
	assert_int_equal(get_msgs(f, "q", 1, 2, 0, 0, r), FSM_OK);
	assert_int_equal(get_msgs(f, "q2", 1, 1, 0, 0, r), FSM_OK);
	/* Nack to the dead-letter queue. */
	assert_int_equal(
	    settle(f, FSM_CMD_NACK, 1, 2, FSM_NACK_DEADLETTER, 0, r), FSM_OK);
	assert_int_equal(qstats(f, "dlq").ready, 1);
	assert_int_equal(qstats(f, "q").dead_lettered, 1);
	assert_int_equal(tick(f, 1010, r), FSM_OK); /* deadline: count 1 */
	assert_int_equal(qstats(f, "q").ready, 1);
	assert_int_equal(qstats(f, "q2").ready, 1);
	assert_int_equal(get_msgs(f, "q", 1, 2, 0, 0, r), FSM_OK);
	assert_int_equal(get_msgs(f, "q2", 1, 2, 0, 0, r), FSM_OK);
	assert_int_equal(tick(f, 1020, r), FSM_OK); /* count 2 = max */
	s = qstats(f, "q");
	assert_int_equal(s.ready + s.in_flight, 0);
	assert_int_equal(s.dead_lettered, 2);
	s = qstats(f, "q2");
	assert_int_equal(s.ready + s.in_flight, 0);
	assert_int_equal(s.dead_lettered, 1); /* dropped: no such DLQ */
	r->n_eff = 0;
	assert_int_equal(get_msgs(f, "dlq", 1, 5, 0, 0, r), FSM_OK);
	assert_int_equal(r->n_eff, 2);
	assert_string_equal(r->eff[0].hdr,
	                    "x-death-reason=nack;x-death-queue=q;");
	assert_memory_equal(r->eff[0].payload, "b", 1);
	assert_string_equal(r->eff[1].hdr,
	                    "x-death-reason=max-deliveries;x-death-queue=q;");
	assert_int_equal(r->eff[1].delivery_count, 1);
	fsm_free(f);
	free(r);
}

static void test_expire_to_dlq(void **state)
{
	struct fsm *f = fsm_new(NULL);
	struct rec *r = rec_new();
	struct fsm_queue_opts o = {0};

	(void)state;
	o.message_ttl = 5;
	o.dlq = "d";
	assert_int_equal(declare(f, "q", &o, r), FSM_OK);
	assert_int_equal(declare(f, "d", NULL, r), FSM_OK);
	assert_int_equal(publish(f, "q", "", "a", r), FSM_OK);
	assert_int_equal(tick(f, 1005, r), FSM_OK);
	assert_int_equal(qstats(f, "q").expired, 1);
	r->n_eff = 0;
	assert_int_equal(get_msgs(f, "d", 1, 5, 0, 0, r), FSM_OK);
	assert_int_equal(r->n_eff, 1);
	assert_string_equal(r->eff[0].hdr,
	                    "x-death-reason=expired;x-death-queue=q;");
	fsm_free(f);
	free(r);
}

/* Deadlines that break the queue's FIFO order (extend, a shorter get
 * timeout) fire in (deadline, seq) order, also after a restore. */
static void run_fifo_tail(struct fsm *f, struct rec *r)
{
	assert_int_equal(tick(f, 1010, r), FSM_OK);
	assert_int_equal(qstats(f, "q").ready, 1); /* seq 3 */
	assert_int_equal(fsm_next_deadline(f), 1050);
	assert_int_equal(tick(f, 1050, r), FSM_OK);
	assert_int_equal(qstats(f, "q").ready, 3); /* seqs 6, 7 */
	assert_int_equal(fsm_next_deadline(f), 1100);
	/* An ack of a FIFO member in the middle. */
	assert_int_equal(settle(f, FSM_CMD_ACK, 1, 4, 0, 0, r), FSM_OK);
	assert_int_equal(tick(f, 1100, r), FSM_OK);
	assert_int_equal(qstats(f, "q").ready, 5); /* seqs 2, 5 */
	assert_int_equal(qstats(f, "q").in_flight, 1);
	assert_int_equal(fsm_next_deadline(f), 1500);
	r->n_eff = 0;
	assert_int_equal(get_msgs(f, "q", 1, 10, 0, 9, r), FSM_OK);
	assert_int_equal(r->n_eff, 5);
	assert_int_equal(r->eff[0].seq, 2);
	assert_int_equal(r->eff[1].seq, 3);
	assert_int_equal(r->eff[2].seq, 5);
	assert_int_equal(r->eff[3].seq, 6);
	assert_int_equal(r->eff[4].seq, 7);
	assert_int_equal(r->eff[4].delivery_count, 2);
	/* The redeliveries (deadline 1200) queue behind seq 1 (1500) in
	 * the heap, not in the FIFO. */
	assert_int_equal(fsm_next_deadline(f), 1200);
	assert_int_equal(tick(f, 1200, r), FSM_OK);
	assert_int_equal(qstats(f, "q").in_flight, 1);
	assert_int_equal(tick(f, 1500, r), FSM_OK);
	assert_int_equal(qstats(f, "q").in_flight, 0);
	assert_int_equal(qstats(f, "q").ready, 6);
	assert_int_equal(fsm_next_deadline(f), UINT64_MAX);
}

static void test_fifo_order(void **state)
{
	struct fsm *f = fsm_new(NULL), *g = fsm_new(NULL);
	struct rec *r = rec_new(), *rg = rec_new();
	struct fsm_queue_opts o = {0};
	size_t len;
	void *buf;
	int i;

	(void)state;
	o.ack_timeout = 100;
	assert_int_equal(declare(f, "q", &o, r), FSM_OK);
	for (i = 0; i < 5; i++)
		assert_int_equal(publish(f, "q", "", "m", r), FSM_OK);
	assert_int_equal(get_msgs(f, "q", 1, 5, 0, 1, r), FSM_OK);
	assert_int_equal(fsm_next_deadline(f), 1100);
	/* Earlier than the FIFO: seq 3 moves to the heap. */
	assert_int_equal(settle(f, FSM_CMD_EXTEND, 1, 3, 0, 10, r), FSM_OK);
	assert_int_equal(fsm_next_deadline(f), 1010);
	/* The head moves to the tail. */
	assert_int_equal(settle(f, FSM_CMD_EXTEND, 1, 1, 0, 500, r), FSM_OK);
	assert_int_equal(publish(f, "q", "", "m", r), FSM_OK);
	assert_int_equal(publish(f, "q", "", "m", r), FSM_OK);
	/* A shorter get timeout than the FIFO's tail. */
	assert_int_equal(get_msgs(f, "q", 1, 5, 50, 2, r), FSM_OK);
	assert_int_equal(last_res(r)->u.get.count, 2);
	assert_int_equal(fsm_next_deadline(f), 1010);
	buf = snap(f, &len);
	assert_int_equal(fsm_restore(g, buf, len), FSM_OK);
	free(buf);
	assert_true(snap_equal(f, g));
	assert_int_equal(fsm_next_deadline(g), 1010);
	run_fifo_tail(f, r);
	run_fifo_tail(g, rg);
	assert_true(snap_equal(f, g));
	fsm_free(f);
	fsm_free(g);
	free(r);
	free(rg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ack_errors),
	    cmocka_unit_test(test_deadline_extend_late_ack),
	    cmocka_unit_test(test_deadletter),
	    cmocka_unit_test(test_expire_to_dlq),
	    cmocka_unit_test(test_fifo_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
