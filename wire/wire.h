/* wire: the client protocol codec shared by the node and libraftmq.
 *
 * A frame on the TCP stream is a 4-byte big-endian body length N followed by
 * N bytes of msgpack: the array [op, req_id, fields], where `fields` is a map
 * with short string keys (docs/protocol.md lists every key per op). This
 * module turns bodies into a flat `struct wire_msg` (decode) and a
 * `struct wire_msg` into a complete frame appended to a `struct wire_buf`
 * (encode). It also splits a byte stream into frames.
 *
 * Decoding does no allocation: strings, the payload and header pairs point
 * into the body, which must outlive the decoded message. Lists in replies
 * (queue list, topic list, cluster members) stay raw and are walked with the
 * wire_next_*() iterators.
 *
 * The module is libc only (no libuv, no fsm). Numeric codes equal the fsm
 * ones where they overlap, but nothing here includes fsm/.
 */
#ifndef RAFTMQ_WIRE_H
#define RAFTMQ_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define WIRE_VERSION 1
/* Default largest frame body a receiver accepts (bytes, prefix excluded). */
#define WIRE_MAX_FRAME_DEFAULT (1024u * 1024 + 64u * 1024)
/* Length of the frame prefix. */
#define WIRE_PREFIX 4

/* Operation codes. Requests go client -> node, replies node -> client. */
enum wire_op {
	WIRE_OP_HELLO = 1,
	WIRE_OP_QUEUE_DECLARE = 2,
	WIRE_OP_QUEUE_DELETE = 3,
	WIRE_OP_QUEUE_PURGE = 4,
	WIRE_OP_QUEUE_STATS = 5,
	WIRE_OP_QUEUE_LIST = 6,
	WIRE_OP_TOPIC_DECLARE = 7,
	WIRE_OP_TOPIC_DELETE = 8,
	WIRE_OP_BIND = 9,
	WIRE_OP_UNBIND = 10,
	WIRE_OP_TOPIC_LIST = 11,
	WIRE_OP_PUBLISH = 12,
	WIRE_OP_CONSUME = 13,
	WIRE_OP_CANCEL = 14,
	WIRE_OP_GET = 15,
	WIRE_OP_ACK = 16,
	WIRE_OP_NACK = 17,
	WIRE_OP_EXTEND = 18,
	WIRE_OP_STATUS = 19,
	WIRE_OP_CONFIG_GET = 20, /* the replicated configuration */
	WIRE_OP_CONFIG_SET = 21, /* change some of its keys */
	WIRE_OP_HEARTBEAT = 22,  /* both directions, req_id 0, no fields, no
	                            reply: "I am alive" (section Heartbeats of
	                            docs/protocol.md) */
	WIRE_OP_REQUEST_MAX,     /* requests are 1 .. WIRE_OP_REQUEST_MAX - 1 */

	WIRE_OP_HELLO_OK = 64,
	WIRE_OP_OK = 65,
	WIRE_OP_ERROR = 66,
	WIRE_OP_DELIVER = 67,
	WIRE_OP_CANCELLED = 68,
	WIRE_OP_MAX
};

/* Status codes. 1..14 are the business errors of the state machine and
 * equal FSM_E* in fsm/fsm.h number for number (FSM_EBUSY is called
 * WIRE_EINUSE here, to keep WIRE_EBUSY for back-pressure). 100 and up are
 * node/transport errors. */
enum wire_status {
	WIRE_OK = 0,
	WIRE_ENOQUEUE = 1,       /* = FSM_ENOQUEUE */
	WIRE_ENOTOPIC = 2,       /* = FSM_ENOTOPIC */
	WIRE_EEXISTS = 3,        /* = FSM_EEXISTS */
	WIRE_EINVAL = 4,         /* = FSM_EINVAL */
	WIRE_ETOOBIG = 5,        /* = FSM_ETOOBIG */
	WIRE_EFULL = 6,          /* = FSM_EFULL */
	WIRE_ENOCONSUMER = 7,    /* = FSM_ENOCONSUMER */
	WIRE_ENOMSG = 8,         /* = FSM_ENOMSG */
	WIRE_EMALFORMED = 9,     /* = FSM_EMALFORMED */
	WIRE_ELIMIT = 10,        /* = FSM_ELIMIT */
	WIRE_ENOTEMPTY = 11,     /* = FSM_ENOTEMPTY */
	WIRE_EINUSE = 12,        /* = FSM_EBUSY (exclusive queue in use) */
	WIRE_ENOMEM = 13,        /* = FSM_ENOMEM */
	WIRE_ECLUSTERFULL = 14,  /* = FSM_ECLUSTERFULL; retryable */
	WIRE_EPROTO = 100,       /* malformed frame or fields */
	WIRE_EFRAME = 101,       /* frame too large */
	WIRE_EVERSION = 102,     /* unsupported protocol version */
	WIRE_ENOTLEADER = 103,   /* retryable; ERROR carries a leader hint */
	WIRE_EUNAVAILABLE = 104, /* no leader or no quorum; retryable */
	WIRE_EUNKNOWN = 105,     /* outcome unknown; retryable */
	WIRE_EBUSY = 106,        /* back-pressure; retryable */
	WIRE_ETIMEOUT = 107,     /* retryable */
	WIRE_ESHUTDOWN = 108,    /* node shutting down; retryable */
	WIRE_EHELLO = 109        /* request before HELLO */
};

/* Human-readable text for a status code; never NULL. */
const char *wire_strerror(int code);

/* 1 when a request that failed with `code` may be sent again (possibly to
 * another node), 0 otherwise. */
int wire_retryable(int code);

/* Enumerations carried as strings on the wire (decoders also accept the
 * integer). Values equal fsm's enum fsm_topic_kind / fsm_overflow /
 * fsm_nack_mode. */
enum { WIRE_KIND_FANOUT = 0, WIRE_KIND_DIRECT = 1, WIRE_KIND_TOPIC = 2 };
enum { WIRE_OVERFLOW_REJECT = 0, WIRE_OVERFLOW_DROP_HEAD = 1 };
enum { WIRE_NACK_REQUEUE = 0, WIRE_NACK_DEADLETTER = 1 };

/* Name <-> value of the enumerations above ("fanout", "direct", "topic";
 * "reject-publish", "drop-head"; "requeue", "dead-letter"). The parsers
 * return -1 for an unknown name; the printers return "?" for a bad value. */
int wire_kind_parse(const char *s, size_t len);
const char *wire_kind_name(int kind);
int wire_overflow_parse(const char *s, size_t len);
const char *wire_overflow_name(int overflow);
int wire_mode_parse(const char *s, size_t len);
const char *wire_mode_name(int mode);

/* A borrowed byte string. ptr is never NULL after a decode (empty = ""). */
struct wire_str {
	const char *ptr;
	uint32_t len;
};

/* One message header. Same members, types and order as struct fsm_header. */
struct wire_header {
	const char *key;
	uint32_t key_len;
	const char *val;
	uint32_t val_len;
};

/* Queue options; same meaning as struct fsm_queue_opts (0 = default). */
struct wire_queue_opts {
	uint64_t ack_timeout;
	uint32_t max_deliveries;
	struct wire_str dlq;
	uint64_t message_ttl;
	uint64_t delay;
	uint64_t max_length;
	uint64_t max_bytes;
	uint8_t overflow; /* WIRE_OVERFLOW_* */
	uint64_t dedup_window;
	uint8_t exclusive;
	uint8_t auto_delete;
};

/* Statistics of one queue; the counters of struct fsm_queue_stats. */
struct wire_queue_stats {
	struct wire_str name;
	uint32_t queue_id;
	uint64_t ready, delayed, in_flight, bytes, consumers;
	uint64_t published, acked, dead_lettered, expired, dropped,
	    deduplicated;
	uint64_t last_seq;
	struct wire_queue_opts opts;
};

/* One cluster member in a STATUS reply. */
struct wire_member {
	uint64_t id;
	struct wire_str raft_address;
	struct wire_str client_address;
};

/* One key of the replicated configuration (CONFIG_GET reply, CONFIG_SET
 * request): the field names of struct fsm_config. */
struct wire_kv {
	struct wire_str key;
	uint64_t value;
};

/* One binding of a topic in a TOPIC_LIST reply. */
struct wire_binding {
	struct wire_str queue;
	struct wire_str key;
};

/* One topic in a TOPIC_LIST reply; walk `bindings` with
 * wire_next_binding(). */
struct wire_raw {
	const char *ptr; /* msgpack bytes of an array (borrowed) */
	size_t len;
	uint32_t n; /* number of elements */
};

struct wire_topic {
	struct wire_str name;
	uint8_t kind;
	struct wire_raw bindings;
};

/* Field bits: which keys a decoded message carried (wire_msg.present), or
 * which keys wire_encode() writes. Key names in docs/protocol.md. */
enum wire_field {
	WIRE_F_VERSION,        /* "version"      uint */
	WIRE_F_CLIENT,         /* "client"       str */
	WIRE_F_NODE_ID,        /* "node_id"      uint */
	WIRE_F_MAX_FRAME,      /* "max_frame"    uint */
	WIRE_F_MAX_PAYLOAD,    /* "max_payload"  uint */
	WIRE_F_NAME,           /* "name"         str */
	WIRE_F_QUEUE,          /* "queue"        str */
	WIRE_F_TOPIC,          /* "topic"        str */
	WIRE_F_KEY,            /* "key"          str */
	WIRE_F_IF_EMPTY,       /* "if_empty"     bool */
	WIRE_F_KIND,           /* "kind"         str ("fanout", ...) or uint */
	WIRE_F_OPTS,           /* every queue option key, see wire_queue_opts */
	WIRE_F_ID,             /* "id"           str */
	WIRE_F_TYPE,           /* "type"         str */
	WIRE_F_CORRELATION_ID, /* "correlation_id" str */
	WIRE_F_REPLY_TO,       /* "reply_to"     str */
	WIRE_F_HEADERS,        /* "headers"      map str -> str */
	WIRE_F_PAYLOAD,        /* "payload"      bin (str accepted) */
	WIRE_F_TTL,            /* "ttl"          uint (publish) */
	WIRE_F_DELAY,          /* "delay"        uint (publish) */
	WIRE_F_PREFETCH,       /* "prefetch"     uint */
	WIRE_F_CONSUMER,       /* "consumer"     uint */
	WIRE_F_MAX,            /* "max"          uint */
	WIRE_F_TIMEOUT,        /* "timeout"      uint (ms) */
	WIRE_F_QUEUE_ID,       /* "queue_id"     uint */
	WIRE_F_SEQ,            /* "seq"          uint */
	WIRE_F_MODE,           /* "mode"         str ("requeue", ...) or uint */
	WIRE_F_CREATED,        /* "created"      bool */
	WIRE_F_QUEUES,         /* "queues"       uint (publish reply) */
	WIRE_F_DUPLICATE,      /* "duplicate"    bool */
	WIRE_F_COUNT,          /* "count"        uint */
	WIRE_F_REMOVED,        /* "removed"      uint */
	WIRE_F_DELIVERY_COUNT, /* "delivery_count" uint */
	WIRE_F_REDELIVERED,    /* "redelivered"  bool */
	WIRE_F_TIMESTAMP,      /* "timestamp"    uint (ms) */
	WIRE_F_CODE,           /* "code"         uint */
	WIRE_F_MESSAGE,        /* "message"      str */
	WIRE_F_RETRYABLE,      /* "retryable"    bool */
	WIRE_F_LEADER,         /* "leader"       str (host:port) */
	WIRE_F_REASON,         /* "reason"       uint */
	WIRE_F_STATS,          /* every stats key, see wire_queue_stats */
	WIRE_F_ROLE,           /* "role"         str */
	WIRE_F_LEADER_ID,      /* "leader_id"    uint */
	WIRE_F_TERM,           /* "term"         uint */
	WIRE_F_COMMIT_INDEX,   /* "commit_index" uint */
	WIRE_F_APPLIED_INDEX,  /* "applied_index" uint */
	WIRE_F_LAST_INDEX,     /* "last_index"   uint */
	WIRE_F_MEMBERS,        /* "members"      array of member maps */
	WIRE_F_LIST,           /* "list"         array of stats maps */
	WIRE_F_TOPICS,         /* "topics"       array of topic maps */
	WIRE_F_CONFIG,         /* "config"       array of [key, uint] */
	WIRE_F_APPLIED,        /* "applied"      uint (STATUS: commands) */
	WIRE_F_DIGEST,         /* "digest"       uint (STATUS) */
	WIRE_F_DIVERGED,       /* "diverged"     bool (STATUS) */
	WIRE_F_HEARTBEAT,      /* "heartbeat"    uint (ms, 0 = off) */
	WIRE_F_COUNT_
};

#define WIRE_BIT(f) ((uint64_t)1 << (f))

/* A decoded (or to be encoded) frame. Flat: each op uses some fields and
 * leaves the others zero. Strings and arrays are borrowed. */
struct wire_msg {
	uint8_t op;       /* enum wire_op */
	uint64_t req_id;  /* client-chosen, echoed; 0 for server frames */
	uint64_t present; /* WIRE_BIT(WIRE_F_*) of the fields carried */

	/* HELLO / HELLO_OK */
	uint32_t version;
	struct wire_str client;
	uint64_t node_id; /* also STATUS */
	uint32_t max_frame;
	uint32_t max_payload;
	uint32_t heartbeat; /* ms: HELLO proposes, HELLO_OK grants; 0 = off */

	/* names */
	struct wire_str name; /* queue or topic name */
	struct wire_str queue;
	struct wire_str topic;
	struct wire_str key;
	uint8_t if_empty;
	uint8_t kind;
	struct wire_queue_opts opts;

	/* PUBLISH / DELIVER message */
	struct wire_str id, type, correlation_id, reply_to, payload;
	const struct wire_header *headers;
	uint32_t n_headers;
	uint64_t ttl;
	uint64_t delay;

	/* consume, get, settle */
	uint32_t prefetch;
	uint64_t consumer;
	uint32_t max;     /* GET: absent = 1 */
	uint64_t timeout; /* GET, EXTEND (ms) */
	uint32_t queue_id;
	uint64_t seq;
	uint8_t mode; /* NACK: WIRE_NACK_*, absent = requeue */

	/* replies */
	uint8_t created;
	uint32_t queues; /* PUBLISH OK: queues that got a copy */
	uint8_t duplicate;
	uint32_t count;
	uint64_t removed;
	uint32_t delivery_count;
	uint8_t redelivered;
	uint64_t timestamp;
	uint32_t code; /* ERROR: enum wire_status */
	struct wire_str message;
	uint8_t retryable;
	struct wire_str leader;
	uint32_t reason;               /* CANCELLED */
	struct wire_queue_stats stats; /* QUEUE_STATS OK (name, id, opts too) */

	/* STATUS OK */
	struct wire_str role;
	uint64_t leader_id, term, commit_index, applied_index, last_index;
	const struct wire_member *members; /* encode only */
	uint32_t n_members;                /* encode only */
	struct wire_raw members_raw; /* decode: walk with wire_next_member */
	struct wire_raw list_raw;    /* decode: QUEUE_LIST, wire_next_queue */
	struct wire_raw topics_raw;  /* decode: TOPIC_LIST, wire_next_topic */
	/* STATUS OK: the divergence detector of the node's replica */
	uint64_t applied, digest; /* commands applied, running digest */
	uint8_t diverged;         /* this replica found itself diverged */

	/* CONFIG_GET OK, CONFIG_SET */
	const struct wire_kv *config; /* encode only */
	uint32_t n_config;            /* encode only */
	struct wire_raw config_raw;   /* decode: walk with wire_next_config */

	/* Set by wire_decode() on error: static text, never freed. */
	const char *err;
};

/* Zeroes `m`, sets op and req_id, and sets `present` to the full field set
 * of `op` (wire_fields()), which is what an encoder usually wants. */
void wire_msg_init(struct wire_msg *m, uint8_t op, uint64_t req_id);

/* The fields an op carries: for requests and DELIVER, CANCELLED, ERROR,
 * HELLO_OK all of them; for OK none (an OK's fields depend on the request:
 * set the bits yourself). */
uint64_t wire_fields(uint8_t op);

/* Bits that must be present in a decoded frame of `op`. */
uint64_t wire_required(uint8_t op);

/* Decodes one frame body (prefix excluded). `headers` is scratch for up to
 * `max_headers` message headers (may be NULL when 0). Returns 0, or
 * WIRE_EPROTO with out->err set (unknown op, wrong type, missing required
 * field, too many headers, trailing garbage). Unknown keys are skipped.
 * On error every field is zero except op and req_id, kept when they could be
 * read, so that the error reply can echo the req_id. The "delay" key fills
 * both `delay` and `opts.delay`. Never reads outside [body, body + len). */
int wire_decode(const void *body, size_t len, struct wire_msg *out,
                struct wire_header *headers, uint32_t max_headers);

/* Iterator over a raw list of a decoded reply. */
struct wire_iter {
	const char *ptr;
	size_t len;
	size_t pos;
	uint32_t left; /* elements not yet returned */
};

void wire_iter_init(struct wire_iter *it, const struct wire_raw *r);

/* Each returns 1 and fills `out`, 0 at the end of the list, or -1 on
 * malformed input (then the iterator stays at the end). */
int wire_next_queue(struct wire_iter *it, struct wire_queue_stats *out);
int wire_next_topic(struct wire_iter *it, struct wire_topic *out);
int wire_next_binding(struct wire_iter *it, struct wire_binding *out);
int wire_next_member(struct wire_iter *it, struct wire_member *out);
int wire_next_config(struct wire_iter *it, struct wire_kv *out);

/* A growable output buffer (owned memory). */
struct wire_buf {
	char *data;
	size_t len;
	size_t cap;
};

void wire_buf_init(struct wire_buf *b);
void wire_buf_free(struct wire_buf *b);
/* Makes room for `n` more bytes. Returns 0 or WIRE_ENOMEM. */
int wire_buf_reserve(struct wire_buf *b, size_t n);
/* Drops the first `n` bytes (n <= len). */
void wire_buf_consume(struct wire_buf *b, size_t n);
/* Appends raw bytes. Returns 0 or WIRE_ENOMEM. */
int wire_buf_append(struct wire_buf *b, const void *p, size_t n);

/* Appends one complete frame (prefix included) for `m`, writing the fields
 * whose bits are set in m->present (WIRE_F_OPTS writes every queue option
 * from m->opts, including "delay": do not also set WIRE_F_DELAY; WIRE_F_STATS
 * writes m->stats with its name, queue_id and options: do not also set
 * WIRE_F_NAME / WIRE_F_QUEUE_ID / WIRE_F_OPTS). Returns 0, WIRE_EINVAL (bad op)
 * or WIRE_ENOMEM; on error the buffer is unchanged. */
int wire_encode(struct wire_buf *b, const struct wire_msg *m);

/* Shorthands for frequent frames. Strings may be NULL (= absent/empty). */
int wire_encode_error(struct wire_buf *b, uint64_t req_id, int code,
                      const char *message, const char *leader);
/* ERROR WIRE_EFRAME, req_id 0, "frame of N bytes exceeds limit M". */
int wire_encode_frame_error(struct wire_buf *b, uint64_t n, uint64_t limit);

/* Streams a list reply (OK with "list" for QUEUE_LIST or "topics" for
 * TOPIC_LIST) without knowing the count in advance: begin, one add per
 * element, end (which patches the count and the frame length). On error the
 * caller truncates b->len back to l->frame_off. */
struct wire_list {
	size_t frame_off;
	size_t count_off;
	uint32_t n;
};
int wire_list_begin(struct wire_buf *b, struct wire_list *l, uint64_t req_id,
                    int field /* WIRE_F_LIST or WIRE_F_TOPICS */);
int wire_list_add_queue(struct wire_buf *b, struct wire_list *l,
                        const struct wire_queue_stats *s);
int wire_list_add_topic(struct wire_buf *b, struct wire_list *l,
                        const char *name, uint32_t name_len, uint8_t kind,
                        const struct wire_binding *bindings,
                        uint32_t n_bindings);
void wire_list_end(struct wire_buf *b, struct wire_list *l);

/* Frame splitter. Looks at the start of `data` (the bytes received and not
 * yet consumed). Returns:
 *   WIRE_SPLIT_MORE   a full frame has not arrived yet;
 *   WIRE_SPLIT_FRAME  a frame body is at data + WIRE_PREFIX, *body_len bytes;
 *                     consume WIRE_PREFIX + *body_len bytes after using it;
 *   WIRE_SPLIT_TOOBIG the announced body length *body_len exceeds
 *                     `max_frame`: answer wire_encode_frame_error(), close. */
enum { WIRE_SPLIT_MORE = 0, WIRE_SPLIT_FRAME = 1, WIRE_SPLIT_TOOBIG = 2 };
int wire_split(const void *data, size_t len, size_t max_frame,
               size_t *body_len);

/* Reads only the op and req_id of a frame body (for proxies that relay
 * frames unchanged). Returns 0, or WIRE_EPROTO when the body does not start
 * with [op, req_id, ...]. Does not validate the fields. */
int wire_peek(const void *body, size_t len, uint8_t *op, uint64_t *req_id);

/* Salvages what a receiver needs to settle a frame that wire_decode()
 * refused (too many headers, a bad value in some other field): op, req_id
 * and, when they are readable, "consumer", "queue_id" and "seq" (their bits
 * set in out->present); every other field is skipped unread. Returns 0 when
 * op and req_id were read (even if the map is damaged further on), or
 * WIRE_EPROTO. Never reads outside [body, body + len). */
int wire_salvage(const void *body, size_t len, struct wire_msg *out);

/* Name of an op ("PUBLISH"), or "?" (for logs). */
const char *wire_op_name(int op);

#endif /* RAFTMQ_WIRE_H */
