/* tests/raft/rg_test_util: shared helpers of the raft_glue tests. */
#ifndef RAFTMQ_RG_TEST_UTIL_H
#define RAFTMQ_RG_TEST_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm/codec.h"
#include "fsm/fsm.h"

/* Commands in every batch built by rgt_batch(). */
#define RGT_CMDS_PER_BATCH 4

/* Encodes batch number `n`: declare queue "q" (idempotent after the first),
 * then three publishes to it with distinct ids and payloads. Returns a
 * malloc'd copy of the entry in *buf / *len, or -1. */
static inline int rgt_batch(unsigned n, void **buf, size_t *len)
{
	struct fsm_batch b;
	struct fsm_cmd c;
	const void *p;
	char id[3][32], payload[3][64];
	unsigned i;
	int rv = -1;

	fsm_batch_init(&b);
	memset(&c, 0, sizeof c);
	c.type = FSM_CMD_QUEUE_DECLARE;
	c.time = 1000 + n;
	c.session = 7;
	c.req_id = n * 10;
	c.u.declare.name = "q";
	c.u.declare.name_len = 1;
	if (fsm_batch_add(&b, &c) != 0)
		goto out;
	for (i = 0; i < 3; i++) {
		memset(&c, 0, sizeof c);
		snprintf(id[i], sizeof id[i], "m-%u-%u", n, i);
		snprintf(payload[i], sizeof payload[i], "payload %u/%u", n, i);
		c.type = FSM_CMD_PUBLISH;
		c.time = 1000 + n;
		c.session = 7;
		c.req_id = n * 10 + 1 + i;
		c.u.publish.topic = "";
		c.u.publish.key = "q";
		c.u.publish.key_len = 1;
		c.u.publish.msg.id = id[i];
		c.u.publish.msg.id_len = (uint32_t)strlen(id[i]);
		c.u.publish.msg.payload = payload[i];
		c.u.publish.msg.payload_len = (uint32_t)strlen(payload[i]);
		if (fsm_batch_add(&b, &c) != 0)
			goto out;
	}
	if (fsm_batch_finish(&b, &p, len) != 0)
		goto out;
	*buf = malloc(*len);
	if (*buf == NULL)
		goto out;
	memcpy(*buf, p, *len);
	rv = 0;
out:
	fsm_batch_close(&b);
	return rv;
}

/* Returns 1 when both state machines serialise to the same bytes. */
static inline int rgt_same_state(const struct fsm *a, const struct fsm *b)
{
	void *x = NULL, *y = NULL;
	size_t xl = 0, yl = 0;
	int same;

	if (fsm_snapshot(a, &x, &xl) != 0 || fsm_snapshot(b, &y, &yl) != 0) {
		free(x);
		free(y);
		return 0;
	}
	same = xl == yl && memcmp(x, y, xl) == 0;
	free(x);
	free(y);
	return same;
}

#endif /* RAFTMQ_RG_TEST_UTIL_H */
