/* wire: msgpack frame codec for the client protocol (see wire.h). */
#include "wire/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Nesting bound when skipping unknown values: deep input must not overflow
 * the stack. */
#define SKIP_DEPTH 32

/* ------------------------------------------------------------------ */
/* Codes and names                                                      */

const char *wire_strerror(int code)
{
	switch (code) {
	case WIRE_OK:
		return "ok";
	case WIRE_ENOQUEUE:
		return "no such queue";
	case WIRE_ENOTOPIC:
		return "no such topic";
	case WIRE_EEXISTS:
		return "already exists with different options";
	case WIRE_EINVAL:
		return "invalid argument";
	case WIRE_ETOOBIG:
		return "payload too large";
	case WIRE_EFULL:
		return "queue full";
	case WIRE_ENOCONSUMER:
		return "no such consumer";
	case WIRE_ENOMSG:
		return "no such message";
	case WIRE_EMALFORMED:
		return "malformed command";
	case WIRE_ELIMIT:
		return "limit reached";
	case WIRE_ENOTEMPTY:
		return "queue not empty";
	case WIRE_EINUSE:
		return "exclusive queue in use";
	case WIRE_ENOMEM:
		return "out of memory";
	case WIRE_ECLUSTERFULL:
		return "cluster full: retry later";
	case WIRE_EPROTO:
		return "protocol error";
	case WIRE_EFRAME:
		return "frame too large";
	case WIRE_EVERSION:
		return "unsupported protocol version";
	case WIRE_ENOTLEADER:
		return "not the leader";
	case WIRE_EUNAVAILABLE:
		return "cluster unavailable";
	case WIRE_EUNKNOWN:
		return "outcome unknown";
	case WIRE_EBUSY:
		return "busy";
	case WIRE_ETIMEOUT:
		return "timed out";
	case WIRE_ESHUTDOWN:
		return "node shutting down";
	case WIRE_EHELLO:
		return "hello expected first";
	default:
		return "unknown error";
	}
}

int wire_retryable(int code)
{
	switch (code) {
	case WIRE_ENOTLEADER:
	case WIRE_EUNAVAILABLE:
	case WIRE_EUNKNOWN:
	case WIRE_EBUSY:
	case WIRE_ETIMEOUT:
	case WIRE_ESHUTDOWN:
	case WIRE_ECLUSTERFULL:
		return 1;
	default:
		return 0;
	}
}

static const char *const kind_names[] = {"fanout", "direct", "topic"};
static const char *const overflow_names[] = {"reject-publish", "drop-head"};
static const char *const mode_names[] = {"requeue", "dead-letter"};

static int name_parse(const char *const *names, int n, const char *s,
                      size_t len)
{
	for (int i = 0; i < n; i++)
		if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0)
			return i;
	return -1;
}

int wire_kind_parse(const char *s, size_t len)
{
	return name_parse(kind_names, 3, s, len);
}

const char *wire_kind_name(int kind)
{
	return kind >= 0 && kind < 3 ? kind_names[kind] : "?";
}

int wire_overflow_parse(const char *s, size_t len)
{
	return name_parse(overflow_names, 2, s, len);
}

const char *wire_overflow_name(int overflow)
{
	return overflow >= 0 && overflow < 2 ? overflow_names[overflow] : "?";
}

int wire_mode_parse(const char *s, size_t len)
{
	return name_parse(mode_names, 2, s, len);
}

const char *wire_mode_name(int mode)
{
	return mode >= 0 && mode < 2 ? mode_names[mode] : "?";
}

const char *wire_op_name(int op)
{
	static const char *const req[WIRE_OP_REQUEST_MAX] = {
	    [WIRE_OP_HELLO] = "HELLO",
	    [WIRE_OP_QUEUE_DECLARE] = "QUEUE_DECLARE",
	    [WIRE_OP_QUEUE_DELETE] = "QUEUE_DELETE",
	    [WIRE_OP_QUEUE_PURGE] = "QUEUE_PURGE",
	    [WIRE_OP_QUEUE_STATS] = "QUEUE_STATS",
	    [WIRE_OP_QUEUE_LIST] = "QUEUE_LIST",
	    [WIRE_OP_TOPIC_DECLARE] = "TOPIC_DECLARE",
	    [WIRE_OP_TOPIC_DELETE] = "TOPIC_DELETE",
	    [WIRE_OP_BIND] = "BIND",
	    [WIRE_OP_UNBIND] = "UNBIND",
	    [WIRE_OP_TOPIC_LIST] = "TOPIC_LIST",
	    [WIRE_OP_PUBLISH] = "PUBLISH",
	    [WIRE_OP_CONSUME] = "CONSUME",
	    [WIRE_OP_CANCEL] = "CANCEL",
	    [WIRE_OP_GET] = "GET",
	    [WIRE_OP_ACK] = "ACK",
	    [WIRE_OP_NACK] = "NACK",
	    [WIRE_OP_EXTEND] = "EXTEND",
	    [WIRE_OP_STATUS] = "STATUS",
	    [WIRE_OP_CONFIG_GET] = "CONFIG_GET",
	    [WIRE_OP_CONFIG_SET] = "CONFIG_SET",
	    [WIRE_OP_HEARTBEAT] = "HEARTBEAT"};
	static const char *const rep[] = {"HELLO_OK", "OK", "ERROR", "DELIVER",
	                                  "CANCELLED"};

	if (op > 0 && op < WIRE_OP_REQUEST_MAX)
		return req[op] != NULL ? req[op] : "?";
	if (op >= WIRE_OP_HELLO_OK && op < WIRE_OP_MAX)
		return rep[op - WIRE_OP_HELLO_OK];
	return "?";
}

/* ------------------------------------------------------------------ */
/* Field tables                                                         */

#define B(f) WIRE_BIT(WIRE_F_##f)

uint64_t wire_fields(uint8_t op)
{
	switch (op) {
	case WIRE_OP_HELLO:
		return B(VERSION) | B(CLIENT) | B(HEARTBEAT);
	case WIRE_OP_QUEUE_DECLARE:
		return B(NAME) | B(OPTS);
	case WIRE_OP_QUEUE_DELETE:
		return B(NAME) | B(IF_EMPTY);
	case WIRE_OP_QUEUE_PURGE:
	case WIRE_OP_QUEUE_STATS:
	case WIRE_OP_TOPIC_DELETE:
		return B(NAME);
	case WIRE_OP_TOPIC_DECLARE:
		return B(NAME) | B(KIND);
	case WIRE_OP_BIND:
	case WIRE_OP_UNBIND:
		return B(TOPIC) | B(QUEUE) | B(KEY);
	case WIRE_OP_PUBLISH:
		return B(TOPIC) | B(KEY) | B(ID) | B(TYPE) | B(CORRELATION_ID) |
		       B(REPLY_TO) | B(HEADERS) | B(PAYLOAD) | B(TTL) |
		       B(DELAY);
	case WIRE_OP_CONSUME:
		return B(QUEUE) | B(PREFETCH);
	case WIRE_OP_CANCEL:
		return B(CONSUMER);
	case WIRE_OP_GET:
		return B(QUEUE) | B(MAX) | B(TIMEOUT);
	case WIRE_OP_ACK:
		return B(QUEUE_ID) | B(SEQ);
	case WIRE_OP_NACK:
		return B(QUEUE_ID) | B(SEQ) | B(MODE);
	case WIRE_OP_EXTEND:
		return B(QUEUE_ID) | B(SEQ) | B(TIMEOUT);
	case WIRE_OP_CONFIG_SET:
		return B(CONFIG);
	case WIRE_OP_HELLO_OK:
		return B(VERSION) | B(NODE_ID) | B(MAX_FRAME) | B(MAX_PAYLOAD) |
		       B(HEARTBEAT);
	case WIRE_OP_ERROR:
		return B(CODE) | B(MESSAGE) | B(RETRYABLE) | B(LEADER);
	case WIRE_OP_DELIVER:
		return B(CONSUMER) | B(QUEUE) | B(QUEUE_ID) | B(SEQ) |
		       B(DELIVERY_COUNT) | B(REDELIVERED) | B(TIMESTAMP) |
		       B(ID) | B(TYPE) | B(CORRELATION_ID) | B(REPLY_TO) |
		       B(HEADERS) | B(PAYLOAD);
	case WIRE_OP_CANCELLED:
		return B(CONSUMER) | B(QUEUE) | B(REASON) | B(MESSAGE);
	default:
		return 0;
	}
}

uint64_t wire_required(uint8_t op)
{
	switch (op) {
	case WIRE_OP_HELLO:
	case WIRE_OP_HELLO_OK:
		return B(VERSION);
	case WIRE_OP_QUEUE_DECLARE:
	case WIRE_OP_QUEUE_DELETE:
	case WIRE_OP_QUEUE_PURGE:
	case WIRE_OP_QUEUE_STATS:
	case WIRE_OP_TOPIC_DELETE:
		return B(NAME);
	case WIRE_OP_TOPIC_DECLARE:
		return B(NAME) | B(KIND);
	case WIRE_OP_BIND:
	case WIRE_OP_UNBIND:
		return B(TOPIC) | B(QUEUE);
	case WIRE_OP_PUBLISH:
		return B(PAYLOAD);
	case WIRE_OP_CONSUME:
		return B(QUEUE) | B(PREFETCH);
	case WIRE_OP_CANCEL:
	case WIRE_OP_CANCELLED:
		return B(CONSUMER);
	case WIRE_OP_GET:
		return B(QUEUE);
	case WIRE_OP_ACK:
	case WIRE_OP_NACK:
		return B(QUEUE_ID) | B(SEQ);
	case WIRE_OP_EXTEND:
		return B(QUEUE_ID) | B(SEQ) | B(TIMEOUT);
	case WIRE_OP_CONFIG_SET:
		return B(CONFIG);
	case WIRE_OP_ERROR:
		return B(CODE);
	case WIRE_OP_DELIVER:
		return B(QUEUE_ID) | B(SEQ) | B(PAYLOAD);
	default:
		return 0;
	}
}

/* Value types of keys. */
enum {
	T_U64,
	T_U32,
	T_BOOL, /* uint8_t */
	T_STR,  /* struct wire_str; str or bin accepted */
	T_BIN,  /* like T_STR, packed as bin */
	T_KIND,
	T_OVERFLOW,
	T_MODE,
	T_HEADERS,
	T_RAW, /* array kept raw (struct wire_raw) */
	T_SPECIAL
};

struct key_desc {
	const char *key;
	uint8_t len;
	uint8_t field; /* enum wire_field */
	uint8_t type;
	uint16_t off; /* offset in struct wire_msg */
};

#define M(x) ((uint16_t)offsetof(struct wire_msg, x))
#define K(k, f, t, o)                                                          \
	{                                                                      \
		k, sizeof(k) - 1, WIRE_F_##f, t, M(o)                          \
	}

/* Every key, sorted by bytes (binary search). Option keys land in m->opts
 * and counter keys in m->stats; "delay" is both the publish delay and the
 * queue option (wire_decode copies it into opts). */
static const struct key_desc keys[] = {
    K("ack_timeout", OPTS, T_U64, opts.ack_timeout),
    K("acked", STATS, T_U64, stats.acked),
    K("applied", APPLIED, T_U64, applied),
    K("applied_index", APPLIED_INDEX, T_U64, applied_index),
    K("auto_delete", OPTS, T_BOOL, opts.auto_delete),
    K("bytes", STATS, T_U64, stats.bytes),
    K("client", CLIENT, T_STR, client),
    K("code", CODE, T_U32, code),
    K("commit_index", COMMIT_INDEX, T_U64, commit_index),
    K("config", CONFIG, T_RAW, config_raw),
    K("consumer", CONSUMER, T_U64, consumer),
    K("consumers", STATS, T_U64, stats.consumers),
    K("correlation_id", CORRELATION_ID, T_STR, correlation_id),
    K("count", COUNT, T_U32, count),
    K("created", CREATED, T_BOOL, created),
    K("dead_lettered", STATS, T_U64, stats.dead_lettered),
    K("dedup_window", OPTS, T_U64, opts.dedup_window),
    K("deduplicated", STATS, T_U64, stats.deduplicated),
    K("delay", DELAY, T_U64, delay),
    K("delayed", STATS, T_U64, stats.delayed),
    K("delivery_count", DELIVERY_COUNT, T_U32, delivery_count),
    K("digest", DIGEST, T_U64, digest),
    K("diverged", DIVERGED, T_BOOL, diverged),
    K("dlq", OPTS, T_STR, opts.dlq),
    K("dropped", STATS, T_U64, stats.dropped),
    K("duplicate", DUPLICATE, T_BOOL, duplicate),
    K("exclusive", OPTS, T_BOOL, opts.exclusive),
    K("expired", STATS, T_U64, stats.expired),
    K("headers", HEADERS, T_HEADERS, headers),
    K("heartbeat", HEARTBEAT, T_U32, heartbeat),
    K("id", ID, T_STR, id),
    K("if_empty", IF_EMPTY, T_BOOL, if_empty),
    K("in_flight", STATS, T_U64, stats.in_flight),
    K("key", KEY, T_STR, key),
    K("kind", KIND, T_KIND, kind),
    K("last_index", LAST_INDEX, T_U64, last_index),
    K("last_seq", STATS, T_U64, stats.last_seq),
    K("leader", LEADER, T_STR, leader),
    K("leader_id", LEADER_ID, T_U64, leader_id),
    K("list", LIST, T_RAW, list_raw),
    K("max", MAX, T_U32, max),
    K("max_bytes", OPTS, T_U64, opts.max_bytes),
    K("max_deliveries", OPTS, T_U32, opts.max_deliveries),
    K("max_frame", MAX_FRAME, T_U32, max_frame),
    K("max_length", OPTS, T_U64, opts.max_length),
    K("max_payload", MAX_PAYLOAD, T_U32, max_payload),
    K("members", MEMBERS, T_RAW, members_raw),
    K("message", MESSAGE, T_STR, message),
    K("message_ttl", OPTS, T_U64, opts.message_ttl),
    K("mode", MODE, T_MODE, mode),
    K("name", NAME, T_STR, name),
    K("node_id", NODE_ID, T_U64, node_id),
    K("overflow", OPTS, T_OVERFLOW, opts.overflow),
    K("payload", PAYLOAD, T_BIN, payload),
    K("prefetch", PREFETCH, T_U32, prefetch),
    K("published", STATS, T_U64, stats.published),
    K("queue", QUEUE, T_STR, queue),
    K("queue_id", QUEUE_ID, T_U32, queue_id),
    K("queues", QUEUES, T_U32, queues),
    K("ready", STATS, T_U64, stats.ready),
    K("reason", REASON, T_U32, reason),
    K("redelivered", REDELIVERED, T_BOOL, redelivered),
    K("removed", REMOVED, T_U64, removed),
    K("reply_to", REPLY_TO, T_STR, reply_to),
    K("retryable", RETRYABLE, T_BOOL, retryable),
    K("role", ROLE, T_STR, role),
    K("seq", SEQ, T_U64, seq),
    K("term", TERM, T_U64, term),
    K("timeout", TIMEOUT, T_U64, timeout),
    K("timestamp", TIMESTAMP, T_U64, timestamp),
    K("topic", TOPIC, T_STR, topic),
    K("topics", TOPICS, T_RAW, topics_raw),
    K("ttl", TTL, T_U64, ttl),
    K("type", TYPE, T_STR, type),
    K("version", VERSION, T_U32, version),
};

#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

/* Per field: how wire_encode() writes it. The groups (OPTS, STATS) and the
 * streamed lists (LIST, TOPICS) have their own code and no entry. */
static const struct key_desc fields[WIRE_F_COUNT_] = {
    [WIRE_F_VERSION] = K("version", VERSION, T_U32, version),
    [WIRE_F_CLIENT] = K("client", CLIENT, T_STR, client),
    [WIRE_F_NODE_ID] = K("node_id", NODE_ID, T_U64, node_id),
    [WIRE_F_MAX_FRAME] = K("max_frame", MAX_FRAME, T_U32, max_frame),
    [WIRE_F_MAX_PAYLOAD] = K("max_payload", MAX_PAYLOAD, T_U32, max_payload),
    [WIRE_F_NAME] = K("name", NAME, T_STR, name),
    [WIRE_F_QUEUE] = K("queue", QUEUE, T_STR, queue),
    [WIRE_F_TOPIC] = K("topic", TOPIC, T_STR, topic),
    [WIRE_F_KEY] = K("key", KEY, T_STR, key),
    [WIRE_F_IF_EMPTY] = K("if_empty", IF_EMPTY, T_BOOL, if_empty),
    [WIRE_F_KIND] = K("kind", KIND, T_KIND, kind),
    [WIRE_F_ID] = K("id", ID, T_STR, id),
    [WIRE_F_TYPE] = K("type", TYPE, T_STR, type),
    [WIRE_F_CORRELATION_ID] =
        K("correlation_id", CORRELATION_ID, T_STR, correlation_id),
    [WIRE_F_REPLY_TO] = K("reply_to", REPLY_TO, T_STR, reply_to),
    [WIRE_F_HEADERS] = K("headers", HEADERS, T_HEADERS, headers),
    [WIRE_F_PAYLOAD] = K("payload", PAYLOAD, T_BIN, payload),
    [WIRE_F_TTL] = K("ttl", TTL, T_U64, ttl),
    [WIRE_F_DELAY] = K("delay", DELAY, T_U64, delay),
    [WIRE_F_PREFETCH] = K("prefetch", PREFETCH, T_U32, prefetch),
    [WIRE_F_CONSUMER] = K("consumer", CONSUMER, T_U64, consumer),
    [WIRE_F_MAX] = K("max", MAX, T_U32, max),
    [WIRE_F_TIMEOUT] = K("timeout", TIMEOUT, T_U64, timeout),
    [WIRE_F_QUEUE_ID] = K("queue_id", QUEUE_ID, T_U32, queue_id),
    [WIRE_F_SEQ] = K("seq", SEQ, T_U64, seq),
    [WIRE_F_MODE] = K("mode", MODE, T_MODE, mode),
    [WIRE_F_CREATED] = K("created", CREATED, T_BOOL, created),
    [WIRE_F_QUEUES] = K("queues", QUEUES, T_U32, queues),
    [WIRE_F_DUPLICATE] = K("duplicate", DUPLICATE, T_BOOL, duplicate),
    [WIRE_F_COUNT] = K("count", COUNT, T_U32, count),
    [WIRE_F_REMOVED] = K("removed", REMOVED, T_U64, removed),
    [WIRE_F_DELIVERY_COUNT] =
        K("delivery_count", DELIVERY_COUNT, T_U32, delivery_count),
    [WIRE_F_REDELIVERED] = K("redelivered", REDELIVERED, T_BOOL, redelivered),
    [WIRE_F_TIMESTAMP] = K("timestamp", TIMESTAMP, T_U64, timestamp),
    [WIRE_F_CODE] = K("code", CODE, T_U32, code),
    [WIRE_F_MESSAGE] = K("message", MESSAGE, T_STR, message),
    [WIRE_F_RETRYABLE] = K("retryable", RETRYABLE, T_BOOL, retryable),
    [WIRE_F_LEADER] = K("leader", LEADER, T_STR, leader),
    [WIRE_F_REASON] = K("reason", REASON, T_U32, reason),
    [WIRE_F_ROLE] = K("role", ROLE, T_STR, role),
    [WIRE_F_LEADER_ID] = K("leader_id", LEADER_ID, T_U64, leader_id),
    [WIRE_F_TERM] = K("term", TERM, T_U64, term),
    [WIRE_F_COMMIT_INDEX] =
        K("commit_index", COMMIT_INDEX, T_U64, commit_index),
    [WIRE_F_APPLIED_INDEX] =
        K("applied_index", APPLIED_INDEX, T_U64, applied_index),
    [WIRE_F_LAST_INDEX] = K("last_index", LAST_INDEX, T_U64, last_index),
    [WIRE_F_MEMBERS] = K("members", MEMBERS, T_RAW, members_raw),
    [WIRE_F_CONFIG] = K("config", CONFIG, T_RAW, config_raw),
    [WIRE_F_APPLIED] = K("applied", APPLIED, T_U64, applied),
    [WIRE_F_DIGEST] = K("digest", DIGEST, T_U64, digest),
    [WIRE_F_DIVERGED] = K("diverged", DIVERGED, T_BOOL, diverged),
    [WIRE_F_HEARTBEAT] = K("heartbeat", HEARTBEAT, T_U32, heartbeat),
};

static const struct key_desc *field_desc(int field)
{
	return &fields[field];
}

static const struct key_desc *key_find(const char *k, uint32_t len)
{
	size_t lo = 0, hi = N_KEYS;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct key_desc *d = &keys[mid];
		size_t n = len < d->len ? len : d->len;
		int c = memcmp(k, d->key, n);

		if (c == 0)
			c = (int)len - (int)d->len;
		if (c == 0)
			return d;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Reader: a bounds-checked msgpack cursor that borrows.                */

struct rd {
	const uint8_t *p;
	const uint8_t *e;
};

static inline int rd_need(const struct rd *r, size_t n)
{
	return (size_t)(r->e - r->p) >= n;
}

static inline uint64_t be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Reads an unsigned integer (any width; non-negative signed accepted). */
static int rd_uint(struct rd *r, uint64_t *v)
{
	uint8_t c;
	int n;

	if (!rd_need(r, 1))
		return -1;
	c = *r->p;
	if (c <= 0x7f) {
		*v = c;
		r->p++;
		return 0;
	}
	switch (c) {
	case 0xcc:
	case 0xd0:
		n = 1;
		break;
	case 0xcd:
	case 0xd1:
		n = 2;
		break;
	case 0xce:
	case 0xd2:
		n = 4;
		break;
	case 0xcf:
	case 0xd3:
		n = 8;
		break;
	default:
		return -1;
	}
	if (!rd_need(r, 1 + (size_t)n))
		return -1;
	*v = be(r->p + 1, n);
	if (c >= 0xd0 && (r->p[1] & 0x80))
		return -1; /* negative */
	r->p += 1 + n;
	return 0;
}

static int rd_bool(struct rd *r, uint8_t *v)
{
	uint64_t u;

	if (rd_need(r, 1) && (*r->p == 0xc2 || *r->p == 0xc3)) {
		*v = *r->p == 0xc3;
		r->p++;
		return 0;
	}
	if (rd_uint(r, &u) || u > 1)
		return -1;
	*v = (uint8_t)u;
	return 0;
}

/* A str or bin. */
static int rd_str(struct rd *r, struct wire_str *s)
{
	uint8_t c;
	size_t hl;
	uint64_t n;

	if (!rd_need(r, 1))
		return -1;
	c = *r->p;
	if ((c & 0xe0) == 0xa0) {
		hl = 1;
		n = c & 0x1f;
	} else if (c == 0xd9 || c == 0xc4) {
		hl = 2;
	} else if (c == 0xda || c == 0xc5) {
		hl = 3;
	} else if (c == 0xdb || c == 0xc6) {
		hl = 5;
	} else {
		return -1;
	}
	if (!rd_need(r, hl))
		return -1;
	if (hl > 1)
		n = be(r->p + 1, (int)hl - 1);
	if (n > UINT32_MAX || (size_t)(r->e - r->p) - hl < n)
		return -1;
	s->ptr = (const char *)r->p + hl;
	s->len = (uint32_t)n;
	r->p += hl + n;
	return 0;
}

static int rd_container(struct rd *r, uint32_t *n, int map)
{
	uint8_t c;

	if (!rd_need(r, 1))
		return -1;
	c = *r->p;
	if ((c & 0xf0) == (map ? 0x80 : 0x90)) {
		*n = c & 0x0f;
		r->p++;
		return 0;
	}
	if (c == (map ? 0xde : 0xdc)) {
		if (!rd_need(r, 3))
			return -1;
		*n = (uint32_t)be(r->p + 1, 2);
		r->p += 3;
		return 0;
	}
	if (c == (map ? 0xdf : 0xdd)) {
		if (!rd_need(r, 5))
			return -1;
		*n = (uint32_t)be(r->p + 1, 4);
		r->p += 5;
		return 0;
	}
	return -1;
}

static int rd_skip(struct rd *r, int depth)
{
	uint8_t c;
	uint64_t n = 0;
	size_t hl = 1;

	if (depth <= 0 || !rd_need(r, 1))
		return -1;
	c = *r->p;
	if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
		r->p++;
		return 0;
	}
	if ((c & 0xe0) == 0xa0 || c == 0xd9 || c == 0xda || c == 0xdb ||
	    c == 0xc4 || c == 0xc5 || c == 0xc6) {
		struct wire_str s;

		return rd_str(r, &s);
	}
	if ((c & 0xf0) == 0x80 || (c & 0xf0) == 0x90 || c == 0xdc ||
	    c == 0xdd || c == 0xde || c == 0xdf) {
		uint32_t cnt;
		int map = (c & 0xf0) == 0x80 || c == 0xde || c == 0xdf;

		if (rd_container(r, &cnt, map))
			return -1;
		n = map ? 2 * (uint64_t)cnt : cnt;
		/* Every element needs at least one byte: reject absurd
		 * counts before looping over them. */
		if (n > (uint64_t)(r->e - r->p))
			return -1;
		for (uint64_t i = 0; i < n; i++)
			if (rd_skip(r, depth - 1))
				return -1;
		return 0;
	}
	switch (c) {
	case 0xcc:
	case 0xd0:
		n = 1;
		break;
	case 0xcd:
	case 0xd1:
		n = 2;
		break;
	case 0xce:
	case 0xd2:
	case 0xca:
		n = 4;
		break;
	case 0xcf:
	case 0xd3:
	case 0xcb:
		n = 8;
		break;
	case 0xd4:
		n = 2;
		break;
	case 0xd5:
		n = 3;
		break;
	case 0xd6:
		n = 5;
		break;
	case 0xd7:
		n = 9;
		break;
	case 0xd8:
		n = 17;
		break;
	case 0xc7:
	case 0xc8:
	case 0xc9:
		hl = c == 0xc7 ? 2 : c == 0xc8 ? 3 : 5;
		if (!rd_need(r, hl))
			return -1;
		n = be(r->p + 1, (int)hl - 1) + 1; /* + type byte */
		break;
	default:
		return -1; /* 0xc1 is never used */
	}
	if ((uint64_t)(r->e - r->p) - hl < n)
		return -1;
	r->p += hl + n;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Decoder                                                              */

static void fix_str(struct wire_str *s)
{
	if (s->ptr == NULL)
		s->ptr = "";
}

/* Reads one value for key `d` into the message. Returns 0 or sets m->err. */
static int decode_value(struct rd *r, const struct key_desc *d,
                        struct wire_msg *m, struct wire_header *hdrs,
                        uint32_t max_headers)
{
	char *base = (char *)m + d->off;
	uint64_t u;
	struct wire_str s;
	int v;

	switch (d->type) {
	case T_U64:
		if (rd_uint(r, &u))
			goto bad;
		memcpy(base, &u, sizeof(u));
		return 0;
	case T_U32:
		if (rd_uint(r, &u) || u > UINT32_MAX)
			goto bad;
		{
			uint32_t x = (uint32_t)u;

			memcpy(base, &x, sizeof(x));
		}
		return 0;
	case T_BOOL:
		if (rd_bool(r, (uint8_t *)base))
			goto bad;
		return 0;
	case T_STR:
	case T_BIN:
		if (rd_str(r, (struct wire_str *)base))
			goto bad;
		return 0;
	case T_KIND:
	case T_OVERFLOW:
	case T_MODE: {
		int nmax = d->type == T_KIND ? 3 : 2;

		if (rd_need(r, 1) &&
		    (*r->p <= 0x7f || *r->p == 0xcc || *r->p == 0xcd ||
		     *r->p == 0xce || *r->p == 0xcf)) {
			if (rd_uint(r, &u) || u >= (uint64_t)nmax)
				goto bad;
			v = (int)u;
		} else {
			if (rd_str(r, &s))
				goto bad;
			v = d->type == T_KIND ? wire_kind_parse(s.ptr, s.len)
			    : d->type == T_OVERFLOW
			        ? wire_overflow_parse(s.ptr, s.len)
			        : wire_mode_parse(s.ptr, s.len);
			if (v < 0)
				goto bad;
		}
		*(uint8_t *)base = (uint8_t)v;
		return 0;
	}
	case T_HEADERS: {
		uint32_t n;

		if (rd_container(r, &n, 1))
			goto bad;
		if (n > max_headers) {
			m->err = "too many headers";
			return -1;
		}
		for (uint32_t i = 0; i < n; i++) {
			struct wire_str k, val;

			if (rd_str(r, &k) || rd_str(r, &val))
				goto bad;
			hdrs[i].key = k.ptr;
			hdrs[i].key_len = k.len;
			hdrs[i].val = val.ptr;
			hdrs[i].val_len = val.len;
		}
		m->headers = n ? hdrs : NULL;
		m->n_headers = n;
		return 0;
	}
	case T_RAW: {
		struct wire_raw *raw = (struct wire_raw *)base;
		const uint8_t *start = r->p;
		uint32_t n;

		if (rd_container(r, &n, 0))
			goto bad;
		r->p = start;
		if (rd_skip(r, SKIP_DEPTH))
			goto bad;
		raw->ptr = (const char *)start;
		raw->len = (size_t)(r->p - start);
		raw->n = n;
		return 0;
	}
	}
bad:
	m->err = "bad value type or range for a field";
	return -1;
}

/* Parses a fields map into `m` (which the caller zeroed). */
static int decode_map(struct rd *r, struct wire_msg *m,
                      struct wire_header *hdrs, uint32_t max_headers)
{
	uint32_t n;

	if (rd_container(r, &n, 1)) {
		m->err = "fields must be a map";
		return -1;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct wire_str k;
		const struct key_desc *d;

		if (rd_str(r, &k)) {
			m->err = "field keys must be strings";
			return -1;
		}
		d = key_find(k.ptr, k.len);
		if (d == NULL) {
			if (rd_skip(r, SKIP_DEPTH)) {
				m->err = "malformed value of an unknown field";
				return -1;
			}
			continue;
		}
		if (decode_value(r, d, m, hdrs, max_headers))
			return -1;
		m->present |= WIRE_BIT(d->field);
	}
	return 0;
}

/* Gives every string a non-NULL pointer and fills derived fields. */
static void finish_msg(struct wire_msg *m)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (keys[i].type == T_STR || keys[i].type == T_BIN)
			fix_str((struct wire_str *)((char *)m + keys[i].off));
	if (m->present & B(DELAY))
		m->opts.delay = m->delay;
	m->stats.name = m->name;
	m->stats.queue_id = m->queue_id;
	m->stats.opts = m->opts;
	if (m->op == WIRE_OP_GET && !(m->present & B(MAX)))
		m->max = 1;
}

static const char *const missing_msgs[WIRE_F_COUNT_] = {
#define X(f, k) [WIRE_F_##f] = "missing required field \"" k "\""
    X(VERSION, "version"),   X(NAME, "name"),         X(QUEUE, "queue"),
    X(TOPIC, "topic"),       X(KIND, "kind"),         X(PAYLOAD, "payload"),
    X(PREFETCH, "prefetch"), X(CONSUMER, "consumer"), X(QUEUE_ID, "queue_id"),
    X(SEQ, "seq"),           X(TIMEOUT, "timeout"),   X(CODE, "code"),
    X(CONFIG, "config"),
#undef X
};

int wire_decode(const void *body, size_t len, struct wire_msg *out,
                struct wire_header *headers, uint32_t max_headers)
{
	struct rd r = {body, (const uint8_t *)body + len};
	uint32_t n;
	uint64_t op, req;
	uint64_t missing;

	memset(out, 0, sizeof(*out));
	if (rd_container(&r, &n, 0) || n != 3) {
		out->err = "body must be an array [op, req_id, fields]";
		goto fail;
	}
	if (rd_uint(&r, &op) || rd_uint(&r, &req)) {
		out->err = "op and req_id must be unsigned integers";
		goto fail;
	}
	if (!((op >= 1 && op < WIRE_OP_REQUEST_MAX) ||
	      (op >= WIRE_OP_HELLO_OK && op < WIRE_OP_MAX))) {
		out->err = "unknown op";
		goto fail;
	}
	out->op = (uint8_t)op;
	out->req_id = req;
	if (decode_map(&r, out, headers, max_headers))
		goto fail;
	if (r.p != r.e) {
		out->err = "trailing bytes after the fields map";
		goto fail;
	}
	missing = wire_required(out->op) & ~out->present;
	if (missing) {
		int f = __builtin_ctzll(missing);

		out->err = missing_msgs[f] ? missing_msgs[f]
		                           : "missing required field";
		goto fail;
	}
	finish_msg(out);
	return 0;
fail : {
	const char *err = out->err;
	uint8_t o = out->op;
	uint64_t q = out->req_id;

	/* Keep op and req_id (when they were read) so that the node can
	 * answer the request with an error. */
	memset(out, 0, sizeof(*out));
	out->op = o;
	out->req_id = q;
	out->err = err;
	return WIRE_EPROTO;
}
}

void wire_iter_init(struct wire_iter *it, const struct wire_raw *raw)
{
	struct rd r = {(const uint8_t *)raw->ptr,
	               (const uint8_t *)raw->ptr + raw->len};
	uint32_t n = 0;

	it->ptr = raw->ptr;
	it->len = raw->len;
	it->pos = 0;
	it->left = 0;
	if (raw->ptr != NULL && rd_container(&r, &n, 0) == 0) {
		it->pos = (size_t)(r.p - (const uint8_t *)raw->ptr);
		it->left = n;
	}
}

/* Sets up a reader at the iterator; 0 at the end. */
static int iter_start(struct wire_iter *it, struct rd *r)
{
	if (it->left == 0)
		return 0;
	r->p = (const uint8_t *)it->ptr + it->pos;
	r->e = (const uint8_t *)it->ptr + it->len;
	return 1;
}

static int iter_done(struct wire_iter *it, struct rd *r, int ok)
{
	if (!ok) {
		it->left = 0;
		return -1;
	}
	it->pos = (size_t)(r->p - (const uint8_t *)it->ptr);
	it->left--;
	return 1;
}

int wire_next_queue(struct wire_iter *it, struct wire_queue_stats *out)
{
	struct wire_msg m;
	struct rd r;

	if (!iter_start(it, &r))
		return 0;
	memset(&m, 0, sizeof(m));
	if (decode_map(&r, &m, NULL, 0))
		return iter_done(it, &r, 0);
	finish_msg(&m);
	*out = m.stats;
	return iter_done(it, &r, 1);
}

/* Reads a small map whose keys are matched by `cb`; unknown keys skipped. */
static int small_map(struct rd *r, void *out,
                     int (*cb)(struct rd *r, const struct wire_str *k,
                               void *out))
{
	uint32_t n;

	if (rd_container(r, &n, 1))
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		struct wire_str k;
		int rc;

		if (rd_str(r, &k))
			return -1;
		rc = cb(r, &k, out);
		if (rc < 0)
			return -1;
		if (rc == 0 && rd_skip(r, SKIP_DEPTH))
			return -1;
	}
	return 0;
}

static int key_is(const struct wire_str *k, const char *s)
{
	return k->len == strlen(s) && memcmp(k->ptr, s, k->len) == 0;
}

/* Callbacks return 1 when they consumed the value, 0 to skip it, -1 bad. */
static int member_key(struct rd *r, const struct wire_str *k, void *out)
{
	struct wire_member *mb = out;

	if (key_is(k, "node_id"))
		return rd_uint(r, &mb->id) ? -1 : 1;
	if (key_is(k, "raft_address"))
		return rd_str(r, &mb->raft_address) ? -1 : 1;
	if (key_is(k, "client_address"))
		return rd_str(r, &mb->client_address) ? -1 : 1;
	return 0;
}

int wire_next_member(struct wire_iter *it, struct wire_member *out)
{
	struct rd r;

	if (!iter_start(it, &r))
		return 0;
	memset(out, 0, sizeof(*out));
	if (small_map(&r, out, member_key))
		return iter_done(it, &r, 0);
	fix_str(&out->raft_address);
	fix_str(&out->client_address);
	return iter_done(it, &r, 1);
}

static int binding_key(struct rd *r, const struct wire_str *k, void *out)
{
	struct wire_binding *b = out;

	if (key_is(k, "queue"))
		return rd_str(r, &b->queue) ? -1 : 1;
	if (key_is(k, "key"))
		return rd_str(r, &b->key) ? -1 : 1;
	return 0;
}

int wire_next_binding(struct wire_iter *it, struct wire_binding *out)
{
	struct rd r;

	if (!iter_start(it, &r))
		return 0;
	memset(out, 0, sizeof(*out));
	if (small_map(&r, out, binding_key))
		return iter_done(it, &r, 0);
	fix_str(&out->queue);
	fix_str(&out->key);
	return iter_done(it, &r, 1);
}

static int topic_key(struct rd *r, const struct wire_str *k, void *out)
{
	struct wire_topic *t = out;

	if (key_is(k, "name"))
		return rd_str(r, &t->name) ? -1 : 1;
	if (key_is(k, "kind")) {
		uint64_t u;

		if (rd_uint(r, &u) == 0)
			return u < 3 ? (t->kind = (uint8_t)u, 1) : -1;
		{
			struct wire_str s;
			int v;

			if (rd_str(r, &s))
				return -1;
			v = wire_kind_parse(s.ptr, s.len);
			if (v < 0)
				return -1;
			t->kind = (uint8_t)v;
			return 1;
		}
	}
	if (key_is(k, "bindings")) {
		const uint8_t *start = r->p;
		uint32_t n;

		if (rd_container(r, &n, 0))
			return -1;
		r->p = start;
		if (rd_skip(r, SKIP_DEPTH))
			return -1;
		t->bindings.ptr = (const char *)start;
		t->bindings.len = (size_t)(r->p - start);
		t->bindings.n = n;
		return 1;
	}
	return 0;
}

int wire_next_topic(struct wire_iter *it, struct wire_topic *out)
{
	struct rd r;

	if (!iter_start(it, &r))
		return 0;
	memset(out, 0, sizeof(*out));
	if (small_map(&r, out, topic_key))
		return iter_done(it, &r, 0);
	fix_str(&out->name);
	return iter_done(it, &r, 1);
}

int wire_next_config(struct wire_iter *it, struct wire_kv *out)
{
	struct rd r;
	uint32_t n;

	if (!iter_start(it, &r))
		return 0;
	memset(out, 0, sizeof(*out));
	if (rd_container(&r, &n, 0) || n != 2 || rd_str(&r, &out->key) ||
	    rd_uint(&r, &out->value))
		return iter_done(it, &r, 0);
	fix_str(&out->key);
	return iter_done(it, &r, 1);
}

/* ------------------------------------------------------------------ */
/* Output buffer and packer                                             */

void wire_buf_init(struct wire_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void wire_buf_free(struct wire_buf *b)
{
	free(b->data);
	wire_buf_init(b);
}

int wire_buf_reserve(struct wire_buf *b, size_t n)
{
	size_t cap;
	char *p;

	if (b->cap - b->len >= n)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap - b->len < n) {
		if (cap > SIZE_MAX / 2)
			return WIRE_ENOMEM;
		cap *= 2;
	}
	p = realloc(b->data, cap);
	if (p == NULL)
		return WIRE_ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

void wire_buf_consume(struct wire_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

int wire_buf_append(struct wire_buf *b, const void *p, size_t n)
{
	if (wire_buf_reserve(b, n))
		return WIRE_ENOMEM;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

/* The packer writes into b; the first allocation failure sticks in err. */
struct pk {
	struct wire_buf *b;
	int err;
};

static inline uint8_t *pk_room(struct pk *p, size_t n)
{
	uint8_t *w;

	if (p->err || wire_buf_reserve(p->b, n)) {
		p->err = WIRE_ENOMEM;
		return NULL;
	}
	w = (uint8_t *)p->b->data + p->b->len;
	p->b->len += n;
	return w;
}

static inline void put_be(uint8_t *w, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		w[i] = (uint8_t)v;
		v >>= 8;
	}
}

static void pk_uint(struct pk *p, uint64_t v)
{
	uint8_t *w;

	if (v <= 0x7f) {
		if ((w = pk_room(p, 1)))
			w[0] = (uint8_t)v;
	} else if (v <= 0xff) {
		if ((w = pk_room(p, 2))) {
			w[0] = 0xcc;
			w[1] = (uint8_t)v;
		}
	} else if (v <= 0xffff) {
		if ((w = pk_room(p, 3))) {
			w[0] = 0xcd;
			put_be(w + 1, v, 2);
		}
	} else if (v <= 0xffffffffu) {
		if ((w = pk_room(p, 5))) {
			w[0] = 0xce;
			put_be(w + 1, v, 4);
		}
	} else if ((w = pk_room(p, 9))) {
		w[0] = 0xcf;
		put_be(w + 1, v, 8);
	}
}

static void pk_bool(struct pk *p, int v)
{
	uint8_t *w = pk_room(p, 1);

	if (w)
		w[0] = v ? 0xc3 : 0xc2;
}

static void pk_raw(struct pk *p, const void *s, size_t n, int bin)
{
	uint8_t *w;
	size_t hl;

	if (!bin && n < 32)
		hl = 1;
	else if (n <= 0xff)
		hl = 2;
	else if (n <= 0xffff)
		hl = 3;
	else
		hl = 5;
	if (!(w = pk_room(p, hl + n)))
		return;
	if (hl == 1)
		w[0] = (uint8_t)(0xa0 | n);
	else {
		static const uint8_t tags[2][3] = {{0xd9, 0xda, 0xdb},
		                                   {0xc4, 0xc5, 0xc6}};

		w[0] = tags[bin][hl == 2 ? 0 : hl == 3 ? 1 : 2];
		put_be(w + 1, n, (int)hl - 1);
	}
	if (n)
		memcpy(w + hl, s, n);
}

static void pk_str(struct pk *p, const struct wire_str *s)
{
	pk_raw(p, s->ptr ? s->ptr : "", s->ptr ? s->len : 0, 0);
}

static void pk_cstr(struct pk *p, const char *s)
{
	pk_raw(p, s, strlen(s), 0);
}

static void pk_container(struct pk *p, uint32_t n, int map)
{
	uint8_t *w;

	if (n < 16) {
		if ((w = pk_room(p, 1)))
			w[0] = (uint8_t)((map ? 0x80 : 0x90) | n);
	} else if (n <= 0xffff) {
		if ((w = pk_room(p, 3))) {
			w[0] = map ? 0xde : 0xdc;
			put_be(w + 1, n, 2);
		}
	} else if ((w = pk_room(p, 5))) {
		w[0] = map ? 0xdf : 0xdd;
		put_be(w + 1, n, 4);
	}
}

/* Number of keys written for the queue options and for the stats group. */
#define N_OPTS_KEYS  11
#define N_STATS_KEYS (2 + 12 + N_OPTS_KEYS)

static void pk_opts(struct pk *p, const struct wire_queue_opts *o)
{
	pk_cstr(p, "ack_timeout");
	pk_uint(p, o->ack_timeout);
	pk_cstr(p, "max_deliveries");
	pk_uint(p, o->max_deliveries);
	pk_cstr(p, "dlq");
	pk_str(p, &o->dlq);
	pk_cstr(p, "message_ttl");
	pk_uint(p, o->message_ttl);
	pk_cstr(p, "delay");
	pk_uint(p, o->delay);
	pk_cstr(p, "max_length");
	pk_uint(p, o->max_length);
	pk_cstr(p, "max_bytes");
	pk_uint(p, o->max_bytes);
	pk_cstr(p, "overflow");
	pk_cstr(p, wire_overflow_name(o->overflow));
	pk_cstr(p, "dedup_window");
	pk_uint(p, o->dedup_window);
	pk_cstr(p, "exclusive");
	pk_bool(p, o->exclusive);
	pk_cstr(p, "auto_delete");
	pk_bool(p, o->auto_delete);
}

static void pk_stats(struct pk *p, const struct wire_queue_stats *s)
{
	const struct {
		const char *k;
		uint64_t v;
	} c[12] = {
	    {"ready", s->ready},
	    {"delayed", s->delayed},
	    {"in_flight", s->in_flight},
	    {"bytes", s->bytes},
	    {"consumers", s->consumers},
	    {"published", s->published},
	    {"acked", s->acked},
	    {"dead_lettered", s->dead_lettered},
	    {"expired", s->expired},
	    {"dropped", s->dropped},
	    {"deduplicated", s->deduplicated},
	    {"last_seq", s->last_seq},
	};

	pk_cstr(p, "name");
	pk_str(p, &s->name);
	pk_cstr(p, "queue_id");
	pk_uint(p, s->queue_id);
	for (int i = 0; i < 12; i++) {
		pk_cstr(p, c[i].k);
		pk_uint(p, c[i].v);
	}
	pk_opts(p, &s->opts);
}

static void pk_members(struct pk *p, const struct wire_member *mb, uint32_t n)
{
	pk_container(p, n, 0);
	for (uint32_t i = 0; i < n; i++) {
		pk_container(p, 3, 1);
		pk_cstr(p, "node_id");
		pk_uint(p, mb[i].id);
		pk_cstr(p, "raft_address");
		pk_str(p, &mb[i].raft_address);
		pk_cstr(p, "client_address");
		pk_str(p, &mb[i].client_address);
	}
}

static void pk_config(struct pk *p, const struct wire_kv *kv, uint32_t n)
{
	pk_container(p, n, 0);
	for (uint32_t i = 0; i < n; i++) {
		pk_container(p, 2, 0);
		pk_str(p, &kv[i].key);
		pk_uint(p, kv[i].value);
	}
}

/* Writes a frame head: length placeholder, [op, req_id, ... */
static size_t pk_head(struct pk *p, uint8_t op, uint64_t req_id)
{
	size_t off = p->b->len;

	pk_room(p, WIRE_PREFIX);
	pk_container(p, 3, 0);
	pk_uint(p, op);
	pk_uint(p, req_id);
	return off;
}

/* Patches the length prefix of the frame at `off`. */
static void pk_tail(struct pk *p, size_t off)
{
	if (p->err)
		return;
	put_be((uint8_t *)p->b->data + off, p->b->len - off - WIRE_PREFIX,
	       WIRE_PREFIX);
}

int wire_encode(struct wire_buf *b, const struct wire_msg *m)
{
	struct pk p = {b, 0};
	size_t start = b->len, off;
	uint64_t bits = m->present;
	uint32_t nkeys = 0;

	if (!((m->op >= 1 && m->op < WIRE_OP_REQUEST_MAX) ||
	      (m->op >= WIRE_OP_HELLO_OK && m->op < WIRE_OP_MAX)))
		return WIRE_EINVAL;
	/* Lists are streamed with wire_list_*(); groups must not repeat a
	 * key written by a single field. */
	if (bits & (B(LIST) | B(TOPICS)))
		return WIRE_EINVAL;
	if ((bits & B(OPTS)) && (bits & B(DELAY)))
		return WIRE_EINVAL;
	if ((bits & B(STATS)) &&
	    (bits & (B(NAME) | B(QUEUE_ID) | B(OPTS) | B(DELAY))))
		return WIRE_EINVAL;
	for (int f = 0; f < WIRE_F_COUNT_; f++)
		if (bits & WIRE_BIT(f))
			nkeys += f == WIRE_F_OPTS    ? N_OPTS_KEYS
			         : f == WIRE_F_STATS ? N_STATS_KEYS
			                             : 1;
	off = pk_head(&p, m->op, m->req_id);
	pk_container(&p, nkeys, 1);
	while (bits) {
		int f = __builtin_ctzll(bits);
		const struct key_desc *d;
		const char *base;

		bits &= bits - 1;
		if (f == WIRE_F_OPTS) {
			pk_opts(&p, &m->opts);
			continue;
		}
		if (f == WIRE_F_STATS) {
			pk_stats(&p, &m->stats);
			continue;
		}
		d = field_desc(f);
		base = (const char *)m + d->off;
		pk_raw(&p, d->key, d->len, 0);
		switch (d->type) {
		case T_U64: {
			uint64_t v;

			memcpy(&v, base, sizeof(v));
			pk_uint(&p, v);
			break;
		}
		case T_U32: {
			uint32_t v;

			memcpy(&v, base, sizeof(v));
			pk_uint(&p, v);
			break;
		}
		case T_BOOL:
			pk_bool(&p, *(const uint8_t *)base);
			break;
		case T_STR:
			pk_str(&p, (const struct wire_str *)base);
			break;
		case T_BIN: {
			const struct wire_str *s =
			    (const struct wire_str *)base;

			pk_raw(&p, s->ptr ? s->ptr : "", s->ptr ? s->len : 0,
			       1);
			break;
		}
		case T_KIND:
			pk_cstr(&p, wire_kind_name(*(const uint8_t *)base));
			break;
		case T_MODE:
			pk_cstr(&p, wire_mode_name(*(const uint8_t *)base));
			break;
		case T_HEADERS:
			pk_container(&p, m->n_headers, 1);
			for (uint32_t i = 0; i < m->n_headers; i++) {
				pk_raw(&p, m->headers[i].key,
				       m->headers[i].key_len, 0);
				pk_raw(&p, m->headers[i].val,
				       m->headers[i].val_len, 0);
			}
			break;
		case T_RAW: /* members, config */
			if (f == WIRE_F_CONFIG)
				pk_config(&p, m->config, m->n_config);
			else
				pk_members(&p, m->members, m->n_members);
			break;
		}
	}
	pk_tail(&p, off);
	if (p.err) {
		b->len = start;
		return p.err;
	}
	return 0;
}

void wire_msg_init(struct wire_msg *m, uint8_t op, uint64_t req_id)
{
	memset(m, 0, sizeof(*m));
	m->op = op;
	m->req_id = req_id;
	m->present = wire_fields(op);
}

int wire_encode_error(struct wire_buf *b, uint64_t req_id, int code,
                      const char *message, const char *leader)
{
	struct wire_msg m;

	wire_msg_init(&m, WIRE_OP_ERROR, req_id);
	m.code = (uint32_t)code;
	m.retryable = (uint8_t)wire_retryable(code);
	if (message == NULL)
		message = wire_strerror(code);
	m.message.ptr = message;
	m.message.len = (uint32_t)strlen(message);
	if (leader != NULL && leader[0] != '\0') {
		m.leader.ptr = leader;
		m.leader.len = (uint32_t)strlen(leader);
	} else {
		m.present &= ~B(LEADER);
	}
	return wire_encode(b, &m);
}

int wire_encode_frame_error(struct wire_buf *b, uint64_t n, uint64_t limit)
{
	char text[96];

	snprintf(text, sizeof(text), "frame of %llu bytes exceeds limit %llu",
	         (unsigned long long)n, (unsigned long long)limit);
	return wire_encode_error(b, 0, WIRE_EFRAME, text, NULL);
}

int wire_list_begin(struct wire_buf *b, struct wire_list *l, uint64_t req_id,
                    int field)
{
	struct pk p = {b, 0};
	uint8_t *w;

	if (field != WIRE_F_LIST && field != WIRE_F_TOPICS)
		return WIRE_EINVAL;
	l->frame_off = pk_head(&p, WIRE_OP_OK, req_id);
	pk_container(&p, 1, 1);
	pk_cstr(&p, field == WIRE_F_LIST ? "list" : "topics");
	/* A 32-bit array header, patched by wire_list_end(). */
	l->count_off = b->len;
	if ((w = pk_room(&p, 5)))
		w[0] = 0xdd;
	l->n = 0;
	if (p.err) {
		b->len = l->frame_off;
		return p.err;
	}
	return 0;
}

int wire_list_add_queue(struct wire_buf *b, struct wire_list *l,
                        const struct wire_queue_stats *s)
{
	struct pk p = {b, 0};
	size_t start = b->len;

	pk_container(&p, N_STATS_KEYS, 1);
	pk_stats(&p, s);
	if (p.err) {
		b->len = start;
		return p.err;
	}
	l->n++;
	return 0;
}

int wire_list_add_topic(struct wire_buf *b, struct wire_list *l,
                        const char *name, uint32_t name_len, uint8_t kind,
                        const struct wire_binding *bindings,
                        uint32_t n_bindings)
{
	struct pk p = {b, 0};
	size_t start = b->len;

	pk_container(&p, 3, 1);
	pk_cstr(&p, "name");
	pk_raw(&p, name, name_len, 0);
	pk_cstr(&p, "kind");
	pk_cstr(&p, wire_kind_name(kind));
	pk_cstr(&p, "bindings");
	pk_container(&p, n_bindings, 0);
	for (uint32_t i = 0; i < n_bindings; i++) {
		pk_container(&p, 2, 1);
		pk_cstr(&p, "queue");
		pk_str(&p, &bindings[i].queue);
		pk_cstr(&p, "key");
		pk_str(&p, &bindings[i].key);
	}
	if (p.err) {
		b->len = start;
		return p.err;
	}
	l->n++;
	return 0;
}

void wire_list_end(struct wire_buf *b, struct wire_list *l)
{
	put_be((uint8_t *)b->data + l->count_off + 1, l->n, 4);
	put_be((uint8_t *)b->data + l->frame_off,
	       b->len - l->frame_off - WIRE_PREFIX, WIRE_PREFIX);
}

int wire_split(const void *data, size_t len, size_t max_frame, size_t *body_len)
{
	const uint8_t *p = data;
	uint64_t n;

	if (len < WIRE_PREFIX)
		return WIRE_SPLIT_MORE;
	n = be(p, WIRE_PREFIX);
	*body_len = (size_t)n;
	if (n > max_frame)
		return WIRE_SPLIT_TOOBIG;
	if (len - WIRE_PREFIX < n)
		return WIRE_SPLIT_MORE;
	return WIRE_SPLIT_FRAME;
}

int wire_peek(const void *body, size_t len, uint8_t *op, uint64_t *req_id)
{
	struct rd r = {body, (const uint8_t *)body + len};
	uint32_t n;
	uint64_t o, q;

	if (rd_container(&r, &n, 0) || n != 3 || rd_uint(&r, &o) ||
	    rd_uint(&r, &q) || o > 255)
		return WIRE_EPROTO;
	*op = (uint8_t)o;
	*req_id = q;
	return 0;
}

int wire_salvage(const void *body, size_t len, struct wire_msg *out)
{
	struct rd r = {body, (const uint8_t *)body + len};
	uint32_t n;
	uint64_t op, req;

	memset(out, 0, sizeof(*out));
	if (rd_container(&r, &n, 0) || n != 3 || rd_uint(&r, &op) ||
	    rd_uint(&r, &req) || op > 255)
		return WIRE_EPROTO;
	out->op = (uint8_t)op;
	out->req_id = req;
	fix_str(&out->queue);
	if (rd_container(&r, &n, 1))
		return 0;
	for (uint32_t i = 0; i < n; i++) {
		struct wire_str k;
		uint64_t u;
		int f = -1;

		if (rd_str(&r, &k))
			break;
		if (key_is(&k, "consumer"))
			f = WIRE_F_CONSUMER;
		else if (key_is(&k, "queue_id"))
			f = WIRE_F_QUEUE_ID;
		else if (key_is(&k, "seq"))
			f = WIRE_F_SEQ;
		if (f < 0 || rd_need(&r, 1) == 0 || rd_uint(&r, &u) != 0) {
			/* Not wanted, or not an integer: step over it. A value
			 * that cannot even be skipped ends the salvage. */
			if (rd_skip(&r, SKIP_DEPTH))
				break;
			continue;
		}
		if (f == WIRE_F_QUEUE_ID) {
			if (u > UINT32_MAX)
				continue;
			out->queue_id = (uint32_t)u;
		} else if (f == WIRE_F_SEQ) {
			out->seq = u;
		} else {
			out->consumer = u;
		}
		out->present |= WIRE_BIT(f);
	}
	return 0;
}
