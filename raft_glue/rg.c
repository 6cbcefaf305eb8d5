/* raft_glue/rg: one raft 0.22.1 server (libuv I/O) driving fsm/ for node/. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <raft.h>
#include <raft/uv.h>

#include "rg.h"
#include "rg_fsm.h"
#include "rg_log.h"
#include "rg_transport.h"

/* raft 0.15 (bookworm) has no such macro and several safety bugs; versions
 * before 0.22 behave differently in ways we depend on (docs/raft.md, "Why not
 * 0.15"). */
#if !defined(RAFT_VERSION_NUMBER) || RAFT_VERSION_NUMBER < 2201
#error "raft >= 0.22.1 is required (0.15 has safety bugs, see docs/raft.md)"
#endif

#define RG_SEGMENT_SIZE (8u * 1024 * 1024)
#define RG_POLL_MS      50

/* One proposal in flight: raft's request plus the caller's callback. It lives
 * from a successful raft_apply() until the apply callback. */
struct rg_req {
	struct raft_apply apply; /* apply.data = this */
	struct rg *rg;
	void (*cb)(void *arg, int status);
	void *arg;
};

/* One read barrier in flight. */
struct rg_barrier_req {
	struct raft_barrier barrier; /* barrier.data = this */
	struct rg *rg;
	void (*cb)(void *arg, int status);
	void *arg;
};

enum rg_stop_state {
	RG_RUNNING = 0,
	RG_STOP_REQUESTED, /* 0 ms timer armed */
	RG_TRANSFERRING,   /* raft_transfer pending, bounded by a timer */
	RG_CLOSING,        /* raft_close called */
	RG_CLOSED          /* raft closed, our handles closing */
};

struct rg {
	uv_loop_t *loop;
	struct raft raft;
	struct raft_io io;
	struct rg_transport transport;
	struct rg_fsm fsm;
	struct rg_callbacks cbs;
	uint64_t id;
	unsigned n_members;
	unsigned election_timeout;
	unsigned heartbeat_timeout;
	unsigned max_inflight;
	unsigned inflight;
	size_t max_entry;

	/* Leadership as last reported through cbs.role. */
	int role;
	uint64_t term;
	uint64_t leader_id;
	int ready;
	/* The term in which this node last became leader, and whether its log
	 * has been fully applied since then. */
	uint64_t lead_term;
	int lead_ready;

	/* Quick election after the leader's process was seen to die
	 * (rg_leader_gone): the leader it was about, and since when. */
	uint64_t gone_leader; /* 0 = normal election timeout */
	uint64_t gone_since;  /* uv_now() */

	uv_check_t check;   /* polls leadership after every loop turn */
	uv_timer_t poll;    /* polls while the loop is otherwise idle */
	uv_timer_t stopper; /* defers and bounds the stop sequence */
	unsigned open_handles;

	enum rg_stop_state stop;
	struct raft_transfer xfer;
	struct raft_transfer handover; /* rg_transfer() */
	int handing_over;
	void (*stop_cb)(void *arg);
	void *stop_arg;
};

const char *rg_role_name(int role)
{
	static const char *const names[] = {"unavailable", "follower",
	                                    "candidate", "leader"};

	return role >= RG_ROLE_UNAVAILABLE && role <= RG_ROLE_LEADER
	           ? names[role]
	           : "unavailable";
}

const char *rg_strerror(int code)
{
	switch (code) {
	case RG_OK:
		return "ok";
	case RG_NOTLEADER:
		return "not leader";
	case RG_NOSPACE:
		return "no disk space";
	case RG_BUSY:
		return "too many entries in flight";
	case RG_UNKNOWN:
		return "leadership lost, outcome unknown";
	case RG_TOOBIG:
		return "entry too large";
	case RG_NOMEM:
		return "out of memory";
	case RG_CORRUPT:
		return "damaged data";
	case RG_ERROR:
		return "raft error";
	default:
		return "unknown status";
	}
}

void rg_config_default(struct rg_config *c)
{
	c->bind_address = NULL;
	c->election_timeout = 1000;
	c->heartbeat_timeout = 100;
	c->snapshot_threshold = 4096;
	c->snapshot_trailing = 8192;
	c->log_memory = (size_t)40 << 20;
	c->max_inflight = 16;
	c->max_entry = 1024 * 1024;
	fsm_config_default(&c->fsm);
	c->test_skip_apply = 0;
}

/* Leadership.
 *
 * raft has no state-change callback, so we poll raft_state(), the term and
 * raft_leader() after every loop turn (uv_check) and every RG_POLL_MS (a
 * timer, for changes that happen while no I/O wakes the loop) and report any
 * change of (role, term, leader, ready).
 *
 * `ready`: a new leader's FSM may lag entries that earlier leaders committed.
 * raft appends a barrier on election when it has uncommitted entries, so once
 * raft_last_applied() == raft_last_index() after becoming leader everything
 * any leader could have committed is in our FSM, and we may serve. Applied
 * implies committed, so equality also covers a log with nothing pending. */
/* The shortened election timeout of rg_leader_gone() lasts until some other
 * node leads (or this one: a leader uses the timeout for its own quorum
 * check), or for three normal timeouts at most. */
static void rg__quick_election_over(struct rg *r, int role, uint64_t leader)
{
	bool other = leader != 0 && leader != r->gone_leader;

	if (!other && role != RG_ROLE_LEADER &&
	    uv_now(r->loop) - r->gone_since < 3 * (uint64_t)r->election_timeout)
		return;
	raft_set_election_timeout(&r->raft, r->election_timeout);
	r->gone_leader = 0;
}

static void rg__poll(struct rg *r)
{
	enum raft_state state;
	uint64_t term;
	raft_id leader = 0;
	const char *address = NULL;
	int role, ready = 0;

	if (r->stop >= RG_CLOSING)
		return;
	state = raft_state(&r->raft);
	term = raft_current_term(&r->raft);
	/* raft_leader() writes nothing while UNAVAILABLE: keep the zeros. */
	raft_leader(&r->raft, &leader, &address);
	switch (state) {
	case RAFT_FOLLOWER:
		role = RG_ROLE_FOLLOWER;
		break;
	case RAFT_CANDIDATE:
		role = RG_ROLE_CANDIDATE;
		break;
	case RAFT_LEADER:
		role = RG_ROLE_LEADER;
		break;
	default:
		role = RG_ROLE_UNAVAILABLE;
		break;
	}
	if (r->gone_leader != 0)
		rg__quick_election_over(r, role, leader);
	if (role == RG_ROLE_LEADER) {
		if (r->lead_term != term) {
			r->lead_term = term;
			r->lead_ready = 0;
		}
		if (!r->lead_ready &&
		    raft_last_applied(&r->raft) == raft_last_index(&r->raft))
			r->lead_ready = 1;
		ready = r->lead_ready;
	} else {
		/* A later election, even in the same term, starts over. */
		r->lead_term = 0;
		r->lead_ready = 0;
	}
	if (role == r->role && term == r->term && leader == r->leader_id &&
	    ready == r->ready)
		return;
	r->role = role;
	r->term = term;
	r->leader_id = leader;
	r->ready = ready;
	if (r->cbs.role != NULL)
		r->cbs.role(r->cbs.data, role, term, leader, ready);
}

static void rg__check_cb(uv_check_t *h)
{
	rg__poll(h->data);
}

static void rg__poll_cb(uv_timer_t *h)
{
	rg__poll(h->data);
}

/* Proposals. */

static void rg__apply_cb(struct raft_apply *apply, int status, void *result)
{
	struct rg_req *q = apply->data;
	struct rg *r = q->rg;

	(void)result; /* always NULL: see rg_fsm.c */
	r->inflight--;
	/* Status 0: committed and applied here. RAFT_LEADERSHIPLOST (also
	 * what raft_close gives pending requests) and anything else: the
	 * entry may still commit under the next leader. */
	q->cb(q->arg, status == 0 ? RG_OK : RG_UNKNOWN);
	free(q);
}

int rg_propose(struct rg *r, const void *buf, size_t len,
               void (*cb)(void *arg, int status), void *arg)
{
	struct raft_buffer b;
	struct rg_req *q;
	size_t padded;
	int rv;

	if (len > r->max_entry)
		return RG_TOOBIG;
	if (r->stop != RG_RUNNING || raft_state(&r->raft) != RAFT_LEADER)
		return RG_NOTLEADER;
	if (r->inflight >= r->max_inflight)
		return RG_BUSY;

	/* raft's uv backend rejects entries whose length is not a multiple
	 * of 8 only after it has taken them into its in-memory log and freed
	 * our buffer; the next apply then crashes (docs/raft.md, N1). fsm's
	 * codec pads already; we pad with zeros again to be safe (its decoder
	 * reads the exact body length from the header). Never an empty entry.
	 */
	padded = (len + 7) & ~(size_t)7;
	if (padded == 0)
		padded = 8;
	q = malloc(sizeof *q);
	if (q == NULL)
		return RG_NOMEM;
	b.base = raft_malloc(padded);
	if (b.base == NULL) {
		free(q);
		return RG_NOMEM;
	}
	if (len > 0)
		memcpy(b.base, buf, len);
	memset((char *)b.base + len, 0, padded - len);
	b.len = padded;
	q->apply.data = q;
	q->rg = r;
	q->cb = cb;
	q->arg = arg;

	if (b.len % 8 != 0)
		abort();
	/* Exactly one buffer: with n > 1 raft 0.22.1 keeps only the first
	 * (docs/raft.md, N2). */
	rv = raft_apply(&r->raft, &q->apply, &b, 1, rg__apply_cb);
	switch (rv) {
	case 0:
		r->inflight++;
		return RG_OK;
	case RAFT_NOTLEADER:
	case RAFT_NOSPACE:
		/* Raised before submission: the buffer is still ours. */
		raft_free(b.base);
		free(q);
		return rv == RAFT_NOTLEADER ? RG_NOTLEADER : RG_NOSPACE;
	default:
		/* Any other error comes after raft took (and freed) the buffer
		 * and left its log inconsistent (docs/raft.md, N4): we cannot
		 * go on safely. */
		rg__log(3, "raft_apply: %s (%d): %s; aborting",
		        raft_strerror(rv), rv, raft_errmsg(&r->raft));
		abort();
	}
}

static void rg__barrier_cb(struct raft_barrier *b, int status)
{
	struct rg_barrier_req *q = b->data;

	q->cb(q->arg, status == 0 ? RG_OK : RG_UNKNOWN);
	free(q);
}

int rg_barrier(struct rg *r, void (*cb)(void *arg, int status), void *arg)
{
	struct rg_barrier_req *q;
	int rv;

	if (r->stop != RG_RUNNING || raft_state(&r->raft) != RAFT_LEADER)
		return RG_NOTLEADER;
	q = malloc(sizeof *q);
	if (q == NULL)
		return RG_NOMEM;
	q->barrier.data = q;
	q->rg = r;
	q->cb = cb;
	q->arg = arg;
	rv = raft_barrier(&r->raft, &q->barrier, rg__barrier_cb);
	switch (rv) {
	case 0:
		return RG_OK;
	case RAFT_NOTLEADER:
	case RAFT_NOSPACE:
		free(q);
		return rv == RAFT_NOTLEADER ? RG_NOTLEADER : RG_NOSPACE;
	default:
		/* Like raft_apply (docs/raft.md, N4): any other error leaves
		 * raft's log inconsistent. */
		rg__log(3, "raft_barrier: %s (%d): %s; aborting",
		        raft_strerror(rv), rv, raft_errmsg(&r->raft));
		abort();
	}
}

static void rg__handover_cb(struct raft_transfer *xfer)
{
	struct rg *r = xfer->data;

	r->handing_over = 0;
}

int rg_transfer(struct rg *r)
{
	int rv;

	if (r->stop != RG_RUNNING || raft_state(&r->raft) != RAFT_LEADER ||
	    r->handing_over)
		return RG_NOTLEADER;
	if (r->n_members < 2)
		return RG_ERROR;
	memset(&r->handover, 0, sizeof r->handover);
	r->handover.data = r;
	rv = raft_transfer(&r->raft, &r->handover, 0, rg__handover_cb);
	if (rv != 0) {
		rg__log(2, "raft_transfer: %s (%d)", raft_strerror(rv), rv);
		return rv == RAFT_NOTLEADER ? RG_NOTLEADER : RG_ERROR;
	}
	r->handing_over = 1;
	return RG_OK;
}

unsigned rg_inflight(const struct rg *r)
{
	return r->inflight;
}

unsigned rg_max_inflight(const struct rg *r)
{
	return r->max_inflight;
}

void rg_leader_gone(struct rg *r, uint64_t leader_id)
{
	raft_id leader = 0;
	const char *address = NULL;
	unsigned quick = 2 * r->heartbeat_timeout;

	if (r->stop >= RG_CLOSING || r->gone_leader != 0 ||
	    raft_state(&r->raft) != RAFT_FOLLOWER ||
	    quick >= r->election_timeout)
		return;
	raft_leader(&r->raft, &leader, &address);
	if (leader == 0 || leader != leader_id)
		return;
	/* Heartbeats from a leader that is in fact alive still reset the
	 * timer, so a false alarm costs nothing: this is only the wait for
	 * missing heartbeats, cut from [T, 2T] to [2h, 4h]. Pre-vote still
	 * asks the other voters, who refuse while they hear from a leader. */
	raft_set_election_timeout(&r->raft, quick);
	r->gone_leader = leader_id;
	r->gone_since = uv_now(r->loop);
	rg__log(1,
	        "leader %llu is gone (its process closed our link): election "
	        "timeout %u ms until a leader is known",
	        (unsigned long long)leader_id, quick);
}

void rg_info(const struct rg *r, struct rg_info *out)
{
	/* raft's accessors take a non-const pointer but only read. */
	struct raft *raft = (struct raft *)&r->raft;
	raft_id leader = 0;
	const char *address = NULL;

	memset(out, 0, sizeof *out);
	out->id = r->id;
	if (r->stop >= RG_CLOSING) {
		out->role = RG_ROLE_UNAVAILABLE;
		return;
	}
	switch (raft_state(raft)) {
	case RAFT_FOLLOWER:
		out->role = RG_ROLE_FOLLOWER;
		break;
	case RAFT_CANDIDATE:
		out->role = RG_ROLE_CANDIDATE;
		break;
	case RAFT_LEADER:
		out->role = RG_ROLE_LEADER;
		break;
	default:
		out->role = RG_ROLE_UNAVAILABLE;
		break;
	}
	raft_leader(raft, &leader, &address);
	out->term = raft_current_term(raft);
	out->leader_id = leader;
	out->commit_index = raft_commit_index(raft);
	out->applied_index = raft_last_applied(raft);
	out->last_index = raft_last_index(raft);
	out->ready = out->role == RG_ROLE_LEADER && r->lead_ready &&
	             r->lead_term == out->term;
}

/* Stopping.
 *
 * rg_stop() only arms a 0 ms timer: raft_close() must never run twice or from
 * inside a raft callback, and it fires pending apply callbacks synchronously,
 * which must not happen inside the caller's rg_stop(). From the timer: a
 * leader first asks raft_transfer() to hand over (so the others need no
 * election timeout), bounded by a timer of one election timeout; then
 * raft_close(); in its callback we free raft's I/O and transports and close
 * our handles; the caller's callback runs once the last handle is closed. */

static void rg__handle_closed(uv_handle_t *h)
{
	struct rg *r = h->data;
	void (*cb)(void *arg) = r->stop_cb;
	void *arg = r->stop_arg;

	if (--r->open_handles > 0)
		return;
	free(r);
	if (cb != NULL)
		cb(arg);
}

static void rg__close_handles(struct rg *r)
{
	uv_close((uv_handle_t *)&r->check, rg__handle_closed);
	uv_close((uv_handle_t *)&r->poll, rg__handle_closed);
	uv_close((uv_handle_t *)&r->stopper, rg__handle_closed);
}

static void rg__raft_close_cb(struct raft *raft)
{
	struct rg *r = raft->data;

	r->stop = RG_CLOSED;
	raft_uv_close(&r->io);
	rg_transport_close(&r->transport);
	rg__close_handles(r);
}

static void rg__close_raft(struct rg *r)
{
	if (r->stop >= RG_CLOSING)
		return;
	r->stop = RG_CLOSING;
	uv_timer_stop(&r->stopper);
	uv_timer_stop(&r->poll);
	uv_check_stop(&r->check);
	raft_close(&r->raft, rg__raft_close_cb);
}

static void rg__close_timer_cb(uv_timer_t *h)
{
	rg__close_raft(h->data);
}

/* Fires when the target leads, after an election timeout, or synchronously
 * inside raft_close() when the bound timer got there first. */
static void rg__transfer_cb(struct raft_transfer *xfer)
{
	struct rg *r = xfer->data;

	if (r->stop != RG_TRANSFERRING)
		return;
	/* We are inside raft: close from a fresh 0 ms timer. */
	r->stop = RG_STOP_REQUESTED;
	uv_timer_start(&r->stopper, rg__close_timer_cb, 0, 0);
}

static void rg__stop_timer_cb(uv_timer_t *h)
{
	struct rg *r = h->data;
	int rv;

	if (raft_state(&r->raft) == RAFT_LEADER && r->n_members > 1) {
		memset(&r->xfer, 0, sizeof r->xfer);
		r->xfer.data = r;
		rv = raft_transfer(&r->raft, &r->xfer, 0, rg__transfer_cb);
		if (rv == 0) {
			r->stop = RG_TRANSFERRING;
			uv_timer_start(&r->stopper, rg__close_timer_cb,
			               r->election_timeout, 0);
			return;
		}
		rg__log(2, "raft_transfer: %s (%d)", raft_strerror(rv), rv);
	}
	rg__close_raft(r);
}

void rg_stop(struct rg *r, void (*cb)(void *arg), void *arg)
{
	if (r->stop != RG_RUNNING)
		return;
	r->stop = RG_STOP_REQUESTED;
	r->stop_cb = cb;
	r->stop_arg = arg;
	uv_timer_start(&r->stopper, rg__stop_timer_cb, 0, 0);
}

/* Starting. */

/* Formats an error message into the caller's RG_ERRMSG_SIZE-byte buffer
 * (truncating long raft messages rather than failing). */
static void rg__errf(char *errmsg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void rg__errf(char *errmsg, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errmsg, RG_ERRMSG_SIZE, fmt, ap);
	va_end(ap);
}

/* Accepts "host:port" with a non-empty host and a port in 1..65535. raft
 * would default a missing port to 8080 and fail every start on an
 * unresolvable own address; catch typos before they are bootstrapped into
 * the replicated configuration forever. */
static int rg__valid_address(const char *a)
{
	const char *colon;
	char *end;
	long port;

	if (a == NULL)
		return 0;
	colon = strrchr(a, ':');
	if (colon == NULL || colon == a || colon[1] == '\0')
		return 0;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	return errno == 0 && *end == '\0' && port >= 1 && port <= 65535;
}

static int rg__check_config(const struct rg_config *c, const char **self,
                            char *errmsg)
{
	unsigned i, j;

	*self = NULL;
	if (c->dir == NULL || c->members == NULL || c->n_members == 0) {
		snprintf(errmsg, RG_ERRMSG_SIZE,
		         "config: dir and members are required");
		return RG_ERROR;
	}
	if (c->heartbeat_timeout == 0 || c->election_timeout == 0 ||
	    c->heartbeat_timeout >= c->election_timeout) {
		snprintf(errmsg, RG_ERRMSG_SIZE,
		         "config: need 0 < heartbeat (%u) < election (%u)",
		         c->heartbeat_timeout, c->election_timeout);
		return RG_ERROR;
	}
	if (c->max_inflight == 0 || c->max_entry == 0) {
		snprintf(errmsg, RG_ERRMSG_SIZE,
		         "config: max_inflight and max_entry must be > 0");
		return RG_ERROR;
	}
	for (i = 0; i < c->n_members; i++) {
		if (c->members[i].id == 0 ||
		    !rg__valid_address(c->members[i].raft_address)) {
			snprintf(errmsg, RG_ERRMSG_SIZE,
			         "config: member %u: bad id or address "
			         "(want host:port)",
			         i);
			return RG_ERROR;
		}
		for (j = 0; j < i; j++) {
			if (c->members[j].id == c->members[i].id) {
				snprintf(errmsg, RG_ERRMSG_SIZE,
				         "config: duplicate member id %llu",
				         (unsigned long long)c->members[i].id);
				return RG_ERROR;
			}
		}
		if (c->members[i].id == c->id)
			*self = c->members[i].raft_address;
	}
	if (*self == NULL) {
		snprintf(errmsg, RG_ERRMSG_SIZE,
		         "config: own id %llu is not a member",
		         (unsigned long long)c->id);
		return RG_ERROR;
	}
	return 0;
}

/* raft seeds its PRNG from the wall-clock milliseconds only: nodes started
 * in the same millisecond draw the same election timeouts and split votes
 * for a long time (docs/raft.md, N5). */
static unsigned rg__seed(uint64_t id)
{
	unsigned seed = 0;
	struct timespec ts;

	if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		seed = (unsigned)ts.tv_nsec ^ (unsigned)(id * 2654435761u);
	}
	return seed;
}

/* Every start bootstraps the same configuration: members in the given order,
 * all voters. raft writes it as entry 1 on a blank data dir and answers
 * RAFT_CANTBOOTSTRAP when the dir already holds a term: that is a restart. */
static int rg__bootstrap(struct rg *r, const struct rg_config *c, char *errmsg)
{
	struct raft_configuration conf;
	unsigned i;
	int rv;

	raft_configuration_init(&conf);
	for (i = 0; i < c->n_members; i++) {
		rv = raft_configuration_add(&conf, c->members[i].id,
		                            c->members[i].raft_address,
		                            RAFT_VOTER);
		if (rv != 0) {
			snprintf(errmsg, RG_ERRMSG_SIZE,
			         "raft_configuration_add: %s (%d)",
			         raft_strerror(rv), rv);
			raft_configuration_close(&conf);
			return RG_ERROR;
		}
	}
	rv = raft_bootstrap(&r->raft, &conf);
	raft_configuration_close(&conf);
	if (rv != 0 && rv != RAFT_CANTBOOTSTRAP) {
		rg__errf(errmsg, "raft_bootstrap: %s (%d): %s",
		         raft_strerror(rv), rv, raft_errmsg(&r->raft));
		return RG_ERROR;
	}
	return 0;
}

/* After a failure past raft_init(), raft must still be closed
 * asynchronously; the struct is freed in the callback, with no user
 * callback. */
static void rg__failed_close_cb(struct raft *raft)
{
	struct rg *r = raft->data;

	raft_uv_close(&r->io);
	rg_transport_close(&r->transport);
	free(r);
}

int rg_start(struct rg **out, uv_loop_t *loop, const struct rg_config *c,
             struct fsm *fsm, const struct rg_callbacks *cbs, char *errmsg)
{
	const char *self;
	struct rg *r;
	int rv;

	*out = NULL;
	errmsg[0] = '\0';
	if (rg__check_config(c, &self, errmsg) != 0)
		return RG_ERROR;
	r = calloc(1, sizeof *r);
	if (r == NULL) {
		rg__errf(errmsg, "out of memory");
		return RG_ERROR;
	}
	r->loop = loop;
	r->cbs = *cbs;
	r->id = c->id;
	r->n_members = c->n_members;
	r->election_timeout = c->election_timeout;
	r->heartbeat_timeout = c->heartbeat_timeout;
	r->max_inflight = c->max_inflight;
	r->max_entry = c->max_entry;
	r->role = RG_ROLE_UNAVAILABLE;
	rg_fsm_init(&r->fsm, fsm, &r->cbs.sink);
	r->fsm.skip_apply_at = c->test_skip_apply;

	rv = rg_transport_init(&r->transport, loop, c->bind_address);
	if (rv != 0) {
		rg__errf(errmsg, "transport: %s (%d)",
		         r->transport.outer.errmsg, rv);
		goto err_free;
	}
	rv = raft_uv_init(&r->io, loop, c->dir, &r->transport.outer);
	if (rv != 0) {
		rg__errf(errmsg, "raft_uv_init %s: %s (%d): %s", c->dir,
		         raft_strerror(rv), rv, r->io.errmsg);
		goto err_transport;
	}
	raft_uv_set_segment_size(&r->io, RG_SEGMENT_SIZE);
	/* Never move a corrupt log tail aside silently ("possible data
	 * loss"): fail the start and let an operator look. */
	raft_uv_set_auto_recovery(&r->io, false);

	rv = raft_init(&r->raft, &r->io, &r->fsm.raft, c->id, self);
	if (rv != 0) {
		rg__errf(errmsg, "raft_init: %s (%d): %s", raft_strerror(rv),
		         rv, raft_errmsg(&r->raft));
		goto err_io;
	}
	r->raft.data = r;
	raft_seed(&r->raft, rg__seed(c->id));
	raft_set_pre_vote(&r->raft, true);
	raft_set_election_timeout(&r->raft, c->election_timeout);
	raft_set_heartbeat_timeout(&r->raft, c->heartbeat_timeout);
	rg_fsm_bound_log(&r->fsm, &r->raft, c->log_memory,
	                 c->snapshot_threshold, c->snapshot_trailing);

	if (rg__bootstrap(r, c, errmsg) != 0)
		goto err_raft;
	rv = raft_start(&r->raft);
	if (rv != 0) {
		/* A port in use gives RAFT_IOERR with an empty message. */
		rg__errf(errmsg, "raft_start: %s (%d): %s", raft_strerror(rv),
		         rv, raft_errmsg(&r->raft));
		raft_close(&r->raft, rg__failed_close_cb);
		return rv == RAFT_CORRUPT ? RG_CORRUPT : RG_ERROR;
	}
	r->fsm.started = true;

	uv_check_init(loop, &r->check);
	uv_timer_init(loop, &r->poll);
	uv_timer_init(loop, &r->stopper);
	r->check.data = r;
	r->poll.data = r;
	r->stopper.data = r;
	r->open_handles = 3;
	uv_check_start(&r->check, rg__check_cb);
	uv_timer_start(&r->poll, rg__poll_cb, RG_POLL_MS, RG_POLL_MS);
	*out = r;
	return RG_OK;

err_raft:
	raft_close(&r->raft, rg__failed_close_cb);
	return RG_ERROR;
err_io:
	raft_uv_close(&r->io);
err_transport:
	rg_transport_close(&r->transport);
err_free:
	free(r);
	return RG_ERROR;
}

/* ---------------------------------------------------------------------
 * Logging. */

static void (*rg_log_fn)(int level, const char *msg);

void rg_set_log(void (*fn)(int level, const char *msg))
{
	rg_log_fn = fn;
}

void rg__log(int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (rg_log_fn != NULL) {
		rg_log_fn(level, msg);
	} else {
		fprintf(stderr, "raft_glue: %s\n", msg);
	}
}
