/* test_fsm_util: helpers shared by the fsm unit tests (command builders, a
 * recording sink, snapshot comparison). Header-only; each test includes it. */
#ifndef RAFTMQ_TEST_FSM_UTIL_H
#define RAFTMQ_TEST_FSM_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fsm/fsm.h"

#define MAX_REC 4096

struct rec {
	struct fsm_result res[MAX_REC];
	uint32_t n_res;
	struct {
		uint8_t type;
		uint64_t session, consumer, req_id, seq;
		uint32_t queue_id, delivery_count;
		int reason;
		char payload[64];
		uint32_t payload_len;
		char hdr[128]; /* "k=v;" list */
	} eff[MAX_REC];
	uint32_t n_eff;
};

static inline void rec_result(void *data, const struct fsm_result *r)
{
	struct rec *rc = data;

	/* Old results are forgotten when full; last_res() stays right. */
	if (rc->n_res == MAX_REC)
		rc->n_res = 0;
	rc->res[rc->n_res++] = *r;
}

static inline void rec_effect(void *data, const struct fsm_delivery *d)
{
	struct rec *rc = data;
	uint32_t i, k = 0;

	if (rc->n_eff >= MAX_REC)
		return;
	rc->eff[rc->n_eff].type = d->type;
	rc->eff[rc->n_eff].session = d->session;
	rc->eff[rc->n_eff].consumer = d->consumer;
	rc->eff[rc->n_eff].req_id = d->req_id;
	rc->eff[rc->n_eff].queue_id = d->queue_id;
	rc->eff[rc->n_eff].reason = d->reason;
	rc->eff[rc->n_eff].seq = d->msg.seq;
	rc->eff[rc->n_eff].delivery_count = d->msg.delivery_count;
	rc->eff[rc->n_eff].payload_len = d->msg.m.payload_len;
	if (d->type == FSM_EFFECT_DELIVER && d->msg.m.payload_len < 64)
		memcpy(rc->eff[rc->n_eff].payload, d->msg.m.payload,
		       d->msg.m.payload_len);
	rc->eff[rc->n_eff].hdr[0] = 0;
	for (i = 0; d->type == FSM_EFFECT_DELIVER && i < d->msg.m.n_headers;
	     i++) {
		const struct fsm_header *h = &d->msg.m.headers[i];

		if (k + h->key_len + h->val_len + 3 >= 128)
			break;
		memcpy(rc->eff[rc->n_eff].hdr + k, h->key, h->key_len);
		k += h->key_len;
		rc->eff[rc->n_eff].hdr[k++] = '=';
		memcpy(rc->eff[rc->n_eff].hdr + k, h->val, h->val_len);
		k += h->val_len;
		rc->eff[rc->n_eff].hdr[k++] = ';';
		rc->eff[rc->n_eff].hdr[k] = 0;
	}
	rc->n_eff++;
}

static inline struct rec *rec_new(void)
{
	struct rec *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	return r;
}

static inline struct fsm_sink rec_sink(struct rec *r)
{
	struct fsm_sink s = {r, rec_result, rec_effect};

	return s;
}

static uint64_t test_time __attribute__((unused)) = 1000;

/* Applies a command, checks invariants, returns the status. */
static inline int apply(struct fsm *f, struct fsm_cmd *c, struct rec *r)
{
	struct fsm_sink s = rec_sink(r);
	int rc;

	if (c->time == 0)
		c->time = test_time;
	rc = fsm_apply(f, c, r != NULL ? &s : NULL);
	assert_int_equal(fsm_check(f), 0);
	return rc;
}

static inline struct fsm_cmd cmd_of(uint8_t type)
{
	struct fsm_cmd c;

	memset(&c, 0, sizeof(c));
	c.type = type;
	c.session = 1;
	return c;
}

static inline int declare(struct fsm *f, const char *name,
                          const struct fsm_queue_opts *o, struct rec *r)
{
	struct fsm_cmd c = cmd_of(FSM_CMD_QUEUE_DECLARE);

	c.u.declare.name = name;
	c.u.declare.name_len = (uint32_t)strlen(name);
	if (o != NULL) {
		c.u.declare.opts = *o;
		c.u.declare.dlq_len = o->dlq ? (uint32_t)strlen(o->dlq) : 0;
	}
	return apply(f, &c, r);
}

static inline int publish_full(struct fsm *f, const char *topic,
                               const char *key, const char *id,
                               const char *payload, uint64_t ttl,
                               uint64_t delay, struct rec *r)
{
	struct fsm_cmd c = cmd_of(FSM_CMD_PUBLISH);

	c.u.publish.topic = topic;
	c.u.publish.topic_len = (uint32_t)strlen(topic);
	c.u.publish.key = key;
	c.u.publish.key_len = (uint32_t)strlen(key);
	c.u.publish.msg.id = id;
	c.u.publish.msg.id_len = (uint32_t)strlen(id);
	c.u.publish.msg.payload = payload;
	c.u.publish.msg.payload_len = (uint32_t)strlen(payload);
	c.u.publish.msg.ttl = ttl;
	c.u.publish.msg.delay = delay;
	return apply(f, &c, r);
}

static inline int publish(struct fsm *f, const char *queue, const char *id,
                          const char *payload, struct rec *r)
{
	return publish_full(f, "", queue, id, payload, 0, 0, r);
}

static inline int consume(struct fsm *f, const char *queue, uint64_t session,
                          uint32_t prefetch, struct rec *r)
{
	struct fsm_cmd c = cmd_of(FSM_CMD_CONSUME);

	c.session = session;
	c.u.consume.queue = queue;
	c.u.consume.queue_len = (uint32_t)strlen(queue);
	c.u.consume.prefetch = prefetch;
	return apply(f, &c, r);
}

static inline int settle(struct fsm *f, uint8_t type, uint32_t qid,
                         uint64_t seq, uint8_t mode, uint64_t timeout,
                         struct rec *r)
{
	struct fsm_cmd c = cmd_of(type);

	c.u.settle.queue_id = qid;
	c.u.settle.seq = seq;
	c.u.settle.mode = mode;
	c.u.settle.timeout = timeout;
	return apply(f, &c, r);
}

/* ACK, NACK or EXTEND proposed by `session` (NACK and EXTEND need the
 * message in flight to that session). */
static inline int settle_as(struct fsm *f, uint64_t session, uint8_t type,
                            uint32_t qid, uint64_t seq, uint8_t mode,
                            uint64_t timeout, struct rec *r)
{
	struct fsm_cmd c = cmd_of(type);

	c.session = session;
	c.u.settle.queue_id = qid;
	c.u.settle.seq = seq;
	c.u.settle.mode = mode;
	c.u.settle.timeout = timeout;
	return apply(f, &c, r);
}

static inline int cancel_as(struct fsm *f, uint64_t session, uint64_t consumer,
                            struct rec *r)
{
	struct fsm_cmd c = cmd_of(FSM_CMD_CANCEL);

	c.session = session;
	c.u.cancel.consumer = consumer;
	return apply(f, &c, r);
}

/* Publishes a whole message (default route) to `queue`. */
static inline int publish_msg(struct fsm *f, const char *queue,
                              const struct fsm_msg_in *m, struct rec *r)
{
	struct fsm_cmd c = cmd_of(FSM_CMD_PUBLISH);

	c.u.publish.topic = "";
	c.u.publish.key = queue;
	c.u.publish.key_len = (uint32_t)strlen(queue);
	c.u.publish.msg = *m;
	return apply(f, &c, r);
}

static inline int tick(struct fsm *f, uint64_t time, struct rec *r)
{
	struct fsm_cmd c = cmd_of(FSM_CMD_TICK);

	c.time = time;
	return apply(f, &c, r);
}

static inline int get_msgs(struct fsm *f, const char *queue, uint64_t session,
                           uint32_t max, uint64_t timeout, uint64_t req_id,
                           struct rec *r)
{
	struct fsm_cmd c = cmd_of(FSM_CMD_GET);

	c.session = session;
	c.req_id = req_id;
	c.u.get.queue = queue;
	c.u.get.queue_len = (uint32_t)strlen(queue);
	c.u.get.max = max;
	c.u.get.timeout = timeout;
	return apply(f, &c, r);
}

static inline struct fsm_queue_stats qstats(struct fsm *f, const char *name)
{
	struct fsm_queue_stats s;

	assert_int_equal(fsm_queue_stats(f, name, (uint32_t)strlen(name), &s),
	                 FSM_OK);
	return s;
}

static inline const struct fsm_result *last_res(struct rec *r)
{
	assert_true(r->n_res > 0);
	return &r->res[r->n_res - 1];
}

/* Snapshot bytes of f (malloc'd). */
static inline void *snap(const struct fsm *f, size_t *len)
{
	void *buf = NULL;

	assert_int_equal(fsm_snapshot(f, &buf, len), 0);
	return buf;
}

static inline int snap_equal(const struct fsm *a, const struct fsm *b)
{
	size_t la, lb;
	void *sa = snap(a, &la), *sb = snap(b, &lb);
	int eq = la == lb && memcmp(sa, sb, la) == 0;

	free(sa);
	free(sb);
	return eq;
}

#endif /* RAFTMQ_TEST_FSM_UTIL_H */
