/* fsm_int: internal structures and helpers shared by the fsm/ sources. */
#ifndef RAFTMQ_FSM_INT_H
#define RAFTMQ_FSM_INT_H

#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "fsm/fsm.h"

#define FSM_NOIDX UINT32_MAX

/* ---- Counting allocator (hash.c). Every allocation is charged its size
 * plus FSM_MALLOC_OVERHEAD, an estimate of the allocator's own header. */
#define FSM_MALLOC_OVERHEAD 16

void *fsm_mem_alloc(struct fsm *f, size_t size);
void *fsm_mem_calloc(struct fsm *f, size_t size);
void fsm_mem_free(struct fsm *f, void *p, size_t size);

/* ---- Open-addressing hash table of element pointers (hash.c). The element
 * knows its own key; `hash` recomputes an element's hash when entries are
 * shifted back after a removal. */
struct fsm_htab {
	void **slots;
	uint32_t cap; /* 0 or at least 8 */
	uint32_t count;
	uint64_t (*hash)(const void *elem);
};

void fsm_htab_init(struct fsm_htab *t, uint64_t (*hash)(const void *elem));
void fsm_htab_free(struct fsm *f, struct fsm_htab *t);
/* Makes room for `extra` more insertions; 0 or FSM_ENOMEM. */
int fsm_htab_reserve(struct fsm *f, struct fsm_htab *t, uint32_t extra);
/* Inserts after a successful reserve; cannot fail. */
void fsm_htab_insert(struct fsm_htab *t, void *elem);
void *fsm_htab_find(const struct fsm_htab *t, uint64_t h,
                    int (*match)(const void *elem, const void *key),
                    const void *key);
/* Removes `elem` (by identity); may shrink the table. */
void fsm_htab_remove(struct fsm *f, struct fsm_htab *t, void *elem);

uint64_t fsm_hash_bytes(const char *s, size_t n);
uint64_t fsm_hash_u64(uint64_t v);

/* A growing array of pointers. */
struct fsm_vec {
	void **v;
	uint32_t n, cap;
};
int fsm_vec_reserve(struct fsm *f, struct fsm_vec *v, uint32_t extra);
int fsm_vec_push(struct fsm *f, struct fsm_vec *v, void *p);
void fsm_vec_free(struct fsm *f, struct fsm_vec *v);

/* ---- Messages (queue.c). One allocation: header, id, properties (type,
 * correlation id, reply-to, headers; see queue.c), payload. */
enum fsm_msg_state { FSM_MS_READY = 0, FSM_MS_DELAYED = 1, FSM_MS_FLIGHT = 2 };

struct fsm_aux;

#define FSM_MAX_PAYLOAD_BITS 26

/* 32 bytes of header. The id and the properties are optional parts of
 * data[], each announced by a flag and prefixed by its length: [u16 id
 * length, id] [u32 properties length, properties] payload. */
struct fsm_msg {
	uint64_t seq;
	uint64_t timestamp;
	struct fsm_aux *aux; /* timers and owner; NULL when READY, no TTL */
	uint32_t delivery_count;
	uint32_t payload_len : FSM_MAX_PAYLOAD_BITS;
	uint32_t state : 2;
	uint32_t has_id : 1;
	uint32_t has_props : 1;
	char data[];
};

_Static_assert(sizeof(struct fsm_msg) == 32, "message header size");

static inline uint32_t fsm_msg_id_len(const struct fsm_msg *m)
{
	uint16_t n = 0;

	if (m->has_id)
		memcpy(&n, m->data, 2);
	return n;
}

static inline const char *fsm_msg_id(const struct fsm_msg *m)
{
	return m->has_id ? m->data + 2 : m->data;
}

static inline size_t fsm_msg_id_part(const struct fsm_msg *m)
{
	return m->has_id ? 2 + (size_t)fsm_msg_id_len(m) : 0;
}

static inline uint32_t fsm_msg_props_len(const struct fsm_msg *m)
{
	uint32_t n = 0;

	if (m->has_props)
		memcpy(&n, m->data + fsm_msg_id_part(m), 4);
	return n;
}

static inline const char *fsm_msg_props(const struct fsm_msg *m)
{
	return m->data + fsm_msg_id_part(m) + (m->has_props ? 4 : 0);
}

static inline const char *fsm_msg_payload(const struct fsm_msg *m)
{
	return fsm_msg_props(m) + fsm_msg_props_len(m);
}

/* Who holds in-flight messages: a consumer, or a session's gets. */
struct fsm_owner {
	uint64_t session;
	uint64_t consumer;      /* 0 = the session's gets */
	struct fsm_vec flights; /* struct fsm_aux * */
};

/* The side record of a message that has a timer or an owner. */
struct fsm_aux {
	struct fsm_msg *msg;
	struct fsm_queue *q;
	uint64_t due;     /* not-before (DELAYED) or ack deadline (FLIGHT) */
	uint64_t expires; /* 0 = no TTL */
	struct fsm_owner *owner;
	uint32_t owner_slot;
	uint32_t heap_idx;
};

struct fsm_dedup {
	struct fsm_dedup *next; /* FIFO, oldest first */
	uint64_t time;
	uint64_t seq;
	uint16_t id_len;
	uint16_t pad;
	uint32_t hash; /* high half of fsm_hash_bytes(id) */
	char id[];
};

struct fsm_queue {
	uint32_t id;
	uint32_t name_len;
	char *name;                 /* NUL-terminated, owned */
	struct fsm_queue_opts opts; /* resolved; dlq NUL-terminated, owned */
	uint32_t dlq_len;
	uint8_t had_consumer;
	uint8_t dirty;
	/* Messages. */
	struct fsm_htab msgs; /* by seq */
	uint64_t last_seq;
	uint64_t cursor; /* first seq never considered for a first delivery */
	uint64_t *rq;    /* min-heap of requeued seqs (lazy deletion) */
	uint32_t rq_n, rq_cap;
	uint64_t n_ready, n_delayed, n_flight;
	uint64_t bytes, ready_bytes;
	uint64_t published, acked, dead_lettered, expired, dropped,
	    deduplicated;
	/* Dedup index. */
	struct fsm_htab dedup;
	struct fsm_dedup *dd_head, *dd_tail;
	/* Consumers in id order, and the round-robin cursor. */
	struct fsm_vec consumers;
	uint32_t rr;
	uint32_t n_credit; /* consumers with free credit */
};

struct fsm_binding {
	uint32_t queue_id;
	uint32_t key_len;
	char key[];
};

struct fsm_topic {
	uint32_t name_len;
	uint8_t kind;
	struct fsm_vec bindings; /* struct fsm_binding *, in bind order */
	char name[];
};

struct fsm_consumer {
	uint64_t id;
	uint32_t prefetch;
	struct fsm_queue *q;
	struct fsm_owner owner;
};

struct fsm_session {
	uint64_t id;
	struct fsm_vec consumers; /* struct fsm_consumer * */
	struct fsm_owner gets;
};

/* The tie-breakers (queue id, seq) live in the entry, so comparisons never
 * leave the heap array. */
struct fsm_heap_ent {
	uint64_t time;
	uint64_t seq;
	uint32_t queue_id;
	struct fsm_aux *a;
};

struct fsm {
	struct fsm_config cfg;
	uint64_t mem;
	uint64_t now;
	uint32_t next_queue_id;
	uint64_t next_consumer_id;
	struct fsm_htab queues;    /* by name */
	struct fsm_htab queue_ids; /* by id */
	struct fsm_htab topics;    /* by name */
	struct fsm_htab consumers; /* by id */
	struct fsm_htab sessions;  /* by id */
	struct fsm_heap_ent *heap;
	uint32_t heap_n, heap_cap;
	struct fsm_vec dirty; /* queues to run assignment for */
	/* Per-apply context. */
	const struct fsm_sink *sink;
	/* Scratch for decoding headers of a delivered message. */
	struct fsm_header *hscratch;
	uint32_t hscratch_cap;
};

/* ---- fsm.c */
void fsm_emit_effect(struct fsm *f, const struct fsm_delivery *d);
void fsm_mark_dirty(struct fsm *f, struct fsm_queue *q);
void fsm_run_dirty(struct fsm *f);
int fsm_name_ok(const struct fsm *f, const char *s, uint32_t n);

/* ---- timer.c: the global min-heap of message timers. */
uint64_t fsm_aux_key(const struct fsm_aux *a);
int fsm_timer_reserve(struct fsm *f, uint32_t extra);
/* Inserts, moves or removes `a` according to fsm_aux_key(a) (0 = none). */
void fsm_timer_update(struct fsm *f, struct fsm_aux *a);
void fsm_timer_remove(struct fsm *f, struct fsm_aux *a);
void fsm_timer_fire(struct fsm *f);
/* Gives back heap memory once mostly empty (between commands only). */
void fsm_timer_trim(struct fsm *f);

/* ---- queue.c */
uint64_t fsm_queue_name_hash(const void *e);
uint64_t fsm_queue_id_hash(const void *e);
struct fsm_queue *fsm_queue_find(const struct fsm *f, const char *name,
                                 uint32_t len);
struct fsm_queue *fsm_queue_by_id(const struct fsm *f, uint32_t id);
struct fsm_msg *fsm_msg_find(const struct fsm_queue *q, uint64_t seq);
struct fsm_queue *fsm_queue_create(struct fsm *f, uint32_t id, const char *name,
                                   uint32_t len, const struct fsm_queue_opts *o,
                                   uint32_t dlq_len);
void fsm_queue_destroy(struct fsm *f, struct fsm_queue *q, int emit);
void fsm_queue_resolve_opts(const struct fsm *f, struct fsm_queue_opts *o);
size_t fsm_props_size(const struct fsm_msg_in *m,
                      const struct fsm_header *extra, uint32_t n_extra);
void fsm_props_write(char *p, const struct fsm_msg_in *m,
                     const struct fsm_header *extra, uint32_t n_extra);
int fsm_props_valid(const char *p, size_t n, uint32_t *n_headers);
/* Fills v->m (headers in f's scratch); returns 0 or FSM_ENOMEM. */
int fsm_msg_view(struct fsm *f, const struct fsm_msg *m,
                 struct fsm_msg_view *v);
void fsm_q_account(struct fsm_queue *q, const struct fsm_msg *m, int sign);
void fsm_msg_set_state(struct fsm_queue *q, struct fsm_msg *m, uint8_t st);
/* Removes a message from its queue and frees it (owner, timer, index). */
void fsm_msg_remove(struct fsm *f, struct fsm_queue *q, struct fsm_msg *m);
int fsm_aux_get(struct fsm *f, struct fsm_queue *q, struct fsm_msg *m);
void fsm_aux_maybe_free(struct fsm *f, struct fsm_msg *m);
void fsm_rq_push(struct fsm *f, struct fsm_queue *q, uint64_t seq);
/* The next READY message to hand out, or NULL. Does not remove it. */
struct fsm_msg *fsm_queue_next_ready(struct fsm *f, struct fsm_queue *q);
/* Marks m as handed out (advances the cursor or pops the requeue heap). */
void fsm_queue_take(struct fsm_queue *q, struct fsm_msg *m);
/* Whether q accepts one more message of that size: FSM_OK or FSM_EFULL. */
int fsm_queue_admit(const struct fsm_queue *q, uint32_t payload_len);
/* Reserves table room in q and in the timer heap for one message. */
int fsm_queue_reserve(struct fsm *f, struct fsm_queue *q);
/* Allocates a message (with `extra` headers appended to those of `in`)
 * with its side record if it will need one; not yet in any queue. */
struct fsm_msg *fsm_msg_build(struct fsm *f, const struct fsm_queue *q,
                              const struct fsm_msg_in *in,
                              const struct fsm_header *extra, uint32_t n_extra);
void fsm_msg_discard(struct fsm *f, struct fsm_msg *m);
/* Puts a built message into q after fsm_queue_reserve (cannot fail):
 * applies drop-head, assigns the seq, starts timers. */
void fsm_queue_commit(struct fsm *f, struct fsm_queue *q, struct fsm_msg *m);
/* Puts a restored message into q as is (snapshot restore). */
void fsm_queue_insert_raw(struct fsm *f, struct fsm_queue *q,
                          struct fsm_msg *m);
size_t fsm_msg_size(const struct fsm_msg *m);
/* Allocates a message holding id and payload, with room for `props_len`
 * bytes of properties at *props (caller fills them). NULL when out of
 * memory. */
struct fsm_msg *fsm_msg_alloc(struct fsm *f, const char *id, uint32_t id_len,
                              uint32_t props_len, const char *payload,
                              uint32_t payload_len, char **props);
int fsm_cmd_queue(struct fsm *f, const struct fsm_cmd *c, struct fsm_result *r);
int fsm_cmd_publish(struct fsm *f, const struct fsm_cmd *c,
                    struct fsm_result *r);
void fsm_dedup_add_raw(struct fsm *f, struct fsm_queue *q, struct fsm_dedup *d);
uint64_t fsm_dedup_key(const char *id, uint32_t len);
int fsm_dedup_has(const struct fsm_queue *q, const char *id, uint32_t len);
int fsm_queue_check(const struct fsm *f, const struct fsm_queue *q);
void fsm_queue_stats_fill(const struct fsm_queue *q, struct fsm_queue_stats *s);
/* Sorted arrays of all queues / topics (caller frees with free()). */
struct fsm_queue **fsm_queues_sorted(const struct fsm *f, uint32_t *n);

/* ---- topic.c */
uint64_t fsm_topic_hash(const void *e);
struct fsm_topic *fsm_topic_find(const struct fsm *f, const char *name,
                                 uint32_t len);
int fsm_cmd_topic(struct fsm *f, const struct fsm_cmd *c, struct fsm_result *r);
void fsm_topic_unbind_queue(struct fsm *f, uint32_t queue_id);
int fsm_topic_match(const char *pat, uint32_t plen, const char *key,
                    uint32_t klen);
void fsm_topic_destroy(struct fsm *f, struct fsm_topic *t);
int fsm_topic_bind(struct fsm *f, struct fsm_topic *t, uint32_t queue_id,
                   const char *key, uint32_t key_len);
struct fsm_topic **fsm_topics_sorted(const struct fsm *f, uint32_t *n);
/* Fills `out` (capacity: number of queues) with the distinct queues a
 * publish to `t` with `key` reaches, in name order; returns the count. */
uint32_t fsm_topic_route(const struct fsm *f, const struct fsm_topic *t,
                         const char *key, uint32_t key_len,
                         struct fsm_queue **out);

/* ---- consumer.c */
uint64_t fsm_consumer_hash(const void *e);
uint64_t fsm_session_hash(const void *e);
struct fsm_consumer *fsm_consumer_find(const struct fsm *f, uint64_t id);
struct fsm_session *fsm_session_get(struct fsm *f, uint64_t id, int create);
void fsm_session_maybe_free(struct fsm *f, struct fsm_session *s);
void fsm_assign(struct fsm *f, struct fsm_queue *q);
/* Hands m to an owner (consumer or get). Returns 0 or FSM_ENOMEM. */
int fsm_deliver(struct fsm *f, struct fsm_queue *q, struct fsm_msg *m,
                struct fsm_owner *o, uint64_t req_id, uint64_t deadline);
void fsm_consumer_cancel(struct fsm *f, struct fsm_consumer *c, int emit,
                         int reason);
int fsm_consumer_create(struct fsm *f, uint64_t id, struct fsm_queue *q,
                        uint64_t session, uint32_t prefetch,
                        struct fsm_consumer **out);
int fsm_cmd_consumer(struct fsm *f, const struct fsm_cmd *c,
                     struct fsm_result *r);
/* Returns every in-flight message of the owner to READY (sorted order). */
void fsm_owner_release(struct fsm *f, struct fsm_owner *o);
void fsm_owner_remove(struct fsm *f, struct fsm_aux *a);
int fsm_owner_add(struct fsm *f, struct fsm_owner *o, struct fsm_aux *a);

/* ---- settle.c */
/* A message of q that may not become READY again (or whose consumer went)
 * goes back to READY, or to the dead-letter path. */
void fsm_msg_requeue(struct fsm *f, struct fsm_queue *q, struct fsm_msg *m);
void fsm_msg_deadletter(struct fsm *f, struct fsm_queue *q, struct fsm_msg *m,
                        const char *reason);
void fsm_msg_expire(struct fsm *f, struct fsm_queue *q, struct fsm_msg *m);
int fsm_cmd_settle(struct fsm *f, const struct fsm_cmd *c,
                   struct fsm_result *r);

#endif /* RAFTMQ_FSM_INT_H */
