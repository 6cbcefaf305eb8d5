/* fsm/settle: ack, nack and extend, and the paths by which a message leaves
 * flight: back to READY, to the dead-letter queue, or expired. */
#include <string.h>

#include "fsm/fsm_int.h"

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

static int is_death_header(const struct fsm_header *h)
{
	return (h->key_len == 14 &&
	        memcmp(h->key, "x-death-reason", 14) == 0) ||
	       (h->key_len == 13 && memcmp(h->key, "x-death-queue", 13) == 0);
}

/* Copies m into the dead-letter queue of q (if there is one and it takes
 * it) with the reason and the origin in its headers, then removes m. The
 * copy is built before m goes and committed after, so that a queue that is
 * its own dead-letter queue never drops the message being moved. The two
 * headers replace those of an earlier dead-lettering, so that a copy has
 * at most max_headers + FSM_DLQ_HEADERS headers however often it moves.
 * Neither max_payload nor max_memory refuses the copy (it frees as much as
 * it takes); the dead-letter queue's own limits do. */
void fsm_msg_deadletter(struct fsm *f, struct fsm_queue *q, struct fsm_msg *m,
                        const char *reason)
{
	struct fsm_queue *dl = NULL;
	struct fsm_msg *nm = NULL;
	struct fsm_aux *na = NULL;
	struct fsm_msg_view v;

	if (strcmp(reason, "expired") == 0)
		q->expired++;
	else
		q->dead_lettered++;
	if (q->dlq_len > 0)
		dl = fsm_queue_find(f, q->opts.dlq, q->dlq_len);
	if (dl != NULL && fsm_msg_view(f, m, &v) == 0) {
		struct fsm_header extra[2] = {
		    {"x-death-reason", 14, reason, (uint32_t)strlen(reason)},
		    {"x-death-queue", 13, q->name, q->name_len},
		};
		struct fsm_header *h = f->hscratch;
		uint32_t i, k = 0;

		/* v.m.headers is f's scratch: filter it in place. */
		for (i = 0; i < v.m.n_headers; i++)
			if (!is_death_header(&h[i]))
				h[k++] = h[i];
		v.m.n_headers = k;
		v.m.ttl = 0;
		v.m.delay = 0;
		if (fsm_queue_admit(dl, fsm_msg_in_bytes(&v.m, extra, 2)) ==
		        FSM_OK &&
		    fsm_queue_reserve(f, dl) == 0)
			nm = fsm_msg_build(f, dl, &v.m, extra, 2, &na);
	}
	fsm_msg_remove(f, q, m);
	if (nm != NULL)
		fsm_queue_commit(f, dl, nm, na, 0);
}

void fsm_msg_expire(struct fsm *f, struct fsm_queue *q, struct fsm_msg *m)
{
	fsm_msg_deadletter(f, q, m, "expired");
}

void fsm_msg_requeue(struct fsm *f, struct fsm_queue *q, struct fsm_msg *m)
{
	struct fsm_aux *a = fsm_msg_aux(q, m);

	if (a->owner != NULL)
		fsm_owner_remove(f, a);
	fsm_mark_dirty(f, q);
	if (q->opts.max_deliveries != 0 &&
	    m->delivery_count >= q->opts.max_deliveries) {
		fsm_msg_deadletter(f, q, m, "max-deliveries");
		return;
	}
	fsm_msg_set_state(q, m, FSM_MS_READY);
	a->due = 0;
	fsm_rq_push(f, q, m->seq);
	fsm_timer_update(f, a);
	fsm_aux_maybe_free(f, q, m);
}

int fsm_cmd_settle(struct fsm *f, const struct fsm_cmd *c, struct fsm_result *r)
{
	struct fsm_queue *q;
	struct fsm_msg *m;
	struct fsm_aux *a;
	uint64_t timeout;

	(void)r;
	if (c->type == FSM_CMD_NACK && c->u.settle.mode > FSM_NACK_DEADLETTER)
		return FSM_EINVAL;
	q = fsm_queue_by_id(f, c->u.settle.queue_id);
	if (q == NULL)
		return FSM_ENOQUEUE;
	m = fsm_msg_find(q, c->u.settle.seq);
	if (m == NULL || m->delivery_count == 0)
		return FSM_ENOMSG;
	if (c->type == FSM_CMD_ACK) {
		q->acked++;
		fsm_msg_remove(f, q, m);
		return FSM_OK;
	}
	/* NACK and EXTEND act on a delivery: the message must be in flight
	 * to the command's session (a stale session's delivery was given to
	 * someone else since). */
	a = m->state == FSM_MS_FLIGHT ? fsm_msg_aux(q, m) : NULL;
	if (a == NULL || a->owner == NULL || a->owner->session != c->session)
		return FSM_ENOMSG;
	switch (c->type) {
	case FSM_CMD_NACK:
		if (c->u.settle.mode == FSM_NACK_REQUEUE)
			fsm_msg_requeue(f, q, m);
		else
			fsm_msg_deadletter(f, q, m, "nack");
		return FSM_OK;
	default:
		timeout = c->u.settle.timeout ? c->u.settle.timeout
		                              : q->opts.ack_timeout;
		a->due = add_sat(f->now, timeout);
		fsm_timer_update(f, a);
		return FSM_OK;
	}
}
