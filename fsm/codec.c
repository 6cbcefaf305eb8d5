/* fsm/codec: msgpack encoding and validating zero-copy decoding of entries. */
#include "codec.h"

#include <stdlib.h>
#include <string.h>

/*
 * Every command is one msgpack array. The first five elements (four in a
 * version 1 entry, which has no wall) are common to all types, the rest
 * depend on the type:
 *
 *   all types        [0] type (uint)  [1] time  [2] wall  [3] session
 *                    [4] req_id       (version 1: type, time, session,
 *                    req_id)
 *
 *   type             elements after the common five              total (v2)
 *   QUEUE_DECLARE    name, ack_timeout, max_deliveries, dlq,            17
 *                    message_ttl, delay, max_length, max_bytes,
 *                    overflow, dedup_window, exclusive, auto_delete
 *   QUEUE_DELETE     name, if_empty                                      7
 *   QUEUE_PURGE      name, if_empty                                      7
 *   TOPIC_DECLARE    name, kind                                          7
 *   TOPIC_DELETE     name, kind                                          7
 *   BIND / UNBIND    topic, queue, key                                   8
 *   PUBLISH          topic, key, id, type, correlation_id, reply_to,    15
 *                    headers, payload, ttl, delay
 *   CONSUME          queue, prefetch                                     7
 *   CANCEL           consumer                                            6
 *   GET              queue, max, timeout                                 8
 *   ACK/NACK/EXTEND  queue_id, seq, mode, timeout                        9
 *   TICK             (nothing)                                           5
 *   SESSION_DOWN     session (the one that ended)                        6
 *   LEADER_ELECTED   term, node                                          7
 *   CONFIG           bootstrap (flag), map of str key -> uint value      7
 *                    (at most FSM_CODEC_MAX_CONFIG_KV pairs, in order)
 *   CHECK            applied, digest                                     7
 *
 * Value encodings:
 *   integers   msgpack unsigned integers, smallest form. The decoder accepts
 *              any unsigned or non-negative signed form, then range-checks
 *              against the field's C type (and enums against their values).
 *   flags      (if_empty, exclusive, auto_delete) uint 0/1; true/false are
 *              also accepted when decoding.
 *   names, ids, type, correlation_id, reply_to, dlq, keys
 *              msgpack str, at most FSM_CODEC_MAX_STR bytes; an empty str
 *              stands for NULL/"" (dlq NULL is written as "").
 *   headers    msgpack map of str key -> str value, at most
 *              FSM_CODEC_MAX_HEADERS pairs, in the caller's order; the decoder
 *              also accepts bin values.
 *   payload    msgpack bin, at most FSM_CODEC_MAX_PAYLOAD bytes; the decoder
 *              also accepts str.
 *
 * Why hand-rolled msgpack: building an msgpack_object tree through
 * msgpack_unpack_next costs a zone and an object tree per command, which
 * we would then have to walk and check anyway, and msgpack_packer calls a
 * write callback per element. Writing and reading the
 * handful of formats we use directly is several times faster, keeps strings
 * zero-copy, and lets the reader check every length against the bytes left.
 * The output is plain msgpack (the unit test parses it with msgpack-c).
 *
 * Encoding first computes an upper bound of the command's size, grows the
 * buffer once, then writes without further checks, so a failed add leaves the
 * batch unchanged. Decoding makes two passes over the body: the first
 * validates every command (and finds the largest header count), the second
 * decodes again and calls `cb`, so `cb` never sees part of a malformed entry.
 * Headers are decoded into an array that lives on the stack for up to
 * CODEC_STACK_HEADERS pairs and is malloc'd (once per entry, sized for the
 * largest command) beyond that; it is reused for every command, as the
 * pointers in a decoded command only have to live until `cb` returns.
 */

#define CODEC_STACK_HEADERS 32u
#define CODEC_MAGIC         "RMQB"

/* Worst-case encoded sizes, used to reserve space before writing. */
#define UINT_MAX_SIZE 9u
#define STR_HDR_SIZE  5u

/* ---- Encoding ----------------------------------------------------------- */

static inline char *put_be16(char *p, uint16_t v)
{
	p[0] = (char)(v >> 8);
	p[1] = (char)v;
	return p + 2;
}

static inline char *put_be32(char *p, uint32_t v)
{
	p[0] = (char)(v >> 24);
	p[1] = (char)(v >> 16);
	p[2] = (char)(v >> 8);
	p[3] = (char)v;
	return p + 4;
}

static inline char *put_uint(char *p, uint64_t v)
{
	if (v < 0x80) {
		*p++ = (char)v;
	} else if (v <= 0xff) {
		*p++ = (char)0xcc;
		*p++ = (char)v;
	} else if (v <= 0xffff) {
		*p++ = (char)0xcd;
		p = put_be16(p, (uint16_t)v);
	} else if (v <= 0xffffffffu) {
		*p++ = (char)0xce;
		p = put_be32(p, (uint32_t)v);
	} else {
		*p++ = (char)0xcf;
		p = put_be32(p, (uint32_t)(v >> 32));
		p = put_be32(p, (uint32_t)v);
	}
	return p;
}

static inline char *put_array(char *p, uint32_t n)
{
	if (n < 16) {
		*p++ = (char)(0x90 | n);
	} else if (n <= 0xffff) {
		*p++ = (char)0xdc;
		p = put_be16(p, (uint16_t)n);
	} else {
		*p++ = (char)0xdd;
		p = put_be32(p, n);
	}
	return p;
}

static inline char *put_map(char *p, uint32_t n)
{
	if (n < 16) {
		*p++ = (char)(0x80 | n);
	} else if (n <= 0xffff) {
		*p++ = (char)0xde;
		p = put_be16(p, (uint16_t)n);
	} else {
		*p++ = (char)0xdf;
		p = put_be32(p, n);
	}
	return p;
}

static inline char *put_str(char *p, const char *s, uint32_t n)
{
	if (n < 32) {
		*p++ = (char)(0xa0 | n);
	} else if (n <= 0xff) {
		*p++ = (char)0xd9;
		*p++ = (char)n;
	} else if (n <= 0xffff) {
		*p++ = (char)0xda;
		p = put_be16(p, (uint16_t)n);
	} else {
		*p++ = (char)0xdb;
		p = put_be32(p, n);
	}
	if (n > 0) {
		memcpy(p, s, n);
	}
	return p + n;
}

static inline char *put_bin(char *p, const char *s, uint32_t n)
{
	if (n <= 0xff) {
		*p++ = (char)0xc4;
		*p++ = (char)n;
	} else if (n <= 0xffff) {
		*p++ = (char)0xc5;
		p = put_be16(p, (uint16_t)n);
	} else {
		*p++ = (char)0xc6;
		p = put_be32(p, n);
	}
	if (n > 0) {
		memcpy(p, s, n);
	}
	return p + n;
}

/* Checks one string argument and adds its worst-case size to `*size`. */
static inline int str_ok(const char *s, uint32_t n, uint32_t max, size_t *size)
{
	if (n > max || (s == NULL && n > 0)) {
		return -1;
	}
	*size += STR_HDR_SIZE + n;
	return 0;
}

/* Returns the number of type-specific elements of `type`, or -1. */
static int type_fields(unsigned type)
{
	switch (type) {
	case FSM_CMD_QUEUE_DECLARE:
		return 12;
	case FSM_CMD_QUEUE_DELETE:
	case FSM_CMD_QUEUE_PURGE:
	case FSM_CMD_TOPIC_DECLARE:
	case FSM_CMD_TOPIC_DELETE:
		return 2;
	case FSM_CMD_BIND:
	case FSM_CMD_UNBIND:
		return 3;
	case FSM_CMD_PUBLISH:
		return 10;
	case FSM_CMD_CONSUME:
		return 2;
	case FSM_CMD_CANCEL:
		return 1;
	case FSM_CMD_GET:
		return 3;
	case FSM_CMD_ACK:
	case FSM_CMD_NACK:
	case FSM_CMD_EXTEND:
		return 4;
	case FSM_CMD_TICK:
		return 0;
	case FSM_CMD_SESSION_DOWN:
		return 1;
	case FSM_CMD_LEADER_ELECTED:
	case FSM_CMD_CONFIG:
	case FSM_CMD_CHECK:
		return 2;
	default:
		return -1;
	}
}

/* Validates `c` and returns an upper bound of its encoded size, or 0 when the
 * command cannot be encoded (the decoder would reject it). */
static size_t cmd_max_size(const struct fsm_cmd *c)
{
	const uint32_t S = FSM_CODEC_MAX_STR;
	size_t size = 5 + 5 * UINT_MAX_SIZE; /* array header, common fields */
	int bad = 0;
	uint32_t i;

	switch (c->type) {
	case FSM_CMD_QUEUE_DECLARE: {
		const struct fsm_queue_opts *o = &c->u.declare.opts;
		const char *dlq = o->dlq;
		uint32_t dlq_len = dlq != NULL ? c->u.declare.dlq_len : 0;

		bad |=
		    str_ok(c->u.declare.name, c->u.declare.name_len, S, &size);
		bad |= str_ok(dlq, dlq_len, S, &size);
		bad |= o->overflow > FSM_OVERFLOW_DROP_HEAD;
		bad |= o->exclusive > 1 || o->auto_delete > 1;
		size += 10 * UINT_MAX_SIZE;
		break;
	}
	case FSM_CMD_QUEUE_DELETE:
	case FSM_CMD_QUEUE_PURGE:
		bad |=
		    str_ok(c->u.qdelete.name, c->u.qdelete.name_len, S, &size);
		bad |= c->u.qdelete.if_empty > 1;
		size += UINT_MAX_SIZE;
		break;
	case FSM_CMD_TOPIC_DECLARE:
	case FSM_CMD_TOPIC_DELETE:
		bad |= str_ok(c->u.topic.name, c->u.topic.name_len, S, &size);
		bad |= c->u.topic.kind > FSM_TOPIC_TOPIC;
		size += UINT_MAX_SIZE;
		break;
	case FSM_CMD_BIND:
	case FSM_CMD_UNBIND:
		bad |= str_ok(c->u.bind.topic, c->u.bind.topic_len, S, &size);
		bad |= str_ok(c->u.bind.queue, c->u.bind.queue_len, S, &size);
		bad |= str_ok(c->u.bind.key, c->u.bind.key_len, S, &size);
		break;
	case FSM_CMD_PUBLISH: {
		const struct fsm_msg_in *m = &c->u.publish.msg;

		bad |= str_ok(c->u.publish.topic, c->u.publish.topic_len, S,
		              &size);
		bad |= str_ok(c->u.publish.key, c->u.publish.key_len, S, &size);
		bad |= str_ok(m->id, m->id_len, S, &size);
		bad |= str_ok(m->type, m->type_len, S, &size);
		bad |=
		    str_ok(m->correlation_id, m->correlation_id_len, S, &size);
		bad |= str_ok(m->reply_to, m->reply_to_len, S, &size);
		bad |= str_ok(m->payload, m->payload_len, FSM_CODEC_MAX_PAYLOAD,
		              &size);
		if (m->n_headers > FSM_CODEC_MAX_HEADERS ||
		    (m->headers == NULL && m->n_headers > 0)) {
			return 0;
		}
		size += 5; /* map header */
		for (i = 0; i < m->n_headers; i++) {
			const struct fsm_header *h = &m->headers[i];

			bad |= str_ok(h->key, h->key_len, S, &size);
			bad |= str_ok(h->val, h->val_len, S, &size);
		}
		size += 2 * UINT_MAX_SIZE;
		break;
	}
	case FSM_CMD_CONSUME:
		bad |= str_ok(c->u.consume.queue, c->u.consume.queue_len, S,
		              &size);
		size += UINT_MAX_SIZE;
		break;
	case FSM_CMD_CANCEL:
		size += UINT_MAX_SIZE;
		break;
	case FSM_CMD_GET:
		bad |= str_ok(c->u.get.queue, c->u.get.queue_len, S, &size);
		size += 2 * UINT_MAX_SIZE;
		break;
	case FSM_CMD_ACK:
	case FSM_CMD_NACK:
	case FSM_CMD_EXTEND:
		bad |= c->u.settle.mode > FSM_NACK_DEADLETTER;
		size += 4 * UINT_MAX_SIZE;
		break;
	case FSM_CMD_TICK:
		break;
	case FSM_CMD_SESSION_DOWN:
		size += UINT_MAX_SIZE;
		break;
	case FSM_CMD_LEADER_ELECTED:
	case FSM_CMD_CHECK:
		size += 2 * UINT_MAX_SIZE;
		break;
	case FSM_CMD_CONFIG:
		if (c->u.config.n_kv > FSM_CODEC_MAX_CONFIG_KV ||
		    (c->u.config.kv == NULL && c->u.config.n_kv > 0) ||
		    c->u.config.bootstrap > 1)
			return 0;
		size += UINT_MAX_SIZE + 5; /* flag, map header */
		for (i = 0; i < c->u.config.n_kv; i++) {
			bad |= str_ok(c->u.config.kv[i].key,
			              c->u.config.kv[i].key_len, S, &size);
			size += UINT_MAX_SIZE;
		}
		break;
	default:
		return 0;
	}
	return bad ? 0 : size;
}

/* Writes `c`, already validated by cmd_max_size(), at `p`. */
static char *put_cmd(char *p, const struct fsm_cmd *c)
{
	uint32_t i;

	p = put_array(p, 5 + (uint32_t)type_fields(c->type));
	*p++ = (char)c->type; /* positive fixint: every type is < 0x80 */
	p = put_uint(p, c->time);
	p = put_uint(p, c->wall);
	p = put_uint(p, c->session);
	p = put_uint(p, c->req_id);

	switch (c->type) {
	case FSM_CMD_QUEUE_DECLARE: {
		const struct fsm_queue_opts *o = &c->u.declare.opts;

		p = put_str(p, c->u.declare.name, c->u.declare.name_len);
		p = put_uint(p, o->ack_timeout);
		p = put_uint(p, o->max_deliveries);
		p = put_str(p, o->dlq,
		            o->dlq != NULL ? c->u.declare.dlq_len : 0);
		p = put_uint(p, o->message_ttl);
		p = put_uint(p, o->delay);
		p = put_uint(p, o->max_length);
		p = put_uint(p, o->max_bytes);
		p = put_uint(p, o->overflow);
		p = put_uint(p, o->dedup_window);
		p = put_uint(p, o->exclusive);
		p = put_uint(p, o->auto_delete);
		break;
	}
	case FSM_CMD_QUEUE_DELETE:
	case FSM_CMD_QUEUE_PURGE:
		p = put_str(p, c->u.qdelete.name, c->u.qdelete.name_len);
		p = put_uint(p, c->u.qdelete.if_empty);
		break;
	case FSM_CMD_TOPIC_DECLARE:
	case FSM_CMD_TOPIC_DELETE:
		p = put_str(p, c->u.topic.name, c->u.topic.name_len);
		p = put_uint(p, c->u.topic.kind);
		break;
	case FSM_CMD_BIND:
	case FSM_CMD_UNBIND:
		p = put_str(p, c->u.bind.topic, c->u.bind.topic_len);
		p = put_str(p, c->u.bind.queue, c->u.bind.queue_len);
		p = put_str(p, c->u.bind.key, c->u.bind.key_len);
		break;
	case FSM_CMD_PUBLISH: {
		const struct fsm_msg_in *m = &c->u.publish.msg;

		p = put_str(p, c->u.publish.topic, c->u.publish.topic_len);
		p = put_str(p, c->u.publish.key, c->u.publish.key_len);
		p = put_str(p, m->id, m->id_len);
		p = put_str(p, m->type, m->type_len);
		p = put_str(p, m->correlation_id, m->correlation_id_len);
		p = put_str(p, m->reply_to, m->reply_to_len);
		p = put_map(p, m->n_headers);
		for (i = 0; i < m->n_headers; i++) {
			p = put_str(p, m->headers[i].key,
			            m->headers[i].key_len);
			p = put_str(p, m->headers[i].val,
			            m->headers[i].val_len);
		}
		p = put_bin(p, m->payload, m->payload_len);
		p = put_uint(p, m->ttl);
		p = put_uint(p, m->delay);
		break;
	}
	case FSM_CMD_CONSUME:
		p = put_str(p, c->u.consume.queue, c->u.consume.queue_len);
		p = put_uint(p, c->u.consume.prefetch);
		break;
	case FSM_CMD_CANCEL:
		p = put_uint(p, c->u.cancel.consumer);
		break;
	case FSM_CMD_GET:
		p = put_str(p, c->u.get.queue, c->u.get.queue_len);
		p = put_uint(p, c->u.get.max);
		p = put_uint(p, c->u.get.timeout);
		break;
	case FSM_CMD_ACK:
	case FSM_CMD_NACK:
	case FSM_CMD_EXTEND:
		p = put_uint(p, c->u.settle.queue_id);
		p = put_uint(p, c->u.settle.seq);
		p = put_uint(p, c->u.settle.mode);
		p = put_uint(p, c->u.settle.timeout);
		break;
	case FSM_CMD_SESSION_DOWN:
		p = put_uint(p, c->u.session_down.session);
		break;
	case FSM_CMD_LEADER_ELECTED:
		p = put_uint(p, c->u.leader_elected.term);
		p = put_uint(p, c->u.leader_elected.node);
		break;
	case FSM_CMD_CONFIG:
		p = put_uint(p, c->u.config.bootstrap);
		p = put_map(p, c->u.config.n_kv);
		for (i = 0; i < c->u.config.n_kv; i++) {
			p = put_str(p, c->u.config.kv[i].key,
			            c->u.config.kv[i].key_len);
			p = put_uint(p, c->u.config.kv[i].value);
		}
		break;
	case FSM_CMD_CHECK:
		p = put_uint(p, c->u.check.applied);
		p = put_uint(p, c->u.check.digest);
		break;
	default: /* TICK */
		break;
	}
	return p;
}

static size_t round8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* Makes room for `need` bytes in total; the batch is unchanged on error. */
static int batch_reserve(struct fsm_batch *b, size_t need)
{
	size_t cap;
	char *buf;

	if (need <= b->cap) {
		return 0;
	}
	cap = b->cap > 0 ? b->cap : 4096;
	while (cap < need) {
		if (cap > SIZE_MAX / 2) {
			return FSM_ENOMEM;
		}
		cap *= 2;
	}
	buf = realloc(b->buf, cap);
	if (buf == NULL) {
		return FSM_ENOMEM;
	}
	b->buf = buf;
	b->cap = cap;
	return 0;
}

void fsm_batch_init(struct fsm_batch *b)
{
	b->buf = NULL;
	b->len = FSM_ENTRY_HEADER;
	b->cap = 0;
	b->count = 0;
}

void fsm_batch_close(struct fsm_batch *b)
{
	free(b->buf);
	fsm_batch_init(b);
}

void fsm_batch_reset(struct fsm_batch *b)
{
	b->len = FSM_ENTRY_HEADER;
	b->count = 0;
}

int fsm_batch_add(struct fsm_batch *b, const struct fsm_cmd *cmd)
{
	size_t max = cmd_max_size(cmd);
	int rv;

	if (max == 0) {
		return FSM_EINVAL;
	}
	/* The body length and the count must fit the 32-bit header fields;
	 * `+ 8` leaves room for the padding. */
	if (b->count == UINT32_MAX ||
	    b->len - FSM_ENTRY_HEADER + max + 8 > UINT32_MAX) {
		return FSM_EINVAL;
	}
	rv = batch_reserve(b, b->len + max);
	if (rv != 0) {
		return rv;
	}
	b->len = (size_t)(put_cmd(b->buf + b->len, cmd) - b->buf);
	b->count++;
	return 0;
}

size_t fsm_batch_size(const struct fsm_batch *b)
{
	return round8(b->len);
}

static void put_le32(char *p, uint32_t v)
{
	p[0] = (char)v;
	p[1] = (char)(v >> 8);
	p[2] = (char)(v >> 16);
	p[3] = (char)(v >> 24);
}

int fsm_batch_finish(struct fsm_batch *b, const void **buf, size_t *len)
{
	size_t total = round8(b->len);
	int rv;

	rv = batch_reserve(b, total);
	if (rv != 0) {
		return rv;
	}
	memcpy(b->buf, CODEC_MAGIC, 4);
	b->buf[4] = FSM_CODEC_VERSION;
	b->buf[5] = b->buf[6] = b->buf[7] = 0;
	put_le32(b->buf + 8, (uint32_t)(b->len - FSM_ENTRY_HEADER));
	put_le32(b->buf + 12, b->count);
	/* The padding lies beyond b->len, so more commands may still be
	 * added after a finish; the next finish rewrites header and padding. */
	memset(b->buf + b->len, 0, total - b->len);
	*buf = b->buf;
	*len = total;
	return 0;
}

/* ---- Decoding ----------------------------------------------------------- */

/* A bounded reader: `p` never passes `end`, and every read checks first. */
struct rd {
	const unsigned char *p;
	const unsigned char *end;
};

static inline uint16_t get_be16(const unsigned char *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t get_be32(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t get_be64(const unsigned char *p)
{
	return ((uint64_t)get_be32(p) << 32) | get_be32(p + 4);
}

/* Reads an unsigned integer in any msgpack form that holds a value >= 0. */
static inline int rd_uint(struct rd *r, uint64_t *v)
{
	size_t left = (size_t)(r->end - r->p);
	unsigned t;
	int64_t s;

	if (left < 1) {
		return -1;
	}
	t = r->p[0];
	if (t < 0x80) {
		*v = t;
		r->p += 1;
		return 0;
	}
	switch (t) {
	case 0xcc:
	case 0xd0:
		if (left < 2) {
			return -1;
		}
		s = t == 0xcc ? r->p[1] : (int8_t)r->p[1];
		r->p += 2;
		break;
	case 0xcd:
	case 0xd1:
		if (left < 3) {
			return -1;
		}
		s = t == 0xcd ? get_be16(r->p + 1)
		              : (int16_t)get_be16(r->p + 1);
		r->p += 3;
		break;
	case 0xce:
	case 0xd2:
		if (left < 5) {
			return -1;
		}
		s = t == 0xce ? (int64_t)get_be32(r->p + 1)
		              : (int32_t)get_be32(r->p + 1);
		r->p += 5;
		break;
	case 0xcf:
		if (left < 9) {
			return -1;
		}
		*v = get_be64(r->p + 1);
		r->p += 9;
		return 0;
	case 0xd3:
		if (left < 9) {
			return -1;
		}
		s = (int64_t)get_be64(r->p + 1);
		r->p += 9;
		break;
	default:
		return -1;
	}
	if (s < 0) {
		return -1;
	}
	*v = (uint64_t)s;
	return 0;
}

static inline int rd_u64(struct rd *r, uint64_t *v)
{
	return rd_uint(r, v);
}

static inline int rd_u32(struct rd *r, uint32_t *v)
{
	uint64_t x;

	if (rd_uint(r, &x) != 0 || x > UINT32_MAX) {
		return -1;
	}
	*v = (uint32_t)x;
	return 0;
}

/* Reads an integer in [0, max] into a byte. */
static inline int rd_u8(struct rd *r, uint8_t *v, unsigned max)
{
	uint64_t x;

	if (rd_uint(r, &x) != 0 || x > max) {
		return -1;
	}
	*v = (uint8_t)x;
	return 0;
}

/* Reads a flag: uint 0/1 or a msgpack boolean. */
static inline int rd_flag(struct rd *r, uint8_t *v)
{
	if (r->p < r->end && (r->p[0] == 0xc2 || r->p[0] == 0xc3)) {
		*v = r->p[0] == 0xc3;
		r->p++;
		return 0;
	}
	return rd_u8(r, v, 1);
}

/* Reads a str (and also a bin when `bin_ok`) of at most `max` bytes. */
static inline int rd_bytes(struct rd *r, const char **s, uint32_t *n,
                           uint32_t max, int bin_ok)
{
	size_t left = (size_t)(r->end - r->p);
	uint32_t len;
	size_t hdr;
	unsigned t;

	if (left < 1) {
		return -1;
	}
	t = r->p[0];
	if ((t & 0xe0) == 0xa0) {
		len = t & 0x1f;
		hdr = 1;
	} else if (t == 0xd9 || (bin_ok && t == 0xc4)) {
		if (left < 2) {
			return -1;
		}
		len = r->p[1];
		hdr = 2;
	} else if (t == 0xda || (bin_ok && t == 0xc5)) {
		if (left < 3) {
			return -1;
		}
		len = get_be16(r->p + 1);
		hdr = 3;
	} else if (t == 0xdb || (bin_ok && t == 0xc6)) {
		if (left < 5) {
			return -1;
		}
		len = get_be32(r->p + 1);
		hdr = 5;
	} else {
		return -1;
	}
	if (len > max || len > left - hdr) {
		return -1;
	}
	*s = (const char *)r->p + hdr;
	*n = len;
	r->p += hdr + len;
	return 0;
}

static inline int rd_str(struct rd *r, const char **s, uint32_t *n)
{
	return rd_bytes(r, s, n, FSM_CODEC_MAX_STR, 0);
}

/* Reads an array or map header (`base` 0x90 or 0x80) and its count. */
static inline int rd_container(struct rd *r, unsigned base, uint32_t *n)
{
	size_t left = (size_t)(r->end - r->p);
	unsigned t;
	/* array16/32 are 0xdc/0xdd, map16/32 are 0xde/0xdf */
	unsigned b16 = base == 0x90 ? 0xdc : 0xde;

	if (left < 1) {
		return -1;
	}
	t = r->p[0];
	if ((t & 0xf0) == base) {
		*n = t & 0x0f;
		r->p += 1;
	} else if (t == b16) {
		if (left < 3) {
			return -1;
		}
		*n = get_be16(r->p + 1);
		r->p += 3;
	} else if (t == b16 + 1) {
		if (left < 5) {
			return -1;
		}
		*n = get_be32(r->p + 1);
		r->p += 5;
	} else {
		return -1;
	}
	return 0;
}

/* Where decoded headers go. When `h` is NULL (validation pass) the headers
 * are only checked, and `max_seen` records the largest count. */
struct hdr_store {
	struct fsm_header *h;
	uint32_t cap;
	uint32_t max_seen;
};

static int rd_headers(struct rd *r, struct fsm_msg_in *m, struct hdr_store *hs)
{
	struct fsm_header tmp;
	uint32_t n;
	uint32_t i;

	if (rd_container(r, 0x80, &n) != 0 || n > FSM_CODEC_MAX_HEADERS) {
		return -1;
	}
	/* Each pair needs at least two bytes: reject impossible counts early.
	 */
	if ((size_t)n * 2 > (size_t)(r->end - r->p)) {
		return -1;
	}
	if (hs->h != NULL && n > hs->cap) {
		return -1; /* cannot happen: the first pass sized the store */
	}
	for (i = 0; i < n; i++) {
		struct fsm_header *h = hs->h != NULL ? &hs->h[i] : &tmp;

		if (rd_str(r, &h->key, &h->key_len) != 0 ||
		    rd_bytes(r, &h->val, &h->val_len, FSM_CODEC_MAX_STR, 1) !=
		        0) {
			return -1;
		}
	}
	if (n > hs->max_seen) {
		hs->max_seen = n;
	}
	m->headers = hs->h != NULL && n > 0 ? hs->h : NULL;
	m->n_headers = n;
	return 0;
}

/* Reads the key = value map of a CONFIG into `kv` (room for
 * FSM_CODEC_MAX_CONFIG_KV pairs). */
static int rd_config_kv(struct rd *r, struct fsm_cmd *c,
                        struct fsm_config_kv *kv)
{
	uint32_t n, i;

	if (rd_container(r, 0x80, &n) != 0 || n > FSM_CODEC_MAX_CONFIG_KV) {
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (rd_str(r, &kv[i].key, &kv[i].key_len) != 0 ||
		    rd_u64(r, &kv[i].value) != 0) {
			return -1;
		}
	}
	c->u.config.kv = n > 0 ? kv : NULL;
	c->u.config.n_kv = n;
	return 0;
}

/* Decodes one command of an entry of version `ver` into `c`. Returns 0, or
 * -1 when malformed. */
static int rd_cmd(struct rd *r, unsigned ver, struct fsm_cmd *c,
                  struct hdr_store *hs, struct fsm_config_kv *kv)
{
	uint32_t n, common = ver == 1 ? 4 : 5;
	int fields;
	int e = 0;

	memset(c, 0, sizeof(*c));
	if (rd_container(r, 0x90, &n) != 0 || n < common ||
	    rd_u8(r, &c->type, FSM_CMD_MAX - 1) != 0) {
		return -1;
	}
	fields = type_fields(c->type);
	/* Version 1 had neither CONFIG nor CHECK. */
	if (fields < 0 || n != common + (uint32_t)fields ||
	    (ver == 1 && c->type >= FSM_CMD_CONFIG)) {
		return -1;
	}
	e |= rd_u64(r, &c->time);
	if (ver != 1) {
		e |= rd_u64(r, &c->wall);
	}
	e |= rd_u64(r, &c->session);
	e |= rd_u64(r, &c->req_id);
	if (e != 0) {
		return -1;
	}

	/* Every reader fails without moving past `end`, so the checks of one
	 * command can be or-ed together and tested once. */
	switch (c->type) {
	case FSM_CMD_QUEUE_DECLARE: {
		struct fsm_queue_opts *o = &c->u.declare.opts;

		e |= rd_str(r, &c->u.declare.name, &c->u.declare.name_len);
		e |= rd_u64(r, &o->ack_timeout);
		e |= rd_u32(r, &o->max_deliveries);
		e |= rd_str(r, &o->dlq, &c->u.declare.dlq_len);
		e |= rd_u64(r, &o->message_ttl);
		e |= rd_u64(r, &o->delay);
		e |= rd_u64(r, &o->max_length);
		e |= rd_u64(r, &o->max_bytes);
		e |= rd_u8(r, &o->overflow, FSM_OVERFLOW_DROP_HEAD);
		e |= rd_u64(r, &o->dedup_window);
		e |= rd_flag(r, &o->exclusive);
		e |= rd_flag(r, &o->auto_delete);
		break;
	}
	case FSM_CMD_QUEUE_DELETE:
	case FSM_CMD_QUEUE_PURGE:
		e |= rd_str(r, &c->u.qdelete.name, &c->u.qdelete.name_len);
		e |= rd_flag(r, &c->u.qdelete.if_empty);
		break;
	case FSM_CMD_TOPIC_DECLARE:
	case FSM_CMD_TOPIC_DELETE:
		e |= rd_str(r, &c->u.topic.name, &c->u.topic.name_len);
		e |= rd_u8(r, &c->u.topic.kind, FSM_TOPIC_TOPIC);
		break;
	case FSM_CMD_BIND:
	case FSM_CMD_UNBIND:
		e |= rd_str(r, &c->u.bind.topic, &c->u.bind.topic_len);
		e |= rd_str(r, &c->u.bind.queue, &c->u.bind.queue_len);
		e |= rd_str(r, &c->u.bind.key, &c->u.bind.key_len);
		break;
	case FSM_CMD_PUBLISH: {
		struct fsm_msg_in *m = &c->u.publish.msg;

		e |= rd_str(r, &c->u.publish.topic, &c->u.publish.topic_len);
		e |= rd_str(r, &c->u.publish.key, &c->u.publish.key_len);
		e |= rd_str(r, &m->id, &m->id_len);
		e |= rd_str(r, &m->type, &m->type_len);
		e |= rd_str(r, &m->correlation_id, &m->correlation_id_len);
		e |= rd_str(r, &m->reply_to, &m->reply_to_len);
		if (e != 0) {
			return -1;
		}
		e |= rd_headers(r, m, hs);
		e |= rd_bytes(r, &m->payload, &m->payload_len,
		              FSM_CODEC_MAX_PAYLOAD, 1);
		e |= rd_u64(r, &m->ttl);
		e |= rd_u64(r, &m->delay);
		break;
	}
	case FSM_CMD_CONSUME:
		e |= rd_str(r, &c->u.consume.queue, &c->u.consume.queue_len);
		e |= rd_u32(r, &c->u.consume.prefetch);
		break;
	case FSM_CMD_CANCEL:
		e |= rd_u64(r, &c->u.cancel.consumer);
		break;
	case FSM_CMD_GET:
		e |= rd_str(r, &c->u.get.queue, &c->u.get.queue_len);
		e |= rd_u32(r, &c->u.get.max);
		e |= rd_u64(r, &c->u.get.timeout);
		break;
	case FSM_CMD_ACK:
	case FSM_CMD_NACK:
	case FSM_CMD_EXTEND:
		e |= rd_u32(r, &c->u.settle.queue_id);
		e |= rd_u64(r, &c->u.settle.seq);
		e |= rd_u8(r, &c->u.settle.mode, FSM_NACK_DEADLETTER);
		e |= rd_u64(r, &c->u.settle.timeout);
		break;
	case FSM_CMD_SESSION_DOWN:
		e |= rd_u64(r, &c->u.session_down.session);
		break;
	case FSM_CMD_LEADER_ELECTED:
		e |= rd_u64(r, &c->u.leader_elected.term);
		e |= rd_u64(r, &c->u.leader_elected.node);
		break;
	case FSM_CMD_CONFIG:
		e |= rd_flag(r, &c->u.config.bootstrap);
		if (e != 0) {
			return -1;
		}
		e |= rd_config_kv(r, c, kv);
		break;
	case FSM_CMD_CHECK:
		e |= rd_u64(r, &c->u.check.applied);
		e |= rd_u64(r, &c->u.check.digest);
		break;
	default: /* TICK */
		break;
	}
	return e != 0 ? -1 : 0;
}

static uint32_t get_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

/* Checks the header and padding; sets the body bounds, count and version
 * (1 or FSM_CODEC_VERSION). */
static int check_header(const unsigned char *b, size_t len, struct rd *body,
                        uint32_t *count, unsigned *ver)
{
	uint32_t n;
	size_t i;

	if (b == NULL || len < FSM_ENTRY_HEADER || len % 8 != 0 ||
	    memcmp(b, CODEC_MAGIC, 4) != 0 ||
	    (b[4] != 1 && b[4] != FSM_CODEC_VERSION) || b[5] != 0 ||
	    b[6] != 0 || b[7] != 0) {
		return -1;
	}
	*ver = b[4];
	n = get_le32(b + 8);
	*count = get_le32(b + 12);
	if (n > len - FSM_ENTRY_HEADER ||
	    round8((size_t)FSM_ENTRY_HEADER + n) != len) {
		return -1;
	}
	/* A command takes at least 5 bytes (array header and 4 fixints). */
	if (*count > n / 5) {
		return -1;
	}
	for (i = FSM_ENTRY_HEADER + n; i < len; i++) {
		if (b[i] != 0) {
			return -1;
		}
	}
	body->p = b + FSM_ENTRY_HEADER;
	body->end = body->p + n;
	return 0;
}

int fsm_entry_decode(const void *buf, size_t len,
                     int (*cb)(void *data, const struct fsm_cmd *cmd),
                     void *data)
{
	struct fsm_header stack[CODEC_STACK_HEADERS];
	struct fsm_config_kv kv[FSM_CODEC_MAX_CONFIG_KV];
	struct hdr_store hs = {NULL, 0, 0};
	struct fsm_cmd cmd;
	struct rd body;
	struct rd r;
	uint32_t count;
	uint32_t i;
	unsigned ver;
	int rv;

	if (check_header(buf, len, &body, &count, &ver) != 0) {
		return -FSM_EMALFORMED;
	}

	/* Pass 1: validate every command; headers are checked, not stored. */
	r = body;
	for (i = 0; i < count; i++) {
		if (rd_cmd(&r, ver, &cmd, &hs, kv) != 0) {
			return -FSM_EMALFORMED;
		}
	}
	if (r.p != r.end) {
		return -FSM_EMALFORMED;
	}

	/* Pass 2: decode again with header storage and call back. */
	if (hs.max_seen <= CODEC_STACK_HEADERS) {
		hs.h = stack;
		hs.cap = CODEC_STACK_HEADERS;
	} else {
		hs.h = malloc(hs.max_seen * sizeof(*hs.h));
		if (hs.h == NULL) {
			/* The entry is valid, but we cannot present it. The
			 * FSM has no better status for its caller to act on. */
			return -FSM_ENOMEM;
		}
		hs.cap = hs.max_seen;
	}
	r = body;
	rv = (int)count;
	for (i = 0; i < count; i++) {
		if (rd_cmd(&r, ver, &cmd, &hs, kv) != 0) {
			rv = -FSM_EMALFORMED; /* unreachable: pass 1 passed */
			break;
		}
		if (cb != NULL) {
			int crv = cb(data, &cmd);

			if (crv != 0) {
				rv = crv;
				break;
			}
		}
	}
	if (hs.h != stack) {
		free(hs.h);
	}
	return rv;
}
