/* test_fsm_topic: topic declare/delete, bindings, pattern matching, routing
 * and atomic multi-queue publish. */
#include "test_fsm_util.h"
#include "fsm/fsm_int.h"

static int topic_cmd(struct fsm *f, uint8_t type, const char *name,
                     uint8_t kind, struct rec *r)
{
	struct fsm_cmd c = cmd_of(type);

	c.u.topic.name = name;
	c.u.topic.name_len = (uint32_t)strlen(name);
	c.u.topic.kind = kind;
	return apply(f, &c, r);
}

static int bind_cmd(struct fsm *f, uint8_t type, const char *topic,
                    const char *queue, const char *key, struct rec *r)
{
	struct fsm_cmd c = cmd_of(type);

	c.u.bind.topic = topic;
	c.u.bind.topic_len = (uint32_t)strlen(topic);
	c.u.bind.queue = queue;
	c.u.bind.queue_len = (uint32_t)strlen(queue);
	c.u.bind.key = key;
	c.u.bind.key_len = (uint32_t)strlen(key);
	return apply(f, &c, r);
}

static int match(const char *p, const char *k)
{
	return fsm_topic_match(p, (uint32_t)strlen(p), k, (uint32_t)strlen(k));
}

static void test_match(void **state)
{
	(void)state;
	assert_true(match("a.b.c", "a.b.c"));
	assert_false(match("a.b.c", "a.b"));
	assert_true(match("a.*.c", "a.x.c"));
	assert_false(match("a.*.c", "a.c"));
	assert_false(match("a.*.c", "a.x.y.c"));
	assert_true(match("a.#", "a"));
	assert_true(match("a.#", "a.b.c"));
	assert_true(match("#", ""));
	assert_true(match("#", "x.y"));
	assert_true(match("#.c", "c"));
	assert_true(match("#.c", "a.b.c"));
	assert_false(match("#.c", "a.b.d"));
	assert_true(match("a.#.c.#.e", "a.x.c.y.z.e"));
	assert_true(match("a.#.c", "a.c.c.c"));
	assert_true(match("*.#", "a"));
	assert_false(match("*.#", ""));
	assert_true(match("*", "abc"));
	assert_false(match("*", "a.b"));
	assert_false(match("ab", "a"));
	assert_true(match("#.#", "a.b"));
}

static void test_routing(void **state)
{
	struct fsm *f = fsm_new(NULL);
	struct rec *r = rec_new();
	struct fsm_queue_opts o = {0};

	(void)state;
	assert_int_equal(
	    topic_cmd(f, FSM_CMD_TOPIC_DECLARE, "fan", FSM_TOPIC_FANOUT, r),
	    FSM_OK);
	assert_int_equal(last_res(r)->u.declare.created, 1);
	assert_int_equal(
	    topic_cmd(f, FSM_CMD_TOPIC_DECLARE, "fan", FSM_TOPIC_FANOUT, r),
	    FSM_OK);
	assert_int_equal(last_res(r)->u.declare.created, 0);
	assert_int_equal(
	    topic_cmd(f, FSM_CMD_TOPIC_DECLARE, "fan", FSM_TOPIC_DIRECT, r),
	    FSM_EEXISTS);
	assert_int_equal(topic_cmd(f, FSM_CMD_TOPIC_DECLARE, "bad", 3, r),
	                 FSM_EINVAL);
	assert_int_equal(
	    topic_cmd(f, FSM_CMD_TOPIC_DECLARE, "dir", FSM_TOPIC_DIRECT, r),
	    FSM_OK);
	assert_int_equal(
	    topic_cmd(f, FSM_CMD_TOPIC_DECLARE, "top", FSM_TOPIC_TOPIC, r),
	    FSM_OK);
	/* Empty topic: OK, nothing reached. */
	assert_int_equal(publish_full(f, "fan", "k", "", "x", 0, 0, r), FSM_OK);
	assert_int_equal(last_res(r)->u.publish.queues, 0);
	assert_int_equal(publish_full(f, "nope", "k", "", "x", 0, 0, r),
	                 FSM_ENOTOPIC);
	assert_int_equal(declare(f, "zq", NULL, r), FSM_OK);
	assert_int_equal(declare(f, "aq", NULL, r), FSM_OK);
	o.max_length = 1;
	assert_int_equal(declare(f, "small", &o, r), FSM_OK);
	assert_int_equal(bind_cmd(f, FSM_CMD_BIND, "nope", "aq", "", r),
	                 FSM_ENOTOPIC);
	assert_int_equal(bind_cmd(f, FSM_CMD_BIND, "fan", "nope", "", r),
	                 FSM_ENOQUEUE);
	assert_int_equal(bind_cmd(f, FSM_CMD_BIND, "", "aq", "", r),
	                 FSM_EINVAL);
	assert_int_equal(bind_cmd(f, FSM_CMD_BIND, "fan", "zq", "", r), FSM_OK);
	assert_int_equal(bind_cmd(f, FSM_CMD_BIND, "fan", "aq", "1", r),
	                 FSM_OK);
	assert_int_equal(bind_cmd(f, FSM_CMD_BIND, "fan", "aq", "2", r),
	                 FSM_OK);
	/* Fanout: each queue once; seq of the first queue in name order. */
	assert_int_equal(publish(f, "zq", "", "pre", r), FSM_OK);
	assert_int_equal(publish_full(f, "fan", "k", "", "x", 0, 0, r), FSM_OK);
	assert_int_equal(last_res(r)->u.publish.queues, 2);
	assert_int_equal(last_res(r)->u.publish.seq, 1); /* aq's seq */
	assert_int_equal(qstats(f, "aq").ready, 1);
	assert_int_equal(qstats(f, "zq").ready, 2);
	/* Direct. */
	assert_int_equal(bind_cmd(f, FSM_CMD_BIND, "dir", "aq", "red", r),
	                 FSM_OK);
	assert_int_equal(bind_cmd(f, FSM_CMD_BIND, "dir", "zq", "blue", r),
	                 FSM_OK);
	assert_int_equal(publish_full(f, "dir", "blue", "", "x", 0, 0, r),
	                 FSM_OK);
	assert_int_equal(last_res(r)->u.publish.queues, 1);
	assert_int_equal(last_res(r)->u.publish.seq, 3);
	assert_int_equal(publish_full(f, "dir", "green", "", "x", 0, 0, r),
	                 FSM_OK);
	assert_int_equal(last_res(r)->u.publish.queues, 0);
	/* Topic patterns, and atomicity: "small" is full after one. */
	assert_int_equal(bind_cmd(f, FSM_CMD_BIND, "top", "aq", "a.#", r),
	                 FSM_OK);
	assert_int_equal(bind_cmd(f, FSM_CMD_BIND, "top", "small", "*.b", r),
	                 FSM_OK);
	assert_int_equal(publish_full(f, "top", "a.b", "", "x", 0, 0, r),
	                 FSM_OK);
	assert_int_equal(last_res(r)->u.publish.queues, 2);
	assert_int_equal(publish_full(f, "top", "a.b", "", "x", 0, 0, r),
	                 FSM_EFULL);
	assert_int_equal(qstats(f, "aq").ready, 2);
	assert_int_equal(qstats(f, "small").ready, 1);
	assert_int_equal(publish_full(f, "top", "a.c", "", "x", 0, 0, r),
	                 FSM_OK);
	assert_int_equal(qstats(f, "aq").ready, 3);
	/* Unbind, and queue delete removes bindings. */
	assert_int_equal(bind_cmd(f, FSM_CMD_UNBIND, "top", "aq", "a.#", r),
	                 FSM_OK);
	assert_int_equal(publish_full(f, "top", "a.c", "", "x", 0, 0, r),
	                 FSM_OK);
	assert_int_equal(last_res(r)->u.publish.queues, 0);
	{
		struct fsm_cmd c = cmd_of(FSM_CMD_QUEUE_DELETE);

		c.u.qdelete.name = "zq";
		c.u.qdelete.name_len = 2;
		assert_int_equal(apply(f, &c, r), FSM_OK);
	}
	assert_int_equal(publish_full(f, "fan", "k", "", "x", 0, 0, r), FSM_OK);
	assert_int_equal(last_res(r)->u.publish.queues, 1);
	assert_int_equal(topic_cmd(f, FSM_CMD_TOPIC_DELETE, "fan", 0, r),
	                 FSM_OK);
	assert_int_equal(topic_cmd(f, FSM_CMD_TOPIC_DELETE, "fan", 0, r),
	                 FSM_ENOTOPIC);
	fsm_free(f);
	free(r);
}

static void foreach_cb(void *data, const char *name, uint32_t len, uint8_t kind,
                       const struct fsm_binding_view *b, uint32_t n)
{
	char *out = data;

	(void)kind;
	strncat(out, name, len);
	strcat(out, ":");
	for (uint32_t i = 0; i < n; i++) {
		strncat(out, b[i].queue, b[i].queue_len);
		strcat(out, "/");
		strncat(out, b[i].key, b[i].key_len);
		strcat(out, ",");
	}
	strcat(out, ";");
}

static void test_foreach(void **state)
{
	struct fsm *f = fsm_new(NULL);
	char out[256] = "";

	(void)state;
	assert_int_equal(topic_cmd(f, FSM_CMD_TOPIC_DECLARE, "t2", 0, NULL),
	                 FSM_OK);
	assert_int_equal(topic_cmd(f, FSM_CMD_TOPIC_DECLARE, "t1", 2, NULL),
	                 FSM_OK);
	assert_int_equal(declare(f, "q", NULL, NULL), FSM_OK);
	assert_int_equal(bind_cmd(f, FSM_CMD_BIND, "t1", "q", "x.*", NULL),
	                 FSM_OK);
	assert_int_equal(bind_cmd(f, FSM_CMD_BIND, "t1", "q", "x.*", NULL),
	                 FSM_OK);
	fsm_topic_foreach(f, foreach_cb, out);
	assert_string_equal(out, "t1:q/x.*,;t2:;");
	fsm_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_match),
	    cmocka_unit_test(test_routing),
	    cmocka_unit_test(test_foreach),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
