/* tests/unit/test_node_config: raftmq-node's configuration (node/config.c):
 * defaults, environment then flags, and clear errors for bad values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "node/config.h"

#define MEMBERS                                                                \
	"1@127.0.0.1:9001/127.0.0.1:7001,2@127.0.0.1:9002/127.0.0.1:7002"

/* Loads `argv` (NULL-terminated, without the program name) into a fresh
 * config; returns node_config_load()'s result and its error text. */
static int load(struct node_config *c, char *err, const char *const *argv)
{
	char *av[32];
	int ac = 0;

	av[ac++] = "raftmq-node";
	while (*argv != NULL && ac < 31) {
		av[ac++] = (char *)*argv++;
	}
	av[ac] = NULL;
	err[0] = '\0';
	return node_config_load(c, ac, av, err);
}

static void test_defaults(void **state)
{
	static struct node_config c;
	char err[NODE_ERR_SIZE];
	const char *argv[] = {
	    "--id",      "1",     "--data-dir", "/nonexistent/d",
	    "--members", MEMBERS, NULL};
	(void)state;

	assert_int_equal(load(&c, err, argv), 0);
	assert_int_equal(c.election_timeout, 1000);
	assert_int_equal(c.heartbeat_timeout, 100);
	assert_int_equal(c.log_memory, (size_t)40 << 20);
	assert_int_equal(c.n_members, 2);
	assert_string_equal(node_config_self(&c)->client_address,
	                    "127.0.0.1:7001");
}

static void test_log_memory(void **state)
{
	static struct node_config c;
	char err[NODE_ERR_SIZE];
	const char *small[] = {
	    "--id",      "1",     "--data-dir",        "/nonexistent/d",
	    "--members", MEMBERS, "--raft-log-memory", "1000",
	    NULL};
	const char *off[] = {
	    "--id",      "1",     "--data-dir",        "/nonexistent/d",
	    "--members", MEMBERS, "--raft-log-memory", "0",
	    NULL};
	const char *flag[] = {
	    "--id",      "1",     "--data-dir",        "/nonexistent/d",
	    "--members", MEMBERS, "--raft-log-memory", "8388608",
	    NULL};
	const char *plain[] = {
	    "--id",      "1",     "--data-dir", "/nonexistent/d",
	    "--members", MEMBERS, NULL};
	(void)state;

	assert_int_equal(load(&c, err, small), -1);
	assert_non_null(strstr(err, "--raft-log-memory (1000) must be 0 or"));
	assert_int_equal(load(&c, err, off), 0);
	assert_int_equal(c.log_memory, 0);
	/* The environment sets it, a flag overrides the environment. */
	setenv("RAFTMQ_RAFT_LOG_MEMORY", "67108864", 1);
	assert_int_equal(load(&c, err, plain), 0);
	assert_int_equal(c.log_memory, (size_t)64 << 20);
	assert_int_equal(load(&c, err, flag), 0);
	assert_int_equal(c.log_memory, (size_t)8 << 20);
	unsetenv("RAFTMQ_RAFT_LOG_MEMORY");
}

static void test_errors(void **state)
{
	static struct node_config c;
	char err[NODE_ERR_SIZE];
	const char *no_id[] = {"--data-dir", "/nonexistent/d", "--members",
	                       MEMBERS, NULL};
	const char *no_dir[] = {"--id", "1", "--members", MEMBERS, NULL};
	const char *not_member[] = {
	    "--id",      "3",     "--data-dir", "/nonexistent/d",
	    "--members", MEMBERS, NULL};
	const char *beat[] = {
	    "--id",      "1",     "--data-dir",          "/nonexistent/d",
	    "--members", MEMBERS, "--heartbeat-timeout", "1000",
	    NULL};
	const char *range[] = {
	    "--id",      "1",     "--data-dir",         "/nonexistent/d",
	    "--members", MEMBERS, "--election-timeout", "5",
	    NULL};
	const char *unknown[] = {"--id",           "1",         "--data-dir",
	                         "/nonexistent/d", "--members", MEMBERS,
	                         "--nope",         "1",         NULL};
	const char *bad_members[] = {"--id", "1", "--members", "1@nohost",
	                             NULL};
	(void)state;

	assert_int_equal(load(&c, err, no_id), -1);
	assert_non_null(strstr(err, "--id"));
	assert_int_equal(load(&c, err, no_dir), -1);
	assert_non_null(strstr(err, "--data-dir"));
	assert_int_equal(load(&c, err, not_member), -1);
	assert_true(err[0] != '\0');
	assert_int_equal(load(&c, err, beat), -1);
	assert_non_null(strstr(err, "--heartbeat-timeout"));
	assert_int_equal(load(&c, err, range), -1);
	assert_true(err[0] != '\0');
	assert_int_equal(load(&c, err, unknown), -1);
	assert_non_null(strstr(err, "unknown option"));
	assert_int_equal(load(&c, err, bad_members), -1);
	assert_true(err[0] != '\0');
}

struct diff {
	int n;
	const char *flag[8];
	uint64_t mine[8], theirs[8];
};

static void diff_cb(void *arg, const char *flag, uint64_t mine, uint64_t theirs)
{
	struct diff *d = arg;

	if (d->n < 8) {
		d->flag[d->n] = flag;
		d->mine[d->n] = mine;
		d->theirs[d->n] = theirs;
		d->n++;
	}
}

/* The state machine flags only seed the replicated configuration: the
 * node reports the ones it was given that differ from the cluster's, and
 * only those (defaults it was not given are not "its" values). */
static void test_fsm_flags_diff(void **state)
{
	static struct node_config c;
	struct fsm_config cluster;
	struct diff d = {0};
	char err[NODE_ERR_SIZE];
	const char *argv[] = {
	    "--id",        "1",       "--data-dir",    "/nonexistent/d",
	    "--members",   MEMBERS,   "--max-payload", "4000",
	    "--max-entry", "2097152", "--max-queues",  "7",
	    NULL};
	(void)state;

	assert_int_equal(load(&c, err, argv), 0);
	/* --max-entry seeds the replicated max_entry. */
	assert_int_equal(c.fsm.max_entry, 2097152);
	assert_int_equal(c.max_entry, 2097152);
	fsm_config_default(&cluster);
	cluster.max_payload = 1000;
	cluster.max_entry = 2097152;
	cluster.default_max_length = 5; /* differs, but not given here */
	cluster.max_queues = 7;
	node_config_fsm_diff(&c, &cluster, diff_cb, &d);
	assert_int_equal(d.n, 1);
	assert_string_equal(d.flag[0], "max-payload");
	assert_int_equal(d.mine[0], 4000);
	assert_int_equal(d.theirs[0], 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_log_memory),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_fsm_flags_diff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
