/* test_fsm_snapshot: snapshot/restore round trips, byte identity, and
 * rejection of malformed snapshots without touching the state. */
#include <stdio.h>

#include "test_fsm_util.h"

/* A state with a bit of everything: options, DLQ, TTL, delay, in-flight
 * deliveries to consumers and gets, dedup entries, topics and bindings. */
static struct fsm *build(void)
{
	struct fsm *f = fsm_new(NULL);
	struct fsm_queue_opts o = {0};
	struct fsm_cmd c;
	int i;

	o.dlq = "dead";
	o.max_deliveries = 2;
	o.ack_timeout = 100;
	o.message_ttl = 10000;
	assert_int_equal(declare(f, "work", &o, NULL), FSM_OK);
	memset(&o, 0, sizeof(o));
	o.delay = 500;
	assert_int_equal(declare(f, "later", &o, NULL), FSM_OK);
	assert_int_equal(declare(f, "dead", NULL, NULL), FSM_OK);
	c = cmd_of(FSM_CMD_TOPIC_DECLARE);
	c.u.topic.name = "t";
	c.u.topic.name_len = 1;
	c.u.topic.kind = FSM_TOPIC_TOPIC;
	assert_int_equal(apply(f, &c, NULL), FSM_OK);
	c = cmd_of(FSM_CMD_BIND);
	c.u.bind.topic = "t";
	c.u.bind.topic_len = 1;
	c.u.bind.queue = "later";
	c.u.bind.queue_len = 5;
	c.u.bind.key = "a.#";
	c.u.bind.key_len = 3;
	assert_int_equal(apply(f, &c, NULL), FSM_OK);
	for (i = 0; i < 20; i++) {
		char id[8];

		snprintf(id, sizeof(id), "m%d", i % 15);
		assert_int_equal(publish(f, "work", id, "payload", NULL),
		                 FSM_OK);
	}
	assert_int_equal(publish_full(f, "t", "a.b", "x", "hello", 0, 0, NULL),
	                 FSM_OK);
	assert_int_equal(consume(f, "work", 3, 4, NULL), FSM_OK);
	assert_int_equal(get_msgs(f, "work", 4, 3, 70, 1, NULL), FSM_OK);
	assert_int_equal(settle(f, FSM_CMD_ACK, 1, 1, 0, 0, NULL), FSM_OK);
	assert_int_equal(settle_as(f, 3, FSM_CMD_NACK, 1, 2, 1, 0, NULL),
	                 FSM_OK);
	assert_int_equal(tick(f, 1150, NULL), FSM_OK);
	return f;
}

static void test_roundtrip(void **state)
{
	struct fsm *f = build(), *g = fsm_new(NULL);
	size_t l1, l2;
	void *s1 = snap(f, &l1), *s2;
	uint64_t mem;

	(void)state;
	assert_int_equal(fsm_restore(g, s1, l1), 0);
	assert_int_equal(fsm_check(g), 0);
	s2 = snap(g, &l2);
	assert_int_equal(l1, l2);
	assert_memory_equal(s1, s2, l1);
	assert_int_equal(fsm_next_deadline(f), fsm_next_deadline(g));
	assert_int_equal(fsm_now(f), fsm_now(g));
	assert_int_equal(fsm_applied(f), fsm_applied(g));
	assert_true(fsm_applied(g) > 0);
	assert_true(fsm_digest(f) == fsm_digest(g));
	mem = fsm_memory(g);
	assert_true(mem > 0);
	/* Both continue identically. */
	assert_int_equal(tick(f, 5000, NULL), FSM_OK);
	assert_int_equal(tick(g, 5000, NULL), FSM_OK);
	assert_int_equal(publish(f, "work", "m1", "p", NULL), FSM_OK);
	assert_int_equal(publish(g, "work", "m1", "p", NULL), FSM_OK);
	assert_int_equal(tick(f, 20000, NULL), FSM_OK);
	assert_int_equal(tick(g, 20000, NULL), FSM_OK);
	assert_true(snap_equal(f, g));
	assert_true(fsm_digest(f) == fsm_digest(g));
	/* Restore over a non-empty state replaces it. */
	assert_int_equal(fsm_restore(f, s1, l1), 0);
	free(s2);
	s2 = snap(f, &l2);
	assert_int_equal(l1, l2);
	assert_memory_equal(s1, s2, l1);
	free(s1);
	free(s2);
	fsm_free(f);
	fsm_free(g);
}

static void test_malformed(void **state)
{
	struct fsm *f = build(), *g = build();
	size_t l1, l0, lx;
	void *s1 = snap(f, &l1), *s0 = snap(g, &l0), *sx;
	unsigned char *copy = malloc(l1);
	uint64_t rng = 99;
	int i, accepted = 0;

	(void)state;
	assert_non_null(copy);
	assert_int_equal(tick(g, 3000, NULL), FSM_OK); /* make g differ */
	free(s0);
	s0 = snap(g, &l0);
	assert_int_equal(fsm_restore(g, "", 0), FSM_EMALFORMED);
	assert_int_equal(fsm_restore(g, "\x93\x01\x02", 3), FSM_EMALFORMED);
	for (i = 0; i < 2000; i++) {
		size_t n = l1;
		int rc;

		memcpy(copy, s1, l1);
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		if (i % 2)
			n = rng % l1;
		else
			copy[rng % l1] ^=
			    (unsigned char)(1u << (rng >> 60 & 7));
		rc = fsm_restore(g, copy, n);
		if (rc == 0) {
			/* The checksum trailer must catch every flip, even
			 * one inside a payload that would decode fine. */
			accepted++;
			continue;
		}
		assert_int_equal(rc, FSM_EMALFORMED);
		sx = snap(g, &lx);
		assert_int_equal(lx, l0);
		assert_memory_equal(sx, s0, l0);
		free(sx);
	}
	assert_int_equal(accepted, 0);
	free(copy);
	free(s0);
	free(s1);
	fsm_free(f);
	fsm_free(g);
}

static void test_empty(void **state)
{
	struct fsm *f = fsm_new(NULL), *g = fsm_new(NULL);
	size_t l;
	void *s = snap(f, &l);
	struct fsm_config cfg;

	(void)state;
	assert_int_equal(fsm_restore(g, s, l), 0);
	assert_true(snap_equal(f, g));
	free(s);
	fsm_config_default(&cfg);
	cfg.max_name = 0;
	assert_null(fsm_new(&cfg));
	fsm_free(f);
	fsm_free(g);
}

/* A version 1 snapshot, written by the fsm/ of before version 2: queue
 * "dl" (id 1) with a dead-lettered copy of "b" in flight to consumer 1;
 * queue "q" (id 2, dedup window 100 s) where a (seq 1) was acked, b (2)
 * dead-lettered, c (3) is in flight to a get, 4 (no id), d (5) and e (6,
 * TTL) were purged, f (7) is ready. */
static const unsigned char snap_v1[335] = {
    0x99, 0xc4, 0x0a, 0x72, 0x61, 0x66, 0x74, 0x6d, 0x71, 0x2d, 0x66, 0x73,
    0x6d, 0x01, 0x9a, 0xce, 0x00, 0x04, 0x00, 0x00, 0xcc, 0xff, 0xcd, 0x27,
    0x10, 0xce, 0x00, 0x01, 0x86, 0xa0, 0xcd, 0x75, 0x30, 0xce, 0x00, 0x98,
    0x96, 0x80, 0xce, 0x40, 0x00, 0x00, 0x00, 0xce, 0x00, 0x01, 0xd4, 0xc0,
    0xce, 0x00, 0x0f, 0x42, 0x40, 0xcd, 0x03, 0xe8, 0xcd, 0x03, 0xe8, 0x02,
    0x01, 0x92, 0x9a, 0x01, 0xc4, 0x02, 0x64, 0x6c, 0x9b, 0xcd, 0x75, 0x30,
    0x00, 0xc4, 0x00, 0x00, 0x00, 0xce, 0x00, 0x98, 0x96, 0x80, 0xce, 0x40,
    0x00, 0x00, 0x00, 0x00, 0xce, 0x00, 0x01, 0xd4, 0xc0, 0x00, 0x00, 0x96,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x01, 0x91, 0x9b,
    0x01, 0xcd, 0x03, 0xe8, 0x02, 0x01, 0xcd, 0x79, 0x18, 0x00, 0x01, 0x07,
    0xc4, 0x01, 0x62, 0xc4, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x0e, 0x00, 0x00,
    0x00, 0x78, 0x2d, 0x64, 0x65, 0x61, 0x74, 0x68, 0x2d, 0x72, 0x65, 0x61,
    0x73, 0x6f, 0x6e, 0x04, 0x00, 0x00, 0x00, 0x6e, 0x61, 0x63, 0x6b, 0x0d,
    0x00, 0x00, 0x00, 0x78, 0x2d, 0x64, 0x65, 0x61, 0x74, 0x68, 0x2d, 0x71,
    0x75, 0x65, 0x75, 0x65, 0x01, 0x00, 0x00, 0x00, 0x71, 0xc4, 0x01, 0x32,
    0x90, 0x9a, 0x02, 0xc4, 0x01, 0x71, 0x9b, 0xcd, 0x75, 0x30, 0x00, 0xc4,
    0x02, 0x64, 0x6c, 0x00, 0x00, 0xce, 0x00, 0x98, 0x96, 0x80, 0xce, 0x40,
    0x00, 0x00, 0x00, 0x00, 0xce, 0x00, 0x01, 0x86, 0xa0, 0x00, 0x00, 0x96,
    0x07, 0x01, 0x01, 0x00, 0x00, 0x00, 0x07, 0x07, 0x00, 0x00, 0x92, 0x9b,
    0x03, 0xcd, 0x03, 0xe8, 0x02, 0x01, 0xcd, 0x79, 0x18, 0x00, 0x00, 0x07,
    0xc4, 0x01, 0x63, 0xc4, 0x00, 0xc4, 0x01, 0x33, 0x9b, 0x07, 0xcd, 0x03,
    0xe8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc4, 0x01, 0x66, 0xc4, 0x00,
    0xc4, 0x01, 0x37, 0x96, 0x93, 0xc4, 0x01, 0x61, 0xcd, 0x03, 0xe8, 0x01,
    0x93, 0xc4, 0x01, 0x62, 0xcd, 0x03, 0xe8, 0x02, 0x93, 0xc4, 0x01, 0x63,
    0xcd, 0x03, 0xe8, 0x03, 0x93, 0xc4, 0x01, 0x64, 0xcd, 0x03, 0xe8, 0x05,
    0x93, 0xc4, 0x01, 0x65, 0xcd, 0x03, 0xe8, 0x06, 0x93, 0xc4, 0x01, 0x66,
    0xcd, 0x03, 0xe8, 0x07, 0x90, 0x91, 0x94, 0x01, 0x01, 0x07, 0x02,
};

static void dup_of(struct fsm *f, const char *id, uint64_t seq, int dup)
{
	struct rec *r = rec_new();

	assert_int_equal(publish(f, "q", id, "x", r), FSM_OK);
	assert_int_equal(last_res(r)->u.publish.duplicate, dup);
	assert_int_equal(last_res(r)->u.publish.seq, seq);
	free(r);
}

/* Restore reads version 1: its separate dedup entries become marks on
 * the messages still queued and tombstones for the others. */
static void test_version1(void **state)
{
	struct fsm *f = fsm_new(NULL), *g = fsm_new(NULL);
	size_t len;
	void *buf;

	(void)state;
	assert_int_equal(snap_v1[13], 1); /* the version */
	assert_int_equal(fsm_restore(f, snap_v1, sizeof(snap_v1)), FSM_OK);
	assert_int_equal(fsm_check(f), 0);
	assert_int_equal(qstats(f, "q").ready, 1);
	assert_int_equal(qstats(f, "q").in_flight, 1);
	assert_int_equal(qstats(f, "dl").in_flight, 1);
	buf = snap(f, &len);
	assert_int_equal(((unsigned char *)buf)[13], 4);
	assert_int_equal(fsm_restore(g, buf, len), FSM_OK);
	free(buf);
	assert_true(snap_equal(f, g));
	dup_of(f, "a", 1, 1);
	dup_of(f, "b", 2, 1);
	dup_of(f, "c", 3, 1);
	dup_of(f, "d", 5, 1);
	dup_of(f, "e", 6, 1);
	dup_of(f, "f", 7, 1);
	dup_of(f, "g", 8, 0);
	assert_int_equal(settle(f, FSM_CMD_ACK, 2, 3, 0, 0, NULL), FSM_OK);
	dup_of(f, "c", 3, 1);
	assert_int_equal(qstats(f, "q").deduplicated, 7);
	fsm_free(f);
	fsm_free(g);
}

/* A version 3 snapshot, written by the fsm/ of before version 4, under a
 * configuration of max_payload 4000, max_queues 3, max_get 7 (the rest
 * default): queue "q" (id 1, ack timeout 60 s) holding "a" (seq 1, in
 * flight to consumer 1 of session 9), "b" (2) and an id-less message (3),
 * all "hi"; fanout topic "t" bound to "q"; clock 5010. */
static const unsigned char snap_v3[197] = {
    0x99, 0xc4, 0x0a, 0x72, 0x61, 0x66, 0x74, 0x6d, 0x71, 0x2d, 0x66, 0x73,
    0x6d, 0x03, 0x9a, 0xcd, 0x0f, 0xa0, 0xcc, 0xff, 0x03, 0xce, 0x00, 0x01,
    0x86, 0xa0, 0xcd, 0x75, 0x30, 0xce, 0x00, 0x98, 0x96, 0x80, 0xce, 0x40,
    0x00, 0x00, 0x00, 0xce, 0x00, 0x01, 0xd4, 0xc0, 0xce, 0x00, 0x0f, 0x42,
    0x40, 0x07, 0xcd, 0x13, 0x92, 0x01, 0x01, 0x91, 0x99, 0x01, 0xc4, 0x01,
    0x71, 0x9b, 0xcd, 0xea, 0x60, 0x00, 0xc4, 0x00, 0x00, 0x00, 0xce, 0x00,
    0x98, 0x96, 0x80, 0xce, 0x40, 0x00, 0x00, 0x00, 0x00, 0xce, 0x00, 0x01,
    0xd4, 0xc0, 0x00, 0x00, 0x96, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03,
    0x02, 0x00, 0x01, 0x93, 0x9c, 0x01, 0xcd, 0x13, 0x89, 0x02, 0x01, 0xcd,
    0xfd, 0xf2, 0x00, 0x01, 0x09, 0xc4, 0x01, 0x61, 0xc4, 0x00, 0xc4, 0x02,
    0x68, 0x69, 0x01, 0x9c, 0x02, 0xcd, 0x13, 0x8a, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0xc4, 0x01, 0x62, 0xc4, 0x00, 0xc4, 0x02, 0x68, 0x69, 0x01,
    0x9c, 0x03, 0xcd, 0x13, 0x8b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc4,
    0x00, 0xc4, 0x00, 0xc4, 0x02, 0x68, 0x69, 0x00, 0x91, 0x93, 0xc4, 0x01,
    0x74, 0x00, 0x91, 0x92, 0x01, 0xc4, 0x00, 0x91, 0x94, 0x01, 0x01, 0x09,
    0x01, 0x72, 0x6d, 0x71, 0x73, 0x75, 0x6d, 0x30, 0x31, 0x04, 0x44, 0x35,
    0x01, 0x79, 0x4e, 0x0e, 0xea,
};

/* Restore reads version 3: its 10 configuration fields, config_set 1,
 * applied and digest 0, the new fields at their defaults. */
static void test_version3(void **state)
{
	struct fsm *f = fsm_new(NULL), *g = fsm_new(NULL);
	const struct fsm_config *c;
	struct fsm_config def;
	size_t len;
	unsigned char *buf;
	uint64_t v0 = fsm_config_version(f);

	(void)state;
	fsm_config_default(&def);
	assert_int_equal(snap_v3[13], 3); /* the version */
	assert_int_equal(fsm_restore(f, snap_v3, sizeof(snap_v3)), FSM_OK);
	assert_int_equal(fsm_check(f), 0);
	c = fsm_config_get(f);
	assert_int_equal(c->max_payload, 4000);
	assert_int_equal(c->max_queues, 3);
	assert_int_equal(c->max_get, 7);
	assert_int_equal(c->max_name, 255);
	assert_int_equal(c->max_headers, def.max_headers);
	assert_int_equal(c->max_memory, def.max_memory);
	assert_int_equal(c->session_window, def.session_window);
	assert_int_equal(c->max_session_consumers, def.max_session_consumers);
	assert_int_equal(c->max_entry, def.max_entry);
	assert_int_equal(fsm_config_is_set(f), 1);
	assert_true(fsm_config_version(f) > v0);
	assert_int_equal(fsm_applied(f), 0);
	assert_int_equal(fsm_digest(f), 0);
	assert_int_equal(fsm_now(f), 5010);
	assert_int_equal(qstats(f, "q").ready, 2);
	assert_int_equal(qstats(f, "q").in_flight, 1);
	assert_int_equal(qstats(f, "q").consumers, 1);
	dup_of(f, "b", 2, 1);
	/* Written back as version 4, which restores to the same bytes. */
	buf = snap(f, &len);
	assert_int_equal(buf[13], 4);
	assert_int_equal(fsm_restore(g, buf, len), FSM_OK);
	assert_true(snap_equal(f, g));
	free(buf);
	fsm_free(f);
	fsm_free(g);
}

/* Version 3 is version 2 plus a checksum trailer: a version 2 snapshot
 * (the same body, version byte 2, no trailer) still restores, while a
 * version 3 body without its trailer, or with a wrong one, does not; the
 * same holds for version 4. */
static void test_version2_and_trailer(void **state)
{
	struct fsm *f = build(), *g = fsm_new(NULL), *h = fsm_new(NULL);
	size_t len, l3 = sizeof(snap_v3);
	unsigned char *buf = snap(f, &len), *v2;

	(void)state;
	assert_true(len > 16);
	assert_int_equal(buf[13], 4);
	assert_memory_equal(buf + len - 16, "rmqsum01", 8);
	assert_int_equal(fsm_restore(g, buf, len - 16), FSM_EMALFORMED);
	buf[len - 1] ^= 1;
	assert_int_equal(fsm_restore(g, buf, len), FSM_EMALFORMED);
	v2 = malloc(l3);
	assert_non_null(v2);
	memcpy(v2, snap_v3, l3);
	assert_int_equal(fsm_restore(g, v2, l3 - 16), FSM_EMALFORMED);
	v2[13] = 2;
	assert_int_equal(fsm_restore(g, v2, l3 - 16), FSM_OK);
	assert_int_equal(fsm_restore(h, snap_v3, l3), FSM_OK);
	assert_true(snap_equal(g, h));
	/* A trailer on a version 2 body is refused too. */
	assert_int_equal(fsm_restore(g, v2, l3), FSM_EMALFORMED);
	v2[13] = 3;
	v2[l3 - 1] ^= 1;
	assert_int_equal(fsm_restore(g, v2, l3), FSM_EMALFORMED);
	free(v2);
	free(buf);
	fsm_free(f);
	fsm_free(g);
	fsm_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_version1),
	    cmocka_unit_test(test_version2_and_trailer),
	    cmocka_unit_test(test_version3),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
