/* raft_glue/transport: TCP_NODELAY wrapper around raft's TCP transport. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rg_log.h"
#include "rg_transport.h"

/* raft 0.22.1's TCP transport never disables Nagle's algorithm. With a few
 * AppendEntries in flight, Nagle plus the peer's delayed ACK stalls each
 * message for up to ~40 ms (docs/raft.md, N6: 0.23k entries/s instead of
 * 3-5k/s). raft exposes no socket hook, so we interpose a transport: every
 * operation is delegated to the inner TCP transport, and our accept and
 * connect callbacks flip TCP_NODELAY before handing the stream on.
 *
 * raft's uv backend stores its own state in `outer.data` and finds it again
 * through the transport pointer given to the accept callback, so the callback
 * must receive `outer`. We find our wrapper from `inner` with container_of
 * arithmetic and never touch either `data` field. */

#define RG_CONTAINER_OF(ptr, type, member)                                     \
	((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* One outgoing connection attempt: raft's request and callback, remembered
 * while the inner transport works on ours. */
struct rg_connect {
	struct raft_uv_connect req; /* given to the inner transport */
	struct raft_uv_connect *outer_req;
	raft_uv_connect_cb outer_cb;
};

static void rg__nodelay(struct uv_stream_s *stream)
{
	int rv;

	if (stream == NULL || stream->type != UV_TCP)
		return;
	rv = uv_tcp_nodelay((uv_tcp_t *)stream, 1);
	if (rv != 0)
		rg__log(2, "TCP_NODELAY: %s", uv_strerror(rv));
}

static int rg__init(struct raft_uv_transport *outer, raft_id id,
                    const char *address)
{
	struct rg_transport *t =
	    RG_CONTAINER_OF(outer, struct rg_transport, outer);
	int rv;

	rv = t->inner.init(&t->inner, id, address);
	if (rv != 0)
		memcpy(outer->errmsg, t->inner.errmsg, sizeof outer->errmsg);
	return rv;
}

static void rg__accept_cb(struct raft_uv_transport *inner, raft_id id,
                          const char *address, struct uv_stream_s *stream)
{
	struct rg_transport *t =
	    RG_CONTAINER_OF(inner, struct rg_transport, inner);

	rg__nodelay(stream);
	t->accept_cb(&t->outer, id, address, stream);
}

static int rg__listen(struct raft_uv_transport *outer, raft_uv_accept_cb cb)
{
	struct rg_transport *t =
	    RG_CONTAINER_OF(outer, struct rg_transport, outer);
	int rv;

	t->accept_cb = cb;
	rv = t->inner.listen(&t->inner, rg__accept_cb);
	if (rv != 0)
		memcpy(outer->errmsg, t->inner.errmsg, sizeof outer->errmsg);
	return rv;
}

static void rg__connect_cb(struct raft_uv_connect *req,
                           struct uv_stream_s *stream, int status)
{
	struct rg_connect *c = RG_CONTAINER_OF(req, struct rg_connect, req);
	struct raft_uv_connect *outer_req = c->outer_req;
	raft_uv_connect_cb cb = c->outer_cb;

	free(c);
	if (status == 0)
		rg__nodelay(stream);
	cb(outer_req, stream, status);
}

static int rg__connect(struct raft_uv_transport *outer,
                       struct raft_uv_connect *req, raft_id id,
                       const char *address, raft_uv_connect_cb cb)
{
	struct rg_transport *t =
	    RG_CONTAINER_OF(outer, struct rg_transport, outer);
	struct rg_connect *c;
	int rv;

	c = calloc(1, sizeof *c);
	if (c == NULL)
		return RAFT_NOMEM;
	c->outer_req = req;
	c->outer_cb = cb;
	/* raft's contract: `req->cb` is the callback of this request. */
	req->cb = cb;
	rv = t->inner.connect(&t->inner, &c->req, id, address, rg__connect_cb);
	if (rv != 0) {
		memcpy(outer->errmsg, t->inner.errmsg, sizeof outer->errmsg);
		free(c);
	}
	return rv;
}

static void rg__close_cb(struct raft_uv_transport *inner)
{
	struct rg_transport *t =
	    RG_CONTAINER_OF(inner, struct rg_transport, inner);

	if (t->close_cb != NULL)
		t->close_cb(&t->outer);
}

static void rg__close(struct raft_uv_transport *outer,
                      raft_uv_transport_close_cb cb)
{
	struct rg_transport *t =
	    RG_CONTAINER_OF(outer, struct rg_transport, outer);

	t->close_cb = cb;
	t->inner.close(&t->inner, rg__close_cb);
}

int rg_transport_init(struct rg_transport *t, uv_loop_t *loop,
                      const char *bind_address)
{
	int rv;

	memset(t, 0, sizeof *t);
	/* Version first: raft_uv_tcp_init() rejects version 0 (RAFT_INVALID).
	 */
	t->inner.version = 1;
	rv = raft_uv_tcp_init(&t->inner, loop);
	if (rv != 0) {
		snprintf(t->outer.errmsg, sizeof t->outer.errmsg,
		         "raft_uv_tcp_init: %s", raft_strerror(rv));
		return rv;
	}
	if (bind_address != NULL) {
		rv = raft_uv_tcp_set_bind_address(&t->inner, bind_address);
		if (rv != 0) {
			snprintf(t->outer.errmsg, sizeof t->outer.errmsg,
			         "bind address %s: %s", bind_address,
			         raft_strerror(rv));
			raft_uv_tcp_close(&t->inner);
			return rv;
		}
	}
	t->outer.version = 1;
	t->outer.impl = t;
	t->outer.init = rg__init;
	t->outer.listen = rg__listen;
	t->outer.connect = rg__connect;
	t->outer.close = rg__close;
	return 0;
}

void rg_transport_close(struct rg_transport *t)
{
	raft_uv_tcp_close(&t->inner);
}
