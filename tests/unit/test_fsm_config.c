/* test_fsm_config: the replicated configuration (FSM_CMD_CONFIG), the
 * divergence detector (digest, CHECK), allocation failures inside apply
 * (fsm_failed), and their place in snapshots. */
#include <stdio.h>

#include "test_fsm_util.h"
#include "fsm/codec.h"
#include "fsm/fsm_int.h"

#define KV(k, v)                                                               \
	{                                                                      \
		(k), (uint32_t)(sizeof(k) - 1), (v)                            \
	}

static int config_cmd(struct fsm *f, uint8_t bootstrap,
                      const struct fsm_config_kv *kv, uint32_t n)
{
	struct fsm_cmd c = cmd_of(FSM_CMD_CONFIG);

	c.session = 0;
	c.u.config.bootstrap = bootstrap;
	c.u.config.kv = kv;
	c.u.config.n_kv = n;
	return apply(f, &c, NULL);
}

static int same_config(const struct fsm_config *a, const struct fsm_config *b)
{
	struct fsm_config_kv ka[64], kb[64];
	uint32_t n = fsm_config_to_kv(a, ka, 64), i;

	assert_int_equal(fsm_config_to_kv(b, kb, 64), n);
	for (i = 0; i < n; i++)
		if (ka[i].value != kb[i].value)
			return 0;
	return 1;
}

/* Every field by name, out and back in; names are the field names. */
static void test_kv_round_trip(void **state)
{
	struct fsm_config a, b;
	struct fsm_config_kv kv[64];
	uint32_t n, i;

	(void)state;
	fsm_config_default(&a);
	n = fsm_config_to_kv(&a, kv, 64);
	assert_int_equal(n, 15);
	/* A short buffer gets what fits, and the full count. */
	assert_int_equal(fsm_config_to_kv(&a, kv, 2), 15);
	n = fsm_config_to_kv(&a, kv, 64);
	assert_string_equal(kv[0].key, "max_payload");
	assert_int_equal(kv[0].value, 256 * 1024);
	assert_string_equal(kv[n - 1].key, "max_entry");
	/* Distinct values in every field, through set_kv, back out. */
	memset(&b, 0, sizeof(b));
	for (i = 0; i < n; i++)
		assert_int_equal(
		    fsm_config_set_kv(&b, kv[i].key, kv[i].key_len, 1000 + i),
		    0);
	n = fsm_config_to_kv(&b, kv, 64);
	for (i = 0; i < n; i++)
		assert_int_equal(kv[i].value, 1000 + i);
	assert_int_equal(b.max_payload, 1000);
	assert_int_equal(b.max_entry, 1014);
	assert_int_equal(b.max_memory, 1011);
	/* Unknown names, prefixes, and values too wide for the field. */
	assert_int_equal(fsm_config_set_kv(&b, "max_pay", 7, 1), FSM_EINVAL);
	assert_int_equal(fsm_config_set_kv(&b, "max_payloadx", 12, 1),
	                 FSM_EINVAL);
	assert_int_equal(fsm_config_set_kv(&b, "", 0, 1), FSM_EINVAL);
	assert_int_equal(fsm_config_set_kv(&b, "max_get", 7, 1ull << 32),
	                 FSM_EINVAL);
	assert_int_equal(fsm_config_set_kv(&b, "max_memory", 10, 1ull << 40),
	                 0);
	assert_int_equal(b.max_memory, 1ull << 40);
	assert_int_equal(b.max_get, 1009);
	assert_true(fsm_config_valid(&a));
	b = a;
	b.max_name = 0;
	assert_false(fsm_config_valid(&b));
	/* Room for the dead-letter headers and the envelope. */
	assert_true(fsm_max_delivery_size(&a) >=
	            (size_t)a.max_payload + a.max_name + 2 * 32);
}

/* A bootstrap applies while the configuration was never set, then never
 * again; later changes need bootstrap = 0. */
static void test_bootstrap_once(void **state)
{
	struct fsm *f = fsm_new(NULL);
	const struct fsm_config_kv first[] = {KV("max_payload", 1000),
	                                      KV("max_queues", 7)};
	const struct fsm_config_kv second[] = {KV("max_payload", 4000)};
	struct rec *r = rec_new();

	(void)state;
	assert_int_equal(fsm_config_is_set(f), 0);
	assert_int_equal(fsm_config_version(f), 0);
	assert_int_equal(config_cmd(f, 1, first, 2), FSM_OK);
	assert_int_equal(fsm_config_is_set(f), 1);
	assert_int_equal(fsm_config_version(f), 1);
	assert_int_equal(fsm_config_get(f)->max_payload, 1000);
	assert_int_equal(fsm_config_get(f)->max_queues, 7);
	/* A second bootstrap (another node's flags) changes nothing. */
	assert_int_equal(config_cmd(f, 1, second, 1), FSM_OK);
	assert_int_equal(fsm_config_get(f)->max_payload, 1000);
	assert_int_equal(fsm_config_version(f), 1);
	/* The replicated value is what apply uses. */
	assert_int_equal(declare(f, "q", NULL, NULL), FSM_OK);
	{
		static char big[2000];
		struct fsm_cmd c = cmd_of(FSM_CMD_PUBLISH);

		c.u.publish.key = "q";
		c.u.publish.key_len = 1;
		c.u.publish.msg.payload = big;
		c.u.publish.msg.payload_len = sizeof(big);
		assert_int_equal(apply(f, &c, r), FSM_ETOOBIG);
		assert_int_equal(config_cmd(f, 0, second, 1), FSM_OK);
		assert_int_equal(fsm_config_version(f), 2);
		assert_int_equal(apply(f, &c, r), FSM_OK);
	}
	/* Setting the same values again is no change. */
	assert_int_equal(config_cmd(f, 0, second, 1), FSM_OK);
	assert_int_equal(fsm_config_version(f), 2);
	/* A bootstrap that matches the defaults still marks it set. */
	fsm_free(f);
	f = fsm_new(NULL);
	assert_int_equal(config_cmd(f, 1, NULL, 0), FSM_OK);
	assert_int_equal(fsm_config_is_set(f), 1);
	assert_int_equal(fsm_config_version(f), 1);
	assert_int_equal(config_cmd(f, 1, first, 2), FSM_OK);
	assert_int_equal(fsm_config_get(f)->max_payload, 256 * 1024);
	free(r);
	fsm_free(f);
}

/* An unknown key or an invalid result changes nothing at all. */
static void test_invalid_changes_nothing(void **state)
{
	struct fsm *f = fsm_new(NULL);
	struct fsm_config before = *fsm_config_get(f);
	const struct fsm_config_kv unknown[] = {KV("max_payload", 1000),
	                                        KV("max_paylod", 5)};
	const struct fsm_config_kv invalid[] = {KV("max_payload", 1000),
	                                        KV("max_name", 0)};
	const struct fsm_config_kv huge[] = {KV("max_payload", 1u << 26)};
	const struct fsm_config_kv wide[] = {KV("max_get", 1ull << 32)};

	(void)state;
	assert_int_equal(config_cmd(f, 0, unknown, 2), FSM_EINVAL);
	assert_int_equal(config_cmd(f, 0, invalid, 2), FSM_EINVAL);
	assert_int_equal(config_cmd(f, 0, huge, 1), FSM_EINVAL);
	assert_int_equal(config_cmd(f, 0, wide, 1), FSM_EINVAL);
	assert_int_equal(config_cmd(f, 1, invalid, 2), FSM_EINVAL);
	assert_true(same_config(&before, fsm_config_get(f)));
	assert_int_equal(fsm_config_version(f), 0);
	assert_int_equal(fsm_config_is_set(f), 0);
	assert_int_equal(fsm_applied(f), 5);
	fsm_free(f);
}

/* Lowering limits leaves existing state alone, and a snapshot of a state
 * above the lowered limits restores: the restore checks hard bounds. */
static void test_lowered_limits_restore(void **state)
{
	struct fsm *f = fsm_new(NULL), *g = fsm_new(NULL);
	static const char longname[] =
	    "a-queue-name-of-40-bytes-xxxxxxxxxxxxxxx";
	const struct fsm_config_kv lower[] = {KV("max_queues", 1),
	                                      KV("max_name", 8),
	                                      KV("max_consumers", 1),
	                                      KV("max_payload", 2),
	                                      KV("max_session_consumers", 1),
	                                      KV("default_max_length", 1)};
	const struct fsm_config_kv dd[] = {KV("max_dedup_entries", 1)};
	struct fsm_queue_opts o = {0};
	struct fsm_cmd c;
	size_t len;
	void *buf;

	(void)state;
	o.dlq = longname;
	assert_int_equal(declare(f, "q1", NULL, NULL), FSM_OK);
	assert_int_equal(declare(f, "q2", &o, NULL), FSM_OK);
	assert_int_equal(declare(f, longname, NULL, NULL), FSM_OK);
	c = cmd_of(FSM_CMD_TOPIC_DECLARE);
	c.u.topic.name = longname;
	c.u.topic.name_len = sizeof(longname) - 1;
	assert_int_equal(apply(f, &c, NULL), FSM_OK);
	c = cmd_of(FSM_CMD_BIND);
	c.u.bind.topic = longname;
	c.u.bind.topic_len = sizeof(longname) - 1;
	c.u.bind.queue = "q1";
	c.u.bind.queue_len = 2;
	c.u.bind.key = longname;
	c.u.bind.key_len = sizeof(longname) - 1;
	assert_int_equal(apply(f, &c, NULL), FSM_OK);
	assert_int_equal(publish(f, "q1", "id1", "payload", NULL), FSM_OK);
	assert_int_equal(publish(f, "q1", "id2", "payload", NULL), FSM_OK);
	assert_int_equal(publish(f, "q1", "id3", "payload", NULL), FSM_OK);
	assert_int_equal(consume(f, "q2", 5, 1, NULL), FSM_OK);
	assert_int_equal(consume(f, "q1", 5, 1, NULL), FSM_OK);
	assert_int_equal(config_cmd(f, 0, lower, 6), FSM_OK);
	assert_int_equal(qstats(f, "q1").ready + qstats(f, "q1").in_flight, 3);
	assert_int_equal(qstats(f, "q1").consumers, 1);
	/* New state is held to the new limits. */
	assert_int_equal(declare(f, "q3", NULL, NULL), FSM_ELIMIT);
	assert_int_equal(publish(f, "q1", "id4", "payload", NULL), FSM_ETOOBIG);
	buf = snap(f, &len);
	assert_int_equal(fsm_restore(g, buf, len), FSM_OK);
	assert_int_equal(fsm_check(g), 0);
	assert_true(snap_equal(f, g));
	assert_int_equal(fsm_config_get(g)->max_queues, 1);
	assert_int_equal(fsm_config_get(g)->max_name, 8);
	assert_int_equal(declare(g, "q3", NULL, NULL), FSM_ELIMIT);
	free(buf);
	/* More dedup entries than a lowered max_dedup_entries. (Applied
	 * without fsm_check: its "dedup entries <= max_dedup_entries" in
	 * queue.c does not hold after a lowering; restore checks the hard
	 * bound.) */
	c = cmd_of(FSM_CMD_CONFIG);
	c.time = test_time;
	c.u.config.kv = dd;
	c.u.config.n_kv = 1;
	assert_int_equal(fsm_apply(f, &c, NULL), FSM_OK);
	assert_int_equal(fsm_config_get(f)->max_dedup_entries, 1);
	buf = snap(f, &len);
	assert_int_equal(fsm_restore(g, buf, len), FSM_OK);
	assert_true(snap_equal(f, g));
	assert_int_equal(fsm_config_get(g)->max_dedup_entries, 1);
	free(buf);
	fsm_free(f);
	fsm_free(g);
}

/* Entries of commands, for the ring of CHECK. */
static void apply_entry(struct fsm *f, const struct fsm_cmd *cmds, uint32_t n,
                        struct rec *r)
{
	struct fsm_batch b;
	struct fsm_sink s = rec_sink(r);
	const void *buf;
	size_t len;
	uint32_t i;

	fsm_batch_init(&b);
	for (i = 0; i < n; i++)
		assert_int_equal(fsm_batch_add(&b, &cmds[i]), 0);
	assert_int_equal(fsm_batch_finish(&b, &buf, &len), 0);
	assert_int_equal(fsm_apply_entry(f, buf, len, r != NULL ? &s : NULL),
	                 (int)n);
	assert_int_equal(fsm_check(f), 0);
	fsm_batch_close(&b);
}

static struct fsm_cmd pub_cmd(const char *q, const char *payload)
{
	struct fsm_cmd c = cmd_of(FSM_CMD_PUBLISH);

	c.time = 1000;
	c.u.publish.key = q;
	c.u.publish.key_len = (uint32_t)strlen(q);
	c.u.publish.msg.payload = payload;
	c.u.publish.msg.payload_len = (uint32_t)strlen(payload);
	return c;
}

static struct fsm_cmd check_cmd(uint64_t applied, uint64_t digest)
{
	struct fsm_cmd c = cmd_of(FSM_CMD_CHECK);

	c.time = 1000;
	c.u.check.applied = applied;
	c.u.check.digest = digest;
	return c;
}

/* Two replicas fed the same entries agree; one that applied a different
 * entry is told by the next CHECK of the other's digest. */
static void test_digest_and_check(void **state)
{
	struct fsm *a = fsm_new(NULL), *b = fsm_new(NULL), *c = fsm_new(NULL);
	struct fsm_cmd cmds[3];
	struct rec *ra = rec_new(), *rb = rec_new();
	uint64_t applied, digest, d0;
	size_t len;
	void *buf;

	(void)state;
	cmds[0] = cmd_of(FSM_CMD_QUEUE_DECLARE);
	cmds[0].u.declare.name = "q";
	cmds[0].u.declare.name_len = 1;
	cmds[1] = pub_cmd("q", "one");
	cmds[2] = cmd_of(FSM_CMD_CONSUME);
	cmds[2].u.consume.queue = "q";
	cmds[2].u.consume.queue_len = 1;
	cmds[2].u.consume.prefetch = 5;
	apply_entry(a, cmds, 3, ra);
	apply_entry(b, cmds, 3, NULL);
	apply_entry(c, cmds, 3, NULL);
	assert_int_equal(fsm_applied(a), 3);
	assert_true(fsm_digest(a) != 0);
	assert_true(fsm_digest(a) == fsm_digest(b));
	d0 = fsm_digest(a);
	/* c applies a publish to another queue (its apply was corrupted). */
	cmds[0] = pub_cmd("q", "two");
	apply_entry(a, cmds, 1, ra);
	apply_entry(b, cmds, 1, NULL);
	cmds[0] = pub_cmd("no-such-queue", "two");
	apply_entry(c, cmds, 1, NULL);
	assert_true(fsm_digest(a) == fsm_digest(b));
	assert_true(fsm_digest(a) != d0);
	assert_true(fsm_digest(c) != fsm_digest(a));

	/* The leader (a) proposes its (applied, digest). */
	applied = fsm_applied(a);
	digest = fsm_digest(a);
	cmds[0] = check_cmd(applied, digest);
	apply_entry(a, cmds, 1, ra);
	assert_int_equal(last_res(ra)->status, FSM_OK);
	assert_int_equal(last_res(ra)->type, FSM_CMD_CHECK);
	apply_entry(b, cmds, 1, rb);
	assert_int_equal(last_res(rb)->status, FSM_OK);
	assert_int_equal(fsm_diverged(b), 0);
	/* CHECK counts, but leaves the digest alone. */
	assert_int_equal(fsm_applied(a), applied + 1);
	assert_true(fsm_digest(a) == digest);
	/* c is at the same applied count with a different digest. */
	assert_int_equal(fsm_applied(c), applied);
	rb->n_res = 0;
	apply_entry(c, cmds, 1, rb);
	assert_int_equal(last_res(rb)->status, FSM_EDIVERGED);
	assert_int_equal(fsm_diverged(c), 1);
	/* An index older than this replica's records is no verdict. */
	cmds[0] = check_cmd(2, 12345);
	apply_entry(b, cmds, 1, rb);
	assert_int_equal(last_res(rb)->status, FSM_OK);
	assert_int_equal(fsm_diverged(b), 0);
	/* An old index still in the ring is compared: b at 3 had d0. */
	cmds[0] = check_cmd(3, d0 ^ 1);
	apply_entry(b, cmds, 1, rb);
	assert_int_equal(last_res(rb)->status, FSM_EDIVERGED);
	assert_int_equal(fsm_diverged(b), 1);
	assert_int_equal(fsm_diverged(a), 0);
	/* Diverged is node-local: a restore keeps it, and empties the ring
	 * (a replica restored from a's snapshot has nothing to compare). */
	buf = snap(a, &len);
	assert_int_equal(fsm_restore(c, buf, len), FSM_OK);
	assert_int_equal(fsm_diverged(c), 1);
	assert_true(fsm_digest(c) == fsm_digest(a));
	assert_true(fsm_applied(c) == fsm_applied(a));
	cmds[0] = check_cmd(applied, digest ^ 1);
	rb->n_res = 0;
	apply_entry(c, cmds, 1, rb);
	assert_int_equal(last_res(rb)->status, FSM_OK);
	free(buf);
	free(ra);
	free(rb);
	fsm_free(a);
	fsm_free(b);
	fsm_free(c);
}

/* What the fault-injection build does to one replica: it skips one
 * publish. Later commands get the same statuses on both, yet the digests
 * differ (sequence numbers and deliveries moved), and stay different. */
static void test_digest_sees_a_skip(void **state)
{
	struct fsm *a = fsm_new(NULL), *b = fsm_new(NULL);

	(void)state;
	assert_int_equal(declare(a, "q", NULL, NULL), FSM_OK);
	assert_int_equal(declare(b, "q", NULL, NULL), FSM_OK);
	assert_int_equal(publish(a, "q", "", "x", NULL), FSM_OK);
	assert_int_equal(publish(b, "q", "", "x", NULL), FSM_OK);
	assert_true(fsm_digest(a) == fsm_digest(b));
	assert_int_equal(publish(a, "q", "", "skipped by b", NULL), FSM_OK);
	assert_int_equal(publish(a, "q", "", "x", NULL), FSM_OK);
	assert_int_equal(publish(b, "q", "", "x", NULL), FSM_OK);
	assert_int_equal(get_msgs(a, "q", 3, 5, 0, 1, NULL), FSM_OK);
	assert_int_equal(get_msgs(b, "q", 3, 5, 0, 1, NULL), FSM_OK);
	assert_true(fsm_digest(a) != fsm_digest(b));
	assert_true(fsm_applied(a) == fsm_applied(b) + 1);
	fsm_free(a);
	fsm_free(b);
}

/* A replica that skipped a whole entry has none of the leader's entry
 * boundaries when entries are large: it is diverged all the same (the
 * leader's boundary lies between two of its own, or beyond its last). */
static void test_check_skipped_entry(void **state)
{
	struct fsm *a = fsm_new(NULL), *b = fsm_new(NULL);
	struct fsm_cmd cmds[4];
	struct rec *r = rec_new();
	uint64_t d8 = 0;
	uint32_t i, k;

	(void)state;
	cmds[0] = cmd_of(FSM_CMD_QUEUE_DECLARE);
	cmds[0].u.declare.name = "q";
	cmds[0].u.declare.name_len = 1;
	for (i = 1; i < 4; i++)
		cmds[i] = pub_cmd("q", "x");
	apply_entry(a, cmds, 4, NULL);
	apply_entry(b, cmds, 4, NULL);
	for (i = 0; i < 4; i++)
		cmds[i] = pub_cmd("q", "x");
	for (k = 0; k < 5; k++) {
		apply_entry(a, cmds, 4, NULL);
		if (k == 0)
			d8 = fsm_digest(a);
		if (k != 2) /* b misses the third entry */
			apply_entry(b, cmds, 4, NULL);
	}
	/* a's boundaries 4, 8, ..., 24; b's 4, 8, 12, 16, 20. */
	assert_int_equal(fsm_applied(a), 24);
	assert_int_equal(fsm_applied(b), 20);
	/* A boundary both have, before the skip: equal. */
	cmds[0] = check_cmd(8, d8);
	apply_entry(b, cmds, 1, r);
	assert_int_equal(last_res(r)->status, FSM_OK);
	/* a's last boundary, beyond b's last: diverged. */
	cmds[0] = check_cmd(24, fsm_digest(a));
	apply_entry(b, cmds, 1, r);
	assert_int_equal(last_res(r)->status, FSM_EDIVERGED);
	assert_int_equal(fsm_diverged(b), 1);
	/* a itself agrees with its own history. */
	apply_entry(a, cmds, 1, r);
	assert_int_equal(last_res(r)->status, FSM_OK);
	assert_int_equal(fsm_diverged(a), 0);
	free(r);
	fsm_free(a);
	fsm_free(b);
}

/* Only the outcome is digested: commands with the same outcome and
 * effects (a different payload) give the same digest. The snapshot bytes
 * are the check for the rest (the chaos harness compares them). */
static void test_digest_scope(void **state)
{
	struct fsm *a = fsm_new(NULL), *b = fsm_new(NULL);

	(void)state;
	assert_int_equal(declare(a, "q", NULL, NULL), FSM_OK);
	assert_int_equal(declare(b, "q", NULL, NULL), FSM_OK);
	assert_int_equal(publish(a, "q", "", "x", NULL), FSM_OK);
	assert_int_equal(publish(b, "q", "", "y", NULL), FSM_OK);
	assert_true(fsm_digest(a) == fsm_digest(b));
	assert_false(snap_equal(a, b));
	/* A different seq in a result is seen. */
	assert_int_equal(declare(a, "r", NULL, NULL), FSM_OK);
	assert_int_equal(declare(b, "r", NULL, NULL), FSM_OK);
	assert_int_equal(publish(a, "q", "", "x", NULL), FSM_OK);
	assert_int_equal(publish(b, "r", "", "x", NULL), FSM_OK);
	assert_true(fsm_digest(a) != fsm_digest(b));
	fsm_free(a);
	fsm_free(b);
}

/* A snapshot carries configuration, applied and digest; a replica restored
 * from it goes on exactly like the original. */
static void test_snapshot_keeps_config(void **state)
{
	struct fsm *f = fsm_new(NULL), *g = fsm_new(NULL);
	const struct fsm_config_kv kv[] = {
	    KV("max_payload", 1234), KV("max_memory", 5ull << 32),
	    KV("max_entry", 2u << 20), KV("session_window", 77777)};
	size_t l1, l2;
	void *s1, *s2;

	(void)state;
	assert_int_equal(config_cmd(f, 1, kv, 4), FSM_OK);
	assert_int_equal(declare(f, "q", NULL, NULL), FSM_OK);
	assert_int_equal(publish(f, "q", "a", "x", NULL), FSM_OK);
	s1 = snap(f, &l1);
	assert_int_equal(((unsigned char *)s1)[13], 4);
	assert_int_equal(fsm_restore(g, s1, l1), FSM_OK);
	assert_true(same_config(fsm_config_get(f), fsm_config_get(g)));
	assert_int_equal(fsm_config_get(g)->max_memory, 5ull << 32);
	assert_int_equal(fsm_config_is_set(g), 1);
	assert_true(fsm_applied(g) == fsm_applied(f));
	assert_true(fsm_digest(g) == fsm_digest(f));
	assert_int_equal(fsm_applied(g), 3);
	s2 = snap(g, &l2);
	assert_int_equal(l1, l2);
	assert_memory_equal(s1, s2, l1);
	free(s2);
	assert_int_equal(publish(f, "q", "b", "x", NULL), FSM_OK);
	assert_int_equal(publish(g, "q", "b", "x", NULL), FSM_OK);
	assert_true(fsm_digest(g) == fsm_digest(f));
	/* A configuration never set stays "not set" through a snapshot. */
	fsm_free(f);
	f = fsm_new(NULL);
	free(s1);
	s1 = snap(f, &l1);
	assert_int_equal(fsm_restore(g, s1, l1), FSM_OK);
	assert_int_equal(fsm_config_is_set(g), 0);
	free(s1);
	fsm_free(f);
	fsm_free(g);
}

/* The entry's wall clock travels with the command; the FSM clock is the
 * cluster time and ignores it. */
static void test_wall_not_a_clock(void **state)
{
	struct fsm *f = fsm_new(NULL);
	struct fsm_cmd c = pub_cmd("q", "x");
	struct fsm_queue_opts o = {0};
	struct rec *r = rec_new();

	(void)state;
	o.message_ttl = 100;
	assert_int_equal(declare(f, "q", &o, NULL), FSM_OK);
	c.time = 2000;
	c.wall = 2000 + 3600 * 1000; /* a leader an hour ahead */
	apply_entry(f, &c, 1, r);
	assert_int_equal(fsm_now(f), 2000);
	assert_int_equal(qstats(f, "q").ready, 1);
	assert_int_equal(fsm_next_deadline(f), 2100);
	assert_int_equal(get_msgs(f, "q", 3, 1, 0, 1, r), FSM_OK);
	assert_int_equal(r->eff[r->n_eff - 1].seq, 1);
	free(r);
	fsm_free(f);
}

/* An allocation that fails inside apply marks the replica failed,
 * whichever path it took: a status, or a failure apply swallows. */
static void test_alloc_failure_fails(void **state)
{
	uint64_t k;
	uint32_t failed_runs = 0;

	(void)state;
	for (k = 1; k < 200; k++) {
		struct fsm *f = fsm_new(NULL);
		struct fsm_cmd c;
		uint64_t reached;
		int i;

		fsm_test_fail_alloc(f, k);
		c = cmd_of(FSM_CMD_QUEUE_DECLARE);
		c.time = 1000;
		c.u.declare.name = "q";
		c.u.declare.name_len = 1;
		fsm_apply(f, &c, NULL);
		for (i = 0; i < 8; i++) {
			c = pub_cmd("q", "payload");
			fsm_apply(f, &c, NULL);
		}
		c = cmd_of(FSM_CMD_CONSUME);
		c.time = 1000;
		c.u.consume.queue = "q";
		c.u.consume.queue_len = 1;
		c.u.consume.prefetch = 4;
		fsm_apply(f, &c, NULL);
		c = cmd_of(FSM_CMD_TICK);
		c.time = 100000;
		fsm_apply(f, &c, NULL);
		reached = f->fail_hits > 0;
		assert_int_equal(fsm_failed(f), reached);
		failed_runs += reached;
		fsm_free(f);
	}
	/* The sequence needs fewer than 200 allocations. */
	assert_true(failed_runs > 10 && failed_runs < 199);
}

/* The same through an entry: the first publish fails, the replica says so;
 * a snapshot restore does not clear it. */
static void test_alloc_failure_entry(void **state)
{
	struct fsm *f = fsm_new(NULL), *g = fsm_new(NULL);
	struct fsm_cmd c[2];
	struct rec *r = rec_new();
	size_t len;
	void *buf = snap(g, &len);

	(void)state;
	assert_int_equal(declare(f, "q", NULL, NULL), FSM_OK);
	assert_int_equal(fsm_failed(f), 0);
	c[0] = pub_cmd("q", "a");
	c[1] = pub_cmd("q", "b");
	fsm_test_fail_alloc(f, 1);
	apply_entry(f, c, 2, r);
	assert_int_equal(r->res[r->n_res - 2].status, FSM_ENOMEM);
	assert_int_equal(fsm_failed(f), 1);
	fsm_test_fail_alloc(f, 0);
	assert_int_equal(fsm_restore(f, buf, len), FSM_OK);
	assert_int_equal(fsm_failed(f), 1);
	assert_int_equal(fsm_failed(g), 0);
	free(buf);
	free(r);
	fsm_free(f);
	fsm_free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kv_round_trip),
	    cmocka_unit_test(test_bootstrap_once),
	    cmocka_unit_test(test_invalid_changes_nothing),
	    cmocka_unit_test(test_lowered_limits_restore),
	    cmocka_unit_test(test_digest_and_check),
	    cmocka_unit_test(test_digest_sees_a_skip),
	    cmocka_unit_test(test_digest_scope),
	    cmocka_unit_test(test_check_skipped_entry),
	    cmocka_unit_test(test_snapshot_keeps_config),
	    cmocka_unit_test(test_wall_not_a_clock),
	    cmocka_unit_test(test_alloc_failure_fails),
	    cmocka_unit_test(test_alloc_failure_entry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
