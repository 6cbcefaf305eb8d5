/* libraftmq: connection, failover, publishing and consuming (see raftmq.h).
 *
 * One handle owns one TCP connection at a time, driven by poll(2) from the
 * calling thread. Request ids carry their kind in the top byte, so that a
 * reply finds its owner in O(1):
 *
 *   KIND_PUB   async publish; the low 16 bits index the slot table
 *   KIND_CALL  the one blocking call in progress
 *   KIND_REG   re-registration of a consumer after a reconnect; the low bits
 *              are the consumer's local handle
 *   KIND_ACK   fire-and-forget ack (raftmq_ack_async)
 *   KIND_NACK  dead-letter nack of a delivery the library could not decode
 *              (its reply is ignored)
 *
 * Publishes keep their encoded frame until confirmed. When the connection
 * drops, or a retryable error comes back, the very same frame (same message
 * id) is sent again, so the server's dedup window turns retries into one
 * enqueue and returns the first sequence number.
 *
 * Liveness: HELLO proposes a heartbeat interval and HELLO_OK grants one;
 * with one granted, the library sends HEARTBEAT whenever it sent nothing
 * for half an interval and drops a connection on which nothing arrived for
 * 3 intervals (then reconnects). Sockets also use TCP keepalive.
 *
 * A frame the library cannot decode does not cost the connection: a
 * delivery is nacked to the dead-letter queue when its queue_id and seq can
 * be read (else skipped), a reply fails the request it answers, and either
 * is reported through the error callback. Only a stream that is not frames
 * of [op, req_id, ...] at all is dropped.
 */
#include "client/raftmq.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "wire/wire.h"

/* Server codes reach the application as they came on the wire. */
#define SAME_CODE(r, w) _Static_assert((int)RAFTMQ_E##r == (int)WIRE_E##w, #r)
SAME_CODE(NOQUEUE, NOQUEUE);
SAME_CODE(NOTOPIC, NOTOPIC);
SAME_CODE(EXISTS, EXISTS);
SAME_CODE(INVAL, INVAL);
SAME_CODE(TOOBIG, TOOBIG);
SAME_CODE(FULL, FULL);
SAME_CODE(NOCONSUMER, NOCONSUMER);
SAME_CODE(NOMSG, NOMSG);
SAME_CODE(MALFORMED, MALFORMED);
SAME_CODE(LIMIT, LIMIT);
SAME_CODE(NOTEMPTY, NOTEMPTY);
SAME_CODE(INUSE, INUSE);
SAME_CODE(SERVERMEM, NOMEM);
SAME_CODE(CLUSTERFULL, CLUSTERFULL);
SAME_CODE(PROTO, PROTO);
SAME_CODE(FRAME, FRAME);
SAME_CODE(VERSION, VERSION);
SAME_CODE(NOTLEADER, NOTLEADER);
SAME_CODE(UNAVAILABLE, UNAVAILABLE);
SAME_CODE(UNKNOWN, UNKNOWN);
SAME_CODE(BUSY, BUSY);
SAME_CODE(SERVERTIMEOUT, TIMEOUT);
SAME_CODE(SHUTDOWN, SHUTDOWN);
SAME_CODE(HELLO, HELLO);
#undef SAME_CODE

#define KIND_SHIFT 56
#define KIND_PUB   1ull
#define KIND_CALL  2ull
#define KIND_REG   3ull
#define KIND_ACK   4ull
#define KIND_NACK  5ull
#define SLOT_BITS  16
#define MAX_WINDOW 32768u
#define MAX_HDRS   1024
#define READ_CHUNK (64 * 1024)
#define SCAN_MS    100
#define HB_DEFAULT 5000
#define HB_MISSES  3

enum { P_FREE, P_QUEUED, P_SENT, P_RETRY };

struct pub {
	uint64_t req_id; /* 0 when free */
	struct wire_buf frame;
	char id[64];
	raftmq_confirm_cb cb;
	void *arg;
	int64_t deadline;
	int64_t retry_at;
	unsigned backoff;
	uint8_t state;
};

struct consumer {
	uint64_t handle;
	char *queue;
	uint32_t prefetch;
	uint64_t server_id; /* 0 while not registered */
	uint32_t queue_id;
	struct consumer *next;
};

/* A delivery and its copied strings in one allocation. */
struct ddel {
	struct raftmq_delivery d; /* first: freed through its address */
	struct ddel *next;
};

struct server {
	char host[256];
	char port[16];
	char text[280];
};

typedef void (*call_handler)(struct raftmq *c, void *ctx,
                             const struct wire_msg *m);

struct raftmq {
	struct raftmq_options o;
	char client_name[64];
	struct server *servers;
	unsigned n_servers;
	unsigned cur;
	unsigned backoff;

	int fd; /* -1 when disconnected */
	int connected;
	struct wire_buf rx, tx;
	uint32_t max_frame;
	uint32_t max_payload;
	uint64_t node_id;
	char errmsg[512];
	char leader_hint[280];
	int follow_hint;

	char id_prefix[40];
	uint64_t id_counter;
	uint64_t seq;

	struct pub *pubs;
	unsigned window;
	unsigned *free_slots;
	unsigned n_free;
	unsigned n_retry;
	int first_async_error;
	int64_t last_scan;

	uint64_t call_id;
	int call_done;
	int call_status;
	call_handler call_fn;
	void *call_ctx;
	int call_attempts;

	unsigned acks_out; /* async acks not answered yet */
	int ack_error;     /* first async ack failure, reset by wait_acks */

	struct consumer *consumers;
	uint64_t next_handle;
	int reg_retry;
	int cancelled;

	struct ddel *dq_head, *dq_tail;
	raftmq_delivery_cb dcb;
	void *dcb_arg;
	raftmq_error_cb ecb;
	void *ecb_arg;

	int hb_ms; /* heartbeat granted by the server, 0 = off */
	int64_t last_rx, last_tx;
	size_t skip_left; /* bytes of an oversized frame still to discard */

	struct wire_header hdrs[MAX_HDRS];
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int set_err(struct raftmq *c, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->errmsg, sizeof(c->errmsg), fmt, ap);
	va_end(ap);
	return code;
}

const char *raftmq_strerror(int status)
{
	switch (status) {
	case RAFTMQ_ECONNECT:
		return "could not connect to any server";
	case RAFTMQ_ETIMEOUT:
		return "timed out";
	case RAFTMQ_ENOMEM:
		return "out of memory";
	case RAFTMQ_EARG:
		return "bad argument";
	case RAFTMQ_EBADREPLY:
		return "unexpected reply from the server";
	case RAFTMQ_ECANCELLED:
		return "consumer cancelled by the server";
	default:
		return wire_strerror(status);
	}
}

void raftmq_options_default(struct raftmq_options *o)
{
	memset(o, 0, sizeof(*o));
	o->client_name = "libraftmq";
	o->timeout_ms = 15000;
	o->connect_timeout_ms = 2000;
	o->backoff_max_ms = 250;
	o->window = 1024;
	o->heartbeat_ms = HB_DEFAULT;
}

static int parse_servers(struct raftmq *c, const char *s)
{
	const char *p = s;

	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		struct server *sv, *grown;
		const char *colon;
		size_t hl;

		if (n == 0 || n >= sizeof(sv->text))
			return -1;
		grown = realloc(c->servers,
		                (c->n_servers + 1) * sizeof(*c->servers));
		if (grown == NULL)
			return -1;
		c->servers = grown;
		sv = &c->servers[c->n_servers];
		memcpy(sv->text, p, n);
		sv->text[n] = '\0';
		colon = strrchr(sv->text, ':');
		if (colon == NULL || colon == sv->text || colon[1] == '\0' ||
		    strlen(colon + 1) >= sizeof(sv->port))
			return -1;
		hl = (size_t)(colon - sv->text);
		if (sv->text[0] == '[' && colon[-1] == ']') {
			memcpy(sv->host, sv->text + 1, hl - 2);
			sv->host[hl - 2] = '\0';
		} else {
			memcpy(sv->host, sv->text, hl);
			sv->host[hl] = '\0';
		}
		strcpy(sv->port, colon + 1);
		c->n_servers++;
		p += n;
		if (*p == ',')
			p++;
	}
	return c->n_servers ? 0 : -1;
}

static void make_id_prefix(struct raftmq *c)
{
	unsigned char r[16];
	ssize_t got = getrandom(r, sizeof(r), 0);

	if (got != (ssize_t)sizeof(r)) {
		/* Never expected on Linux; still make ids unlikely to clash. */
		uint64_t x = (uint64_t)now_ms() ^ ((uint64_t)getpid() << 32) ^
		             (uint64_t)(uintptr_t)c;

		for (size_t i = 0; i < sizeof(r); i++) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			r[i] = (unsigned char)(x >> 56);
		}
	}
	for (size_t i = 0; i < sizeof(r); i++)
		snprintf(c->id_prefix + 2 * i, 3, "%02x", r[i]);
}

struct raftmq *raftmq_new(const struct raftmq_options *opts)
{
	struct raftmq_options def;
	struct raftmq *c;
	const char *servers;

	if (opts == NULL) {
		raftmq_options_default(&def);
		opts = &def;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->o = *opts;
	raftmq_options_default(&def);
	if (c->o.timeout_ms <= 0)
		c->o.timeout_ms = def.timeout_ms;
	if (c->o.connect_timeout_ms <= 0)
		c->o.connect_timeout_ms = def.connect_timeout_ms;
	if (c->o.backoff_max_ms <= 0)
		c->o.backoff_max_ms = def.backoff_max_ms;
	if (c->o.window == 0)
		c->o.window = def.window;
	if (c->o.window > MAX_WINDOW)
		c->o.window = MAX_WINDOW;
	if (c->o.heartbeat_ms == 0)
		c->o.heartbeat_ms = def.heartbeat_ms;
	snprintf(c->client_name, sizeof(c->client_name), "%s",
	         opts->client_name ? opts->client_name : "libraftmq");
	c->o.client_name = c->client_name;
	servers = opts->servers;
	if (servers == NULL)
		servers = getenv("RAFTMQ_SERVERS");
	if (servers == NULL || servers[0] == '\0')
		servers = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003";
	c->o.servers = NULL;
	c->fd = -1;
	c->max_frame = WIRE_MAX_FRAME_DEFAULT;
	wire_buf_init(&c->rx);
	wire_buf_init(&c->tx);
	c->window = c->o.window;
	c->pubs = calloc(c->window, sizeof(*c->pubs));
	c->free_slots = calloc(c->window, sizeof(*c->free_slots));
	if (c->pubs == NULL || c->free_slots == NULL ||
	    parse_servers(c, servers)) {
		free(c->pubs);
		free(c->free_slots);
		free(c->servers);
		free(c);
		return NULL;
	}
	for (unsigned i = 0; i < c->window; i++)
		c->free_slots[c->n_free++] = c->window - 1 - i;
	c->next_handle = 1;
	make_id_prefix(c);
	return c;
}

const char *raftmq_errmsg(const struct raftmq *c)
{
	return c->errmsg;
}

void raftmq_set_error_cb(struct raftmq *c, raftmq_error_cb cb, void *arg)
{
	c->ecb = cb;
	c->ecb_arg = arg;
}

/* Tells the application about a problem the library worked around. */
static void report(struct raftmq *c, int status, const char *text)
{
	set_err(c, status, "%s", text);
	if (c->ecb)
		c->ecb(c->ecb_arg, status, text);
	else
		fprintf(stderr, "libraftmq: %s\n", text);
}

void raftmq_set_timeout(struct raftmq *c, int timeout_ms)
{
	if (timeout_ms > 0)
		c->o.timeout_ms = timeout_ms;
}

const char *raftmq_server(const struct raftmq *c)
{
	return c->connected ? c->servers[c->cur].text : "";
}

unsigned raftmq_pending(const struct raftmq *c)
{
	return c->window - c->n_free;
}

/* ------------------------------------------------------------------ */
/* Connection                                                           */

static void conn_lost(struct raftmq *c, const char *why)
{
	if (c->fd >= 0)
		close(c->fd);
	if (why != NULL && c->connected)
		set_err(c, RAFTMQ_ECONNECT, "connection to %s lost: %s",
		        c->servers[c->cur].text, why);
	c->fd = -1;
	c->connected = 0;
	c->rx.len = 0;
	c->tx.len = 0;
	c->hb_ms = 0;
	c->skip_left = 0;
	for (unsigned i = 0; i < c->window; i++)
		if (c->pubs[i].state == P_SENT)
			c->pubs[i].state = P_QUEUED;
	for (struct consumer *k = c->consumers; k; k = k->next)
		k->server_id = 0;
	/* Unanswered async acks are lost with the session; the server makes
	 * those messages ready again, so they are redelivered, not lost. */
	c->acks_out = 0;
	/* The next attempt starts with the next server. */
	c->cur = (c->cur + 1) % c->n_servers;
}

/* Writes as much of tx as the socket takes. Returns 0 or -1 (lost). */
static int flush_some(struct raftmq *c)
{
	size_t off = 0;

	while (off < c->tx.len) {
		ssize_t n = send(c->fd, c->tx.data + off, c->tx.len - off,
		                 MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			wire_buf_consume(&c->tx, off);
			conn_lost(c, strerror(errno));
			return -1;
		}
		off += (size_t)n;
		c->last_tx = now_ms();
	}
	wire_buf_consume(&c->tx, off);
	return 0;
}

/* Reads what is available into rx. Returns 0, or 1 when the peer closed
 * or the socket failed (*why says how); the caller still dispatches what was
 * read before it calls conn_lost(). */
static int read_some(struct raftmq *c, const char **why)
{
	for (;;) {
		ssize_t n;

		if (wire_buf_reserve(&c->rx, READ_CHUNK)) {
			*why = "out of memory";
			return 1;
		}
		n = recv(c->fd, c->rx.data + c->rx.len, READ_CHUNK, 0);
		if (n > 0) {
			c->rx.len += (size_t)n;
			c->last_rx = now_ms();
			if (n < READ_CHUNK)
				return 0;
			continue;
		}
		if (n == 0) {
			*why = "closed by the server";
			return 1;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		*why = strerror(errno);
		return 1;
	}
}

static int dispatch(struct raftmq *c, const struct wire_msg *m);
static void pub_reply(struct raftmq *c, unsigned slot,
                      const struct wire_msg *m);

/* The largest frame body the library takes in: what the server announced,
 * and room for a maximal message with the headers that dead-lettering adds
 * (generously: twice max_payload plus 64 KiB). */
static size_t rx_limit(const struct raftmq *c)
{
	size_t l = WIRE_MAX_FRAME_DEFAULT;

	if (c->max_frame > l)
		l = c->max_frame;
	if (c->max_payload && 2 * (size_t)c->max_payload + 64 * 1024 > l)
		l = 2 * (size_t)c->max_payload + 64 * 1024;
	return l;
}

/* A reply (op, req_id) that could not be read: its request fails (a call
 * with RAFTMQ_EBADREPLY; a publish is resent, its outcome being unknown). */
static void reply_lost(struct raftmq *c, uint8_t op, uint64_t req_id,
                       const char *text)
{
	uint64_t kind = req_id >> KIND_SHIFT;

	if (op != WIRE_OP_OK && op != WIRE_OP_ERROR)
		return;
	if (kind == KIND_CALL && req_id == c->call_id && !c->call_done) {
		c->call_done = 1;
		c->call_status = RAFTMQ_EBADREPLY;
		set_err(c, RAFTMQ_EBADREPLY, "%s", text);
	} else if (kind == KIND_PUB) {
		unsigned slot = (unsigned)(req_id & ((1u << SLOT_BITS) - 1));

		if (slot < c->window && c->pubs[slot].req_id == req_id &&
		    c->pubs[slot].state == P_SENT) {
			struct wire_msg e;

			wire_msg_init(&e, WIRE_OP_ERROR, req_id);
			e.code = WIRE_EUNKNOWN;
			e.message.ptr = text;
			e.message.len = (uint32_t)strlen(text);
			pub_reply(c, slot, &e);
		}
	} else if (kind == KIND_ACK) {
		if (c->acks_out)
			c->acks_out--;
	} else if (kind == KIND_REG) {
		c->reg_retry = 1;
	}
}

/* Settles a delivery the application will never see: dead-letter, so that
 * it neither loops nor blocks the queue (a requeue would come back to the
 * same decoder). The reply is ignored. */
static void nack_deadletter(struct raftmq *c, uint32_t queue_id, uint64_t seq)
{
	struct wire_msg m;

	wire_msg_init(&m, WIRE_OP_NACK, KIND_NACK << KIND_SHIFT | ++c->seq);
	m.queue_id = queue_id;
	m.seq = seq;
	m.mode = WIRE_NACK_DEADLETTER;
	wire_encode(&c->tx, &m);
}

/* A complete frame that wire_decode() refused (`err`). Returns 0 when the
 * connection goes on, -1 when it was dropped. */
static int undecodable(struct raftmq *c, const char *body, size_t len,
                       const char *err)
{
	const uint64_t need = WIRE_BIT(WIRE_F_QUEUE_ID) | WIRE_BIT(WIRE_F_SEQ);
	struct wire_msg m;
	char text[640];

	if (wire_salvage(body, len, &m)) {
		/* Not even [op, req_id, ...]: the server is broken. */
		set_err(c, RAFTMQ_EBADREPLY, "bad frame from %s: %s",
		        c->servers[c->cur].text, err);
		conn_lost(c, NULL);
		return -1;
	}
	if (m.op == WIRE_OP_DELIVER && (m.present & need) == need) {
		nack_deadletter(c, m.queue_id, m.seq);
		snprintf(text, sizeof(text),
		         "delivery of queue_id %u seq %llu could not be "
		         "decoded (%s): nacked to the dead-letter queue",
		         m.queue_id, (unsigned long long)m.seq, err);
	} else if (m.op == WIRE_OP_DELIVER) {
		snprintf(text, sizeof(text),
		         "a delivery could not be decoded (%s) and has no "
		         "readable queue_id/seq: skipped (it comes back after "
		         "its ack timeout)",
		         err);
	} else {
		snprintf(text, sizeof(text), "%s frame from %s skipped: %s",
		         wire_op_name(m.op), c->servers[c->cur].text, err);
		reply_lost(c, m.op, m.req_id, text);
	}
	report(c, RAFTMQ_EBADREPLY, text);
	return 0;
}

/* A frame whose announced length exceeds rx_limit(): only its head is read
 * (op and req_id), the rest is discarded as it arrives. Returns 0, or -1
 * when the connection was dropped. */
static int oversized(struct raftmq *c, const char *head, size_t head_len,
                     size_t body)
{
	uint8_t op;
	uint64_t req_id;
	char text[256];

	if (wire_peek(head, head_len, &op, &req_id)) {
		set_err(
		    c, RAFTMQ_EBADREPLY,
		    "server sent a frame of %zu bytes that is not a message",
		    body);
		conn_lost(c, NULL);
		return -1;
	}
	snprintf(text, sizeof(text),
	         "%s frame of %zu bytes exceeds the client's limit of %zu: "
	         "skipped%s",
	         wire_op_name(op), body, rx_limit(c),
	         op == WIRE_OP_DELIVER
	             ? " (the message comes back after its ack timeout)"
	             : "");
	reply_lost(c, op, req_id, text);
	report(c, RAFTMQ_EBADREPLY, text);
	return 0;
}

/* Decodes and dispatches every complete frame in rx. Returns 0 or -1. */
static int process_rx(struct raftmq *c)
{
	size_t off = 0, body;
	int rc = 0;

	if (c->skip_left) {
		off = c->skip_left < c->rx.len ? c->skip_left : c->rx.len;
		c->skip_left -= off;
	}
	while (c->skip_left == 0) {
		struct wire_msg m;
		size_t avail = c->rx.len - off;
		const char *frame = c->rx.data + off;
		int s = wire_split(frame, avail, rx_limit(c), &body);

		if (s == WIRE_SPLIT_MORE)
			break;
		if (s == WIRE_SPLIT_TOOBIG) {
			/* Wait for enough of the head (the body is larger
			 * than a MiB: more is coming). */
			if (avail < WIRE_PREFIX + 32)
				break;
			if (oversized(c, frame + WIRE_PREFIX,
			              avail - WIRE_PREFIX, body))
				return -1;
			c->skip_left = WIRE_PREFIX + body - avail;
			off = c->rx.len;
			break;
		}
		off += WIRE_PREFIX + body;
		if (wire_decode(frame + WIRE_PREFIX, body, &m, c->hdrs,
		                MAX_HDRS)) {
			if (undecodable(c, frame + WIRE_PREFIX, body, m.err))
				return -1;
			continue;
		}
		rc = dispatch(c, &m);
		if (rc || !c->connected)
			return -1; /* rx was reset by conn_lost */
	}
	wire_buf_consume(&c->rx, off);
	return 0;
}

/* Connects to server `idx` and does the HELLO exchange. */
static int conn_try(struct raftmq *c, unsigned idx, int64_t deadline)
{
	struct server *sv = &c->servers[idx];
	struct addrinfo hints, *res = NULL, *ai;
	int64_t until = now_ms() + c->o.connect_timeout_ms;
	int fd = -1, rc, one = 1;
	struct wire_msg m;

	if (until > deadline)
		until = deadline;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(sv->host, sv->port, &hints, &res);
	if (rc)
		return set_err(c, RAFTMQ_ECONNECT, "%s: %s", sv->text,
		               gai_strerror(rc));
	rc = RAFTMQ_ECONNECT;
	for (ai = res; ai; ai = ai->ai_next) {
		struct pollfd pfd;
		int err = 0;
		socklen_t el = sizeof(err);

		fd = socket(ai->ai_family,
		            ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		            ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 &&
		    errno != EINPROGRESS) {
			set_err(c, rc, "%s: %s", sv->text, strerror(errno));
			goto next;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		do {
			int64_t left = until - now_ms();

			if (left < 0)
				left = 0;
			err = poll(&pfd, 1, (int)left);
		} while (err < 0 && errno == EINTR);
		if (err == 0) {
			set_err(c, rc, "%s: connect timed out", sv->text);
			goto next;
		}
		err = 0;
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) {
			set_err(c, rc, "%s: %s", sv->text, strerror(err));
			goto next;
		}
		break;
	next:
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return rc;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* A dead server or a half-open link is found even without
	 * heartbeats: idle 30 s, then 3 probes 10 s apart. */
	{
		int idle = 30, intvl = 10, cnt = 3;

		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl,
		           sizeof(intvl));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	}

	c->fd = fd;
	c->cur = idx;
	c->rx.len = 0;
	c->tx.len = 0;
	wire_msg_init(&m, WIRE_OP_HELLO, 0);
	m.version = WIRE_VERSION;
	m.client.ptr = c->client_name;
	m.client.len = (uint32_t)strlen(c->client_name);
	m.heartbeat = c->o.heartbeat_ms > 0 ? (uint32_t)c->o.heartbeat_ms : 0;
	if (wire_encode(&c->tx, &m))
		goto fail_mem;
	/* Wait for HELLO_OK (or ERROR) before anything else. */
	for (;;) {
		struct pollfd pfd = {fd, POLLIN | (c->tx.len ? POLLOUT : 0), 0};
		int64_t left = until - now_ms();
		size_t body;
		int s;

		if (c->tx.len && flush_some(c))
			goto fail_io;
		s = wire_split(c->rx.data, c->rx.len, WIRE_MAX_FRAME_DEFAULT,
		               &body);
		if (s == WIRE_SPLIT_TOOBIG) {
			set_err(c, RAFTMQ_EBADREPLY, "%s: bad hello reply",
			        sv->text);
			goto fail_io;
		}
		if (s == WIRE_SPLIT_FRAME) {
			if (wire_decode(c->rx.data + WIRE_PREFIX, body, &m,
			                NULL, 0)) {
				set_err(c, RAFTMQ_EBADREPLY, "%s: %s", sv->text,
				        m.err);
				goto fail_io;
			}
			if (m.op == WIRE_OP_ERROR) {
				rc = (int)m.code;
				set_err(c, rc, "%s: %.*s", sv->text,
				        (int)m.message.len, m.message.ptr);
				close(fd);
				c->fd = -1;
				return rc;
			}
			if (m.op != WIRE_OP_HELLO_OK) {
				set_err(c, RAFTMQ_EBADREPLY,
				        "%s: expected HELLO_OK, got %s",
				        sv->text, wire_op_name(m.op));
				goto fail_io;
			}
			c->node_id = m.node_id;
			c->max_frame =
			    m.max_frame ? m.max_frame : WIRE_MAX_FRAME_DEFAULT;
			c->max_payload = m.max_payload;
			c->hb_ms = m.heartbeat > INT32_MAX ? INT32_MAX
			                                   : (int)m.heartbeat;
			c->last_rx = c->last_tx = now_ms();
			wire_buf_consume(&c->rx, WIRE_PREFIX + body);
			c->connected = 1;
			return 0;
		}
		if (left <= 0) {
			set_err(c, RAFTMQ_ECONNECT,
			        "%s: no hello reply in time", sv->text);
			goto fail_io;
		}
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			goto fail_io;
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n;

			if (wire_buf_reserve(&c->rx, READ_CHUNK))
				goto fail_mem;
			n = recv(fd, c->rx.data + c->rx.len, READ_CHUNK, 0);
			if (n == 0) {
				set_err(c, RAFTMQ_ECONNECT,
				        "%s: closed during hello", sv->text);
				goto fail_io;
			}
			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				set_err(c, RAFTMQ_ECONNECT, "%s: %s", sv->text,
				        strerror(errno));
				goto fail_io;
			}
			if (n > 0)
				c->rx.len += (size_t)n;
		}
	}
fail_mem:
	set_err(c, RAFTMQ_ENOMEM, "out of memory");
fail_io:
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->rx.len = 0;
	c->tx.len = 0;
	return RAFTMQ_ECONNECT;
}

static int cmp_slot(const void *a, const void *b, void *arg)
{
	const struct pub *p = arg;
	uint64_t x = p[*(const unsigned *)a].req_id;
	uint64_t y = p[*(const unsigned *)b].req_id;

	return x < y ? -1 : x > y;
}

static int send_registration(struct raftmq *c, struct consumer *k)
{
	struct wire_msg m;

	wire_msg_init(&m, WIRE_OP_CONSUME, KIND_REG << KIND_SHIFT | k->handle);
	m.queue.ptr = k->queue;
	m.queue.len = (uint32_t)strlen(k->queue);
	m.prefetch = k->prefetch;
	return wire_encode(&c->tx, &m);
}

/* After a (re)connect: re-register consumers, resend unconfirmed publishes
 * in their original order. */
static int after_connect(struct raftmq *c)
{
	unsigned *order, n = 0;

	for (struct consumer *k = c->consumers; k; k = k->next)
		if (send_registration(c, k))
			return RAFTMQ_ENOMEM;
	if (raftmq_pending(c) == 0)
		return 0;
	order = malloc(c->window * sizeof(*order));
	if (order == NULL)
		return RAFTMQ_ENOMEM;
	for (unsigned i = 0; i < c->window; i++)
		if (c->pubs[i].state == P_QUEUED)
			order[n++] = i;
	qsort_r(order, n, sizeof(*order), cmp_slot, c->pubs);
	for (unsigned i = 0; i < n; i++) {
		struct pub *p = &c->pubs[order[i]];

		if (wire_buf_append(&c->tx, p->frame.data, p->frame.len)) {
			free(order);
			return RAFTMQ_ENOMEM;
		}
		p->state = P_SENT;
	}
	free(order);
	return 0;
}

/* Finds the server whose text equals the leader hint, or -1. */
static int hint_index(struct raftmq *c)
{
	for (unsigned i = 0; i < c->n_servers; i++)
		if (strcmp(c->servers[i].text, c->leader_hint) == 0)
			return (int)i;
	return -1;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

	if (ms > 0)
		nanosleep(&ts, NULL);
}

/* Connects to the first server that answers, rotating through the list
 * with a bounded backoff between rounds, until `deadline`. */
static int conn_open(struct raftmq *c, int64_t deadline)
{
	int rc = RAFTMQ_ECONNECT;

	if (c->connected)
		return 0;
	if (c->follow_hint) {
		int h = hint_index(c);

		c->follow_hint = 0;
		if (h >= 0)
			c->cur = (unsigned)h;
	}
	for (;;) {
		for (unsigned i = 0; i < c->n_servers; i++) {
			unsigned idx = (c->cur + i) % c->n_servers;

			rc = conn_try(c, idx, deadline);
			if (rc == 0) {
				c->backoff = 0;
				rc = after_connect(c);
				if (rc) {
					conn_lost(c, "out of memory");
					return set_err(c, rc, "out of memory");
				}
				return 0;
			}
			if (rc == RAFTMQ_EVERSION || rc == RAFTMQ_ENOMEM)
				return rc;
			if (now_ms() >= deadline)
				return RAFTMQ_ECONNECT;
		}
		c->backoff = c->backoff ? c->backoff * 2 : 50;
		if (c->backoff > (unsigned)c->o.backoff_max_ms)
			c->backoff = (unsigned)c->o.backoff_max_ms;
		{
			int64_t left = deadline - now_ms();

			sleep_ms(left < (int64_t)c->backoff
			             ? left
			             : (int64_t)c->backoff);
		}
		if (now_ms() >= deadline)
			return rc;
	}
}

int raftmq_connect(struct raftmq *c)
{
	return conn_open(c, now_ms() + c->o.timeout_ms);
}

/* ------------------------------------------------------------------ */
/* Publish slots                                                        */

static void pub_free(struct raftmq *c, unsigned slot)
{
	struct pub *p = &c->pubs[slot];

	if (p->state == P_RETRY)
		c->n_retry--;
	p->state = P_FREE;
	p->req_id = 0;
	p->cb = NULL;
	c->free_slots[c->n_free++] = slot;
}

static void pub_finish(struct raftmq *c, unsigned slot, int status,
                       const struct raftmq_confirm *conf)
{
	struct pub *p = &c->pubs[slot];
	raftmq_confirm_cb cb = p->cb;
	void *arg = p->arg;
	struct raftmq_confirm empty;

	if (status && c->first_async_error == 0)
		c->first_async_error = status;
	if (conf == NULL) {
		memset(&empty, 0, sizeof(empty));
		empty.id = p->id;
		conf = &empty;
	}
	pub_free(c, slot);
	/* The slot's id buffer stays intact until the slot is reused, which
	 * cannot happen during the callback. */
	if (cb)
		cb(arg, status, conf);
}

/* Fails publishes whose deadline passed; sends due retries. */
static void scan_pubs(struct raftmq *c, int force)
{
	int64_t now = now_ms();

	if (!force && c->n_retry == 0 && now - c->last_scan < SCAN_MS)
		return;
	c->last_scan = now;
	for (unsigned i = 0; i < c->window; i++) {
		struct pub *p = &c->pubs[i];

		if (p->state == P_FREE)
			continue;
		if (now >= p->deadline) {
			set_err(c, RAFTMQ_ETIMEOUT,
			        "publish %s not confirmed in time", p->id);
			pub_finish(c, i, RAFTMQ_ETIMEOUT, NULL);
			continue;
		}
		if (p->state == P_RETRY && now >= p->retry_at) {
			c->n_retry--;
			if (c->connected &&
			    wire_buf_append(&c->tx, p->frame.data,
			                    p->frame.len) == 0)
				p->state = P_SENT;
			else
				p->state = P_QUEUED;
		}
	}
}

static void pub_reply(struct raftmq *c, unsigned slot, const struct wire_msg *m)
{
	struct pub *p = &c->pubs[slot];

	if (m->op == WIRE_OP_OK) {
		struct raftmq_confirm conf = {m->seq, m->queues, m->duplicate,
		                              p->id};

		pub_finish(c, slot, 0, &conf);
		return;
	}
	if (wire_retryable((int)m->code) && now_ms() < p->deadline) {
		p->backoff = p->backoff ? p->backoff * 2 : 20;
		if (p->backoff > (unsigned)c->o.backoff_max_ms)
			p->backoff = (unsigned)c->o.backoff_max_ms;
		p->retry_at = now_ms() + p->backoff;
		p->state = P_RETRY;
		c->n_retry++;
		return;
	}
	set_err(c, (int)m->code, "publish %s: %.*s", p->id, (int)m->message.len,
	        m->message.ptr);
	pub_finish(c, slot, (int)m->code, NULL);
}

/* ------------------------------------------------------------------ */
/* Deliveries                                                           */

static char *put_str(char **w, const char *s, size_t n)
{
	char *r = *w;

	if (n)
		memcpy(r, s, n);
	r[n] = '\0';
	*w += n + 1;
	return r;
}

static int push_delivery(struct raftmq *c, const struct wire_msg *m)
{
	size_t size =
	    sizeof(struct ddel) + m->n_headers * sizeof(struct raftmq_header) +
	    m->queue.len + m->id.len + m->type.len + m->correlation_id.len +
	    m->reply_to.len + m->payload.len + 6;
	struct ddel *e;
	struct raftmq_header *h;
	char *w;

	for (uint32_t i = 0; i < m->n_headers; i++)
		size += m->headers[i].key_len + m->headers[i].val_len + 2;
	e = malloc(size);
	if (e == NULL)
		return -1;
	h = (struct raftmq_header *)(e + 1);
	w = (char *)(h + m->n_headers);
	e->next = NULL;
	e->d.consumer = m->consumer;
	e->d.queue_id = m->queue_id;
	e->d.seq = m->seq;
	e->d.delivery_count = m->delivery_count;
	e->d.redelivered = m->redelivered;
	e->d.timestamp = m->timestamp;
	e->d.queue = put_str(&w, m->queue.ptr, m->queue.len);
	e->d.id = put_str(&w, m->id.ptr, m->id.len);
	e->d.type = put_str(&w, m->type.ptr, m->type.len);
	e->d.correlation_id =
	    put_str(&w, m->correlation_id.ptr, m->correlation_id.len);
	e->d.reply_to = put_str(&w, m->reply_to.ptr, m->reply_to.len);
	for (uint32_t i = 0; i < m->n_headers; i++) {
		h[i].key =
		    put_str(&w, m->headers[i].key, m->headers[i].key_len);
		h[i].value =
		    put_str(&w, m->headers[i].val, m->headers[i].val_len);
	}
	e->d.headers = h;
	e->d.n_headers = m->n_headers;
	e->d.payload = put_str(&w, m->payload.ptr, m->payload.len);
	e->d.payload_len = m->payload.len;
	if (c->dq_tail)
		c->dq_tail->next = e;
	else
		c->dq_head = e;
	c->dq_tail = e;
	return 0;
}

void raftmq_delivery_free(struct raftmq_delivery *d)
{
	free(d); /* first member of its struct ddel */
}

static struct raftmq_delivery *pop_delivery(struct raftmq *c)
{
	struct ddel *e = c->dq_head;

	if (e == NULL)
		return NULL;
	c->dq_head = e->next;
	if (c->dq_head == NULL)
		c->dq_tail = NULL;
	return &e->d;
}

/* ------------------------------------------------------------------ */
/* Dispatch and the I/O loop                                            */

static struct consumer *consumer_by_server_id(struct raftmq *c, uint64_t id)
{
	for (struct consumer *k = c->consumers; k; k = k->next)
		if (k->server_id == id)
			return k;
	return NULL;
}

static void consumer_remove(struct raftmq *c, struct consumer *k)
{
	for (struct consumer **pp = &c->consumers; *pp; pp = &(*pp)->next)
		if (*pp == k) {
			*pp = k->next;
			free(k->queue);
			free(k);
			return;
		}
}

static void note_hint(struct raftmq *c, const struct wire_msg *m)
{
	if (m->code == WIRE_ENOTLEADER && m->leader.len &&
	    m->leader.len < sizeof(c->leader_hint)) {
		memcpy(c->leader_hint, m->leader.ptr, m->leader.len);
		c->leader_hint[m->leader.len] = '\0';
		if (hint_index(c) >= 0)
			c->follow_hint = 1;
	}
}

static int dispatch(struct raftmq *c, const struct wire_msg *m)
{
	uint64_t kind = m->req_id >> KIND_SHIFT;

	switch (m->op) {
	case WIRE_OP_DELIVER:
		if (push_delivery(c, m)) {
			conn_lost(c, "out of memory");
			return -1;
		}
		return 0;
	case WIRE_OP_CANCELLED: {
		struct consumer *k = consumer_by_server_id(c, m->consumer);

		/* A retryable reason (the proxy lost its leader, a failover)
		 * means "register again"; anything else is final. */
		if (k && wire_retryable((int)m->reason)) {
			k->server_id = 0;
			c->reg_retry = 1;
			return 0;
		}
		set_err(c, RAFTMQ_ECANCELLED,
		        "consumer %llu cancelled by the server: %.*s",
		        (unsigned long long)m->consumer, (int)m->message.len,
		        m->message.ptr);
		if (k)
			consumer_remove(c, k);
		c->cancelled = 1;
		return 0;
	}
	case WIRE_OP_OK:
	case WIRE_OP_ERROR:
		break;
	default:
		return 0; /* ignore what we do not expect (HELLO_OK twice) */
	}
	if (m->op == WIRE_OP_ERROR)
		note_hint(c, m);
	if (m->req_id == 0) {
		/* A connection-level error: the server closes after it. */
		set_err(c, (int)m->code, "server %s: %.*s",
		        c->servers[c->cur].text, (int)m->message.len,
		        m->message.ptr);
		conn_lost(c, NULL);
		return -1;
	}
	if (kind == KIND_PUB) {
		unsigned slot = (unsigned)(m->req_id & ((1u << SLOT_BITS) - 1));

		if (slot < c->window && c->pubs[slot].req_id == m->req_id &&
		    c->pubs[slot].state == P_SENT)
			pub_reply(c, slot, m);
		return 0;
	}
	if (kind == KIND_CALL) {
		if (m->req_id != c->call_id || c->call_done)
			return 0;
		c->call_done = 1;
		if (m->op == WIRE_OP_OK) {
			c->call_status = 0;
			if (c->call_fn)
				c->call_fn(c, c->call_ctx, m);
		} else {
			c->call_status = (int)m->code;
			set_err(c, (int)m->code, "%.*s", (int)m->message.len,
			        m->message.ptr);
		}
		return 0;
	}
	if (kind == KIND_ACK) {
		if (c->acks_out)
			c->acks_out--;
		/* ENOMSG: the message was settled already (redelivered and
		 * acked twice, or expired); nothing to report. */
		if (m->op == WIRE_OP_ERROR && m->code != WIRE_ENOMSG &&
		    c->ack_error == 0) {
			c->ack_error = (int)m->code;
			set_err(c, (int)m->code, "ack: %.*s",
			        (int)m->message.len, m->message.ptr);
		}
		return 0;
	}
	if (kind == KIND_REG) {
		uint64_t h = m->req_id & ((1ull << KIND_SHIFT) - 1);

		for (struct consumer *k = c->consumers; k; k = k->next) {
			if (k->handle != h)
				continue;
			if (m->op == WIRE_OP_OK) {
				k->server_id = m->consumer;
				k->queue_id = m->queue_id;
			} else if (wire_retryable((int)m->code)) {
				c->reg_retry = 1;
			} else {
				set_err(c, RAFTMQ_ECANCELLED,
				        "consumer on %s could not be "
				        "re-registered: %.*s",
				        k->queue, (int)m->message.len,
				        m->message.ptr);
				consumer_remove(c, k);
				c->cancelled = 1;
			}
			break;
		}
	}
	return 0;
}

/* One round of I/O: waits at most until `deadline` for the socket, reads and
 * dispatches frames, writes pending output. Returns 0, or -1 when the
 * connection was lost (then the caller reconnects). */
static int io_wait(struct raftmq *c, int64_t deadline)
{
	struct pollfd pfd;
	int64_t left;
	int n;

	scan_pubs(c, 0);
	if (!c->connected)
		return -1;
	if (c->reg_retry) {
		c->reg_retry = 0;
		for (struct consumer *k = c->consumers; k; k = k->next)
			if (k->server_id == 0 && send_registration(c, k))
				return -1;
	}
	if (c->hb_ms > 0 && c->tx.len == 0 &&
	    now_ms() - c->last_tx >= c->hb_ms / 2) {
		struct wire_msg hb;

		wire_msg_init(&hb, WIRE_OP_HEARTBEAT, 0);
		if (wire_encode(&c->tx, &hb))
			return -1;
	}
	if (c->tx.len && flush_some(c))
		return -1;
	left = deadline - now_ms();
	if (left < 0)
		left = 0;
	if (c->n_retry && left > 10)
		left = 10;
	if (raftmq_pending(c) && left > SCAN_MS)
		left = SCAN_MS;
	if (c->hb_ms > 0 && left > c->hb_ms / 2)
		left = c->hb_ms / 2 > 0 ? c->hb_ms / 2 : 1;
	pfd.fd = c->fd;
	pfd.events = POLLIN | (c->tx.len ? POLLOUT : 0);
	pfd.revents = 0;
	n = poll(&pfd, 1, (int)(left > 1000000 ? 1000000 : left));
	if (n < 0) {
		if (errno == EINTR)
			return 0;
		conn_lost(c, strerror(errno));
		return -1;
	}
	if (pfd.revents & POLLOUT && flush_some(c))
		return -1;
	if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
		const char *why = NULL;
		int closed = read_some(c, &why);

		/* Dispatch what arrived even if the peer then closed: an
		 * ERROR frame often comes right before the close. */
		if (process_rx(c))
			return -1;
		if (closed) {
			conn_lost(c, why);
			return -1;
		}
	}
	if (c->connected && c->hb_ms > 0 &&
	    now_ms() - c->last_rx >= (int64_t)HB_MISSES * c->hb_ms) {
		char why[96];

		snprintf(why, sizeof(why),
		         "server silent for %lld ms (heartbeat %d ms)",
		         (long long)(now_ms() - c->last_rx), c->hb_ms);
		conn_lost(c, why);
		return -1;
	}
	if (c->follow_hint && c->connected) {
		/* A publish was told where the leader is: move there. */
		conn_lost(c, "moving to the leader");
		return -1;
	}
	return c->connected ? 0 : -1;
}

/* Runs I/O (reconnecting as needed) until *flag is set or the deadline. */
static int run_until(struct raftmq *c, const int *flag, int64_t deadline)
{
	while (!*flag) {
		int rc;

		if (now_ms() >= deadline) {
			scan_pubs(c, 1);
			if (*flag)
				break;
			return set_err(c, RAFTMQ_ETIMEOUT, "timed out");
		}
		if (!c->connected) {
			rc = conn_open(c, deadline);
			scan_pubs(c, 1);
			if (rc && !*flag)
				return rc;
			continue;
		}
		io_wait(c, deadline);
	}
	return 0;
}

/* A blocking request: sends `req`, waits for its OK (handler called) or
 * ERROR; retries retryable errors and lost connections until the deadline.
 */
static int call(struct raftmq *c, struct wire_msg *req, call_handler fn,
                void *ctx)
{
	int64_t deadline = now_ms() + c->o.timeout_ms;
	unsigned backoff = 0;

	c->call_attempts = 0;
	for (;;) {
		int rc;

		if (!c->connected) {
			rc = conn_open(c, deadline);
			if (rc)
				return rc;
		}
		req->req_id = KIND_CALL << KIND_SHIFT | ++c->seq;
		c->call_id = req->req_id;
		c->call_done = 0;
		c->call_fn = fn;
		c->call_ctx = ctx;
		c->call_attempts++;
		if (wire_encode(&c->tx, req))
			return set_err(c, RAFTMQ_ENOMEM, "out of memory");
		while (!c->call_done && c->connected) {
			if (now_ms() >= deadline) {
				c->call_id = 0;
				return set_err(c, RAFTMQ_ETIMEOUT,
				               "%s: no reply in time",
				               wire_op_name(req->op));
			}
			io_wait(c, deadline);
		}
		c->call_id = 0;
		if (c->call_done) {
			int st = c->call_status;

			if (st == 0 || !wire_retryable(st))
				return st;
			if (now_ms() >= deadline)
				return st;
			if (c->follow_hint && c->connected)
				conn_lost(c, "moving to the leader");
			backoff = backoff ? backoff * 2 : 20;
			if (backoff > (unsigned)c->o.backoff_max_ms)
				backoff = (unsigned)c->o.backoff_max_ms;
			{
				int64_t until = now_ms() + backoff;

				if (until > deadline)
					until = deadline;
				while (c->connected && now_ms() < until)
					io_wait(c, until);
			}
		}
		if (now_ms() >= deadline)
			return set_err(c, RAFTMQ_ETIMEOUT, "%s: timed out",
			               wire_op_name(req->op));
	}
}

/* ------------------------------------------------------------------ */
/* Administration                                                       */

static struct wire_str wstr(const char *s)
{
	struct wire_str w = {s ? s : "", s ? (uint32_t)strlen(s) : 0};

	return w;
}

struct declare_ctx {
	uint32_t *queue_id;
	int *created;
};

static void declare_done(struct raftmq *c, void *ctx, const struct wire_msg *m)
{
	struct declare_ctx *d = ctx;

	(void)c;
	if (d->queue_id)
		*d->queue_id = m->queue_id;
	if (d->created)
		*d->created = m->created;
}

int raftmq_queue_declare(struct raftmq *c, const char *name,
                         const struct raftmq_queue_opts *opts,
                         uint32_t *queue_id, int *created)
{
	struct wire_msg m;
	struct declare_ctx d = {queue_id, created};

	if (name == NULL)
		return set_err(c, RAFTMQ_EARG, "queue name missing");
	wire_msg_init(&m, WIRE_OP_QUEUE_DECLARE, 0);
	m.name = wstr(name);
	if (opts) {
		m.opts.ack_timeout = opts->ack_timeout;
		m.opts.max_deliveries = opts->max_deliveries;
		m.opts.dlq = wstr(opts->dlq);
		m.opts.message_ttl = opts->message_ttl;
		m.opts.delay = opts->delay;
		m.opts.max_length = opts->max_length;
		m.opts.max_bytes = opts->max_bytes;
		m.opts.overflow = (uint8_t)opts->overflow;
		m.opts.dedup_window = opts->dedup_window;
		m.opts.exclusive = opts->exclusive != 0;
		m.opts.auto_delete = opts->auto_delete != 0;
	}
	return call(c, &m, declare_done, &d);
}

static void removed_done(struct raftmq *c, void *ctx, const struct wire_msg *m)
{
	(void)c;
	if (ctx)
		*(uint64_t *)ctx = m->removed;
}

int raftmq_queue_delete(struct raftmq *c, const char *name, int if_empty,
                        uint64_t *removed)
{
	struct wire_msg m;
	int rc;

	if (name == NULL)
		return set_err(c, RAFTMQ_EARG, "queue name missing");
	wire_msg_init(&m, WIRE_OP_QUEUE_DELETE, 0);
	m.name = wstr(name);
	m.if_empty = if_empty != 0;
	rc = call(c, &m, removed_done, removed);
	/* A retry after an unknown outcome may find the queue gone. */
	if (rc == RAFTMQ_ENOQUEUE && c->call_attempts > 1)
		rc = 0;
	return rc;
}

int raftmq_queue_purge(struct raftmq *c, const char *name, uint64_t *removed)
{
	struct wire_msg m;

	if (name == NULL)
		return set_err(c, RAFTMQ_EARG, "queue name missing");
	wire_msg_init(&m, WIRE_OP_QUEUE_PURGE, 0);
	m.name = wstr(name);
	return call(c, &m, removed_done, removed);
}

static void copy_cstr(char *dst, size_t cap, struct wire_str s)
{
	size_t n = s.len < cap - 1 ? s.len : cap - 1;

	memcpy(dst, s.ptr, n);
	dst[n] = '\0';
}

static void stats_from_wire(struct raftmq_queue_stats *o,
                            const struct wire_queue_stats *s)
{
	memset(o, 0, sizeof(*o));
	copy_cstr(o->name, sizeof(o->name), s->name);
	o->queue_id = s->queue_id;
	o->ready = s->ready;
	o->delayed = s->delayed;
	o->in_flight = s->in_flight;
	o->bytes = s->bytes;
	o->consumers = s->consumers;
	o->published = s->published;
	o->acked = s->acked;
	o->dead_lettered = s->dead_lettered;
	o->expired = s->expired;
	o->dropped = s->dropped;
	o->deduplicated = s->deduplicated;
	o->last_seq = s->last_seq;
	o->opts.ack_timeout = s->opts.ack_timeout;
	o->opts.max_deliveries = s->opts.max_deliveries;
	copy_cstr(o->dlq_buf, sizeof(o->dlq_buf), s->opts.dlq);
	o->opts.dlq = o->dlq_buf;
	o->opts.message_ttl = s->opts.message_ttl;
	o->opts.delay = s->opts.delay;
	o->opts.max_length = s->opts.max_length;
	o->opts.max_bytes = s->opts.max_bytes;
	o->opts.overflow = s->opts.overflow;
	o->opts.dedup_window = s->opts.dedup_window;
	o->opts.exclusive = s->opts.exclusive;
	o->opts.auto_delete = s->opts.auto_delete;
}

static void stats_done(struct raftmq *c, void *ctx, const struct wire_msg *m)
{
	(void)c;
	stats_from_wire(ctx, &m->stats);
}

int raftmq_queue_stats(struct raftmq *c, const char *name,
                       struct raftmq_queue_stats *out)
{
	struct wire_msg m;

	if (name == NULL || out == NULL)
		return set_err(c, RAFTMQ_EARG, "queue name missing");
	wire_msg_init(&m, WIRE_OP_QUEUE_STATS, 0);
	m.name = wstr(name);
	return call(c, &m, stats_done, out);
}

struct list_ctx {
	void (*qcb)(void *arg, const struct raftmq_queue_stats *s);
	void (*tcb)(void *arg, const char *name, int kind,
	            const struct raftmq_binding *b, uint32_t n);
	void *arg;
	int rc;
};

static void qlist_done(struct raftmq *c, void *ctx, const struct wire_msg *m)
{
	struct list_ctx *l = ctx;
	struct wire_iter it;
	struct wire_queue_stats s;
	struct raftmq_queue_stats o;
	int r;

	wire_iter_init(&it, &m->list_raw);
	while ((r = wire_next_queue(&it, &s)) == 1) {
		stats_from_wire(&o, &s);
		l->qcb(l->arg, &o);
	}
	if (r < 0)
		l->rc = set_err(c, RAFTMQ_EBADREPLY, "malformed queue list");
}

int raftmq_queue_list(struct raftmq *c,
                      void (*cb)(void *arg, const struct raftmq_queue_stats *s),
                      void *arg)
{
	struct wire_msg m;
	struct list_ctx l = {cb, NULL, arg, 0};
	int rc;

	if (cb == NULL)
		return set_err(c, RAFTMQ_EARG, "callback missing");
	wire_msg_init(&m, WIRE_OP_QUEUE_LIST, 0);
	rc = call(c, &m, qlist_done, &l);
	return rc ? rc : l.rc;
}

int raftmq_topic_declare(struct raftmq *c, const char *name, int kind)
{
	struct wire_msg m;

	if (name == NULL || kind < 0 || kind > 2)
		return set_err(c, RAFTMQ_EARG, "bad topic name or kind");
	wire_msg_init(&m, WIRE_OP_TOPIC_DECLARE, 0);
	m.name = wstr(name);
	m.kind = (uint8_t)kind;
	return call(c, &m, NULL, NULL);
}

int raftmq_topic_delete(struct raftmq *c, const char *name)
{
	struct wire_msg m;

	if (name == NULL)
		return set_err(c, RAFTMQ_EARG, "topic name missing");
	wire_msg_init(&m, WIRE_OP_TOPIC_DELETE, 0);
	m.name = wstr(name);
	return call(c, &m, NULL, NULL);
}

static int bind_op(struct raftmq *c, uint8_t op, const char *topic,
                   const char *queue, const char *key)
{
	struct wire_msg m;

	if (topic == NULL || queue == NULL)
		return set_err(c, RAFTMQ_EARG, "topic or queue missing");
	wire_msg_init(&m, op, 0);
	m.topic = wstr(topic);
	m.queue = wstr(queue);
	m.key = wstr(key);
	return call(c, &m, NULL, NULL);
}

int raftmq_bind(struct raftmq *c, const char *topic, const char *queue,
                const char *key)
{
	return bind_op(c, WIRE_OP_BIND, topic, queue, key);
}

int raftmq_unbind(struct raftmq *c, const char *topic, const char *queue,
                  const char *key)
{
	return bind_op(c, WIRE_OP_UNBIND, topic, queue, key);
}

static void tlist_done(struct raftmq *c, void *ctx, const struct wire_msg *m)
{
	struct list_ctx *l = ctx;
	struct wire_iter it, bit;
	struct wire_topic t;
	int r;

	wire_iter_init(&it, &m->topics_raw);
	while ((r = wire_next_topic(&it, &t)) == 1) {
		/* Copies: NUL-terminated names and binding strings. */
		size_t size = t.name.len + 1 + t.bindings.len * 2 + 16;
		struct raftmq_binding *b;
		struct wire_binding wb;
		char *buf, *w, *name;
		uint32_t n = 0;
		int br;

		buf = malloc(size + t.bindings.n * sizeof(*b));
		if (buf == NULL) {
			l->rc = set_err(c, RAFTMQ_ENOMEM, "out of memory");
			return;
		}
		b = (struct raftmq_binding *)buf;
		w = buf + t.bindings.n * sizeof(*b);
		name = put_str(&w, t.name.ptr, t.name.len);
		wire_iter_init(&bit, &t.bindings);
		while (n < t.bindings.n &&
		       (br = wire_next_binding(&bit, &wb)) == 1) {
			b[n].queue = put_str(&w, wb.queue.ptr, wb.queue.len);
			b[n].key = put_str(&w, wb.key.ptr, wb.key.len);
			n++;
		}
		l->tcb(l->arg, name, t.kind, b, n);
		free(buf);
	}
	if (r < 0)
		l->rc = set_err(c, RAFTMQ_EBADREPLY, "malformed topic list");
}

int raftmq_topic_list(struct raftmq *c,
                      void (*cb)(void *arg, const char *name, int kind,
                                 const struct raftmq_binding *bindings,
                                 uint32_t n_bindings),
                      void *arg)
{
	struct wire_msg m;
	struct list_ctx l = {NULL, cb, arg, 0};
	int rc;

	if (cb == NULL)
		return set_err(c, RAFTMQ_EARG, "callback missing");
	wire_msg_init(&m, WIRE_OP_TOPIC_LIST, 0);
	rc = call(c, &m, tlist_done, &l);
	return rc ? rc : l.rc;
}

static void status_done(struct raftmq *c, void *ctx, const struct wire_msg *m)
{
	struct raftmq_node_status *s = ctx;
	struct wire_iter it;
	struct wire_member mb;

	(void)c;
	memset(s, 0, sizeof(*s));
	s->node_id = m->node_id;
	copy_cstr(s->role, sizeof(s->role), m->role);
	s->leader_id = m->leader_id;
	s->term = m->term;
	s->commit_index = m->commit_index;
	s->applied_index = m->applied_index;
	s->last_index = m->last_index;
	s->applied = m->applied;
	s->digest = m->digest;
	s->diverged = m->diverged;
	wire_iter_init(&it, &m->members_raw);
	while (s->n_members < RAFTMQ_MAX_MEMBERS &&
	       wire_next_member(&it, &mb) == 1) {
		struct raftmq_member *o = &s->members[s->n_members++];

		o->id = mb.id;
		copy_cstr(o->raft_address, sizeof(o->raft_address),
		          mb.raft_address);
		copy_cstr(o->client_address, sizeof(o->client_address),
		          mb.client_address);
	}
}

int raftmq_status(struct raftmq *c, struct raftmq_node_status *out)
{
	struct wire_msg m;

	if (out == NULL)
		return set_err(c, RAFTMQ_EARG, "no output");
	wire_msg_init(&m, WIRE_OP_STATUS, 0);
	return call(c, &m, status_done, out);
}

struct config_ctx {
	struct raftmq_config_kv *out;
	uint32_t max, n;
	int rc;
};

static void config_done(struct raftmq *c, void *ctx, const struct wire_msg *m)
{
	struct config_ctx *x = ctx;
	struct wire_iter it;
	struct wire_kv kv;
	int r;

	wire_iter_init(&it, &m->config_raw);
	while ((r = wire_next_config(&it, &kv)) == 1) {
		if (x->n < x->max) {
			copy_cstr(x->out[x->n].key, sizeof(x->out[x->n].key),
			          kv.key);
			x->out[x->n].value = kv.value;
			x->n++;
		}
	}
	if (r < 0)
		x->rc = set_err(c, RAFTMQ_EBADREPLY, "malformed config list");
}

int raftmq_config_get(struct raftmq *c, struct raftmq_config_kv *out,
                      uint32_t max, uint32_t *n)
{
	struct wire_msg m;
	struct config_ctx x = {out, max, 0, 0};
	int rc;

	if ((out == NULL && max > 0) || n == NULL)
		return set_err(c, RAFTMQ_EARG, "no output");
	wire_msg_init(&m, WIRE_OP_CONFIG_GET, 0);
	rc = call(c, &m, config_done, &x);
	*n = x.n;
	return rc ? rc : x.rc;
}

int raftmq_config_set(struct raftmq *c, const struct raftmq_config_kv *kv,
                      uint32_t n)
{
	struct wire_kv w[RAFTMQ_MAX_CONFIG];
	struct wire_msg m;

	if (kv == NULL || n == 0 || n > RAFTMQ_MAX_CONFIG)
		return set_err(c, RAFTMQ_EARG, "1 to 64 keys");
	for (uint32_t i = 0; i < n; i++) {
		w[i].key = wstr(kv[i].key);
		w[i].value = kv[i].value;
	}
	wire_msg_init(&m, WIRE_OP_CONFIG_SET, 0);
	m.config = w;
	m.n_config = n;
	return call(c, &m, NULL, NULL);
}

/* ------------------------------------------------------------------ */
/* Publishing                                                           */

/* Encodes `msg` into a free slot. Returns the slot via *out. */
static int pub_prepare(struct raftmq *c, const struct raftmq_message *msg,
                       raftmq_confirm_cb cb, void *arg, unsigned *out)
{
	struct wire_header stack[32], *hdrs = stack;
	struct wire_msg m;
	struct pub *p;
	unsigned slot;
	int rc;

	if (msg == NULL || (msg->payload == NULL && msg->payload_len))
		return set_err(c, RAFTMQ_EARG, "bad message");
	if (msg->n_headers > MAX_HDRS)
		return set_err(c, RAFTMQ_EARG, "too many headers");
	if (msg->n_headers > 32) {
		hdrs = malloc(msg->n_headers * sizeof(*hdrs));
		if (hdrs == NULL)
			return set_err(c, RAFTMQ_ENOMEM, "out of memory");
	}
	slot = c->free_slots[c->n_free - 1];
	p = &c->pubs[slot];
	if (msg->id && msg->id[0])
		snprintf(p->id, sizeof(p->id), "%s", msg->id);
	else
		snprintf(p->id, sizeof(p->id), "%s-%llu", c->id_prefix,
		         (unsigned long long)++c->id_counter);
	wire_msg_init(
	    &m, WIRE_OP_PUBLISH,
	    KIND_PUB << KIND_SHIFT |
	        ((++c->seq << SLOT_BITS) & ((1ull << KIND_SHIFT) - 1)) | slot);
	m.topic = wstr(msg->topic);
	m.key = wstr(msg->key);
	m.id = wstr(p->id);
	m.type = wstr(msg->type);
	m.correlation_id = wstr(msg->correlation_id);
	m.reply_to = wstr(msg->reply_to);
	for (uint32_t i = 0; i < msg->n_headers; i++) {
		const char *k = msg->headers[i].key ? msg->headers[i].key : "";
		const char *v =
		    msg->headers[i].value ? msg->headers[i].value : "";

		hdrs[i].key = k;
		hdrs[i].key_len = (uint32_t)strlen(k);
		hdrs[i].val = v;
		hdrs[i].val_len = (uint32_t)strlen(v);
	}
	m.headers = hdrs;
	m.n_headers = msg->n_headers;
	m.payload.ptr = msg->payload ? msg->payload : "";
	m.payload.len = (uint32_t)msg->payload_len;
	m.ttl = msg->ttl;
	m.delay = msg->delay;
	if (msg->payload_len > UINT32_MAX ||
	    (c->max_payload && msg->payload_len > c->max_payload)) {
		rc = set_err(c, RAFTMQ_ETOOBIG,
		             "payload of %zu bytes exceeds the limit %u",
		             msg->payload_len, c->max_payload);
		goto out;
	}
	p->frame.len = 0;
	rc = wire_encode(&p->frame, &m);
	if (rc) {
		rc = set_err(c, RAFTMQ_ENOMEM, "out of memory");
		goto out;
	}
	if (p->frame.len - WIRE_PREFIX > c->max_frame) {
		rc = set_err(c, RAFTMQ_ETOOBIG,
		             "message of %zu bytes exceeds the frame limit %u",
		             p->frame.len, c->max_frame);
		goto out;
	}
	c->n_free--;
	p->req_id = m.req_id;
	p->cb = cb;
	p->arg = arg;
	p->deadline = now_ms() + c->o.timeout_ms;
	p->backoff = 0;
	p->state = P_QUEUED;
	if (c->connected) {
		if (wire_buf_append(&c->tx, p->frame.data, p->frame.len)) {
			pub_free(c, slot);
			rc = set_err(c, RAFTMQ_ENOMEM, "out of memory");
			goto out;
		}
		p->state = P_SENT;
	}
	*out = slot;
out:
	if (hdrs != stack)
		free(hdrs);
	return rc;
}

int raftmq_publish_async(struct raftmq *c, const struct raftmq_message *msg,
                         raftmq_confirm_cb cb, void *arg)
{
	int64_t deadline = now_ms() + c->o.timeout_ms;
	unsigned slot;
	int rc;

	/* Keep the window bounded: make room first. */
	while (c->n_free == 0) {
		if (now_ms() >= deadline)
			return set_err(c, RAFTMQ_ETIMEOUT,
			               "publish window stayed full");
		if (!c->connected) {
			rc = conn_open(c, deadline);
			scan_pubs(c, 1);
			if (rc && c->n_free == 0)
				return rc;
			continue;
		}
		io_wait(c, deadline);
	}
	if (!c->connected) {
		rc = conn_open(c, deadline);
		if (rc)
			return rc;
	}
	rc = pub_prepare(c, msg, cb, arg, &slot);
	if (rc)
		return rc;
	/* Send right away (non-blocking); what the socket does not take now
	 * is written by the poll loop. */
	if (c->connected)
		flush_some(c);
	return 0;
}

struct sync_pub {
	int done;
	int status;
	struct raftmq_confirm conf;
};

static void sync_pub_cb(void *arg, int status, const struct raftmq_confirm *cf)
{
	struct sync_pub *s = arg;

	s->done = 1;
	s->status = status;
	s->conf = *cf;
}

int raftmq_publish(struct raftmq *c, const struct raftmq_message *m,
                   struct raftmq_confirm *out)
{
	struct sync_pub s = {0, 0, {0, 0, 0, NULL}};
	int64_t deadline = now_ms() + c->o.timeout_ms;
	unsigned slot;
	int rc;

	while (c->n_free == 0) {
		rc = run_until(c, &(int){0}, now_ms() + 10);
		if (rc != RAFTMQ_ETIMEOUT && rc)
			return rc;
		if (now_ms() >= deadline)
			return set_err(c, RAFTMQ_ETIMEOUT,
			               "publish window stayed full");
	}
	if (!c->connected) {
		rc = conn_open(c, deadline);
		if (rc)
			return rc;
	}
	rc = pub_prepare(c, m, sync_pub_cb, &s, &slot);
	if (rc)
		return rc;
	rc = run_until(c, &s.done, c->pubs[slot].deadline + 1);
	if (!s.done) {
		/* Gave up (no server): forget the slot. */
		if (c->pubs[slot].cb == sync_pub_cb && c->pubs[slot].arg == &s)
			pub_free(c, slot);
		return rc;
	}
	if (out) {
		*out = s.conf;
		out->id = NULL; /* the slot's buffer may be reused */
	}
	return s.status;
}

int raftmq_flush(struct raftmq *c)
{
	int64_t deadline = now_ms() + c->o.timeout_ms;

	while (c->tx.len) {
		if (now_ms() >= deadline)
			return set_err(c, RAFTMQ_ETIMEOUT, "flush timed out");
		if (!c->connected) {
			int rc = conn_open(c, deadline);

			if (rc)
				return rc;
			continue;
		}
		io_wait(c, deadline);
	}
	return 0;
}

int raftmq_wait_confirms(struct raftmq *c, int timeout_ms)
{
	int64_t deadline =
	    now_ms() + (timeout_ms < 0 ? c->o.timeout_ms : timeout_ms);
	int rc;

	for (;;) {
		if (raftmq_pending(c) == 0) {
			rc = c->first_async_error;
			c->first_async_error = 0;
			return rc;
		}
		if (now_ms() >= deadline) {
			scan_pubs(c, 1);
			if (raftmq_pending(c) == 0)
				continue;
			return set_err(c, RAFTMQ_ETIMEOUT,
			               "%u publishes not confirmed in time",
			               raftmq_pending(c));
		}
		if (!c->connected) {
			rc = conn_open(c, deadline);
			scan_pubs(c, 1);
			if (rc && raftmq_pending(c)) {
				if (now_ms() >= deadline)
					return rc;
			}
			continue;
		}
		io_wait(c, deadline);
	}
}

/* ------------------------------------------------------------------ */
/* Consuming                                                            */

struct consume_ctx {
	uint64_t consumer;
	uint32_t queue_id;
};

static void consume_done(struct raftmq *c, void *ctx, const struct wire_msg *m)
{
	struct consume_ctx *k = ctx;

	(void)c;
	k->consumer = m->consumer;
	k->queue_id = m->queue_id;
}

int raftmq_consume(struct raftmq *c, const char *queue, uint32_t prefetch,
                   uint64_t *handle)
{
	struct wire_msg m;
	struct consume_ctx r = {0, 0};
	struct consumer *k;
	int rc;

	if (queue == NULL || prefetch == 0)
		return set_err(c, RAFTMQ_EARG,
		               "queue and prefetch >= 1 needed");
	k = calloc(1, sizeof(*k));
	if (k == NULL || (k->queue = strdup(queue)) == NULL) {
		free(k);
		return set_err(c, RAFTMQ_ENOMEM, "out of memory");
	}
	k->prefetch = prefetch;
	k->handle = c->next_handle++;
	wire_msg_init(&m, WIRE_OP_CONSUME, 0);
	m.queue = wstr(queue);
	m.prefetch = prefetch;
	rc = call(c, &m, consume_done, &r);
	if (rc) {
		free(k->queue);
		free(k);
		return rc;
	}
	/* If the connection dropped after the OK, reconnect re-registers all
	 * consumers in the list; this one joins it now. */
	k->server_id = r.consumer;
	k->queue_id = r.queue_id;
	k->next = c->consumers;
	c->consumers = k;
	if (handle)
		*handle = k->handle;
	return 0;
}

int raftmq_cancel(struct raftmq *c, uint64_t handle)
{
	struct consumer *k;
	struct wire_msg m;
	int rc = 0;

	for (k = c->consumers; k; k = k->next)
		if (k->handle == handle)
			break;
	if (k == NULL)
		return set_err(c, RAFTMQ_ENOCONSUMER, "no such consumer");
	if (c->connected && k->server_id) {
		wire_msg_init(&m, WIRE_OP_CANCEL, 0);
		m.consumer = k->server_id;
		rc = call(c, &m, NULL, NULL);
		/* After a reconnect the old consumer is already gone. */
		if (rc == RAFTMQ_ENOCONSUMER)
			rc = 0;
	}
	for (k = c->consumers; k; k = k->next)
		if (k->handle == handle) {
			consumer_remove(c, k);
			break;
		}
	return rc;
}

int raftmq_next_delivery(struct raftmq *c, int timeout_ms,
                         struct raftmq_delivery **d)
{
	int64_t deadline =
	    timeout_ms < 0 ? INT64_MAX / 2 : now_ms() + timeout_ms;
	int first = 1;

	*d = NULL;
	for (;;) {
		if ((*d = pop_delivery(c)) != NULL)
			return 0;
		if (c->cancelled) {
			c->cancelled = 0;
			return RAFTMQ_ECANCELLED;
		}
		if (!first && now_ms() >= deadline)
			return set_err(c, RAFTMQ_ETIMEOUT, "no delivery");
		first = 0;
		if (!c->connected) {
			int rc;

			if (c->consumers == NULL && raftmq_pending(c) == 0) {
				sleep_ms(deadline - now_ms() > 10
				             ? 10
				             : deadline - now_ms());
				continue;
			}
			rc = conn_open(c, deadline);
			if (rc && rc != RAFTMQ_ECONNECT)
				return rc;
			continue;
		}
		io_wait(c, deadline);
	}
}

void raftmq_set_delivery_cb(struct raftmq *c, raftmq_delivery_cb cb, void *arg)
{
	c->dcb = cb;
	c->dcb_arg = arg;
}

int raftmq_poll(struct raftmq *c, int timeout_ms)
{
	int64_t deadline = now_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
	int rc = 0;

	do {
		if (!c->connected &&
		    (c->consumers != NULL || raftmq_pending(c))) {
			rc = conn_open(c, deadline);
			if (rc)
				break;
		}
		if (c->connected)
			io_wait(c, deadline);
		if (c->dcb) {
			struct raftmq_delivery *d;

			while ((d = pop_delivery(c)) != NULL)
				c->dcb(c->dcb_arg, d);
		}
		if (c->cancelled) {
			c->cancelled = 0;
			return RAFTMQ_ECANCELLED;
		}
	} while (now_ms() < deadline);
	return rc;
}

static int settle(struct raftmq *c, uint8_t op, uint32_t queue_id, uint64_t seq,
                  int mode, uint64_t timeout)
{
	struct wire_msg m;
	int rc;

	wire_msg_init(&m, op, 0);
	m.queue_id = queue_id;
	m.seq = seq;
	m.mode = (uint8_t)mode;
	m.timeout = timeout;
	rc = call(c, &m, NULL, NULL);
	/* A retried ack whose first attempt went through finds nothing. */
	if (rc == RAFTMQ_ENOMSG && c->call_attempts > 1 && op == WIRE_OP_ACK)
		rc = 0;
	return rc;
}

int raftmq_ack(struct raftmq *c, uint32_t queue_id, uint64_t seq)
{
	return settle(c, WIRE_OP_ACK, queue_id, seq, 0, 0);
}

int raftmq_nack(struct raftmq *c, uint32_t queue_id, uint64_t seq, int mode)
{
	if (mode != RAFTMQ_NACK_REQUEUE && mode != RAFTMQ_NACK_DEADLETTER)
		return set_err(c, RAFTMQ_EARG, "bad nack mode");
	return settle(c, WIRE_OP_NACK, queue_id, seq, mode, 0);
}

int raftmq_extend(struct raftmq *c, uint32_t queue_id, uint64_t seq,
                  uint64_t timeout_ms)
{
	return settle(c, WIRE_OP_EXTEND, queue_id, seq, 0, timeout_ms);
}

int raftmq_ack_async(struct raftmq *c, uint32_t queue_id, uint64_t seq)
{
	int64_t deadline = now_ms() + c->o.timeout_ms;
	struct wire_msg m;

	while (!c->connected || c->acks_out >= c->window) {
		if (now_ms() >= deadline)
			return set_err(c, RAFTMQ_ETIMEOUT, "ack window full");
		if (!c->connected) {
			int rc = conn_open(c, deadline);

			if (rc)
				return rc;
			continue;
		}
		io_wait(c, deadline);
	}
	wire_msg_init(&m, WIRE_OP_ACK, KIND_ACK << KIND_SHIFT | ++c->seq);
	m.queue_id = queue_id;
	m.seq = seq;
	if (wire_encode(&c->tx, &m))
		return set_err(c, RAFTMQ_ENOMEM, "out of memory");
	c->acks_out++;
	flush_some(c);
	return 0;
}

int raftmq_wait_acks(struct raftmq *c, int timeout_ms)
{
	int64_t deadline =
	    now_ms() + (timeout_ms < 0 ? c->o.timeout_ms : timeout_ms);
	int rc;

	while (c->connected && c->acks_out) {
		if (now_ms() >= deadline)
			return set_err(c, RAFTMQ_ETIMEOUT,
			               "%u acks not answered in time",
			               c->acks_out);
		io_wait(c, deadline);
	}
	rc = c->ack_error;
	c->ack_error = 0;
	return rc;
}

static void get_done(struct raftmq *c, void *ctx, const struct wire_msg *m)
{
	(void)c;
	if (ctx)
		*(uint32_t *)ctx = m->count;
}

int raftmq_get(struct raftmq *c, const char *queue, uint32_t max,
               uint64_t timeout_ms, uint32_t *count)
{
	struct wire_msg m;

	if (queue == NULL || max == 0)
		return set_err(c, RAFTMQ_EARG, "queue and max >= 1 needed");
	wire_msg_init(&m, WIRE_OP_GET, 0);
	m.queue = wstr(queue);
	m.max = max;
	m.timeout = timeout_ms;
	return call(c, &m, get_done, count);
}

void raftmq_close(struct raftmq *c)
{
	struct raftmq_delivery *d;

	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	while ((d = pop_delivery(c)) != NULL)
		raftmq_delivery_free(d);
	while (c->consumers)
		consumer_remove(c, c->consumers);
	for (unsigned i = 0; i < c->window; i++)
		wire_buf_free(&c->pubs[i].frame);
	free(c->pubs);
	free(c->free_slots);
	free(c->servers);
	wire_buf_free(&c->rx);
	wire_buf_free(&c->tx);
	free(c);
}
