/* node/watch: a follower keeps one idle TCP connection to the leader's client
 * port, so that it learns at once when the leader's process dies.
 *
 * When a process crashes or is SIGKILLed, its kernel closes every socket it
 * had, and the follower reads EOF (or a reset) within a round trip. Raft
 * alone would only notice the missing heartbeats after one to two election
 * timeouts. On EOF from the leader it still follows, the follower calls
 * rg_leader_gone(), which shortens the wait for heartbeats until a leader is
 * known again. A leader that is slow, paused or cut off by the network keeps
 * its sockets open, so those cases still wait for the normal timeout; a
 * false alarm (the leader closed the connection but lives) costs nothing,
 * since its heartbeats keep resetting the timer.
 *
 * The connection carries one HELLO (heartbeats off, so that the leader's
 * HELLO deadline does not close it and fake a dead leader) and nothing
 * else; the HELLO_OK is read and ignored. It is reopened after
 * WATCH_RETRY_MS when it breaks, and follows the leader when the leader
 * changes. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "node.h"

#define WATCH_RETRY_MS 1000

static void watch_closed(uv_handle_t *h)
{
	struct node *n = h->data;

	n->watch.open = 0;
	n->watch.leader = 0;
	if (!n->stopping) {
		node_watch_update(n);
	}
}

static void watch_drop(struct node *n)
{
	if (n->watch.open && !uv_is_closing((uv_handle_t *)&n->watch.tcp)) {
		uv_close((uv_handle_t *)&n->watch.tcp, watch_closed);
	}
}

static void watch_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct node *n = h->data;
	(void)hint;
	*buf = uv_buf_init(n->watch.scratch, sizeof n->watch.scratch);
}

static void watch_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct node *n = stream->data;
	uint64_t leader = n->watch.leader;
	(void)buf;

	if (nread >= 0) {
		return; /* HELLO_OK, ignored */
	}
	if (n->role == RG_ROLE_FOLLOWER && n->leader_id == leader) {
		LOG_INFO("link to leader %llu closed by its host (%s)",
		         (unsigned long long)leader, uv_strerror((int)nread));
		rg_leader_gone(n->rg, leader);
	}
	n->watch.retry_at = uv_now(n->loop) + WATCH_RETRY_MS;
	watch_drop(n);
}

static void watch_written(uv_write_t *req, int status)
{
	(void)req;
	(void)status; /* a broken link shows up as a read error */
}

/* Says HELLO, without heartbeats: an idle session the leader keeps. */
static void watch_hello(struct node *n)
{
	struct wire_buf b;
	struct wire_msg m;
	uv_buf_t ub;

	wire_buf_init(&b);
	wire_msg_init(&m, WIRE_OP_HELLO, 1);
	m.present = WIRE_BIT(WIRE_F_VERSION) | WIRE_BIT(WIRE_F_CLIENT);
	m.version = WIRE_VERSION;
	m.client.ptr = "raftmq-node-watch";
	m.client.len = 17;
	if (wire_encode(&b, &m) == 0 && b.len <= sizeof n->watch.hello) {
		memcpy(n->watch.hello, b.data, b.len);
		ub = uv_buf_init(n->watch.hello, (unsigned)b.len);
		if (uv_write(&n->watch.wreq, (uv_stream_t *)&n->watch.tcp, &ub,
		             1, watch_written) != 0) {
			LOG_DEBUG("watch: HELLO not sent");
		}
	}
	wire_buf_free(&b);
}

static void watch_connected(uv_connect_t *req, int status)
{
	struct node *n = req->data;

	if (status != 0) {
		if (status != UV_ECANCELED) {
			n->watch.retry_at = uv_now(n->loop) + WATCH_RETRY_MS;
		}
		watch_drop(n);
		return;
	}
	uv_read_start((uv_stream_t *)&n->watch.tcp, watch_alloc, watch_read);
	watch_hello(n);
}

static void watch_connect(struct node *n)
{
	const struct node_member *m = node_config_member(n->cfg, n->leader_id);
	struct sockaddr_storage sa;
	int rv;

	if (m == NULL || node_resolve(m->client_address, &sa) != 0) {
		n->watch.retry_at = uv_now(n->loop) + WATCH_RETRY_MS;
		return;
	}
	uv_tcp_init(n->loop, &n->watch.tcp);
	n->watch.tcp.data = n;
	n->watch.open = 1;
	n->watch.leader = n->leader_id;
	n->watch.req.data = n;
	rv = uv_tcp_connect(&n->watch.req, &n->watch.tcp,
	                    (struct sockaddr *)&sa, watch_connected);
	if (rv != 0) {
		n->watch.retry_at = uv_now(n->loop) + WATCH_RETRY_MS;
		watch_drop(n);
	}
}

void node_watch_update(struct node *n)
{
	int want = !n->stopping && n->role == RG_ROLE_FOLLOWER &&
	           n->leader_id != 0 && n->leader_id != n->cfg->id;

	if (n->watch.open) {
		if (!want || n->watch.leader != n->leader_id) {
			watch_drop(n); /* watch_closed() comes back here */
		}
		return;
	}
	if (want && uv_now(n->loop) >= n->watch.retry_at) {
		watch_connect(n);
	}
}

void node_watch_stop(struct node *n)
{
	watch_drop(n);
}
