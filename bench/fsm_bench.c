/* fsm-bench: applied commands per second and memory per queued message. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fsm/codec.h"
#include "fsm/fsm.h"

#define TARGET_CMDS_PER_SEC 2000000.0
#define TARGET_OVERHEAD     64.0
#define QUEUE_NAME          "bench"

/* One encoded entry, copied out of the batch. */
struct entry {
	void *buf;
	size_t len;
};

struct entries {
	struct entry *e;
	size_t n;
};

/* Counts results and deliveries, remembers the declare's queue id. */
struct tally {
	uint64_t results;
	uint64_t deliveries;
	uint64_t errors;
	int first_error;
	uint32_t queue_id;
};

static void on_result(void *data, const struct fsm_result *r)
{
	struct tally *t = data;

	t->results++;
	if (r->status != FSM_OK) {
		if (t->errors == 0) {
			t->first_error = r->status;
		}
		t->errors++;
		return;
	}
	if (r->type == FSM_CMD_QUEUE_DECLARE) {
		t->queue_id = r->u.declare.queue_id;
	}
}

static void on_effect(void *data, const struct fsm_delivery *d)
{
	struct tally *t = data;

	if (d->type == FSM_EFFECT_DELIVER) {
		t->deliveries++;
	}
}

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rss_bytes(void)
{
	unsigned long size = 0;
	unsigned long resident = 0;
	FILE *fp = fopen("/proc/self/statm", "r");

	if (fp == NULL) {
		return 0;
	}
	if (fscanf(fp, "%lu %lu", &size, &resident) != 2) {
		resident = 0;
	}
	fclose(fp);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void die(const char *what, int rv)
{
	fprintf(stderr, "fsm-bench: %s failed (%d)\n", what, rv);
	exit(1);
}

/* Closes the current batch into `out` when it holds `batch` commands or
 * when `force` is set. */
static void flush(struct fsm_batch *b, struct entries *out, uint32_t batch,
                  int force)
{
	const void *buf;
	size_t len;
	int rv;

	if (b->count == 0 || (!force && b->count < batch)) {
		return;
	}
	rv = fsm_batch_finish(b, &buf, &len);
	if (rv != 0) {
		die("fsm_batch_finish", rv);
	}
	out->e[out->n].buf = malloc(len);
	if (out->e[out->n].buf == NULL) {
		die("malloc", FSM_ENOMEM);
	}
	memcpy(out->e[out->n].buf, buf, len);
	out->e[out->n].len = len;
	out->n++;
	fsm_batch_reset(b);
}

static void entries_init(struct entries *es, uint64_t n, uint32_t batch)
{
	es->n = 0;
	es->e = calloc(n / batch + 2, sizeof(*es->e));
	if (es->e == NULL) {
		die("calloc", FSM_ENOMEM);
	}
}

static void entries_free(struct entries *es)
{
	size_t i;

	for (i = 0; i < es->n; i++) {
		free(es->e[i].buf);
	}
	free(es->e);
}

/* Applies every entry; returns the seconds spent in fsm_apply_entry. */
static double apply_all(struct fsm *f, const struct entries *es,
                        const struct fsm_sink *sink, uint64_t *applied)
{
	double t0 = now_sec();
	size_t i;

	for (i = 0; i < es->n; i++) {
		int rv = fsm_apply_entry(f, es->e[i].buf, es->e[i].len, sink);

		if (rv < 0) {
			die("fsm_apply_entry", rv);
		}
		*applied += (uint64_t)rv;
	}
	return now_sec() - t0;
}

static int count_cmd(void *data, const struct fsm_cmd *cmd)
{
	(*(uint64_t *)data) += cmd->type;
	return 0;
}

/* Decodes every entry without applying; returns the seconds spent. */
static double decode_all(const struct entries *es)
{
	double t0 = now_sec();
	uint64_t sum = 0;
	size_t i;

	for (i = 0; i < es->n; i++) {
		if (fsm_entry_decode(es->e[i].buf, es->e[i].len, count_cmd,
		                     &sum) < 0) {
			die("fsm_entry_decode", -1);
		}
	}
	if (sum == 0) {
		die("fsm_entry_decode (no commands)", -1);
	}
	return now_sec() - t0;
}

static const char *verdict(int ok)
{
	return ok ? "ok" : "MISSED";
}

static void usage(void)
{
	fprintf(stderr, "usage: fsm-bench [-n COUNT] [-s SIZE] [-b BATCH]\n"
	                "  -n COUNT  messages to publish then ack "
	                "(default 1000000)\n"
	                "  -s SIZE   payload bytes (default 100)\n"
	                "  -b BATCH  commands per entry (default 1000)\n"
	                "  -I        publish without message ids (no dedup)\n");
}

int main(int argc, char **argv)
{
	uint64_t n = 1000000;
	uint32_t size = 100;
	uint32_t batch = 1000;
	int with_ids = 1;
	struct fsm_config config;
	struct tally tally = {0, 0, 0, 0, 0};
	struct fsm_sink sink = {&tally, on_result, on_effect};
	struct entries pub;
	struct entries get;
	struct entries ack;
	uint64_t gets = 0;
	double t_get;
	struct fsm_batch b;
	struct fsm_cmd c;
	struct fsm_queue_stats st;
	struct fsm *f;
	char *payload;
	char id[32];
	uint64_t id_bytes = 0;
	uint64_t mem0;
	uint64_t mem1;
	uint64_t applied;
	uint64_t gets_applied = 0;
	uint64_t i;
	double t_enc;
	double t_dec;
	double t_pub;
	double t_ack;
	double per_msg;
	double overhead;
	const void *buf;
	size_t len;
	int opt;
	int rv;

	while ((opt = getopt(argc, argv, "n:s:b:Ih")) != -1) {
		switch (opt) {
		case 'n':
			n = strtoull(optarg, NULL, 10);
			break;
		case 's':
			size = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'b':
			batch = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'I':
			with_ids = 0;
			break;
		default:
			usage();
			return opt == 'h' ? 0 : 2;
		}
	}
	if (n == 0 || batch == 0 || size > FSM_CODEC_MAX_PAYLOAD) {
		usage();
		return 2;
	}

	fsm_config_default(&config);
	config.max_memory = UINT64_MAX; /* measure the FSM, not its bound */
	if (config.max_payload < size) {
		config.max_payload = size;
	}
	f = fsm_new(&config);
	if (f == NULL) {
		die("fsm_new", FSM_ENOMEM);
	}
	payload = malloc(size > 0 ? size : 1);
	if (payload == NULL) {
		die("malloc", FSM_ENOMEM);
	}
	for (i = 0; i < size; i++) {
		payload[i] = (char)('a' + i % 26);
	}

	/* Declare the queue, with bounds that fit the whole run. */
	fsm_batch_init(&b);
	memset(&c, 0, sizeof(c));
	c.type = FSM_CMD_QUEUE_DECLARE;
	c.time = 1000;
	c.session = 1;
	c.req_id = 1;
	c.u.declare.name = QUEUE_NAME;
	c.u.declare.name_len = sizeof(QUEUE_NAME) - 1;
	c.u.declare.opts.max_length = n;
	c.u.declare.opts.max_bytes = n * (uint64_t)(size > 0 ? size : 1);
	if ((rv = fsm_batch_add(&b, &c)) != 0 ||
	    (rv = fsm_batch_finish(&b, &buf, &len)) != 0) {
		die("encoding the declare", rv);
	}
	rv = fsm_apply_entry(f, buf, len, &sink);
	if (rv != 1 || tally.errors != 0) {
		fprintf(stderr, "fsm-bench: declare failed: %s\n",
		        fsm_status_str(tally.first_error));
		return 1;
	}
	fsm_batch_reset(&b);

	/* Encode every batch up front: only the apply is timed below. */
	entries_init(&pub, n, batch);
	entries_init(&get, n, batch);
	entries_init(&ack, n, batch);
	t_enc = now_sec();
	for (i = 0; i < n; i++) {
		int id_len =
		    with_ids ? snprintf(id, sizeof(id), "p-%" PRIu64, i) : 0;

		memset(&c, 0, sizeof(c));
		c.type = FSM_CMD_PUBLISH;
		c.time = 1000;
		c.session = 1;
		c.req_id = 2 + i;
		c.u.publish.topic = "";
		c.u.publish.key = QUEUE_NAME;
		c.u.publish.key_len = sizeof(QUEUE_NAME) - 1;
		c.u.publish.msg.id = id;
		c.u.publish.msg.id_len = (uint32_t)id_len;
		c.u.publish.msg.payload = payload;
		c.u.publish.msg.payload_len = size;
		id_bytes += (uint64_t)id_len;
		if ((rv = fsm_batch_add(&b, &c)) != 0) {
			die("fsm_batch_add", rv);
		}
		flush(&b, &pub, batch, 0);
	}
	flush(&b, &pub, batch, 1);
	/* Only delivered messages can be acked: pull them all with gets of
	 * config.max_get messages each (timed apart from publish and ack). */
	for (i = 0; i < n; i += config.max_get) {
		memset(&c, 0, sizeof(c));
		c.type = FSM_CMD_GET;
		c.time = 1000;
		c.session = 1;
		c.req_id = 2 + n + i;
		c.u.get.queue = QUEUE_NAME;
		c.u.get.queue_len = sizeof(QUEUE_NAME) - 1;
		c.u.get.max = config.max_get;
		c.u.get.timeout = 3600 * 1000;
		if ((rv = fsm_batch_add(&b, &c)) != 0) {
			die("fsm_batch_add", rv);
		}
		gets++;
		flush(&b, &get, batch, 0);
	}
	flush(&b, &get, batch, 1);
	for (i = 0; i < n; i++) {
		memset(&c, 0, sizeof(c));
		c.type = FSM_CMD_ACK;
		c.time = 1000;
		c.session = 1;
		c.req_id = 2 + 2 * n + i;
		c.u.settle.queue_id = tally.queue_id;
		c.u.settle.seq = 1 + i; /* a fresh queue numbers from 1 */
		if ((rv = fsm_batch_add(&b, &c)) != 0) {
			die("fsm_batch_add", rv);
		}
		flush(&b, &ack, batch, 0);
	}
	flush(&b, &ack, batch, 1);
	t_enc = now_sec() - t_enc;
	fsm_batch_close(&b);
	t_dec = decode_all(&pub);
	t_dec += decode_all(&ack);
	t_dec += decode_all(&get);

	mem0 = fsm_memory(f);
	applied = 0;
	t_pub = apply_all(f, &pub, &sink, &applied);
	mem1 = fsm_memory(f);
	printf("after publish: RSS %.1f MiB, fsm_memory %.1f MiB\n",
	       (double)rss_bytes() / 1048576.0, (double)mem1 / 1048576.0);
	if (fsm_queue_stats(f, QUEUE_NAME, sizeof(QUEUE_NAME) - 1, &st) ==
	    FSM_OK) {
		printf("queue: ready %" PRIu64 ", last_seq %" PRIu64 "\n",
		       st.ready, st.last_seq);
	}
	t_get = apply_all(f, &get, &sink, &gets_applied);
	if (tally.deliveries != n) {
		fprintf(stderr,
		        "fsm-bench: gets delivered %" PRIu64 " of %" PRIu64
		        "\n",
		        tally.deliveries, n);
	}
	t_ack = apply_all(f, &ack, &sink, &applied);
	if (fsm_queue_stats(f, QUEUE_NAME, sizeof(QUEUE_NAME) - 1, &st) ==
	    FSM_OK) {
		printf("after ack: ready %" PRIu64 ", in flight %" PRIu64
		       ", acked %" PRIu64 ", fsm_memory %.1f MiB\n",
		       st.ready, st.in_flight, st.acked,
		       (double)fsm_memory(f) / 1048576.0);
	}

	per_msg = (double)(mem1 - mem0) / (double)n;
	overhead = per_msg - (double)size - (double)id_bytes / (double)n;
	printf("messages %" PRIu64 ", payload %u B, batch %u, entries %zu\n", n,
	       size, batch, pub.n + get.n + ack.n);
	printf("results %" PRIu64 ", errors %" PRIu64 "%s%s\n", tally.results,
	       tally.errors, tally.errors ? ", first: " : "",
	       tally.errors ? fsm_status_str(tally.first_error) : "");
	printf("codec (not in apply figures): encode %.0f cmds/s, decode "
	       "%.0f cmds/s\n",
	       (2.0 * (double)n + (double)gets) / t_enc,
	       (2.0 * (double)n + (double)gets) / t_dec);
	printf("publish  %12.0f cmds/s  (target >= %.0f: %s)\n",
	       (double)n / t_pub, TARGET_CMDS_PER_SEC,
	       verdict((double)n / t_pub >= TARGET_CMDS_PER_SEC));
	printf("get      %12.0f msgs/s delivered by %" PRIu64
	       " gets (not in overall)\n",
	       (double)tally.deliveries / t_get, gets);
	printf("ack      %12.0f cmds/s  (target >= %.0f: %s)\n",
	       (double)n / t_ack, TARGET_CMDS_PER_SEC,
	       verdict((double)n / t_ack >= TARGET_CMDS_PER_SEC));
	printf(
	    "overall  %12.0f cmds/s  (target >= %.0f: %s), %" PRIu64
	    " applied\n",
	    (double)applied / (t_pub + t_ack), TARGET_CMDS_PER_SEC,
	    verdict((double)applied / (t_pub + t_ack) >= TARGET_CMDS_PER_SEC),
	    applied);
	printf("memory per queued message %.1f bytes, overhead bytes/msg "
	       "%.1f (target <= %.0f: %s)\n",
	       per_msg, overhead, TARGET_OVERHEAD,
	       verdict(overhead <= TARGET_OVERHEAD));
	printf("RSS at exit %.1f MiB (includes the encoded entries)\n",
	       (double)rss_bytes() / 1048576.0);

	entries_free(&pub);
	entries_free(&get);
	entries_free(&ack);
	free(payload);
	fsm_free(f);
	return tally.errors != 0 || applied != 2 * n || tally.deliveries != n;
}
