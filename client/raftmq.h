/* libraftmq: the C client library of the raftmq message broker.
 *
 * A `struct raftmq` is one logical connection to a raftmq cluster. It talks
 * to one node at a time over TCP (any node works: followers forward to the
 * leader), reconnects and fails over to the next node of its server list by
 * itself, and re-registers its consumers after a reconnect.
 *
 * Thread safety: a handle must be used by one thread at a time (calls on the
 * same handle from several threads need the caller's own lock). Different
 * handles are independent and may be used from different threads. Callbacks
 * run inside library calls, on the calling thread; they must not call back
 * into the same handle except raftmq_errmsg().
 *
 * Errors: every int-returning call gives 0 on success, a positive server
 * code (the RAFTMQ_E* values from 1 to 199, equal to the protocol's codes in
 * docs/protocol.md), or a negative client code (RAFTMQ_ECONNECT, ...).
 * raftmq_errmsg() describes the last failure of the handle.
 *
 * Delivery semantics: at-least-once. A message is delivered again (with
 * `redelivered` set) when it is not acked in time, when it is nacked with
 * requeue, or when the consumer's connection ends; settle it with
 * raftmq_ack() / raftmq_nack() by (queue_id, seq).
 */
#ifndef RAFTMQ_H
#define RAFTMQ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RAFTMQ_VERSION "0.1.0"

enum raftmq_status {
	RAFTMQ_OK = 0,
	/* Server codes (same numbers as the protocol). */
	RAFTMQ_ENOQUEUE = 1,
	RAFTMQ_ENOTOPIC = 2,
	RAFTMQ_EEXISTS = 3,
	RAFTMQ_EINVAL = 4,
	RAFTMQ_ETOOBIG = 5,
	RAFTMQ_EFULL = 6,
	RAFTMQ_ENOCONSUMER = 7,
	RAFTMQ_ENOMSG = 8,
	RAFTMQ_EMALFORMED = 9,
	RAFTMQ_ELIMIT = 10,
	RAFTMQ_ENOTEMPTY = 11,
	RAFTMQ_EINUSE = 12,
	RAFTMQ_ESERVERMEM = 13,
	RAFTMQ_ECLUSTERFULL = 14, /* the cluster's memory limit: retry later */
	RAFTMQ_EPROTO = 100,
	RAFTMQ_EFRAME = 101,
	RAFTMQ_EVERSION = 102,
	RAFTMQ_ENOTLEADER = 103,
	RAFTMQ_EUNAVAILABLE = 104,
	RAFTMQ_EUNKNOWN = 105,
	RAFTMQ_EBUSY = 106,
	RAFTMQ_ESERVERTIMEOUT = 107,
	RAFTMQ_ESHUTDOWN = 108,
	RAFTMQ_EHELLO = 109,
	/* Client codes. */
	RAFTMQ_ECONNECT = -1,  /* no server could be reached in time */
	RAFTMQ_ETIMEOUT = -2,  /* the call's deadline passed */
	RAFTMQ_ENOMEM = -3,    /* allocation failed */
	RAFTMQ_EARG = -4,      /* bad argument to a library call */
	RAFTMQ_EBADREPLY = -5, /* the server sent something unexpected */
	RAFTMQ_ECANCELLED = -6 /* the consumer was cancelled by the server */
};

/* Text for a status code; never NULL. */
const char *raftmq_strerror(int status);

struct raftmq_options {
	/* "host:port[,host:port...]"; NULL = $RAFTMQ_SERVERS, else
	 * "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003". */
	const char *servers;
	const char *client_name; /* sent in HELLO; default "libraftmq" */
	int timeout_ms;          /* deadline of one call, retries included;
	                            default 15000 */
	int connect_timeout_ms;  /* per connection attempt; default 2000 */
	int backoff_max_ms;      /* reconnect backoff cap; default 250 */
	unsigned window;         /* async publishes in flight; default 1024,
	                            at most 32768 */
	int heartbeat_ms;        /* heartbeat interval proposed in HELLO (the
	                            node may grant less); 0 = default 5000,
	                            < 0 = no heartbeats. With heartbeats the
	                            library sends one whenever the link was
	                            idle, and a server silent for 3 intervals
	                            counts as lost (reconnect). They are sent
	                            from library calls: an application that
	                            makes none for 3 intervals is disconnected
	                            by the node (its deliveries go to other
	                            consumers); ask for a longer interval or
	                            none in that case. */
};

/* Fills the defaults above. */
void raftmq_options_default(struct raftmq_options *o);

struct raftmq;

/* Creates a handle (no connection yet: the first call connects, or call
 * raftmq_connect()). `o` may be NULL for the defaults. Returns NULL on a bad
 * server list or when out of memory. */
struct raftmq *raftmq_new(const struct raftmq_options *o);

/* Connects now (HELLO included). Returns 0, RAFTMQ_ECONNECT, or a server
 * code such as RAFTMQ_EVERSION. */
int raftmq_connect(struct raftmq *c);

/* Closes the connection and frees the handle. Unconfirmed async publishes
 * are abandoned (their callbacks are not called). */
void raftmq_close(struct raftmq *c);

/* The last error text of the handle (never NULL; "" when none). */
const char *raftmq_errmsg(const struct raftmq *c);

/* Problems the library handled by itself but the application should know
 * about, such as a delivery it could not decode (too many headers, a frame
 * above its limit): that message is nacked to the dead-letter queue when its
 * queue_id and seq could be read, else skipped (it is redelivered after its
 * ack timeout), and the connection and its other consumers go on. Without
 * a callback the text goes to stderr. `text` is valid during the call. */
typedef void (*raftmq_error_cb)(void *arg, int status, const char *text);
void raftmq_set_error_cb(struct raftmq *c, raftmq_error_cb cb, void *arg);

/* Sets the deadline of subsequent calls (ms, > 0). */
void raftmq_set_timeout(struct raftmq *c, int timeout_ms);

/* The "host:port" of the node the handle is connected to, or "". */
const char *raftmq_server(const struct raftmq *c);

/* ---- administration ---------------------------------------------- */

enum { RAFTMQ_OVERFLOW_REJECT = 0, RAFTMQ_OVERFLOW_DROP_HEAD = 1 };
enum { RAFTMQ_FANOUT = 0, RAFTMQ_DIRECT = 1, RAFTMQ_TOPIC = 2 };
enum { RAFTMQ_NACK_REQUEUE = 0, RAFTMQ_NACK_DEADLETTER = 1 };

/* Queue options; 0 / NULL means the server's default. */
struct raftmq_queue_opts {
	uint64_t ack_timeout;    /* ms */
	uint32_t max_deliveries; /* 0 = unlimited */
	const char *dlq;         /* dead-letter queue, NULL = none */
	uint64_t message_ttl;    /* ms */
	uint64_t delay;          /* ms */
	uint64_t max_length;     /* messages */
	uint64_t max_bytes;      /* payload bytes */
	int overflow;            /* RAFTMQ_OVERFLOW_* */
	uint64_t dedup_window;   /* ms */
	int exclusive;
	int auto_delete;
};

/* Declares a queue (`opts` may be NULL). Declaring again with the same
 * options succeeds with *created = 0; different options give
 * RAFTMQ_EEXISTS. `queue_id` and `created` may be NULL. */
int raftmq_queue_declare(struct raftmq *c, const char *name,
                         const struct raftmq_queue_opts *opts,
                         uint32_t *queue_id, int *created);
int raftmq_queue_delete(struct raftmq *c, const char *name, int if_empty,
                        uint64_t *removed);
int raftmq_queue_purge(struct raftmq *c, const char *name, uint64_t *removed);

struct raftmq_queue_stats {
	char name[256];
	uint32_t queue_id;
	uint64_t ready, delayed, in_flight, bytes, consumers;
	uint64_t published, acked, dead_lettered, expired, dropped,
	    deduplicated;
	uint64_t last_seq;
	struct raftmq_queue_opts opts; /* opts.dlq points to dlq_buf */
	char dlq_buf[256];
};

int raftmq_queue_stats(struct raftmq *c, const char *name,
                       struct raftmq_queue_stats *out);
/* Calls `cb` for every queue in name order. */
int raftmq_queue_list(struct raftmq *c,
                      void (*cb)(void *arg, const struct raftmq_queue_stats *s),
                      void *arg);

int raftmq_topic_declare(struct raftmq *c, const char *name, int kind);
int raftmq_topic_delete(struct raftmq *c, const char *name);
int raftmq_bind(struct raftmq *c, const char *topic, const char *queue,
                const char *key);
int raftmq_unbind(struct raftmq *c, const char *topic, const char *queue,
                  const char *key);

struct raftmq_binding {
	const char *queue;
	const char *key;
};
/* Calls `cb` for every topic with its bindings (valid during the call). */
int raftmq_topic_list(struct raftmq *c,
                      void (*cb)(void *arg, const char *name, int kind,
                                 const struct raftmq_binding *bindings,
                                 uint32_t n_bindings),
                      void *arg);

#define RAFTMQ_MAX_MEMBERS 16

struct raftmq_member {
	uint64_t id;
	char raft_address[128];
	char client_address[128];
};

/* The view of the node the handle is connected to. */
struct raftmq_node_status {
	uint64_t node_id;
	char role[16]; /* "leader", "follower", "candidate", "unavailable" */
	uint64_t leader_id, term, commit_index, applied_index, last_index;
	/* The divergence detector of that node's replica: commands applied,
	 * their running digest, and 1 when the node found its replica
	 * different from the leader's (it then refuses clients). */
	uint64_t applied, digest;
	int diverged;
	uint32_t n_members;
	struct raftmq_member members[RAFTMQ_MAX_MEMBERS];
};

int raftmq_status(struct raftmq *c, struct raftmq_node_status *out);

/* The cluster's replicated configuration (the limits every node applies
 * commands with; docs/operations.md "Cluster configuration"). */
#define RAFTMQ_MAX_CONFIG 64

struct raftmq_config_kv {
	char key[48]; /* "max_payload", ... */
	uint64_t value;
};

/* Fills up to `max` keys in `out`, sets *n to the number filled. */
int raftmq_config_get(struct raftmq *c, struct raftmq_config_kv *out,
                      uint32_t max, uint32_t *n);
/* Changes the given keys, all or nothing (RAFTMQ_EINVAL names the key
 * that is unknown or out of range). */
int raftmq_config_set(struct raftmq *c, const struct raftmq_config_kv *kv,
                      uint32_t n);

/* ---- publishing --------------------------------------------------- */

struct raftmq_header {
	const char *key;
	const char *value;
};

/* A message to publish. Strings are NUL-terminated; NULL = empty. */
struct raftmq_message {
	const char *topic; /* NULL/"" = default route: `key` names a queue */
	const char *key;   /* queue name, or routing key for a topic */
	const char *id;    /* dedup id; NULL = generated (random + counter) */
	const char *type;
	const char *correlation_id;
	const char *reply_to;
	const struct raftmq_header *headers;
	uint32_t n_headers;
	const void *payload;
	size_t payload_len;
	uint64_t ttl;   /* ms, 0 = queue default */
	uint64_t delay; /* ms, 0 = queue default */
};

struct raftmq_confirm {
	uint64_t seq;    /* default route: the queue's sequence number */
	uint32_t queues; /* queues that got a copy */
	int duplicate;   /* 1 when the id was seen within the dedup window */
	const char *id;  /* the message id used (valid during the callback) */
};

/* Publishes and waits for the confirm (commit in the cluster). Retries
 * after a lost connection or a retryable error resend the same message id,
 * so the server's dedup window keeps the result exactly one enqueue; the
 * first seq comes back. `out` may be NULL. */
int raftmq_publish(struct raftmq *c, const struct raftmq_message *m,
                   struct raftmq_confirm *out);

/* Called once per async publish, with status 0 and the confirm, or an error
 * (after the call's deadline or a non-retryable error). */
typedef void (*raftmq_confirm_cb)(void *arg, int status,
                                  const struct raftmq_confirm *conf);

/* Queues a publish and returns without waiting for its confirm. Blocks
 * (processing replies) while the window is full. Returns 0 when queued; the
 * outcome goes to `cb` (may be NULL). The message is copied. */
int raftmq_publish_async(struct raftmq *c, const struct raftmq_message *m,
                         raftmq_confirm_cb cb, void *arg);

/* Sends everything queued (does not wait for confirms). */
int raftmq_flush(struct raftmq *c);

/* Waits until every async publish is confirmed or failed. Returns 0 when
 * all succeeded, the first failure's status otherwise (then reset), or
 * RAFTMQ_ETIMEOUT when `timeout_ms` (< 0 = the handle's timeout) passed. */
int raftmq_wait_confirms(struct raftmq *c, int timeout_ms);

/* Async publishes not yet confirmed or failed. */
unsigned raftmq_pending(const struct raftmq *c);

/* ---- consuming ---------------------------------------------------- */

/* A received message. All strings are NUL-terminated copies owned by the
 * delivery; free it with raftmq_delivery_free(). */
struct raftmq_delivery {
	uint64_t consumer; /* server consumer id; 0 for raftmq_get() */
	const char *queue;
	uint32_t queue_id;
	uint64_t seq;
	uint32_t delivery_count;
	int redelivered;
	uint64_t timestamp; /* commit time, ms since the epoch */
	const char *id;
	const char *type;
	const char *correlation_id;
	const char *reply_to;
	const struct raftmq_header *headers;
	uint32_t n_headers;
	const void *payload; /* followed by a NUL byte, for convenience */
	size_t payload_len;
};

void raftmq_delivery_free(struct raftmq_delivery *d);

/* Registers a consumer on `queue` with `prefetch` unacked deliveries at a
 * time. `*handle` (may be NULL) is a local id that stays the same across
 * reconnects, while the server's consumer id changes. */
int raftmq_consume(struct raftmq *c, const char *queue, uint32_t prefetch,
                   uint64_t *handle);
int raftmq_cancel(struct raftmq *c, uint64_t handle);

/* Waits up to `timeout_ms` (0 = just poll, < 0 = forever) for the next
 * delivery, of any consumer or get. Returns 0 with *d set, RAFTMQ_ETIMEOUT,
 * RAFTMQ_ECANCELLED when the server cancelled a consumer (its queue was
 * deleted; see raftmq_errmsg()), or a connection error. */
int raftmq_next_delivery(struct raftmq *c, int timeout_ms,
                         struct raftmq_delivery **d);

/* Callback style: when set, raftmq_poll() hands each delivery to `cb`, which
 * owns it. */
typedef void (*raftmq_delivery_cb)(void *arg, struct raftmq_delivery *d);
void raftmq_set_delivery_cb(struct raftmq *c, raftmq_delivery_cb cb, void *arg);
/* Processes I/O for up to `timeout_ms` and dispatches deliveries and
 * confirms. Returns 0 or an error. */
int raftmq_poll(struct raftmq *c, int timeout_ms);

int raftmq_ack(struct raftmq *c, uint32_t queue_id, uint64_t seq);
int raftmq_nack(struct raftmq *c, uint32_t queue_id, uint64_t seq, int mode);

/* Sends an ack without waiting for its answer (at most `window` in flight;
 * blocks while that many are outstanding). An ack lost with a dropped
 * connection only means the message is delivered again. Returns 0 when
 * sent. */
int raftmq_ack_async(struct raftmq *c, uint32_t queue_id, uint64_t seq);

/* Waits until every async ack is answered (or the connection dropped).
 * Returns 0, the first failure other than RAFTMQ_ENOMSG since the last call,
 * or RAFTMQ_ETIMEOUT. */
int raftmq_wait_acks(struct raftmq *c, int timeout_ms);
/* Pushes the redelivery deadline to now + timeout_ms. */
int raftmq_extend(struct raftmq *c, uint32_t queue_id, uint64_t seq,
                  uint64_t timeout_ms);

/* Pull: takes up to `max` ready messages (visibility timeout `timeout_ms`,
 * 0 = the queue's ack timeout). The messages are appended to the delivery
 * queue (consumer 0): fetch them with raftmq_next_delivery(c, 0, &d).
 * `*count` (may be NULL) gets how many. */
int raftmq_get(struct raftmq *c, const char *queue, uint32_t max,
               uint64_t timeout_ms, uint32_t *count);

#ifdef __cplusplus
}
#endif

#endif /* RAFTMQ_H */
