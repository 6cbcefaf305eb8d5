/* jepsen adapter: drives libraftmq for one harness worker over JSON lines. */

/*
 * Usage: jclient SERVERS [TIMEOUT_MS]
 *
 * Reads one JSON request per line on stdin and writes one JSON reply per
 * line on stdout (flushed). Requests are flat objects:
 *
 *   {"id":1,"op":"enqueue","queue":"q0","value":"12:3:4"}
 *   {"id":2,"op":"dequeue","queue":"q0","vis":5000}
 *   {"id":3,"op":"dequeue-noack","queue":"q0","vis":5000}
 *   {"id":6,"op":"consume","queue":"q0","timeout":300}
 *   {"id":4,"op":"declare","queue":"q0","ack_timeout":5000}
 *   {"id":5,"op":"status"}
 *   {"id":7,"op":"enqueue","queue":"q0","value":"1:2:3","size":2000,
 *    "ttl":0,"delay":0}      (size: pad the payload to that many bytes)
 *   {"id":8,"op":"hold","queue":"q0","vis":0}   (GET one, no ack, keep
 *                             the connection: its ack timeout runs)
 *   {"id":9,"op":"get-many","queue":"q0","max":300,"vis":60000,
 *    "wait":60000,"ack":1}    (one GET of up to max, then ack each)
 *   {"id":10,"op":"consume-many","queue":"q0","prefetch":1000,"n":300,
 *    "wait":60000}            (a consumer with that prefetch, ack each)
 *   {"id":11,"op":"stats","queue":"q0"}   {"id":12,"op":"list"}
 *   (declare also takes delay, message_ttl, max_deliveries, dlq,
 *    max_bytes)
 *
 * A padded payload is "VALUE|SIZE|" then filler bytes 'a'+(i%26) up to
 * SIZE bytes; a delivery reports VALUE as its value and sets
 * "payload-error" when the length or the filler is wrong.
 *
 * Replies carry the same id and "type": "ok", "fail" or "info". The error
 * table errs toward "info": "fail" is used only when the request certainly
 * had no effect (the connection could not be opened before anything was
 * sent, or the server rejected the request on validation grounds).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raftmq.h"

#define LINE_MAX_LEN 4096
#define MAX_PAD      (64u << 20)

static struct raftmq *conn;
static struct raftmq_options opts;
static char consumer_queue[256]; /* queue of the registered consumer */

/* Finds "key": in a flat JSON object and copies its string value. */
static int json_str(const char *line, const char *key, char *out, size_t n)
{
	char pat[64];
	const char *p;
	size_t i = 0;

	snprintf(pat, sizeof(pat), "\"%s\"", key);
	p = strstr(line, pat);
	if (p == NULL)
		return -1;
	p += strlen(pat);
	while (*p == ' ' || *p == ':')
		p++;
	if (*p != '"')
		return -1;
	p++;
	while (*p && *p != '"' && i + 1 < n) {
		if (*p == '\\' && p[1])
			p++;
		out[i++] = *p++;
	}
	out[i] = '\0';
	return 0;
}

/* Finds "key": in a flat JSON object and parses its integer value. */
static long long json_int(const char *line, const char *key, long long dflt)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\"", key);
	p = strstr(line, pat);
	if (p == NULL)
		return dflt;
	p += strlen(pat);
	while (*p == ' ' || *p == ':')
		p++;
	if (*p == '"')
		p++;
	return strtoll(p, NULL, 10);
}

/* Writes `s` as a JSON string (quotes included). */
static void put_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

/* Writes the value of a delivery (JSON string), plus ,"payload-error":1
 * when its padding is damaged. */
static int payload_value(const struct raftmq_delivery *d, char *out, size_t n);
static void put_value(const struct raftmq_delivery *d)
{
	char v[512];
	int bad = payload_value(d, v, sizeof(v));

	put_str(v);
	printf(",\"size\":%zu", d->payload_len);
	if (bad)
		printf(",\"payload-error\":1");
}

static const char *err_name(int rc)
{
	switch (rc) {
	case RAFTMQ_ENOQUEUE:
		return "ENOQUEUE";
	case RAFTMQ_ENOTOPIC:
		return "ENOTOPIC";
	case RAFTMQ_EEXISTS:
		return "EEXISTS";
	case RAFTMQ_EINVAL:
		return "EINVAL";
	case RAFTMQ_ETOOBIG:
		return "ETOOBIG";
	case RAFTMQ_EFULL:
		return "EFULL";
	case RAFTMQ_ENOCONSUMER:
		return "ENOCONSUMER";
	case RAFTMQ_ENOMSG:
		return "ENOMSG";
	case RAFTMQ_EMALFORMED:
		return "EMALFORMED";
	case RAFTMQ_ELIMIT:
		return "ELIMIT";
	case RAFTMQ_ENOTEMPTY:
		return "ENOTEMPTY";
	case RAFTMQ_EINUSE:
		return "EINUSE";
	case RAFTMQ_ESERVERMEM:
		return "ESERVERMEM";
	case RAFTMQ_EPROTO:
		return "EPROTO";
	case RAFTMQ_EFRAME:
		return "EFRAME";
	case RAFTMQ_EVERSION:
		return "EVERSION";
	case RAFTMQ_ENOTLEADER:
		return "ENOTLEADER";
	case RAFTMQ_EUNAVAILABLE:
		return "EUNAVAILABLE";
	case RAFTMQ_EUNKNOWN:
		return "EUNKNOWN";
	case RAFTMQ_EBUSY:
		return "EBUSY";
	case RAFTMQ_ESERVERTIMEOUT:
		return "ESERVERTIMEOUT";
	case RAFTMQ_ESHUTDOWN:
		return "ESHUTDOWN";
	case RAFTMQ_EHELLO:
		return "EHELLO";
	case RAFTMQ_ECONNECT:
		return "ECONNECT";
	case RAFTMQ_ETIMEOUT:
		return "ETIMEOUT";
	case RAFTMQ_ENOMEM:
		return "ENOMEM";
	case RAFTMQ_EARG:
		return "EARG";
	case RAFTMQ_EBADREPLY:
		return "EBADREPLY";
	case RAFTMQ_ECANCELLED:
		return "ECANCELLED";
	default:
		return "EOTHER";
	}
}

/*
 * The error table for requests that change state (publish, get, ack).
 * Validation errors are rejected before anything is proposed, so they are
 * "fail"; everything else, including ENOTLEADER (an old leader may have
 * appended the entry already) and every client-side error once bytes may
 * have left, is "info".
 */
static const char *err_type(int rc)
{
	switch (rc) {
	case RAFTMQ_ENOQUEUE:
	case RAFTMQ_ENOTOPIC:
	case RAFTMQ_EINVAL:
	case RAFTMQ_ETOOBIG:
	case RAFTMQ_EMALFORMED:
	case RAFTMQ_EARG:
		return "fail";
	default:
		return "info";
	}
}

static void reply_err(long long id, const char *type, int rc)
{
	printf("{\"id\":%lld,\"type\":\"%s\",\"error\":\"%s\",\"msg\":", id,
	       type, err_name(rc));
	put_str(conn ? raftmq_errmsg(conn) : "");
	printf("}\n");
}

/* "VALUE|SIZE|" and filler up to `size` bytes (at least the header). */
static char *pad_payload(const char *value, size_t size)
{
	char head[600];
	size_t h = (size_t)snprintf(head, sizeof(head), "%s|%zu|", value, size);
	char *b;

	if (size < h)
		size = h;
	b = malloc(size + 1);
	if (b == NULL)
		return NULL;
	memcpy(b, head, h);
	for (size_t i = h; i < size; i++)
		b[i] = (char)('a' + i % 26);
	b[size] = '\0';
	return b;
}

/* Copies the VALUE part of a delivery into out; returns 0 when the payload
 * is intact (unpadded, or padded with the right length and filler). */
static int payload_value(const struct raftmq_delivery *d, char *out, size_t n)
{
	const char *p = (const char *)d->payload;
	const char *bar = memchr(p, '|', d->payload_len);
	size_t vlen = bar ? (size_t)(bar - p) : d->payload_len;
	char *end;
	unsigned long long want;

	if (vlen >= n)
		vlen = n - 1;
	memcpy(out, p, vlen);
	out[vlen] = '\0';
	if (bar == NULL)
		return 0;
	want = strtoull(bar + 1, &end, 10);
	if (*end != '|' || want != d->payload_len)
		return -1;
	for (size_t i = (size_t)(end + 1 - p); i < d->payload_len; i++)
		if (p[i] != (char)('a' + i % 26))
			return -1;
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int reopen(void)
{
	if (conn)
		raftmq_close(conn);
	consumer_queue[0] = '\0';
	conn = raftmq_new(&opts);
	return conn ? 0 : -1;
}

/*
 * Opens the connection if the handle has none. A failure here happened
 * before any request was sent, so the caller may report it as "fail".
 */
static int ensure_connected(void)
{
	if (raftmq_server(conn)[0] != '\0')
		return 0;
	return raftmq_connect(conn);
}

static void do_enqueue(long long id, const char *line)
{
	char queue[256], value[512];
	struct raftmq_message m;
	struct raftmq_confirm conf;
	long long size = json_int(line, "size", 0);
	char *buf = NULL;
	int rc;

	if (json_str(line, "queue", queue, sizeof(queue)) ||
	    json_str(line, "value", value, sizeof(value))) {
		reply_err(id, "fail", RAFTMQ_EARG);
		return;
	}
	rc = ensure_connected();
	if (rc) {
		reply_err(id, "fail", rc);
		return;
	}
	memset(&m, 0, sizeof(m));
	m.key = queue;
	m.id = value;
	m.payload = value;
	m.payload_len = strlen(value);
	m.ttl = (uint64_t)json_int(line, "ttl", 0);
	m.delay = (uint64_t)json_int(line, "delay", 0);
	if (size > 0 && (unsigned long long)size <= MAX_PAD) {
		buf = pad_payload(value, (size_t)size);
		if (buf == NULL) {
			reply_err(id, "fail", RAFTMQ_ENOMEM);
			return;
		}
		m.payload = buf;
		m.payload_len = (size_t)size;
	}
	memset(&conf, 0, sizeof(conf));
	rc = raftmq_publish(conn, &m, &conf);
	free(buf);
	if (rc) {
		reply_err(id, err_type(rc), rc);
		return;
	}
	printf("{\"id\":%lld,\"type\":\"ok\",\"seq\":%llu,\"duplicate\":%d}\n",
	       id, (unsigned long long)conf.seq, conf.duplicate);
}

/* GETs one message of the request's "queue" (visibility "vis", default
 * `vis_default` ms) into *d. Returns 0, or -1 after answering: "fail" for a
 * bad request, an empty or unknown queue; "info" when the GET may have run
 * (it leaves at most an in-flight message that the broker redelivers). */
static int get_one(long long id, const char *line, long long vis_default,
                   struct raftmq_delivery **d)
{
	char queue[256];
	long long vis = json_int(line, "vis", vis_default);
	uint32_t count = 0;
	int rc;

	if (json_str(line, "queue", queue, sizeof(queue))) {
		reply_err(id, "fail", RAFTMQ_EARG);
		return -1;
	}
	rc = ensure_connected();
	if (rc) {
		reply_err(id, "fail", rc);
		return -1;
	}
	rc = raftmq_get(conn, queue, 1, (uint64_t)vis, &count);
	if (rc == RAFTMQ_ENOMSG || (rc == 0 && count == 0)) {
		printf("{\"id\":%lld,\"type\":\"fail\",\"error\":\"empty\"}\n",
		       id);
		return -1;
	}
	if (rc == 0)
		rc = raftmq_next_delivery(conn, 1000, d);
	if (rc) {
		reply_err(id, rc == RAFTMQ_ENOQUEUE ? "fail" : "info", rc);
		return -1;
	}
	return 0;
}

static void do_dequeue(long long id, const char *line, int ack)
{
	struct raftmq_delivery *d = NULL;
	const char *ack_type = "none";
	const char *ack_err = "";

	if (get_one(id, line, 5000, &d) != 0)
		return;
	if (ack) {
		int arc = raftmq_ack(conn, d->queue_id, d->seq);

		if (arc == 0) {
			ack_type = "ok";
		} else {
			/* ENOMSG: the message is gone (someone else acked
			 * it after a redelivery); our ack did nothing. */
			ack_type = arc == RAFTMQ_ENOMSG ? "fail" : "info";
			ack_err = err_name(arc);
		}
	}
	printf("{\"id\":%lld,\"type\":\"ok\",\"value\":", id);
	put_value(d);
	printf(",\"seq\":%llu,\"redelivered\":%s,\"delivery-count\":%u,"
	       "\"queue-id\":%u,\"ack\":\"%s\",\"ack-error\":\"%s\"}\n",
	       (unsigned long long)d->seq, d->redelivered ? "true" : "false",
	       d->delivery_count, d->queue_id, ack_type, ack_err);
	raftmq_delivery_free(d);
	if (!ack) {
		/* Drop the connection without acking. */
		fflush(stdout);
		reopen();
	}
}

/*
 * Push consumer variant of dequeue: the first call registers a consumer with
 * prefetch 1 on the queue; each call then waits up to "timeout" ms for the
 * next delivery and acks it. The worker must use one queue only.
 */
static void do_consume(long long id, const char *line)
{
	char queue[256];
	long long timeout = json_int(line, "timeout", 300);
	struct raftmq_delivery *d = NULL;
	const char *ack_type = "ok";
	const char *ack_err = "";
	int rc, arc;

	if (json_str(line, "queue", queue, sizeof(queue))) {
		reply_err(id, "fail", RAFTMQ_EARG);
		return;
	}
	if (strcmp(consumer_queue, queue) != 0) {
		if (consumer_queue[0] != '\0') {
			reply_err(id, "fail", RAFTMQ_EARG);
			return;
		}
		rc = ensure_connected();
		if (rc) {
			reply_err(id, "fail", rc);
			return;
		}
		rc = raftmq_consume(conn, queue, 1, NULL);
		if (rc) {
			reply_err(id, rc == RAFTMQ_ENOQUEUE ? "fail" : "info",
			          rc);
			return;
		}
		snprintf(consumer_queue, sizeof(consumer_queue), "%s", queue);
	}
	rc = raftmq_next_delivery(conn, (int)timeout, &d);
	if (rc == RAFTMQ_ETIMEOUT) {
		printf("{\"id\":%lld,\"type\":\"fail\",\"error\":\"empty\"}\n",
		       id);
		return;
	}
	if (rc) {
		reply_err(id, "info", rc);
		return;
	}
	arc = raftmq_ack(conn, d->queue_id, d->seq);
	if (arc) {
		ack_type = arc == RAFTMQ_ENOMSG ? "fail" : "info";
		ack_err = err_name(arc);
	}
	printf("{\"id\":%lld,\"type\":\"ok\",\"value\":", id);
	put_value(d);
	printf(",\"seq\":%llu,\"redelivered\":%s,\"delivery-count\":%u,"
	       "\"queue-id\":%u,\"consumer\":%llu,\"ack\":\"%s\","
	       "\"ack-error\":\"%s\"}\n",
	       (unsigned long long)d->seq, d->redelivered ? "true" : "false",
	       d->delivery_count, d->queue_id, (unsigned long long)d->consumer,
	       ack_type, ack_err);
	raftmq_delivery_free(d);
}

static void do_declare(long long id, const char *line)
{
	char queue[256], dlq[256];
	struct raftmq_queue_opts qo;
	int created = 0, rc;

	if (json_str(line, "queue", queue, sizeof(queue))) {
		reply_err(id, "fail", RAFTMQ_EARG);
		return;
	}
	memset(&qo, 0, sizeof(qo));
	qo.ack_timeout = (uint64_t)json_int(line, "ack_timeout", 0);
	qo.delay = (uint64_t)json_int(line, "delay", 0);
	qo.message_ttl = (uint64_t)json_int(line, "message_ttl", 0);
	qo.max_deliveries = (uint32_t)json_int(line, "max_deliveries", 0);
	qo.max_bytes = (uint64_t)json_int(line, "max_bytes", 0);
	if (json_str(line, "dlq", dlq, sizeof(dlq)) == 0 && dlq[0])
		qo.dlq = dlq;
	rc = raftmq_queue_declare(conn, queue, &qo, NULL, &created);
	if (rc) {
		reply_err(id, "info", rc);
		return;
	}
	printf("{\"id\":%lld,\"type\":\"ok\",\"created\":%d}\n", id, created);
}

static void do_status(long long id)
{
	struct raftmq_node_status st;
	int rc;

	memset(&st, 0, sizeof(st));
	rc = raftmq_status(conn, &st);
	if (rc) {
		reply_err(id, "info", rc);
		return;
	}
	printf("{\"id\":%lld,\"type\":\"ok\",\"node_id\":%llu,\"role\":", id,
	       (unsigned long long)st.node_id);
	put_str(st.role);
	printf(",\"leader\":%llu,\"term\":%llu,\"commit\":%llu,"
	       "\"applied\":%llu,\"last\":%llu,\"members\":%u}\n",
	       (unsigned long long)st.leader_id, (unsigned long long)st.term,
	       (unsigned long long)st.commit_index,
	       (unsigned long long)st.applied_index,
	       (unsigned long long)st.last_index, st.n_members);
}

/* GET one message and keep it unacked on this open connection. */
static void do_hold(long long id, const char *line)
{
	char v[512];
	struct raftmq_delivery *d = NULL;

	if (get_one(id, line, 0, &d) != 0)
		return;
	payload_value(d, v, sizeof(v));
	printf("{\"id\":%lld,\"type\":\"ok\",\"value\":", id);
	put_str(v);
	printf(",\"seq\":%llu,\"redelivered\":%s,\"delivery-count\":%u}\n",
	       (unsigned long long)d->seq, d->redelivered ? "true" : "false",
	       d->delivery_count);
	raftmq_delivery_free(d);
}

/*
 * Batch receive shared by get-many and consume-many: waits up to `wait` ms
 * for `want` deliveries, acks each (when `ack`), and answers the values,
 * the highest delivery count and any errors.
 */
static void receive_batch(long long id, uint32_t want, long long wait, int ack,
                          const char *how)
{
	long long end = now_ms() + wait;
	uint32_t got = 0, acked = 0, maxdc = 0, redelivered = 0, bad = 0;
	int first_err = 0, ack_err = 0;
	char v[512];
	uint64_t *seqs = calloc(want ? want : 1, sizeof(*seqs));
	uint32_t *dcs = calloc(want ? want : 1, sizeof(*dcs));

	printf("{\"id\":%lld,\"type\":\"ok\",\"how\":\"%s\",\"values\":[", id,
	       how);
	while (got < want) {
		struct raftmq_delivery *d = NULL;
		long long left = end - now_ms();
		int rc;

		if (left <= 0)
			break;
		rc = raftmq_next_delivery(conn,
		                          (int)(left > 1000 ? 1000 : left), &d);
		if (rc == RAFTMQ_ETIMEOUT)
			continue;
		if (rc) {
			first_err = rc;
			break;
		}
		if (payload_value(d, v, sizeof(v)))
			bad++;
		printf("%s", got ? "," : "");
		put_str(v);
		if (seqs)
			seqs[got] = d->seq;
		if (dcs)
			dcs[got] = d->delivery_count;
		got++;
		if (d->delivery_count > maxdc)
			maxdc = d->delivery_count;
		redelivered += d->redelivered ? 1 : 0;
		if (ack) {
			int arc = raftmq_ack(conn, d->queue_id, d->seq);
			if (arc == 0)
				acked++;
			else if (!ack_err)
				ack_err = arc;
		}
		raftmq_delivery_free(d);
	}
	printf("],\"seqs\":[");
	for (uint32_t i = 0; seqs && i < got; i++)
		printf("%s%llu", i ? "," : "", (unsigned long long)seqs[i]);
	free(seqs);
	printf("],\"delivery-counts\":[");
	for (uint32_t i = 0; dcs && i < got; i++)
		printf("%s%u", i ? "," : "", dcs[i]);
	free(dcs);
	printf("],\"granted\":%u,\"count\":%u,\"acked\":%u,"
	       "\"max-delivery-count\":%u,"
	       "\"redelivered\":%u,\"payload-errors\":%u,\"error\":\"%s\","
	       "\"ack-error\":\"%s\"}\n",
	       want, got, acked, maxdc, redelivered, bad,
	       first_err ? err_name(first_err) : "",
	       ack_err ? err_name(ack_err) : "");
}

static void do_get_many(long long id, const char *line)
{
	char queue[256];
	long long max = json_int(line, "max", 1);
	long long vis = json_int(line, "vis", 60000);
	long long wait = json_int(line, "wait", 60000);
	uint32_t count = 0;
	int rc;

	if (json_str(line, "queue", queue, sizeof(queue)) || max < 1) {
		reply_err(id, "fail", RAFTMQ_EARG);
		return;
	}
	rc = ensure_connected();
	if (rc) {
		reply_err(id, "fail", rc);
		return;
	}
	raftmq_set_timeout(conn, (int)wait);
	rc = raftmq_get(conn, queue, (uint32_t)max, (uint64_t)vis, &count);
	raftmq_set_timeout(conn, opts.timeout_ms);
	if (rc == RAFTMQ_ENOMSG || (rc == 0 && count == 0)) {
		printf("{\"id\":%lld,\"type\":\"fail\",\"error\":\"empty\"}\n",
		       id);
		return;
	}
	if (rc) {
		reply_err(id, "info", rc);
		return;
	}
	receive_batch(id, count, wait, (int)json_int(line, "ack", 1), "get");
}

static void do_consume_many(long long id, const char *line)
{
	char queue[256];
	long long prefetch = json_int(line, "prefetch", 1);
	long long n = json_int(line, "n", 1);
	long long wait = json_int(line, "wait", 60000);
	uint64_t handle = 0;
	int rc;

	if (json_str(line, "queue", queue, sizeof(queue)) || prefetch < 1 ||
	    n < 1) {
		reply_err(id, "fail", RAFTMQ_EARG);
		return;
	}
	rc = ensure_connected();
	if (rc) {
		reply_err(id, "fail", rc);
		return;
	}
	rc = raftmq_consume(conn, queue, (uint32_t)prefetch, &handle);
	if (rc) {
		reply_err(id, rc == RAFTMQ_ENOQUEUE ? "fail" : "info", rc);
		return;
	}
	receive_batch(id, (uint32_t)n, wait, 1, "consume");
	/* Drops the consumer (and anything it still holds unacked). */
	fflush(stdout);
	reopen();
}

static void put_stats(const struct raftmq_queue_stats *s)
{
	printf("{\"name\":");
	put_str(s->name);
	printf(",\"ready\":%llu,\"delayed\":%llu,\"in_flight\":%llu,"
	       "\"bytes\":%llu,\"consumers\":%llu,\"published\":%llu,"
	       "\"acked\":%llu,\"dead_lettered\":%llu,\"expired\":%llu,"
	       "\"dropped\":%llu,\"deduplicated\":%llu,\"last_seq\":%llu}",
	       (unsigned long long)s->ready, (unsigned long long)s->delayed,
	       (unsigned long long)s->in_flight, (unsigned long long)s->bytes,
	       (unsigned long long)s->consumers,
	       (unsigned long long)s->published, (unsigned long long)s->acked,
	       (unsigned long long)s->dead_lettered,
	       (unsigned long long)s->expired, (unsigned long long)s->dropped,
	       (unsigned long long)s->deduplicated,
	       (unsigned long long)s->last_seq);
}

static void do_stats(long long id, const char *line)
{
	char queue[256];
	struct raftmq_queue_stats st;
	int rc;

	if (json_str(line, "queue", queue, sizeof(queue))) {
		reply_err(id, "fail", RAFTMQ_EARG);
		return;
	}
	memset(&st, 0, sizeof(st));
	rc = raftmq_queue_stats(conn, queue, &st);
	if (rc) {
		reply_err(id, rc == RAFTMQ_ENOQUEUE ? "fail" : "info", rc);
		return;
	}
	printf("{\"id\":%lld,\"type\":\"ok\",\"stats\":", id);
	put_stats(&st);
	printf("}\n");
}

static int listed;

static void list_cb(void *arg, const struct raftmq_queue_stats *s)
{
	(void)arg;
	printf("%s", listed++ ? "," : "");
	put_stats(s);
}

/* Every queue's stats as this node's own state machine has them. */
static void do_list(long long id)
{
	int rc;

	listed = 0;
	printf("{\"id\":%lld,\"type\":\"ok\",\"queues\":[", id);
	rc = raftmq_queue_list(conn, list_cb, NULL);
	printf("],\"error\":\"%s\"}\n", rc ? err_name(rc) : "");
}

int main(int argc, char **argv)
{
	static char line[LINE_MAX_LEN];
	char op[64];

	if (argc < 2) {
		fprintf(stderr, "usage: jclient SERVERS [TIMEOUT_MS]\n");
		return 2;
	}
	raftmq_options_default(&opts);
	opts.servers = argv[1];
	opts.client_name = "jepsen";
	opts.timeout_ms = argc > 2 ? atoi(argv[2]) : 4000;
	opts.connect_timeout_ms = 1000;
	opts.backoff_max_ms = 200;
	if (reopen()) {
		fprintf(stderr, "jclient: bad server list\n");
		return 2;
	}
	while (fgets(line, sizeof(line), stdin)) {
		long long id = json_int(line, "id", 0);

		if (json_str(line, "op", op, sizeof(op))) {
			reply_err(id, "fail", RAFTMQ_EARG);
		} else if (!strcmp(op, "enqueue")) {
			do_enqueue(id, line);
		} else if (!strcmp(op, "dequeue")) {
			do_dequeue(id, line, 1);
		} else if (!strcmp(op, "dequeue-noack")) {
			do_dequeue(id, line, 0);
		} else if (!strcmp(op, "consume")) {
			do_consume(id, line);
		} else if (!strcmp(op, "declare")) {
			do_declare(id, line);
		} else if (!strcmp(op, "status")) {
			do_status(id);
		} else if (!strcmp(op, "hold")) {
			do_hold(id, line);
		} else if (!strcmp(op, "get-many")) {
			do_get_many(id, line);
		} else if (!strcmp(op, "consume-many")) {
			do_consume_many(id, line);
		} else if (!strcmp(op, "stats")) {
			do_stats(id, line);
		} else if (!strcmp(op, "list")) {
			do_list(id);
		} else {
			reply_err(id, "fail", RAFTMQ_EARG);
		}
		fflush(stdout);
	}
	raftmq_close(conn);
	return 0;
}
