/* Unit tests of libraftmq against a fake node thread on 127.0.0.1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client/raftmq.h"
#include "wire/wire.h"

#define MAX_IDS 4096

/* A scripted stand-in for a node: answers HELLO, emulates dedup for
 * publishes, and injects faults when told to. */
struct fake {
	int lfd;
	int port;
	pthread_t thread;
	volatile int stop;
	pthread_mutex_t lock;

	/* Behaviour. */
	int hello_error;        /* answer HELLO with this ERROR code */
	int drop_at_publish;    /* close without reply at this publish # */
	int unavailable_first;  /* first N publishes get EUNAVAILABLE */
	int silent;             /* never answer publishes */
	int close_after_ack;    /* close the connection after an ACK */
	int deliver_on_consume; /* DELIVER one message after CONSUME */
	int no_dedup;           /* just count publishes (throughput) */
	int cancel_after_ack;   /* CANCELLED (retryable reason) after an ACK */
	int garbage;            /* answer requests with random frames */
	int bad_deliveries;     /* after CONSUME: good, undecodable, oversized,
	                           good deliveries */
	uint32_t hb_grant;      /* heartbeat granted in HELLO_OK (ms) */
	int send_hb;            /* send HEARTBEAT every 50 ms */

	/* Observations. */
	int connections;
	int publishes; /* PUBLISH frames received */
	int consumes;
	int acks;
	int nacks;
	uint64_t nack_seq;
	int nack_mode;
	int heartbeats;     /* HEARTBEAT frames received */
	uint32_t hello_hb;  /* heartbeat the last HELLO proposed */
	char *ids[MAX_IDS]; /* distinct message ids, index = seq - 1 */
	int n_ids;
	uint64_t next_consumer;
};

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static struct wire_str ws(const char *s)
{
	struct wire_str w = {s, (uint32_t)strlen(s)};

	return w;
}

static void deliver(struct wire_buf *out, uint64_t req, uint64_t consumer,
                    uint64_t seq, const char *body)
{
	struct wire_msg d;

	wire_msg_init(&d, WIRE_OP_DELIVER, req);
	d.consumer = consumer;
	d.queue = ws("q");
	d.queue_id = 1;
	d.seq = seq;
	d.delivery_count = 1;
	d.timestamp = 1000;
	d.id = ws("mid");
	d.payload = ws(body);
	assert_int_equal(wire_encode(out, &d), 0);
}

/* Four deliveries to `consumer`: seq 1 (good), seq 2 with more headers
 * than the client decodes, seq 3 in a frame above the client's limit, seq
 * 4 (good). */
static void bad_deliveries(struct wire_buf *out, uint64_t consumer)
{
	static struct wire_header many[1100];
	struct wire_msg d;
	size_t big = WIRE_MAX_FRAME_DEFAULT + 100000;
	char *payload = malloc(big);

	assert_non_null(payload);
	memset(payload, 'x', big);
	for (int i = 0; i < 1100; i++) {
		many[i].key = "k";
		many[i].key_len = 1;
		many[i].val = "v";
		many[i].val_len = 1;
	}
	deliver(out, 0, consumer, 1, "good-1");
	wire_msg_init(&d, WIRE_OP_DELIVER, 0);
	d.consumer = consumer;
	d.queue = ws("q");
	d.queue_id = 1;
	d.seq = 2;
	d.delivery_count = 1;
	d.payload = ws("too-many-headers");
	d.headers = many;
	d.n_headers = 1100;
	assert_int_equal(wire_encode(out, &d), 0);
	d.seq = 3;
	d.headers = NULL;
	d.n_headers = 0;
	d.payload.ptr = payload;
	d.payload.len = (uint32_t)big;
	assert_int_equal(wire_encode(out, &d), 0);
	free(payload);
	deliver(out, 0, consumer, 4, "good-4");
}

/* Handles one request; returns -1 to close the connection. */
static int handle(struct fake *f, const struct wire_msg *m,
                  struct wire_buf *out, int *hello_done)
{
	struct wire_msg r;

	if (m->op == WIRE_OP_HELLO) {
		if (f->hello_error) {
			wire_encode_error(out, 0, f->hello_error,
			                  "server speaks 1", NULL);
			return -1;
		}
		wire_msg_init(&r, WIRE_OP_HELLO_OK, m->req_id);
		r.version = 1;
		r.node_id = 1;
		r.max_frame = WIRE_MAX_FRAME_DEFAULT;
		r.max_payload = 256 * 1024;
		r.heartbeat = f->hb_grant;
		pthread_mutex_lock(&f->lock);
		f->hello_hb = m->heartbeat;
		pthread_mutex_unlock(&f->lock);
		*hello_done = 1;
		return wire_encode(out, &r);
	}
	if (m->op == WIRE_OP_HEARTBEAT) {
		pthread_mutex_lock(&f->lock);
		f->heartbeats++;
		pthread_mutex_unlock(&f->lock);
		return 0;
	}
	if (!*hello_done) {
		wire_encode_error(out, m->req_id, WIRE_EHELLO, NULL, NULL);
		return -1;
	}
	if (f->garbage) {
		/* A frame of random bytes, or a valid frame of a random op
		 * with a random req_id: the client must survive both. */
		unsigned char junk[64];
		uint32_t n = 1 + (uint32_t)(rand() % 60);
		unsigned char len[4] = {0, 0, 0, (unsigned char)n};

		for (uint32_t i = 0; i < n; i++)
			junk[i] = (unsigned char)rand();
		if (rand() % 2) {
			wire_msg_init(&r, (uint8_t)(64 + rand() % 5),
			              (uint64_t)rand() << 40 | m->req_id);
			r.present = 0;
			return wire_encode(out, &r);
		}
		wire_buf_append(out, len, 4);
		wire_buf_append(out, junk, n);
		return 0;
	}
	wire_msg_init(&r, WIRE_OP_OK, m->req_id);
	r.present = 0;
	switch (m->op) {
	case WIRE_OP_PUBLISH: {
		int seq = 0, dup = 0;

		pthread_mutex_lock(&f->lock);
		f->publishes++;
		if (f->no_dedup) {
			seq = f->publishes;
			pthread_mutex_unlock(&f->lock);
			r.present =
			    WIRE_BIT(WIRE_F_SEQ) | WIRE_BIT(WIRE_F_QUEUES);
			r.seq = (uint64_t)seq;
			r.queues = 1;
			return wire_encode(out, &r);
		}
		if (f->silent) {
			pthread_mutex_unlock(&f->lock);
			return 0;
		}
		for (int i = 0; i < f->n_ids; i++)
			if (strlen(f->ids[i]) == m->id.len &&
			    memcmp(f->ids[i], m->id.ptr, m->id.len) == 0) {
				seq = i + 1;
				dup = 1;
			}
		if (f->unavailable_first > 0) {
			f->unavailable_first--;
			pthread_mutex_unlock(&f->lock);
			return wire_encode_error(out, m->req_id,
			                         WIRE_EUNAVAILABLE, "no leader",
			                         NULL);
		}
		if (m->payload.len == 6 &&
		    memcmp(m->payload.ptr, "toobig", 6) == 0) {
			pthread_mutex_unlock(&f->lock);
			return wire_encode_error(out, m->req_id, WIRE_ETOOBIG,
			                         "payload too large", NULL);
		}
		if (!dup && f->n_ids < MAX_IDS) {
			f->ids[f->n_ids] = strndup(m->id.ptr, m->id.len);
			seq = ++f->n_ids;
		}
		/* The publish is "committed" but the reply is lost. */
		if (f->publishes == f->drop_at_publish) {
			pthread_mutex_unlock(&f->lock);
			return -1;
		}
		pthread_mutex_unlock(&f->lock);
		r.present = WIRE_BIT(WIRE_F_SEQ) | WIRE_BIT(WIRE_F_QUEUES) |
		            WIRE_BIT(WIRE_F_DUPLICATE);
		r.seq = (uint64_t)seq;
		r.queues = 1;
		r.duplicate = (uint8_t)dup;
		return wire_encode(out, &r);
	}
	case WIRE_OP_QUEUE_DECLARE:
		r.present =
		    WIRE_BIT(WIRE_F_QUEUE_ID) | WIRE_BIT(WIRE_F_CREATED);
		r.queue_id = 7;
		r.created = 1;
		return wire_encode(out, &r);
	case WIRE_OP_QUEUE_STATS:
		if (m->name.len == 7 && memcmp(m->name.ptr, "missing", 7) == 0)
			return wire_encode_error(out, m->req_id, WIRE_ENOQUEUE,
			                         "queue missing not found",
			                         NULL);
		r.present = WIRE_BIT(WIRE_F_STATS);
		r.stats.name = m->name;
		r.stats.queue_id = 7;
		r.stats.ready = 42;
		r.stats.opts.dlq = ws("dead");
		return wire_encode(out, &r);
	case WIRE_OP_STATUS: {
		struct wire_member mb[2] = {
		    {1, ws("127.0.0.1:8001"), ws("127.0.0.1:7001")},
		    {2, ws("127.0.0.1:8002"), ws("127.0.0.1:7002")}};

		r.present = WIRE_BIT(WIRE_F_NODE_ID) | WIRE_BIT(WIRE_F_ROLE) |
		            WIRE_BIT(WIRE_F_LEADER_ID) | WIRE_BIT(WIRE_F_TERM) |
		            WIRE_BIT(WIRE_F_MEMBERS);
		r.node_id = 1;
		r.role = ws("leader");
		r.leader_id = 1;
		r.term = 3;
		r.members = mb;
		r.n_members = 2;
		return wire_encode(out, &r);
	}
	case WIRE_OP_CONSUME: {
		uint64_t id;

		pthread_mutex_lock(&f->lock);
		f->consumes++;
		id = ++f->next_consumer;
		pthread_mutex_unlock(&f->lock);
		r.present =
		    WIRE_BIT(WIRE_F_CONSUMER) | WIRE_BIT(WIRE_F_QUEUE_ID);
		r.consumer = id;
		r.queue_id = 1;
		if (wire_encode(out, &r))
			return -1;
		if (f->deliver_on_consume)
			deliver(out, 0, id, id, id == 1 ? "first" : "second");
		if (f->bad_deliveries)
			bad_deliveries(out, id);
		return 0;
	}
	case WIRE_OP_NACK:
		pthread_mutex_lock(&f->lock);
		f->nacks++;
		f->nack_seq = m->seq;
		f->nack_mode = m->mode;
		pthread_mutex_unlock(&f->lock);
		return wire_encode(out, &r);
	case WIRE_OP_GET:
		deliver(out, m->req_id, 0, 10, "g1");
		deliver(out, m->req_id, 0, 11, "g2");
		r.present = WIRE_BIT(WIRE_F_COUNT);
		r.count = 2;
		return wire_encode(out, &r);
	case WIRE_OP_ACK:
		pthread_mutex_lock(&f->lock);
		f->acks++;
		pthread_mutex_unlock(&f->lock);
		if (wire_encode(out, &r))
			return -1;
		if (f->cancel_after_ack) {
			struct wire_msg x;

			wire_msg_init(&x, WIRE_OP_CANCELLED, 0);
			x.consumer = f->next_consumer;
			x.queue = ws("q");
			x.reason = WIRE_EUNKNOWN;
			x.message = ws("link to the leader lost");
			if (wire_encode(out, &x))
				return -1;
		}
		return f->close_after_ack ? -1 : 0;
	default:
		return wire_encode(out, &r);
	}
}

static void serve_conn(struct fake *f, int fd)
{
	struct wire_buf in, out;
	int hello_done = 0;

	wire_buf_init(&in);
	wire_buf_init(&out);
	while (!f->stop) {
		struct pollfd p = {fd, POLLIN, 0};
		size_t off = 0, body;
		ssize_t n;
		int close_it = 0;

		if (poll(&p, 1, 50) <= 0) {
			if (f->send_hb && hello_done) {
				struct wire_msg hb;

				wire_msg_init(&hb, WIRE_OP_HEARTBEAT, 0);
				wire_encode(&out, &hb);
				if (send_all(fd, out.data, out.len))
					break;
				out.len = 0;
			}
			continue;
		}
		if (wire_buf_reserve(&in, 65536))
			break;
		n = recv(fd, in.data + in.len, 65536, 0);
		if (n <= 0)
			break;
		in.len += (size_t)n;
		while (wire_split(in.data + off, in.len - off,
		                  WIRE_MAX_FRAME_DEFAULT,
		                  &body) == WIRE_SPLIT_FRAME) {
			struct wire_msg m;
			struct wire_header h[64];

			if (wire_decode(in.data + off + 4, body, &m, h, 64)) {
				wire_encode_error(&out, m.req_id, WIRE_EPROTO,
				                  m.err, NULL);
				close_it = 1;
			} else if (handle(f, &m, &out, &hello_done)) {
				close_it = 1;
			}
			off += 4 + body;
			if (close_it)
				break;
		}
		wire_buf_consume(&in, off);
		if (out.len && send_all(fd, out.data, out.len))
			break;
		out.len = 0;
		if (close_it)
			break;
	}
	close(fd);
	wire_buf_free(&in);
	wire_buf_free(&out);
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;

	while (!f->stop) {
		struct pollfd p = {f->lfd, POLLIN, 0};
		int fd;

		if (poll(&p, 1, 50) <= 0)
			continue;
		fd = accept(f->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&f->lock);
		f->connections++;
		pthread_mutex_unlock(&f->lock);
		serve_conn(f, fd);
	}
	return NULL;
}

static int listen_any(int *port)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static struct fake *fake_new(void)
{
	struct fake *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	pthread_mutex_init(&f->lock, NULL);
	f->lfd = listen_any(&f->port);
	return f;
}

static void fake_start(struct fake *f)
{
	assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_free(struct fake *f)
{
	f->stop = 1;
	pthread_join(f->thread, NULL);
	close(f->lfd);
	for (int i = 0; i < f->n_ids; i++)
		free(f->ids[i]);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

static struct raftmq *client_for(struct fake *f, int timeout_ms,
                                 unsigned window)
{
	char servers[64];
	struct raftmq_options o;
	struct raftmq *c;

	snprintf(servers, sizeof(servers), "127.0.0.1:%d", f->port);
	raftmq_options_default(&o);
	o.servers = servers;
	o.timeout_ms = timeout_ms;
	o.backoff_max_ms = 50;
	o.window = window;
	c = raftmq_new(&o);
	assert_non_null(c);
	return c;
}

static void test_basic_calls(void **state)
{
	struct fake *f = fake_new();
	struct raftmq *c;
	struct raftmq_confirm conf;
	struct raftmq_message m = {0};
	struct raftmq_queue_stats s;
	struct raftmq_node_status st;
	uint32_t qid = 0;
	int created = 0;

	(void)state;
	fake_start(f);
	c = client_for(f, 5000, 16);
	assert_int_equal(raftmq_connect(c), 0);
	assert_int_equal(raftmq_queue_declare(c, "q", NULL, &qid, &created), 0);
	assert_int_equal(qid, 7);
	assert_int_equal(created, 1);
	m.key = "q";
	m.payload = "hello";
	m.payload_len = 5;
	assert_int_equal(raftmq_publish(c, &m, &conf), 0);
	assert_int_equal(conf.seq, 1);
	assert_int_equal(conf.queues, 1);
	assert_int_equal(conf.duplicate, 0);
	/* Same explicit id: the fake's dedup returns the first seq. */
	m.id = "fixed-id";
	assert_int_equal(raftmq_publish(c, &m, &conf), 0);
	assert_int_equal(conf.seq, 2);
	assert_int_equal(raftmq_publish(c, &m, &conf), 0);
	assert_int_equal(conf.seq, 2);
	assert_int_equal(conf.duplicate, 1);
	/* Error mapping: server code and message reach the caller. */
	assert_int_equal(raftmq_queue_stats(c, "missing", &s), RAFTMQ_ENOQUEUE);
	assert_non_null(strstr(raftmq_errmsg(c), "queue missing not found"));
	assert_string_equal(raftmq_strerror(RAFTMQ_ENOQUEUE), "no such queue");
	assert_int_equal(raftmq_queue_stats(c, "q", &s), 0);
	assert_string_equal(s.name, "q");
	assert_int_equal(s.ready, 42);
	assert_string_equal(s.opts.dlq, "dead");
	assert_int_equal(raftmq_status(c, &st), 0);
	assert_string_equal(st.role, "leader");
	assert_int_equal(st.term, 3);
	assert_int_equal(st.n_members, 2);
	assert_string_equal(st.members[1].client_address, "127.0.0.1:7002");
	/* Payload over the advertised maximum is refused locally. */
	{
		char *big = calloc(1, 300 * 1024);

		m.id = NULL;
		m.payload = big;
		m.payload_len = 300 * 1024;
		assert_int_equal(raftmq_publish(c, &m, NULL), RAFTMQ_ETOOBIG);
		free(big);
	}
	raftmq_close(c);
	fake_free(f);
}

struct confirms {
	int ok;
	int failed;
	int last_status;
	uint64_t seqs[2048];
	int dups;
};

static void on_conf(void *arg, int status, const struct raftmq_confirm *cf)
{
	struct confirms *k = arg;

	if (status == 0) {
		if (k->ok < 2048)
			k->seqs[k->ok] = cf->seq;
		k->ok++;
		k->dups += cf->duplicate;
	} else {
		k->failed++;
		k->last_status = status;
	}
}

static void check_seqs(const struct confirms *k, int n)
{
	/* Every seq 1..n exactly once. */
	char *seen = calloc((size_t)n + 1, 1);

	for (int i = 0; i < k->ok; i++) {
		assert_true(k->seqs[i] >= 1 && k->seqs[i] <= (uint64_t)n);
		assert_int_equal(seen[k->seqs[i]], 0);
		seen[k->seqs[i]] = 1;
	}
	free(seen);
}

static void publish_n(struct raftmq *c, int n, struct confirms *k)
{
	struct raftmq_message m = {0};
	char body[32];

	m.key = "q";
	for (int i = 0; i < n; i++) {
		snprintf(body, sizeof(body), "m%d", i);
		m.payload = body;
		m.payload_len = strlen(body);
		assert_int_equal(raftmq_publish_async(c, &m, on_conf, k), 0);
		assert_true(raftmq_pending(c) <= 64);
	}
}

static void test_pipelined_confirms(void **state)
{
	struct fake *f = fake_new();
	struct raftmq *c;
	struct confirms k;

	(void)state;
	memset(&k, 0, sizeof(k));
	fake_start(f);
	c = client_for(f, 5000, 64);
	publish_n(c, 1000, &k);
	assert_int_equal(raftmq_wait_confirms(c, -1), 0);
	assert_int_equal(k.ok, 1000);
	assert_int_equal(k.failed, 0);
	check_seqs(&k, 1000);
	/* One connection, in order: confirms carry increasing seqs. */
	for (int i = 1; i < 1000; i++)
		assert_true(k.seqs[i] > k.seqs[i - 1]);
	assert_int_equal(f->connections, 1);
	raftmq_close(c);
	fake_free(f);
}

static void test_retry_same_id_after_drop(void **state)
{
	struct fake *f = fake_new();
	struct raftmq *c;
	struct confirms k;

	(void)state;
	memset(&k, 0, sizeof(k));
	f->drop_at_publish = 10; /* committed, reply lost, link closed */
	fake_start(f);
	c = client_for(f, 5000, 64);
	publish_n(c, 200, &k);
	assert_int_equal(raftmq_wait_confirms(c, -1), 0);
	assert_int_equal(k.ok, 200);
	/* The fake stored each id once: retries reused the ids. */
	assert_int_equal(f->n_ids, 200);
	assert_true(f->publishes > 200);
	assert_true(f->connections >= 2);
	assert_true(k.dups >= 1);
	check_seqs(&k, 200);
	raftmq_close(c);
	fake_free(f);
}

static void test_retryable_and_fatal_errors(void **state)
{
	struct fake *f = fake_new();
	struct raftmq *c;
	struct confirms k;
	struct raftmq_message m = {0};

	(void)state;
	memset(&k, 0, sizeof(k));
	f->unavailable_first = 5;
	fake_start(f);
	c = client_for(f, 5000, 64);
	publish_n(c, 20, &k);
	m.key = "q";
	m.payload = "toobig";
	m.payload_len = 6;
	assert_int_equal(raftmq_publish_async(c, &m, on_conf, &k), 0);
	/* The first failure is reported by wait_confirms, then reset. */
	assert_int_equal(raftmq_wait_confirms(c, -1), RAFTMQ_ETOOBIG);
	assert_int_equal(k.ok, 20);
	assert_int_equal(k.failed, 1);
	assert_int_equal(k.last_status, RAFTMQ_ETOOBIG);
	assert_int_equal(f->n_ids, 20);
	assert_int_equal(raftmq_wait_confirms(c, -1), 0);
	/* The blocking form gives the same code. */
	assert_int_equal(raftmq_publish(c, &m, NULL), RAFTMQ_ETOOBIG);
	raftmq_close(c);
	fake_free(f);
}

static void test_failover_and_version(void **state)
{
	struct fake *f = fake_new();
	int dead_port;
	int dead = listen_any(&dead_port);
	char servers[96];
	struct raftmq_options o;
	struct raftmq *c;

	(void)state;
	close(dead); /* nothing listens there any more */
	fake_start(f);
	snprintf(servers, sizeof(servers), "127.0.0.1:%d,127.0.0.1:%d",
	         dead_port, f->port);
	raftmq_options_default(&o);
	o.servers = servers;
	o.timeout_ms = 3000;
	c = raftmq_new(&o);
	assert_non_null(c);
	assert_int_equal(raftmq_connect(c), 0);
	assert_non_null(strstr(raftmq_server(c), "127.0.0.1"));
	assert_int_equal(raftmq_queue_declare(c, "q", NULL, NULL, NULL), 0);
	raftmq_close(c);

	/* A node that refuses the version: the code and text come back. */
	f->hello_error = WIRE_EVERSION;
	c = client_for(f, 3000, 16);
	assert_int_equal(raftmq_connect(c), RAFTMQ_EVERSION);
	assert_non_null(strstr(raftmq_errmsg(c), "server speaks 1"));
	raftmq_close(c);

	/* Bad server lists are refused. */
	o.servers = "nocolon";
	assert_null(raftmq_new(&o));
	o.servers = "a:1,,b:2";
	assert_null(raftmq_new(&o));
	fake_free(f);
}

static void test_consumer_reregistered(void **state)
{
	struct fake *f = fake_new();
	struct raftmq *c;
	struct raftmq_delivery *d;
	uint64_t handle = 0;

	(void)state;
	f->deliver_on_consume = 1;
	f->close_after_ack = 1;
	fake_start(f);
	c = client_for(f, 5000, 16);
	assert_int_equal(raftmq_consume(c, "q", 10, &handle), 0);
	assert_int_equal(raftmq_next_delivery(c, 3000, &d), 0);
	assert_string_equal((const char *)d->payload, "first");
	assert_int_equal(d->consumer, 1);
	assert_int_equal(d->queue_id, 1);
	assert_int_equal(d->redelivered, 0);
	/* The fake closes after this ack's reply: the client reconnects and
	 * registers the consumer again, with a new server id. */
	assert_int_equal(raftmq_ack(c, d->queue_id, d->seq), 0);
	raftmq_delivery_free(d);
	assert_int_equal(raftmq_next_delivery(c, 3000, &d), 0);
	assert_string_equal((const char *)d->payload, "second");
	assert_int_equal(d->consumer, 2);
	raftmq_delivery_free(d);
	assert_int_equal(f->consumes, 2);
	assert_true(f->connections >= 2);
	assert_int_equal(raftmq_next_delivery(c, 0, &d), RAFTMQ_ETIMEOUT);
	assert_int_equal(raftmq_cancel(c, handle), 0);
	raftmq_close(c);
	fake_free(f);
}

static void test_cancelled_retryable(void **state)
{
	struct fake *f = fake_new();
	struct raftmq *c;
	struct raftmq_delivery *d;

	(void)state;
	f->deliver_on_consume = 1;
	f->cancel_after_ack = 1;
	fake_start(f);
	c = client_for(f, 5000, 16);
	assert_int_equal(raftmq_consume(c, "q", 10, NULL), 0);
	assert_int_equal(raftmq_next_delivery(c, 3000, &d), 0);
	assert_int_equal(d->consumer, 1);
	assert_int_equal(raftmq_ack(c, d->queue_id, d->seq), 0);
	raftmq_delivery_free(d);
	/* Same connection, consumer registered again by the library. */
	assert_int_equal(raftmq_next_delivery(c, 3000, &d), 0);
	assert_int_equal(d->consumer, 2);
	assert_string_equal((const char *)d->payload, "second");
	raftmq_delivery_free(d);
	assert_int_equal(f->connections, 1);
	assert_int_equal(f->consumes, 2);
	raftmq_close(c);
	fake_free(f);
}

static void test_get_and_timeout(void **state)
{
	struct fake *f = fake_new();
	struct raftmq *c;
	struct raftmq_delivery *d;
	struct raftmq_message m = {0};
	uint32_t count = 0;

	(void)state;
	fake_start(f);
	c = client_for(f, 3000, 16);
	assert_int_equal(raftmq_get(c, "q", 5, 0, &count), 0);
	assert_int_equal(count, 2);
	assert_int_equal(raftmq_next_delivery(c, 0, &d), 0);
	assert_string_equal((const char *)d->payload, "g1");
	assert_int_equal(d->consumer, 0);
	assert_int_equal(raftmq_ack_async(c, d->queue_id, d->seq), 0);
	raftmq_delivery_free(d);
	assert_int_equal(raftmq_next_delivery(c, 0, &d), 0);
	assert_int_equal(d->seq, 11);
	assert_int_equal(raftmq_ack_async(c, d->queue_id, d->seq), 0);
	raftmq_delivery_free(d);
	assert_int_equal(raftmq_wait_acks(c, 3000), 0);
	assert_int_equal(f->acks, 2);
	assert_int_equal(raftmq_next_delivery(c, 0, &d), RAFTMQ_ETIMEOUT);

	/* A node that never confirms: the call's deadline ends it. */
	f->silent = 1;
	raftmq_set_timeout(c, 300);
	m.key = "q";
	m.payload = "x";
	m.payload_len = 1;
	assert_int_equal(raftmq_publish(c, &m, NULL), RAFTMQ_ETIMEOUT);
	assert_int_equal(raftmq_pending(c), 0);
	raftmq_close(c);
	fake_free(f);
}

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct counter {
	uint64_t ok, last_seq;
	int in_order;
};

static void count_conf(void *arg, int status, const struct raftmq_confirm *cf)
{
	struct counter *k = arg;

	if (status == 0) {
		k->ok++;
		if (cf->seq != k->last_seq + 1)
			k->in_order = 0;
		k->last_seq = cf->seq;
	}
}

/* Not a timing assertion: prints the client-side pipelined rate against
 * the (single-threaded) fake node. */
static void test_throughput(void **state)
{
	struct fake *f = fake_new();
	struct raftmq *c;
	struct raftmq_message m = {0};
	struct counter k = {0, 0, 1};
	char body[100];
	const int n = 50000;
	int64_t t0, t1;

	(void)state;
	f->no_dedup = 1;
	fake_start(f);
	c = client_for(f, 10000, 1024);
	memset(body, 'x', sizeof(body));
	m.key = "q";
	m.payload = body;
	m.payload_len = sizeof(body);
	assert_int_equal(raftmq_connect(c), 0);
	t0 = mono_us();
	for (int i = 0; i < n; i++)
		assert_int_equal(raftmq_publish_async(c, &m, count_conf, &k),
		                 0);
	assert_int_equal(raftmq_wait_confirms(c, -1), 0);
	t1 = mono_us();
	assert_int_equal(k.ok, (uint64_t)n);
	assert_true(k.in_order);
	print_message("throughput: %d pipelined publishes (100 B) in %.3f s "
	              "= %.0f/s\n",
	              n, (double)(t1 - t0) / 1e6,
	              n / ((double)(t1 - t0) / 1e6));
	raftmq_close(c);
	fake_free(f);
}

static void test_garbage_server(void **state)
{
	struct fake *f = fake_new();
	struct raftmq *c;
	struct raftmq_message m = {0};
	struct raftmq_delivery *d;
	struct raftmq_node_status st;

	(void)state;
	srand(7);
	f->garbage = 1;
	fake_start(f);
	c = client_for(f, 400, 16);
	m.key = "q";
	m.payload = "x";
	m.payload_len = 1;
	for (int i = 0; i < 5; i++) {
		int rc = raftmq_publish(c, &m, NULL);

		assert_int_not_equal(rc, 0);
		rc = raftmq_status(c, &st);
		assert_true(rc != 0 || st.n_members == 0);
		rc = raftmq_next_delivery(c, 10, &d);
		if (rc == 0)
			raftmq_delivery_free(d);
	}
	raftmq_close(c);
	fake_free(f);
}

struct errs {
	int n;
	char last[512];
};

static void on_error(void *arg, int status, const char *text)
{
	struct errs *e = arg;

	assert_int_equal(status, RAFTMQ_EBADREPLY);
	e->n++;
	snprintf(e->last, sizeof(e->last), "%s", text);
}

/* A delivery the client cannot decode (too many headers) and one above its
 * frame limit, between two good ones: the good ones arrive, the bad one
 * with readable ids is nacked to the dead-letter queue, the application
 * hears of both, and the connection stays up. */
static void test_undecodable_delivery(void **state)
{
	struct fake *f = fake_new();
	struct raftmq *c;
	struct raftmq_delivery *d;
	struct errs e = {0, ""};

	(void)state;
	f->bad_deliveries = 1;
	fake_start(f);
	c = client_for(f, 5000, 16);
	raftmq_set_error_cb(c, on_error, &e);
	assert_int_equal(raftmq_consume(c, "q", 10, NULL), 0);
	assert_int_equal(raftmq_next_delivery(c, 3000, &d), 0);
	assert_int_equal(d->seq, 1);
	assert_string_equal((const char *)d->payload, "good-1");
	raftmq_delivery_free(d);
	assert_int_equal(raftmq_next_delivery(c, 3000, &d), 0);
	assert_int_equal(d->seq, 4);
	assert_string_equal((const char *)d->payload, "good-4");
	raftmq_delivery_free(d);
	assert_int_equal(e.n, 2);
	assert_non_null(strstr(e.last, "exceeds the client's limit"));
	/* The connection still works; the nack reached the server. */
	assert_int_equal(raftmq_queue_declare(c, "q2", NULL, NULL, NULL), 0);
	assert_int_equal(f->connections, 1);
	assert_int_equal(f->nacks, 1);
	assert_int_equal(f->nack_seq, 2);
	assert_int_equal(f->nack_mode, WIRE_NACK_DEADLETTER);
	raftmq_close(c);
	fake_free(f);
}

/* Heartbeats: proposed in HELLO, sent while idle; a server that sends
 * nothing for 3 intervals is left (reconnect), one that sends heartbeats is
 * kept. */
static void test_heartbeats(void **state)
{
	struct raftmq_options o;
	char servers[64];
	struct fake *f = fake_new();
	struct raftmq *c;
	struct raftmq_delivery *d;

	(void)state;
	f->hb_grant = 100;
	fake_start(f);
	c = client_for(f, 5000, 16);
	assert_int_equal(raftmq_consume(c, "q", 10, NULL), 0);
	assert_int_equal(f->hello_hb, 5000);
	assert_int_equal(raftmq_next_delivery(c, 1000, &d), RAFTMQ_ETIMEOUT);
	/* Silent fake: the client sent heartbeats, gave up on the server
	 * after 300 ms, reconnected and registered its consumer again. */
	assert_true(f->heartbeats >= 2);
	assert_true(f->connections >= 2);
	assert_true(f->consumes >= 2);
	raftmq_close(c);
	fake_free(f);

	f = fake_new();
	f->hb_grant = 100;
	f->send_hb = 1;
	fake_start(f);
	c = client_for(f, 5000, 16);
	assert_int_equal(raftmq_consume(c, "q", 10, NULL), 0);
	assert_int_equal(raftmq_next_delivery(c, 1000, &d), RAFTMQ_ETIMEOUT);
	assert_int_equal(f->connections, 1);
	assert_true(f->heartbeats >= 5);
	raftmq_close(c);
	fake_free(f);

	/* heartbeat_ms < 0: none proposed. */
	f = fake_new();
	fake_start(f);
	snprintf(servers, sizeof(servers), "127.0.0.1:%d", f->port);
	raftmq_options_default(&o);
	o.servers = servers;
	o.heartbeat_ms = -1;
	c = raftmq_new(&o);
	assert_non_null(c);
	assert_int_equal(raftmq_connect(c), 0);
	assert_int_equal(f->hello_hb, 0);
	raftmq_close(c);
	fake_free(f);
}

static void test_no_server(void **state)
{
	struct raftmq_options o;
	struct raftmq *c;
	int port;
	int fd = listen_any(&port);
	char servers[64];

	(void)state;
	close(fd);
	snprintf(servers, sizeof(servers), "127.0.0.1:%d", port);
	raftmq_options_default(&o);
	o.servers = servers;
	o.timeout_ms = 300;
	o.backoff_max_ms = 50;
	c = raftmq_new(&o);
	assert_non_null(c);
	assert_int_equal(raftmq_connect(c), RAFTMQ_ECONNECT);
	assert_int_equal(raftmq_queue_declare(c, "q", NULL, NULL, NULL),
	                 RAFTMQ_ECONNECT);
	assert_true(strlen(raftmq_errmsg(c)) > 0);
	raftmq_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_basic_calls),
	    cmocka_unit_test(test_pipelined_confirms),
	    cmocka_unit_test(test_retry_same_id_after_drop),
	    cmocka_unit_test(test_retryable_and_fatal_errors),
	    cmocka_unit_test(test_failover_and_version),
	    cmocka_unit_test(test_consumer_reregistered),
	    cmocka_unit_test(test_cancelled_retryable),
	    cmocka_unit_test(test_get_and_timeout),
	    cmocka_unit_test(test_throughput),
	    cmocka_unit_test(test_garbage_server),
	    cmocka_unit_test(test_no_server),
	    cmocka_unit_test(test_undecodable_delivery),
	    cmocka_unit_test(test_heartbeats),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
