/* Unit tests of the wire codec: round trips, framing, hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "wire/wire.h"

#define S(x) ((struct wire_str){x, sizeof(x) - 1})

static int str_eq(struct wire_str a, const char *b)
{
	return a.len == strlen(b) && memcmp(a.ptr, b, a.len) == 0;
}

static const struct wire_header test_headers[] = {
    {"h1", 2, "v1", 2}, {"x-long-header", 13, "", 0}, {"k", 1, "vv", 2}};

/* Fills every field an op may carry with recognisable values. */
static void fill(struct wire_msg *m, uint8_t op, uint64_t req)
{
	wire_msg_init(m, op, req);
	m->version = 1;
	m->client = S("test-client");
	m->node_id = 3;
	m->max_frame = 1114112;
	m->max_payload = 262144;
	m->heartbeat = 2500;
	m->name = S("orders");
	m->queue = S("q.one");
	m->topic = S("events");
	m->key = S("a.b.c");
	m->if_empty = 1;
	m->kind = WIRE_KIND_TOPIC;
	m->opts.ack_timeout = 30000;
	m->opts.max_deliveries = 5;
	m->opts.dlq = S("orders.dlq");
	m->opts.message_ttl = 60000;
	m->opts.delay = 250;
	m->opts.max_length = 1000000;
	m->opts.max_bytes = 1ull << 33;
	m->opts.overflow = WIRE_OVERFLOW_DROP_HEAD;
	m->opts.dedup_window = 120000;
	m->opts.exclusive = 1;
	m->opts.auto_delete = 1;
	m->id = S("0123456789abcdef0123456789abcdef-42");
	m->type = S("order.created");
	m->correlation_id = S("corr-7");
	m->reply_to = S("replies");
	m->headers = test_headers;
	m->n_headers = 3;
	m->payload = (struct wire_str){"\0\1\2binary\xff", 10};
	m->ttl = 5000;
	m->delay = 100;
	m->prefetch = 64;
	m->consumer = 0x123456789ull;
	m->max = 10;
	m->timeout = 45000;
	m->queue_id = 77;
	m->seq = 1ull << 40;
	m->mode = WIRE_NACK_DEADLETTER;
	m->delivery_count = 2;
	m->redelivered = 1;
	m->timestamp = 1700000000000ull;
	m->code = WIRE_ENOTLEADER;
	m->message = S("not the leader");
	m->retryable = 1;
	m->leader = S("127.0.0.1:7002");
	m->reason = WIRE_ENOQUEUE;
}

static void check_same(const struct wire_msg *a, const struct wire_msg *b)
{
	uint64_t f = a->present;

	assert_int_equal(a->op, b->op);
	assert_int_equal(a->req_id, b->req_id);
	assert_int_equal(b->present & f, f);
#define NUM(bit, x)                                                            \
	if (f & WIRE_BIT(WIRE_F_##bit))                                        \
		assert_int_equal(a->x, b->x);
#define STR(bit, x)                                                            \
	if (f & WIRE_BIT(WIRE_F_##bit)) {                                      \
		assert_int_equal(a->x.len, b->x.len);                          \
		assert_memory_equal(a->x.ptr, b->x.ptr, a->x.len);             \
	}
	NUM(VERSION, version);
	STR(CLIENT, client);
	NUM(NODE_ID, node_id);
	NUM(MAX_FRAME, max_frame);
	NUM(MAX_PAYLOAD, max_payload);
	NUM(HEARTBEAT, heartbeat);
	STR(NAME, name);
	STR(QUEUE, queue);
	STR(TOPIC, topic);
	STR(KEY, key);
	NUM(IF_EMPTY, if_empty);
	NUM(KIND, kind);
	STR(ID, id);
	STR(TYPE, type);
	STR(CORRELATION_ID, correlation_id);
	STR(REPLY_TO, reply_to);
	STR(PAYLOAD, payload);
	NUM(TTL, ttl);
	NUM(DELAY, delay);
	NUM(PREFETCH, prefetch);
	NUM(CONSUMER, consumer);
	NUM(MAX, max);
	NUM(TIMEOUT, timeout);
	NUM(QUEUE_ID, queue_id);
	NUM(SEQ, seq);
	NUM(MODE, mode);
	NUM(DELIVERY_COUNT, delivery_count);
	NUM(REDELIVERED, redelivered);
	NUM(TIMESTAMP, timestamp);
	NUM(CODE, code);
	STR(MESSAGE, message);
	NUM(RETRYABLE, retryable);
	STR(LEADER, leader);
	NUM(REASON, reason);
	if (f & WIRE_BIT(WIRE_F_OPTS)) {
		assert_int_equal(a->opts.ack_timeout, b->opts.ack_timeout);
		assert_int_equal(a->opts.max_deliveries,
		                 b->opts.max_deliveries);
		assert_true(str_eq(b->opts.dlq, "orders.dlq"));
		assert_int_equal(a->opts.message_ttl, b->opts.message_ttl);
		assert_int_equal(a->opts.delay, b->opts.delay);
		assert_int_equal(a->opts.max_length, b->opts.max_length);
		assert_int_equal(a->opts.max_bytes, b->opts.max_bytes);
		assert_int_equal(a->opts.overflow, b->opts.overflow);
		assert_int_equal(a->opts.dedup_window, b->opts.dedup_window);
		assert_int_equal(a->opts.exclusive, b->opts.exclusive);
		assert_int_equal(a->opts.auto_delete, b->opts.auto_delete);
	}
	if (f & WIRE_BIT(WIRE_F_HEADERS)) {
		assert_int_equal(a->n_headers, b->n_headers);
		for (uint32_t i = 0; i < a->n_headers; i++) {
			assert_int_equal(a->headers[i].key_len,
			                 b->headers[i].key_len);
			assert_memory_equal(a->headers[i].key,
			                    b->headers[i].key,
			                    a->headers[i].key_len);
			assert_int_equal(a->headers[i].val_len,
			                 b->headers[i].val_len);
			assert_memory_equal(a->headers[i].val,
			                    b->headers[i].val,
			                    a->headers[i].val_len);
		}
	}
#undef NUM
#undef STR
}

/* Encodes `m`, splits the frame back out and decodes it into `out`. */
static void roundtrip(const struct wire_msg *m, struct wire_msg *out,
                      struct wire_buf *b, struct wire_header *hdrs)
{
	size_t body_len;

	b->len = 0;
	assert_int_equal(wire_encode(b, m), 0);
	assert_int_equal(
	    wire_split(b->data, b->len, WIRE_MAX_FRAME_DEFAULT, &body_len),
	    WIRE_SPLIT_FRAME);
	assert_int_equal(body_len + WIRE_PREFIX, b->len);
	assert_int_equal(
	    wire_decode(b->data + WIRE_PREFIX, body_len, out, hdrs, 16), 0);
}

static const uint8_t all_ops[] = {WIRE_OP_HELLO,         WIRE_OP_QUEUE_DECLARE,
                                  WIRE_OP_QUEUE_DELETE,  WIRE_OP_QUEUE_PURGE,
                                  WIRE_OP_QUEUE_STATS,   WIRE_OP_QUEUE_LIST,
                                  WIRE_OP_TOPIC_DECLARE, WIRE_OP_TOPIC_DELETE,
                                  WIRE_OP_BIND,          WIRE_OP_UNBIND,
                                  WIRE_OP_TOPIC_LIST,    WIRE_OP_PUBLISH,
                                  WIRE_OP_CONSUME,       WIRE_OP_CANCEL,
                                  WIRE_OP_GET,           WIRE_OP_ACK,
                                  WIRE_OP_NACK,          WIRE_OP_EXTEND,
                                  WIRE_OP_STATUS,        WIRE_OP_HEARTBEAT,
                                  WIRE_OP_HELLO_OK,      WIRE_OP_OK,
                                  WIRE_OP_ERROR,         WIRE_OP_DELIVER,
                                  WIRE_OP_CANCELLED};

static void test_roundtrip_all_ops(void **state)
{
	struct wire_buf b;
	struct wire_msg m, out;
	struct wire_header hdrs[16];

	(void)state;
	wire_buf_init(&b);
	for (size_t i = 0; i < sizeof(all_ops); i++) {
		fill(&m, all_ops[i], 1000 + i);
		roundtrip(&m, &out, &b, hdrs);
		check_same(&m, &out);
		assert_string_not_equal(wire_op_name(all_ops[i]), "?");
	}
	wire_buf_free(&b);
}

static void test_roundtrip_replies(void **state)
{
	struct wire_buf b;
	struct wire_msg m, out;
	struct wire_header hdrs[16];
	struct wire_member members[3] = {
	    {1, S("127.0.0.1:8001"), S("127.0.0.1:7001")},
	    {2, S("127.0.0.1:8002"), S("127.0.0.1:7002")},
	    {3, S("127.0.0.1:8003"), S("")}};
	struct wire_iter it;
	struct wire_member mb;
	int n = 0;

	(void)state;
	wire_buf_init(&b);

	/* Publish OK. */
	fill(&m, WIRE_OP_OK, 9);
	m.present = WIRE_BIT(WIRE_F_SEQ) | WIRE_BIT(WIRE_F_QUEUES) |
	            WIRE_BIT(WIRE_F_DUPLICATE);
	m.queues = 3;
	m.duplicate = 1;
	roundtrip(&m, &out, &b, hdrs);
	check_same(&m, &out);
	assert_int_equal(out.seq, 1ull << 40);
	assert_int_equal(out.queues, 3);

	/* Stats OK: every counter and option. */
	fill(&m, WIRE_OP_OK, 10);
	m.present = WIRE_BIT(WIRE_F_STATS);
	m.stats.name = S("orders");
	m.stats.queue_id = 4;
	m.stats.ready = 10;
	m.stats.delayed = 2;
	m.stats.in_flight = 3;
	m.stats.bytes = 4000;
	m.stats.consumers = 1;
	m.stats.published = 100;
	m.stats.acked = 85;
	m.stats.dead_lettered = 1;
	m.stats.expired = 1;
	m.stats.dropped = 0;
	m.stats.deduplicated = 7;
	m.stats.last_seq = 100;
	m.stats.opts = m.opts;
	roundtrip(&m, &out, &b, hdrs);
	assert_true(str_eq(out.stats.name, "orders"));
	assert_int_equal(out.stats.queue_id, 4);
	assert_int_equal(out.stats.ready, 10);
	assert_int_equal(out.stats.delayed, 2);
	assert_int_equal(out.stats.in_flight, 3);
	assert_int_equal(out.stats.bytes, 4000);
	assert_int_equal(out.stats.published, 100);
	assert_int_equal(out.stats.acked, 85);
	assert_int_equal(out.stats.deduplicated, 7);
	assert_int_equal(out.stats.last_seq, 100);
	assert_int_equal(out.stats.opts.delay, 250);
	assert_int_equal(out.stats.opts.overflow, WIRE_OVERFLOW_DROP_HEAD);
	assert_true(str_eq(out.stats.opts.dlq, "orders.dlq"));

	/* Status OK with members. */
	fill(&m, WIRE_OP_OK, 11);
	m.present = WIRE_BIT(WIRE_F_NODE_ID) | WIRE_BIT(WIRE_F_ROLE) |
	            WIRE_BIT(WIRE_F_LEADER_ID) | WIRE_BIT(WIRE_F_TERM) |
	            WIRE_BIT(WIRE_F_COMMIT_INDEX) |
	            WIRE_BIT(WIRE_F_APPLIED_INDEX) |
	            WIRE_BIT(WIRE_F_LAST_INDEX) | WIRE_BIT(WIRE_F_MEMBERS);
	m.role = S("leader");
	m.leader_id = 3;
	m.term = 7;
	m.commit_index = 100;
	m.applied_index = 99;
	m.last_index = 101;
	m.members = members;
	m.n_members = 3;
	roundtrip(&m, &out, &b, hdrs);
	assert_true(str_eq(out.role, "leader"));
	assert_int_equal(out.term, 7);
	assert_int_equal(out.commit_index, 100);
	assert_int_equal(out.applied_index, 99);
	assert_int_equal(out.last_index, 101);
	assert_int_equal(out.members_raw.n, 3);
	wire_iter_init(&it, &out.members_raw);
	while (wire_next_member(&it, &mb) == 1) {
		assert_int_equal(mb.id, members[n].id);
		assert_true(
		    str_eq(mb.raft_address, members[n].raft_address.ptr));
		assert_true(
		    str_eq(mb.client_address, members[n].client_address.ptr));
		n++;
	}
	assert_int_equal(n, 3);

	/* Error shorthand. */
	b.len = 0;
	assert_int_equal(
	    wire_encode_error(&b, 5, WIRE_ENOTLEADER, NULL, "10.0.0.1:7001"),
	    0);
	assert_int_equal(wire_decode(b.data + 4, b.len - 4, &out, hdrs, 16), 0);
	assert_int_equal(out.op, WIRE_OP_ERROR);
	assert_int_equal(out.code, WIRE_ENOTLEADER);
	assert_int_equal(out.retryable, 1);
	assert_true(str_eq(out.leader, "10.0.0.1:7001"));
	assert_true(str_eq(out.message, "not the leader"));

	b.len = 0;
	assert_int_equal(wire_encode_frame_error(&b, 5000000, 1000), 0);
	assert_int_equal(wire_decode(b.data + 4, b.len - 4, &out, hdrs, 16), 0);
	assert_int_equal(out.code, WIRE_EFRAME);
	assert_int_equal(out.req_id, 0);
	assert_true(
	    str_eq(out.message, "frame of 5000000 bytes exceeds limit 1000"));
	assert_int_equal(out.retryable, 0);
	wire_buf_free(&b);
}

static void test_lists(void **state)
{
	struct wire_buf b;
	struct wire_list l;
	struct wire_msg out;
	struct wire_queue_stats s, got;
	struct wire_binding binds[2] = {{S("q1"), S("a.*")}, {S("q2"), S("#")}};
	struct wire_iter it, bit;
	struct wire_topic t;
	struct wire_binding bd;
	char name[32];
	uint32_t n = 0;

	(void)state;
	wire_buf_init(&b);
	assert_int_equal(wire_list_begin(&b, &l, 42, WIRE_F_LIST), 0);
	for (int i = 0; i < 40; i++) {
		memset(&s, 0, sizeof(s));
		snprintf(name, sizeof(name), "queue-%02d", i);
		s.name.ptr = name;
		s.name.len = (uint32_t)strlen(name);
		s.queue_id = (uint32_t)i + 1;
		s.ready = (uint64_t)i * 1000;
		s.opts.max_deliveries = (uint32_t)i;
		assert_int_equal(wire_list_add_queue(&b, &l, &s), 0);
	}
	wire_list_end(&b, &l);
	assert_int_equal(wire_decode(b.data + 4, b.len - 4, &out, NULL, 0), 0);
	assert_int_equal(out.op, WIRE_OP_OK);
	assert_int_equal(out.req_id, 42);
	assert_int_equal(out.list_raw.n, 40);
	wire_iter_init(&it, &out.list_raw);
	while (wire_next_queue(&it, &got) == 1) {
		snprintf(name, sizeof(name), "queue-%02u", n);
		assert_true(str_eq(got.name, name));
		assert_int_equal(got.queue_id, n + 1);
		assert_int_equal(got.ready, n * 1000);
		assert_int_equal(got.opts.max_deliveries, n);
		n++;
	}
	assert_int_equal(n, 40);

	b.len = 0;
	assert_int_equal(wire_list_begin(&b, &l, 43, WIRE_F_TOPICS), 0);
	assert_int_equal(
	    wire_list_add_topic(&b, &l, "t1", 2, WIRE_KIND_TOPIC, binds, 2), 0);
	assert_int_equal(
	    wire_list_add_topic(&b, &l, "t2", 2, WIRE_KIND_FANOUT, NULL, 0), 0);
	wire_list_end(&b, &l);
	assert_int_equal(wire_decode(b.data + 4, b.len - 4, &out, NULL, 0), 0);
	assert_int_equal(out.topics_raw.n, 2);
	wire_iter_init(&it, &out.topics_raw);
	assert_int_equal(wire_next_topic(&it, &t), 1);
	assert_true(str_eq(t.name, "t1"));
	assert_int_equal(t.kind, WIRE_KIND_TOPIC);
	wire_iter_init(&bit, &t.bindings);
	assert_int_equal(wire_next_binding(&bit, &bd), 1);
	assert_true(str_eq(bd.queue, "q1"));
	assert_true(str_eq(bd.key, "a.*"));
	assert_int_equal(wire_next_binding(&bit, &bd), 1);
	assert_true(str_eq(bd.key, "#"));
	assert_int_equal(wire_next_binding(&bit, &bd), 0);
	assert_int_equal(wire_next_topic(&it, &t), 1);
	assert_true(str_eq(t.name, "t2"));
	assert_int_equal(t.kind, WIRE_KIND_FANOUT);
	assert_int_equal(t.bindings.n, 0);
	assert_int_equal(wire_next_topic(&it, &t), 0);
	wire_buf_free(&b);
}

/* Feeds `data` in two pieces split at `cut` to a splitter loop and counts
 * decoded frames, checking their req_ids count up from 1. */
static int feed(const char *data, size_t len, size_t cut)
{
	char acc[8192];
	size_t have = 0, body;
	int frames = 0;
	size_t pieces[2] = {cut, len - cut};
	size_t off = 0;

	for (int p = 0; p < 2; p++) {
		memcpy(acc + have, data + off, pieces[p]);
		have += pieces[p];
		off += pieces[p];
		for (;;) {
			struct wire_msg m;
			struct wire_header h[4];
			int rc = wire_split(acc, have, 4096, &body);

			if (rc == WIRE_SPLIT_MORE)
				break;
			assert_int_equal(rc, WIRE_SPLIT_FRAME);
			assert_int_equal(
			    wire_decode(acc + WIRE_PREFIX, body, &m, h, 4), 0);
			assert_int_equal(m.req_id, (uint64_t)frames + 1);
			frames++;
			memmove(acc, acc + WIRE_PREFIX + body,
			        have - WIRE_PREFIX - body);
			have -= WIRE_PREFIX + body;
		}
	}
	assert_int_equal(have, 0);
	return frames;
}

static void test_pipelining(void **state)
{
	struct wire_buf b;
	struct wire_msg m;

	(void)state;
	wire_buf_init(&b);
	for (int i = 0; i < 30; i++) {
		fill(&m, all_ops[i % sizeof(all_ops)], (uint64_t)i + 1);
		assert_int_equal(wire_encode(&b, &m), 0);
	}
	assert_true(b.len < 8192);
	for (size_t cut = 0; cut <= b.len; cut++)
		assert_int_equal(feed(b.data, b.len, cut), 30);
	wire_buf_free(&b);
}

static void test_too_big(void **state)
{
	unsigned char hdr[4] = {0x00, 0x20, 0x00, 0x01}; /* 2 MiB + 1 */
	size_t n = 0;

	(void)state;
	assert_int_equal(wire_split(hdr, 3, WIRE_MAX_FRAME_DEFAULT, &n),
	                 WIRE_SPLIT_MORE);
	assert_int_equal(wire_split(hdr, 4, WIRE_MAX_FRAME_DEFAULT, &n),
	                 WIRE_SPLIT_TOOBIG);
	assert_int_equal(n, 2 * 1024 * 1024 + 1);
	hdr[1] = 0;
	hdr[2] = 0;
	hdr[3] = 10;
	assert_int_equal(wire_split(hdr, 4, 9, &n), WIRE_SPLIT_TOOBIG);
	assert_int_equal(wire_split(hdr, 4, 10, &n), WIRE_SPLIT_MORE);
	hdr[0] = 0xff; /* 4 GiB - ish */
	assert_int_equal(wire_split(hdr, 4, WIRE_MAX_FRAME_DEFAULT, &n),
	                 WIRE_SPLIT_TOOBIG);
}

/* Hand-built bodies for the error paths. */
static int dec(const char *body, size_t len, struct wire_msg *m)
{
	struct wire_header h[2];

	return wire_decode(body, len, m, h, 2);
}

static void test_missing_and_bad_fields(void **state)
{
	struct wire_msg m;
	struct wire_buf b;

	(void)state;
	/* [12, 1, {}]: publish without payload. */
	assert_int_equal(dec("\x93\x0c\x01\x80", 4, &m), WIRE_EPROTO);
	assert_string_equal(m.err, "missing required field \"payload\"");
	assert_int_equal(m.op, WIRE_OP_PUBLISH);
	assert_int_equal(m.req_id, 1);
	/* [16, 2, {"queue_id": 1}]: ack without seq. */
	assert_int_equal(dec("\x93\x10\x02\x81\xa8queue_id\x01", 14, &m),
	                 WIRE_EPROTO);
	assert_string_equal(m.err, "missing required field \"seq\"");
	/* Wrong type: name is an int. */
	assert_int_equal(dec("\x93\x03\x02\x81\xa4name\x01", 10, &m),
	                 WIRE_EPROTO);
	/* Unknown op. */
	assert_int_equal(dec("\x93\x3f\x02\x80", 4, &m), WIRE_EPROTO);
	/* Not an array / wrong arity / trailing bytes. */
	assert_int_equal(dec("\x80", 1, &m), WIRE_EPROTO);
	assert_int_equal(dec("\x92\x13\x01", 3, &m), WIRE_EPROTO);
	assert_int_equal(dec("\x93\x13\x01\x80\x00", 5, &m), WIRE_EPROTO);
	assert_int_equal(dec("", 0, &m), WIRE_EPROTO);
	/* STATUS with an empty map is fine; unknown keys are ignored, even
	 * nested ones. */
	assert_int_equal(dec("\x93\x13\x01\x80", 4, &m), 0);
	assert_int_equal(
	    dec("\x93\x13\x07\x82\xa3zzz\x92\x01\x81\xa1x\xc0\xa1y\xcb"
	        "\x00\x00\x00\x00\x00\x00\x00\x00",
	        25, &m),
	    0);
	assert_int_equal(m.req_id, 7);
	/* Negative numbers are rejected for unsigned fields. */
	assert_int_equal(dec("\x93\x0e\x01\x81\xa8\x63onsumer\xff", 14, &m),
	                 WIRE_EPROTO);
	/* Too many headers for the scratch. */
	wire_buf_init(&b);
	fill(&m, WIRE_OP_PUBLISH, 1);
	assert_int_equal(wire_encode(&b, &m), 0);
	{
		struct wire_msg o;
		struct wire_header h[2];

		assert_int_equal(wire_decode(b.data + 4, b.len - 4, &o, h, 2),
		                 WIRE_EPROTO);
		assert_string_equal(o.err, "too many headers");
	}
	/* Enumerations: strings or integers, unknown names rejected. */
	b.len = 0;
	fill(&m, WIRE_OP_NACK, 1);
	m.mode = 7; /* encodes as "?" */
	assert_int_equal(wire_encode(&b, &m), 0);
	assert_int_equal(dec(b.data + 4, b.len - 4, &m), WIRE_EPROTO);
	/* [17, 1, {"queue_id":1,"seq":2,"mode":1}] */
	assert_int_equal(
	    dec("\x93\x11\x01\x83\xa8queue_id\x01\xa3seq\x02\xa4mode\x01", 25,
	        &m),
	    0);
	assert_int_equal(m.mode, WIRE_NACK_DEADLETTER);
	/* GET without max means 1. */
	assert_int_equal(dec("\x93\x0f\x01\x81\xa5queue\xa1q", 12, &m), 0);
	assert_int_equal(m.max, 1);
	assert_true(str_eq(m.queue, "q"));
	assert_true(str_eq(m.topic, "")); /* absent strings are "" */
	wire_buf_free(&b);
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static void test_fuzz(void **state)
{
	struct wire_buf b;
	struct wire_msg m, out;
	struct wire_header h[8];
	char body[512];
	int ok = 0, bad = 0;

	(void)state;
	wire_buf_init(&b);
	/* Pure random bodies, with a plausible first byte half the time. */
	for (int i = 0; i < 20000; i++) {
		size_t len = rnd() % sizeof(body);
		int rc;

		for (size_t j = 0; j < len; j++)
			body[j] = (char)rnd();
		if (len && (i & 1))
			body[0] = (char)0x93;
		rc = wire_decode(body, len, &out, h, 8);
		assert_true(rc == 0 || rc == WIRE_EPROTO);
		if (rc)
			assert_non_null(out.err);
	}
	/* Mutations and truncations of valid frames of every op. */
	for (int i = 0; i < 60000; i++) {
		size_t len, n;
		int rc;

		fill(&m, all_ops[rnd() % sizeof(all_ops)], rnd());
		b.len = 0;
		assert_int_equal(wire_encode(&b, &m), 0);
		len = b.len - 4;
		if (len > sizeof(body))
			len = sizeof(body);
		memcpy(body, b.data + 4, len);
		n = 1 + rnd() % 4;
		for (size_t j = 0; j < n; j++) {
			switch (rnd() % 3) {
			case 0:
				body[rnd() % len] = (char)rnd();
				break;
			case 1:
				body[rnd() % len] ^= (char)(1u << (rnd() % 8));
				break;
			default:
				len = rnd() % len + 1;
				break;
			}
		}
		rc = wire_decode(body, len, &out, h, 8);
		assert_true(rc == 0 || rc == WIRE_EPROTO);
		if (rc == 0) {
			struct wire_iter it;
			struct wire_member mb;
			struct wire_queue_stats qs;
			struct wire_topic t;

			ok++;
			wire_iter_init(&it, &out.members_raw);
			while (wire_next_member(&it, &mb) == 1)
				;
			wire_iter_init(&it, &out.list_raw);
			while (wire_next_queue(&it, &qs) == 1)
				;
			wire_iter_init(&it, &out.topics_raw);
			while (wire_next_topic(&it, &t) == 1)
				;
		} else {
			bad++;
		}
	}
	/* Deep nesting in an unknown key must not recurse without bound. */
	{
		size_t len = 0;

		body[len++] = (char)0x93;
		body[len++] = 0x13;
		body[len++] = 0x01;
		body[len++] = (char)0x81;
		body[len++] = (char)0xa1;
		body[len++] = 'z';
		while (len < sizeof(body))
			body[len++] = (char)0x91;
		assert_int_equal(wire_decode(body, len, &out, h, 8),
		                 WIRE_EPROTO);
	}
	print_message("fuzz: %d mutated frames decoded, %d rejected\n", ok,
	              bad);
	assert_true(bad > 0);
	wire_buf_free(&b);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Not a timing assertion: prints the rate for the report. */
static void test_speed(void **state)
{
	struct wire_buf b;
	struct wire_msg m, out;
	struct wire_header h[8];
	char payload[100];
	const int n = 200000;
	double t0, t1, t2;
	size_t off = 0, body;
	int frames = 0;

	(void)state;
	memset(payload, 'x', sizeof(payload));
	wire_buf_init(&b);
	t0 = now_s();
	for (int i = 0; i < n; i++) {
		wire_msg_init(&m, WIRE_OP_PUBLISH, (uint64_t)i + 1);
		m.key = S("orders");
		m.id = S("5f1e2d3c4b5a69788796a5b4c3d2e1f0-1234");
		m.payload = (struct wire_str){payload, sizeof(payload)};
		assert_int_equal(wire_encode(&b, &m), 0);
	}
	t1 = now_s();
	while (wire_split(b.data + off, b.len - off, WIRE_MAX_FRAME_DEFAULT,
	                  &body) == WIRE_SPLIT_FRAME) {
		assert_int_equal(
		    wire_decode(b.data + off + 4, body, &out, h, 8), 0);
		off += 4 + body;
		frames++;
	}
	t2 = now_s();
	assert_int_equal(frames, n);
	print_message("speed: encode %.0f frames/s, split+decode %.0f "
	              "frames/s (100-byte publish)\n",
	              n / (t1 - t0), n / (t2 - t1));
	wire_buf_free(&b);
}

static void test_codes(void **state)
{
	(void)state;
	assert_int_equal(WIRE_ENOMEM, 13);
	{
		struct wire_buf b;
		struct wire_msg m;

		wire_buf_init(&b);
		wire_msg_init(&m, WIRE_OP_QUEUE_DECLARE, 1);
		m.present |= WIRE_BIT(WIRE_F_DELAY);
		assert_int_equal(wire_encode(&b, &m), WIRE_EINVAL);
		wire_msg_init(&m, WIRE_OP_OK, 1);
		m.present = WIRE_BIT(WIRE_F_STATS) | WIRE_BIT(WIRE_F_NAME);
		assert_int_equal(wire_encode(&b, &m), WIRE_EINVAL);
		m.present = WIRE_BIT(WIRE_F_LIST);
		assert_int_equal(wire_encode(&b, &m), WIRE_EINVAL);
		m.op = 200;
		m.present = 0;
		assert_int_equal(wire_encode(&b, &m), WIRE_EINVAL);
		assert_int_equal(b.len, 0);
		wire_buf_free(&b);
	}
	assert_int_equal(wire_retryable(WIRE_ENOTLEADER), 1);
	assert_int_equal(wire_retryable(WIRE_EUNKNOWN), 1);
	assert_int_equal(wire_retryable(WIRE_EBUSY), 1);
	assert_int_equal(wire_retryable(WIRE_ENOQUEUE), 0);
	assert_int_equal(wire_retryable(WIRE_EPROTO), 0);
	assert_string_equal(wire_strerror(WIRE_ENOQUEUE), "no such queue");
	assert_string_equal(wire_strerror(12345), "unknown error");
	assert_int_equal(wire_kind_parse("topic", 5), WIRE_KIND_TOPIC);
	assert_int_equal(wire_kind_parse("nope", 4), -1);
	assert_int_equal(wire_overflow_parse("drop-head", 9), 1);
	assert_string_equal(wire_mode_name(WIRE_NACK_DEADLETTER),
	                    "dead-letter");
	{
		uint8_t op = 0;
		uint64_t req = 0;

		assert_int_equal(
		    wire_peek("\x93\x0c\xcd\x01\x00\x80", 6, &op, &req), 0);
		assert_int_equal(op, WIRE_OP_PUBLISH);
		assert_int_equal(req, 256);
		assert_int_equal(wire_peek("\x93\x0c", 2, &op, &req),
		                 WIRE_EPROTO);
		assert_int_equal(wire_peek("\x92\x0c\x01", 3, &op, &req),
		                 WIRE_EPROTO);
	}
}

/* HEARTBEAT frames, the HELLO heartbeat negotiation fields, the cluster
 * full code. */
static void test_heartbeat(void **state)
{
	struct wire_buf b;
	struct wire_msg m, out;
	size_t body;

	(void)state;
	wire_buf_init(&b);
	/* [22, 0, {}]: the smallest frame there is. */
	wire_msg_init(&m, WIRE_OP_HEARTBEAT, 0);
	assert_int_equal(m.present, 0);
	assert_int_equal(wire_encode(&b, &m), 0);
	assert_int_equal(b.len, 8);
	assert_memory_equal(b.data, "\0\0\0\4\x93\x16\x00\x80", 8);
	assert_int_equal(wire_decode(b.data + WIRE_PREFIX, 4, &out, NULL, 0),
	                 0);
	assert_int_equal(out.op, WIRE_OP_HEARTBEAT);
	assert_int_equal(out.req_id, 0);
	assert_string_equal(wire_op_name(WIRE_OP_HEARTBEAT), "HEARTBEAT");
	assert_true(WIRE_OP_HEARTBEAT < WIRE_OP_REQUEST_MAX);

	/* HELLO proposes, HELLO_OK grants. */
	b.len = 0;
	wire_msg_init(&m, WIRE_OP_HELLO, 1);
	m.version = 1;
	m.heartbeat = 200;
	assert_int_equal(wire_encode(&b, &m), 0);
	assert_int_equal(
	    wire_split(b.data, b.len, WIRE_MAX_FRAME_DEFAULT, &body),
	    WIRE_SPLIT_FRAME);
	assert_int_equal(wire_decode(b.data + WIRE_PREFIX, body, &out, NULL, 0),
	                 0);
	assert_true(out.present & WIRE_BIT(WIRE_F_HEARTBEAT));
	assert_int_equal(out.heartbeat, 200);
	b.len = 0;
	wire_msg_init(&m, WIRE_OP_HELLO_OK, 1);
	m.version = 1;
	m.heartbeat = 5000;
	assert_int_equal(wire_encode(&b, &m), 0);
	assert_int_equal(wire_decode(b.data + WIRE_PREFIX, b.len - WIRE_PREFIX,
	                             &out, NULL, 0),
	                 0);
	assert_int_equal(out.heartbeat, 5000);
	/* A HELLO from a client that predates heartbeats: 0 = off. */
	assert_int_equal(
	    wire_decode("\x93\x01\x01\x81\xa7version\x01", 13, &out, NULL, 0),
	    0);
	assert_int_equal(out.heartbeat, 0);
	assert_false(out.present & WIRE_BIT(WIRE_F_HEARTBEAT));

	assert_int_equal(WIRE_ECLUSTERFULL, 14);
	assert_int_equal(wire_retryable(WIRE_ECLUSTERFULL), 1);
	assert_string_equal(wire_strerror(WIRE_ECLUSTERFULL),
	                    "cluster full: retry later");
	wire_buf_free(&b);
}

/* wire_salvage() reads what settling needs from frames decode refuses. */
static void test_salvage(void **state)
{
	struct wire_header many[20], scratch[16];
	struct wire_buf b;
	struct wire_msg m, out;
	const uint64_t need = WIRE_BIT(WIRE_F_CONSUMER) |
	                      WIRE_BIT(WIRE_F_QUEUE_ID) | WIRE_BIT(WIRE_F_SEQ);

	(void)state;
	for (int i = 0; i < 20; i++) {
		many[i].key = "k";
		many[i].key_len = 1;
		many[i].val = "v";
		many[i].val_len = 1;
	}
	wire_buf_init(&b);
	wire_msg_init(&m, WIRE_OP_DELIVER, 0);
	m.consumer = 9;
	m.queue = S("q");
	m.queue_id = 4;
	m.seq = 1ull << 35;
	m.payload = S("body");
	m.headers = many;
	m.n_headers = 20;
	assert_int_equal(wire_encode(&b, &m), 0);
	/* 20 headers, room for 16: decode refuses, salvage gets the ids. */
	assert_int_equal(wire_decode(b.data + WIRE_PREFIX, b.len - WIRE_PREFIX,
	                             &out, scratch, 16),
	                 WIRE_EPROTO);
	assert_string_equal(out.err, "too many headers");
	assert_int_equal(
	    wire_salvage(b.data + WIRE_PREFIX, b.len - WIRE_PREFIX, &out), 0);
	assert_int_equal(out.op, WIRE_OP_DELIVER);
	assert_int_equal(out.req_id, 0);
	assert_int_equal(out.present & need, need);
	assert_int_equal(out.consumer, 9);
	assert_int_equal(out.queue_id, 4);
	assert_int_equal(out.seq, 1ull << 35);
	/* Cut inside the headers: op and req_id, nothing after the cut. */
	assert_int_equal(wire_salvage(b.data + WIRE_PREFIX, 40, &out), 0);
	assert_int_equal(out.op, WIRE_OP_DELIVER);
	assert_int_equal(out.present & WIRE_BIT(WIRE_F_SEQ), 0);
	/* Every prefix of the body is safe to salvage. */
	for (size_t n = 0; n <= b.len - WIRE_PREFIX; n++)
		(void)wire_salvage(b.data + WIRE_PREFIX, n, &out);
	/* A seq of the wrong type is skipped, not trusted. */
	assert_int_equal(
	    wire_salvage("\x93\x43\x00\x82\xa3seq\xa1x\xa8queue_id\x05", 20,
	                 &out),
	    0);
	assert_int_equal(out.present, WIRE_BIT(WIRE_F_QUEUE_ID));
	assert_int_equal(out.queue_id, 5);
	assert_int_equal(wire_salvage("\x92\x43\x00", 3, &out), WIRE_EPROTO);
	assert_int_equal(wire_salvage("\xc1", 1, &out), WIRE_EPROTO);
	wire_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip_all_ops),
	    cmocka_unit_test(test_roundtrip_replies),
	    cmocka_unit_test(test_lists),
	    cmocka_unit_test(test_pipelining),
	    cmocka_unit_test(test_too_big),
	    cmocka_unit_test(test_missing_and_bad_fields),
	    cmocka_unit_test(test_fuzz),
	    cmocka_unit_test(test_speed),
	    cmocka_unit_test(test_codes),
	    cmocka_unit_test(test_heartbeat),
	    cmocka_unit_test(test_salvage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
