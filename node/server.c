/* node/server: the client listener, session lifecycle, framing and dispatch.
 *
 * Each session owns up to two TCP handles (the client, and in PROXY mode the
 * link to the leader). A session is never freed inside one of its own
 * callbacks' callers: session_close() only starts closing; memory goes in
 * the last handle's close callback (libuv's two-phase close). */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "node.h"
#include "session_ext.h"

#define READ_CHUNK           (64 * 1024)
#define MAX_PENDING_REQUESTS 65536

/* ---------------------------------------------------------------------
 * Liveness settings. */

/* --hello-timeout and --client-heartbeat (node_config fields hello_timeout
 * and client_heartbeat, in ms) once node/config.c has them; until then the
 * defaults. */
unsigned node_hello_timeout(const struct node *n)
{
	return n->cfg->hello_timeout;
}

unsigned node_client_heartbeat(const struct node *n)
{
	return n->cfg->client_heartbeat;
}

uint32_t node_heartbeat_grant(const struct node *n, uint32_t proposed)
{
	uint32_t max = node_client_heartbeat(n);

	if (proposed == 0 || max == 0) {
		return 0;
	}
	if (proposed > max) {
		proposed = max;
	}
	return proposed < NODE_HEARTBEAT_MIN ? NODE_HEARTBEAT_MIN : proposed;
}

void node_tcp_keepalive(uv_tcp_t *t)
{
	uv_os_fd_t fd;
	int intvl = 10, cnt = 3;

	if (uv_tcp_keepalive(t, 1, 30) != 0 ||
	    uv_fileno((uv_handle_t *)t, &fd) != 0) {
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
}

/* ---------------------------------------------------------------------
 * Session table: LOCAL sessions by id, for routing FSM results. */

static size_t bucket_of(uint64_t id)
{
	return (size_t)((id * 0x9E3779B97F4A7C15ULL) >> 52) %
	       NODE_SESSION_BUCKETS;
}

struct session *node_session_find(struct node *n, uint64_t id)
{
	struct session *s = n->by_id[bucket_of(id)];
	while (s != NULL && s->id != id) {
		s = s->hnext;
	}
	return s;
}

static void session_index(struct session *s)
{
	size_t b = bucket_of(s->id);
	s->hnext = s->node->by_id[b];
	s->node->by_id[b] = s;
}

static void session_unindex(struct session *s)
{
	struct session **p = &s->node->by_id[bucket_of(s->id)];
	while (*p != NULL && *p != s) {
		p = &(*p)->hnext;
	}
	if (*p == s) {
		*p = s->hnext;
	}
	s->hnext = NULL;
}

/* ---------------------------------------------------------------------
 * Output. */

static void write_cb(uv_write_t *req, int status);

void conn_flush(struct session *s, struct conn *c)
{
	struct wire_buf tmp;
	uv_buf_t b;
	int rv;

	if (c->writing || c->out.len == 0 || !c->open) {
		return;
	}
	/* Swap the queued bytes into the write buffer, so that new output
	 * keeps accumulating while this write is in flight. */
	tmp = c->wbuf;
	c->wbuf = c->out;
	c->out = tmp;
	c->out.len = 0;
	if (c == &s->c) {
		session_ext(s)->wbuf_deliv = session_ext(s)->out_deliv;
		session_ext(s)->out_deliv = 0;
		session_ext(s)->last_send = uv_now(s->node->loop);
	} else {
		session_ext(s)->up_last_send = uv_now(s->node->loop);
	}
	b = uv_buf_init(c->wbuf.data, (unsigned)c->wbuf.len);
	c->wreq.data = s;
	rv = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, write_cb);
	if (rv != 0) {
		c->wbuf.len = 0;
		session_close(s, WIRE_EUNKNOWN, uv_strerror(rv));
		return;
	}
	c->writing = 1;
}

size_t session_client_backlog(const struct session *s)
{
	return s->c.out.len + s->c.wbuf.len;
}

static void process_input(struct session *s);
static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void close_handles(struct session *s);

static void write_cb(uv_write_t *req, int status)
{
	struct session *s = req->data;
	struct conn *c = req == &s->c.wreq ? &s->c : &s->up;

	c->writing = 0;
	c->wbuf.len = 0;
	if (c == &s->c) {
		session_ext(s)->wbuf_deliv = 0;
	}
	if (status != 0) {
		if (!s->closing) {
			session_close(s, WIRE_EUNKNOWN, uv_strerror(status));
		} else {
			close_handles(s);
		}
		return;
	}
	if (s->closing) {
		if (c == &s->c && c->out.len > 0) {
			conn_flush(s, c);
		} else if (c == &s->c) {
			close_handles(s);
		}
		return;
	}
	conn_flush(s, c);
	if (s->mode != SESSION_PROXY || s->closing) {
		return;
	}
	/* PROXY flow control: a side that drained lets the other one be read
	 * again. */
	if (c == &s->c && session_ext(s)->up_rpaused &&
	    session_client_backlog(s) < PROXY_LOW_WATER) {
		proxy_resume_up(s);
	} else if (c == &s->up && session_ext(s)->c_rpaused &&
	           s->up.out.len + s->up.wbuf.len < PROXY_LOW_WATER) {
		session_ext(s)->c_rpaused = 0;
		session_ext(s)->last_recv = uv_now(s->node->loop);
		uv_read_start((uv_stream_t *)&s->c.tcp, conn_alloc_cb, read_cb);
		process_input(s);
	}
}

/* A session whose client does not read its replies is cut off rather than
 * allowed to hold unbounded memory. Deliveries are not counted: the state
 * machine bounds the bytes in flight to a session (its session window), and
 * closing the session would only hand them to the next consumer after
 * charging a delivery that never reached this one. */
static int check_output_bound(struct session *s)
{
	struct session_ext *x = session_ext(s);
	size_t replies =
	    (s->c.out.len - x->out_deliv) + (s->c.wbuf.len - x->wbuf_deliv);

	if (replies > s->node->cfg->max_session_output) {
		LOG_WARN("session %llx: client does not read its replies "
		         "(%zu bytes queued): closing",
		         (unsigned long long)s->id, replies);
		session_close(s, WIRE_EBUSY, "client does not read its output");
		return -1;
	}
	return 0;
}

int session_queue_delivery(struct session *s, const struct wire_msg *m)
{
	size_t before = s->c.out.len;

	if (s->closing) {
		return 0;
	}
	if (wire_encode(&s->c.out, m) != 0) {
		session_close(s, WIRE_ENOMEM, "out of memory");
		return -1;
	}
	session_ext(s)->out_deliv += s->c.out.len - before;
	conn_flush(s, &s->c);
	return 0;
}

int session_write_error(struct session *s, uint64_t req_id, int code,
                        const char *msg)
{
	const char *leader = NULL;
	const struct node_member *m;

	if (code == WIRE_ENOTLEADER && s->node->leader_id != 0) {
		m = node_config_member(s->node->cfg, s->node->leader_id);
		leader = m != NULL ? m->client_address : NULL;
	}
	if (wire_encode_error(&s->c.out, req_id, code,
	                      msg != NULL ? msg : wire_strerror(code),
	                      leader) != 0) {
		return -1;
	}
	reqset_remove(&s->pending, req_id);
	if (!s->closing) {
		conn_flush(s, &s->c);
	}
	return 0;
}

void session_reply_done(struct session *s, uint64_t req_id)
{
	reqset_remove(&s->pending, req_id);
	if (check_output_bound(s) == 0) {
		conn_flush(s, &s->c);
	}
}

/* ---------------------------------------------------------------------
 * Closing. */

static void session_free(struct session *s)
{
	struct node *n = s->node;

	if (s->prev != NULL) {
		s->prev->next = s->next;
	} else if (n->sessions == s) {
		n->sessions = s->next;
	}
	if (s->next != NULL) {
		s->next->prev = s->prev;
	}
	n->n_sessions--;
	free(s->c.in);
	wire_buf_free(&s->c.out);
	wire_buf_free(&s->c.wbuf);
	free(s->up.in);
	wire_buf_free(&s->up.out);
	wire_buf_free(&s->up.wbuf);
	reqset_free(&s->pending);
	free(s);
}

static void handle_closed(uv_handle_t *h)
{
	struct session *s = h->data;
	if (--s->handles == 0) {
		session_free(s);
	}
}

static void close_conn(struct conn *c)
{
	if (c->open) {
		c->open = 0;
		uv_close((uv_handle_t *)&c->tcp, handle_closed);
	}
}

static void close_handles(struct session *s)
{
	struct session_ext *x = session_ext(s);

	if (x->timer_open) {
		x->timer_open = 0;
		uv_close((uv_handle_t *)&x->timer, handle_closed);
	}
	close_conn(&s->up);
	close_conn(&s->c);
}

/* A closing session whose client does not take its last output (a dead
 * peer keeps a write pending for as long as TCP retransmits, many minutes)
 * is cut after this long. */
#define SESSION_LINGER_MS 10000

static void linger_cb(uv_timer_t *t)
{
	close_handles(t->data);
}

struct fail_ctx {
	struct session *s;
	int code;
	const char *why;
};

static void fail_one(void *arg, uint64_t req_id)
{
	struct fail_ctx *f = arg;
	wire_encode_error(&f->s->c.out, req_id, f->code, f->why, NULL);
}

void session_close(struct session *s, int code, const char *why)
{
	struct node *n = s->node;
	struct fail_ctx f = {s, code, why};
	char text[256];

	if (s->closing) {
		return;
	}
	s->closing = 1;
	/* A request still pending may have been proposed: whatever closes the
	 * session, its outcome is unknown, which a non-retryable code would
	 * misstate. The reason goes in the text. */
	if (!wire_retryable(code)) {
		snprintf(text, sizeof text, "outcome unknown: %s",
		         why != NULL ? why : wire_strerror(code));
		f.code = WIRE_EUNKNOWN;
		f.why = text;
	}
	if (s->paused) {
		s->paused = 0;
		n->n_paused--;
	}
	LOG_DEBUG("session %llx closing: %s", (unsigned long long)s->id,
	          why != NULL ? why : "");
	if (s->mode == SESSION_LOCAL) {
		session_unindex(s);
		if (n->serving && !n->stopping && s->fsm_state) {
			/* Its consumers go, its deliveries become ready. A
			 * session that never consumed nor got has nothing in
			 * the FSM: its close costs no Raft entry. */
			struct fsm_cmd cmd;
			memset(&cmd, 0, sizeof cmd);
			cmd.type = FSM_CMD_SESSION_DOWN;
			cmd.u.session_down.session = s->id;
			node_submit_cmd(n, &cmd);
		}
	}
	/* Every unanswered request learns that its outcome is unknown (or
	 * that the node stops): never a silent drop, never a false success. */
	if (s->c.open && s->pending.n > 0) {
		reqset_foreach(&s->pending, fail_one, &f);
	}
	reqset_free(&s->pending);
	close_conn(&s->up);
	if (s->c.open) {
		uv_read_stop((uv_stream_t *)&s->c.tcp);
	}
	if (session_ext(s)->timer_open) {
		uv_timer_start(&session_ext(s)->timer, linger_cb,
		               SESSION_LINGER_MS, 0);
	}
	if (s->c.writing) {
		return; /* write_cb (or linger_cb) finishes the job */
	}
	if (s->c.out.len > 0 && s->c.open) {
		conn_flush(s, &s->c);
		if (s->c.writing) {
			return;
		}
	}
	close_handles(s);
}

void node_close_sessions(struct node *n, int code, const char *why,
                         int only_local)
{
	struct session *s = n->sessions;
	while (s != NULL) {
		struct session *next = s->next;
		if (!only_local || s->mode == SESSION_LOCAL) {
			session_close(s, code, why);
		}
		s = next;
	}
}

/* ---------------------------------------------------------------------
 * Input. */

/* Read buffers of both connections of a session (client and leader link). */
void conn_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct session *s = h->data;
	struct conn *c = h == (uv_handle_t *)&s->c.tcp ? &s->c : &s->up;
	(void)hint;

	if (c->in_cap - c->in_len < READ_CHUNK) {
		size_t cap = c->in_cap == 0 ? 2 * READ_CHUNK : c->in_cap * 2;
		char *p = realloc(c->in, cap);
		if (p == NULL) {
			buf->base = NULL;
			buf->len = 0;
			return;
		}
		c->in = p;
		c->in_cap = cap;
	}
	buf->base = c->in + c->in_len;
	buf->len = c->in_cap - c->in_len;
}

void session_status(struct session *s, uint64_t req_id)
{
	struct node *n = s->node;
	struct wire_member members[NODE_MAX_MEMBERS];
	struct rg_info info;
	struct wire_msg m;
	const char *role;

	rg_info(n->rg, &info);
	role = rg_role_name(info.role);
	for (unsigned i = 0; i < n->cfg->n_members; i++) {
		const struct node_member *nm = &n->cfg->members[i];
		members[i].id = nm->id;
		members[i].raft_address.ptr = nm->raft_address;
		members[i].raft_address.len =
		    (uint32_t)strlen(nm->raft_address);
		members[i].client_address.ptr = nm->client_address;
		members[i].client_address.len =
		    (uint32_t)strlen(nm->client_address);
	}
	wire_msg_init(&m, WIRE_OP_OK, req_id);
	m.present = WIRE_BIT(WIRE_F_NODE_ID) | WIRE_BIT(WIRE_F_ROLE) |
	            WIRE_BIT(WIRE_F_LEADER_ID) | WIRE_BIT(WIRE_F_TERM) |
	            WIRE_BIT(WIRE_F_COMMIT_INDEX) |
	            WIRE_BIT(WIRE_F_APPLIED_INDEX) |
	            WIRE_BIT(WIRE_F_LAST_INDEX) | WIRE_BIT(WIRE_F_MEMBERS);
	m.node_id = n->cfg->id;
	m.role.ptr = role;
	m.role.len = (uint32_t)strlen(role);
	m.leader_id = info.leader_id;
	m.term = info.term;
	m.commit_index = info.commit_index;
	m.applied_index = info.applied_index;
	m.last_index = info.last_index;
	m.members = members;
	m.n_members = n->cfg->n_members;
	node_status_fill(n, &m);
	if (wire_encode(&s->c.out, &m) != 0) {
		session_close(s, WIRE_ENOMEM, "out of memory");
		return;
	}
	session_reply_done(s, req_id);
}

static void answer_hello(struct session *s, const struct wire_msg *req)
{
	struct wire_msg m;

	if (req->version != WIRE_VERSION) {
		char msg[96];
		snprintf(msg, sizeof msg,
		         "protocol version %u not supported: server speaks %d",
		         req->version, WIRE_VERSION);
		session_write_error(s, req->req_id, WIRE_EVERSION, msg);
		session_close(s, WIRE_EVERSION, msg);
		return;
	}
	s->hello = 1;
	wire_msg_init(&m, WIRE_OP_HELLO_OK, req->req_id);
	m.version = WIRE_VERSION;
	m.node_id = s->node->cfg->id;
	m.max_frame = (uint32_t)s->node->cfg->max_frame;
	m.max_payload = node_max_payload(s->node);
	/* Like AMQP's tune: the client proposes, the node grants at most its
	 * own interval; 0 on either side = no heartbeats. */
	m.heartbeat = node_heartbeat_grant(s->node, req->heartbeat);
	if (wire_encode(&s->c.out, &m) != 0) {
		session_close(s, WIRE_ENOMEM, "out of memory");
		return;
	}
	session_ext(s)->hb = m.heartbeat;
	session_ext(s)->last_recv = uv_now(s->node->loop);
	session_arm_timer(s);
	conn_flush(s, &s->c);
}

/* Decides how a NEW session is served: locally when this node is the
 * serving leader, through a proxy when another node leads. Returns 0 when
 * the session may go on, -1 when the request was answered with an error. */
static int choose_mode(struct session *s, uint64_t req_id)
{
	struct node *n = s->node;

	const char *refusal;

	if (n->stopping) {
		session_write_error(s, req_id, WIRE_ESHUTDOWN,
		                    "node is shutting down");
		return -1;
	}
	if ((refusal = node_refusal(n)) != NULL) {
		session_write_error(s, req_id, WIRE_EUNAVAILABLE, refusal);
		return -1;
	}
	if (n->serving) {
		s->mode = SESSION_LOCAL;
		s->id = ((uint64_t)n->cfg->id << 48) | ++n->next_session;
		session_index(s);
		return 0;
	}
	if (n->role != RG_ROLE_LEADER && n->leader_id != 0 &&
	    n->leader_id != n->cfg->id) {
		if (proxy_start(s) == 0) {
			return 0;
		}
		session_write_error(s, req_id, WIRE_EUNAVAILABLE,
		                    "cannot reach the leader; retry");
		session_close(s, WIRE_EUNAVAILABLE, "cannot reach the leader");
		return -1;
	}
	session_write_error(s, req_id, WIRE_EUNAVAILABLE,
	                    n->role == RG_ROLE_LEADER
	                        ? "leader is not ready yet"
	                        : "no leader elected yet");
	return -1;
}

/* Handles one complete frame from the client. */
static void on_frame(struct session *s, const char *frame, size_t body_len)
{
	struct node *n = s->node;
	const char *body = frame + WIRE_PREFIX;
	struct wire_msg m;
	int rv;

	rv = wire_decode(
	    body, body_len, &m, n->hdr_scratch,
	    (uint32_t)(sizeof n->hdr_scratch / sizeof n->hdr_scratch[0]));
	if (rv != 0) {
		char msg[160];
		snprintf(msg, sizeof msg, "malformed frame: %s",
		         m.err != NULL ? m.err : "bad msgpack");
		LOG_DEBUG("session %llx: %s", (unsigned long long)s->id, msg);
		session_write_error(s, m.req_id, WIRE_EPROTO, msg);
		return;
	}
	if (m.op == WIRE_OP_HEARTBEAT) {
		return; /* read_cb noted that the client is alive */
	}
	if (m.op == WIRE_OP_HELLO) {
		answer_hello(s, &m);
		return;
	}
	if (!s->hello) {
		session_write_error(s, m.req_id, WIRE_EHELLO,
		                    "send HELLO first");
		return;
	}
	if (m.op >= WIRE_OP_REQUEST_MAX) {
		session_write_error(s, m.req_id, WIRE_EPROTO,
		                    "not a request op");
		return;
	}
	if (m.op == WIRE_OP_STATUS) {
		session_status(s, m.req_id);
		return;
	}
	if (s->pending.n >= MAX_PENDING_REQUESTS) {
		session_write_error(s, m.req_id, WIRE_EBUSY,
		                    "too many requests in flight");
		return;
	}
	if (s->mode == SESSION_NEW && choose_mode(s, m.req_id) != 0) {
		return;
	}
	if (reqset_add(&s->pending, m.req_id) != 0) {
		session_close(s, WIRE_ENOMEM, "out of memory");
		return;
	}
	if (s->mode == SESSION_PROXY) {
		proxy_forward(s, frame, WIRE_PREFIX + body_len, &m);
		return;
	}
	session_answer_local(s, &m);
}

/* Handles every complete frame in the input buffer. A LOCAL session stops
 * (and stops reading) while the leader's batch is full and every proposal
 * slot is taken: back-pressure instead of errors. node_resume_sessions()
 * goes on once a proposal completes. */
static void process_input(struct session *s)
{
	struct conn *c = &s->c;
	struct node *n = s->node;
	size_t off = 0;

	while (!s->closing) {
		size_t body_len;
		int r = wire_split(c->in + off, c->in_len - off,
		                   n->cfg->max_frame, &body_len);
		if (r == WIRE_SPLIT_MORE) {
			break;
		}
		if (r == WIRE_SPLIT_TOOBIG) {
			LOG_WARN("session %llx: frame of %zu bytes exceeds "
			         "limit %zu: closing",
			         (unsigned long long)s->id, body_len,
			         n->cfg->max_frame);
			wire_encode_frame_error(&c->out, body_len,
			                        n->cfg->max_frame);
			session_close(s, WIRE_EFRAME, "frame too large");
			return;
		}
		if (session_ext(s)->c_rpaused) {
			break; /* PROXY: the leader link is congested */
		}
		if (s->mode == SESSION_LOCAL && node_saturated(n)) {
			if (!s->paused) {
				s->paused = 1;
				n->n_paused++;
				uv_read_stop((uv_stream_t *)&c->tcp);
			}
			break;
		}
		on_frame(s, c->in + off, body_len);
		off += WIRE_PREFIX + body_len;
	}
	if (s->closing) {
		return;
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
	/* Give memory back after a large frame. */
	if (c->in_len == 0 && c->in_cap > 4 * READ_CHUNK) {
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct session *s = stream->data;

	if (nread < 0) {
		session_close(s, WIRE_EUNKNOWN,
		              nread == UV_EOF ? "client closed"
		                              : uv_strerror((int)nread));
		return;
	}
	if (nread == 0) {
		return;
	}
	if (buf->base == NULL) {
		session_close(s, WIRE_ENOMEM, "out of memory");
		return;
	}
	session_ext(s)->last_recv = uv_now(s->node->loop);
	s->c.in_len += (size_t)nread;
	process_input(s);
}

void node_resume_sessions(struct node *n)
{
	struct session *s, *next;

	for (s = n->sessions; s != NULL && n->n_paused > 0; s = next) {
		next = s->next;
		if (!s->paused) {
			continue;
		}
		if (node_saturated(n)) {
			return;
		}
		s->paused = 0;
		n->n_paused--;
		if (s->closing) {
			continue;
		}
		session_ext(s)->last_recv = uv_now(n->loop);
		uv_read_start((uv_stream_t *)&s->c.tcp, conn_alloc_cb, read_cb);
		process_input(s);
	}
}

/* ---------------------------------------------------------------------
 * Liveness: HELLO deadline, heartbeats, silent peers. */

static void heartbeat_to(struct session *s, struct conn *c)
{
	struct wire_msg m;

	wire_msg_init(&m, WIRE_OP_HEARTBEAT, 0);
	if (wire_encode(&c->out, &m) != 0) {
		session_close(s, WIRE_ENOMEM, "out of memory");
		return;
	}
	conn_flush(s, c);
}

static void timer_cb(uv_timer_t *t)
{
	struct session *s = t->data;
	struct session_ext *x = session_ext(s);
	uint64_t now = uv_now(s->node->loop);
	char why[96];

	if (s->closing) {
		return;
	}
	if (!s->hello) {
		if (now - x->accepted_at >= node_hello_timeout(s->node)) {
			snprintf(why, sizeof why, "no HELLO within %u ms",
			         node_hello_timeout(s->node));
			LOG_INFO("connection %llx: %s: closing",
			         (unsigned long long)s->id, why);
			session_write_error(s, 0, WIRE_EHELLO, why);
			session_close(s, WIRE_EHELLO, why);
		}
		return;
	}
	if (x->hb > 0) {
		/* While this node does not read the client (back-pressure),
		 * its silence proves nothing. */
		if (s->paused || x->c_rpaused) {
			x->last_recv = now;
		}
		if (now - x->last_recv >=
		    (uint64_t)NODE_HEARTBEAT_MISSES * x->hb) {
			snprintf(why, sizeof why,
			         "client silent for %llu ms (heartbeat %u ms)",
			         (unsigned long long)(now - x->last_recv),
			         x->hb);
			LOG_INFO("session %llx: %s: closing",
			         (unsigned long long)s->id, why);
			session_close(s, WIRE_EUNKNOWN, why);
			/* Nobody reads what is still queued: no linger. */
			close_handles(s);
			return;
		}
		if (!s->c.writing && s->c.out.len == 0 &&
		    now - x->last_send >= x->hb / 2) {
			heartbeat_to(s, &s->c);
			if (s->closing) {
				return;
			}
		}
	}
	if (s->mode == SESSION_PROXY && s->up_connected && x->up_hb > 0) {
		if (x->up_rpaused) {
			x->up_last_recv = now;
		}
		if (now - x->up_last_recv >=
		    (uint64_t)NODE_HEARTBEAT_MISSES * x->up_hb) {
			LOG_INFO(
			    "session %llx: leader %llu silent for %llu ms: "
			    "closing",
			    (unsigned long long)s->id,
			    (unsigned long long)s->up_leader,
			    (unsigned long long)(now - x->up_last_recv));
			session_close(s, WIRE_EUNKNOWN,
			              "link to the leader silent; outcome "
			              "unknown");
			return;
		}
		if (!s->up.writing && s->up.out.len == 0 &&
		    now - x->up_last_send >= x->up_hb / 2) {
			proxy_heartbeat(s);
		}
	}
}

void session_arm_timer(struct session *s)
{
	struct session_ext *x = session_ext(s);
	uint64_t period = 0;

	if (!x->timer_open || s->closing) {
		return;
	}
	if (!s->hello) {
		uint64_t now = uv_now(s->node->loop);
		uint64_t end = x->accepted_at + node_hello_timeout(s->node);
		uv_timer_start(&x->timer, timer_cb, end > now ? end - now : 0,
		               0);
		return;
	}
	if (x->hb > 0) {
		period = x->hb / 2;
	}
	if (s->mode == SESSION_PROXY && x->up_hb > 0 &&
	    (period == 0 || x->up_hb / 2 < period)) {
		period = x->up_hb / 2;
	}
	if (period == 0) {
		uv_timer_stop(&x->timer);
		return;
	}
	uv_timer_start(&x->timer, timer_cb, period, period);
}

/* ---------------------------------------------------------------------
 * Listener. */

static void on_connection(uv_stream_t *server, int status)
{
	struct node *n = server->data;
	struct session_ext *x;
	struct session *s;

	if (status != 0) {
		LOG_WARN("accept: %s", uv_strerror(status));
		return;
	}
	/* Every session is a session_ext (see session_ext.h). */
	x = calloc(1, sizeof *x);
	if (x == NULL) {
		LOG_ERROR("accept: out of memory");
		return;
	}
	s = &x->s;
	s->node = n;
	reqset_init(&s->pending);
	wire_buf_init(&s->c.out);
	wire_buf_init(&s->c.wbuf);
	wire_buf_init(&s->up.out);
	wire_buf_init(&s->up.wbuf);
	uv_tcp_init(n->loop, &s->c.tcp);
	s->c.tcp.data = s;
	s->c.open = 1;
	s->handles = 1;
	s->next = n->sessions;
	if (n->sessions != NULL) {
		n->sessions->prev = s;
	}
	n->sessions = s;
	n->n_sessions++;
	if (uv_accept(server, (uv_stream_t *)&s->c.tcp) != 0) {
		session_close(s, WIRE_EUNKNOWN, "accept failed");
		return;
	}
	uv_tcp_nodelay(&s->c.tcp, 1);
	node_tcp_keepalive(&s->c.tcp);
	uv_timer_init(n->loop, &x->timer);
	x->timer.data = s;
	x->timer_open = 1;
	s->handles++;
	x->accepted_at = uv_now(n->loop);
	x->last_recv = x->last_send = x->accepted_at;
	if (n->n_sessions > n->cfg->max_sessions) {
		session_write_error(s, 0, WIRE_EBUSY,
		                    "too many client connections");
		session_close(s, WIRE_EBUSY, "too many sessions");
		return;
	}
	if (n->stopping) {
		session_write_error(s, 0, WIRE_ESHUTDOWN,
		                    "node is shutting down");
		session_close(s, WIRE_ESHUTDOWN, "shutting down");
		return;
	}
	session_arm_timer(s);
	uv_read_start((uv_stream_t *)&s->c.tcp, conn_alloc_cb, read_cb);
}

int node_listen(struct node *n)
{
	struct sockaddr_storage sa;
	int rv;

	if (node_resolve(n->cfg->listen, &sa) != 0) {
		LOG_ERROR("listen %s: cannot resolve", n->cfg->listen);
		return -1;
	}
	uv_tcp_init(n->loop, &n->listener);
	n->listener.data = n;
	rv = uv_tcp_bind(&n->listener, (struct sockaddr *)&sa, 0);
	if (rv == 0) {
		rv = uv_listen((uv_stream_t *)&n->listener, 511, on_connection);
	}
	if (rv != 0) {
		LOG_ERROR("listen %s: %s", n->cfg->listen, uv_strerror(rv));
		return -1;
	}
	LOG_INFO("clients: listening on %s", n->cfg->listen);
	return 0;
}
