/* node/proxy: a follower relays a client session to the leader.
 *
 * The follower opens one TCP connection to the leader's client address per
 * proxied session, says HELLO there itself, and then passes the client's
 * frames up and the leader's frames down unchanged. It remembers which
 * request ids are unanswered: when the link breaks, each of them gets a
 * retryable WIRE_EUNKNOWN error (the leader may or may not have committed
 * it), then the client connection is closed so that the client reconnects
 * and re-registers its consumers. Deliveries travel from the leader: the
 * consumer session lives there.
 *
 * The link is a session on the leader like any other: the proxy proposes
 * heartbeats in its HELLO, sends HEARTBEAT when the link is idle and closes
 * the session when the leader stays silent (a half-open link); the leader
 * does the same from its side. HEARTBEATs of the client and of the leader
 * are answered here, never relayed. Neither direction buffers without
 * bound: while the client's output is above a watermark the leader link is
 * not read (and TCP slows the leader down, whose state machine bounds the
 * deliveries in flight), and while the leader link's output is, the client
 * is not read. */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "node.h"
#include "session_ext.h"

/* Request id of the proxy's own HELLO on the upstream link. Client request
 * ids are relayed as they are; a client using this one would only see its
 * reply swallowed, so it is documented as reserved. */
#define PROXY_HELLO_ID UINT64_MAX

static void up_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct session *s = stream->data;
	struct conn *c = &s->up;
	size_t off = 0;

	if (nread < 0) {
		LOG_INFO("session %llx: link to leader %llu lost: %s",
		         (unsigned long long)s->id,
		         (unsigned long long)s->up_leader,
		         uv_strerror((int)nread));
		session_close(s, WIRE_EUNKNOWN,
		              "link to the leader lost; outcome unknown");
		return;
	}
	if (nread == 0) {
		return;
	}
	if (buf->base == NULL) {
		session_close(s, WIRE_ENOMEM, "out of memory");
		return;
	}
	session_ext(s)->up_last_recv = uv_now(s->node->loop);
	c->in_len += (size_t)nread;
	while (!s->closing) {
		size_t body_len;
		uint8_t op;
		uint64_t req_id;
		const char *frame = c->in + off;
		/* The leader's frames are trusted to respect its own limit;
		 * ours may be smaller, so allow a generous bound here. */
		int r = wire_split(frame, c->in_len - off,
		                   4 * s->node->cfg->max_frame, &body_len);
		if (r == WIRE_SPLIT_MORE) {
			break;
		}
		if (r == WIRE_SPLIT_TOOBIG ||
		    wire_peek(frame + WIRE_PREFIX, body_len, &op, &req_id) !=
		        0) {
			session_close(s, WIRE_EUNKNOWN,
			              "bad frame from the leader");
			return;
		}
		off += WIRE_PREFIX + body_len;
		if (op == WIRE_OP_HEARTBEAT) {
			continue; /* the leader is alive; not for the client */
		}
		if (req_id == PROXY_HELLO_ID &&
		    (op == WIRE_OP_HELLO_OK || op == WIRE_OP_ERROR)) {
			struct wire_msg ok;

			if (op == WIRE_OP_ERROR) {
				session_close(s, WIRE_EUNAVAILABLE,
				              "leader refused the proxy");
				return;
			}
			if (wire_decode(frame + WIRE_PREFIX, body_len, &ok,
			                NULL, 0) == 0) {
				session_ext(s)->up_hb = ok.heartbeat;
				session_arm_timer(s);
			}
			continue;
		}
		if (wire_buf_append(&s->c.out, frame, WIRE_PREFIX + body_len) !=
		    0) {
			session_close(s, WIRE_ENOMEM, "out of memory");
			return;
		}
		if (op == WIRE_OP_OK || op == WIRE_OP_ERROR) {
			reqset_remove(&s->pending, req_id);
		}
	}
	if (s->closing) {
		return;
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
	conn_flush(s, &s->c);
	if (!s->closing && session_client_backlog(s) > PROXY_HIGH_WATER &&
	    !session_ext(s)->up_rpaused) {
		/* The client reads slowly: stop reading the leader until it
		 * caught up; TCP tells the leader. Never a close. */
		session_ext(s)->up_rpaused = 1;
		uv_read_stop((uv_stream_t *)&s->up.tcp);
		LOG_DEBUG("session %llx: client output %zu bytes: leader link "
		          "paused",
		          (unsigned long long)s->id, session_client_backlog(s));
	}
}

void proxy_resume_up(struct session *s)
{
	struct session_ext *x = session_ext(s);

	if (!x->up_rpaused || s->closing || !s->up.open) {
		return;
	}
	x->up_rpaused = 0;
	x->up_last_recv = uv_now(s->node->loop);
	uv_read_start((uv_stream_t *)&s->up.tcp, conn_alloc_cb, up_read_cb);
}

void proxy_heartbeat(struct session *s)
{
	struct wire_msg m;

	wire_msg_init(&m, WIRE_OP_HEARTBEAT, 0);
	if (wire_encode(&s->up.out, &m) != 0) {
		session_close(s, WIRE_ENOMEM, "out of memory");
		return;
	}
	conn_flush(s, &s->up);
}

static void up_connect_cb(uv_connect_t *req, int status)
{
	struct session *s = req->data;

	if (s->closing) {
		return;
	}
	if (status != 0) {
		LOG_INFO("session %llx: cannot connect to leader %llu: %s",
		         (unsigned long long)s->id,
		         (unsigned long long)s->up_leader, uv_strerror(status));
		session_close(s, WIRE_EUNAVAILABLE,
		              "cannot reach the leader; retry");
		return;
	}
	s->up_connected = 1;
	session_ext(s)->up_last_recv = uv_now(s->node->loop);
	session_ext(s)->up_last_send = session_ext(s)->up_last_recv;
	uv_tcp_nodelay(&s->up.tcp, 1);
	node_tcp_keepalive(&s->up.tcp);
	uv_read_start((uv_stream_t *)&s->up.tcp, conn_alloc_cb, up_read_cb);
	conn_flush(s, &s->up);
}

int node_resolve(const char *addr, struct sockaddr_storage *out)
{
	struct addrinfo hints, *res = NULL;
	char host[NODE_ADDR_MAX];
	const char *colon = strrchr(addr, ':');
	int rv;

	if (colon == NULL || (size_t)(colon - addr) >= sizeof host) {
		return -1;
	}
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	/* Blocking, but only for names: addresses are parsed at once, and
	 * names (compose service names) resolve from a local resolver. */
	rv = getaddrinfo(host, colon + 1, &hints, &res);
	if (rv != 0) {
		LOG_WARN("resolve %s: %s", addr, gai_strerror(rv));
		return -1;
	}
	memcpy(out, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}

int proxy_start(struct session *s)
{
	struct node *n = s->node;
	const struct node_member *leader =
	    node_config_member(n->cfg, n->leader_id);
	struct sockaddr_storage sa;
	struct wire_msg hello;
	int rv;

	if (leader == NULL || node_resolve(leader->client_address, &sa) != 0) {
		return -1;
	}
	uv_tcp_init(n->loop, &s->up.tcp);
	s->up.tcp.data = s;
	s->up.open = 1;
	s->handles++;
	s->mode = SESSION_PROXY;
	s->up_leader = n->leader_id;
	s->id = ((uint64_t)n->cfg->id << 48) | ++n->next_session;
	if (n->cfg->source_addr[0] != '\0') {
		struct sockaddr_in src;
		if (uv_ip4_addr(n->cfg->source_addr, 0, &src) == 0) {
			uv_tcp_bind(&s->up.tcp, (struct sockaddr *)&src, 0);
		}
	}
	wire_msg_init(&hello, WIRE_OP_HELLO, PROXY_HELLO_ID);
	hello.version = WIRE_VERSION;
	hello.client.ptr = "raftmq-proxy";
	hello.client.len = (uint32_t)strlen("raftmq-proxy");
	hello.heartbeat = node_client_heartbeat(n);
	if (wire_encode(&s->up.out, &hello) != 0) {
		return -1;
	}
	s->up_connect.data = s;
	rv = uv_tcp_connect(&s->up_connect, &s->up.tcp, (struct sockaddr *)&sa,
	                    up_connect_cb);
	if (rv != 0) {
		LOG_WARN("connect to leader %s: %s", leader->client_address,
		         uv_strerror(rv));
		return -1;
	}
	LOG_DEBUG("session %llx: proxied to leader %llu at %s",
	          (unsigned long long)s->id, (unsigned long long)n->leader_id,
	          leader->client_address);
	return 0;
}

void proxy_forward(struct session *s, const char *frame, size_t len,
                   const struct wire_msg *m)
{
	(void)m;
	if (wire_buf_append(&s->up.out, frame, len) != 0) {
		session_close(s, WIRE_ENOMEM, "out of memory");
		return;
	}
	if (s->up_connected) {
		conn_flush(s, &s->up);
	}
	if (!s->closing && s->up.out.len + s->up.wbuf.len > PROXY_HIGH_WATER &&
	    !session_ext(s)->c_rpaused) {
		/* The leader does not keep up: stop reading the client until
		 * the link drained (server.c's write_cb resumes it). */
		session_ext(s)->c_rpaused = 1;
		uv_read_stop((uv_stream_t *)&s->c.tcp);
		LOG_DEBUG("session %llx: leader link congested: client paused",
		          (unsigned long long)s->id);
	}
}
