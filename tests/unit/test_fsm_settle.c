/* test_fsm_settle: ack, nack, extend, redelivery deadlines, max deliveries
 * and dead-lettering. */
#include <stdio.h>

#include "fsm/codec.h"
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

/* ---- Owners of a delivery (issue 10 item 9). NACK and EXTEND need the
 * message in flight to the command's session; ACK takes any session. */
static void test_nack_extend_owner(void **state)
{
	struct fsm *f = fsm_new(NULL);
	struct rec *r = rec_new();
	struct fsm_queue_opts o = {0};
	struct fsm_cmd c;

	(void)state;
	o.ack_timeout = 100;
	assert_int_equal(declare(f, "q", &o, r), FSM_OK);
	assert_int_equal(publish(f, "q", "", "a", r), FSM_OK);
	assert_int_equal(publish(f, "q", "", "b", r), FSM_OK);
	assert_int_equal(publish(f, "q", "", "c", r), FSM_OK);
	assert_int_equal(get_msgs(f, "q", 1, 1, 0, 0, r), FSM_OK); /* seq 1 */
	assert_int_equal(consume(f, "q", 2, 1, r), FSM_OK);        /* seq 2 */
	/* Not theirs: nothing changes. */
	assert_int_equal(settle_as(f, 2, FSM_CMD_NACK, 1, 1, 0, 0, r),
	                 FSM_ENOMSG);
	assert_int_equal(
	    settle_as(f, 2, FSM_CMD_NACK, 1, 1, FSM_NACK_DEADLETTER, 0, r),
	    FSM_ENOMSG);
	assert_int_equal(settle_as(f, 2, FSM_CMD_EXTEND, 1, 1, 0, 5000, r),
	                 FSM_ENOMSG);
	assert_int_equal(settle_as(f, 1, FSM_CMD_NACK, 1, 2, 0, 0, r),
	                 FSM_ENOMSG);
	assert_int_equal(settle_as(f, 1, FSM_CMD_EXTEND, 1, 2, 0, 5000, r),
	                 FSM_ENOMSG);
	assert_int_equal(qstats(f, "q").in_flight, 2);
	assert_int_equal(qstats(f, "q").dead_lettered, 0);
	/* Their own. */
	assert_int_equal(settle_as(f, 2, FSM_CMD_EXTEND, 1, 2, 0, 5000, r),
	                 FSM_OK);
	assert_int_equal(settle_as(f, 1, FSM_CMD_NACK, 1, 1, 0, 0, r), FSM_OK);
	/* Seq 1 goes to session 3: session 1's nack and extend are stale. */
	assert_int_equal(get_msgs(f, "q", 3, 1, 0, 0, r), FSM_OK);
	assert_int_equal(r->eff[r->n_eff - 1].seq, 1);
	assert_int_equal(settle_as(f, 1, FSM_CMD_NACK, 1, 1, 0, 0, r),
	                 FSM_ENOMSG);
	assert_int_equal(settle_as(f, 1, FSM_CMD_EXTEND, 1, 1, 0, 5000, r),
	                 FSM_ENOMSG);
	/* The deadline of seq 1 (get by 3) was not moved by session 1: it
	 * fires at 1100, seq 2's (extended by its owner) does not. */
	assert_int_equal(tick(f, 1100, r), FSM_OK);
	assert_int_equal(qstats(f, "q").in_flight, 1);
	/* ACK: any session, as documented. */
	assert_int_equal(settle_as(f, 9, FSM_CMD_ACK, 1, 2, 0, 0, r), FSM_OK);
	assert_int_equal(qstats(f, "q").acked, 1);
	/* After a session down, its nack is stale too. */
	assert_int_equal(get_msgs(f, "q", 4, 1, 0, 0, r), FSM_OK);
	c = cmd_of(FSM_CMD_SESSION_DOWN);
	c.u.session_down.session = 4;
	assert_int_equal(apply(f, &c, r), FSM_OK);
	assert_int_equal(get_msgs(f, "q", 5, 1, 0, 0, r), FSM_OK);
	assert_int_equal(
	    settle_as(f, 4, FSM_CMD_NACK, 1, r->eff[r->n_eff - 1].seq, 0, 0, r),
	    FSM_ENOMSG);
	fsm_free(f);
	free(r);
}

/* ---- Room for the dead-letter headers (issue 10 item 6). */

struct hdr_rec {
	uint32_t n, n_headers, deaths, originals_ok;
	int encode_rc;
	char queue[16], reason[32];
};

static void hdr_effect(void *data, const struct fsm_delivery *d)
{
	struct hdr_rec *h = data;
	const struct fsm_msg_in *m = &d->msg.m;
	struct fsm_batch b;
	struct fsm_cmd c;
	uint32_t i;

	if (d->type != FSM_EFFECT_DELIVER)
		return;
	h->n++;
	h->n_headers = m->n_headers;
	h->deaths = 0;
	h->originals_ok = 1;
	for (i = 0; i < m->n_headers; i++) {
		const struct fsm_header *x = &m->headers[i];
		char k[16];

		if (x->key_len > 8 && memcmp(x->key, "x-death-", 8) == 0) {
			char *dst = x->key_len == 13 ? h->queue : h->reason;

			h->deaths++;
			memcpy(dst, x->val, x->val_len < 15 ? x->val_len : 15);
			dst[x->val_len < 15 ? x->val_len : 15] = 0;
			continue;
		}
		snprintf(k, sizeof(k), "k%04u", i);
		if (x->key_len != 5 || memcmp(x->key, k, 5) != 0)
			h->originals_ok = 0;
	}
	/* The delivered message fits the codec (as a publish of it). */
	memset(&c, 0, sizeof(c));
	c.type = FSM_CMD_PUBLISH;
	c.u.publish.key = "x";
	c.u.publish.key_len = 1;
	c.u.publish.msg = *m;
	fsm_batch_init(&b);
	h->encode_rc = fsm_batch_add(&b, &c);
	fsm_batch_close(&b);
}

static int hdr_apply(struct fsm *f, struct fsm_cmd *c, struct hdr_rec *h)
{
	struct fsm_sink s = {h, NULL, hdr_effect};
	int rc;

	c->time = test_time;
	rc = fsm_apply(f, c, &s);
	assert_int_equal(fsm_check(f), 0);
	return rc;
}

static void test_dlq_header_room(void **state)
{
	struct fsm_config cfg;
	struct fsm *f;
	struct rec *r = rec_new();
	struct fsm_queue_opts o = {0};
	struct fsm_header *hv;
	struct fsm_msg_in m;
	struct hdr_rec h;
	struct fsm_cmd c;
	char(*keys)[8];
	uint32_t i, n;

	(void)state;
	fsm_config_default(&cfg);
	n = cfg.max_headers;
	assert_int_equal(n + FSM_DLQ_HEADERS, FSM_CODEC_MAX_HEADERS);
	f = fsm_new(&cfg);
	hv = calloc(n + 1, sizeof(*hv));
	keys = calloc(n + 1, sizeof(*keys));
	assert_non_null(hv);
	assert_non_null(keys);
	for (i = 0; i <= n; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%04u", i);
		hv[i].key = keys[i];
		hv[i].key_len = 5;
		hv[i].val = "v";
		hv[i].val_len = 1;
	}
	o.dlq = "d1";
	assert_int_equal(declare(f, "q", &o, r), FSM_OK);
	o.dlq = "d2";
	assert_int_equal(declare(f, "d1", &o, r), FSM_OK);
	assert_int_equal(declare(f, "d2", NULL, r), FSM_OK);
	memset(&m, 0, sizeof(m));
	m.payload = "p";
	m.payload_len = 1;
	m.headers = hv;
	m.n_headers = n + 1;
	assert_int_equal(publish_msg(f, "q", &m, r), FSM_EINVAL);
	assert_int_equal(qstats(f, "q").published, 0);
	m.n_headers = n;
	assert_int_equal(publish_msg(f, "q", &m, r), FSM_OK);
	/* q -> d1: every header plus the two, and it encodes. */
	assert_int_equal(get_msgs(f, "q", 1, 1, 0, 0, r), FSM_OK);
	assert_int_equal(
	    settle(f, FSM_CMD_NACK, 1, 1, FSM_NACK_DEADLETTER, 0, r), FSM_OK);
	memset(&h, 0, sizeof(h));
	c = cmd_of(FSM_CMD_GET);
	c.u.get.queue = "d1";
	c.u.get.queue_len = 2;
	c.u.get.max = 1;
	assert_int_equal(hdr_apply(f, &c, &h), FSM_OK);
	assert_int_equal(h.n, 1);
	assert_int_equal(h.n_headers, n + FSM_DLQ_HEADERS);
	assert_int_equal(h.deaths, 2);
	assert_true(h.originals_ok);
	assert_string_equal(h.queue, "q");
	assert_string_equal(h.reason, "nack");
	assert_int_equal(h.encode_rc, 0);
	/* d1 -> d2: the two headers are replaced, not added again. */
	assert_int_equal(
	    settle(f, FSM_CMD_NACK, 2, 1, FSM_NACK_DEADLETTER, 0, r), FSM_OK);
	memset(&h, 0, sizeof(h));
	c.u.get.queue = "d2";
	assert_int_equal(hdr_apply(f, &c, &h), FSM_OK);
	assert_int_equal(h.n, 1);
	assert_int_equal(h.n_headers, n + FSM_DLQ_HEADERS);
	assert_int_equal(h.deaths, 2);
	assert_true(h.originals_ok);
	assert_string_equal(h.queue, "d1");
	assert_int_equal(h.encode_rc, 0);
	free(hv);
	free(keys);
	fsm_free(f);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ack_errors),
	    cmocka_unit_test(test_deadline_extend_late_ack),
	    cmocka_unit_test(test_deadletter),
	    cmocka_unit_test(test_expire_to_dlq),
	    cmocka_unit_test(test_fifo_order),
	    cmocka_unit_test(test_nack_extend_owner),
	    cmocka_unit_test(test_dlq_header_room),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
