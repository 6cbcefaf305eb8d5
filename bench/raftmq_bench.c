/* raftmq-bench: workloads W1-W8 and sweeps against a running raftmq cluster. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/raftmq.h"

#ifndef RAFTMQ_SOURCE_DIR
#define RAFTMQ_SOURCE_DIR "."
#endif

#define MAX_RUNS     50
#define MAX_METRICS  12
#define MAX_QUEUES   1000
#define MAX_THREADS  64
#define QNAME_LEN    96
#define SERVERS_LEN  1024
#define WAIT_STEP_MS 20

/* Command-line options; 0 in a count field means "the workload's default". */
struct opts {
	const char *servers;
	size_t size;
	uint64_t count;
	unsigned window;
	int producers;
	int consumers;
	int queues;
	int runs;
	unsigned prefetch;
	int ack_conns;
	int ack_sync; /* raftmq_ack() per message instead of raftmq_ack_async()
	               */
	int json;
	int timeout_s;
	const char *pid_dir;
	const char *script;
	int restart_all;
	int quiet;
	int backoff_max_ms; /* 0 = the library's default */
};

static struct opts g_o;

/* One figure of a workload, measured once per run. */
struct metric {
	const char *name; /* JSON key, e.g. "msgs_per_s" */
	const char *what; /* for the table */
	double v[MAX_RUNS];
	int n;
};

/* The measured figures of one workload (or one sweep point). */
struct result {
	char workload[32];
	char label[64];
	char note[256];
	int skipped;
	uint64_t count;
	size_t size;
	int producers, consumers, queues;
	struct metric m[MAX_METRICS];
	int n_metrics;
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static void logf_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fflush(stderr);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The p-th percentile (0..100) of `v` (sorted in place), nearest rank. */
static double percentile(double *v, size_t n, double p)
{
	size_t k;

	if (n == 0)
		return NAN;
	qsort(v, n, sizeof(*v), cmp_double);
	k = (size_t)ceil(p / 100.0 * (double)n);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return v[k - 1];
}

static struct metric *metric_add(struct result *r, const char *name,
                                 const char *what)
{
	struct metric *m;
	int i;

	for (i = 0; i < r->n_metrics; i++)
		if (strcmp(r->m[i].name, name) == 0)
			return &r->m[i];
	if (r->n_metrics == MAX_METRICS)
		return NULL;
	m = &r->m[r->n_metrics++];
	memset(m, 0, sizeof(*m));
	m->name = name;
	m->what = what;
	return m;
}

/* Records one run's value of metric `name`. */
static void put(struct result *r, const char *name, const char *what, double v)
{
	struct metric *m = metric_add(r, name, what);

	if (m && m->n < MAX_RUNS)
		m->v[m->n++] = v;
}

static const struct metric *metric_get(const struct result *r, const char *name)
{
	int i;

	for (i = 0; i < r->n_metrics; i++)
		if (strcmp(r->m[i].name, name) == 0 && r->m[i].n > 0)
			return &r->m[i];
	return NULL;
}

static void summary(const struct metric *m, double *med, double *lo, double *hi)
{
	double v[MAX_RUNS];
	int n = m->n;

	memcpy(v, m->v, sizeof(double) * (size_t)n);
	qsort(v, (size_t)n, sizeof(double), cmp_double);
	*lo = v[0];
	*hi = v[n - 1];
	*med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Formats `v` with thousands separators above 1000, else 3 significant
 * decimals. */
static const char *fmt_num(char *buf, size_t len, double v)
{
	if (isnan(v)) {
		snprintf(buf, len, "-");
	} else if (fabs(v) >= 1000) {
		char raw[64], *out = buf;
		int n, i, lead;

		n = snprintf(raw, sizeof(raw), "%.0f", fabs(v));
		lead = n % 3 ? n % 3 : 3;
		if (v < 0)
			*out++ = '-';
		for (i = 0; i < n && (size_t)(out - buf) + 2 < len; i++) {
			if (i && (i - lead) % 3 == 0)
				*out++ = ',';
			*out++ = raw[i];
		}
		*out = '\0';
	} else if (fabs(v) >= 100) {
		snprintf(buf, len, "%.0f", v);
	} else if (fabs(v) >= 10) {
		snprintf(buf, len, "%.1f", v);
	} else {
		snprintf(buf, len, "%.3f", v);
	}
	return buf;
}

/* How busy the whole machine and this process were over a run: the machine
 * is shared, so a figure means little without it. */
struct cpu_snap {
	unsigned long long busy, total; /* /proc/stat jiffies, all CPUs */
	double self_s;                  /* CPU seconds of raftmq-bench */
};

static void cpu_snap(struct cpu_snap *c)
{
	unsigned long long v[10] = {0};
	struct rusage ru;
	FILE *f = fopen("/proc/stat", "r");
	int i;

	memset(c, 0, sizeof(*c));
	if (f) {
		if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu",
		           &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
		           &v[7]) == 8) {
			for (i = 0; i < 8; i++)
				c->total += v[i];
			c->busy = c->total - v[3] - v[4];
		}
		fclose(f);
	}
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		c->self_s = (double)ru.ru_utime.tv_sec +
		            (double)ru.ru_utime.tv_usec / 1e6 +
		            (double)ru.ru_stime.tv_sec +
		            (double)ru.ru_stime.tv_usec / 1e6;
}

/* Records the machine's busy share (100% = every core) and the bench's own
 * CPU seconds since `a`. */
static void put_cpu(struct result *r, const struct cpu_snap *a)
{
	struct cpu_snap b;

	cpu_snap(&b);
	if (b.total > a->total)
		put(r, "box_busy_pct", "machine busy (all cores), %",
		    100.0 * (double)(b.busy - a->busy) /
		        (double)(b.total - a->total));
	put(r, "bench_cpu_s", "raftmq-bench CPU, s", b.self_s - a->self_s);
}

/* ------------------------------------------------------------------ */
/* Targets                                                              */

/* A target from the issue: metric `name` of `workload` must be <= or >=
 * `limit`. */
struct target {
	const char *workload;
	const char *name;
	int at_least;
	double limit;
};

static const struct target targets[] = {
    {"W1", "msgs_per_s", 1, 150000},   {"W2", "msgs_per_s", 1, 100000},
    {"W3", "msgs_per_s", 1, 100000},   {"W4", "p50_ms", 0, 0.35},
    {"W4", "p99_ms", 0, 1.0},          {"W5", "seconds", 0, 0.3},
    {"W6", "unavailable_ms", 0, 1500}, {"W7", "rss_max_mb", 0, 250},
    {"W8", "seconds", 0, 3.0},
};

static const struct target *target_of(const char *workload, const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(targets) / sizeof(targets[0]); i++)
		if (strcmp(targets[i].workload, workload) == 0 &&
		    strcmp(targets[i].name, name) == 0)
			return &targets[i];
	return NULL;
}

static int target_met(const struct target *t, double med)
{
	return t->at_least ? med >= t->limit : med <= t->limit;
}

/* ------------------------------------------------------------------ */
/* Output                                                               */

static void print_json(const struct result *r)
{
	int i, met = -1;

	printf("{\"workload\":\"%s\"", r->workload);
	if (r->label[0])
		printf(",\"label\":\"%s\"", r->label);
	if (r->skipped) {
		printf(",\"skipped\":true,\"note\":\"%s\"}\n", r->note);
		fflush(stdout);
		return;
	}
	printf(",\"runs\":%d,\"count\":%" PRIu64 ",\"size\":%zu", g_o.runs,
	       r->count, r->size);
	printf(",\"producers\":%d,\"consumers\":%d,\"queues\":%d", r->producers,
	       r->consumers, r->queues);
	printf(",\"window\":%u,\"prefetch\":%u,\"ack\":\"%s\"", g_o.window,
	       g_o.prefetch,
	       g_o.ack_conns  ? "conns"
	       : g_o.ack_sync ? "sync"
	                      : "async");
	for (i = 0; i < r->n_metrics; i++) {
		const struct metric *m = &r->m[i];
		const struct target *t;
		double med, lo, hi;

		if (m->n == 0)
			continue;
		summary(m, &med, &lo, &hi);
		printf(",\"%s\":%.6g,\"%s_min\":%.6g,\"%s_max\":%.6g", m->name,
		       med, m->name, lo, m->name, hi);
		t = target_of(r->workload, m->name);
		if (t) {
			met = (met != 0) && target_met(t, med);
		}
	}
	if (met >= 0)
		printf(",\"target_met\":%s", met ? "true" : "false");
	if (r->note[0])
		printf(",\"note\":\"%s\"", r->note);
	printf("}\n");
	fflush(stdout);
}

static void print_table_header(void)
{
	printf("%-13s %-34s %12s  %-25s %-12s %s\n", "workload", "figure",
	       "median", "[min - max]", "target", "met");
	fflush(stdout);
}

static void print_table(const struct result *r)
{
	char id[128];
	int i;

	/* A sweep point is named by its label; sweep() prints the title. */
	snprintf(id, sizeof(id), "%s", r->label[0] ? r->label : r->workload);
	if (r->skipped) {
		printf("%-13s skipped: %s\n", id, r->note);
		fflush(stdout);
		return;
	}
	for (i = 0; i < r->n_metrics; i++) {
		const struct metric *m = &r->m[i];
		const struct target *t = target_of(r->workload, m->name);
		char a[32], b[32], c[32], range[80], tgt[32] = "";
		double med, lo, hi;

		if (m->n == 0)
			continue;
		summary(m, &med, &lo, &hi);
		snprintf(range, sizeof(range), "[%s - %s]",
		         fmt_num(b, sizeof(b), lo), fmt_num(c, sizeof(c), hi));
		if (t)
			snprintf(tgt, sizeof(tgt), "%s %s",
			         t->at_least ? ">=" : "<=",
			         fmt_num(c, sizeof(c), t->limit));
		printf("%-13s %-34s %12s  %-25s %-12s %s\n", i == 0 ? id : "",
		       m->what, fmt_num(a, sizeof(a), med), range, tgt,
		       t ? (target_met(t, med) ? "yes" : "NO") : "");
	}
	if (r->note[0])
		printf("%-13s note: %s\n", "", r->note);
	fflush(stdout);
}

static void report(const struct result *r)
{
	if (g_o.json)
		print_json(r);
	else
		print_table(r);
}

/* ------------------------------------------------------------------ */
/* Progress                                                             */

/* Counters that the progress thread prints while a run goes on. */
struct progress {
	char label[64];
	uint64_t total;
	atomic_ullong sent, confirmed, consumed;
	atomic_int running;
	double start;
	pthread_t thread;
};

static void *progress_main(void *arg)
{
	struct progress *p = arg;
	int tty = isatty(2), printed = 0;
	double last = 0;

	while (atomic_load(&p->running)) {
		double t = now_s() - p->start;

		sleep_ms(100);
		/* Short runs stay silent; long ones show a line every
		 * 0.5 s on a terminal, every 5 s otherwise. */
		if (g_o.quiet || t < 2.0 || t - last < (tty ? 0.5 : 5.0))
			continue;
		last = t;
		logf_err("%s%s: %.0f s, sent %llu, confirmed %llu, consumed "
		         "%llu of %llu%s",
		         tty ? "\r" : "", p->label, t,
		         (unsigned long long)atomic_load(&p->sent),
		         (unsigned long long)atomic_load(&p->confirmed),
		         (unsigned long long)atomic_load(&p->consumed),
		         (unsigned long long)p->total, tty ? "   " : "\n");
		printed = 1;
	}
	if (printed && tty)
		logf_err("\n");
	return NULL;
}

static void progress_start(struct progress *p, const char *label,
                           uint64_t total)
{
	snprintf(p->label, sizeof(p->label), "%s", label);
	p->total = total;
	atomic_store(&p->sent, 0);
	atomic_store(&p->confirmed, 0);
	atomic_store(&p->consumed, 0);
	atomic_store(&p->running, 1);
	p->start = now_s();
	if (pthread_create(&p->thread, NULL, progress_main, p))
		atomic_store(&p->running, 0);
}

static void progress_stop(struct progress *p)
{
	if (!atomic_load(&p->running))
		return;
	atomic_store(&p->running, 0);
	pthread_join(p->thread, NULL);
}

/* ------------------------------------------------------------------ */
/* Client handles and queues                                            */

static struct raftmq *handle_new(const char *servers, unsigned window,
                                 int timeout_ms)
{
	struct raftmq_options o;
	struct raftmq *c;

	raftmq_options_default(&o);
	o.servers = servers;
	o.client_name = "raftmq-bench";
	if (window)
		o.window = window;
	if (timeout_ms > 0)
		o.timeout_ms = timeout_ms;
	if (g_o.backoff_max_ms > 0)
		o.backoff_max_ms = g_o.backoff_max_ms;
	c = raftmq_new(&o);
	if (c == NULL)
		logf_err("raftmq-bench: bad server list '%s'\n",
		         servers ? servers : "(default)");
	return c;
}

/* Declares `name` with an ack timeout long enough that no delivery comes
 * back during a run. */
static int queue_make(struct raftmq *c, const char *name)
{
	struct raftmq_queue_opts qo;
	int rc;

	memset(&qo, 0, sizeof(qo));
	qo.ack_timeout = 600000;
	rc = raftmq_queue_declare(c, name, &qo, NULL, NULL);
	if (rc)
		logf_err("raftmq-bench: declare %s: %s\n", name,
		         raftmq_errmsg(c));
	return rc;
}

static void queue_drop(struct raftmq *c, const char *name)
{
	int rc = raftmq_queue_delete(c, name, 0, NULL);

	if (rc && rc != RAFTMQ_ENOQUEUE)
		logf_err("raftmq-bench: delete %s: %s\n", name,
		         raftmq_errmsg(c));
}

/* ------------------------------------------------------------------ */
/* The load engine: producers publish asynchronously, consumers ack      */

struct load;

struct producer {
	struct load *l;
	int index;
	uint64_t first, n; /* global message indexes [first, first + n) */
	double last_confirm;
	uint64_t failed;
	int first_error;
	pthread_t thread;
};

struct consumer {
	struct load *l;
	int index;
	pthread_t thread;
	/* --ack-conns: a ring of (queue_id, seq) handed to ack threads. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint32_t *ring_q;
	uint64_t *ring_s;
	double *ring_lat;
	unsigned ring_len, ring_head, ring_n;
	int done;              /* the ack threads may finish */
	atomic_int registered; /* 1 = consuming, 2 = failed */
	pthread_t ackers[16];
	int n_ackers;
};

/* One run of publishers and (optionally) consumers. */
struct load {
	const char *servers;
	char (*queues)[QNAME_LEN];
	int n_queues;
	size_t size;
	uint64_t count;
	unsigned window;
	int producers;
	int consumers; /* 0 = publish only */
	unsigned prefetch;
	int tasks; /* payload is a small task, the consumer computes it */
	double deadline;

	double t_start;
	atomic_int go;
	atomic_int stop;
	double *lat; /* ms: publish->confirm, or publish->delivery */
	double *t_send;
	atomic_ullong acked;
	atomic_ullong redelivered;
	atomic_ullong task_sum;
	double t_last_ack;
	pthread_mutex_t mu;
	struct progress *prog;
	struct producer prod[MAX_THREADS];
	struct consumer cons[MAX_THREADS];
	int error;
};

static _Thread_local struct producer *tl_prod;

static void on_confirm(void *arg, int status, const struct raftmq_confirm *cf)
{
	struct producer *p = tl_prod;
	double *slot = arg, t = now_s();

	(void)cf;
	if (p == NULL)
		return;
	if (status) {
		if (p->failed++ == 0)
			p->first_error = status;
		return;
	}
	/* The slot held the send time; it becomes the latency. */
	*slot = (t - *slot) * 1000.0;
	p->last_confirm = t;
	atomic_fetch_add_explicit(&p->l->prog->confirmed, 1,
	                          memory_order_relaxed);
}

static void *producer_main(void *arg)
{
	struct producer *p = arg;
	struct load *l = p->l;
	struct raftmq_message m;
	struct raftmq *c;
	char *body = NULL, task[96];
	uint64_t i;
	int rc;

	tl_prod = p;
	c = handle_new(l->servers, l->window, 0);
	if (c == NULL) {
		p->failed = p->n;
		return NULL;
	}
	body = calloc(1, l->size > 8 ? l->size : 8);
	if (body == NULL) {
		p->failed = p->n;
		goto out;
	}
	memset(body, 'x', l->size);
	rc = raftmq_connect(c);
	if (rc) {
		logf_err("raftmq-bench: producer %d: %s\n", p->index,
		         raftmq_errmsg(c));
		p->failed = p->n;
		p->first_error = rc;
		goto out;
	}
	while (!atomic_load(&l->go))
		sleep_ms(1);
	memset(&m, 0, sizeof(m));
	for (i = 0; i < p->n && !atomic_load(&l->stop); i++) {
		uint64_t g = p->first + i;
		double t = now_s();

		m.key = l->queues[g % (uint64_t)l->n_queues];
		if (l->tasks) {
			m.type = "add";
			snprintf(task, sizeof(task), "%" PRIu64 " %" PRIu64, g,
			         g);
			m.payload = task;
			m.payload_len = strlen(task);
		} else {
			/* The send time travels in the body, for the
			 * consumer's end-to-end latency. */
			if (l->size >= sizeof(double))
				memcpy(body, &t, sizeof(t));
			m.payload = body;
			m.payload_len = l->size;
		}
		l->t_send[g] = t;
		rc = raftmq_publish_async(c, &m, on_confirm, &l->t_send[g]);
		if (rc) {
			logf_err("raftmq-bench: publish: %s\n",
			         raftmq_errmsg(c));
			p->failed += p->n - i;
			if (!p->first_error)
				p->first_error = rc;
			break;
		}
		atomic_fetch_add_explicit(&l->prog->sent, 1,
		                          memory_order_relaxed);
		if (now_s() > l->deadline) {
			p->failed += p->n - i - 1;
			break;
		}
	}
	rc = raftmq_wait_confirms(c, (int)((l->deadline - now_s()) * 1000) + 1);
	if (rc && !p->first_error) {
		p->first_error = rc;
		logf_err("raftmq-bench: confirms: %s\n", raftmq_errmsg(c));
	}
	if (rc == RAFTMQ_ETIMEOUT)
		p->failed += raftmq_pending(c);
out:
	free(body);
	raftmq_close(c);
	return NULL;
}

/* Counts one settled message and records its latency. With `stamp`, the
 * N-th message also stops the clock. Returns 1 for the N-th message. */
static int consumed_one(struct load *l, double lat_ms, int stamp)
{
	uint64_t n = atomic_fetch_add(&l->acked, 1);

	if (n < l->count)
		l->lat[n] = lat_ms;
	atomic_fetch_add_explicit(&l->prog->consumed, 1, memory_order_relaxed);
	if (n + 1 != l->count)
		return 0;
	if (stamp) {
		pthread_mutex_lock(&l->mu);
		l->t_last_ack = now_s();
		pthread_mutex_unlock(&l->mu);
	}
	return 1;
}

static int load_done(struct load *l)
{
	return atomic_load(&l->acked) >= l->count || atomic_load(&l->stop) ||
	       now_s() > l->deadline;
}

/* --ack-conns: acks on its own handle what the consumer hands over. */
static void *acker_main(void *arg)
{
	struct consumer *k = arg;
	struct load *l = k->l;
	struct raftmq *c = handle_new(l->servers, 0, 0);

	if (c == NULL)
		return NULL;
	for (;;) {
		uint32_t q;
		uint64_t s;
		double lat;
		int rc;

		pthread_mutex_lock(&k->mu);
		while (k->ring_n == 0 && !k->done)
			pthread_cond_wait(&k->cv, &k->mu);
		if (k->ring_n == 0) {
			pthread_mutex_unlock(&k->mu);
			break;
		}
		q = k->ring_q[k->ring_head];
		s = k->ring_s[k->ring_head];
		lat = k->ring_lat[k->ring_head];
		k->ring_head = (k->ring_head + 1) % k->ring_len;
		k->ring_n--;
		pthread_cond_broadcast(&k->cv);
		pthread_mutex_unlock(&k->mu);
		/* Once the run is over (or timed out) the rest is dropped:
		 * the queue is deleted next. */
		if (load_done(l))
			continue;
		rc = raftmq_ack(c, q, s);
		if (rc == 0)
			consumed_one(l, lat, 1);
		else if (!load_done(l))
			logf_err("raftmq-bench: ack: %s\n", raftmq_errmsg(c));
	}
	raftmq_close(c);
	return NULL;
}

static void ack_handoff(struct consumer *k, uint32_t q, uint64_t s, double lat)
{
	unsigned tail;

	pthread_mutex_lock(&k->mu);
	while (k->ring_n == k->ring_len)
		pthread_cond_wait(&k->cv, &k->mu);
	tail = (k->ring_head + k->ring_n) % k->ring_len;
	k->ring_q[tail] = q;
	k->ring_s[tail] = s;
	k->ring_lat[tail] = lat;
	k->ring_n++;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mu);
}

/* A task body is "A B"; the worker adds the numbers. */
static uint64_t run_task(const struct raftmq_delivery *d)
{
	unsigned long long a = 0, b = 0;

	if (sscanf(d->payload, "%llu %llu", &a, &b) != 2)
		return 0;
	return a + b;
}

static void *consumer_main(void *arg)
{
	struct consumer *k = arg;
	struct load *l = k->l;
	struct raftmq *c = handle_new(l->servers, 0, 0);
	int i, rc, n_ack = g_o.ack_conns;

	if (c == NULL)
		goto fail;
	for (i = 0; i < l->n_queues; i++) {
		rc = raftmq_consume(c, l->queues[i], l->prefetch, NULL);
		if (rc) {
			logf_err("raftmq-bench: consume %s: %s\n", l->queues[i],
			         raftmq_errmsg(c));
			goto fail;
		}
	}
	if (n_ack > 16)
		n_ack = 16;
	for (i = 0; i < n_ack; i++)
		if (pthread_create(&k->ackers[k->n_ackers], NULL, acker_main,
		                   k) == 0)
			k->n_ackers++;
	/* Registered: the main thread may start the producers. */
	atomic_store(&k->registered, 1);
	while (!load_done(l)) {
		struct raftmq_delivery *d;
		double lat = NAN;

		rc = raftmq_next_delivery(c, 100, &d);
		if (rc == RAFTMQ_ETIMEOUT)
			continue;
		if (rc) {
			logf_err("raftmq-bench: consumer %d: %s\n", k->index,
			         raftmq_errmsg(c));
			sleep_ms(50);
			continue;
		}
		if (d->redelivered)
			atomic_fetch_add(&l->redelivered, 1);
		if (l->tasks) {
			atomic_fetch_add(&l->task_sum, run_task(d));
			lat = (now_s() - l->t_start) * 1000.0;
		} else if (d->payload_len >= sizeof(double)) {
			double t;

			memcpy(&t, d->payload, sizeof(t));
			lat = (now_s() - t) * 1000.0;
		}
		if (k->n_ackers) {
			ack_handoff(k, d->queue_id, d->seq, lat);
		} else if (g_o.ack_sync) {
			rc = raftmq_ack(c, d->queue_id, d->seq);
			if (rc == 0)
				consumed_one(l, lat, 1);
			else if (!load_done(l))
				logf_err("raftmq-bench: ack: %s\n",
				         raftmq_errmsg(c));
		} else {
			/* The clock stops when the last message's ack is
			 * answered, i.e. committed, not merely sent. */
			rc = raftmq_ack_async(c, d->queue_id, d->seq);
			if (rc == 0 && consumed_one(l, lat, 0)) {
				rc = raftmq_wait_acks(c, -1);
				pthread_mutex_lock(&l->mu);
				l->t_last_ack = now_s();
				pthread_mutex_unlock(&l->mu);
			}
			if (rc && rc != RAFTMQ_ENOMSG)
				logf_err("raftmq-bench: ack: %s\n",
				         raftmq_errmsg(c));
		}
		raftmq_delivery_free(d);
	}
	pthread_mutex_lock(&k->mu);
	k->done = 1;
	pthread_cond_broadcast(&k->cv);
	pthread_mutex_unlock(&k->mu);
	for (i = 0; i < k->n_ackers; i++)
		pthread_join(k->ackers[i], NULL);
	if (!k->n_ackers && !g_o.ack_sync &&
	    raftmq_wait_acks(c, 2000) == RAFTMQ_ETIMEOUT)
		logf_err("raftmq-bench: consumer %d: acks unanswered\n",
		         k->index);
	raftmq_close(c);
	return NULL;
fail:
	atomic_store(&k->registered, 2);
	raftmq_close(c);
	return NULL;
}

/* What a load run measured. */
struct load_out {
	double seconds;    /* first send -> last confirm, or last ack */
	double msgs_per_s; /* count / seconds */
	double p50_ms, p99_ms;
	uint64_t failed;
	int first_error;
};

/* Runs `l` to completion. Returns 0 when every message was confirmed (and
 * consumed, with consumers). */
static int load_run(struct load *l, struct load_out *out)
{
	int i, nc = l->consumers, np = l->producers, rc = 0;
	uint64_t per, extra, next = 0, n_lat;
	double t_end = 0;

	memset(out, 0, sizeof(*out));
	out->p50_ms = out->p99_ms = NAN;
	if (np < 1)
		np = l->producers = 1;
	if (np > MAX_THREADS)
		np = l->producers = MAX_THREADS;
	if (nc > MAX_THREADS)
		nc = l->consumers = MAX_THREADS;
	l->t_send = calloc(l->count ? l->count : 1, sizeof(double));
	l->lat = calloc(l->count ? l->count : 1, sizeof(double));
	if (l->t_send == NULL || l->lat == NULL) {
		rc = RAFTMQ_ENOMEM;
		goto out;
	}
	atomic_store(&l->go, 0);
	atomic_store(&l->stop, 0);
	atomic_store(&l->acked, 0);
	atomic_store(&l->redelivered, 0);
	atomic_store(&l->task_sum, 0);
	pthread_mutex_init(&l->mu, NULL);
	l->t_last_ack = 0;
	l->deadline = now_s() + g_o.timeout_s;

	/* Consumers first: raftmq_consume() returns once registered. */
	for (i = 0; i < nc; i++) {
		struct consumer *k = &l->cons[i];

		memset(k, 0, sizeof(*k));
		k->l = l;
		k->index = i;
		pthread_mutex_init(&k->mu, NULL);
		pthread_cond_init(&k->cv, NULL);
		if (g_o.ack_conns > 0) {
			k->ring_len = l->prefetch ? l->prefetch : 1000;
			k->ring_q = calloc(k->ring_len, sizeof(*k->ring_q));
			k->ring_s = calloc(k->ring_len, sizeof(*k->ring_s));
			k->ring_lat = calloc(k->ring_len, sizeof(*k->ring_lat));
			if (!k->ring_q || !k->ring_s || !k->ring_lat) {
				free(k->ring_q);
				free(k->ring_s);
				free(k->ring_lat);
				rc = RAFTMQ_ENOMEM;
				nc = i;
				np = 0;
				atomic_store(&l->stop, 1);
				goto join;
			}
		}
		if (pthread_create(&k->thread, NULL, consumer_main, k)) {
			free(k->ring_q);
			free(k->ring_s);
			free(k->ring_lat);
			rc = RAFTMQ_ENOMEM;
			nc = i;
			np = 0;
			atomic_store(&l->stop, 1);
			goto join;
		}
	}
	for (i = 0; i < nc; i++)
		while (atomic_load(&l->cons[i].registered) == 0)
			sleep_ms(1);
	for (i = 0; i < nc; i++)
		if (atomic_load(&l->cons[i].registered) == 2) {
			rc = RAFTMQ_ECONNECT;
			atomic_store(&l->stop, 1);
			np = 0;
			goto join;
		}

	per = l->count / (uint64_t)np;
	extra = l->count % (uint64_t)np;
	for (i = 0; i < np; i++) {
		struct producer *p = &l->prod[i];

		memset(p, 0, sizeof(*p));
		p->l = l;
		p->index = i;
		p->first = next;
		p->n = per + ((uint64_t)i < extra);
		next += p->n;
		if (pthread_create(&p->thread, NULL, producer_main, p)) {
			rc = RAFTMQ_ENOMEM;
			np = i;
			atomic_store(&l->stop, 1);
			break;
		}
	}
	/* Let every producer connect before the clock starts. */
	sleep_ms(50);
	l->t_start = now_s();
	atomic_store(&l->go, 1);
join:
	for (i = 0; i < np; i++) {
		struct producer *p = &l->prod[i];

		pthread_join(p->thread, NULL);
		out->failed += p->failed;
		if (p->first_error && !out->first_error)
			out->first_error = p->first_error;
		if (p->last_confirm > t_end)
			t_end = p->last_confirm;
	}
	if (out->failed)
		atomic_store(&l->stop, 1);
	for (i = 0; i < nc; i++) {
		struct consumer *k = &l->cons[i];

		pthread_join(k->thread, NULL);
		free(k->ring_q);
		free(k->ring_s);
		free(k->ring_lat);
		pthread_mutex_destroy(&k->mu);
		pthread_cond_destroy(&k->cv);
	}
	if (rc)
		goto out;
	if (out->failed) {
		rc = out->first_error ? out->first_error : RAFTMQ_ETIMEOUT;
		goto out;
	}
	if (nc) {
		if (atomic_load(&l->acked) < l->count) {
			rc = RAFTMQ_ETIMEOUT;
			logf_err("raftmq-bench: only %llu of %llu consumed in "
			         "time\n",
			         (unsigned long long)atomic_load(&l->acked),
			         (unsigned long long)l->count);
			goto out;
		}
		t_end = l->t_last_ack;
	}
	out->seconds = t_end - l->t_start;
	out->msgs_per_s =
	    out->seconds > 0 ? (double)l->count / out->seconds : NAN;
	/* Publish-only: confirm latency; with consumers: publish ->
	 * delivery (with --ack-conns there is none). */
	n_lat = l->count;
	if (nc == 0) {
		memcpy(l->lat, l->t_send, sizeof(double) * l->count);
	} else if (l->tasks || isnan(l->lat[0])) {
		n_lat = 0;
	}
	if (n_lat) {
		out->p50_ms = percentile(l->lat, n_lat, 50);
		out->p99_ms = percentile(l->lat, n_lat, 99);
	}
out:
	free(l->t_send);
	free(l->lat);
	l->t_send = l->lat = NULL;
	return rc;
}

/* ------------------------------------------------------------------ */
/* Cluster helpers: status per node, pid files, the cluster script       */

/* The status of the node at `addr` ("host:port"), with short timeouts. */
static int node_status(const char *addr, struct raftmq_node_status *st)
{
	struct raftmq_options o;
	struct raftmq *c;
	int rc;

	raftmq_options_default(&o);
	o.servers = addr;
	o.client_name = "raftmq-bench";
	/* Short deadlines and a 20 ms retry backoff: W8 polls with this, and
	 * the library's own backoff would otherwise blur when the node came
	 * back by up to a second. */
	o.timeout_ms = 300;
	o.connect_timeout_ms = 200;
	o.backoff_max_ms = 20;
	c = raftmq_new(&o);
	if (c == NULL)
		return RAFTMQ_EARG;
	rc = raftmq_status(c, st);
	raftmq_close(c);
	return rc;
}

/* The members of the cluster, as any node of the server list sees them. */
static int cluster_members(struct raftmq_node_status *st)
{
	struct raftmq *c = handle_new(g_o.servers, 0, 5000);
	int rc;

	if (c == NULL)
		return RAFTMQ_EARG;
	rc = raftmq_status(c, st);
	if (rc)
		logf_err("raftmq-bench: status: %s\n", raftmq_errmsg(c));
	raftmq_close(c);
	return rc;
}

static const char *member_addr(const struct raftmq_node_status *st, uint64_t id)
{
	uint32_t i;

	for (i = 0; i < st->n_members; i++)
		if (st->members[i].id == id)
			return st->members[i].client_address;
	return NULL;
}

/* Polls every member until one reports itself leader. Returns the leader's
 * status in *out, or RAFTMQ_ETIMEOUT. */
static int find_leader(const struct raftmq_node_status *mem,
                       struct raftmq_node_status *out, double timeout_s)
{
	double until = now_s() + timeout_s;

	do {
		uint32_t i;

		for (i = 0; i < mem->n_members; i++) {
			if (node_status(mem->members[i].client_address, out))
				continue;
			if (strcmp(out->role, "leader") == 0)
				return 0;
		}
		sleep_ms(WAIT_STEP_MS);
	} while (now_s() < until);
	return RAFTMQ_ETIMEOUT;
}

/* Waits until every member has applied the leader's commit index. */
static int wait_all_applied(const struct raftmq_node_status *mem,
                            double timeout_s)
{
	struct raftmq_node_status ld, st;
	double until = now_s() + timeout_s;
	uint32_t i;

	if (find_leader(mem, &ld, timeout_s))
		return RAFTMQ_ETIMEOUT;
	for (i = 0; i < mem->n_members; i++) {
		while (node_status(mem->members[i].client_address, &st) ||
		       st.applied_index < ld.commit_index) {
			if (now_s() > until)
				return RAFTMQ_ETIMEOUT;
			sleep_ms(WAIT_STEP_MS);
		}
	}
	return 0;
}

static pid_t read_pid(uint64_t id)
{
	char path[1024];
	FILE *f;
	long pid = 0;

	if (g_o.pid_dir == NULL)
		return 0;
	snprintf(path, sizeof(path), "%s/n%" PRIu64 "/pid", g_o.pid_dir, id);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = 0;
	fclose(f);
	return (pid_t)pid;
}

/* VmRSS of `pid` in KiB, or -1. */
static long rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* SIGKILLs `pid` and waits until it is gone (at most 5 s). */
static int kill_wait(pid_t pid)
{
	int i;

	if (pid <= 0 || kill(pid, SIGKILL))
		return -1;
	for (i = 0; i < 500; i++) {
		if (kill(pid, 0) && errno == ESRCH)
			return 0;
		sleep_ms(10);
	}
	return -1;
}

static int script_ok(void)
{
	return g_o.script && access(g_o.script, X_OK) == 0;
}

/* Runs `<script> start N --dir <pid dir>`, its output on stderr. */
static int script_start(uint64_t id)
{
	char n[24];
	pid_t pid;
	int st;

	snprintf(n, sizeof(n), "%" PRIu64, id);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(2, 1);
		execl(g_o.script, g_o.script, "start", n, "--dir", g_o.pid_dir,
		      (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* Workloads                                                            */

static void qname(char *buf, const char *w, int run, int q)
{
	snprintf(buf, QNAME_LEN, "bench-%s-%d-%d-q%d", w, (int)getpid(), run,
	         q);
}

static char (*g_queues)[QNAME_LEN];

/* Declares `n` fresh queues for run `run` of workload `w`. */
static int queues_make(struct raftmq *c, const char *w, int run, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		qname(g_queues[i], w, run, i);
		if (queue_make(c, g_queues[i]))
			return -1;
	}
	return 0;
}

static void queues_drop(struct raftmq *c, int n)
{
	int i;

	for (i = 0; i < n; i++)
		queue_drop(c, g_queues[i]);
}

static uint64_t or_default(uint64_t v, uint64_t d)
{
	return v ? v : d;
}

/* A throughput run (W1, W2, W3, W5, sweeps): `nc` consumers, 0 for
 * publish-only. */
static int throughput(struct result *r, const char *w, int run, size_t size,
                      uint64_t count, int np, int nc, int nq, int tasks)
{
	struct raftmq *adm = handle_new(g_o.servers, 0, 30000);
	struct progress prog;
	struct load *l;
	struct load_out o;
	struct cpu_snap cpu;
	char label[64];
	int rc = -1;

	l = calloc(1, sizeof(*l));
	if (adm == NULL || l == NULL)
		goto out;
	if (queues_make(adm, w, run, nq))
		goto drop;
	l->servers = g_o.servers;
	l->queues = g_queues;
	l->n_queues = nq;
	l->size = size;
	l->count = count;
	l->window = g_o.window;
	/* Keep at most ~64 MiB of bodies in flight per producer. */
	if ((uint64_t)l->window * size > (64u << 20)) {
		l->window = (unsigned)((64u << 20) / size);
		if (l->window < 8)
			l->window = 8;
	}
	l->producers = np;
	l->consumers = nc;
	l->prefetch = g_o.prefetch;
	l->tasks = tasks;
	l->prog = &prog;
	snprintf(label, sizeof(label), "%s run %d/%d", w, run + 1, g_o.runs);
	progress_start(&prog, label, count);
	cpu_snap(&cpu);
	rc = load_run(l, &o);
	progress_stop(&prog);
	if (rc) {
		logf_err("raftmq-bench: %s run %d failed: %s (%llu not "
		         "confirmed)\n",
		         w, run + 1, raftmq_strerror(rc),
		         (unsigned long long)o.failed);
		goto drop;
	}
	put(r, "msgs_per_s", "throughput, msg/s", o.msgs_per_s);
	put(r, "seconds", "seconds", o.seconds);
	if (!isnan(o.p50_ms)) {
		put(r, "p50_ms",
		    nc ? "publish->delivery p50, ms"
		       : "publish->confirm p50, ms",
		    o.p50_ms);
		put(r, "p99_ms",
		    nc ? "publish->delivery p99, ms"
		       : "publish->confirm p99, ms",
		    o.p99_ms);
	}
	if (tasks && atomic_load(&l->task_sum) != count * (count - 1)) {
		/* Each task i computes i + i; the sum is count*(count-1)
		 * when every task was settled exactly once. */
		snprintf(r->note, sizeof(r->note),
		         "task sum %llu, expected %llu (redeliveries?)",
		         (unsigned long long)atomic_load(&l->task_sum),
		         (unsigned long long)(count * (count - 1)));
	}
	if (atomic_load(&l->redelivered))
		snprintf(r->note, sizeof(r->note), "%llu redeliveries",
		         (unsigned long long)atomic_load(&l->redelivered));
	put_cpu(r, &cpu);
drop:
	if (adm)
		queues_drop(adm, nq);
out:
	free(l);
	raftmq_close(adm);
	return rc;
}

static void result_init(struct result *r, const char *w, uint64_t count,
                        size_t size, int np, int nc, int nq)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->workload, sizeof(r->workload), "%s", w);
	r->count = count;
	r->size = size;
	r->producers = np;
	r->consumers = nc;
	r->queues = nq;
}

/* W1, W2, W3, W5: `nc` consumers (0 = publish only). */
static void w_throughput(const char *w, uint64_t def_count, int def_nc,
                         size_t def_size, int tasks)
{
	struct result r;
	uint64_t count = or_default(g_o.count, def_count);
	size_t size = g_o.size ? g_o.size : def_size;
	int np = g_o.producers ? g_o.producers : 1;
	int nc = def_nc ? (g_o.consumers ? g_o.consumers : def_nc) : 0;
	int nq = g_o.queues ? g_o.queues : 1;
	int i;

	result_init(&r, w, count, size, np, nc, nq);
	for (i = 0; i < g_o.runs; i++)
		throughput(&r, w, i, size, count, np, nc, nq, tasks);
	if (r.n_metrics == 0) {
		r.skipped = 1;
		snprintf(r.note, sizeof(r.note), "every run failed");
	}
	report(&r);
}

/* W4: one publish at a time, each waiting for its confirm. */
static void w4(void)
{
	uint64_t count = or_default(g_o.count, 2000), k;
	size_t size = g_o.size ? g_o.size : 100;
	struct result r;
	double *lat = calloc(count, sizeof(double));
	char *body = calloc(1, size + 1);
	int i;

	result_init(&r, "W4", count, size, 1, 0, 1);
	for (i = 0; i < g_o.runs && lat && body; i++) {
		struct raftmq *c = handle_new(g_o.servers, 0, 0);
		struct raftmq_message m;
		struct progress prog;
		struct cpu_snap cpu;
		double t0, t1;
		int rc = 0;

		if (c == NULL || queues_make(c, "w4", i, 1))
			goto next;
		memset(body, 'x', size);
		memset(&m, 0, sizeof(m));
		m.key = g_queues[0];
		m.payload = body;
		m.payload_len = size;
		/* One warm-up publish: connection set up, leader found. */
		rc = raftmq_publish(c, &m, NULL);
		if (rc)
			goto fail;
		progress_start(&prog, "W4", count);
		cpu_snap(&cpu);
		t0 = now_s();
		for (k = 0; k < count; k++) {
			double t = now_s();

			rc = raftmq_publish(c, &m, NULL);
			if (rc)
				break;
			lat[k] = (now_s() - t) * 1000.0;
			atomic_fetch_add(&prog.confirmed, 1);
		}
		t1 = now_s();
		progress_stop(&prog);
		if (rc)
			goto fail;
		put(&r, "p50_ms", "confirm latency p50, ms",
		    percentile(lat, count, 50));
		put(&r, "p99_ms", "confirm latency p99, ms",
		    percentile(lat, count, 99));
		put(&r, "msgs_per_s", "msg/s (one at a time)",
		    (double)count / (t1 - t0));
		put(&r, "seconds", "seconds", t1 - t0);
		put_cpu(&r, &cpu);
		goto drop;
	fail:
		logf_err("raftmq-bench: W4: %s\n", raftmq_errmsg(c));
	drop:
		queues_drop(c, 1);
	next:
		raftmq_close(c);
	}
	free(lat);
	free(body);
	if (r.n_metrics == 0) {
		r.skipped = 1;
		snprintf(r.note, sizeof(r.note), "every run failed");
	}
	report(&r);
}

/* Skips workload `w` when the pid files are not there. */
static int need_pids(struct result *r, const char *w)
{
	if (g_o.pid_dir)
		return 0;
	result_init(r, w, 0, 0, 0, 0, 0);
	r->skipped = 1;
	snprintf(r->note, sizeof(r->note),
	         "needs --pid-dir DIR (the local cluster's data dir)");
	report(r);
	return -1;
}

/* The steady stream of W6: synchronous publishes, success times kept. */
struct stream {
	const char *servers;
	const char *queue;
	atomic_int stop;
	double *t_ok;       /* when each successful publish returned */
	double *t_begun;    /* when it was called */
	atomic_size_t n_ok; /* t_ok[0..n_ok) are written */
	size_t cap;
	uint64_t errors;
	pthread_t thread;
};

static void *stream_main(void *arg)
{
	struct stream *s = arg;
	struct raftmq *c = handle_new(s->servers, 0, 20000);
	struct raftmq_message m;
	char body[100];

	if (c == NULL)
		return NULL;
	memset(body, 'x', sizeof(body));
	memset(&m, 0, sizeof(m));
	m.key = s->queue;
	m.payload = body;
	m.payload_len = sizeof(body);
	while (!atomic_load(&s->stop) && atomic_load(&s->n_ok) < s->cap) {
		size_t n = atomic_load(&s->n_ok);
		double t = now_s();

		if (raftmq_publish(c, &m, NULL) == 0) {
			s->t_begun[n] = t;
			s->t_ok[n] = now_s();
			atomic_store(&s->n_ok, n + 1);
		} else {
			s->errors++;
		}
	}
	raftmq_close(c);
	return NULL;
}

/* Waits for node `id` to serve and to apply the leader's commit index.
 * Sets *serve_s (first status answer) and returns the catch-up time, or
 * a negative value on timeout. */
static double wait_node_back(const struct raftmq_node_status *mem, uint64_t id,
                             uint64_t commit, double t0, double *serve_s,
                             double timeout_s)
{
	const char *addr = member_addr(mem, id);
	struct raftmq_node_status st;

	*serve_s = -1;
	while (addr && now_s() - t0 < timeout_s) {
		if (node_status(addr, &st) == 0) {
			if (*serve_s < 0)
				*serve_s = now_s() - t0;
			if (st.applied_index >= commit)
				return now_s() - t0;
		}
		sleep_ms(WAIT_STEP_MS);
	}
	return -1;
}

/* W6: a steady stream of publishes while the leader is SIGKILLed. */
static void w6(void)
{
	struct raftmq_node_status mem, ld;
	struct result r;
	int i;

	if (need_pids(&r, "W6"))
		return;
	result_init(&r, "W6", 0, 100, 1, 0, 1);
	for (i = 0; i < g_o.runs; i++) {
		struct raftmq *adm = handle_new(g_o.servers, 0, 30000);
		char servers[SERVERS_LEN];
		struct stream s;
		double t_kill, gap = 0, before = NAN, after = NAN, first = NAN;
		double t_end, serve, back;
		uint64_t leader;
		pid_t pid;
		size_t k, n_before = 0;
		uint32_t j;

		memset(&s, 0, sizeof(s));
		if (adm == NULL || cluster_members(&mem) ||
		    find_leader(&mem, &ld, 10) || queues_make(adm, "w6", i, 1))
			goto next;
		leader = ld.node_id;
		pid = read_pid(leader);
		if (pid <= 0) {
			snprintf(r.note, sizeof(r.note),
			         "no pid file for leader n%" PRIu64, leader);
			goto drop;
		}
		/* The stream talks to the leader first: the case where the
		 * client loses its own connection too. */
		snprintf(servers, sizeof(servers), "%s",
		         member_addr(&mem, leader));
		for (j = 0; j < mem.n_members; j++)
			if (mem.members[j].id != leader)
				snprintf(servers + strlen(servers),
				         sizeof(servers) - strlen(servers),
				         ",%s", mem.members[j].client_address);
		s.servers = servers;
		s.queue = g_queues[0];
		s.cap = 1000000;
		s.t_ok = calloc(s.cap, sizeof(double));
		s.t_begun = calloc(s.cap, sizeof(double));
		if (s.t_ok == NULL || s.t_begun == NULL ||
		    pthread_create(&s.thread, NULL, stream_main, &s))
			goto drop;
		sleep_ms(1000);
		n_before = s.n_ok;
		t_kill = now_s();
		if (kill_wait(pid)) {
			logf_err("raftmq-bench: W6: could not kill pid %d\n",
			         (int)pid);
		}
		logf_err("W6 run %d/%d: killed leader n%" PRIu64 " (pid %d)\n",
		         i + 1, g_o.runs, leader, (int)pid);
		/* Until 2 s after the first success of a publish begun
		 * after the kill, or 30 s. */
		t_end = t_kill + 30;
		k = n_before;
		while (now_s() < t_end) {
			size_t n = s.n_ok;

			/* A publish begun after the kill can only succeed
			 * through the new leader. */
			while (isnan(first) && k < n) {
				if (s.t_begun[k] > t_kill)
					first = s.t_ok[k];
				k++;
			}
			if (!isnan(first) && now_s() - first > 2.0)
				break;
			sleep_ms(50);
		}
		atomic_store(&s.stop, 1);
		pthread_join(s.thread, NULL);
		/* The longest silence between two successes around the
		 * kill is what the client saw. */
		for (k = 1; k < s.n_ok; k++) {
			if (s.t_ok[k] < t_kill - 0.2)
				continue;
			if (s.t_ok[k] - s.t_ok[k - 1] > gap) {
				gap = s.t_ok[k] - s.t_ok[k - 1];
				before = s.t_ok[k - 1];
				after = s.t_ok[k];
			}
		}
		if (isnan(before) || isnan(after) || isnan(first)) {
			logf_err("raftmq-bench: W6: no publish succeeded "
			         "after the kill within 30 s\n");
		} else {
			put(&r, "unavailable_ms",
			    "longest gap between successes, ms", gap * 1000);
			/* Not the first success after the kill: a reply the
			 * old leader sent just before dying can arrive
			 * microseconds after it. */
			put(&r, "kill_to_recovery_ms",
			    "kill -> end of that gap, ms",
			    (after - t_kill) * 1000);
			put(&r, "seconds", "unavailable, s", gap);
			put(&r, "msgs_per_s", "steady stream before, msg/s",
			    (double)n_before / 1.0);
		}
		/* Bring the old leader back, so the next run has three
		 * nodes again. */
		if (!script_ok()) {
			snprintf(r.note, sizeof(r.note),
			         "no cluster script (%s): n%" PRIu64
			         " not restarted, one run only",
			         g_o.script ? g_o.script : "-", leader);
			queues_drop(adm, 1);
			raftmq_close(adm);
			free(s.t_ok);
			free(s.t_begun);
			break;
		}
		if (script_start(leader)) {
			snprintf(r.note, sizeof(r.note),
			         "restart of n%" PRIu64 " failed", leader);
		} else {
			struct raftmq_node_status nl;

			if (find_leader(&mem, &nl, 10) == 0)
				back = wait_node_back(&mem, leader,
				                      nl.commit_index, now_s(),
				                      &serve, 60);
			else
				back = -1;
			if (back < 0)
				logf_err("raftmq-bench: W6: n%" PRIu64
				         " did not catch up in 60 s\n",
				         leader);
		}
	drop:
		queues_drop(adm, 1);
	next:
		free(s.t_ok);
		free(s.t_begun);
		raftmq_close(adm);
	}
	if (r.n_metrics == 0 && !r.note[0])
		snprintf(r.note, sizeof(r.note), "every run failed");
	if (r.n_metrics == 0)
		r.skipped = 1;
	report(&r);
}

/* Publishes `count` messages of `size` bytes into queue `q` (pipelined),
 * for W7 and W8. Returns 0 and the rate. */
static int fill(const char *q, uint64_t count, size_t size, const char *w,
                double *rate)
{
	struct progress prog;
	struct load *l = calloc(1, sizeof(*l));
	struct load_out o;
	char(*one)[QNAME_LEN] = calloc(1, QNAME_LEN);
	int rc = RAFTMQ_ENOMEM;

	if (l == NULL || one == NULL)
		goto out;
	snprintf(one[0], QNAME_LEN, "%s", q);
	l->servers = g_o.servers;
	l->queues = one;
	l->n_queues = 1;
	l->size = size;
	l->count = count;
	l->window = g_o.window;
	l->producers = g_o.producers ? g_o.producers : 1;
	l->prog = &prog;
	progress_start(&prog, w, count);
	rc = load_run(l, &o);
	progress_stop(&prog);
	*rate = o.msgs_per_s;
	if (rc)
		logf_err("raftmq-bench: %s: filling %s failed: %s\n", w, q,
		         raftmq_strerror(rc));
out:
	free(one);
	free(l);
	return rc;
}

/* W7: each node's RSS with `count` queued messages. */
static void w7(void)
{
	uint64_t count = or_default(g_o.count, 1000000);
	size_t size = g_o.size ? g_o.size : 100;
	struct raftmq_node_status mem;
	struct result r;
	int i;

	if (need_pids(&r, "W7"))
		return;
	result_init(&r, "W7", count, size, g_o.producers ? g_o.producers : 1, 0,
	            1);
	for (i = 0; i < g_o.runs; i++) {
		struct raftmq *adm = handle_new(g_o.servers, 0, 60000);
		double rate, max = 0, base_max = 0, t0;
		long base[RAFTMQ_MAX_MEMBERS];
		uint32_t j;

		if (adm == NULL || cluster_members(&mem) ||
		    queues_make(adm, "w7", i, 1))
			goto next;
		for (j = 0; j < mem.n_members; j++) {
			base[j] = rss_kib(read_pid(mem.members[j].id));
			if (base[j] / 1024.0 > base_max)
				base_max = base[j] / 1024.0;
		}
		t0 = now_s();
		if (fill(g_queues[0], count, size, "W7", &rate))
			goto drop;
		put(&r, "msgs_per_s", "fill rate, msg/s", rate);
		put(&r, "seconds", "fill seconds", now_s() - t0);
		if (wait_all_applied(&mem, 60))
			logf_err("raftmq-bench: W7: not every node caught "
			         "up in 60 s\n");
		for (j = 0; j < mem.n_members && j < 3; j++) {
			static const char *names[] = {"rss_n1_mb", "rss_n2_mb",
			                              "rss_n3_mb"};
			static const char *whats[] = {"RSS, 1st member, MB",
			                              "RSS, 2nd member, MB",
			                              "RSS, 3rd member, MB"};
			long kb = rss_kib(read_pid(mem.members[j].id));

			if (kb < 0)
				continue;
			put(&r, names[j], whats[j], kb / 1024.0);
			if (kb / 1024.0 > max)
				max = kb / 1024.0;
		}
		put(&r, "rss_max_mb", "RSS, largest node, MB", max);
		put(&r, "rss_before_max_mb", "RSS before the fill, max, MB",
		    base_max);
	drop : {
		int rc = raftmq_queue_purge(adm, g_queues[0], NULL);

		if (rc)
			logf_err("raftmq-bench: purge: %s\n",
			         raftmq_errmsg(adm));
	}
		queues_drop(adm, 1);
	next:
		raftmq_close(adm);
	}
	snprintf(r.note, sizeof(r.note),
	         "MB = MiB of VmRSS; 'before' = the same nodes just before "
	         "the fill");
	if (r.n_metrics == 0)
		r.skipped = 1;
	report(&r);
}

/* Waits until the queue `q` answers stats with `ready` messages through a
 * fresh handle. */
static int wait_queue_ready(const char *q, uint64_t ready, double t0,
                            double timeout_s)
{
	while (now_s() - t0 < timeout_s) {
		struct raftmq_options o;
		struct raftmq_queue_stats qs;
		struct raftmq *c;
		int rc;

		/* As in node_status(): poll finely, not at the library's
		 * backoff. */
		raftmq_options_default(&o);
		o.servers = g_o.servers;
		o.client_name = "raftmq-bench";
		o.timeout_ms = 300;
		o.connect_timeout_ms = 200;
		o.backoff_max_ms = 20;
		c = raftmq_new(&o);
		rc = c ? raftmq_queue_stats(c, q, &qs) : -1;

		raftmq_close(c);
		if (rc == 0 && qs.ready >= ready)
			return 0;
		sleep_ms(WAIT_STEP_MS);
	}
	return RAFTMQ_ETIMEOUT;
}

/* W8: seconds for a node holding `count` messages to serve again. */
static void w8(void)
{
	uint64_t count = or_default(g_o.count, 1000000);
	size_t size = g_o.size ? g_o.size : 100;
	struct raftmq_node_status mem, ld;
	struct result r;
	int i;

	if (need_pids(&r, "W8"))
		return;
	result_init(&r, "W8", count, size, g_o.producers ? g_o.producers : 1, 0,
	            1);
	if (!script_ok()) {
		r.skipped = 1;
		snprintf(r.note, sizeof(r.note),
		         "needs the cluster script (--script) to restart");
		report(&r);
		return;
	}
	for (i = 0; i < g_o.runs; i++) {
		struct raftmq *adm = handle_new(g_o.servers, 0, 60000);
		double rate, t0, serve = -1, back = -1;
		uint64_t victim = 0;
		uint32_t j;

		if (adm == NULL || cluster_members(&mem) ||
		    queues_make(adm, "w8", i, 1))
			goto next;
		if (fill(g_queues[0], count, size, "W8", &rate))
			goto drop;
		raftmq_close(adm);
		adm = NULL;
		if (wait_all_applied(&mem, 60) || find_leader(&mem, &ld, 10))
			goto drop;
		if (!g_o.restart_all) {
			/* One follower down and up: it replays its log (or
			 * snapshot) and must reach the leader's commit. */
			for (j = 0; j < mem.n_members; j++)
				if (mem.members[j].id != ld.node_id)
					victim = mem.members[j].id;
			if (kill_wait(read_pid(victim)))
				goto drop;
			t0 = now_s();
			if (script_start(victim))
				goto drop;
			back = wait_node_back(&mem, victim, ld.commit_index, t0,
			                      &serve, 120);
		} else {
			/* The whole cluster down and up: a leader must be
			 * elected and serve the queue with every message. */
			for (j = 0; j < mem.n_members; j++)
				kill_wait(read_pid(mem.members[j].id));
			t0 = now_s();
			for (j = 0; j < mem.n_members; j++)
				script_start(mem.members[j].id);
			if (wait_queue_ready(g_queues[0], count, t0, 120) == 0)
				back = now_s() - t0;
		}
		if (back < 0) {
			logf_err("raftmq-bench: W8: the node did not serve "
			         "again within 120 s\n");
			goto drop;
		}
		put(&r, "seconds",
		    g_o.restart_all ? "all restarted -> queue served, s"
		                    : "restart -> caught up, s",
		    back);
		if (serve >= 0)
			put(&r, "serve_s", "restart -> answers status, s",
			    serve);
		put(&r, "msgs_per_s", "messages recovered per second",
		    (double)count / back);
		if (!g_o.restart_all)
			snprintf(r.note, sizeof(r.note),
			         "restarted follower n%" PRIu64
			         " (SIGKILL, then start)",
			         victim);
	drop:
		if (adm == NULL)
			adm = handle_new(g_o.servers, 0, 60000);
		if (adm) {
			if (raftmq_queue_purge(adm, g_queues[0], NULL))
				logf_err("raftmq-bench: purge: %s\n",
				         raftmq_errmsg(adm));
			queues_drop(adm, 1);
		}
		/* Give a restarted node time to settle before the next
		 * run. */
		if (cluster_members(&mem) == 0)
			wait_all_applied(&mem, 60);
	next:
		raftmq_close(adm);
	}
	if (r.n_metrics == 0)
		r.skipped = 1;
	report(&r);
}

/* Sweeps of W1-style publishing against size, producers or queues. */
static void sweep(const char *what)
{
	static const size_t sizes[] = {100,   1024,   4096,  16384,
	                               65536, 131072, 262144};
	static const int producers[] = {1, 2, 4, 8, 16};
	static const int queues[] = {1, 2, 5, 10, 20, 50, 100};
	size_t n, k;

	if (strcmp(what, "size") == 0)
		n = sizeof(sizes) / sizeof(sizes[0]);
	else if (strcmp(what, "producers") == 0)
		n = sizeof(producers) / sizeof(producers[0]);
	else if (strcmp(what, "queues") == 0)
		n = sizeof(queues) / sizeof(queues[0]);
	else {
		logf_err("raftmq-bench: sweep size|producers|queues\n");
		exit(2);
	}
	for (k = 0; k < n; k++) {
		size_t size = g_o.size ? g_o.size : 100;
		uint64_t count = or_default(g_o.count, 100000);
		int np = g_o.producers ? g_o.producers : 1;
		int nq = g_o.queues ? g_o.queues : 1;
		char w[32];
		struct result r;
		int i;

		if (what[0] == 's') {
			size = sizes[k];
			/* At most ~64 MiB of bodies per run (the nodes keep
			 * recent log entries in memory), at least 200
			 * messages. */
			if (count * size > (64ull << 20))
				count = (64ull << 20) / size;
			if (count < 200)
				count = 200;
		} else if (what[0] == 'p') {
			np = producers[k];
		} else {
			nq = queues[k];
		}
		snprintf(w, sizeof(w), "sweep-%s", what);
		if (k == 0 && !g_o.json)
			printf("%s (W1-style publishing; label = the swept "
			       "value)\n",
			       w);
		result_init(&r, w, count, size, np, 0, nq);
		snprintf(r.label, sizeof(r.label), "%s=%s",
		         what[0] == 's'   ? "size"
		         : what[0] == 'p' ? "producers"
		                          : "queues",
		         "");
		snprintf(r.label + strlen(r.label),
		         sizeof(r.label) - strlen(r.label), "%llu",
		         (unsigned long long)(what[0] == 's'   ? size
		                              : what[0] == 'p' ? (size_t)np
		                                               : (size_t)nq));
		for (i = 0; i < g_o.runs; i++)
			throughput(&r, "sweep", i, size, count, np, 0, nq, 0);
		if (r.n_metrics) {
			const struct metric *m = metric_get(&r, "msgs_per_s");
			int j;

			/* The metrics live in a fixed array: `m` stays
			 * valid while put() adds one. */
			for (j = 0; m && j < m->n; j++)
				put(&r, "mib_per_s", "payload MiB/s",
				    m->v[j] * (double)size / (1 << 20));
		} else {
			r.skipped = 1;
			snprintf(r.note, sizeof(r.note), "every run failed");
		}
		report(&r);
	}
}

/* ------------------------------------------------------------------ */
/* Command line                                                         */

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: raftmq-bench [-s SERVERS] W1|...|W8|all|sweep "
	        "size|producers|queues [options]\n"
	        "  W1 publish with confirms (100,000 msgs, pipelined)\n"
	        "  W2 end to end, 1 producer + 1 consumer, ack each message\n"
	        "  W3 end to end, 1 producer + 4 consumers\n"
	        "  W4 one-at-a-time confirm latency (2,000 publishes)\n"
	        "  W5 10,000 tasks, 2 workers compute and ack\n"
	        "  W6 failover: SIGKILL of the leader (needs --pid-dir)\n"
	        "  W7 RSS per node with 1,000,000 queued 100-byte msgs "
	        "(--pid-dir)\n"
	        "  W8 restart of a node holding 1,000,000 msgs (--pid-dir)\n"
	        "options:\n"
	        "  -s, --servers LIST   host:port,... (default $RAFTMQ_SERVERS "
	        "or 7001-7003)\n"
	        "  -m, --size BYTES     message body size (100)\n"
	        "  -n, --count N        messages per run (per workload "
	        "default)\n"
	        "  -w, --window N       async publishes in flight per producer "
	        "(1000)\n"
	        "  -p, --producers N    producer threads (1)\n"
	        "  -c, --consumers N    consumer threads (W2 1, W3 4, W5 2)\n"
	        "  -q, --queues N       queues, published round robin (1)\n"
	        "  -r, --runs N         runs per figure; median [min-max] (3)\n"
	        "      --prefetch N     consumer prefetch (1000)\n"
	        "      --ack-sync       ack with raftmq_ack() (waits for each "
	        "commit)\n"
	        "                       instead of raftmq_ack_async()\n"
	        "      --ack-conns K    each consumer acks through K extra "
	        "handles\n"
	        "                       with raftmq_ack(), K acks in flight\n"
	        "      --pid-dir DIR    the local cluster's dir (DIR/nN/pid)\n"
	        "      --script PATH    deploy/local-cluster.sh, to restart "
	        "nodes\n"
	        "      --restart-all    W8: kill and start every node\n"
	        "      --backoff-max MS client reconnect/retry backoff cap "
	        "(library default)\n"
	        "      --timeout S      limit of one run, seconds (300)\n"
	        "      --json           one JSON object per workload\n"
	        "      --quiet          no progress line\n");
}

static long num_arg(const char *opt, const char *v, long lo, long hi)
{
	char *end;
	long n;

	if (v == NULL) {
		logf_err("raftmq-bench: %s needs a value\n", opt);
		exit(2);
	}
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || *end || n < lo || n > hi) {
		logf_err("raftmq-bench: %s: '%s' is not in %ld..%ld\n", opt, v,
		         lo, hi);
		exit(2);
	}
	return n;
}

static void run_workload(const char *w)
{
	if (strcasecmp(w, "W1") == 0)
		w_throughput("W1", 100000, 0, 100, 0);
	else if (strcasecmp(w, "W2") == 0)
		w_throughput("W2", 100000, 1, 100, 0);
	else if (strcasecmp(w, "W3") == 0)
		w_throughput("W3", 100000, 4, 100, 0);
	else if (strcasecmp(w, "W4") == 0)
		w4();
	else if (strcasecmp(w, "W5") == 0)
		w_throughput("W5", 10000, 2, 0, 1);
	else if (strcasecmp(w, "W6") == 0)
		w6();
	else if (strcasecmp(w, "W7") == 0)
		w7();
	else if (strcasecmp(w, "W8") == 0)
		w8();
}

int main(int argc, char **argv)
{
	const char *work = NULL, *sweep_what = NULL;
	static char script[1024];
	int i;

	memset(&g_o, 0, sizeof(g_o));
	g_o.window = 1000;
	g_o.runs = 3;
	g_o.prefetch = 1000;
	g_o.timeout_s = 300;
	snprintf(script, sizeof(script), "%s/deploy/local-cluster.sh",
	         RAFTMQ_SOURCE_DIR);
	g_o.script = script;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "-s") || !strcmp(a, "--servers")) {
			g_o.servers = v;
			i++;
		} else if (!strcmp(a, "-m") || !strcmp(a, "--size")) {
			g_o.size = (size_t)num_arg(a, v, 1, 64 << 20);
			i++;
		} else if (!strcmp(a, "-n") || !strcmp(a, "--count")) {
			g_o.count = (uint64_t)num_arg(a, v, 1, 100000000);
			i++;
		} else if (!strcmp(a, "-w") || !strcmp(a, "--window")) {
			g_o.window = (unsigned)num_arg(a, v, 1, 32768);
			i++;
		} else if (!strcmp(a, "-p") || !strcmp(a, "--producers")) {
			g_o.producers = (int)num_arg(a, v, 1, MAX_THREADS);
			i++;
		} else if (!strcmp(a, "-c") || !strcmp(a, "--consumers")) {
			g_o.consumers = (int)num_arg(a, v, 1, MAX_THREADS);
			i++;
		} else if (!strcmp(a, "-q") || !strcmp(a, "--queues")) {
			g_o.queues = (int)num_arg(a, v, 1, MAX_QUEUES);
			i++;
		} else if (!strcmp(a, "-r") || !strcmp(a, "--runs")) {
			g_o.runs = (int)num_arg(a, v, 1, MAX_RUNS);
			i++;
		} else if (!strcmp(a, "--prefetch")) {
			g_o.prefetch = (unsigned)num_arg(a, v, 1, 1000000);
			i++;
		} else if (!strcmp(a, "--ack-sync")) {
			g_o.ack_sync = 1;
		} else if (!strcmp(a, "--ack-conns")) {
			g_o.ack_conns = (int)num_arg(a, v, 0, 16);
			i++;
		} else if (!strcmp(a, "--backoff-max")) {
			g_o.backoff_max_ms = (int)num_arg(a, v, 1, 60000);
			i++;
		} else if (!strcmp(a, "--timeout")) {
			g_o.timeout_s = (int)num_arg(a, v, 1, 86400);
			i++;
		} else if (!strcmp(a, "--pid-dir")) {
			if (v == NULL)
				num_arg(a, v, 0, 0);
			g_o.pid_dir = v;
			i++;
		} else if (!strcmp(a, "--script")) {
			if (v == NULL)
				num_arg(a, v, 0, 0);
			g_o.script = v;
			i++;
		} else if (!strcmp(a, "--restart-all")) {
			g_o.restart_all = 1;
		} else if (!strcmp(a, "--json")) {
			g_o.json = 1;
		} else if (!strcmp(a, "--quiet")) {
			g_o.quiet = 1;
		} else if (work && !strcmp(work, "sweep") && !sweep_what &&
		           a[0] != '-') {
			sweep_what = a;
		} else if (!work && a[0] != '-') {
			work = a;
		} else {
			logf_err("raftmq-bench: unknown argument '%s'\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (work == NULL || (!strcmp(work, "sweep") && sweep_what == NULL)) {
		usage(stderr);
		return 2;
	}
	if (strcmp(work, "sweep") && strcasecmp(work, "all") &&
	    !(strlen(work) == 2 && (work[0] == 'W' || work[0] == 'w') &&
	      work[1] >= '1' && work[1] <= '8')) {
		logf_err("raftmq-bench: unknown workload '%s'\n", work);
		usage(stderr);
		return 2;
	}
	if (sweep_what && strcmp(sweep_what, "size") &&
	    strcmp(sweep_what, "producers") && strcmp(sweep_what, "queues")) {
		logf_err("raftmq-bench: sweep size|producers|queues\n");
		return 2;
	}
	g_queues = calloc(MAX_QUEUES, QNAME_LEN);
	if (g_queues == NULL)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	if (!g_o.json)
		print_table_header();
	if (!strcmp(work, "sweep")) {
		sweep(sweep_what);
	} else if (!strcasecmp(work, "all")) {
		static const char *all[] = {"W1", "W2", "W3", "W4",
		                            "W5", "W6", "W7", "W8"};

		for (i = 0; i < 8; i++)
			run_workload(all[i]);
	} else {
		run_workload(work);
	}
	free(g_queues);
	return 0;
}
