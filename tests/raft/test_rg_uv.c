/* raft_glue over real libuv I/O: three rg servers on one loop, on loopback
 * ports, elect a leader, replicate batches to all three state machines and
 * stop cleanly. Bounded by a 20 s loop timer that fails the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "raft_glue/rg.h"
#include "rg_test_util.h"

#define N            3
#define N_BATCHES    24
#define MAX_INFLIGHT 4
#define MAX_ENTRY    (64 * 1024)
#define DEADLINE_MS  20000

enum phase {
	PH_ELECT,    /* waiting for a ready leader */
	PH_PROPOSE,  /* proposing N_BATCHES entries */
	PH_HANDOVER, /* the leader stopped: a new one applies one more */
	PH_STOP,     /* stopping all three */
	PH_DONE
};

struct node {
	struct cluster *c;
	unsigned idx;
	struct fsm *fsm;
	struct rg *rg;
	char dir[64];
	char addr[32];
	int role, ready;
	uint64_t term, leader_id;
	unsigned n_results, n_ok, n_role_cbs;
	int stopping;
};

struct cluster {
	uv_loop_t loop;
	uv_timer_t deadline, driver;
	struct node n[N];
	struct rg_member members[N];
	enum phase phase;
	int timed_out;
	int leader;     /* index of the first ready leader, -1 */
	int new_leader; /* index of the leader after the handover, -1 */
	int extra_sent; /* the handover batch was proposed */
	int survivors_agree;
	unsigned late; /* proposals still in flight when stopping */
	int survivors_same, old_differs;
	uint64_t t0, t_leader, t_applied, t_new_leader; /* uv_now(), ms */
	unsigned proposed, cb_ok, cb_unknown, stopped;
	int saw_busy, saw_notleader, saw_toobig;
	int in_propose; /* detects callbacks fired from inside rg_propose */
	unsigned barrier_ok, barrier_unknown;
	uint64_t barrier_applied; /* leader's applied index in its callback */
	uint64_t barrier_before;  /* ... and its last index before the call */
	int cb_inside_propose;
};

static void on_result(void *data, const struct fsm_result *r)
{
	struct node *n = data;

	n->n_results++;
	if (r->status == FSM_OK)
		n->n_ok++;
}

static void on_role(void *data, int role, uint64_t term, uint64_t leader_id,
                    int ready)
{
	struct node *n = data;

	n->role = role;
	n->term = term;
	n->leader_id = leader_id;
	n->ready = ready;
	n->n_role_cbs++;
	if (ready)
		assert_int_equal(role, RG_ROLE_LEADER);
}

static void on_proposed(void *arg, int status)
{
	struct cluster *c = arg;

	if (c->in_propose)
		c->cb_inside_propose = 1;
	if (status == RG_OK)
		c->cb_ok++;
	else
		c->cb_unknown++;
}

static void on_barrier(void *arg, int status)
{
	struct cluster *c = arg;
	struct rg_info info;

	if (c->in_propose)
		c->cb_inside_propose = 1;
	if (status == RG_OK) {
		c->barrier_ok++;
		rg_info(c->n[c->leader].rg, &info);
		c->barrier_applied = info.applied_index;
	} else {
		c->barrier_unknown++;
	}
}

static void on_stopped(void *arg)
{
	struct node *n = arg;

	n->rg = NULL;
	n->ready = 0;
	n->c->stopped++;
	if (n->c->stopped == N) {
		n->c->phase = PH_DONE;
		uv_close((uv_handle_t *)&n->c->deadline, NULL);
		uv_close((uv_handle_t *)&n->c->driver, NULL);
	}
}

static void stop_one(struct node *n)
{
	if (n->stopping)
		return;
	n->stopping = 1;
	rg_stop(n->rg, on_stopped, n);
}

static void stop_all(struct cluster *c)
{
	unsigned i;

	c->phase = PH_STOP;
	for (i = 0; i < N; i++)
		stop_one(&c->n[i]);
}

static void on_deadline(uv_timer_t *t)
{
	struct cluster *c = t->data;

	fprintf(stderr, "test: deadline hit in phase %d\n", (int)c->phase);
	c->timed_out = 1;
	if (c->phase < PH_STOP)
		stop_all(c);
}

static int propose_one(struct cluster *c, struct node *l, unsigned n)
{
	void *buf;
	size_t len;
	int rv;

	assert_int_equal(rgt_batch(n, &buf, &len), 0);
	c->in_propose = 1;
	rv = rg_propose(l->rg, buf, len, on_proposed, c);
	c->in_propose = 0;
	free(buf);
	return rv;
}

static void drive(uv_timer_t *t)
{
	struct cluster *c = t->data;
	struct node *l;
	unsigned i;
	int rv;

	switch (c->phase) {
	case PH_ELECT:
		for (i = 0; i < N; i++) {
			if (c->n[i].ready)
				c->leader = (int)i;
		}
		if (c->leader < 0)
			return;
		c->t_leader = uv_now(&c->loop);
		l = &c->n[c->leader];
		/* A follower refuses; an oversized entry is refused. */
		for (i = 0; i < N; i++) {
			void *big;

			if ((int)i == c->leader)
				continue;
			rv = propose_one(c, &c->n[i], 0);
			if (rv == RG_NOTLEADER)
				c->saw_notleader = 1;
			big = calloc(1, MAX_ENTRY + 1);
			assert_non_null(big);
			assert_int_equal(rg_propose(l->rg, big, MAX_ENTRY + 1,
			                            on_proposed, c),
			                 RG_TOOBIG);
			c->saw_toobig = 1;
			free(big);
			/* Followers refuse barriers and transfers. */
			assert_int_equal(rg_barrier(c->n[i].rg, on_barrier, c),
			                 RG_NOTLEADER);
			assert_int_equal(rg_transfer(c->n[i].rg), RG_NOTLEADER);
		}
		/* A read barrier on the leader: its callback comes later,
		 * once every entry before it is applied. */
		{
			struct rg_info info;

			rg_info(l->rg, &info);
			c->barrier_before = info.last_index;
			c->in_propose = 1;
			assert_int_equal(rg_barrier(l->rg, on_barrier, c),
			                 RG_OK);
			c->in_propose = 0;
		}
		c->phase = PH_PROPOSE;
		/* fall through */
	case PH_PROPOSE:
		l = &c->n[c->leader];
		while (c->proposed < N_BATCHES) {
			rv = propose_one(c, l, c->proposed);
			if (rv == RG_BUSY) {
				/* Only once the window is full. */
				assert_int_equal(rg_inflight(l->rg),
				                 MAX_INFLIGHT);
				c->saw_busy = 1;
				break;
			}
			if (rv != RG_OK) {
				fprintf(stderr, "test: rg_propose: %s\n",
				        rg_strerror(rv));
				stop_all(c);
				return;
			}
			c->proposed++;
		}
		if (c->cb_ok + c->cb_unknown < N_BATCHES)
			return;
		/* Every node has applied everything? */
		for (i = 0; i < N; i++) {
			if (c->n[i].n_results < N_BATCHES * RGT_CMDS_PER_BATCH)
				return;
		}
		/* Stop the leader alone: it hands leadership over. */
		c->t_applied = uv_now(&c->loop);
		c->phase = PH_HANDOVER;
		stop_one(&c->n[c->leader]);
		return;
	case PH_HANDOVER:
		if (c->new_leader < 0) {
			for (i = 0; i < N; i++) {
				if ((int)i != c->leader && c->n[i].rg != NULL &&
				    c->n[i].ready)
					c->new_leader = (int)i;
			}
			if (c->new_leader < 0)
				return;
			c->t_new_leader = uv_now(&c->loop);
		}
		if (!c->extra_sent) {
			rv = propose_one(c, &c->n[c->new_leader], N_BATCHES);
			if (rv == RG_NOTLEADER)
				return; /* try again on the next tick */
			assert_int_equal(rv, RG_OK);
			c->extra_sent = 1;
		}
		if (c->cb_ok + c->cb_unknown < N_BATCHES + 1)
			return;
		for (i = 0; i < N; i++) {
			if ((int)i != c->leader &&
			    c->n[i].n_results <
			        (N_BATCHES + 1) * RGT_CMDS_PER_BATCH)
				return;
		}
		/* Both survivors know the new leader (they applied its
		 * entry, so they heard from it). */
		c->survivors_agree = 1;
		for (i = 0; i < N; i++) {
			if ((int)i != c->leader &&
			    c->n[i].leader_id != (uint64_t)c->new_leader + 1)
				c->survivors_agree = 0;
		}
		c->survivors_same =
		    rgt_same_state(c->n[(c->leader + 1) % N].fsm,
		                   c->n[(c->leader + 2) % N].fsm);
		c->old_differs = !rgt_same_state(c->n[(c->leader + 1) % N].fsm,
		                                 c->n[c->leader].fsm);
		/* Stop with proposals in flight: each callback still fires
		 * exactly once, RG_OK or RG_UNKNOWN. */
		while (propose_one(c, &c->n[c->new_leader],
		                   N_BATCHES + 1 + c->late) == RG_OK)
			c->late++;
		stop_all(c);
		return;
	default:
		return;
	}
}

/* Finds a base port with N consecutive free TCP ports on 127.0.0.1. */
static int pick_ports(void)
{
	int base = 27000 + (getpid() % 1000) * 3 % 2900;
	int tries, i;

	for (tries = 0; tries < 50; tries++, base = 27000 + (base + 7) % 2900) {
		for (i = 0; i < N; i++) {
			struct sockaddr_in a;
			int fd = socket(AF_INET, SOCK_STREAM, 0);
			int ok;

			assert_true(fd >= 0);
			memset(&a, 0, sizeof a);
			a.sin_family = AF_INET;
			a.sin_port = htons((uint16_t)(base + i));
			a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
			close(fd);
			if (!ok)
				break;
		}
		if (i == N)
			return base;
	}
	fail_msg("no free ports");
	return -1;
}

/* A listening socket on 127.0.0.1:port, to make raft's listen fail. */
static int listen_on(int port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(fd, 4), 0);
	return fd;
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void setup_cluster(struct cluster *c)
{
	char errmsg[256];
	int base = pick_ports();
	unsigned i;

	memset(c, 0, sizeof *c);
	c->leader = -1;
	c->new_leader = -1;
	assert_int_equal(uv_loop_init(&c->loop), 0);
	for (i = 0; i < N; i++) {
		struct node *n = &c->n[i];

		n->c = c;
		n->idx = i;
		snprintf(n->addr, sizeof n->addr, "127.0.0.1:%d",
		         base + (int)i);
		snprintf(n->dir, sizeof n->dir, "/tmp/rgtest.XXXXXX");
		assert_non_null(mkdtemp(n->dir));
		c->members[i].id = i + 1;
		c->members[i].raft_address = n->addr;
	}
	for (i = 0; i < N; i++) {
		struct node *n = &c->n[i];
		struct rg_config cfg;
		struct rg_callbacks cbs;
		int rv;

		memset(&cfg, 0, sizeof cfg);
		rg_config_default(&cfg);
		cfg.id = i + 1;
		cfg.dir = n->dir;
		cfg.members = c->members;
		cfg.n_members = N;
		cfg.election_timeout = 1000;
		cfg.heartbeat_timeout = 100;
		cfg.max_inflight = MAX_INFLIGHT;
		cfg.max_entry = MAX_ENTRY;
		n->fsm = fsm_new(NULL);
		assert_non_null(n->fsm);
		memset(&cbs, 0, sizeof cbs);
		cbs.data = n;
		cbs.sink.data = n;
		cbs.sink.result = on_result;
		cbs.role = on_role;
		rv = rg_start(&n->rg, &c->loop, &cfg, n->fsm, &cbs, errmsg);
		if (rv != 0)
			fail_msg("rg_start %u: %s", i, errmsg);
		/* No callback from inside rg_start. */
		assert_int_equal(n->n_role_cbs, 0);
	}
	uv_timer_init(&c->loop, &c->deadline);
	uv_timer_init(&c->loop, &c->driver);
	c->deadline.data = c;
	c->driver.data = c;
	uv_timer_start(&c->deadline, on_deadline, DEADLINE_MS, 0);
	uv_update_time(&c->loop);
	c->t0 = uv_now(&c->loop);
	uv_timer_start(&c->driver, drive, 10, 10);
}

static void teardown_cluster(struct cluster *c)
{
	unsigned i;

	for (i = 0; i < N; i++) {
		fsm_free(c->n[i].fsm);
		nftw(c->n[i].dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	}
}

static void test_three_servers(void **state)
{
	struct cluster *c = malloc(sizeof *c);
	struct rg_info info;
	unsigned i;

	(void)state;
	assert_non_null(c);
	setup_cluster(c);
	assert_int_equal(rg_max_inflight(c->n[0].rg), MAX_INFLIGHT);
	rg_info(c->n[0].rg, &info);
	assert_true(info.id == 1);
	assert_false(info.ready);

	uv_run(&c->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&c->loop), 0);
	assert_int_equal(c->phase, PH_DONE);
	assert_int_equal(c->stopped, N);
	assert_false(c->timed_out);

	assert_true(c->leader >= 0);
	assert_true(c->saw_notleader);
	assert_true(c->saw_toobig);
	assert_true(c->saw_busy);
	assert_false(c->cb_inside_propose);
	assert_int_equal(c->barrier_ok, 1);
	assert_int_equal(c->barrier_unknown, 0);
	assert_true(c->barrier_applied > c->barrier_before);
	assert_true(c->new_leader >= 0 && c->new_leader != c->leader);
	fprintf(stderr,
	        "test: ready leader after %llu ms, %d batches applied on all "
	        "in %llu ms, new ready leader %llu ms after rg_stop(leader)\n",
	        (unsigned long long)(c->t_leader - c->t0), N_BATCHES,
	        (unsigned long long)(c->t_applied - c->t_leader),
	        (unsigned long long)(c->t_new_leader - c->t_applied));
	assert_int_equal(c->late, MAX_INFLIGHT);
	assert_int_equal(c->cb_ok + c->cb_unknown, N_BATCHES + 1 + c->late);
	assert_true(c->cb_ok >= N_BATCHES + 1);
	fprintf(stderr, "test: at stop: %u in flight, %u ok, %u unknown\n",
	        c->late, c->cb_ok - N_BATCHES - 1, c->cb_unknown);
	for (i = 0; i < N; i++) {
		unsigned batches = N_BATCHES + ((int)i != c->leader);

		/* Late entries may have been applied too. */
		assert_true(c->n[i].n_results >= batches * RGT_CMDS_PER_BATCH);
		assert_int_equal(c->n[i].n_ok, c->n[i].n_results);
		assert_true(c->n[i].term >= 1);
	}
	/* The two survivors knew the new leader and hold the same state. */
	assert_true(c->survivors_agree);
	assert_true(c->survivors_same);
	assert_true(c->old_differs);
	teardown_cluster(c);
	free(c);
}

/* A bad configuration fails rg_start with a message and leaves the loop
 * clean. */
static void test_bad_config(void **state)
{
	uv_loop_t loop;
	struct rg_member m = {.id = 1, .raft_address = "127.0.0.1"};
	struct rg_config cfg;
	struct rg_callbacks cbs;
	struct rg *r = NULL;
	char errmsg[256];

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	memset(&cfg, 0, sizeof cfg);
	memset(&cbs, 0, sizeof cbs);
	rg_config_default(&cfg);
	cfg.id = 1;
	cfg.dir = "/tmp";
	cfg.members = &m;
	cfg.n_members = 1;
	assert_int_equal(rg_start(&r, &loop, &cfg, NULL, &cbs, errmsg),
	                 RG_ERROR);
	assert_null(r);
	assert_true(strlen(errmsg) > 0);
	m.raft_address = "127.0.0.1:1";
	cfg.dir = "/nonexistent/rgtest";
	assert_int_equal(rg_start(&r, &loop, &cfg, NULL, &cbs, errmsg),
	                 RG_ERROR);
	fprintf(stderr, "test: expected failure: %s\n", errmsg);
	assert_true(strlen(errmsg) > 0);

	/* Port in use: raft_start fails after raft_init; raft must still be
	 * closed on the loop, which then closes cleanly. */
	{
		char dir[] = "/tmp/rgtest.XXXXXX";
		char addr[32];
		int port = pick_ports();
		int fd = listen_on(port);

		assert_non_null(mkdtemp(dir));
		snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
		m.raft_address = addr;
		cfg.dir = dir;
		assert_int_equal(rg_start(&r, &loop, &cfg, NULL, &cbs, errmsg),
		                 RG_ERROR);
		fprintf(stderr, "test: expected failure: %s\n", errmsg);
		assert_non_null(strstr(errmsg, "raft_start"));
		uv_run(&loop, UV_RUN_DEFAULT);
		close(fd);
		nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bad_config),
	    cmocka_unit_test(test_three_servers),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
