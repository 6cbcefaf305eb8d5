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
 *
 * Replies carry the same id and "type": "ok", "fail" or "info". The error
 * table errs toward "info": "fail" is used only when the request certainly
 * had no effect (the connection could not be opened before anything was
 * sent, or the server rejected the request on validation grounds).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raftmq.h"

#define LINE_MAX_LEN 4096

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
	memset(&conf, 0, sizeof(conf));
	rc = raftmq_publish(conn, &m, &conf);
	if (rc) {
		reply_err(id, err_type(rc), rc);
		return;
	}
	printf("{\"id\":%lld,\"type\":\"ok\",\"seq\":%llu,\"duplicate\":%d}\n",
	       id, (unsigned long long)conf.seq, conf.duplicate);
}

static void do_dequeue(long long id, const char *line, int ack)
{
	char queue[256];
	long long vis = json_int(line, "vis", 5000);
	struct raftmq_delivery *d = NULL;
	uint32_t count = 0;
	const char *ack_type = "none";
	const char *ack_err = "";
	int rc;

	if (json_str(line, "queue", queue, sizeof(queue))) {
		reply_err(id, "fail", RAFTMQ_EARG);
		return;
	}
	rc = ensure_connected();
	if (rc) {
		reply_err(id, "fail", rc);
		return;
	}
	rc = raftmq_get(conn, queue, 1, (uint64_t)vis, &count);
	if (rc == RAFTMQ_ENOMSG || (rc == 0 && count == 0)) {
		printf("{\"id\":%lld,\"type\":\"fail\",\"error\":\"empty\"}\n",
		       id);
		return;
	}
	if (rc) {
		/* A GET that may have run leaves at most an in-flight message
		 * that the broker redelivers; the op itself is unknown. */
		reply_err(id, rc == RAFTMQ_ENOQUEUE ? "fail" : "info", rc);
		return;
	}
	rc = raftmq_next_delivery(conn, 1000, &d);
	if (rc) {
		reply_err(id, "info", rc);
		return;
	}
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
	put_str((const char *)d->payload);
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
	put_str((const char *)d->payload);
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
	char queue[256];
	struct raftmq_queue_opts qo;
	int created = 0, rc;

	if (json_str(line, "queue", queue, sizeof(queue))) {
		reply_err(id, "fail", RAFTMQ_EARG);
		return;
	}
	memset(&qo, 0, sizeof(qo));
	qo.ack_timeout = (uint64_t)json_int(line, "ack_timeout", 0);
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
		} else {
			reply_err(id, "fail", RAFTMQ_EARG);
		}
		fflush(stdout);
	}
	raftmq_close(conn);
	return 0;
}
