/* tests/integration/test_cluster: three real raftmq-node processes on
 * 127.0.0.1, driven through libraftmq and raw sockets.
 *
 * - failover: 10,000 publishes through one follower while a consumer reads
 *   through the other; the leader is SIGKILLed mid-stream and restarted;
 *   every confirmed message must be consumed at least once;
 * - restart: a full-cluster restart keeps every unacked message;
 * - snapshot: a node that was down while the others compacted their logs
 *   catches up by installing a snapshot;
 * - leader gone: followers notice a killed leader's closed link and elect
 *   at once; a paused leader does not trigger that;
 * - damaged snapshot: a node whose snapshot file is damaged refuses to start
 *   with a clear error, and the majority keeps serving;
 * - bad input: garbage, oversize frames, unknown queues, a wrong protocol
 *   version get clear errors and the node keeps serving. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "client/raftmq.h"
#include "cluster_util.h"
#include "wire/wire.h"

/* ---------------------------------------------------------------------
 * Helpers. */

static struct raftmq *client_for(const char *servers, int timeout_ms)
{
	struct raftmq_options o;
	struct raftmq *h;

	raftmq_options_default(&o);
	o.servers = servers;
	o.timeout_ms = timeout_ms;
	o.client_name = "test_cluster";
	h = raftmq_new(&o);
	assert_non_null(h);
	return h;
}

/* Two nodes other than the leader. */
static void followers(int leader, int *a, int *b)
{
	int k = 0;
	for (int i = 1; i <= CLUSTER_N; i++) {
		if (i != leader) {
			if (k++ == 0) {
				*a = i;
			} else {
				*b = i;
			}
		}
	}
}

static int declare_with_retry(struct raftmq *h, const char *q)
{
	int rv = -1;
	for (int i = 0; i < 50 && rv != 0; i++) {
		rv = raftmq_queue_declare(h, q, NULL, NULL, NULL);
		if (rv != 0) {
			sleep_ms(200);
		}
	}
	return rv;
}

/* ---------------------------------------------------------------------
 * Failover under load. */

#define FO_N 10000

struct fo_state {
	const char *producer_servers;
	const char *consumer_servers;
	atomic_int confirmed_count;
	atomic_int failed_count;
	unsigned char confirmed[FO_N];
	atomic_int seen[FO_N];
	atomic_int stop_consumer;
	atomic_int consumer_error;
};

struct fo_conf {
	struct fo_state *st;
	int i;
};

static void fo_confirm(void *arg, int status, const struct raftmq_confirm *c)
{
	struct fo_conf *fc = arg;
	(void)c;
	if (status == 0) {
		fc->st->confirmed[fc->i] = 1;
		atomic_fetch_add(&fc->st->confirmed_count, 1);
	} else {
		atomic_fetch_add(&fc->st->failed_count, 1);
	}
}

static void *fo_producer(void *arg)
{
	struct fo_state *st = arg;
	struct raftmq *h = client_for(st->producer_servers, 30000);
	static struct fo_conf confs[FO_N];
	char body[32];

	for (int i = 0; i < FO_N; i++) {
		struct raftmq_message m;
		memset(&m, 0, sizeof m);
		snprintf(body, sizeof body, "m-%d", i);
		m.key = "fo";
		m.payload = body;
		m.payload_len = strlen(body);
		confs[i].st = st;
		confs[i].i = i;
		if (raftmq_publish_async(h, &m, fo_confirm, &confs[i]) != 0) {
			atomic_fetch_add(&st->failed_count, 1);
		}
		/* A steady stream rather than one burst, so that the kill
		 * lands in the middle of it. */
		if (i % 200 == 199) {
			raftmq_flush(h);
			sleep_ms(20);
		}
	}
	raftmq_wait_confirms(h, 60000);
	raftmq_close(h);
	return NULL;
}

static void *fo_consumer(void *arg)
{
	struct fo_state *st = arg;
	struct raftmq *h = client_for(st->consumer_servers, 30000);
	uint64_t idle_since = 0;

	if (raftmq_consume(h, "fo", 200, NULL) != 0) {
		fprintf(stderr, "consume: %s\n", raftmq_errmsg(h));
		atomic_store(&st->consumer_error, 1);
		raftmq_close(h);
		return NULL;
	}
	for (;;) {
		struct raftmq_delivery *d = NULL;
		int rv = raftmq_next_delivery(h, 200, &d);
		if (rv == 0) {
			int i = -1;
			idle_since = 0;
			if (sscanf((const char *)d->payload, "m-%d", &i) == 1 &&
			    i >= 0 && i < FO_N) {
				atomic_fetch_add(&st->seen[i], 1);
			}
			raftmq_ack(h, d->queue_id, d->seq);
			raftmq_delivery_free(d);
			continue;
		}
		if (atomic_load(&st->stop_consumer)) {
			if (idle_since == 0) {
				idle_since = now_ms();
			} else if (now_ms() - idle_since > 3000) {
				break;
			}
		}
	}
	raftmq_close(h);
	return NULL;
}

static void test_failover(void **state)
{
	static struct fo_state st;
	struct cluster c;
	pthread_t prod, cons;
	int leader, a = 0, b = 0, lost = 0, dups = 0, unconfirmed_seen = 0;
	uint64_t t0;
	(void)state;

	memset(&st, 0, sizeof st);
	cluster_init(&c, "failover");
	cluster_start_all(&c);
	leader = cluster_wait_leader(&c, 20000);
	assert_int_not_equal(leader, 0);
	followers(leader, &a, &b);
	{
		struct raftmq *h = client_for(cluster_addr(&c, a), 10000);
		assert_int_equal(declare_with_retry(h, "fo"), 0);
		raftmq_close(h);
	}
	st.producer_servers = cluster_addr(&c, a);
	st.consumer_servers = cluster_addr(&c, b);
	pthread_create(&cons, NULL, fo_consumer, &st);
	pthread_create(&prod, NULL, fo_producer, &st);

	/* Kill the leader once a third of the stream is confirmed. */
	t0 = now_ms();
	while (atomic_load(&st.confirmed_count) < FO_N / 3 &&
	       now_ms() - t0 < 60000) {
		sleep_ms(10);
	}
	fprintf(stderr, "failover: SIGKILL leader n%d after %d confirms\n",
	        leader, atomic_load(&st.confirmed_count));
	cluster_stop(&c, leader, SIGKILL);
	sleep_ms(1500);
	cluster_start(&c, leader);

	pthread_join(prod, NULL);
	/* Let the consumer drain everything that was confirmed. */
	t0 = now_ms();
	for (;;) {
		int missing = 0;
		for (int i = 0; i < FO_N; i++) {
			if (st.confirmed[i] && atomic_load(&st.seen[i]) == 0) {
				missing++;
			}
		}
		if (missing == 0 || now_ms() - t0 > 60000) {
			break;
		}
		sleep_ms(200);
	}
	atomic_store(&st.stop_consumer, 1);
	pthread_join(cons, NULL);

	for (int i = 0; i < FO_N; i++) {
		int seen = atomic_load(&st.seen[i]);
		if (st.confirmed[i] && seen == 0) {
			lost++;
		}
		if (seen > 1) {
			dups += seen - 1;
		}
		if (!st.confirmed[i] && seen > 0) {
			unconfirmed_seen++;
		}
	}
	fprintf(stderr,
	        "failover: published %d, confirmed %d, failed %d, lost %d, "
	        "duplicate deliveries %d, delivered-but-unconfirmed %d\n",
	        FO_N, atomic_load(&st.confirmed_count),
	        atomic_load(&st.failed_count), lost, dups, unconfirmed_seen);
	if (lost != 0 || atomic_load(&st.consumer_error)) {
		cluster_dump_logs(&c);
	}
	assert_int_equal(atomic_load(&st.consumer_error), 0);
	assert_int_equal(lost, 0);
	/* The client retries with the same ids: every publish must end up
	 * confirmed once a new leader serves. */
	assert_int_equal(atomic_load(&st.confirmed_count), FO_N);
	cluster_destroy(&c);
}

/* ---------------------------------------------------------------------
 * Full restart keeps unacked messages. */

static void test_full_restart(void **state)
{
	struct cluster c;
	struct raftmq *h;
	char body[32];
	int leader, got = 0;
	uint64_t t0;
	static unsigned char seen[500];
	(void)state;

	memset(seen, 0, sizeof seen);
	cluster_init(&c, "restart");
	cluster_start_all(&c);
	leader = cluster_wait_leader(&c, 20000);
	assert_int_not_equal(leader, 0);
	h = client_for(c.client_addr[1], 20000);
	assert_int_equal(declare_with_retry(h, "keep"), 0);
	for (int i = 0; i < 500; i++) {
		struct raftmq_message m;
		memset(&m, 0, sizeof m);
		snprintf(body, sizeof body, "k-%d", i);
		m.key = "keep";
		m.payload = body;
		m.payload_len = strlen(body);
		assert_int_equal(raftmq_publish_async(h, &m, NULL, NULL), 0);
	}
	assert_int_equal(raftmq_wait_confirms(h, 30000), 0);
	/* Ack the first 100 messages delivered; leave 20 more in flight. */
	assert_int_equal(raftmq_consume(h, "keep", 120, NULL), 0);
	for (int n = 0; n < 120;) {
		struct raftmq_delivery *d;
		int i;
		assert_int_equal(raftmq_next_delivery(h, 10000, &d), 0);
		if (n < 100) {
			assert_int_equal(raftmq_ack(h, d->queue_id, d->seq), 0);
			sscanf((const char *)d->payload, "k-%d", &i);
			seen[i] = 2; /* acked */
		}
		n++;
		raftmq_delivery_free(d);
	}
	raftmq_close(h);

	cluster_stop_all(&c, SIGTERM);
	cluster_start_all(&c);
	leader = cluster_wait_leader(&c, 30000);
	assert_int_not_equal(leader, 0);

	h = client_for(c.client_addr[2], 20000);
	assert_int_equal(raftmq_consume(h, "keep", 100, NULL), 0);
	t0 = now_ms();
	while (got < 400 && now_ms() - t0 < 30000) {
		struct raftmq_delivery *d;
		int i = -1;
		if (raftmq_next_delivery(h, 1000, &d) != 0) {
			continue;
		}
		sscanf((const char *)d->payload, "k-%d", &i);
		assert_true(i >= 0 && i < 500);
		assert_int_not_equal(seen[i], 2); /* acked stays acked */
		if (seen[i] == 0) {
			got++;
		}
		seen[i] = 1;
		raftmq_ack(h, d->queue_id, d->seq);
		raftmq_delivery_free(d);
	}
	raftmq_close(h);
	fprintf(stderr, "restart: %d of 400 unacked messages back\n", got);
	if (got != 400) {
		cluster_dump_logs(&c);
	}
	assert_int_equal(got, 400);
	cluster_destroy(&c);
}

/* ---------------------------------------------------------------------
 * A node down past a snapshot catches up by snapshot install. */

/* Starts a cluster that snapshots every 32 entries and keeps 8; returns
 * the leader and its two followers. */
static int start_snapshotting(struct cluster *c, const char *name, int *a,
                              int *b)
{
	int leader;

	cluster_init(c, name);
	c->extra[c->n_extra++] = "--snapshot-threshold";
	c->extra[c->n_extra++] = "32";
	c->extra[c->n_extra++] = "--snapshot-trailing";
	c->extra[c->n_extra++] = "8";
	cluster_start_all(c);
	leader = cluster_wait_leader(c, 20000);
	assert_int_not_equal(leader, 0);
	followers(leader, a, b);
	return leader;
}

static void test_snapshot_catch_up(void **state)
{
	struct cluster c;
	struct raftmq *h;
	int leader, down = 0, other = 0;
	uint64_t t0, applied = 0, commit = 0, lcommit = 0;
	char body[64];
	(void)state;

	leader = start_snapshotting(&c, "snapshot", &down, &other);
	cluster_stop(&c, down, SIGKILL);

	h = client_for(cluster_addr(&c, leader), 20000);
	assert_int_equal(declare_with_retry(h, "snap"), 0);
	/* One at a time: many entries, far past threshold + trailing. */
	for (int i = 0; i < 300; i++) {
		struct raftmq_message m;
		memset(&m, 0, sizeof m);
		snprintf(body, sizeof body, "s-%d", i);
		m.key = "snap";
		m.payload = body;
		m.payload_len = strlen(body);
		assert_int_equal(raftmq_publish(h, &m, NULL), 0);
	}
	raftmq_close(h);
	cluster_leader_seen_by(&c, leader, NULL, NULL, &lcommit);

	cluster_start(&c, down);
	t0 = now_ms();
	while (now_ms() - t0 < 30000) {
		cluster_leader_seen_by(&c, down, NULL, &applied, &commit);
		if (applied >= lcommit) {
			break;
		}
		sleep_ms(100);
	}
	fprintf(stderr, "snapshot: n%d applied %llu, leader commit %llu\n",
	        down, (unsigned long long)applied, (unsigned long long)lcommit);
	if (applied < lcommit || !cluster_log_contains(&c, down, "snapshot")) {
		cluster_dump_logs(&c);
	}
	assert_true(applied >= lcommit);
	assert_true(cluster_log_contains(&c, down, "restored snapshot"));

	/* The caught-up node now serves the data: make it the only follower
	 * left beside the leader and read through it. */
	cluster_stop(&c, other, SIGKILL);
	h = client_for(cluster_addr(&c, down), 20000);
	{
		struct raftmq_delivery *d;
		assert_int_equal(raftmq_consume(h, "snap", 10, NULL), 0);
		assert_int_equal(raftmq_next_delivery(h, 10000, &d), 0);
		assert_string_equal((const char *)d->payload, "s-0");
		raftmq_delivery_free(d);
	}
	raftmq_close(h);
	cluster_destroy(&c);
}

/* Polls the two nodes other than `old` until one of them reports a leader
 * other than `old`; returns it, or 0 after timeout_ms. */
static int new_leader_among_others(struct cluster *c, int old, int timeout_ms)
{
	uint64_t t0 = now_ms();

	while (now_ms() - t0 < (uint64_t)timeout_ms) {
		for (int i = 1; i <= CLUSTER_N; i++) {
			char role[16] = "";
			uint64_t l;
			if (i == old) {
				continue;
			}
			l = cluster_leader_seen_by(c, i, role, NULL, NULL);
			if (l != 0 && (int)l != old &&
			    strcmp(role, "leader") == 0) {
				return i;
			}
		}
		sleep_ms(20);
	}
	return 0;
}

/* A follower watches the leader's client port: when the leader's process
 * dies its kernel closes the link, and the followers shorten their election
 * timeout (log line "is gone"). A paused leader closes nothing, so pausing
 * must not trigger it, and the normal timeout elects a new leader. */
static void test_leader_gone(void **state)
{
	struct cluster c;
	int leader, next, last;
	uint64_t t0;
	(void)state;

	cluster_init(&c, "gone");
	cluster_start_all(&c);
	leader = cluster_wait_leader(&c, 20000);
	assert_int_not_equal(leader, 0);
	sleep_ms(1000); /* the followers' links to the leader are up */

	kill(c.pid[leader], SIGSTOP);
	t0 = now_ms();
	next = new_leader_among_others(&c, leader, 20000);
	fprintf(stderr, "leader gone: n%d paused, n%d leads after %llu ms\n",
	        leader, next, (unsigned long long)(now_ms() - t0));
	kill(c.pid[leader], SIGCONT);
	assert_int_not_equal(next, 0);
	for (int i = 1; i <= CLUSTER_N; i++) {
		assert_false(cluster_log_contains(&c, i, "is gone"));
	}

	assert_int_equal(cluster_wait_leader(&c, 20000), next);
	sleep_ms(1000);
	cluster_stop(&c, next, SIGKILL);
	t0 = now_ms();
	last = new_leader_among_others(&c, next, 20000);
	fprintf(stderr, "leader gone: n%d killed, n%d leads after %llu ms\n",
	        next, last, (unsigned long long)(now_ms() - t0));
	assert_int_not_equal(last, 0);
	{
		int told = 0;
		for (int i = 1; i <= CLUSTER_N; i++) {
			if (i != next &&
			    cluster_log_contains(&c, i, "is gone")) {
				told++;
			}
		}
		if (told == 0) {
			cluster_dump_logs(&c);
		}
		assert_true(told >= 1);
	}
	cluster_destroy(&c);
}

/* Flips one byte in the middle of every snapshot data file (not the .meta)
 * under dir; returns how many files it damaged. */
static int damage_snapshots(const char *dir)
{
	char cmd[600], path[512];
	FILE *ls;
	int n = 0;

	snprintf(cmd, sizeof cmd,
	         "find '%s' -name 'snapshot-*' ! -name '*.meta' -type f", dir);
	ls = popen(cmd, "r");
	assert_non_null(ls);
	while (fgets(path, sizeof path, ls) != NULL) {
		FILE *f;
		long size;
		int ch;
		path[strcspn(path, "\n")] = '\0';
		f = fopen(path, "r+b");
		assert_non_null(f);
		fseek(f, 0, SEEK_END);
		size = ftell(f);
		fseek(f, size / 2, SEEK_SET);
		ch = fgetc(f);
		fseek(f, size / 2, SEEK_SET);
		fputc(ch ^ 0x5a, f);
		fclose(f);
		n++;
	}
	pclose(ls);
	return n;
}

/* A node whose snapshot was damaged on disk refuses to start: it exits with
 * status 1 and a message that names its data dir (never an abort, never a
 * start on wrong state), and the other two nodes keep serving. */
static void test_damaged_snapshot(void **state)
{
	struct cluster c;
	struct raftmq *h;
	struct raftmq_message m;
	char dir[300];
	int leader, down = 0, other = 0, status;
	(void)state;

	leader = start_snapshotting(&c, "damaged", &down, &other);

	h = client_for(cluster_addr(&c, leader), 20000);
	assert_int_equal(declare_with_retry(h, "dmg"), 0);
	memset(&m, 0, sizeof m);
	m.key = "dmg";
	m.payload = "x";
	m.payload_len = 1;
	for (int i = 0; i < 100; i++) {
		assert_int_equal(raftmq_publish(h, &m, NULL), 0);
	}
	/* Wait until the follower has taken a snapshot of its own. */
	for (int i = 0; i < 100 && !cluster_log_contains(&c, down, "snapshot");
	     i++) {
		sleep_ms(100);
	}
	cluster_stop(&c, down, SIGTERM);
	snprintf(dir, sizeof dir, "%s/n%d", c.dir, down);
	assert_true(damage_snapshots(dir) >= 1);

	cluster_start(&c, down);
	status = cluster_wait_exit(&c, down, 20000);
	fprintf(stderr, "damaged: n%d exit status %d (signal %d)\n", down,
	        WIFEXITED(status) ? WEXITSTATUS(status) : -1,
	        WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	if (!cluster_log_contains(&c, down, "is damaged")) {
		cluster_dump_logs(&c);
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	assert_true(cluster_log_contains(&c, down, "is damaged"));

	/* The majority still confirms publishes. */
	assert_int_equal(raftmq_publish(h, &m, NULL), 0);
	raftmq_close(h);
	cluster_destroy(&c);
}

/* ---------------------------------------------------------------------
 * Bad input over a raw socket. */

static int raw_connect(const char *addr)
{
	struct sockaddr_in sa;
	char host[64];
	const char *colon = strrchr(addr, ':');
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	inet_pton(AF_INET, host, &sa.sin_addr);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	{
		struct timeval tv = {10, 0};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	}
	return fd;
}

static void raw_send(int fd, const void *p, size_t n)
{
	assert_int_equal(write(fd, p, n), (ssize_t)n);
}

static void raw_send_msg(int fd, const struct wire_msg *m)
{
	struct wire_buf b;
	wire_buf_init(&b);
	assert_int_equal(wire_encode(&b, m), 0);
	raw_send(fd, b.data, b.len);
	wire_buf_free(&b);
}

/* Reads one frame and decodes it into *m (body kept in `body`). Returns 0,
 * or -1 when the connection closed. */
static int raw_recv(int fd, char *body, size_t cap, struct wire_msg *m)
{
	unsigned char pre[4];
	size_t len, got = 0;

	while (got < 4) {
		ssize_t r = read(fd, pre + got, 4 - got);
		if (r <= 0) {
			return -1;
		}
		got += (size_t)r;
	}
	len = ((size_t)pre[0] << 24) | ((size_t)pre[1] << 16) |
	      ((size_t)pre[2] << 8) | pre[3];
	assert_true(len <= cap);
	for (got = 0; got < len;) {
		ssize_t r = read(fd, body + got, len - got);
		if (r <= 0) {
			return -1;
		}
		got += (size_t)r;
	}
	assert_int_equal(wire_decode(body, len, m, NULL, 0), 0);
	return 0;
}

static void raw_hello(int fd, uint32_t version)
{
	struct wire_msg m;
	wire_msg_init(&m, WIRE_OP_HELLO, 1);
	m.version = version;
	m.client.ptr = "raw";
	m.client.len = 3;
	raw_send_msg(fd, &m);
}

static void test_bad_input(void **state)
{
	static char body[1 << 16];
	struct cluster c;
	struct wire_msg m;
	struct raftmq *h;
	int leader, fd;
	(void)state;

	cluster_init(&c, "badinput");
	cluster_start_all(&c);
	leader = cluster_wait_leader(&c, 20000);
	assert_int_not_equal(leader, 0);

	/* Wrong protocol version: a clear error, then the node closes. */
	fd = raw_connect(cluster_addr(&c, 1));
	raw_hello(fd, 99);
	assert_int_equal(raw_recv(fd, body, sizeof body, &m), 0);
	assert_int_equal(m.op, WIRE_OP_ERROR);
	assert_int_equal(m.code, WIRE_EVERSION);
	fprintf(stderr, "bad input: version 99 -> %.*s\n", (int)m.message.len,
	        m.message.ptr);
	close(fd);

	/* Garbage frames get WIRE_EPROTO and the session goes on. */
	fd = raw_connect(cluster_addr(&c, leader));
	raw_hello(fd, WIRE_VERSION);
	assert_int_equal(raw_recv(fd, body, sizeof body, &m), 0);
	assert_int_equal(m.op, WIRE_OP_HELLO_OK);
	for (int k = 0; k < 50; k++) {
		unsigned char junk[20] = {0, 0, 0, 16};
		for (int j = 4; j < 20; j++) {
			junk[j] = (unsigned char)(k * 31 + j * 7);
		}
		raw_send(fd, junk, sizeof junk);
		assert_int_equal(raw_recv(fd, body, sizeof body, &m), 0);
		assert_int_equal(m.op, WIRE_OP_ERROR);
		assert_int_equal(m.code, WIRE_EPROTO);
	}
	/* Unknown queue. */
	wire_msg_init(&m, WIRE_OP_PUBLISH, 7);
	m.present = WIRE_BIT(WIRE_F_KEY) | WIRE_BIT(WIRE_F_PAYLOAD);
	m.key.ptr = "no-such-queue";
	m.key.len = 13;
	m.payload.ptr = "x";
	m.payload.len = 1;
	raw_send_msg(fd, &m);
	assert_int_equal(raw_recv(fd, body, sizeof body, &m), 0);
	assert_int_equal(m.op, WIRE_OP_ERROR);
	assert_int_equal(m.req_id, 7);
	assert_int_equal(m.code, WIRE_ENOQUEUE);
	fprintf(stderr, "bad input: unknown queue -> %.*s\n",
	        (int)m.message.len, m.message.ptr);
	/* An oversize frame: a clear error, then the node closes. */
	{
		unsigned char big[4] = {0x7f, 0xff, 0xff, 0xff};
		raw_send(fd, big, 4);
		assert_int_equal(raw_recv(fd, body, sizeof body, &m), 0);
		assert_int_equal(m.op, WIRE_OP_ERROR);
		assert_int_equal(m.code, WIRE_EFRAME);
		fprintf(stderr, "bad input: oversize frame -> %.*s\n",
		        (int)m.message.len, m.message.ptr);
		assert_int_equal(raw_recv(fd, body, sizeof body, &m), -1);
	}
	close(fd);

	/* A request before HELLO. */
	fd = raw_connect(cluster_addr(&c, leader));
	wire_msg_init(&m, WIRE_OP_STATUS, 3);
	raw_send_msg(fd, &m);
	assert_int_equal(raw_recv(fd, body, sizeof body, &m), 0);
	assert_int_equal(m.op, WIRE_OP_ERROR);
	assert_int_equal(m.code, WIRE_EHELLO);
	close(fd);

	/* Every node still serves. */
	for (int i = 1; i <= CLUSTER_N; i++) {
		struct raftmq_confirm conf;
		struct raftmq_message msg;
		h = client_for(cluster_addr(&c, i), 10000);
		assert_int_equal(declare_with_retry(h, "ok"), 0);
		memset(&msg, 0, sizeof msg);
		msg.key = "ok";
		msg.payload = "fine";
		msg.payload_len = 4;
		assert_int_equal(raftmq_publish(h, &msg, &conf), 0);
		assert_int_equal(conf.seq, (uint64_t)i);
		raftmq_close(h);
	}
	for (int i = 1; i <= CLUSTER_N; i++) {
		assert_true(c.pid[i] > 0 && kill(c.pid[i], 0) == 0);
	}
	cluster_destroy(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bad_input),
	    cmocka_unit_test(test_full_restart),
	    cmocka_unit_test(test_snapshot_catch_up),
	    cmocka_unit_test(test_damaged_snapshot),
	    cmocka_unit_test(test_leader_gone),
	    cmocka_unit_test(test_failover),
	};
	signal(SIGPIPE, SIG_IGN);
	if (getenv("TEST_FILTER") != NULL) {
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
