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
/* Shrinks a block to `size` bytes; never fails (keeps the block when the
 * allocator cannot move it). */
void *fsm_mem_shrink(struct fsm *f, void *p, size_t old, size_t size);
/* Scratch memory used during apply and freed with free() before it
 * returns (not charged). Like fsm_mem_alloc(), a failure sets
 * fsm_failed(): use it for every temporary whose absence would make apply
 * take a different path than on the other replicas. */
void *fsm_tmp_alloc(struct fsm *f, size_t size);
/* Records an allocation failure inside apply (fsm_failed() becomes 1). */
void fsm_alloc_failed(struct fsm *f);
/* Test-only fault injection, compiled always (one branch per allocation):
 * from the `after`-th allocation on (1 = the next one) every
 * fsm_mem_alloc() and fsm_tmp_alloc() of f fails; 0 turns it off. */
void fsm_test_fail_alloc(struct fsm *f, uint64_t after);

/* Divergence digest (hash.c): folds one value into a running digest. */
uint64_t fsm_digest_mix(uint64_t d, uint64_t v);

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

/* Orders names bytewise, a shorter prefix first (deterministic iteration). */
int fsm_name_cmp(const char *a, uint32_t alen, const char *b, uint32_t blen);
uint64_t fsm_hash_bytes(const char *s, size_t n);
uint64_t fsm_hash_u64(uint64_t v);
/* The little-endian 64-bit value at p (any alignment). */
uint64_t fsm_load_le64(const unsigned char *p);
/* Checksum of a byte range (snapshot trailers). */
uint64_t fsm_checksum(const void *buf, size_t n);

/* A growing array of pointers. */
struct fsm_vec {
	void **v;
	uint32_t n, cap;
};
int fsm_vec_reserve(struct fsm *f, struct fsm_vec *v, uint32_t extra);
int fsm_vec_push(struct fsm *f, struct fsm_vec *v, void *p);
void fsm_vec_free(struct fsm *f, struct fsm_vec *v);

/* ---- Messages (queue.c). One allocation: header, id, properties (type,
 * correlation id, reply-to, headers; see queue.c), payload. A message that
 * left its queue while its id still counts for deduplication shrinks to a
 * tombstone: header and id only, state FSM_MS_GONE. */
enum fsm_msg_state {
	FSM_MS_READY = 0,
	FSM_MS_DELAYED = 1,
	FSM_MS_FLIGHT = 2,
	FSM_MS_GONE = 3
};

struct fsm_aux;

#define FSM_MAX_PAYLOAD_BITS 26

/* 24 bytes of header. The id and the properties are optional parts of
 * data[], each announced by a flag and prefixed by its length: [u16 id
 * length, id] [u32 properties length, properties] payload. The side record
 * (struct fsm_aux) of a message is not referenced from here but from the
 * message's slot in the seq index of its queue. */
struct fsm_msg {
	uint64_t seq;
	uint64_t timestamp;
	uint32_t delivery_count;
	uint32_t payload_len : FSM_MAX_PAYLOAD_BITS;
	uint32_t state : 2;
	uint32_t has_id : 1;
	uint32_t has_props : 1;
	uint32_t dd : 1; /* in the queue's dedup index */
	char data[];
};

_Static_assert(sizeof(struct fsm_msg) == 24, "message header size");

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

/* The whole-message size that max_payload, a queue's max_bytes and a
 * session's window count: the stored message without its fixed header
 * (id, properties with their length prefixes, payload). */
static inline uint64_t fsm_msg_bytes(const struct fsm_msg *m)
{
	return fsm_msg_id_part(m) +
	       (m->has_props ? 4 + (uint64_t)fsm_msg_props_len(m) : 0) +
	       m->payload_len;
}

struct fsm_session;

/* Who holds in-flight messages: a consumer, or a session's gets. */
struct fsm_owner {
	uint64_t session;
	uint64_t consumer;      /* 0 = the session's gets */
	struct fsm_vec flights; /* struct fsm_aux * */
	struct fsm_session *s;  /* the session (outlives its owners) */
};

/* The side record of a message that has a timer or an owner. */
struct fsm_aux {
	struct fsm_msg *msg;
	struct fsm_queue *q;
	uint64_t due;     /* not-before (DELAYED) or ack deadline (FLIGHT) */
	uint64_t expires; /* 0 = no TTL */
	struct fsm_owner *owner;
	uint32_t owner_slot;
	uint32_t heap_idx; /* FSM_NOIDX when not in the heap */
	/* The queue's deadline FIFO (timer.c): in-flight messages without
	 * TTL whose deadlines come in (due, seq) order. Its head alone is
	 * in the heap. */
	struct fsm_aux *tprev, *tnext;
	uint8_t fifo;
};

/* ---- The seq index of a queue (index.c): a directory of fixed-size chunks
 * of slots indexed by seq. A slot holds 0 (no message), a message pointer,
 * or, tagged with bit 0, the pointer to the message's side record (whose
 * `msg` leads to the message). A chunk is freed when its last slot empties,
 * except the top chunk, which receives the next seq; the directory drops
 * leading empty chunks as the low end advances. Seqs are inserted in
 * increasing order only. */
#define FSM_SEQ_CHUNK_BITS 8
#define FSM_SEQ_CHUNK      (1u << FSM_SEQ_CHUNK_BITS)

struct fsm_seq_chunk {
	uint32_t live;
	uint32_t pad;
	uintptr_t slot[FSM_SEQ_CHUNK];
};

struct fsm_seqidx {
	struct fsm_seq_chunk **dir;
	uint64_t lo;          /* chunk number (seq >> BITS) of dir[off] */
	uint32_t off, n, cap; /* chunks dir[off .. off + n) */
	uint64_t count;       /* non-empty slots */
};

static inline struct fsm_msg *fsm_slot_msg(uintptr_t v)
{
	return (v & 1) ? ((struct fsm_aux *)(v - 1))->msg : (struct fsm_msg *)v;
}

static inline struct fsm_aux *fsm_slot_aux(uintptr_t v)
{
	return (v & 1) ? (struct fsm_aux *)(v - 1) : NULL;
}

/* The slot of seq, or NULL when its chunk does not exist. */
static inline uintptr_t *fsm_seq_slot(const struct fsm_seqidx *x, uint64_t seq)
{
	uint64_t c = (seq >> FSM_SEQ_CHUNK_BITS) - x->lo;
	struct fsm_seq_chunk *ch;

	if (c >= x->n)
		return NULL;
	ch = x->dir[x->off + c];
	return ch != NULL ? &ch->slot[seq & (FSM_SEQ_CHUNK - 1)] : NULL;
}

static inline uintptr_t fsm_seq_get(const struct fsm_seqidx *x, uint64_t seq)
{
	const uintptr_t *s = fsm_seq_slot(x, seq);

	return s != NULL ? *s : 0;
}

void fsm_seq_free(struct fsm *f, struct fsm_seqidx *x);
/* Makes sure the slot of `seq` exists, `seq` being at least every seq
 * inserted so far: 0, FSM_ENOMEM, or FSM_EINVAL for a seq below the top
 * chunk. */
int fsm_seq_reserve(struct fsm *f, struct fsm_seqidx *x, uint64_t seq);
/* Fills the empty slot of `seq` (reserved) with v != 0. */
void fsm_seq_put(struct fsm_seqidx *x, uint64_t seq, uintptr_t v);
/* Empties the slot of `seq`. */
void fsm_seq_clear(struct fsm *f, struct fsm_seqidx *x, uint64_t seq);
/* The first non-empty slot at or after *seq: returns its value and sets
 * *seq, or returns 0 when there is none. */
uintptr_t fsm_seq_next(const struct fsm_seqidx *x, uint64_t *seq);
int fsm_seq_check(const struct fsm_seqidx *x);

/* ---- The dedup index of a queue (index.c): open addressing over 8-byte
 * slots, each the high half of the id's hash (with bit 0 set, so a slot is
 * never 0) above the low 32 bits of the entry's seq. Entries are the
 * queue's messages with `dd` set and its tombstones; every entry's seq lies
 * in (last_seq - 2^32, last_seq], which gives back the full seq. */
#define FSM_DD_SPAN (1ull << 32)

struct fsm_ddtab {
	uint64_t *slots;
	uint32_t cap; /* 0 or at least 8 */
	uint32_t count;
};

static inline uint32_t fsm_dd_hash(const char *id, uint32_t len)
{
	return (uint32_t)(fsm_hash_bytes(id, len) >> 32) | 1u;
}

void fsm_dd_free(struct fsm *f, struct fsm_ddtab *t);
int fsm_dd_reserve(struct fsm *f, struct fsm_ddtab *t, uint32_t extra);
void fsm_dd_insert(struct fsm_ddtab *t, uint32_t h, uint64_t seq);
void fsm_dd_remove(struct fsm *f, struct fsm_ddtab *t, uint32_t h,
                   uint64_t seq);
/* Calls `match` on the seq of every entry with hash h until it returns
 * non-zero; returns that seq, or 0. */
uint64_t fsm_dd_find(const struct fsm_ddtab *t, uint32_t h, uint64_t last_seq,
                     int (*match)(const void *ctx, uint64_t seq),
                     const void *ctx);
int fsm_dd_contains(const struct fsm_ddtab *t, uint32_t h, uint64_t seq);

struct fsm_queue {
	uint32_t id;
	uint32_t name_len;
	char *name;                 /* NUL-terminated, owned */
	struct fsm_queue_opts opts; /* resolved; dlq NUL-terminated, owned */
	uint32_t dlq_len;
	uint8_t had_consumer;
	uint8_t dirty;
	/* Messages and tombstones, by seq. */
	struct fsm_seqidx idx;
	uint64_t n_tomb;
	/* Deadline FIFO (timer.c). */
	struct fsm_aux *tq_head, *tq_tail;
	uint64_t last_seq;
	uint64_t cursor; /* first seq never considered for a first delivery */
	uint64_t *rq;    /* min-heap of requeued seqs (lazy deletion) */
	uint32_t rq_n, rq_cap;
	uint64_t n_ready, n_delayed, n_flight;
	uint64_t bytes, ready_bytes;
	uint64_t published, acked, dead_lettered, expired, dropped,
	    deduplicated;
	/* Dedup index; no entry has a seq below dd_low. */
	struct fsm_ddtab dedup;
	uint64_t dd_low;
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

/* A session's window: `inflight` sums fsm_msg_bytes() of every message in
 * flight to its consumers and gets (kept by fsm_owner_add/remove, hence
 * rebuilt by a restore). `blocked` is inflight >= cfg.session_window: its
 * consumers then count as without credit (n_credit) and get nothing. */
struct fsm_session {
	uint64_t id;
	struct fsm_vec consumers; /* struct fsm_consumer * */
	struct fsm_owner gets;
	uint64_t inflight;
	uint8_t blocked;
};

/* The tie-breakers (queue id, seq) live in the entry, so comparisons never
 * leave the heap array. */
struct fsm_heap_ent {
	uint64_t time;
	uint64_t seq;
	uint32_t queue_id;
	struct fsm_aux *a;
};

/* What cfg.max_memory bounds: per stored message its whole size plus this
 * fixed cost (header, side record, index slot). Unlike fsm_memory(), which
 * depends on allocation history (a restored replica has tighter tables), it
 * is a function of the replicated state alone, so every replica refuses the
 * same publishes. */
#define FSM_MSG_COST 96

struct fsm {
	struct fsm_config cfg;
	uint64_t mem;
	uint64_t stored; /* sum over stored messages of bytes + FSM_MSG_COST */
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
	/* Per-apply context. `sink` always has an effect callback during
	 * apply, so that apply takes the same path on every replica whatever
	 * its caller passed; `user_sink` is what the caller passed. */
	const struct fsm_sink *sink;
	const struct fsm_sink *user_sink;
	/* Scratch for decoding headers of a delivered message. */
	struct fsm_header *hscratch;
	uint32_t hscratch_cap;
	/* Replicated configuration and divergence detector (in snapshots). */
	uint8_t config_set; /* FSM_CMD_CONFIG applied at least once */
	uint64_t applied;   /* commands applied */
	uint64_t digest;    /* running digest (fsm_digest) */
	/* Node-local: not in snapshots; a restore keeps them (the ring is
	 * emptied, the configuration version bumped). */
	uint64_t config_version;
	uint8_t diverged, failed;
	uint64_t fail_at;   /* fsm_test_fail_alloc: allocations until failure */
	uint64_t fail_hits; /* allocations the injector failed */
	struct fsm_check_ent *ring; /* FSM_CHECK_RING (applied, digest) at
	                               the end of each entry; not charged */
	uint32_t ring_n, ring_next;
};

#define FSM_CHECK_RING 4096
struct fsm_check_ent {
	uint64_t applied, digest;
};

/* ---- fsm.c */
void fsm_emit_effect(struct fsm *f, const struct fsm_delivery *d);
void fsm_mark_dirty(struct fsm *f, struct fsm_queue *q);
void fsm_run_dirty(struct fsm *f);
int fsm_name_ok(const struct fsm *f, const char *s, uint32_t n);

/* ---- timer.c: the global min-heap of message timers, and per queue a FIFO
 * of deadlines that come in order (the common case: one ack timeout, a
 * clock that never goes back), of which only the head is in the heap. */
uint64_t fsm_aux_key(const struct fsm_aux *a);
/* Whether a's timer is set (in the heap or in its queue's FIFO). */
static inline int fsm_timer_armed(const struct fsm_aux *a)
{
	return a->heap_idx != FSM_NOIDX || a->fifo;
}
/* Checks q's FIFO; *len = its length. */
int fsm_timer_check(const struct fsm *f, const struct fsm_queue *q,
                    uint64_t *len);
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
/* The message (not a tombstone) of q with that seq, or NULL. */
struct fsm_msg *fsm_msg_find(const struct fsm_queue *q, uint64_t seq);
/* Messages in q (tombstones aside). */
static inline uint64_t fsm_queue_count(const struct fsm_queue *q)
{
	return q->n_ready + q->n_delayed + q->n_flight;
}
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
/* Removes a message from its queue and frees it (owner, timer, index); a
 * message whose id is still in the dedup window leaves its tombstone. */
void fsm_msg_remove(struct fsm *f, struct fsm_queue *q, struct fsm_msg *m);
/* The side record of m (in q), or NULL. */
struct fsm_aux *fsm_msg_aux(const struct fsm_queue *q, const struct fsm_msg *m);
/* The side record of m (in q), created if needed; NULL when out of memory. */
struct fsm_aux *fsm_aux_get(struct fsm *f, struct fsm_queue *q,
                            struct fsm_msg *m);
/* A side record for m, not yet referenced by any slot. */
struct fsm_aux *fsm_aux_new(struct fsm *f, struct fsm_queue *q,
                            struct fsm_msg *m);
void fsm_aux_maybe_free(struct fsm *f, struct fsm_queue *q, struct fsm_msg *m);
void fsm_rq_push(struct fsm *f, struct fsm_queue *q, uint64_t seq);
/* The next READY message to hand out, or NULL. Does not remove it. */
struct fsm_msg *fsm_queue_next_ready(struct fsm *f, struct fsm_queue *q);
/* Marks m as handed out (advances the cursor or pops the requeue heap). */
void fsm_queue_take(struct fsm_queue *q, struct fsm_msg *m);
/* Whether q accepts one more message of that size (fsm_msg_bytes): FSM_OK
 * or FSM_EFULL. */
int fsm_queue_admit(const struct fsm_queue *q, uint64_t bytes);
/* fsm_msg_bytes() of the message fsm_msg_build() would make of `in` (with
 * `extra` headers). */
uint64_t fsm_msg_in_bytes(const struct fsm_msg_in *in,
                          const struct fsm_header *extra, uint32_t n_extra);
/* Reserves room in q (seq index) and in the timer heap for one message. */
int fsm_queue_reserve(struct fsm *f, struct fsm_queue *q);
/* Allocates a message (with `extra` headers appended to those of `in`)
 * and, in *aux, its side record if it will need one (else NULL); not yet in
 * any queue. */
struct fsm_msg *fsm_msg_build(struct fsm *f, const struct fsm_queue *q,
                              const struct fsm_msg_in *in,
                              const struct fsm_header *extra, uint32_t n_extra,
                              struct fsm_aux **aux);
void fsm_msg_discard(struct fsm *f, struct fsm_msg *m, struct fsm_aux *a);
/* Puts a built message into q after fsm_queue_reserve (and, with `dedup`,
 * fsm_dd_reserve) (cannot fail): applies drop-head, assigns the seq,
 * starts timers, enters the id into the dedup index when `dedup`. */
void fsm_queue_commit(struct fsm *f, struct fsm_queue *q, struct fsm_msg *m,
                      struct fsm_aux *a, int dedup);
/* Puts a restored message or tombstone into q as is (snapshot restore). */
void fsm_queue_insert_raw(struct fsm *f, struct fsm_queue *q, struct fsm_msg *m,
                          struct fsm_aux *a);
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
/* The seq of q's dedup entry for that id (expired or not), or 0. */
uint64_t fsm_dedup_lookup(const struct fsm_queue *q, const char *id,
                          uint32_t len, uint32_t h);
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
/* Re-evaluates every session's `blocked` against cfg.session_window; to be
 * called after every change of the configuration (a larger window resumes
 * assignment, a smaller one stops it). */
void fsm_sessions_rewindow(struct fsm *f);
/* Checks a session (window, owners); 0 when it holds. */
int fsm_session_check(const struct fsm *f, const struct fsm_session *s);
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
