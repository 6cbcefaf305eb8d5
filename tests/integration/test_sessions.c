/* tests/integration/test_sessions: client sessions of real raftmq-node
 * processes on 127.0.0.1, through libraftmq and raw sockets.
 *
 * - slow consumer: a consumer that reads slowly through a follower, with
 *   more bytes in flight than the old 64 MiB session cut-off, gets every
 *   message once (no close, no redelivery, nothing dead-lettered);
 * - silent client: a raw client that negotiated 200 ms heartbeats and then
 *   stops reading and sending, on the leader and through a follower, is
 *   closed, and its delivery goes to another consumer long before the ack
 *   timeout;
 * - paused follower: a follower that stops (SIGSTOP) while it proxies a
 *   consumer leaves a silent link on the leader, which the leader closes:
 *   the delivery goes to another consumer long before the ack timeout;
 * - HELLO deadline: a connection that never says HELLO is closed after
 *   about 10 s, with a clear error;
 * - unknown outcome: a session closed for a non-retryable reason (a frame
 *   above the limit) answers its pending requests with the retryable 105,
 *   the reason in the text. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "raw_util.h"

#include "client/raftmq.h"
#include "cluster_util.h"
#include "wire/wire.h"

static struct raftmq *client_for(const char *servers, int timeout_ms,
                                 int heartbeat_ms)
{
	struct raftmq_options o;
	struct raftmq *h;

	raftmq_options_default(&o);
	o.servers = servers;
	o.timeout_ms = timeout_ms;
	o.client_name = "test_sessions";
	o.heartbeat_ms = heartbeat_ms;
	o.window = 64;
	h = raftmq_new(&o);
	assert_non_null(h);
	return h;
}

static int start_cluster(struct cluster *c, const char *name)
{
	int leader;

	cluster_init(c, name);
	cluster_start_all(c);
	leader = cluster_wait_leader(c, 20000);
	assert_int_not_equal(leader, 0);
	return leader;
}

static int a_follower(int leader)
{
	return leader == 1 ? 2 : 1;
}

static void declare(struct raftmq *h, const char *q,
                    const struct raftmq_queue_opts *o)
{
	int rv = -1;

	for (int i = 0; i < 50 && rv != 0; i++) {
		rv = raftmq_queue_declare(h, q, o, NULL, NULL);
		if (rv != 0) {
			sleep_ms(200);
		}
	}
	assert_int_equal(rv, 0);
}

static void publish_one(struct raftmq *h, const char *q, const char *body)
{
	struct raftmq_message m;

	memset(&m, 0, sizeof m);
	m.key = q;
	m.payload = body;
	m.payload_len = strlen(body);
	assert_int_equal(raftmq_publish(h, &m, NULL), 0);
}

/* ---------------------------------------------------------------------
 * Raw sockets. */

static int raw_connect(const char *addr)
{
	return raw_connect_timeout(addr, 15);
}

/* ---------------------------------------------------------------------
 * A slow consumer through a follower. */

#define SLOW_N       300
#define SLOW_PAYLOAD (230 * 1000)

static void test_slow_consumer(void **state)
{
	static unsigned char seen[SLOW_N + 1];
	struct raftmq_queue_opts qo;
	struct raftmq_queue_stats st;
	struct raftmq_message m;
	struct raftmq *pub, *con;
	struct cluster c;
	char *payload = malloc(SLOW_PAYLOAD);
	int leader, follower, got = 0, redelivered = 0;
	uint64_t t0;
	(void)state;

	assert_non_null(payload);
	leader = start_cluster(&c, "slow");
	follower = a_follower(leader);
	pub = client_for(cluster_addr(&c, leader), 30000, 0);
	memset(&qo, 0, sizeof qo);
	qo.ack_timeout = 120000;
	qo.max_deliveries = 3;
	declare(pub, "big", &qo);
	/* 69 MB: more than the 64 MiB after which the node used to cut a
	 * session off. */
	memset(&m, 0, sizeof m);
	m.key = "big";
	m.payload = payload;
	m.payload_len = SLOW_PAYLOAD;
	for (int i = 1; i <= SLOW_N; i++) {
		memset(payload, 'a' + i % 26, SLOW_PAYLOAD);
		assert_int_equal(raftmq_publish_async(pub, &m, NULL, NULL), 0);
	}
	assert_int_equal(raftmq_wait_confirms(pub, 120000), 0);

	/* One consumer through the follower with room for everything; it
	 * does not read for 3 s (its node's buffers fill), then reads
	 * slowly. */
	con = client_for(cluster_addr(&c, follower), 30000, 0);
	assert_int_equal(raftmq_consume(con, "big", SLOW_N, NULL), 0);
	sleep_ms(3000);
	t0 = now_ms();
	while (got < SLOW_N && now_ms() - t0 < 90000) {
		struct raftmq_delivery *d;
		int rv = raftmq_next_delivery(con, 1000, &d);

		if (rv == RAFTMQ_ETIMEOUT) {
			continue;
		}
		assert_int_equal(rv, 0);
		assert_int_equal(d->payload_len, SLOW_PAYLOAD);
		assert_true(d->seq >= 1 && d->seq <= SLOW_N);
		if (d->redelivered) {
			redelivered++;
		}
		if (!seen[d->seq]) {
			seen[d->seq] = 1;
			got++;
		}
		assert_int_equal(raftmq_ack_async(con, d->queue_id, d->seq), 0);
		raftmq_delivery_free(d);
		if (got % 10 == 0) {
			sleep_ms(20);
		}
	}
	assert_int_equal(raftmq_wait_acks(con, 20000), 0);
	fprintf(stderr, "slow consumer: %d of %d in %llu ms, %d redelivered\n",
	        got, SLOW_N, (unsigned long long)(now_ms() - t0), redelivered);
	if (got != SLOW_N || redelivered != 0) {
		cluster_dump_logs(&c);
	}
	assert_int_equal(got, SLOW_N);
	assert_int_equal(redelivered, 0);
	assert_int_equal(raftmq_queue_stats(pub, "big", &st), 0);
	assert_int_equal(st.dead_lettered, 0);
	assert_int_equal(st.acked, SLOW_N);
	assert_int_equal(st.ready + st.in_flight, 0);
	raftmq_close(con);
	raftmq_close(pub);
	free(payload);
	cluster_destroy(&c);
}

/* ---------------------------------------------------------------------
 * Dead peers. */

/* A raw consumer on node `at` negotiates 200 ms heartbeats, receives the
 * one message of queue `q` and then neither reads nor sends. Returns its
 * socket. */
static int silent_consumer(struct cluster *c, int at, const char *q)
{
	static char body[1 << 16];
	struct wire_msg m;
	int fd = raw_connect(cluster_addr(c, at));

	wire_msg_init(&m, WIRE_OP_HELLO, 1);
	m.version = WIRE_VERSION;
	m.client.ptr = "silent";
	m.client.len = 6;
	m.heartbeat = 200;
	raw_send_msg(fd, &m);
	assert_int_equal(raw_recv(fd, body, sizeof body, &m), 0);
	assert_int_equal(m.op, WIRE_OP_HELLO_OK);
	assert_int_equal(m.heartbeat, 200);
	wire_msg_init(&m, WIRE_OP_CONSUME, 2);
	m.queue.ptr = q;
	m.queue.len = (uint32_t)strlen(q);
	m.prefetch = 1;
	raw_send_msg(fd, &m);
	for (;;) {
		assert_int_equal(raw_recv(fd, body, sizeof body, &m), 0);
		if (m.op == WIRE_OP_DELIVER) {
			break;
		}
		assert_int_equal(m.op, WIRE_OP_OK);
	}
	assert_int_equal(m.delivery_count, 1);
	return fd;
}

/* Waits for the message of `q` on a second consumer at node `at`; returns
 * the ms it took. */
static uint64_t redelivered_to_other(struct cluster *c, int at, const char *q,
                                     const char *body)
{
	struct raftmq *h = client_for(cluster_addr(c, at), 20000, 0);
	struct raftmq_delivery *d = NULL;
	uint64_t t0 = now_ms();
	int rv;

	assert_int_equal(raftmq_consume(h, q, 1, NULL), 0);
	rv = raftmq_next_delivery(h, 40000, &d);
	if (rv != 0) {
		cluster_dump_logs(c);
	}
	assert_int_equal(rv, 0);
	assert_string_equal((const char *)d->payload, body);
	assert_int_equal(d->delivery_count, 2);
	assert_int_equal(raftmq_ack(h, d->queue_id, d->seq), 0);
	raftmq_delivery_free(d);
	raftmq_close(h);
	return now_ms() - t0;
}

static void test_silent_client(void **state)
{
	static char body[1 << 16];
	struct raftmq_queue_opts qo;
	struct raftmq *h;
	struct wire_msg m;
	struct cluster c;
	int leader, targets[2];
	(void)state;

	leader = start_cluster(&c, "silent");
	targets[0] = leader;
	targets[1] = a_follower(leader);
	h = client_for(cluster_addr(&c, leader), 20000, 0);
	memset(&qo, 0, sizeof qo);
	qo.ack_timeout = 60000;
	for (int k = 0; k < 2; k++) {
		const char *q = k == 0 ? "hb-leader" : "hb-follower";
		uint64_t t0, took;
		int fd, rv;

		declare(h, q, &qo);
		publish_one(h, q, q);
		fd = silent_consumer(&c, targets[k], q);
		t0 = now_ms();
		took = redelivered_to_other(&c, leader, q, q);
		fprintf(stderr,
		        "silent client on n%d: redelivered after %llu ms "
		        "(ack timeout 60000)\n",
		        targets[k], (unsigned long long)took);
		assert_true(took < 10000);
		/* The node closed the silent connection (after the
		 * heartbeats it queued). */
		while ((rv = raw_recv(fd, body, sizeof body, &m)) == 0) {
		}
		assert_int_equal(rv, -1);
		assert_true(now_ms() - t0 < 15000);
		close(fd);
	}
	raftmq_close(h);
	cluster_destroy(&c);
}

static void test_paused_follower(void **state)
{
	struct raftmq_queue_opts qo;
	struct raftmq_delivery *d;
	struct raftmq *h, *con;
	struct cluster c;
	int leader, follower;
	uint64_t took;
	(void)state;

	leader = start_cluster(&c, "paused");
	follower = a_follower(leader);
	h = client_for(cluster_addr(&c, leader), 20000, 0);
	memset(&qo, 0, sizeof qo);
	qo.ack_timeout = 120000;
	declare(h, "px", &qo);
	publish_one(h, "px", "proxied");
	/* The consumer itself makes no heartbeats: what must notice is the
	 * leader, on its link from the follower. */
	con = client_for(cluster_addr(&c, follower), 20000, -1);
	assert_int_equal(raftmq_consume(con, "px", 1, NULL), 0);
	assert_int_equal(raftmq_next_delivery(con, 10000, &d), 0);
	assert_int_equal(d->delivery_count, 1);
	raftmq_delivery_free(d);
	kill(c.pid[follower], SIGSTOP);
	took = redelivered_to_other(&c, leader, "px", "proxied");
	kill(c.pid[follower], SIGCONT);
	fprintf(stderr,
	        "paused follower: redelivered after %llu ms (ack timeout "
	        "120000)\n",
	        (unsigned long long)took);
	assert_true(took < 40000);
	assert_true(cluster_log_contains(&c, leader, "client silent"));
	raftmq_close(con);
	raftmq_close(h);
	cluster_destroy(&c);
}

static void test_hello_deadline(void **state)
{
	static char body[1 << 16];
	struct wire_msg m;
	struct cluster c;
	uint64_t t0;
	int leader, fd, rv;
	(void)state;

	leader = start_cluster(&c, "hello");
	fd = raw_connect(cluster_addr(&c, a_follower(leader)));
	t0 = now_ms();
	rv = raw_recv_any(fd, body, sizeof body, &m);
	fprintf(stderr, "hello deadline: closed after %llu ms\n",
	        (unsigned long long)(now_ms() - t0));
	assert_int_equal(rv, 0);
	assert_int_equal(m.op, WIRE_OP_ERROR);
	assert_int_equal(m.code, WIRE_EHELLO);
	assert_non_null(memmem(m.message.ptr, m.message.len, "no HELLO", 8));
	assert_true(now_ms() - t0 >= 9000);
	assert_true(now_ms() - t0 < 14000);
	assert_int_equal(raw_recv_any(fd, body, sizeof body, &m), -1);
	close(fd);
	cluster_destroy(&c);
}

static void test_close_unknown_outcome(void **state)
{
	static char body[1 << 16];
	struct raftmq_queue_opts qo;
	struct wire_buf b;
	struct wire_msg m;
	struct raftmq *h;
	struct cluster c;
	int leader, fd, pub_err = 0, frame_err = 0;
	(void)state;

	leader = start_cluster(&c, "unknown");
	h = client_for(cluster_addr(&c, leader), 20000, 0);
	memset(&qo, 0, sizeof qo);
	declare(h, "uo", &qo);
	fd = raw_connect(cluster_addr(&c, leader));
	wire_msg_init(&m, WIRE_OP_HELLO, 1);
	m.version = WIRE_VERSION;
	raw_send_msg(fd, &m);
	assert_int_equal(raw_recv(fd, body, sizeof body, &m), 0);
	assert_int_equal(m.op, WIRE_OP_HELLO_OK);
	/* One write: a publish (batched, so pending) and the prefix of a
	 * frame above the limit, which closes the session at once. */
	wire_buf_init(&b);
	wire_msg_init(&m, WIRE_OP_PUBLISH, 7);
	m.present = WIRE_BIT(WIRE_F_KEY) | WIRE_BIT(WIRE_F_PAYLOAD);
	m.key.ptr = "uo";
	m.key.len = 2;
	m.payload.ptr = "x";
	m.payload.len = 1;
	assert_int_equal(wire_encode(&b, &m), 0);
	assert_int_equal(wire_buf_append(&b, "\x7f\xff\xff\xff", 4), 0);
	assert_int_equal(write(fd, b.data, b.len), (ssize_t)b.len);
	wire_buf_free(&b);
	while (raw_recv(fd, body, sizeof body, &m) == 0) {
		assert_int_equal(m.op, WIRE_OP_ERROR);
		fprintf(stderr, "unknown outcome: req %llu -> %u %.*s\n",
		        (unsigned long long)m.req_id, m.code,
		        (int)m.message.len, m.message.ptr);
		if (m.req_id == 7) {
			assert_int_equal(m.code, WIRE_EUNKNOWN);
			assert_true(m.retryable);
			assert_non_null(memmem(m.message.ptr, m.message.len,
			                       "frame too large", 15));
			pub_err++;
		} else {
			assert_int_equal(m.req_id, 0);
			assert_int_equal(m.code, WIRE_EFRAME);
			frame_err++;
		}
	}
	assert_int_equal(frame_err, 1);
	/* The publish may have been answered (applied) before the close
	 * when the frames arrived apart; on one write it is pending. */
	assert_int_equal(pub_err, 1);
	close(fd);
	raftmq_close(h);
	cluster_destroy(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_silent_client),
	    cmocka_unit_test(test_paused_follower),
	    cmocka_unit_test(test_hello_deadline),
	    cmocka_unit_test(test_close_unknown_outcome),
	    cmocka_unit_test(test_slow_consumer),
	};
	signal(SIGPIPE, SIG_IGN);
	if (getenv("TEST_FILTER") != NULL) {
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
