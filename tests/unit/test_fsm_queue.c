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

/* A message that leaves its queue within the dedup window (ack,
 * dead-letter, purge) still deduplicates; the window still ends it. */
static void test_dedup_after_leave(void **state)
{
	struct fsm *f = fsm_new(NULL), *g = fsm_new(NULL);
	struct rec *r = rec_new();
	struct fsm_queue_opts o = {0};
	uint64_t mem;
	size_t len;
	void *buf;

	(void)state;
	assert_int_equal(declare(f, "dl", NULL, r), FSM_OK);
	o.dedup_window = 100;
	o.dlq = "dl";
	assert_int_equal(declare(f, "q", &o, r), FSM_OK); /* id 2 */
	assert_int_equal(publish(f, "q", "a", "1", r), FSM_OK);
	assert_int_equal(publish(f, "q", "b", "2", r), FSM_OK);
	assert_int_equal(publish(f, "q", "c", "3", r), FSM_OK);
	assert_int_equal(publish(f, "q", "", "4", r), FSM_OK);
	assert_int_equal(get_msgs(f, "q", 1, 4, 0, 1, r), FSM_OK);
	assert_int_equal(settle(f, FSM_CMD_ACK, 2, 1, 0, 0, r), FSM_OK);
	assert_int_equal(settle(f, FSM_CMD_ACK, 2, 1, 0, 0, r), FSM_ENOMSG);
	assert_int_equal(publish(f, "q", "a", "1", r), FSM_OK);
	assert_int_equal(last_res(r)->u.publish.duplicate, 1);
	assert_int_equal(last_res(r)->u.publish.seq, 1);
	assert_int_equal(
	    settle(f, FSM_CMD_NACK, 2, 2, FSM_NACK_DEADLETTER, 0, r), FSM_OK);
	assert_int_equal(publish(f, "q", "b", "2", r), FSM_OK);
	assert_int_equal(last_res(r)->u.publish.duplicate, 1);
	assert_int_equal(last_res(r)->u.publish.seq, 2);
	/* The dead-letter copy does not enter the DLQ's dedup index. */
	assert_int_equal(publish(f, "dl", "b", "2", r), FSM_OK);
	assert_int_equal(last_res(r)->u.publish.duplicate, 0);
	assert_int_equal(last_res(r)->u.publish.seq, 2);
	assert_int_equal(publish(f, "q", "d", "5", r), FSM_OK); /* seq 5 */
	assert_int_equal(publish(f, "q", "", "6", r), FSM_OK);  /* seq 6 */
	assert_int_equal(
	    apply(f,
	          &(struct fsm_cmd){.type = FSM_CMD_QUEUE_PURGE,
	                            .session = 1,
	                            .u.qdelete = {.name = "q", .name_len = 1}},
	          r),
	    FSM_OK);
	assert_int_equal(last_res(r)->u.removed.removed, 2);
	assert_int_equal(publish(f, "q", "d", "5", r), FSM_OK);
	assert_int_equal(last_res(r)->u.publish.duplicate, 1);
	assert_int_equal(last_res(r)->u.publish.seq, 5);
	assert_int_equal(qstats(f, "q").deduplicated, 3);
	assert_int_equal(qstats(f, "q").in_flight, 2); /* seqs 3, 4 */
	assert_int_equal(qstats(f, "q").ready, 0);
	/* Tombstones survive a snapshot, byte for byte. */
	buf = snap(f, &len);
	assert_int_equal(fsm_restore(g, buf, len), FSM_OK);
	free(buf);
	assert_true(snap_equal(f, g));
	assert_int_equal(publish(g, "q", "a", "1", r), FSM_OK);
	assert_int_equal(last_res(r)->u.publish.seq, 1);
	assert_int_equal(publish(g, "q", "c", "3", r), FSM_OK);
	assert_int_equal(last_res(r)->u.publish.duplicate, 1);
	assert_int_equal(last_res(r)->u.publish.seq, 3);
	/* Past the window every entry goes; a new publish forgets them. */
	mem = fsm_memory(f);
	test_time = 1100;
	assert_int_equal(publish(f, "q", "a", "1", r), FSM_OK);
	assert_int_equal(last_res(r)->u.publish.duplicate, 0);
	assert_int_equal(last_res(r)->u.publish.seq, 7);
	assert_true(fsm_memory(f) < mem);
	/* Acking a message whose window passed leaves no tombstone. */
	assert_int_equal(settle(f, FSM_CMD_ACK, 2, 3, 0, 0, r), FSM_OK);
	assert_int_equal(publish(f, "q", "c", "3", r), FSM_OK);
	assert_int_equal(last_res(r)->u.publish.duplicate, 0);
	assert_int_equal(last_res(r)->u.publish.seq, 8);
	test_time = 1000;
	fsm_free(f);
	fsm_free(g);
	free(r);
}

/* Dedup against a reference: ids from a small set, a small window and
 * index bound, messages leaving by ack, dead-letter and purge, and
 * snapshot round trips on the way. */
struct dd_ref {
	struct {
		int id;
		uint64_t seq, time;
	} e[64];
	uint32_t n;
	uint64_t last_seq;
};

static void test_dedup_model(void **state)
{
	struct fsm_config cfg;
	struct fsm *f;
	struct rec *r = rec_new();
	struct fsm_queue_opts o = {0};
	struct dd_ref ref;
	uint64_t rng = 12345, seqs[256], dups = 0;
	uint32_t nseqs = 0, step, i;

	(void)state;
	memset(&ref, 0, sizeof(ref));
	fsm_config_default(&cfg);
	cfg.max_dedup_entries = 6;
	f = fsm_new(&cfg);
	assert_int_equal(declare(f, "dl", NULL, r), FSM_OK);
	o.dedup_window = 30;
	o.dlq = "dl";
	assert_int_equal(declare(f, "q", &o, r), FSM_OK);
	for (step = 0; step < 20000; step++) {
		uint32_t p;

		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		p = (uint32_t)(rng >> 33) % 100;
		if (p < 40) {
			int id = (int)((rng >> 20) % 11) - 1;
			char ids[8] = "";
			const struct fsm_result *res;
			int found = -1;

			if (id >= 0)
				snprintf(ids, sizeof(ids), "i%d", id);
			assert_int_equal(publish(f, "q", ids, "x", r), FSM_OK);
			res = last_res(r);
			for (i = 0; id >= 0 && i < ref.n; i++)
				if (ref.e[i].id == id &&
				    ref.e[i].time + 30 > test_time)
					found = (int)i;
			if (found >= 0) {
				assert_int_equal(res->u.publish.duplicate, 1);
				assert_int_equal(res->u.publish.seq,
				                 ref.e[found].seq);
				dups++;
				continue;
			}
			assert_int_equal(res->u.publish.duplicate, 0);
			assert_int_equal(res->u.publish.seq, ++ref.last_seq);
			if (id < 0)
				continue;
			while (ref.n > 0 && ref.e[0].time + 30 <= test_time) {
				memmove(&ref.e[0], &ref.e[1],
				        --ref.n * sizeof(ref.e[0]));
			}
			if (ref.n >= 6)
				memmove(&ref.e[0], &ref.e[1],
				        --ref.n * sizeof(ref.e[0]));
			ref.e[ref.n].id = id;
			ref.e[ref.n].seq = ref.last_seq;
			ref.e[ref.n].time = test_time;
			ref.n++;
		} else if (p < 55) {
			uint32_t k = r->n_eff = 0;

			assert_int_equal(get_msgs(f, "q", 1, 3, 0, 1, r),
			                 FSM_OK);
			for (k = 0; k < r->n_eff && nseqs < 256; k++)
				seqs[nseqs++] = r->eff[k].seq;
		} else if (p < 80 && nseqs > 0) {
			uint32_t k = (uint32_t)(rng >> 40) % nseqs;
			uint8_t type = p < 72 ? FSM_CMD_ACK : FSM_CMD_NACK;

			(void)settle(f, type, 2, seqs[k],
			             (uint8_t)((rng >> 50) & 1), 0, r);
			seqs[k] = seqs[--nseqs];
		} else if (p < 82) {
			assert_int_equal(
			    apply(
			        f,
			        &(struct fsm_cmd){
			            .type = FSM_CMD_QUEUE_PURGE,
			            .session = 1,
			            .u.qdelete = {.name = "q", .name_len = 1}},
			        r),
			    FSM_OK);
		} else if (p < 98) {
			test_time += (rng >> 45) % 6;
		} else {
			struct fsm *g = fsm_new(NULL);
			size_t len;
			void *buf = snap(f, &len);

			assert_int_equal(fsm_restore(g, buf, len), FSM_OK);
			free(buf);
			assert_true(snap_equal(f, g));
			fsm_free(f);
			f = g;
		}
	}
	assert_true(dups > 1000);
	printf("dedup model: %llu duplicates in 20000 steps\n",
	       (unsigned long long)dups);
	test_time = 1000;
	fsm_free(f);
	free(r);
}

/* The seq index with holes: messages stuck far behind the head keep only
 * their chunks; everything else is given back. */
static void test_seq_holes(void **state)
{
	struct fsm *f = fsm_new(NULL), *g = fsm_new(NULL);
	struct fsm_cmd c = cmd_of(FSM_CMD_PUBLISH), a = cmd_of(FSM_CMD_ACK);
	struct rec *r = rec_new();
	uint64_t mem0, mem_full, mem_holes, i;
	size_t len;
	void *buf;

	(void)state;
	assert_int_equal(declare(f, "h", NULL, r), FSM_OK);
	mem0 = fsm_memory(f);
	c.time = a.time = 1000;
	c.u.publish.key = "h";
	c.u.publish.key_len = 1;
	c.u.publish.msg.payload = "0123456789";
	c.u.publish.msg.payload_len = 10;
	a.u.settle.queue_id = 1;
	for (i = 0; i < 5000; i++)
		assert_int_equal(fsm_apply(f, &c, NULL), FSM_OK);
	for (i = 0; i < 5; i++)
		assert_int_equal(get_msgs(f, "h", 1, 1000, 1000000, 1, NULL),
		                 FSM_OK);
	mem_full = fsm_memory(f);
	for (i = 1; i <= 5000; i++) {
		a.u.settle.seq = i;
		if (i != 2 && i != 2600)
			assert_int_equal(fsm_apply(f, &a, NULL), FSM_OK);
	}
	assert_int_equal(fsm_check(f), 0);
	mem_holes = fsm_memory(f);
	assert_true(mem_holes - mem0 < (mem_full - mem0) / 4);
	/* Far ahead of the stuck ones. */
	for (i = 0; i < 20000; i++) {
		assert_int_equal(fsm_apply(f, &c, NULL), FSM_OK);
		assert_int_equal(get_msgs(f, "h", 1, 1, 1000000, 1, NULL),
		                 FSM_OK);
		a.u.settle.seq = 5001 + i;
		assert_int_equal(fsm_apply(f, &a, NULL), FSM_OK);
	}
	assert_int_equal(fsm_check(f), 0);
	assert_true(fsm_memory(f) <= mem_holes + 4096);
	assert_int_equal(qstats(f, "h").in_flight, 2);
	buf = snap(f, &len);
	assert_int_equal(fsm_restore(g, buf, len), FSM_OK);
	free(buf);
	assert_true(snap_equal(f, g));
	a.u.settle.seq = 2600;
	assert_int_equal(apply(g, &a, r), FSM_OK);
	assert_int_equal(settle(g, FSM_CMD_NACK, 1, 2, 0, 0, r), FSM_OK);
	r->n_eff = 0;
	assert_int_equal(get_msgs(g, "h", 1, 5, 0, 1, r), FSM_OK);
	assert_int_equal(r->n_eff, 1);
	assert_int_equal(r->eff[0].seq, 2);
	a.u.settle.seq = 2;
	assert_int_equal(apply(g, &a, r), FSM_OK);
	assert_int_equal(apply(g, &a, r), FSM_ENOMSG);
	a.u.settle.seq = 25000;
	assert_int_equal(apply(g, &a, r), FSM_ENOMSG);
	assert_int_equal(qstats(g, "h").in_flight + qstats(g, "h").ready, 0);
	fsm_free(f);
	fsm_free(g);
	free(r);
}

/* ---- The whole message counts (issue 10 item 5): max_payload and a
 * queue's max_bytes see id, properties (with their length prefixes),
 * headers and payload; stats `bytes` too. */
static void test_whole_message_limits(void **state)
{
	struct fsm_config cfg;
	struct fsm *f;
	struct rec *r = rec_new();
	struct fsm_queue_opts o = {0};
	struct fsm_header hv[16];
	struct fsm_msg_in m;
	char *val = malloc(65536);
	int pass, i;

	(void)state;
	assert_non_null(val);
	memset(val, 'h', 65536);
	for (i = 0; i < 16; i++) {
		hv[i].key = "k";
		hv[i].key_len = 1;
		hv[i].val = val;
		hv[i].val_len = 65536;
	}
	/* 20 publishes with 1 MiB of headers to a queue of max bytes 1000:
	 * too big for the default max_payload, and when that is raised,
	 * the queue is full. */
	for (pass = 0; pass < 2; pass++) {
		fsm_config_default(&cfg);
		if (pass == 1)
			cfg.max_payload = 4u << 20;
		f = fsm_new(&cfg);
		o.max_bytes = 1000;
		assert_int_equal(declare(f, "q", &o, r), FSM_OK);
		memset(&m, 0, sizeof(m));
		m.payload = "x";
		m.payload_len = 1;
		m.headers = hv;
		m.n_headers = 16;
		for (i = 0; i < 20; i++)
			assert_int_equal(publish_msg(f, "q", &m, r),
			                 pass == 0 ? FSM_ETOOBIG : FSM_EFULL);
		assert_int_equal(qstats(f, "q").published, 0);
		assert_int_equal(qstats(f, "q").bytes, 0);
		fsm_free(f);
	}
	/* Stats: id "abc" (2 + 3), type "t" (4 + 16 + 1), payload 5. */
	fsm_config_default(&cfg);
	cfg.max_payload = 31;
	f = fsm_new(&cfg);
	o.max_bytes = 40;
	assert_int_equal(declare(f, "q", &o, r), FSM_OK);
	memset(&m, 0, sizeof(m));
	m.id = "abc";
	m.id_len = 3;
	m.type = "t";
	m.type_len = 1;
	m.payload = "hello";
	m.payload_len = 5;
	assert_int_equal(publish_msg(f, "q", &m, r), FSM_OK);
	assert_int_equal(qstats(f, "q").bytes, 31);
	m.id = "abd";
	assert_int_equal(publish_msg(f, "q", &m, r), FSM_EFULL);
	m.payload_len = 6; /* one byte over max_payload */
	assert_int_equal(publish_msg(f, "q", &m, r), FSM_ETOOBIG);
	/* A header alone can make a message too big. */
	memset(&m, 0, sizeof(m));
	hv[0].val_len = 20;
	m.headers = hv;
	m.n_headers = 1;
	assert_int_equal(publish_msg(f, "q", &m, r), FSM_ETOOBIG);
	/* Leaving frees the whole size. */
	assert_int_equal(get_msgs(f, "q", 1, 1, 0, 0, r), FSM_OK);
	assert_int_equal(settle(f, FSM_CMD_ACK, 1, 1, 0, 0, r), FSM_OK);
	assert_int_equal(qstats(f, "q").bytes, 0);
	fsm_free(f);
	free(val);
	free(r);
}

static void fill_topic(struct fsm *f, struct rec *r)
{
	struct fsm_cmd c = cmd_of(FSM_CMD_TOPIC_DECLARE);

	c.u.topic.name = "t";
	c.u.topic.name_len = 1;
	c.u.topic.kind = FSM_TOPIC_FANOUT;
	assert_int_equal(apply(f, &c, r), FSM_OK);
	c = cmd_of(FSM_CMD_BIND);
	c.u.bind.topic = "t";
	c.u.bind.topic_len = 1;
	c.u.bind.queue = "q";
	c.u.bind.queue_len = 1;
	assert_int_equal(apply(f, &c, r), FSM_OK);
	c.u.bind.queue = "q2";
	c.u.bind.queue_len = 2;
	assert_int_equal(apply(f, &c, r), FSM_OK);
}

/* ---- The state's bound (issue 10 item 5): a publish that would take
 * the state past max_memory gets FSM_ECLUSTERFULL and changes nothing
 * (every copy of a topic publish, or none); acks give room back;
 * duplicates and dead-letter moves are not refused. */
static void test_cluster_full(void **state)
{
	struct fsm_config cfg;
	struct fsm *f;
	struct rec *r = rec_new();
	struct fsm_queue_opts o = {0};
	struct fsm_queue_stats s1, s2;
	char payload[1001];
	uint64_t seq;
	int i, rc = FSM_OK;

	(void)state;
	memset(payload, 'p', 1000);
	payload[1000] = 0;
	fsm_config_default(&cfg);
	cfg.max_memory = 256 * 1024;
	f = fsm_new(&cfg);
	o.dlq = "d";
	assert_int_equal(declare(f, "q", &o, r), FSM_OK);
	assert_int_equal(declare(f, "q2", NULL, r), FSM_OK);
	assert_int_equal(declare(f, "d", NULL, r), FSM_OK);
	fill_topic(f, r);
	assert_int_equal(publish(f, "q", "dup", "first", r), FSM_OK);
	/* Topic publishes (two copies) until full: the failing one changes
	 * neither queue. */
	for (i = 0; i < 1000; i++) {
		s1 = qstats(f, "q");
		s2 = qstats(f, "q2");
		rc = publish_full(f, "t", "", "", payload, 0, 0, r);
		if (rc != FSM_OK)
			break;
	}
	assert_int_equal(rc, FSM_ECLUSTERFULL);
	assert_true(i > 50);
	assert_int_equal(qstats(f, "q").published, s1.published);
	assert_int_equal(qstats(f, "q").bytes, s1.bytes);
	assert_int_equal(qstats(f, "q2").published, s2.published);
	/* Then single copies until full. */
	while ((rc = publish(f, "q", "", payload, r)) == FSM_OK)
		;
	assert_int_equal(rc, FSM_ECLUSTERFULL);
	assert_true(fsm_memory(f) <= cfg.max_memory + 4096);
	s1 = qstats(f, "q");
	/* A duplicate allocates nothing: accepted. */
	assert_int_equal(publish(f, "q", "dup", "first", r), FSM_OK);
	assert_int_equal(last_res(r)->u.publish.duplicate, 1);
	/* A dead-letter move is not refused. */
	r->n_eff = 0;
	assert_int_equal(get_msgs(f, "q", 1, 1, 0, 0, r), FSM_OK);
	seq = r->eff[0].seq;
	assert_int_equal(
	    settle(f, FSM_CMD_NACK, 1, seq, FSM_NACK_DEADLETTER, 0, r), FSM_OK);
	assert_int_equal(qstats(f, "d").ready, 1);
	assert_int_equal(publish(f, "q", "", payload, r), FSM_ECLUSTERFULL);
	assert_int_equal(qstats(f, "q").published, s1.published);
	/* Acks free room: publishing works again. */
	r->n_eff = 0;
	assert_int_equal(get_msgs(f, "q", 1, 10, 0, 0, r), FSM_OK);
	assert_int_equal(last_res(r)->u.get.count, 10);
	for (i = 0; i < 10; i++)
		assert_int_equal(
		    settle(f, FSM_CMD_ACK, 1, r->eff[i].seq, 0, 0, r), FSM_OK);
	assert_int_equal(publish(f, "q", "", payload, r), FSM_OK);
	assert_int_equal(publish_full(f, "t", "", "", payload, 0, 0, r),
	                 FSM_OK);
	fsm_free(f);
	free(r);
}

/* Memory per queued message: FSM_MEM_N (default 1,000,000) messages of 100
 * bytes with a 16-byte id, through fsm_apply. */
static void test_memory(void **state)
{
	struct fsm_config cfg;
	struct fsm *f;
	const char *env = getenv("FSM_MEM_N");
	uint64_t n = env ? strtoull(env, NULL, 10) : 1000000, i;
	uint64_t before, after;
	char payload[101], id[17];
	struct fsm_cmd c = cmd_of(FSM_CMD_PUBLISH);

	(void)state;
	/* Two million messages: above the default max_memory. */
	fsm_config_default(&cfg);
	cfg.max_memory = 4ull << 30;
	f = fsm_new(&cfg);
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
	    cmocka_unit_test(test_whole_message_limits),
	    cmocka_unit_test(test_cluster_full),
	    cmocka_unit_test(test_dedup),
	    cmocka_unit_test(test_dedup_after_leave),
	    cmocka_unit_test(test_dedup_model),
	    cmocka_unit_test(test_seq_holes),
	    cmocka_unit_test(test_ttl_delay),
	    cmocka_unit_test(test_memory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
