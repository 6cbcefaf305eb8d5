/* fsm: the deterministic broker state machine replicated by Raft.
 *
 * Every raftmq node applies the same committed entries, in the same order, to
 * its own `struct fsm`. An entry is a batch of encoded commands (see
 * fsm/codec.h). Applying a command changes the state and yields:
 *
 *   - exactly one result (status code + data), tagged with the session and
 *     request id the command carried, so that the node that proposed it can
 *     answer its client;
 *   - zero or more effects: deliveries of messages to consumers (or to a pull
 *     `get`), and cancellations of consumers.
 *
 * Results and effects are reported through a `struct fsm_sink` during the
 * apply call. Pointers inside them are borrowed and valid only until the
 * callback returns.
 *
 * The module is pure: libc and msgpack-c only. No clock (time comes in the
 * commands), no randomness, no I/O, no libuv, no raft.h. The same committed
 * log gives byte-identical snapshots on every node.
 *
 * Message lifecycle inside one queue:
 *
 *            publish                 assign (consumer credit / get)
 *   (delay) --------> READY <----------------------------------+
 *      |               |  ^                                      |
 *      | not-before    |  | nack(requeue), deadline passed,      |
 *      +------------>  |  | consumer cancelled, session ended,   |
 *                      v  | leader elected                       |
 *                   IN FLIGHT ---------------------------------+
 *                      |
 *          ack --------+--------> gone (acked)
 *          nack(dead-letter) or delivery count > max deliveries
 *                      +--------> dead-letter queue (or dropped, counted)
 *   READY/IN FLIGHT past TTL ---> expired (dead-lettered if the queue has a
 * DLQ) READY at the head when the queue overflows with drop-head ---> dropped
 */
#ifndef RAFTMQ_FSM_H
#define RAFTMQ_FSM_H

#include <stddef.h>
#include <stdint.h>

/* Status codes carried in results. Stable numbers: they travel on the wire. */
enum fsm_status {
	FSM_OK = 0,
	FSM_ENOQUEUE = 1,    /* queue does not exist */
	FSM_ENOTOPIC = 2,    /* topic does not exist */
	FSM_EEXISTS = 3,     /* declared again with different options */
	FSM_EINVAL = 4,      /* bad argument (empty name, bad option, ...) */
	FSM_ETOOBIG = 5,     /* payload larger than the configured maximum */
	FSM_EFULL = 6,       /* queue full and overflow = reject-publish */
	FSM_ENOCONSUMER = 7, /* unknown consumer id */
	FSM_ENOMSG = 8,      /* ack/nack/extend of a message that is gone */
	FSM_EMALFORMED = 9,  /* command bytes could not be decoded */
	FSM_ELIMIT = 10,    /* a global bound was reached (queues, consumers) */
	FSM_ENOTEMPTY = 11, /* delete if-empty of a non-empty queue */
	FSM_EBUSY = 12,     /* exclusive queue already has a consumer */
	FSM_ENOMEM = 13,    /* allocation failed (the node stops: fsm_failed) */
	FSM_ECLUSTERFULL = 14, /* state at cfg.max_memory; retryable */
	FSM_EDIVERGED = 15,    /* CHECK: this replica's digest differs */
	FSM_STATUS_MAX
};

/* Human-readable text for a status code; never NULL. */
const char *fsm_status_str(int status);

enum fsm_overflow {
	FSM_OVERFLOW_REJECT = 0, /* reject-publish: publish gets FSM_EFULL */
	FSM_OVERFLOW_DROP_HEAD = 1
};

enum fsm_topic_kind {
	FSM_TOPIC_FANOUT = 0,
	FSM_TOPIC_DIRECT = 1,
	FSM_TOPIC_TOPIC =
	    2 /* '.'-separated words, '*' one word, '#' zero or more */
};

enum fsm_nack_mode { FSM_NACK_REQUEUE = 0, FSM_NACK_DEADLETTER = 1 };

/* Limits and defaults of one state machine: the replicated configuration.
 * Only FSM_CMD_CONFIG changes it (the first leader proposes it from its
 * flags; `raftmq cluster config set` later); snapshots carry it. A node's
 * flags never reach apply. */
struct fsm_config {
	uint32_t max_payload;   /* bytes of a whole message (payload, id, type,
	                           correlation id, reply-to, headers), default
	                           256 KiB */
	uint32_t max_name;      /* queue/topic name bytes, default 255 */
	uint32_t max_queues;    /* default 10000 */
	uint32_t max_consumers; /* default 100000 */
	uint64_t default_ack_timeout; /* ms, default 30000 */
	uint64_t
	    default_max_length;     /* messages per queue, default 10,000,000 */
	uint64_t default_max_bytes; /* payload bytes per queue, default 1 GiB */
	uint64_t default_dedup_window; /* ms, default 120000 */
	uint32_t max_dedup_entries;    /* per queue, default 1,000,000 */
	uint32_t max_get;              /* messages per get, default 1000 */
	uint32_t max_headers;          /* headers per published message, default
	                                  FSM_CODEC_MAX_HEADERS - FSM_DLQ_HEADERS */
	uint64_t max_memory;     /* bytes of stored messages, each counted as
	                            its whole size + FSM_MSG_COST (96): a
	                            function of the replicated state, unlike
	                            fsm_memory(); publishes get
	                            FSM_ECLUSTERFULL above it, default 256 MiB */
	uint64_t session_window; /* bytes of messages in flight to one
	                            session before assignment to it pauses (a
	                            session with none in flight always gets
	                            one), default 16 MiB */
	uint32_t max_session_consumers; /* consumers per session, default
	                                   1000 */
	uint64_t max_entry; /* bytes per Raft entry (the leader's admission
	                       limit; apply does not read it), default 1 MiB */
};

/* Headers that dead-lettering adds to a message (reason, origin queue). */
#define FSM_DLQ_HEADERS 2

/* Fills `c` with the defaults above. */
void fsm_config_default(struct fsm_config *c);

/* Options of a queue. Zero means "the default" for every numeric field. */
struct fsm_queue_opts {
	uint64_t ack_timeout;    /* ms a delivery may stay unacked */
	uint32_t max_deliveries; /* 0 = unlimited */
	const char *dlq;         /* dead-letter queue name, NULL/"" = none */
	uint64_t message_ttl;    /* ms, 0 = no TTL */
	uint64_t delay;          /* ms every message waits before READY */
	uint64_t max_length;     /* messages */
	uint64_t max_bytes;      /* payload bytes */
	uint8_t overflow;        /* enum fsm_overflow */
	uint64_t dedup_window;   /* ms */
	uint8_t exclusive;       /* at most one consumer */
	uint8_t auto_delete;     /* deleted when its last consumer goes */
};

/* One header: a key and an opaque value (UTF-8 text in practice). */
struct fsm_header {
	const char *key;
	uint32_t key_len;
	const char *val;
	uint32_t val_len;
};

/* A message as published (borrowed pointers). */
struct fsm_msg_in {
	const char *id; /* client-chosen message id (dedup key); may be empty */
	uint32_t id_len;
	const char *type;
	uint32_t type_len;
	const char *correlation_id;
	uint32_t correlation_id_len;
	const char *reply_to;
	uint32_t reply_to_len;
	const struct fsm_header *headers;
	uint32_t n_headers;
	const char *payload;
	uint32_t payload_len;
	uint64_t ttl;   /* ms, 0 = queue default */
	uint64_t delay; /* ms, 0 = queue default */
};

/* A message as stored and delivered (borrowed, valid during the callback). */
struct fsm_msg_view {
	uint64_t seq;            /* per-queue sequence number, from 1 */
	uint64_t timestamp;      /* commit timestamp (ms) */
	uint32_t delivery_count; /* deliveries so far, including this one */
	struct fsm_msg_in m;     /* id, properties, headers, payload */
};

enum fsm_cmd_type {
	FSM_CMD_QUEUE_DECLARE = 1,
	FSM_CMD_QUEUE_DELETE = 2,
	FSM_CMD_QUEUE_PURGE = 3,
	FSM_CMD_TOPIC_DECLARE = 4,
	FSM_CMD_TOPIC_DELETE = 5,
	FSM_CMD_BIND = 6,
	FSM_CMD_UNBIND = 7,
	FSM_CMD_PUBLISH = 8,
	FSM_CMD_CONSUME = 9,
	FSM_CMD_CANCEL = 10,
	FSM_CMD_GET = 11,
	FSM_CMD_ACK = 12,
	FSM_CMD_NACK = 13,
	FSM_CMD_EXTEND = 14,
	FSM_CMD_TICK = 15,
	FSM_CMD_SESSION_DOWN = 16,
	FSM_CMD_LEADER_ELECTED = 17,
	FSM_CMD_CONFIG = 18, /* change the replicated configuration */
	FSM_CMD_CHECK = 19,  /* compare digests (divergence detector) */
	FSM_CMD_MAX
};

/* One `key = value` of FSM_CMD_CONFIG; keys are the field names of struct
 * fsm_config ("max_payload", ...). */
struct fsm_config_kv {
	const char *key;
	uint32_t key_len;
	uint64_t value;
};

/* A decoded command (borrowed pointers into the entry being applied, or into
 * the caller's memory when encoding). Every command carries:
 *   time     the cluster clock in ms, stamped by the leader (DESIGN "Time");
 *            the FSM clock is the max seen and drives every timer;
 *   wall     the proposer's wall clock in ms, for display only; carried in
 *            the log (codec version 2), never a clock of the FSM. A
 *            message's stored timestamp is still `time`: the dedup window
 *            is measured from it, which a wall clock must not drive;
 *   session  the proposing session (0 = none), used to route the result;
 *   req_id   the session's request id, echoed in the result. */
struct fsm_cmd {
	uint8_t type; /* enum fsm_cmd_type */
	uint64_t time;
	uint64_t wall;
	uint64_t session;
	uint64_t req_id;
	union {
		struct {
			const char *name;
			uint32_t name_len;
			struct fsm_queue_opts opts;
			uint32_t dlq_len;
		} declare;
		struct {
			const char *name;
			uint32_t name_len;
			uint8_t if_empty;
		} qdelete; /* also purge */
		struct {
			const char *name;
			uint32_t name_len;
			uint8_t kind; /* enum fsm_topic_kind */
		} topic;              /* topic declare / delete */
		struct {
			const char *topic;
			uint32_t topic_len;
			const char *queue;
			uint32_t queue_len;
			const char *key; /* binding key or pattern */
			uint32_t key_len;
		} bind; /* bind / unbind */
		struct {
			/* topic "" = the default route: `key` names a queue */
			const char *topic;
			uint32_t topic_len;
			const char *key;
			uint32_t key_len;
			struct fsm_msg_in msg;
		} publish;
		struct {
			const char *queue;
			uint32_t queue_len;
			uint32_t
			    prefetch; /* credit: max unacked deliveries, >= 1 */
		} consume;            /* consumer owned by `session` */
		struct {
			uint64_t consumer;
		} cancel;
		struct {
			const char *queue;
			uint32_t queue_len;
			uint32_t max;     /* up to this many messages */
			uint64_t timeout; /* ms until redelivery, 0 = queue ack
			                     timeout */
		} get;
		struct {
			uint32_t queue_id;
			uint64_t seq;
			uint8_t mode; /* nack: enum fsm_nack_mode */
			uint64_t
			    timeout; /* extend: new deadline = now + timeout */
		} settle;            /* ack / nack / extend */
		struct {
			uint64_t session;
		} session_down;
		struct {
			uint64_t term;
			uint64_t node;
		} leader_elected;
		struct {
			/* bootstrap: applied only while the configuration
			 * was never set (the first leader's flags); else a
			 * change on top of the current configuration, all
			 * or nothing (FSM_EINVAL names no field) */
			uint8_t bootstrap;
			const struct fsm_config_kv *kv;
			uint32_t n_kv;
		} config;
		struct {
			uint64_t applied; /* fsm_applied() when taken */
			uint64_t digest;  /* fsm_digest() at that point */
		} check;
	} u;
};

/* The result of one command. */
struct fsm_result {
	uint8_t type; /* the command's type */
	uint64_t session;
	uint64_t req_id;
	int status; /* enum fsm_status */
	union {
		struct {
			uint32_t queue_id;
			uint8_t created; /* 0 = already existed with the same
			                    options */
		} declare;
		struct {
			uint64_t removed; /* messages removed (delete, purge) */
		} removed;
		struct {
			uint64_t seq;    /* default route: the queue's sequence
			                    number */
			uint32_t queues; /* number of queues that got a copy */
			uint8_t duplicate; /* dedup hit: seq is the first
			                      publish's */
		} publish;
		struct {
			uint64_t consumer;
			uint32_t queue_id;
		} consume;
		struct {
			uint32_t count; /* messages delivered to the get
			                   (effects before) */
		} get;
	} u;
};

enum fsm_effect_type {
	FSM_EFFECT_DELIVER = 1,  /* send a message to a consumer or a get */
	FSM_EFFECT_CANCELLED = 2 /* a consumer was cancelled by the FSM */
};

/* A delivery: send msg to the session. consumer = 0 for a pull get, whose
 * deliveries carry the get's req_id and come before its result. */
struct fsm_delivery {
	uint8_t type; /* enum fsm_effect_type */
	uint64_t session;
	uint64_t consumer;
	uint64_t req_id; /* get only */
	uint32_t queue_id;
	const char *queue; /* queue name (borrowed) */
	uint32_t queue_len;
	int reason; /* CANCELLED: FSM_ENOQUEUE when the queue went, else 0 */
	struct fsm_msg_view msg; /* DELIVER only */
};

/* Where apply reports results and effects. Both callbacks may be NULL
 * (followers, tests that only look at state). */
struct fsm_sink {
	void *data;
	void (*result)(void *data, const struct fsm_result *r);
	void (*effect)(void *data, const struct fsm_delivery *d);
};

struct fsm;

/* Creates an empty state machine. `config` may be NULL for the defaults;
 * it is in force until the first FSM_CMD_CONFIG (a node passes NULL: its
 * flags reach apply only through the bootstrap CONFIG it proposes).
 * Returns NULL when out of memory or when the config is invalid. */
struct fsm *fsm_new(const struct fsm_config *config);
void fsm_free(struct fsm *f);

/* Applies one encoded entry (a batch, see fsm/codec.h). Each command yields
 * one result through `sink`, in order; malformed bytes yield one result with
 * FSM_EMALFORMED (session/req_id 0) and change nothing. Returns the number of
 * commands applied, or -1 when the whole entry was malformed. Never fails for
 * business errors: those are results. At its end (applied, digest) goes
 * into the ring that FSM_CMD_CHECK compares with. */
int fsm_apply_entry(struct fsm *f, const void *buf, size_t len,
                    const struct fsm_sink *sink);

/* Applies one decoded command. Returns its status (also reported through
 * sink->result). Apply takes the same path whether or not `sink` has an
 * effect callback (effects go into the digest either way). */
int fsm_apply(struct fsm *f, const struct fsm_cmd *cmd,
              const struct fsm_sink *sink);

/* The FSM clock: the largest command time applied so far (ms). */
uint64_t fsm_now(const struct fsm *f);

/* The replicated configuration in force, whether FSM_CMD_CONFIG ever set it
 * (before that: fsm_new's), and a node-local counter bumped by every change
 * and every restore (for the node to notice and log how its flags
 * differ). */
const struct fsm_config *fsm_config_get(const struct fsm *f);
int fsm_config_is_set(const struct fsm *f);
uint64_t fsm_config_version(const struct fsm *f);
/* Field names and values of a configuration, for `cluster config get` and
 * for building a CONFIG command: fills up to `max` entries (key points to a
 * static string), returns the number of fields. */
uint32_t fsm_config_to_kv(const struct fsm_config *c, struct fsm_config_kv *kv,
                          uint32_t max);
/* Sets one field by name: 0, or FSM_EINVAL for an unknown name or a value
 * wider than a 32-bit field (the value is checked as a whole by
 * fsm_config_valid()). */
int fsm_config_set_kv(struct fsm_config *c, const char *key, uint32_t key_len,
                      uint64_t value);
/* 1 when `c` is a configuration fsm_new() and FSM_CMD_CONFIG accept, else 0
 * (a boolean, unlike the statuses above). */
int fsm_config_valid(const struct fsm_config *c);
/* The largest encoded delivery a message can need, frames must allow it:
 *   max_payload            the whole message as published
 * + 128                    the 2 dead-letter headers without the origin
 *                          name: keys "x-death-reason" and "x-death-queue",
 *                          the longest reason, 4 msgpack string headers
 * + max_name               the origin queue name in x-death-queue
 * + 4096                   the delivery envelope (type, queue, consumer,
 *                          seq, timestamp, count, field headers).
 * It assumes a message carries one set of dead-letter headers (a copy
 * dead-lettered again replaces them rather than adding 2 more). */
size_t fsm_max_delivery_size(const struct fsm_config *c);

/* Divergence detector: commands applied so far (every command counts) and
 * a running digest over each applied command's index, type, status, result
 * fields (declare queue_id/created, removed, publish seq/queues/duplicate,
 * consume consumer/queue_id, get count) and effects (type, session,
 * consumer, queue_id, seq, delivery_count); CHECK's own result is left
 * out, effects of the timers its time fires are not. Payloads and other
 * message bytes are not in it (the snapshot bytes are). Both are in
 * snapshots. FSM_CMD_CHECK(applied, digest), proposed by a leader with
 * its values read between two entries, compares them with this replica's
 * at its own entry boundaries (a ring of the last 4096, emptied by a
 * restore): the same boundary with another digest, or no boundary at
 * `applied` although the ring reaches back that far (this replica applied
 * other entries: a skipped one, say), is FSM_EDIVERGED; a boundary older
 * than the ring is no verdict (FSM_OK). After a CHECK found this replica
 * different, fsm_diverged() is 1 for good (node-local: not in snapshots,
 * kept by restore). */
uint64_t fsm_applied(const struct fsm *f);
uint64_t fsm_digest(const struct fsm *f);
int fsm_diverged(const struct fsm *f);

/* 1 once an allocation failed inside apply (also one that apply
 * swallows, and an entry that could not be decoded for lack of memory):
 * this replica may now differ from the others and must stop (DESIGN
 * invariant 8). Node-local; a restore keeps it. */
int fsm_failed(const struct fsm *f);

/* The earliest time (ms) at which a TICK would change something (an ack
 * deadline, a TTL or a delay), or UINT64_MAX when nothing is pending. The
 * leader proposes a TICK when the cluster clock reaches it. */
uint64_t fsm_next_deadline(const struct fsm *f);

/* Serialises the whole state (versioned msgpack) into a malloc'd buffer.
 * Returns 0, or FSM_ENOMEM. */
int fsm_snapshot(const struct fsm *f, void **buf, size_t *len);

/* Replaces the whole state of `f` with a snapshot (versions 1 to 4). On
 * error (FSM_EMALFORMED, FSM_ENOMEM) `f` is unchanged. The state may exceed
 * the limits of the configuration it carries (they were lowered after it
 * was built): restore checks the hard bounds only. */
int fsm_restore(struct fsm *f, const void *buf, size_t len);

/* Details of the semantics (the fsm/ sources implement them):
 *   - A command's time is applied, and the timers it makes due fire, even
 *     when the command itself then fails; otherwise a failing command
 *     changes nothing.
 *   - delivery_count counts deliveries. A message that would become READY
 *     again (deadline, nack requeue, cancel, session end, leader elected)
 *     with delivery_count >= max_deliveries is dead-lettered instead.
 *   - NACK and EXTEND need the message in flight to the command's
 *     session (to one of its consumers or its gets); ACK, from any
 *     session, takes any message delivered at least once that still
 *     exists; else FSM_ENOMSG.
 *   - CANCEL needs the consumer to belong to the command's session, else
 *     FSM_ENOCONSUMER (nothing changes). CONSUME gets FSM_ELIMIT when the
 *     session has cfg.max_session_consumers consumers already.
 *   - Session window: the whole-message bytes in flight to a session (its
 *     consumers and its gets) are its `inflight`. While inflight >=
 *     cfg.session_window the session is blocked: its consumers get
 *     nothing (a session with nothing in flight is never blocked). A GET
 *     delivers its first message when the session is not blocked, then
 *     each next one that keeps inflight <= the window. So a session never
 *     has more than window + one message in flight. An ack, nack,
 *     requeue or expiry that brings a blocked session under its window
 *     resumes assignment to all its consumers; so does a configuration
 *     change that raises the window.
 *   - The whole message (id, type, correlation id, reply-to, headers and
 *     payload, as stored: each of those parts with its 2- or 4-byte
 *     length prefix) counts against max_payload (FSM_ETOOBIG), a queue's
 *     max_bytes (FSM_EFULL, drop-head) and the session window. More than
 *     cfg.max_headers headers: FSM_EINVAL.
 *   - A publish whose copies (all of them, for a topic) would take the
 *     stored bytes past cfg.max_memory gets FSM_ECLUSTERFULL and changes
 *     nothing; duplicates need no room. Dead-letter moves and expiries
 *     are never refused for memory.
 *   - A dead-letter copy carries x-death-reason and x-death-queue; these
 *     replace the ones of an earlier dead-lettering, so a copy has at
 *     most max_headers + FSM_DLQ_HEADERS headers.
 *   - Counters of the origin queue: `expired` counts every TTL expiry
 *     (moved to the DLQ or not); `dead_lettered` counts nack and
 *     max-deliveries departures, including those dropped because the DLQ
 *     is missing or refuses the copy; `dropped` counts drop-head.
 *   - PURGE removes READY and delayed messages, not those in flight.
 *   - CANCELLED effects go to the consumer's own session whenever the
 *     FSM ends a consumer (queue deleted, by anyone: reason FSM_ENOQUEUE;
 *     its session down, leader elected: 0), not for an explicit CANCEL by
 *     the owner, whose result says it all.
 *   - A topic publish whose id is a duplicate in some target queues puts
 *     copies only in the others; `duplicate` is 1 if any was a duplicate,
 *     `seq` is the first queue's (in name order), new or original.
 *   - Ids longer than 65535 bytes are FSM_EINVAL; max_payload must stay
 *     below 64 MiB (fsm_new() refuses larger). */

/* Read-only views, answered from local state. */
struct fsm_queue_stats {
	uint32_t queue_id;
	uint64_t ready;     /* messages ready (including delayed) */
	uint64_t delayed;   /* not yet past their not-before time */
	uint64_t in_flight; /* delivered, not acked */
	uint64_t bytes;     /* whole-message bytes stored (id, properties,
	                       headers, payload: what max_bytes counts) */
	uint64_t consumers;
	uint64_t published, acked, dead_lettered, expired, dropped,
	    deduplicated;
	uint64_t last_seq;
	struct fsm_queue_opts opts; /* dlq borrowed */
};

/* Returns FSM_OK or FSM_ENOQUEUE. */
int fsm_queue_stats(const struct fsm *f, const char *name, uint32_t name_len,
                    struct fsm_queue_stats *out);

/* Calls `cb` for every queue, in name order. */
void fsm_queue_foreach(const struct fsm *f,
                       void (*cb)(void *data, const char *name, uint32_t len,
                                  const struct fsm_queue_stats *s),
                       void *data);

struct fsm_binding_view {
	const char *queue;
	uint32_t queue_len;
	const char *key;
	uint32_t key_len;
};

/* Calls `cb` for every topic, in name order, with its bindings. */
void fsm_topic_foreach(const struct fsm *f,
                       void (*cb)(void *data, const char *name, uint32_t len,
                                  uint8_t kind,
                                  const struct fsm_binding_view *b,
                                  uint32_t n_bindings),
                       void *data);

/* Memory accounting: bytes the FSM has allocated (for tests and benchmarks). */
uint64_t fsm_memory(const struct fsm *f);

/* Checks internal invariants; returns 0 when they hold. Tests call it after
 * every apply. */
int fsm_check(const struct fsm *f);

#endif /* RAFTMQ_FSM_H */
