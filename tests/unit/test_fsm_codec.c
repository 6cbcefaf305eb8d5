/* Unit tests of fsm/codec: round trips, layout, and hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "fsm/codec.h"

/* ---- Helpers ------------------------------------------------------------ */

/* A small deterministic PRNG (xorshift64*), so failures reproduce. */
static uint64_t rng_state;

static void rng_seed(uint64_t seed)
{
	rng_state = seed * 0x9e3779b97f4a7c15ull + 1;
}

static uint64_t rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static uint32_t rng_below(uint32_t n)
{
	return (uint32_t)(rng_next() % n);
}

static int bytes_eq(const char *a, uint32_t alen, const char *b, uint32_t blen)
{
	if (alen != blen) {
		return 0;
	}
	return alen == 0 || memcmp(a, b, alen) == 0;
}

#define STR_EQ(f, lf) assert_true(bytes_eq(a->f, a->lf, b->f, b->lf))

/* Asserts that two commands carry the same values. */
static void assert_cmd_eq(const struct fsm_cmd *a, const struct fsm_cmd *b)
{
	uint32_t i;

	assert_int_equal(a->type, b->type);
	assert_true(a->time == b->time);
	assert_true(a->wall == b->wall);
	assert_true(a->session == b->session);
	assert_true(a->req_id == b->req_id);
	switch (a->type) {
	case FSM_CMD_QUEUE_DECLARE: {
		const struct fsm_queue_opts *x = &a->u.declare.opts;
		const struct fsm_queue_opts *y = &b->u.declare.opts;

		STR_EQ(u.declare.name, u.declare.name_len);
		assert_true(bytes_eq(x->dlq, x->dlq ? a->u.declare.dlq_len : 0,
		                     y->dlq,
		                     y->dlq ? b->u.declare.dlq_len : 0));
		assert_true(x->ack_timeout == y->ack_timeout);
		assert_int_equal(x->max_deliveries, y->max_deliveries);
		assert_true(x->message_ttl == y->message_ttl);
		assert_true(x->delay == y->delay);
		assert_true(x->max_length == y->max_length);
		assert_true(x->max_bytes == y->max_bytes);
		assert_int_equal(x->overflow, y->overflow);
		assert_true(x->dedup_window == y->dedup_window);
		assert_int_equal(x->exclusive, y->exclusive);
		assert_int_equal(x->auto_delete, y->auto_delete);
		break;
	}
	case FSM_CMD_QUEUE_DELETE:
	case FSM_CMD_QUEUE_PURGE:
		STR_EQ(u.qdelete.name, u.qdelete.name_len);
		assert_int_equal(a->u.qdelete.if_empty, b->u.qdelete.if_empty);
		break;
	case FSM_CMD_TOPIC_DECLARE:
	case FSM_CMD_TOPIC_DELETE:
		STR_EQ(u.topic.name, u.topic.name_len);
		assert_int_equal(a->u.topic.kind, b->u.topic.kind);
		break;
	case FSM_CMD_BIND:
	case FSM_CMD_UNBIND:
		STR_EQ(u.bind.topic, u.bind.topic_len);
		STR_EQ(u.bind.queue, u.bind.queue_len);
		STR_EQ(u.bind.key, u.bind.key_len);
		break;
	case FSM_CMD_PUBLISH:
		STR_EQ(u.publish.topic, u.publish.topic_len);
		STR_EQ(u.publish.key, u.publish.key_len);
		STR_EQ(u.publish.msg.id, u.publish.msg.id_len);
		STR_EQ(u.publish.msg.type, u.publish.msg.type_len);
		STR_EQ(u.publish.msg.correlation_id,
		       u.publish.msg.correlation_id_len);
		STR_EQ(u.publish.msg.reply_to, u.publish.msg.reply_to_len);
		STR_EQ(u.publish.msg.payload, u.publish.msg.payload_len);
		assert_true(a->u.publish.msg.ttl == b->u.publish.msg.ttl);
		assert_true(a->u.publish.msg.delay == b->u.publish.msg.delay);
		assert_int_equal(a->u.publish.msg.n_headers,
		                 b->u.publish.msg.n_headers);
		for (i = 0; i < a->u.publish.msg.n_headers; i++) {
			const struct fsm_header *x =
			    &a->u.publish.msg.headers[i];
			const struct fsm_header *y =
			    &b->u.publish.msg.headers[i];

			assert_true(
			    bytes_eq(x->key, x->key_len, y->key, y->key_len));
			assert_true(
			    bytes_eq(x->val, x->val_len, y->val, y->val_len));
		}
		break;
	case FSM_CMD_CONSUME:
		STR_EQ(u.consume.queue, u.consume.queue_len);
		assert_int_equal(a->u.consume.prefetch, b->u.consume.prefetch);
		break;
	case FSM_CMD_CANCEL:
		assert_true(a->u.cancel.consumer == b->u.cancel.consumer);
		break;
	case FSM_CMD_GET:
		STR_EQ(u.get.queue, u.get.queue_len);
		assert_int_equal(a->u.get.max, b->u.get.max);
		assert_true(a->u.get.timeout == b->u.get.timeout);
		break;
	case FSM_CMD_ACK:
	case FSM_CMD_NACK:
	case FSM_CMD_EXTEND:
		assert_int_equal(a->u.settle.queue_id, b->u.settle.queue_id);
		assert_true(a->u.settle.seq == b->u.settle.seq);
		assert_int_equal(a->u.settle.mode, b->u.settle.mode);
		assert_true(a->u.settle.timeout == b->u.settle.timeout);
		break;
	case FSM_CMD_SESSION_DOWN:
		assert_true(a->u.session_down.session ==
		            b->u.session_down.session);
		break;
	case FSM_CMD_LEADER_ELECTED:
		assert_true(a->u.leader_elected.term ==
		            b->u.leader_elected.term);
		assert_true(a->u.leader_elected.node ==
		            b->u.leader_elected.node);
		break;
	case FSM_CMD_CONFIG:
		assert_int_equal(a->u.config.bootstrap, b->u.config.bootstrap);
		assert_int_equal(a->u.config.n_kv, b->u.config.n_kv);
		for (i = 0; i < a->u.config.n_kv; i++) {
			const struct fsm_config_kv *x = &a->u.config.kv[i];
			const struct fsm_config_kv *y = &b->u.config.kv[i];

			assert_true(
			    bytes_eq(x->key, x->key_len, y->key, y->key_len));
			assert_true(x->value == y->value);
		}
		break;
	case FSM_CMD_CHECK:
		assert_true(a->u.check.applied == b->u.check.applied);
		assert_true(a->u.check.digest == b->u.check.digest);
		break;
	default:
		break;
	}
}

#define S(x) (x), (uint32_t)(sizeof(x) - 1)

static const struct fsm_header full_headers[] = {
    {S("x-trace"), S("abc123")},
    {S("k"), S("")},
    {S(""), S("empty key")},
};

static const char long_payload[300] = {1, 2, 3, 0, 5};

static const struct fsm_config_kv full_kv[] = {
    {S("max_payload"), 4000},
    {S("max_memory"), 1ull << 40},
    {S(""), 0},
};

/* Fills `c` with command `type`, every field set to a non-default value
 * (`full`) or left at zero/empty. `v` varies the integers. */
static void make_cmd(struct fsm_cmd *c, unsigned type, int full, uint64_t v)
{
	memset(c, 0, sizeof(*c));
	c->type = (uint8_t)type;
	if (!full) {
		return;
	}
	c->time = 1700000000000ull + v;
	c->wall = 1800000000000ull + 3 * v;
	c->session = 0xfedcba9876543210ull ^ v;
	c->req_id = 200 + v;
	switch (type) {
	case FSM_CMD_QUEUE_DECLARE: {
		struct fsm_queue_opts *o = &c->u.declare.opts;

		c->u.declare.name = "orders";
		c->u.declare.name_len = 6;
		o->ack_timeout = 30000;
		o->max_deliveries = 5;
		o->dlq = "orders.dlq";
		c->u.declare.dlq_len = 10;
		o->message_ttl = UINT64_MAX;
		o->delay = 70000;
		o->max_length = 10000000;
		o->max_bytes = 1ull << 40;
		o->overflow = FSM_OVERFLOW_DROP_HEAD;
		o->dedup_window = 120000;
		o->exclusive = 1;
		o->auto_delete = 1;
		break;
	}
	case FSM_CMD_QUEUE_DELETE:
	case FSM_CMD_QUEUE_PURGE:
		c->u.qdelete.name = "a-queue-name-longer-than-31-bytes-x";
		c->u.qdelete.name_len = 35;
		c->u.qdelete.if_empty = 1;
		break;
	case FSM_CMD_TOPIC_DECLARE:
	case FSM_CMD_TOPIC_DELETE:
		c->u.topic.name = "events";
		c->u.topic.name_len = 6;
		c->u.topic.kind = FSM_TOPIC_TOPIC;
		break;
	case FSM_CMD_BIND:
	case FSM_CMD_UNBIND:
		c->u.bind.topic = "events";
		c->u.bind.topic_len = 6;
		c->u.bind.queue = "q1";
		c->u.bind.queue_len = 2;
		c->u.bind.key = "order.*.#";
		c->u.bind.key_len = 9;
		break;
	case FSM_CMD_PUBLISH: {
		struct fsm_msg_in *m = &c->u.publish.msg;

		c->u.publish.topic = "events";
		c->u.publish.topic_len = 6;
		c->u.publish.key = "order.eu.new";
		c->u.publish.key_len = 12;
		m->id = "msg-0001";
		m->id_len = 8;
		m->type = "OrderCreated";
		m->type_len = 12;
		m->correlation_id = "corr-9";
		m->correlation_id_len = 6;
		m->reply_to = "replies";
		m->reply_to_len = 7;
		m->headers = full_headers;
		m->n_headers = 3;
		m->payload = long_payload;
		m->payload_len = sizeof(long_payload);
		m->ttl = 60000;
		m->delay = 1000 + v;
		break;
	}
	case FSM_CMD_CONSUME:
		c->u.consume.queue = "orders";
		c->u.consume.queue_len = 6;
		c->u.consume.prefetch = UINT32_MAX;
		break;
	case FSM_CMD_CANCEL:
		c->u.cancel.consumer = 1ull << 33;
		break;
	case FSM_CMD_GET:
		c->u.get.queue = "orders";
		c->u.get.queue_len = 6;
		c->u.get.max = 1000;
		c->u.get.timeout = 256;
		break;
	case FSM_CMD_ACK:
	case FSM_CMD_NACK:
	case FSM_CMD_EXTEND:
		c->u.settle.queue_id = 65536;
		c->u.settle.seq = 123456789012ull + v;
		c->u.settle.mode = FSM_NACK_DEADLETTER;
		c->u.settle.timeout = 127;
		break;
	case FSM_CMD_SESSION_DOWN:
		c->u.session_down.session = 77;
		break;
	case FSM_CMD_LEADER_ELECTED:
		c->u.leader_elected.term = 3;
		c->u.leader_elected.node = 0xffffffffull;
		break;
	case FSM_CMD_CONFIG:
		c->u.config.bootstrap = 1;
		c->u.config.kv = full_kv;
		c->u.config.n_kv = 3;
		break;
	case FSM_CMD_CHECK:
		c->u.check.applied = 1ull << 40;
		c->u.check.digest = UINT64_MAX - v;
		break;
	default:
		break;
	}
}

/* Expected commands for the decode callback. */
struct expect {
	const struct fsm_cmd *cmds;
	uint32_t n;
	uint32_t calls;
	int stop_at; /* return 1 from this call index, or -1 */
};

static int expect_cb(void *data, const struct fsm_cmd *cmd)
{
	struct expect *e = data;

	assert_true(e->calls < e->n);
	assert_cmd_eq(&e->cmds[e->calls], cmd);
	e->calls++;
	if ((int)e->calls - 1 == e->stop_at) {
		return 77;
	}
	return 0;
}

/* Encodes `n` commands, checks the layout, decodes and compares. */
static void round_trip(const struct fsm_cmd *cmds, uint32_t n)
{
	struct fsm_batch b;
	struct expect e = {cmds, n, 0, -1};
	const void *buf;
	const unsigned char *p;
	size_t len;
	char *copy;
	uint32_t i;

	fsm_batch_init(&b);
	for (i = 0; i < n; i++) {
		assert_int_equal(fsm_batch_add(&b, &cmds[i]), 0);
		assert_int_equal(fsm_batch_size(&b) % 8, 0);
	}
	assert_int_equal(b.count, n);
	assert_int_equal(fsm_batch_finish(&b, &buf, &len), 0);
	assert_int_equal(len, fsm_batch_size(&b));
	assert_int_equal(len % 8, 0);
	p = buf;
	assert_memory_equal(p, "RMQB", 4);
	assert_int_equal(p[4], FSM_CODEC_VERSION);
	assert_int_equal(p[8] | p[9] << 8 | p[10] << 16 | (uint32_t)p[11] << 24,
	                 b.len - FSM_ENTRY_HEADER);
	assert_int_equal(
	    p[12] | p[13] << 8 | p[14] << 16 | (uint32_t)p[15] << 24, n);
	for (i = (uint32_t)b.len; i < len; i++) {
		assert_int_equal(p[i], 0);
	}
	/* Decode from an exact-size copy so ASan sees any overread. */
	copy = malloc(len);
	assert_non_null(copy);
	memcpy(copy, buf, len);
	assert_int_equal(fsm_entry_decode(copy, len, expect_cb, &e), (int)n);
	assert_int_equal(e.calls, n);
	free(copy);
	fsm_batch_close(&b);
}

/* ---- Round trips -------------------------------------------------------- */

static void test_round_trip_full(void **state)
{
	struct fsm_cmd c;
	unsigned t;

	(void)state;
	for (t = 1; t < FSM_CMD_MAX; t++) {
		make_cmd(&c, t, 1, t);
		round_trip(&c, 1);
	}
}

static void test_round_trip_minimal(void **state)
{
	struct fsm_cmd c;
	unsigned t;

	(void)state;
	for (t = 1; t < FSM_CMD_MAX; t++) {
		make_cmd(&c, t, 0, 0);
		round_trip(&c, 1);
	}
}

/* Integer fields at every msgpack width boundary survive. */
static void test_round_trip_int_widths(void **state)
{
	static const uint64_t vals[] = {
	    0,         1,     127,   128,           255,
	    256,       65535, 65536, 0xffffffffull, 0x100000000ull,
	    UINT64_MAX};
	struct fsm_cmd c[11];
	size_t i;

	(void)state;
	for (i = 0; i < 11; i++) {
		make_cmd(&c[i], FSM_CMD_ACK, 1, 0);
		c[i].time = vals[i];
		c[i].session = vals[10 - i];
		c[i].req_id = vals[i];
		c[i].u.settle.seq = vals[i];
		c[i].u.settle.timeout = vals[10 - i];
		c[i].u.settle.queue_id = (uint32_t)vals[i % 9];
	}
	round_trip(c, 11);
}

/* Strings at each str-format boundary, and the maximum lengths. */
static void test_round_trip_string_widths(void **state)
{
	static const uint32_t lens[] = {0, 31, 32, 255, 256, 65535, 65536};
	char *big = malloc(FSM_CODEC_MAX_PAYLOAD);
	struct fsm_cmd c;
	size_t i;

	(void)state;
	assert_non_null(big);
	for (i = 0; i < FSM_CODEC_MAX_PAYLOAD; i++) {
		big[i] = (char)(i * 7);
	}
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		make_cmd(&c, FSM_CMD_PUBLISH, 1, i);
		c.u.publish.msg.id = big;
		c.u.publish.msg.id_len = lens[i];
		c.u.publish.msg.payload = big;
		c.u.publish.msg.payload_len = lens[i];
		round_trip(&c, 1);
	}
	make_cmd(&c, FSM_CMD_PUBLISH, 1, 0);
	c.u.publish.msg.payload = big;
	c.u.publish.msg.payload_len = FSM_CODEC_MAX_PAYLOAD;
	round_trip(&c, 1);
	free(big);
}

/* Many headers: beyond the decoder's stack array, up to the cap. */
static void test_round_trip_many_headers(void **state)
{
	static const uint32_t counts[] = {31, 32, 33, 100,
	                                  FSM_CODEC_MAX_HEADERS};
	struct fsm_header *h = calloc(FSM_CODEC_MAX_HEADERS, sizeof(*h));
	char keys[FSM_CODEC_MAX_HEADERS][8];
	struct fsm_cmd c[2];
	size_t i;

	(void)state;
	assert_non_null(h);
	for (i = 0; i < FSM_CODEC_MAX_HEADERS; i++) {
		h[i].key_len = (uint32_t)snprintf(keys[i], 8, "k%zu", i);
		h[i].key = keys[i];
		h[i].val = keys[i];
		h[i].val_len = (uint32_t)(i % 3);
	}
	for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		make_cmd(&c[0], FSM_CMD_PUBLISH, 1, i);
		c[0].u.publish.msg.headers = h;
		c[0].u.publish.msg.n_headers = counts[i];
		make_cmd(&c[1], FSM_CMD_PUBLISH, 1, i + 1);
		round_trip(c, 2);
	}
	free(h);
}

/* A large mixed batch keeps order and content. */
static void test_batch_many(void **state)
{
	uint32_t n = 20000;
	struct fsm_cmd *c = calloc(n, sizeof(*c));
	uint32_t i;

	(void)state;
	assert_non_null(c);
	rng_seed(1);
	for (i = 0; i < n; i++) {
		make_cmd(&c[i], 1 + rng_below(FSM_CMD_MAX - 1),
		         (int)(i % 5 != 0), i);
	}
	round_trip(c, n);
	free(c);
}

/* An empty batch is a valid 16-byte entry. */
static void test_batch_empty(void **state)
{
	struct fsm_batch b;
	const void *buf;
	size_t len;

	(void)state;
	fsm_batch_init(&b);
	assert_int_equal(fsm_batch_size(&b), FSM_ENTRY_HEADER);
	assert_int_equal(fsm_batch_finish(&b, &buf, &len), 0);
	assert_int_equal(len, FSM_ENTRY_HEADER);
	assert_int_equal(fsm_entry_decode(buf, len, NULL, NULL), 0);
	fsm_batch_close(&b);
}

/* Every padding length 0..7 occurs and is right; reset reuses memory;
 * adding after a finish continues the same entry. */
static void test_padding_and_reset(void **state)
{
	struct fsm_batch b;
	struct fsm_cmd c[2];
	int seen[8] = {0};
	char name[64];
	const void *buf;
	size_t len;
	uint32_t i;

	(void)state;
	fsm_batch_init(&b);
	for (i = 0; i < 64; i++) {
		struct expect e = {c, 1, 0, -1};

		memset(name, 'n', sizeof(name));
		make_cmd(&c[0], FSM_CMD_CONSUME, 1, 0);
		c[0].u.consume.queue = name;
		c[0].u.consume.queue_len = i;
		fsm_batch_reset(&b);
		assert_int_equal(fsm_batch_add(&b, &c[0]), 0);
		assert_int_equal(fsm_batch_finish(&b, &buf, &len), 0);
		assert_int_equal(len % 8, 0);
		assert_true(len - b.len < 8);
		seen[len - b.len] = 1;
		assert_int_equal(fsm_entry_decode(buf, len, expect_cb, &e), 1);
	}
	for (i = 0; i < 8; i++) {
		assert_true(seen[i]);
	}
	make_cmd(&c[1], FSM_CMD_TICK, 1, 9);
	assert_int_equal(fsm_batch_add(&b, &c[1]), 0);
	{
		struct expect e = {c, 2, 0, -1};

		c[0].u.consume.queue_len = 63;
		assert_int_equal(fsm_batch_finish(&b, &buf, &len), 0);
		assert_int_equal(fsm_entry_decode(buf, len, expect_cb, &e), 2);
	}
	fsm_batch_close(&b);
}

/* A non-zero callback return stops the walk and is returned. */
static void test_callback_stops(void **state)
{
	struct fsm_cmd c[5];
	struct fsm_batch b;
	struct expect e;
	const void *buf;
	size_t len;
	int i;

	(void)state;
	fsm_batch_init(&b);
	for (i = 0; i < 5; i++) {
		make_cmd(&c[i], FSM_CMD_TICK, 1, (uint64_t)i);
		assert_int_equal(fsm_batch_add(&b, &c[i]), 0);
	}
	assert_int_equal(fsm_batch_finish(&b, &buf, &len), 0);
	e = (struct expect){c, 5, 0, 2};
	assert_int_equal(fsm_entry_decode(buf, len, expect_cb, &e), 77);
	assert_int_equal(e.calls, 3);
	fsm_batch_close(&b);
}

/* Invalid commands are refused and leave the batch unchanged. */
static void test_encode_invalid(void **state)
{
	struct fsm_header h = {"k", 1, "v", 1};
	struct fsm_batch b;
	struct fsm_cmd c;
	size_t len;
	int i;

	(void)state;
	fsm_batch_init(&b);
	make_cmd(&c, FSM_CMD_TICK, 1, 0);
	assert_int_equal(fsm_batch_add(&b, &c), 0);
	len = b.len;
	for (i = 0; i < 11; i++) {
		make_cmd(&c, FSM_CMD_PUBLISH, 1, 0);
		switch (i) {
		case 0:
			c.type = 0;
			break;
		case 1:
			c.type = FSM_CMD_MAX;
			break;
		case 2:
			c.u.publish.msg.id_len = FSM_CODEC_MAX_STR + 1;
			break;
		case 3:
			c.u.publish.msg.payload_len = FSM_CODEC_MAX_PAYLOAD + 1;
			break;
		case 4:
			c.u.publish.msg.n_headers = FSM_CODEC_MAX_HEADERS + 1;
			c.u.publish.msg.headers = &h;
			break;
		case 5:
			c.u.publish.msg.reply_to = NULL;
			break;
		case 6:
			c.u.publish.msg.headers = NULL;
			break;
		case 7:
			make_cmd(&c, FSM_CMD_QUEUE_DECLARE, 1, 0);
			c.u.declare.opts.overflow = 2;
			break;
		case 8:
			make_cmd(&c, FSM_CMD_TOPIC_DECLARE, 1, 0);
			c.u.topic.kind = 3;
			break;
		case 9:
			make_cmd(&c, FSM_CMD_NACK, 1, 0);
			c.u.settle.mode = 2;
			break;
		case 10:
			make_cmd(&c, FSM_CMD_QUEUE_DELETE, 1, 0);
			c.u.qdelete.if_empty = 2;
			break;
		}
		assert_int_equal(fsm_batch_add(&b, &c), FSM_EINVAL);
		assert_int_equal(b.len, len);
		assert_int_equal(b.count, 1);
	}
	/* A NULL dlq with a stale length is simply "no DLQ". */
	make_cmd(&c, FSM_CMD_QUEUE_DECLARE, 1, 0);
	c.u.declare.opts.dlq = NULL;
	assert_int_equal(fsm_batch_add(&b, &c), 0);
	fsm_batch_close(&b);
}

/* ---- msgpack-c cross-checks --------------------------------------------- */

/* Each command is one standard msgpack array, as msgpack-c reads it. */
static void test_msgpack_compatible(void **state)
{
	static const unsigned sizes[FSM_CMD_MAX] = {
	    0, 17, 7, 7, 7, 7, 8, 8, 15, 7, 6, 8, 9, 9, 9, 5, 6, 7, 7, 7};
	struct fsm_batch b;
	struct fsm_cmd c;
	msgpack_unpacked u;
	size_t off = FSM_ENTRY_HEADER;
	const void *buf;
	size_t len;
	unsigned t;

	(void)state;
	fsm_batch_init(&b);
	for (t = 1; t < FSM_CMD_MAX; t++) {
		make_cmd(&c, t, 1, t);
		assert_int_equal(fsm_batch_add(&b, &c), 0);
	}
	assert_int_equal(fsm_batch_finish(&b, &buf, &len), 0);
	msgpack_unpacked_init(&u);
	for (t = 1; t < FSM_CMD_MAX; t++) {
		assert_int_equal(msgpack_unpack_next(&u, buf, b.len, &off),
		                 MSGPACK_UNPACK_SUCCESS);
		assert_int_equal(u.data.type, MSGPACK_OBJECT_ARRAY);
		assert_int_equal(u.data.via.array.size, sizes[t]);
		assert_int_equal(u.data.via.array.ptr[0].via.u64, t);
		if (t == FSM_CMD_PUBLISH) {
			msgpack_object *o = u.data.via.array.ptr;

			assert_int_equal(o[11].type, MSGPACK_OBJECT_MAP);
			assert_int_equal(o[11].via.map.size, 3);
			assert_int_equal(o[12].type, MSGPACK_OBJECT_BIN);
		}
		if (t == FSM_CMD_CONFIG) {
			msgpack_object *o = u.data.via.array.ptr;

			assert_int_equal(o[2].via.u64,
			                 1800000000000ull + 3 * t);
			assert_int_equal(o[6].type, MSGPACK_OBJECT_MAP);
			assert_int_equal(o[6].via.map.size, 3);
			assert_int_equal(o[6].via.map.ptr[1].val.via.u64,
			                 1ull << 40);
		}
	}
	assert_int_equal(off, b.len);
	msgpack_unpacked_destroy(&u);
	fsm_batch_close(&b);
}

/* Wraps a hand-made body in a valid header; returns a malloc'd entry. */
static char *wrap(const void *body, size_t n, uint32_t count, size_t *len)
{
	char *e;

	*len = (FSM_ENTRY_HEADER + n + 7) & ~(size_t)7;
	e = calloc(1, *len);
	assert_non_null(e);
	memcpy(e, "RMQB", 4);
	e[4] = FSM_CODEC_VERSION;
	e[8] = (char)n;
	e[9] = (char)(n >> 8);
	e[10] = (char)(n >> 16);
	e[11] = (char)(n >> 24);
	e[12] = (char)count;
	e[13] = (char)(count >> 8);
	e[14] = (char)(count >> 16);
	e[15] = (char)(count >> 24);
	if (n > 0) {
		memcpy(e + FSM_ENTRY_HEADER, body, n);
	}
	return e;
}

static int count_cb(void *data, const struct fsm_cmd *cmd)
{
	(void)cmd;
	(*(unsigned *)data)++;
	return 0;
}

static int decode_sbuf(msgpack_sbuffer *sb, uint32_t count, unsigned *calls)
{
	size_t len;
	char *e = wrap(sb->data, sb->size, count, &len);
	int rv;

	*calls = 0;
	rv = fsm_entry_decode(e, len, count_cb, calls);
	free(e);
	return rv;
}

/* Other valid msgpack forms are accepted; wrong types and ranges are not. */
static void test_msgpack_variants(void **state)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	unsigned calls;
	int variant;

	(void)state;
	for (variant = 0; variant < 10; variant++) {
		int ok = variant < 2;

		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_pack_array(&pk, 7);
		msgpack_pack_uint8(&pk, FSM_CMD_QUEUE_DELETE);
		/* Non-negative signed ints and wide forms are fine. */
		msgpack_pack_int64(&pk, variant == 2 ? -1 : 5);
		msgpack_pack_int32(&pk, 6);
		msgpack_pack_uint64(&pk, 1);
		msgpack_pack_int8(&pk, 1);
		if (variant == 3) {
			msgpack_pack_bin(&pk, 1);
			msgpack_pack_bin_body(&pk, "q", 1);
		} else if (variant == 4) {
			static char big[FSM_CODEC_MAX_STR + 1];

			msgpack_pack_str(&pk, sizeof(big));
			msgpack_pack_str_body(&pk, big, sizeof(big));
		} else {
			msgpack_pack_str(&pk, 1);
			msgpack_pack_str_body(&pk, "q", 1);
		}
		switch (variant) {
		case 0:
			msgpack_pack_true(&pk);
			break;
		case 5:
			msgpack_pack_uint8(&pk, 2); /* flag out of range */
			break;
		case 6:
			msgpack_pack_nil(&pk);
			break;
		case 7:
			msgpack_pack_double(&pk, 1.0);
			break;
		case 8:
			msgpack_pack_int16(&pk, -3);
			break;
		case 9:
			msgpack_pack_map(&pk, 0);
			break;
		default:
			msgpack_pack_uint32(&pk, 0);
			break;
		}
		assert_int_equal(decode_sbuf(&sb, 1, &calls),
		                 ok ? 1 : -FSM_EMALFORMED);
		assert_int_equal(calls, ok ? 1u : 0u);
		msgpack_sbuffer_destroy(&sb);
	}
}

/* A publish with `n` headers, built with msgpack-c. */
static void test_header_count_cap(void **state)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	unsigned calls;
	uint32_t n;
	uint32_t i;

	(void)state;
	for (n = FSM_CODEC_MAX_HEADERS; n <= FSM_CODEC_MAX_HEADERS + 1; n++) {
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_pack_array(&pk, 15);
		msgpack_pack_uint8(&pk, FSM_CMD_PUBLISH);
		for (i = 0; i < 4; i++) {
			msgpack_pack_uint8(&pk, 0);
		}
		for (i = 0; i < 6; i++) {
			msgpack_pack_str(&pk, 0);
		}
		msgpack_pack_map(&pk, n);
		for (i = 0; i < 2 * n; i++) {
			msgpack_pack_str(&pk, 1);
			msgpack_pack_str_body(&pk, "h", 1);
		}
		msgpack_pack_bin(&pk, 0);
		msgpack_pack_uint8(&pk, 0);
		msgpack_pack_uint8(&pk, 0);
		assert_int_equal(decode_sbuf(&sb, 1, &calls),
		                 n <= FSM_CODEC_MAX_HEADERS ? 1
		                                            : -FSM_EMALFORMED);
		assert_int_equal(calls, n <= FSM_CODEC_MAX_HEADERS ? 1u : 0u);
		msgpack_sbuffer_destroy(&sb);
	}
}

/* ---- Version 1 entries, CONFIG and CHECK -------------------------------- */

/* An entry written by the codec of before version 2 (no wall clock): a
 * declare of "q" at time 7000 and a publish of "pay" with id "m" at time
 * 7777, session 3, request ids 1 and 2. */
static const unsigned char entry_v1[64] = {
    0x52, 0x4d, 0x51, 0x42, 0x01, 0x00, 0x00, 0x00, 0x2d, 0x00, 0x00,
    0x00, 0x02, 0x00, 0x00, 0x00, 0xdc, 0x00, 0x10, 0x01, 0xcd, 0x1b,
    0x58, 0x03, 0x01, 0xa1, 0x71, 0x00, 0x00, 0xa0, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x9e, 0x08, 0xcd, 0x1e, 0x61, 0x03,
    0x02, 0xa0, 0xa1, 0x71, 0xa1, 0x6d, 0xa0, 0xa0, 0xa0, 0x80, 0xc4,
    0x03, 0x70, 0x61, 0x79, 0x00, 0x00, 0x00, 0x00, 0x00,
};

static int v1_cb(void *data, const struct fsm_cmd *cmd)
{
	unsigned *calls = data;

	assert_true(cmd->wall == 0);
	assert_true(cmd->session == 3);
	assert_true(cmd->req_id == ++*calls);
	if (*calls == 1) {
		assert_int_equal(cmd->type, FSM_CMD_QUEUE_DECLARE);
		assert_true(cmd->time == 7000);
		assert_true(bytes_eq(cmd->u.declare.name,
		                     cmd->u.declare.name_len, "q", 1));
	} else {
		assert_int_equal(cmd->type, FSM_CMD_PUBLISH);
		assert_true(cmd->time == 7777);
		assert_true(bytes_eq(cmd->u.publish.msg.payload,
		                     cmd->u.publish.msg.payload_len, "pay", 3));
		assert_true(bytes_eq(cmd->u.publish.msg.id,
		                     cmd->u.publish.msg.id_len, "m", 1));
	}
	return 0;
}

static void test_version1_entry(void **state)
{
	unsigned calls = 0;
	unsigned char e[sizeof(entry_v1)];

	(void)state;
	assert_int_equal(entry_v1[4], 1);
	assert_int_equal(
	    fsm_entry_decode(entry_v1, sizeof(entry_v1), v1_cb, &calls), 2);
	assert_int_equal(calls, 2);
	/* The same body read as version 2 lacks the wall: malformed. */
	memcpy(e, entry_v1, sizeof(e));
	e[4] = 2;
	assert_int_equal(fsm_entry_decode(e, sizeof(e), NULL, NULL),
	                 -FSM_EMALFORMED);
	/* Versions other than 1 and 2 are refused. */
	e[4] = 3;
	assert_int_equal(fsm_entry_decode(e, sizeof(e), NULL, NULL),
	                 -FSM_EMALFORMED);
	e[4] = 0;
	assert_int_equal(fsm_entry_decode(e, sizeof(e), NULL, NULL),
	                 -FSM_EMALFORMED);
}

/* CONFIG carries at most FSM_CODEC_MAX_CONFIG_KV pairs, both ways. */
static void test_config_limits(void **state)
{
	struct fsm_config_kv kv[FSM_CODEC_MAX_CONFIG_KV + 1];
	struct fsm_batch b;
	struct fsm_cmd c;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	unsigned calls;
	uint32_t i, n;

	(void)state;
	for (i = 0; i <= FSM_CODEC_MAX_CONFIG_KV; i++) {
		kv[i].key = "max_get";
		kv[i].key_len = 7;
		kv[i].value = i + 1;
	}
	fsm_batch_init(&b);
	memset(&c, 0, sizeof(c));
	c.type = FSM_CMD_CONFIG;
	c.u.config.kv = kv;
	c.u.config.n_kv = FSM_CODEC_MAX_CONFIG_KV;
	assert_int_equal(fsm_batch_add(&b, &c), 0);
	round_trip(&c, 1);
	c.u.config.n_kv = FSM_CODEC_MAX_CONFIG_KV + 1;
	assert_int_equal(fsm_batch_add(&b, &c), FSM_EINVAL);
	c.u.config.n_kv = 1;
	c.u.config.kv = NULL;
	assert_int_equal(fsm_batch_add(&b, &c), FSM_EINVAL);
	c.u.config.kv = kv;
	c.u.config.bootstrap = 2;
	assert_int_equal(fsm_batch_add(&b, &c), FSM_EINVAL);
	assert_int_equal(b.count, 1);
	fsm_batch_close(&b);

	/* The decoder refuses a map one pair too long, and a CONFIG or
	 * CHECK inside a version 1 entry. */
	for (n = FSM_CODEC_MAX_CONFIG_KV; n <= FSM_CODEC_MAX_CONFIG_KV + 1;
	     n++) {
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_pack_array(&pk, 7);
		msgpack_pack_uint8(&pk, FSM_CMD_CONFIG);
		for (i = 0; i < 4; i++) {
			msgpack_pack_uint8(&pk, 0);
		}
		msgpack_pack_true(&pk);
		msgpack_pack_map(&pk, n);
		for (i = 0; i < n; i++) {
			msgpack_pack_str(&pk, 1);
			msgpack_pack_str_body(&pk, "k", 1);
			msgpack_pack_uint32(&pk, i);
		}
		assert_int_equal(
		    decode_sbuf(&sb, 1, &calls),
		    n <= FSM_CODEC_MAX_CONFIG_KV ? 1 : -FSM_EMALFORMED);
		msgpack_sbuffer_destroy(&sb);
	}
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 6);
	msgpack_pack_uint8(&pk, FSM_CMD_CHECK);
	for (i = 0; i < 5; i++) {
		msgpack_pack_uint8(&pk, 1);
	}
	assert_int_equal(decode_sbuf(&sb, 1, &calls), -FSM_EMALFORMED);
	{
		size_t len;
		char *e = wrap(sb.data, sb.size, 1, &len);

		e[4] = 1;
		assert_int_equal(fsm_entry_decode(e, len, NULL, NULL),
		                 -FSM_EMALFORMED);
		free(e);
	}
	msgpack_sbuffer_destroy(&sb);
}

/* ---- Hostile input ------------------------------------------------------ */

/* The fuzz callback: every decoded command must be encodable again. */
struct fuzz {
	struct fsm_batch re;
	unsigned calls;
};

static int fuzz_cb(void *data, const struct fsm_cmd *cmd)
{
	struct fuzz *z = data;

	assert_int_equal(fsm_batch_add(&z->re, cmd), 0);
	z->calls++;
	return 0;
}

static int fuzz_cb2(void *data, const struct fsm_cmd *cmd)
{
	return fuzz_cb(data, cmd);
}

/* Decodes `len` bytes from an exact-size copy. A malformed entry must not
 * have reached the callback; a valid one must re-encode to a fixpoint.
 * Returns the decode result. */
static int fuzz_one(const void *bytes, size_t len)
{
	struct fuzz z;
	struct fuzz z2;
	char *copy = malloc(len > 0 ? len : 1);
	const void *b1;
	const void *b2;
	size_t l1;
	size_t l2;
	int rv;

	assert_non_null(copy);
	if (len > 0) {
		memcpy(copy, bytes, len);
	}
	fsm_batch_init(&z.re);
	z.calls = 0;
	rv = fsm_entry_decode(copy, len, fuzz_cb, &z);
	if (rv < 0) {
		assert_int_equal(rv, -FSM_EMALFORMED);
		assert_int_equal(z.calls, 0);
	} else {
		assert_int_equal(z.calls, (unsigned)rv);
		assert_int_equal(fsm_batch_finish(&z.re, &b1, &l1), 0);
		fsm_batch_init(&z2.re);
		z2.calls = 0;
		assert_int_equal(fsm_entry_decode(b1, l1, fuzz_cb2, &z2), rv);
		assert_int_equal(fsm_batch_finish(&z2.re, &b2, &l2), 0);
		assert_int_equal(l1, l2);
		assert_memory_equal(b1, b2, l1);
		fsm_batch_close(&z2.re);
	}
	fsm_batch_close(&z.re);
	free(copy);
	return rv;
}

/* A valid entry with one command of every type, full and minimal. */
static void sample_entry(struct fsm_batch *b, const void **buf, size_t *len)
{
	struct fsm_cmd c;
	unsigned t;

	fsm_batch_init(b);
	for (t = 1; t < FSM_CMD_MAX; t++) {
		make_cmd(&c, t, 1, t);
		assert_int_equal(fsm_batch_add(b, &c), 0);
		make_cmd(&c, t, 0, 0);
		assert_int_equal(fsm_batch_add(b, &c), 0);
	}
	assert_int_equal(fsm_batch_finish(b, buf, len), 0);
	assert_int_equal(fuzz_one(*buf, *len), 2 * (FSM_CMD_MAX - 1));
}

/* Every truncation, raw or with a header rewritten to match. */
static void test_truncations(void **state)
{
	struct fsm_batch b;
	const void *buf;
	size_t len;
	size_t n;
	size_t k;

	(void)state;
	sample_entry(&b, &buf, &len);
	for (k = 0; k < len; k++) {
		assert_int_equal(fuzz_one(buf, k), -FSM_EMALFORMED);
	}
	n = b.len - FSM_ENTRY_HEADER;
	for (k = 0; k < n; k++) {
		size_t elen;
		char *e = wrap((const char *)buf + FSM_ENTRY_HEADER, k, b.count,
		               &elen);

		assert_int_equal(fuzz_one(e, elen), -FSM_EMALFORMED);
		free(e);
	}
	fsm_batch_close(&b);
}

/* Every single-byte change of the header or the padding is detected. */
static void test_header_corruption(void **state)
{
	struct fsm_batch b;
	const void *buf;
	size_t len;
	char *e;
	size_t i;
	int v;

	(void)state;
	sample_entry(&b, &buf, &len);
	assert_true(len > b.len); /* the sample has padding */
	e = malloc(len);
	assert_non_null(e);
	for (i = 0; i < len; i++) {
		if (i == FSM_ENTRY_HEADER) {
			i = b.len; /* skip the body */
		}
		for (v = 0; v < 256; v++) {
			memcpy(e, buf, len);
			if ((unsigned char)e[i] == v) {
				continue;
			}
			e[i] = (char)v;
			assert_int_equal(fuzz_one(e, len), -FSM_EMALFORMED);
		}
	}
	free(e);
	fsm_batch_close(&b);
}

static void set_le32(char *p, uint32_t v)
{
	p[0] = (char)v;
	p[1] = (char)(v >> 8);
	p[2] = (char)(v >> 16);
	p[3] = (char)(v >> 24);
}

/* Lengths and counts that lie. */
static void test_oversize_header(void **state)
{
	static const uint32_t lens[] = {0xffffffffu, 0x7fffffffu, 0x80000000u,
	                                0xfffffff8u, 1u << 24};
	struct fsm_batch b;
	const void *buf;
	size_t len;
	char *e;
	size_t i;
	uint32_t n;

	(void)state;
	sample_entry(&b, &buf, &len);
	n = (uint32_t)(b.len - FSM_ENTRY_HEADER);
	e = malloc(len);
	assert_non_null(e);
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		memcpy(e, buf, len);
		set_le32(e + 8, lens[i]);
		assert_int_equal(fuzz_one(e, len), -FSM_EMALFORMED);
		memcpy(e, buf, len);
		set_le32(e + 12, lens[i]);
		assert_int_equal(fuzz_one(e, len), -FSM_EMALFORMED);
	}
	/* Body length one padding unit too long, count one too high/low. */
	memcpy(e, buf, len);
	set_le32(e + 8, n + 8);
	assert_int_equal(fuzz_one(e, len), -FSM_EMALFORMED);
	for (i = 0; i < 2; i++) {
		memcpy(e, buf, len);
		set_le32(e + 12, i == 0 ? b.count + 1 : b.count - 1);
		assert_int_equal(fuzz_one(e, len), -FSM_EMALFORMED);
	}
	/* NULL and lengths that are not a multiple of 8. */
	assert_int_equal(fsm_entry_decode(NULL, 0, count_cb, NULL),
	                 -FSM_EMALFORMED);
	assert_int_equal(fsm_entry_decode(NULL, 16, count_cb, NULL),
	                 -FSM_EMALFORMED);
	free(e);
	fsm_batch_close(&b);
}

/* Appends one random msgpack value (biased towards what commands hold) at
 * `p`, at most 40 bytes. */
static unsigned char *gen_value(unsigned char *p, int depth)
{
	uint32_t k = rng_below(depth > 0 ? 10 : 12);
	uint32_t n;
	uint32_t i;

	switch (k) {
	case 0:
	case 1:
	case 2:
		*p++ = (unsigned char)rng_below(4); /* small uint */
		break;
	case 3:
		*p++ = 0xcc + rng_below(4); /* uint8..uint64 */
		n = 1u << rng_below(4);
		for (i = 0; i < n; i++) {
			*p++ = (unsigned char)rng_next();
		}
		break;
	case 4:
	case 5:
		n = rng_below(6);
		*p++ = (unsigned char)(0xa0 | n); /* fixstr */
		for (i = 0; i < n; i++) {
			*p++ = (unsigned char)('a' + rng_below(26));
		}
		break;
	case 6:
		n = rng_below(6);
		*p++ = rng_below(2) ? 0xc4 : 0xd9; /* bin8 / str8 */
		*p++ = (unsigned char)n;
		for (i = 0; i < n; i++) {
			*p++ = (unsigned char)rng_next();
		}
		break;
	case 7:
		*p++ = 0xc0 + rng_below(4); /* nil, (never used), false, true */
		break;
	case 8:
		*p++ = 0xd0 + rng_below(4); /* int8..int64 */
		n = 1u << rng_below(4);
		for (i = 0; i < n; i++) {
			*p++ = (unsigned char)rng_next();
		}
		break;
	case 9:
		*p++ = (unsigned char)rng_next(); /* anything */
		break;
	default:
		n = rng_below(3);
		*p++ = (unsigned char)(0x80 | n); /* small map of values */
		for (i = 0; i < 2 * n; i++) {
			p = gen_value(p, depth + 1);
		}
		break;
	}
	return p;
}

/* Random bytes, raw, and random msgpack commands behind a valid header. */
static void test_random_bytes(void **state)
{
	unsigned char body[2048];
	unsigned ok = 0;
	uint64_t seed;

	(void)state;
	for (seed = 1; seed <= 30000; seed++) {
		unsigned char *p = body;
		uint32_t count;
		uint32_t c;
		size_t n;
		size_t i;
		size_t elen;
		char *e;

		rng_seed(seed);
		if (seed % 3 == 0) {
			n = rng_below(200);
			for (i = 0; i < n; i++) {
				body[i] = (unsigned char)rng_next();
			}
			if (n >= 4 && rng_below(2)) {
				memcpy(body, "RMQB", 4);
			}
			assert_int_equal(fuzz_one(body, n), -FSM_EMALFORMED);
			continue;
		}
		count = 1 + rng_below(3);
		for (c = 0; c < count; c++) {
			uint32_t type = 1 + rng_below(FSM_CMD_MAX - 1);
			uint32_t fields = 4;

			switch (type) {
			case FSM_CMD_QUEUE_DECLARE:
				fields = 16;
				break;
			case FSM_CMD_PUBLISH:
				fields = 14;
				break;
			case FSM_CMD_BIND:
			case FSM_CMD_UNBIND:
			case FSM_CMD_GET:
				fields = 7;
				break;
			case FSM_CMD_ACK:
			case FSM_CMD_NACK:
			case FSM_CMD_EXTEND:
				fields = 8;
				break;
			case FSM_CMD_CANCEL:
			case FSM_CMD_SESSION_DOWN:
				fields = 5;
				break;
			case FSM_CMD_TICK:
				break;
			default:
				fields = 6;
				break;
			}
			if (rng_below(20) == 0) {
				fields = rng_below(17);
			}
			*p++ = (unsigned char)(0x90 | fields);
			*p++ = (unsigned char)type;
			for (i = 1; i < fields; i++) {
				p = gen_value(p, 0);
			}
		}
		n = (size_t)(p - body);
		e = wrap(body, n, count, &elen);
		if (fuzz_one(e, elen) >= 0) {
			ok++;
		}
		free(e);
	}
	print_message("random bodies decoded as valid: %u of 20000\n", ok);
}

/* Random byte changes of valid entries. */
static void test_mutations(void **state)
{
	struct fsm_batch b;
	const void *buf;
	size_t len;
	unsigned ok = 0;
	char *e;
	uint64_t seed;

	(void)state;
	sample_entry(&b, &buf, &len);
	e = malloc(len);
	assert_non_null(e);
	for (seed = 1; seed <= 50000; seed++) {
		uint32_t flips;
		uint32_t i;

		rng_seed(seed);
		memcpy(e, buf, len);
		flips = 1 + rng_below(4);
		for (i = 0; i < flips; i++) {
			size_t at =
			    FSM_ENTRY_HEADER +
			    rng_below((uint32_t)(b.len - FSM_ENTRY_HEADER));

			if (rng_below(16) == 0) {
				at = rng_below((uint32_t)len);
			}
			switch (rng_below(3)) {
			case 0:
				e[at] = (char)rng_next();
				break;
			case 1:
				e[at] ^= (char)(1u << rng_below(8));
				break;
			default:
				e[at] = (char)(rng_below(2) ? 0xff : 0x00);
				break;
			}
		}
		if (fuzz_one(e, len) >= 0) {
			ok++;
		}
	}
	print_message("mutated entries still valid: %u of 50000\n", ok);
	free(e);
	fsm_batch_close(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip_full),
	    cmocka_unit_test(test_round_trip_minimal),
	    cmocka_unit_test(test_round_trip_int_widths),
	    cmocka_unit_test(test_round_trip_string_widths),
	    cmocka_unit_test(test_round_trip_many_headers),
	    cmocka_unit_test(test_batch_many),
	    cmocka_unit_test(test_batch_empty),
	    cmocka_unit_test(test_padding_and_reset),
	    cmocka_unit_test(test_callback_stops),
	    cmocka_unit_test(test_encode_invalid),
	    cmocka_unit_test(test_msgpack_compatible),
	    cmocka_unit_test(test_msgpack_variants),
	    cmocka_unit_test(test_header_count_cap),
	    cmocka_unit_test(test_version1_entry),
	    cmocka_unit_test(test_config_limits),
	    cmocka_unit_test(test_truncations),
	    cmocka_unit_test(test_header_corruption),
	    cmocka_unit_test(test_oversize_header),
	    cmocka_unit_test(test_random_bytes),
	    cmocka_unit_test(test_mutations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
