/* Deterministic tests of raft_glue's FSM adapter on raft's fixture, with the
 * real fsm/: replication, failover, catch-up and snapshot installation all
 * end in byte-identical state machines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <raft.h>
#include <raft/fixture.h>

#include "raft_glue/rg_fsm.h"
#include "rg_test_util.h"

#define N       3
#define STEP_MS 20000

struct server {
	struct fsm *fsm;
	struct rg_fsm rf;
	struct fsm_sink sink;
	unsigned n_results;
	unsigned n_ok;
};

struct fx {
	struct raft_fixture f;
	struct server s[N];
	/* Election safety, checked on every fixture event. */
	raft_id leader_of_term[256];
	/* Apply callbacks. */
	unsigned cb_ok, cb_failed;
};

static struct fx *hook_fx; /* the fixture hook has no user pointer */

static void on_result(void *data, const struct fsm_result *r)
{
	struct server *s = data;

	s->n_results++;
	if (r->status == FSM_OK)
		s->n_ok++;
}

/* At most one leader per term, over the whole run. */
static void safety_hook(struct raft_fixture *f, struct raft_fixture_event *e)
{
	unsigned i;

	(void)e;
	for (i = 0; i < raft_fixture_n(f); i++) {
		struct raft *r = raft_fixture_get(f, i);
		raft_term t = raft_current_term(r);

		if (!raft_fixture_alive(f, i) || raft_state(r) != RAFT_LEADER)
			continue;
		assert_true(t < 256);
		if (hook_fx->leader_of_term[t] == 0)
			hook_fx->leader_of_term[t] = r->id;
		assert_true(hook_fx->leader_of_term[t] == r->id);
	}
}

static int fx_setup(void **state, unsigned threshold, unsigned trailing)
{
	struct raft_configuration conf;
	struct fx *x;
	unsigned i;

	x = calloc(1, sizeof *x);
	assert_non_null(x);
	assert_int_equal(raft_fixture_init(&x->f), 0);
	for (i = 0; i < N; i++) {
		struct server *s = &x->s[i];
		struct raft *r;

		s->fsm = fsm_new(NULL);
		assert_non_null(s->fsm);
		s->sink.data = s;
		s->sink.result = on_result;
		rg_fsm_init(&s->rf, s->fsm, &s->sink);
		assert_int_equal(raft_fixture_grow(&x->f, &s->rf.raft), 0);
		r = raft_fixture_get(&x->f, i);
		r->tracer = NULL;
		raft_set_snapshot_threshold(r, threshold);
		raft_set_snapshot_trailing(r, trailing);
	}
	assert_int_equal(raft_fixture_configuration(&x->f, N, &conf), 0);
	assert_int_equal(raft_fixture_bootstrap(&x->f, &conf), 0);
	raft_configuration_close(&conf);
	assert_int_equal(raft_fixture_start(&x->f), 0);
	hook_fx = x;
	raft_fixture_hook(&x->f, safety_hook);
	*state = x;
	return 0;
}

static int setup_plain(void **state)
{
	return fx_setup(state, 1024, 2048);
}

static int setup_snap(void **state)
{
	return fx_setup(state, 8, 2);
}

static int teardown(void **state)
{
	struct fx *x = *state;
	unsigned i;

	raft_fixture_close(&x->f);
	for (i = 0; i < N; i++)
		fsm_free(x->s[i].fsm);
	hook_fx = NULL;
	free(x);
	return 0;
}

static void apply_cb(struct raft_apply *req, int status, void *result)
{
	struct fx *x = req->data;

	assert_null(result);
	if (status == 0)
		x->cb_ok++;
	else
		x->cb_failed++;
	free(req);
}

/* Proposes `len` bytes as one entry on server `i` (which must lead) the way
 * rg_propose does: one raft_malloc'd buffer, length a multiple of 8. Returns
 * the entry's index. */
static raft_index propose_bytes(struct fx *x, unsigned i, const void *data,
                                size_t len)
{
	struct raft *r = raft_fixture_get(&x->f, i);
	struct raft_apply *req = calloc(1, sizeof *req);
	struct raft_buffer b;
	size_t padded = (len + 7) & ~(size_t)7;

	assert_non_null(req);
	req->data = x;
	b.len = padded;
	b.base = raft_calloc(1, padded);
	assert_non_null(b.base);
	memcpy(b.base, data, len);
	assert_int_equal(raft_apply(r, req, &b, 1, apply_cb), 0);
	return req->index;
}

static raft_index propose_batch(struct fx *x, unsigned i, unsigned n)
{
	void *buf;
	size_t len;
	raft_index index;

	assert_int_equal(rgt_batch(n, &buf, &len), 0);
	assert_int_equal(len % 8, 0);
	index = propose_bytes(x, i, buf, len);
	free(buf);
	return index;
}

/* Steps until every live server has applied `index`. */
static void wait_applied(struct fx *x, raft_index index)
{
	unsigned i;

	for (i = 0; i < N; i++) {
		if (!raft_fixture_alive(&x->f, i))
			continue;
		assert_true(
		    raft_fixture_step_until_applied(&x->f, i, index, STEP_MS));
	}
}

static void assert_all_identical(struct fx *x)
{
	unsigned i;

	for (i = 1; i < N; i++)
		assert_true(rgt_same_state(x->s[0].fsm, x->s[i].fsm));
	for (i = 0; i < N; i++)
		assert_int_equal(fsm_check(x->s[i].fsm), 0);
}

struct other_leader {
	unsigned not ; /* index that must not be the leader */
	unsigned found;
};

/* True once a live server other than `not` leads. A killed leader stays
 * RAFT_LEADER in the fixture, so has_leader would return at once. */
static bool other_leads(struct raft_fixture *f, void *arg)
{
	struct other_leader *o = arg;
	unsigned i;

	for (i = 0; i < raft_fixture_n(f); i++) {
		if (i == o->not || !raft_fixture_alive(f, i))
			continue;
		if (raft_state(raft_fixture_get(f, i)) == RAFT_LEADER) {
			o->found = i;
			return true;
		}
	}
	return false;
}

static void elect_first(struct fx *x)
{
	raft_fixture_elect(&x->f, 0);
	assert_int_equal(raft_state(raft_fixture_get(&x->f, 0)), RAFT_LEADER);
}

/* Entries applied on all three, then a failover and a catch-up: the three
 * state machines stay byte-identical. */
static void test_replicate_failover_catch_up(void **state)
{
	struct fx *x = *state;
	struct other_leader o = {.not = 0, .found = N};
	raft_index index = 0;
	unsigned n, i;

	elect_first(x);
	for (n = 0; n < 5; n++)
		index = propose_batch(x, 0, n);
	wait_applied(x, index);
	assert_int_equal(x->cb_ok, 5);
	for (i = 0; i < N; i++)
		assert_int_equal(x->s[i].n_results, 5 * RGT_CMDS_PER_BATCH);
	assert_all_identical(x);

	/* Kill the leader; another one takes over and appends more. */
	raft_fixture_kill(&x->f, 0);
	assert_true(raft_fixture_step_until(&x->f, other_leads, &o, STEP_MS));
	assert_true(o.found < N);
	for (; n < 10; n++)
		index = propose_batch(x, o.found, n);
	wait_applied(x, index);
	assert_int_equal(x->cb_ok, 10);
	assert_true(rgt_same_state(x->s[1].fsm, x->s[2].fsm));
	assert_false(rgt_same_state(x->s[0].fsm, x->s[1].fsm));

	/* The old leader comes back and catches up from the log. */
	raft_fixture_revive(&x->f, 0);
	assert_true(raft_fixture_step_until_applied(&x->f, 0, index, STEP_MS));
	assert_all_identical(x);
	for (i = 0; i < N; i++) {
		assert_int_equal(x->s[i].n_results, 10 * RGT_CMDS_PER_BATCH);
		assert_int_equal(x->s[i].rf.n_restores, 0);
		assert_int_equal(x->s[i].rf.n_malformed, 0);
	}
}

/* Undecodable bytes are applied as a no-op everywhere: raft keeps going, the
 * entry yields one FSM_EMALFORMED result and the states stay identical. */
static void test_malformed_entry(void **state)
{
	struct fx *x = *state;
	static const char junk[16] = "not an fsm batch";
	raft_index index;
	unsigned i;

	elect_first(x);
	propose_batch(x, 0, 0);
	propose_bytes(x, 0, junk, sizeof junk);
	index = propose_batch(x, 0, 1);
	wait_applied(x, index);
	assert_int_equal(x->cb_ok, 3);
	for (i = 0; i < N; i++) {
		assert_int_equal(x->s[i].rf.n_malformed, 1);
		/* 2 batches of results plus one FSM_EMALFORMED result. */
		assert_int_equal(x->s[i].n_results, 2 * RGT_CMDS_PER_BATCH + 1);
		assert_int_equal(x->s[i].n_ok, 2 * RGT_CMDS_PER_BATCH);
	}
	assert_all_identical(x);
}

/* With threshold 8 / trailing 2, a server that missed many entries gets an
 * InstallSnapshot, restores it through rg_fsm and ends identical. */
static void test_snapshot_install(void **state)
{
	struct fx *x = *state;
	raft_index index = 0;
	unsigned n;

	elect_first(x);
	index = propose_batch(x, 0, 0);
	wait_applied(x, index);

	raft_fixture_kill(&x->f, 2);
	for (n = 1; n < 30; n++) {
		index = propose_batch(x, 0, n);
		/* Keep the number in flight modest, as rg does. */
		if (n % 8 == 0)
			wait_applied(x, index);
	}
	wait_applied(x, index);
	assert_true(x->s[0].rf.n_snapshots >= 1);
	assert_int_equal(x->s[2].rf.n_restores, 0);

	raft_fixture_revive(&x->f, 2);
	assert_true(raft_fixture_step_until_applied(&x->f, 2, index, STEP_MS));
	assert_true(x->s[2].rf.n_restores >= 1);
	assert_all_identical(x);
	assert_int_equal(x->cb_ok, 30);
	/* The snapshot carried the state, not the results: server 2 saw only
	 * the entries applied after it. */
	assert_true(x->s[2].n_results < 30 * RGT_CMDS_PER_BATCH);
	assert_int_equal(x->s[0].n_results, 30 * RGT_CMDS_PER_BATCH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_replicate_failover_catch_up,
	                                    setup_plain, teardown),
	    cmocka_unit_test_setup_teardown(test_malformed_entry, setup_plain,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_snapshot_install, setup_snap,
	                                    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
