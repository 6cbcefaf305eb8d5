/* raftmq: command-line tool for queues, topics, publishing, consuming and
 * cluster status, built on libraftmq. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/raftmq.h"

static const char *servers_arg;
static int timeout_arg;

static const char usage_main[] =
    "usage: raftmq [-s HOST:PORT[,HOST:PORT...]] [--timeout MS] COMMAND "
    "...\n"
    "\n"
    "Servers default to $RAFTMQ_SERVERS, else "
    "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003.\n"
    "\n"
    "commands:\n"
    "  queue declare NAME [--ack-timeout MS] [--max-deliveries N] [--dlq Q]\n"
    "                [--ttl MS] [--delay MS] [--max-length N] [--max-bytes "
    "N]\n"
    "                [--overflow reject-publish|drop-head] [--dedup-window "
    "MS]\n"
    "                [--exclusive] [--auto-delete]\n"
    "  queue delete NAME [--if-empty]\n"
    "  queue purge NAME\n"
    "  queue list\n"
    "  queue stats NAME\n"
    "  topic declare NAME --kind fanout|direct|topic\n"
    "  topic delete NAME\n"
    "  topic bind TOPIC QUEUE [--key K]\n"
    "  topic unbind TOPIC QUEUE [--key K]\n"
    "  topic list\n"
    "  publish QUEUE [--topic T] [--key K] [--body TEXT] [--count N] [--type "
    "T]\n"
    "  consume QUEUE [--count N] [--timeout SECONDS] [--prefetch P] "
    "[--no-ack]\n"
    "  get QUEUE [--max N] [--no-ack]\n"
    "  cluster status [--json]\n"
    "  cluster config get | set KEY=VALUE...\n"
    "\n"
    "Run 'raftmq COMMAND --help' for details.\n";

static const char usage_publish[] =
    "usage: raftmq publish QUEUE [--topic T] [--key K] [--body TEXT]\n"
    "                     [--count N] [--type T] [--window N]\n"
    "\n"
    "Publishes to QUEUE (the default route), or, with --topic, to topic T\n"
    "with routing key K (QUEUE is then ignored; write \"-\"). With --body,\n"
    "sends TEXT N times (default once); otherwise sends one message per line\n"
    "of standard input (at most N lines with --count). Publishes are\n"
    "pipelined; prints \"confirmed N\" when every confirm has arrived.\n";

static const char usage_consume[] =
    "usage: raftmq consume QUEUE [--count N] [--timeout SECONDS]\n"
    "                     [--prefetch P] [--no-ack]\n"
    "\n"
    "Prints each message body on its own line and acks it after printing\n"
    "(unless --no-ack). Stops after N messages, or when no message arrived\n"
    "for SECONDS (default: wait forever). A summary goes to stderr.\n";

static const char usage_get[] =
    "usage: raftmq get QUEUE [--max N] [--no-ack]\n"
    "\n"
    "Pulls up to N ready messages (default 1), prints their bodies and acks\n"
    "them (unless --no-ack).\n";

static const char usage_queue[] =
    "usage: raftmq queue declare NAME [options] | delete NAME [--if-empty]\n"
    "                  | purge NAME | list | stats NAME\n"
    "\n"
    "declare options (0 or absent = server default):\n"
    "  --ack-timeout MS      redelivery after MS without an ack\n"
    "  --max-deliveries N    dead-letter after N deliveries (0 = "
    "unlimited)\n"
    "  --dlq QUEUE           dead-letter queue\n"
    "  --ttl MS              message time to live\n"
    "  --delay MS            every message waits MS before it is ready\n"
    "  --max-length N        messages\n"
    "  --max-bytes N         payload bytes\n"
    "  --overflow POLICY     reject-publish (default) or drop-head\n"
    "  --dedup-window MS     message id deduplication window\n"
    "  --exclusive           at most one consumer\n"
    "  --auto-delete         delete when the last consumer goes\n";

static const char usage_topic[] =
    "usage: raftmq topic declare NAME --kind fanout|direct|topic\n"
    "                  | delete NAME | bind TOPIC QUEUE [--key K]\n"
    "                  | unbind TOPIC QUEUE [--key K] | list\n"
    "\n"
    "Topic keys are '.'-separated words; '*' matches one word, '#' zero or\n"
    "more.\n";

static const char usage_cluster[] =
    "usage: raftmq cluster status [--json]\n"
    "       raftmq cluster config get\n"
    "       raftmq cluster config set KEY=VALUE...\n"
    "\n"
    "status asks every server of the list for its status and prints one row\n"
    "per cluster member: id, raft address, client address, role, term,\n"
    "commit and applied index, then the commands its replica applied and\n"
    "their digest (equal on every member at the same count), and "
    "\"diverged\"\n"
    "when that member found its replica different from the leader's; then\n"
    "which member leads. Exits 0 when at least one server answered.\n"
    "\n"
    "config get prints the cluster's replicated configuration, one \"key\n"
    "value\" line each; config set changes the given keys (all or nothing),\n"
    "e.g. raftmq cluster config set max_payload=1048576. A node's flags\n"
    "only seed it when the cluster starts (docs/operations.md).\n";

static int fail(const char *fmt, ...)
{
	va_list ap;

	fputs("raftmq: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

static int fail_rc(struct raftmq *c, const char *what, int rc)
{
	const char *msg = c ? raftmq_errmsg(c) : "";

	return fail("%s: %s%s%s", what, raftmq_strerror(rc), msg[0] ? ": " : "",
	            msg);
}

static int wants_help(int argc, char **argv)
{
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0)
			return 1;
	return 0;
}

/* Option parsing over argv[i...]: "--name VALUE" or "--name=VALUE". */
struct args {
	int argc;
	char **argv;
	int i;
	const char *pos[4]; /* positional arguments */
	int npos;
	int bad;
};

static int opt_is(struct args *a, const char *name, const char **val)
{
	const char *s = a->argv[a->i];
	size_t n = strlen(name);

	if (strncmp(s, name, n) != 0)
		return 0;
	if (s[n] == '=') {
		*val = s + n + 1;
		return 1;
	}
	if (s[n] != '\0')
		return 0;
	if (a->i + 1 >= a->argc) {
		fail("option %s needs a value", name);
		a->bad = 1;
		*val = "";
		return 1;
	}
	*val = a->argv[++a->i];
	return 1;
}

static int flag_is(struct args *a, const char *name)
{
	return strcmp(a->argv[a->i], name) == 0;
}

static int num(struct args *a, const char *name, const char *v, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(v, &end, 10);
	if (errno || end == v || *end || v[0] == '-') {
		fail("option %s: not a number: %s", name, v);
		a->bad = 1;
		return 0;
	}
	return 1;
}

static int positional(struct args *a)
{
	const char *s = a->argv[a->i];

	if (s[0] == '-' && s[1] == '-') {
		fail("unknown option %s", s);
		a->bad = 1;
		return 0;
	}
	if (a->npos == 4) {
		fail("too many arguments");
		a->bad = 1;
		return 0;
	}
	a->pos[a->npos++] = s;
	return 1;
}

static struct raftmq *open_client(const char *servers, int timeout)
{
	struct raftmq_options o;
	struct raftmq *c;

	raftmq_options_default(&o);
	o.servers = servers;
	o.client_name = "raftmq-cli";
	if (timeout > 0)
		o.timeout_ms = timeout;
	c = raftmq_new(&o);
	if (c == NULL)
		fail("bad server list (want HOST:PORT[,HOST:PORT...])");
	return c;
}

/* ---- queue -------------------------------------------------------- */

static void print_stats(const struct raftmq_queue_stats *s)
{
	printf("name: %s\nqueue_id: %u\nready: %" PRIu64 "\ndelayed: %" PRIu64
	       "\nin_flight: %" PRIu64 "\nbytes: %" PRIu64
	       "\nconsumers: %" PRIu64 "\npublished: %" PRIu64
	       "\nacked: %" PRIu64 "\ndead_lettered: %" PRIu64
	       "\nexpired: %" PRIu64 "\ndropped: %" PRIu64
	       "\ndeduplicated: %" PRIu64 "\nlast_seq: %" PRIu64 "\n",
	       s->name, s->queue_id, s->ready, s->delayed, s->in_flight,
	       s->bytes, s->consumers, s->published, s->acked, s->dead_lettered,
	       s->expired, s->dropped, s->deduplicated, s->last_seq);
	printf("ack_timeout: %" PRIu64 "\nmax_deliveries: %u\ndlq: %s\n"
	       "message_ttl: %" PRIu64 "\ndelay: %" PRIu64
	       "\nmax_length: %" PRIu64 "\nmax_bytes: %" PRIu64
	       "\noverflow: %s\ndedup_window: %" PRIu64
	       "\nexclusive: %s\nauto_delete: %s\n",
	       s->opts.ack_timeout, s->opts.max_deliveries, s->opts.dlq,
	       s->opts.message_ttl, s->opts.delay, s->opts.max_length,
	       s->opts.max_bytes,
	       s->opts.overflow ? "drop-head" : "reject-publish",
	       s->opts.dedup_window, s->opts.exclusive ? "yes" : "no",
	       s->opts.auto_delete ? "yes" : "no");
}

static void list_row(void *arg, const struct raftmq_queue_stats *s)
{
	int *n = arg;

	if ((*n)++ == 0)
		printf("%-32s %8s %10s %10s %9s %10s %10s\n", "NAME", "ID",
		       "READY", "IN_FLIGHT", "CONSUMERS", "PUBLISHED", "ACKED");
	printf("%-32s %8u %10" PRIu64 " %10" PRIu64 " %9" PRIu64 " %10" PRIu64
	       " %10" PRIu64 "\n",
	       s->name, s->queue_id, s->ready, s->in_flight, s->consumers,
	       s->published, s->acked);
}

static int cmd_queue(int argc, char **argv)
{
	struct args a = {argc, argv, 1, {0}, 0, 0};
	struct raftmq_queue_opts o;
	const char *sub, *v;
	int if_empty = 0, rc = 0;
	struct raftmq *c;
	uint64_t n;

	if (argc < 1 || wants_help(argc, argv)) {
		fputs(usage_queue, argc < 1 ? stderr : stdout);
		return argc < 1 ? 2 : 0;
	}
	memset(&o, 0, sizeof(o));
	sub = argv[0];
	for (; a.i < argc && !a.bad; a.i++) {
		if (opt_is(&a, "--ack-timeout", &v)) {
			if (num(&a, "--ack-timeout", v, &n))
				o.ack_timeout = n;
		} else if (opt_is(&a, "--max-deliveries", &v)) {
			if (num(&a, "--max-deliveries", v, &n))
				o.max_deliveries = (uint32_t)n;
		} else if (opt_is(&a, "--dlq", &v)) {
			o.dlq = v;
		} else if (opt_is(&a, "--ttl", &v)) {
			if (num(&a, "--ttl", v, &n))
				o.message_ttl = n;
		} else if (opt_is(&a, "--delay", &v)) {
			if (num(&a, "--delay", v, &n))
				o.delay = n;
		} else if (opt_is(&a, "--max-length", &v)) {
			if (num(&a, "--max-length", v, &n))
				o.max_length = n;
		} else if (opt_is(&a, "--max-bytes", &v)) {
			if (num(&a, "--max-bytes", v, &n))
				o.max_bytes = n;
		} else if (opt_is(&a, "--overflow", &v)) {
			if (strcmp(v, "reject-publish") == 0)
				o.overflow = RAFTMQ_OVERFLOW_REJECT;
			else if (strcmp(v, "drop-head") == 0)
				o.overflow = RAFTMQ_OVERFLOW_DROP_HEAD;
			else
				a.bad = fail("bad --overflow: %s", v);
		} else if (opt_is(&a, "--dedup-window", &v)) {
			if (num(&a, "--dedup-window", v, &n))
				o.dedup_window = n;
		} else if (flag_is(&a, "--exclusive")) {
			o.exclusive = 1;
		} else if (flag_is(&a, "--auto-delete")) {
			o.auto_delete = 1;
		} else if (flag_is(&a, "--if-empty")) {
			if_empty = 1;
		} else {
			positional(&a);
		}
	}
	if (a.bad)
		return 2;
	if (strcmp(sub, "list") != 0 && a.npos != 1)
		return fail("queue %s: expected one queue NAME", sub) + 1;
	c = open_client(servers_arg, timeout_arg);
	if (c == NULL)
		return 2;
	if (strcmp(sub, "declare") == 0) {
		uint32_t id = 0;
		int created = 0;

		rc = raftmq_queue_declare(c, a.pos[0], &o, &id, &created);
		if (rc == 0)
			printf("queue %s %s (id %u)\n", a.pos[0],
			       created ? "declared" : "already exists", id);
	} else if (strcmp(sub, "delete") == 0) {
		rc = raftmq_queue_delete(c, a.pos[0], if_empty, &n);
		if (rc == 0)
			printf("queue %s deleted (%" PRIu64
			       " messages removed)\n",
			       a.pos[0], n);
	} else if (strcmp(sub, "purge") == 0) {
		rc = raftmq_queue_purge(c, a.pos[0], &n);
		if (rc == 0)
			printf("queue %s purged (%" PRIu64
			       " messages removed)\n",
			       a.pos[0], n);
	} else if (strcmp(sub, "stats") == 0) {
		struct raftmq_queue_stats s;

		rc = raftmq_queue_stats(c, a.pos[0], &s);
		if (rc == 0)
			print_stats(&s);
	} else if (strcmp(sub, "list") == 0) {
		int rows = 0;

		rc = raftmq_queue_list(c, list_row, &rows);
		if (rc == 0 && rows == 0)
			printf("no queues\n");
	} else {
		raftmq_close(c);
		return fail("unknown queue command: %s", sub) + 1;
	}
	if (rc)
		rc = fail_rc(c, sub, rc);
	raftmq_close(c);
	return rc;
}

/* ---- topic -------------------------------------------------------- */

static void topic_row(void *arg, const char *name, int kind,
                      const struct raftmq_binding *b, uint32_t n)
{
	static const char *const kinds[] = {"fanout", "direct", "topic"};
	int *rows = arg;

	(*rows)++;
	printf("%s (%s)\n", name, kind >= 0 && kind < 3 ? kinds[kind] : "?");
	for (uint32_t i = 0; i < n; i++)
		printf("  -> %s key \"%s\"\n", b[i].queue, b[i].key);
}

static int cmd_topic(int argc, char **argv)
{
	struct args a = {argc, argv, 1, {0}, 0, 0};
	const char *sub, *v, *kind = NULL, *key = "";
	struct raftmq *c;
	int rc = 0, need;

	if (argc < 1 || wants_help(argc, argv)) {
		fputs(usage_topic, argc < 1 ? stderr : stdout);
		return argc < 1 ? 2 : 0;
	}
	sub = argv[0];
	for (; a.i < argc && !a.bad; a.i++) {
		if (opt_is(&a, "--kind", &v))
			kind = v;
		else if (opt_is(&a, "--key", &v))
			key = v;
		else
			positional(&a);
	}
	if (a.bad)
		return 2;
	need = strcmp(sub, "list") == 0                                 ? 0
	       : strcmp(sub, "bind") == 0 || strcmp(sub, "unbind") == 0 ? 2
	                                                                : 1;
	if (a.npos != need)
		return fail("topic %s: expected %d argument(s)", sub, need) + 1;
	if (strcmp(sub, "declare") == 0 && kind == NULL)
		return fail(
		           "topic declare: --kind fanout|direct|topic needed") +
		       1;
	c = open_client(servers_arg, timeout_arg);
	if (c == NULL)
		return 2;
	if (strcmp(sub, "declare") == 0) {
		int k = strcmp(kind, "fanout") == 0   ? RAFTMQ_FANOUT
		        : strcmp(kind, "direct") == 0 ? RAFTMQ_DIRECT
		        : strcmp(kind, "topic") == 0  ? RAFTMQ_TOPIC
		                                      : -1;

		if (k < 0) {
			raftmq_close(c);
			return fail("bad --kind: %s", kind) + 1;
		}
		rc = raftmq_topic_declare(c, a.pos[0], k);
		if (rc == 0)
			printf("topic %s declared\n", a.pos[0]);
	} else if (strcmp(sub, "delete") == 0) {
		rc = raftmq_topic_delete(c, a.pos[0]);
		if (rc == 0)
			printf("topic %s deleted\n", a.pos[0]);
	} else if (strcmp(sub, "bind") == 0) {
		rc = raftmq_bind(c, a.pos[0], a.pos[1], key);
		if (rc == 0)
			printf("bound %s -> %s\n", a.pos[0], a.pos[1]);
	} else if (strcmp(sub, "unbind") == 0) {
		rc = raftmq_unbind(c, a.pos[0], a.pos[1], key);
		if (rc == 0)
			printf("unbound %s -> %s\n", a.pos[0], a.pos[1]);
	} else if (strcmp(sub, "list") == 0) {
		int rows = 0;

		rc = raftmq_topic_list(c, topic_row, &rows);
		if (rc == 0 && rows == 0)
			printf("no topics\n");
	} else {
		raftmq_close(c);
		return fail("unknown topic command: %s", sub) + 1;
	}
	if (rc)
		rc = fail_rc(c, sub, rc);
	raftmq_close(c);
	return rc;
}

/* ---- publish ------------------------------------------------------ */

struct pub_state {
	uint64_t confirmed;
	uint64_t failed;
	int first_error;
};

static void on_confirm(void *arg, int status, const struct raftmq_confirm *cf)
{
	struct pub_state *p = arg;

	(void)cf;
	if (status == 0) {
		p->confirmed++;
	} else {
		p->failed++;
		if (p->first_error == 0)
			p->first_error = status;
	}
}

static int cmd_publish(int argc, char **argv)
{
	struct args a = {argc, argv, 0, {0}, 0, 0};
	const char *v, *topic = NULL, *key = NULL, *body = NULL, *type = NULL;
	uint64_t count = 0, window = 0, n;
	int have_count = 0, rc = 0;
	struct pub_state st = {0, 0, 0};
	struct raftmq_options o;
	struct raftmq_message m;
	struct raftmq *c;
	char *line = NULL;
	size_t cap = 0;

	if (wants_help(argc, argv)) {
		fputs(usage_publish, stdout);
		return 0;
	}
	for (; a.i < argc && !a.bad; a.i++) {
		if (opt_is(&a, "--topic", &v)) {
			topic = v;
		} else if (opt_is(&a, "--key", &v)) {
			key = v;
		} else if (opt_is(&a, "--body", &v)) {
			body = v;
		} else if (opt_is(&a, "--type", &v)) {
			type = v;
		} else if (opt_is(&a, "--count", &v)) {
			if (num(&a, "--count", v, &count))
				have_count = 1;
		} else if (opt_is(&a, "--window", &v)) {
			num(&a, "--window", v, &window);
		} else {
			positional(&a);
		}
	}
	if (a.bad)
		return 2;
	if (a.npos != 1) {
		fputs(usage_publish, stderr);
		return 2;
	}
	if (topic == NULL && key != NULL)
		return fail("publish: --key needs --topic (QUEUE is the key "
		            "of the default route)") +
		       1;
	raftmq_options_default(&o);
	o.servers = servers_arg;
	o.client_name = "raftmq-cli";
	if (timeout_arg > 0)
		o.timeout_ms = timeout_arg;
	if (window)
		o.window = (unsigned)window;
	c = raftmq_new(&o);
	if (c == NULL)
		return fail("bad server list") + 1;
	memset(&m, 0, sizeof(m));
	m.topic = topic;
	m.key = topic ? (key ? key : "") : a.pos[0];
	m.type = type;
	if (body != NULL) {
		if (!have_count)
			count = 1;
		m.payload = body;
		m.payload_len = strlen(body);
		for (n = 0; n < count && rc == 0; n++)
			rc = raftmq_publish_async(c, &m, on_confirm, &st);
	} else {
		ssize_t len;

		for (n = 0; (!have_count || n < count) && rc == 0; n++) {
			len = getline(&line, &cap, stdin);
			if (len < 0)
				break;
			if (len > 0 && line[len - 1] == '\n')
				line[--len] = '\0';
			m.payload = line;
			m.payload_len = (size_t)len;
			/* The library copies the message. */
			rc = raftmq_publish_async(c, &m, on_confirm, &st);
		}
		free(line);
	}
	if (rc) {
		fail_rc(c, "publish", rc);
		raftmq_wait_confirms(c, -1);
	} else {
		rc = raftmq_wait_confirms(c, -1);
		if (rc)
			fail_rc(c, "publish", rc);
	}
	printf("confirmed %" PRIu64 "\n", st.confirmed);
	fflush(stdout);
	if (st.failed)
		fprintf(stderr, "raftmq: %" PRIu64 " publishes failed (%s)\n",
		        st.failed, raftmq_strerror(st.first_error));
	raftmq_close(c);
	return rc || st.failed ? 1 : 0;
}

/* ---- consume / get ------------------------------------------------ */

static int print_body(const struct raftmq_delivery *d)
{
	if (fwrite(d->payload, 1, d->payload_len, stdout) != d->payload_len ||
	    fputc('\n', stdout) == EOF || fflush(stdout) == EOF)
		return fail("stdout: %s", strerror(errno));
	return 0;
}

static int cmd_consume(int argc, char **argv)
{
	struct args a = {argc, argv, 0, {0}, 0, 0};
	const char *v;
	uint64_t count = 0, tmo = 0, prefetch = 0;
	int have_count = 0, have_tmo = 0, no_ack = 0, rc;
	uint64_t got = 0;
	struct raftmq *c;

	if (wants_help(argc, argv)) {
		fputs(usage_consume, stdout);
		return 0;
	}
	for (; a.i < argc && !a.bad; a.i++) {
		if (opt_is(&a, "--count", &v))
			have_count = num(&a, "--count", v, &count);
		else if (opt_is(&a, "--timeout", &v))
			have_tmo = num(&a, "--timeout", v, &tmo);
		else if (opt_is(&a, "--prefetch", &v))
			num(&a, "--prefetch", v, &prefetch);
		else if (flag_is(&a, "--no-ack"))
			no_ack = 1;
		else
			positional(&a);
	}
	if (a.bad)
		return 2;
	if (a.npos != 1) {
		fputs(usage_consume, stderr);
		return 2;
	}
	if (prefetch == 0)
		prefetch =
		    have_count && count < 100 ? (count ? count : 1) : 100;
	c = open_client(servers_arg, timeout_arg);
	if (c == NULL)
		return 2;
	rc = raftmq_consume(c, a.pos[0], (uint32_t)prefetch, NULL);
	if (rc) {
		rc = fail_rc(c, "consume", rc);
		raftmq_close(c);
		return rc;
	}
	while (!have_count || got < count) {
		struct raftmq_delivery *d;

		rc = raftmq_next_delivery(c, have_tmo ? (int)(tmo * 1000) : -1,
		                          &d);
		if (rc == RAFTMQ_ETIMEOUT) {
			rc = 0;
			break;
		}
		if (rc) {
			fail_rc(c, "consume", rc);
			break;
		}
		if (print_body(d)) {
			raftmq_delivery_free(d);
			rc = 1;
			break;
		}
		if (!no_ack) {
			/* Pipelined: the next delivery need not wait for
			 * this ack's commit. */
			rc = raftmq_ack_async(c, d->queue_id, d->seq);
			if (rc) {
				fail_rc(c, "ack", rc);
				raftmq_delivery_free(d);
				break;
			}
		}
		raftmq_delivery_free(d);
		got++;
	}
	if (rc == 0 && !no_ack) {
		rc = raftmq_wait_acks(c, -1);
		if (rc)
			fail_rc(c, "ack", rc);
	}
	fprintf(stderr, "raftmq: consumed %" PRIu64 " message%s from %s\n", got,
	        got == 1 ? "" : "s", a.pos[0]);
	raftmq_close(c);
	return rc ? 1 : 0;
}

static int cmd_get(int argc, char **argv)
{
	struct args a = {argc, argv, 0, {0}, 0, 0};
	const char *v;
	uint64_t max = 1;
	uint32_t count = 0;
	int no_ack = 0, rc;
	struct raftmq *c;
	struct raftmq_delivery *d;

	if (wants_help(argc, argv)) {
		fputs(usage_get, stdout);
		return 0;
	}
	for (; a.i < argc && !a.bad; a.i++) {
		if (opt_is(&a, "--max", &v))
			num(&a, "--max", v, &max);
		else if (flag_is(&a, "--no-ack"))
			no_ack = 1;
		else
			positional(&a);
	}
	if (a.bad || a.npos != 1 || max == 0) {
		fputs(usage_get, stderr);
		return 2;
	}
	c = open_client(servers_arg, timeout_arg);
	if (c == NULL)
		return 2;
	rc = raftmq_get(c, a.pos[0], (uint32_t)max, 0, &count);
	if (rc)
		rc = fail_rc(c, "get", rc);
	while (rc == 0 && raftmq_next_delivery(c, 0, &d) == 0) {
		rc = print_body(d);
		if (rc == 0 && !no_ack) {
			rc = raftmq_ack(c, d->queue_id, d->seq);
			if (rc)
				rc = fail_rc(c, "ack", rc);
		}
		raftmq_delivery_free(d);
	}
	fprintf(stderr, "raftmq: got %u message%s from %s\n", count,
	        count == 1 ? "" : "s", a.pos[0]);
	raftmq_close(c);
	return rc ? 1 : 0;
}

/* ---- cluster status ----------------------------------------------- */

struct node_view {
	char server[280];
	int ok;
	struct raftmq_node_status st;
	char err[200];
};

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static int cmd_cluster_config(int argc, char **argv)
{
	struct raftmq_config_kv kv[RAFTMQ_MAX_CONFIG];
	struct raftmq *c;
	uint32_t n = 0;
	int rc, set;

	if (argc < 1 ||
	    (strcmp(argv[0], "get") != 0 && strcmp(argv[0], "set") != 0)) {
		fputs(usage_cluster, stderr);
		return 2;
	}
	set = strcmp(argv[0], "set") == 0;
	if (!set && argc > 1)
		return fail("cluster config get: unknown argument %s",
		            argv[1]) +
		       1;
	if (set && argc < 2)
		return fail("cluster config set: KEY=VALUE expected") + 1;
	for (int i = 1; set && i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		char *end;

		if (n == RAFTMQ_MAX_CONFIG)
			return fail("cluster config set: too many keys") + 1;
		if (eq == NULL || eq == argv[i] ||
		    (size_t)(eq - argv[i]) >= sizeof(kv[n].key))
			return fail("cluster config set: '%s' is not "
			            "KEY=VALUE",
			            argv[i]) +
			       1;
		memcpy(kv[n].key, argv[i], (size_t)(eq - argv[i]));
		kv[n].key[eq - argv[i]] = '\0';
		errno = 0;
		kv[n].value = strtoull(eq + 1, &end, 10);
		if (errno != 0 || end == eq + 1 || *end != '\0' || eq[1] == '-')
			return fail("cluster config set: '%s' is not a "
			            "number",
			            eq + 1) +
			       1;
		n++;
	}
	c = open_client(servers_arg, timeout_arg);
	if (c == NULL)
		return 1;
	if (set) {
		rc = raftmq_config_set(c, kv, n);
		if (rc)
			rc = fail_rc(c, "cluster config set", rc);
		else
			printf("ok\n");
	} else {
		rc = raftmq_config_get(c, kv, RAFTMQ_MAX_CONFIG, &n);
		if (rc)
			rc = fail_rc(c, "cluster config get", rc);
		for (uint32_t i = 0; rc == 0 && i < n; i++)
			printf("%s %" PRIu64 "\n", kv[i].key, kv[i].value);
	}
	raftmq_close(c);
	return rc ? 1 : 0;
}

static int cmd_cluster(int argc, char **argv)
{
	const char *list = servers_arg ? servers_arg : getenv("RAFTMQ_SERVERS");
	struct node_view *v = NULL;
	struct raftmq_member members[RAFTMQ_MAX_MEMBERS * 2];
	unsigned nv = 0, nm = 0, reachable = 0;
	uint64_t leader = 0, leader_term = 0;
	int json = 0;
	char *copy, *tok, *save = NULL;

	if (wants_help(argc, argv)) {
		fputs(usage_cluster, stdout);
		return 0;
	}
	if (argc >= 1 && strcmp(argv[0], "config") == 0)
		return cmd_cluster_config(argc - 1, argv + 1);
	if (argc < 1 || strcmp(argv[0], "status") != 0) {
		fputs(usage_cluster, stderr);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else
			return fail("cluster status: unknown argument %s",
			            argv[i]) +
			       1;
	}
	if (list == NULL || list[0] == '\0')
		list = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003";
	copy = strdup(list);
	if (copy == NULL)
		return fail("out of memory");
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		struct node_view *grown = realloc(v, (nv + 1) * sizeof(*v));
		struct raftmq_options o;
		struct raftmq *c;
		int rc;

		if (grown == NULL)
			break;
		v = grown;
		memset(&v[nv], 0, sizeof(v[nv]));
		snprintf(v[nv].server, sizeof(v[nv].server), "%s", tok);
		raftmq_options_default(&o);
		o.servers = tok;
		o.client_name = "raftmq-cli";
		o.timeout_ms = timeout_arg > 0 ? timeout_arg : 3000;
		o.connect_timeout_ms = 1000;
		c = raftmq_new(&o);
		if (c == NULL) {
			snprintf(v[nv].err, sizeof(v[nv].err), "bad address");
		} else {
			/* One server, one attempt round: connect, then ask. */
			rc = raftmq_connect(c);
			if (rc == 0)
				rc = raftmq_status(c, &v[nv].st);
			if (rc == 0) {
				v[nv].ok = 1;
				reachable++;
			} else {
				snprintf(v[nv].err, sizeof(v[nv].err), "%s",
				         raftmq_errmsg(c));
			}
			raftmq_close(c);
		}
		nv++;
	}
	free(copy);

	/* Members: the union of every answer's member list. The leader is
	 * the one a node with the highest term names. */
	for (unsigned i = 0; i < nv; i++) {
		if (!v[i].ok)
			continue;
		if (v[i].st.leader_id && v[i].st.term >= leader_term) {
			leader = v[i].st.leader_id;
			leader_term = v[i].st.term;
		}
		for (unsigned j = 0; j < v[i].st.n_members; j++) {
			unsigned k;

			for (k = 0; k < nm; k++)
				if (members[k].id == v[i].st.members[j].id)
					break;
			if (k == nm &&
			    nm < sizeof(members) / sizeof(members[0]))
				members[nm++] = v[i].st.members[j];
		}
	}
	/* Servers of the list that no answer names (unreachable ones). */
	for (unsigned i = 0; i < nv; i++) {
		unsigned k;

		if (v[i].ok)
			continue;
		for (k = 0; k < nm; k++)
			if (strcmp(members[k].client_address, v[i].server) == 0)
				break;
		if (k == nm && nm < sizeof(members) / sizeof(members[0])) {
			memset(&members[nm], 0, sizeof(members[nm]));
			snprintf(members[nm].client_address,
			         sizeof(members[nm].client_address), "%s",
			         v[i].server);
			nm++;
		}
	}

	if (!json)
		printf("%-4s %-22s %-22s %-12s %6s %10s %10s\n", "ID", "RAFT",
		       "CLIENT", "ROLE", "TERM", "COMMIT", "APPLIED");
	else
		printf("{\"leader\": %" PRIu64 ", \"reachable\": %u, "
		       "\"nodes\": [",
		       leader, reachable);
	for (unsigned k = 0; k < nm; k++) {
		const struct node_view *nvw = NULL;
		const char *role = "unreachable";

		for (unsigned i = 0; i < nv; i++) {
			if (v[i].ok && members[k].id &&
			    v[i].st.node_id == members[k].id)
				nvw = &v[i];
		}
		if (nvw)
			role = nvw->st.role;
		if (json) {
			printf("%s\n  {\"id\": %" PRIu64 ", \"raft_address\": ",
			       k ? "," : "", members[k].id);
			json_str(members[k].raft_address);
			printf(", \"client_address\": ");
			json_str(members[k].client_address);
			printf(", \"role\": ");
			json_str(role);
			if (nvw)
				printf(", \"term\": %" PRIu64
				       ", \"commit_index\": %" PRIu64
				       ", \"applied_index\": %" PRIu64
				       ", \"last_index\": %" PRIu64
				       ", \"leader_id\": %" PRIu64
				       ", \"applied\": %" PRIu64
				       ", \"digest\": \"%016" PRIx64 "\""
				       ", \"diverged\": %s",
				       nvw->st.term, nvw->st.commit_index,
				       nvw->st.applied_index,
				       nvw->st.last_index, nvw->st.leader_id,
				       nvw->st.applied, nvw->st.digest,
				       nvw->st.diverged ? "true" : "false");
			printf("}");
		} else if (nvw) {
			printf("%-4" PRIu64 " %-22s %-22s %-12s %6" PRIu64
			       " %10" PRIu64 " %10" PRIu64 "  applied %" PRIu64
			       " digest %016" PRIx64 "%s%s\n",
			       members[k].id, members[k].raft_address,
			       members[k].client_address, role, nvw->st.term,
			       nvw->st.commit_index, nvw->st.applied_index,
			       nvw->st.applied, nvw->st.digest,
			       nvw->st.diverged ? " diverged" : "",
			       members[k].id == leader ? "  *" : "");
		} else {
			char id[24];

			snprintf(id, sizeof(id), "%" PRIu64, members[k].id);
			printf("%-4s %-22s %-22s %-12s %6s %10s %10s\n",
			       members[k].id ? id : "?",
			       members[k].raft_address[0]
			           ? members[k].raft_address
			           : "-",
			       members[k].client_address, role, "-", "-", "-");
		}
	}
	if (json) {
		printf("\n]}\n");
	} else {
		if (leader) {
			const char *addr = "";

			for (unsigned k = 0; k < nm; k++)
				if (members[k].id == leader)
					addr = members[k].client_address;
			printf("leader: %" PRIu64 " (%s), term %" PRIu64 "\n",
			       leader, addr, leader_term);
		} else {
			printf("leader: none\n");
		}
	}
	for (unsigned i = 0; i < nv; i++)
		if (!v[i].ok)
			fprintf(stderr, "raftmq: %s\n", v[i].err);
	free(v);
	return reachable ? 0 : 1;
}

int main(int argc, char **argv)
{
	int i = 1;

	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "-s") == 0 ||
		    strcmp(argv[i], "--servers") == 0) {
			if (i + 1 >= argc)
				return fail("-s needs HOST:PORT[,...]") + 1;
			servers_arg = argv[i + 1];
			i += 2;
		} else if (strncmp(argv[i], "--servers=", 10) == 0) {
			servers_arg = argv[i] + 10;
			i++;
		} else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
			timeout_arg = atoi(argv[i + 1]);
			i += 2;
		} else if (strcmp(argv[i], "--help") == 0 ||
		           strcmp(argv[i], "-h") == 0) {
			fputs(usage_main, stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("raftmq %s\n", RAFTMQ_VERSION);
			return 0;
		} else {
			fail("unknown option %s", argv[i]);
			fputs(usage_main, stderr);
			return 2;
		}
	}
	if (i >= argc) {
		fputs(usage_main, stderr);
		return 2;
	}
	if (strcmp(argv[i], "queue") == 0)
		return cmd_queue(argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "topic") == 0)
		return cmd_topic(argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "publish") == 0)
		return cmd_publish(argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "consume") == 0)
		return cmd_consume(argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "get") == 0)
		return cmd_get(argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "cluster") == 0)
		return cmd_cluster(argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "help") == 0) {
		fputs(usage_main, stdout);
		return 0;
	}
	fail("unknown command: %s", argv[i]);
	fputs(usage_main, stderr);
	return 2;
}
