/* fsm/timer: one min-heap of message deadlines (ack deadline, not-before,
 * TTL) for the whole state machine, with positions tracked in each
 * message's side record so updates and removals are O(log n), plus a FIFO
 * per queue for in-order ack deadlines (O(1)). The heap is
 * 4-ary: half the depth of a binary heap, with the four children of a node
 * side by side, which matters at millions of entries. */
#include <string.h>

#include "fsm/fsm_int.h"

/* The earliest event of a message: its TTL, and its not-before or ack
 * deadline. 0 = none. */
uint64_t fsm_aux_key(const struct fsm_aux *a)
{
	uint64_t k = 0;

	if (a->msg->state != FSM_MS_READY)
		k = a->due;
	if (a->expires != 0 && (k == 0 || a->expires < k))
		k = a->expires;
	return k;
}

/* Ties are broken by queue id and sequence number: a total order that does
 * not depend on insertion history, so a restored heap fires identically. */
static int ent_less(const struct fsm_heap_ent *x, const struct fsm_heap_ent *y)
{
	if (x->time != y->time)
		return x->time < y->time;
	if (x->queue_id != y->queue_id)
		return x->queue_id < y->queue_id;
	return x->seq < y->seq;
}

static void heap_set(struct fsm *f, uint32_t i, struct fsm_heap_ent e)
{
	f->heap[i] = e;
	e.a->heap_idx = i;
}

static void sift_up(struct fsm *f, uint32_t i)
{
	struct fsm_heap_ent e = f->heap[i];

	while (i > 0) {
		uint32_t p = (i - 1) / 4;

		if (!ent_less(&e, &f->heap[p]))
			break;
		heap_set(f, i, f->heap[p]);
		i = p;
	}
	heap_set(f, i, e);
}

static void sift_down(struct fsm *f, uint32_t i)
{
	struct fsm_heap_ent e = f->heap[i];

	for (;;) {
		uint32_t l = 4 * i + 1, m = i, k;
		const struct fsm_heap_ent *best = &e;

		for (k = l; k < l + 4 && k < f->heap_n; k++)
			if (ent_less(&f->heap[k], best)) {
				m = k;
				best = &f->heap[k];
			}
		if (m == i)
			break;
		heap_set(f, i, f->heap[m]);
		i = m;
	}
	heap_set(f, i, e);
}

static int heap_resize(struct fsm *f, uint32_t cap)
{
	struct fsm_heap_ent *h = fsm_mem_alloc(f, (size_t)cap * sizeof(*h));

	if (h == NULL)
		return FSM_ENOMEM;
	if (f->heap_n)
		memcpy(h, f->heap, (size_t)f->heap_n * sizeof(*h));
	fsm_mem_free(f, f->heap, (size_t)f->heap_cap * sizeof(*h));
	f->heap = h;
	f->heap_cap = cap;
	return 0;
}

/* Called between commands only, when no reservation is outstanding. */
void fsm_timer_trim(struct fsm *f)
{
	if (f->heap_cap > 1024 && f->heap_n < f->heap_cap / 4)
		(void)heap_resize(f, f->heap_cap / 2);
}

int fsm_timer_reserve(struct fsm *f, uint32_t extra)
{
	uint64_t need = (uint64_t)f->heap_n + extra;
	uint32_t cap = f->heap_cap ? f->heap_cap : 64;

	if (need <= f->heap_cap)
		return 0;
	while (cap < need) {
		if (cap >= (1u << 30))
			return FSM_ENOMEM;
		cap *= 2;
	}
	return heap_resize(f, cap);
}

static void heap_remove_at(struct fsm *f, uint32_t i)
{
	struct fsm_aux *moved;

	f->heap[i].a->heap_idx = FSM_NOIDX;
	f->heap_n--;
	if (i == f->heap_n)
		return;
	moved = f->heap[f->heap_n].a;
	heap_set(f, i, f->heap[f->heap_n]);
	sift_up(f, i);
	sift_down(f, moved->heap_idx);
}

/* The caller reserved room beforehand. */
static void heap_insert(struct fsm *f, struct fsm_aux *a, uint64_t k)
{
	struct fsm_heap_ent e = {k, a->msg->seq, a->q->id, a};

	heap_set(f, f->heap_n++, e);
	sift_up(f, f->heap_n - 1);
}

/* ---- The deadline FIFO of a queue. Deliveries of one queue mostly get
 * deadlines in (due, seq) order; those sit in an intrusive list whose head
 * alone is in the heap, so that settling them costs O(1) instead of heap
 * sifts. Anything out of order (an extend, a shorter get timeout, a TTL)
 * goes to the heap. The order of firing is the heap's total order
 * (time, queue id, seq) either way. */

static int fifo_fits(const struct fsm_aux *a)
{
	const struct fsm_aux *t = a->q->tq_tail;

	if (a->msg->state != FSM_MS_FLIGHT || a->expires != 0 || a->due == 0)
		return 0;
	return t == NULL || t->due < a->due ||
	       (t->due == a->due && t->msg->seq < a->msg->seq);
}

static void fifo_append(struct fsm *f, struct fsm_aux *a)
{
	struct fsm_queue *q = a->q;

	a->tprev = q->tq_tail;
	a->tnext = NULL;
	a->fifo = 1;
	if (q->tq_tail != NULL) {
		q->tq_tail->tnext = a;
	} else {
		q->tq_head = a;
		heap_insert(f, a, a->due);
	}
	q->tq_tail = a;
}

/* Unlinks a; when it was the head, the next one takes its heap entry. */
static void fifo_unlink(struct fsm *f, struct fsm_aux *a)
{
	struct fsm_queue *q = a->q;
	struct fsm_aux *n = a->tnext;

	if (a->tprev != NULL)
		a->tprev->tnext = n;
	else
		q->tq_head = n;
	if (n != NULL)
		n->tprev = a->tprev;
	else
		q->tq_tail = a->tprev;
	if (a->heap_idx != FSM_NOIDX) {
		uint32_t i = a->heap_idx;

		if (n != NULL) {
			struct fsm_heap_ent e = {n->due, n->msg->seq, q->id, n};

			/* n comes after a: its entry can only sink. */
			a->heap_idx = FSM_NOIDX;
			heap_set(f, i, e);
			sift_down(f, i);
		} else {
			heap_remove_at(f, i);
		}
	}
	a->tprev = a->tnext = NULL;
	a->fifo = 0;
}

void fsm_timer_remove(struct fsm *f, struct fsm_aux *a)
{
	if (a->fifo)
		fifo_unlink(f, a);
	else if (a->heap_idx != FSM_NOIDX)
		heap_remove_at(f, a->heap_idx);
}

/* The caller reserved room beforehand when `a` was not armed. */
void fsm_timer_update(struct fsm *f, struct fsm_aux *a)
{
	uint64_t k = fsm_aux_key(a);

	if (a->fifo)
		fifo_unlink(f, a);
	if (k == 0) {
		fsm_timer_remove(f, a);
		return;
	}
	if (a->heap_idx == FSM_NOIDX) {
		if (fifo_fits(a))
			fifo_append(f, a);
		else
			heap_insert(f, a, k);
		return;
	}
	f->heap[a->heap_idx].time = k;
	sift_up(f, a->heap_idx);
	sift_down(f, a->heap_idx);
}

int fsm_timer_check(const struct fsm *f, const struct fsm_queue *q,
                    uint64_t *len)
{
	const struct fsm_aux *a, *prev = NULL;

	*len = 0;
	for (a = q->tq_head; a != NULL; prev = a, a = a->tnext) {
		if (a->tprev != prev || !a->fifo || a->q != q ||
		    a->msg->state != FSM_MS_FLIGHT || a->expires != 0 ||
		    a->due == 0)
			return -1;
		if (prev != NULL &&
		    !(prev->due < a->due ||
		      (prev->due == a->due && prev->msg->seq < a->msg->seq)))
			return -1;
		if (prev == NULL ? a->heap_idx >= f->heap_n ||
		                       f->heap[a->heap_idx].a != a
		                 : a->heap_idx != FSM_NOIDX)
			return -1;
		(*len)++;
	}
	return prev == q->tq_tail ? 0 : -1;
}

/* Fires every timer due at or before the clock. Each event either removes
 * the message or moves its key strictly past the clock, so this ends. */
void fsm_timer_fire(struct fsm *f)
{
	while (f->heap_n > 0 && f->heap[0].time <= f->now) {
		struct fsm_aux *a = f->heap[0].a;
		struct fsm_msg *m = a->msg;
		struct fsm_queue *q = a->q;

		if (a->expires != 0 && a->expires <= f->now) {
			fsm_msg_expire(f, q, m);
		} else if (m->state == FSM_MS_DELAYED) {
			fsm_msg_set_state(q, m, FSM_MS_READY);
			if (m->seq < q->cursor)
				fsm_rq_push(f, q, m->seq);
			fsm_mark_dirty(f, q);
			fsm_timer_update(f, a);
			fsm_aux_maybe_free(f, q, m);
		} else {
			fsm_msg_requeue(f, q, m);
		}
	}
}
