/* test_fsm_fsm: whole-machine tests: determinism of a long random command
 * stream fed as encoded entries (with a snapshot/restore midway), a model
 * check against a simple reference, and garbage entries. */
#include <stdio.h>
#include <time.h>

#include "test_fsm_util.h"
#include "fsm/codec.h"

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 2685821657736338717ull;
}

static uint32_t rnd(uint64_t *s, uint32_t n)
{
	return (uint32_t)(rng_next(s) % n);
}

/* ---- Determinism. */

struct ring {
	uint32_t qid[256];
	uint64_t seq[256];
	uint32_t n;
	uint64_t results[FSM_STATUS_MAX];
	uint64_t effects;
};

static void ring_effect(void *data, const struct fsm_delivery *d)
{
	struct ring *r = data;

	r->effects++;
	if (d->type != FSM_EFFECT_DELIVER)
		return;
	r->qid[r->n % 256] = d->queue_id;
	r->seq[r->n % 256] = d->msg.seq;
	r->n++;
}

static void ring_result(void *data, const struct fsm_result *res)
{
	struct ring *r = data;

	if (res->status >= 0 && res->status < FSM_STATUS_MAX)
		r->results[res->status]++;
}

static const char *const qnames[] = {"q0", "q1", "q2", "q3", "q4"};

struct gen {
	uint64_t rng;
	uint64_t clock;
	uint64_t consumers;
	char payload[64];
	char id[16];
};

static void gen_declares(struct fsm_batch *b)
{
	struct fsm_cmd c;
	struct fsm_queue_opts o[5];
	int i;

	memset(o, 0, sizeof(o));
	o[0].ack_timeout = 200;
	o[1].max_length = 50;
	o[1].message_ttl = 300;
	o[1].ack_timeout = 100;
	o[2].overflow = FSM_OVERFLOW_DROP_HEAD;
	o[2].max_length = 30;
	o[2].dlq = "q3";
	o[2].max_deliveries = 3;
	o[2].ack_timeout = 150;
	o[3].delay = 50;
	o[3].dedup_window = 1000;
	o[3].max_length = 400;
	o[4].auto_delete = 1;
	o[4].exclusive = 1;
	o[4].dlq = "q0";
	o[4].max_deliveries = 2;
	for (i = 0; i < 5; i++) {
		c = cmd_of(FSM_CMD_QUEUE_DECLARE);
		c.time = 1;
		c.u.declare.name = qnames[i];
		c.u.declare.name_len = 2;
		c.u.declare.opts = o[i];
		c.u.declare.dlq_len = o[i].dlq ? 2 : 0;
		assert_int_equal(fsm_batch_add(b, &c), 0);
	}
	for (i = 0; i < 2; i++) {
		c = cmd_of(FSM_CMD_TOPIC_DECLARE);
		c.time = 1;
		c.u.topic.name = i ? "t1" : "t0";
		c.u.topic.name_len = 2;
		c.u.topic.kind = i ? FSM_TOPIC_TOPIC : FSM_TOPIC_FANOUT;
		assert_int_equal(fsm_batch_add(b, &c), 0);
	}
}

static void gen_bind(struct gen *g, struct fsm_batch *b, uint8_t type)
{
	static const char *const keys[] = {"a.*", "#", "a.b", ""};
	struct fsm_cmd c = cmd_of(type);
	uint32_t k = rnd(&g->rng, 4);

	c.time = g->clock;
	c.u.bind.topic = rnd(&g->rng, 2) ? "t1" : "t0";
	c.u.bind.topic_len = 2;
	c.u.bind.queue = qnames[rnd(&g->rng, 5)];
	c.u.bind.queue_len = 2;
	c.u.bind.key = keys[k];
	c.u.bind.key_len = (uint32_t)strlen(keys[k]);
	assert_int_equal(fsm_batch_add(b, &c), 0);
}

static void gen_cmd(struct gen *g, const struct ring *r, struct fsm_batch *b)
{
	static const char *const rkeys[] = {"a.b", "a.c", "x", "a.b.c"};
	uint32_t p = rnd(&g->rng, 1000);
	struct fsm_cmd c;
	const char *q = qnames[rnd(&g->rng, 5)];

	g->clock += rnd(&g->rng, 8);
	memset(&c, 0, sizeof(c));
	c.time = rnd(&g->rng, 50) == 0 ? g->clock - 5 : g->clock;
	c.session = 1 + rnd(&g->rng, 8);
	c.req_id = rng_next(&g->rng) % 100000;
	if (p < 350) {
		uint32_t t = rnd(&g->rng, 10);

		c.type = FSM_CMD_PUBLISH;
		if (t < 2) {
			c.u.publish.topic = t ? "t1" : "t0";
			c.u.publish.topic_len = 2;
			c.u.publish.key = rkeys[rnd(&g->rng, 4)];
		} else {
			c.u.publish.topic = "";
			c.u.publish.key = q;
		}
		c.u.publish.key_len = (uint32_t)strlen(c.u.publish.key);
		if (rnd(&g->rng, 2)) {
			snprintf(g->id, sizeof(g->id), "id%u",
			         rnd(&g->rng, 500));
			c.u.publish.msg.id = g->id;
			c.u.publish.msg.id_len = (uint32_t)strlen(g->id);
		}
		c.u.publish.msg.payload = g->payload;
		c.u.publish.msg.payload_len = rnd(&g->rng, 40);
		if (rnd(&g->rng, 10) == 0)
			c.u.publish.msg.ttl = 1 + rnd(&g->rng, 400);
		if (rnd(&g->rng, 20) == 0)
			c.u.publish.msg.delay = 1 + rnd(&g->rng, 100);
		if (rnd(&g->rng, 10) == 0) {
			static const struct fsm_header h[2] = {
			    {"k1", 2, "v1", 2}, {"k2", 2, "", 0}};

			c.u.publish.msg.headers = h;
			c.u.publish.msg.n_headers = 2;
			c.u.publish.msg.type = "t";
			c.u.publish.msg.type_len = 1;
		}
	} else if (p < 400) {
		c.type = FSM_CMD_CONSUME;
		c.u.consume.queue = q;
		c.u.consume.queue_len = 2;
		c.u.consume.prefetch = 1 + rnd(&g->rng, 5);
		g->consumers++;
	} else if (p < 430) {
		c.type = FSM_CMD_CANCEL;
		c.u.cancel.consumer =
		    1 + rnd(&g->rng, (uint32_t)g->consumers + 1);
	} else if (p < 500) {
		c.type = FSM_CMD_GET;
		c.u.get.queue = q;
		c.u.get.queue_len = 2;
		c.u.get.max = 1 + rnd(&g->rng, 5);
		c.u.get.timeout = rnd(&g->rng, 2) ? 0 : 50 + rnd(&g->rng, 250);
	} else if (p < 820) {
		uint32_t k = r->n ? rnd(&g->rng, r->n < 256 ? r->n : 256) : 0;

		c.type = p < 700   ? FSM_CMD_ACK
		         : p < 780 ? FSM_CMD_NACK
		                   : FSM_CMD_EXTEND;
		c.u.settle.queue_id = r->n ? r->qid[k] : 1;
		c.u.settle.seq = r->n ? r->seq[k] : 1;
		c.u.settle.mode = (uint8_t)rnd(&g->rng, 2);
		c.u.settle.timeout = rnd(&g->rng, 300);
	} else if (p < 930) {
		c.type = FSM_CMD_TICK;
		g->clock += rnd(&g->rng, 100);
		c.time = g->clock;
	} else if (p < 960) {
		c.type = FSM_CMD_SESSION_DOWN;
		c.u.session_down.session = 1 + rnd(&g->rng, 8);
	} else if (p < 964) {
		c.type = FSM_CMD_LEADER_ELECTED;
		c.u.leader_elected.term = g->clock;
		c.u.leader_elected.node = 1;
	} else if (p < 975) {
		c.type = FSM_CMD_QUEUE_PURGE;
		c.u.qdelete.name = q;
		c.u.qdelete.name_len = 2;
	} else if (p < 980) {
		/* Delete a queue; the next batch's declares bring it back. */
		c.type = FSM_CMD_QUEUE_DELETE;
		c.u.qdelete.name = q;
		c.u.qdelete.name_len = 2;
		c.u.qdelete.if_empty = (uint8_t)rnd(&g->rng, 2);
	} else if (p < 990) {
		gen_bind(g, b, FSM_CMD_BIND);
		return;
	} else if (p < 995) {
		gen_bind(g, b, FSM_CMD_UNBIND);
		return;
	} else {
		c.type = FSM_CMD_TICK;
		g->clock += 1000;
		c.time = g->clock;
	}
	assert_int_equal(fsm_batch_add(b, &c), 0);
}

static void test_determinism(void **state)
{
	const char *env = getenv("FSM_DET_N");
	uint64_t total = env ? strtoull(env, NULL, 10) : 200000, done = 0;
	struct fsm *a = fsm_new(NULL), *bf = fsm_new(NULL), *cf = NULL;
	struct ring ra, rc;
	struct fsm_sink sa = {&ra, ring_result, ring_effect};
	struct fsm_sink sc = {&rc, ring_result, ring_effect};
	struct fsm_batch batch;
	struct gen g;
	double secs = 0;
	uint64_t batches = 0, checks = 0;
	int i;

	(void)state;
	memset(&ra, 0, sizeof(ra));
	memset(&rc, 0, sizeof(rc));
	memset(&g, 0, sizeof(g));
	env = getenv("FSM_DET_SEED"); /* fixed unless asked otherwise */
	g.rng = env ? strtoull(env, NULL, 10) * 2 + 1 : 0x9e3779b97f4a7c15ull;
	g.clock = 10;
	for (i = 0; i < 64; i++)
		g.payload[i] = (char)('a' + i % 26);
	fsm_batch_init(&batch);
	while (done < total) {
		const void *buf;
		size_t len;
		uint32_t n = 1 + rnd(&g.rng, 32), k;
		struct timespec t0, t1;

		fsm_batch_reset(&batch);
		if (batches % 50 == 0)
			gen_declares(&batch);
		if (batches % 20 == 7) {
			/* What a leader does: its own (applied, digest)
			 * between entries, checked by every replica. */
			struct fsm_cmd ck = cmd_of(FSM_CMD_CHECK);

			ck.time = g.clock;
			ck.u.check.applied = fsm_applied(a);
			ck.u.check.digest = fsm_digest(a);
			assert_int_equal(fsm_batch_add(&batch, &ck), 0);
			checks++;
		}
		for (k = 0; k < n; k++)
			gen_cmd(&g, &ra, &batch);
		assert_int_equal(fsm_batch_finish(&batch, &buf, &len), 0);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		assert_int_equal(fsm_apply_entry(a, buf, len, &sa),
		                 (int)batch.count);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		secs += (double)(t1.tv_sec - t0.tv_sec) +
		        (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		assert_int_equal(fsm_apply_entry(bf, buf, len, NULL),
		                 (int)batch.count);
		if (cf != NULL)
			assert_int_equal(fsm_apply_entry(cf, buf, len, &sc),
			                 (int)batch.count);
		done += batch.count;
		batches++;
		if (batches % 500 == 0)
			assert_int_equal(fsm_check(a), 0);
		if (cf == NULL && done >= total / 2) {
			size_t sl, sl2;
			void *s1 = snap(a, &sl), *s2;

			cf = fsm_new(NULL);
			assert_int_equal(fsm_restore(cf, s1, sl), 0);
			assert_int_equal(fsm_check(cf), 0);
			s2 = snap(cf, &sl2);
			assert_int_equal(sl, sl2);
			assert_memory_equal(s1, s2, sl);
			assert_int_equal(fsm_next_deadline(cf),
			                 fsm_next_deadline(a));
			free(s1);
			free(s2);
			rc = ra;
		}
	}
	fsm_batch_close(&batch);
	assert_int_equal(fsm_check(a), 0);
	assert_int_equal(fsm_check(bf), 0);
	assert_int_equal(fsm_check(cf), 0);
	assert_true(snap_equal(a, bf));
	assert_true(snap_equal(a, cf));
	/* The digest is the same on every replica, whether its caller
	 * listens to effects (a, cf) or not (bf), restored midway or not;
	 * every CHECK passed. */
	assert_true(fsm_applied(a) == fsm_applied(bf) &&
	            fsm_applied(a) == fsm_applied(cf));
	assert_true(fsm_applied(a) == done);
	assert_true(fsm_digest(a) == fsm_digest(bf) &&
	            fsm_digest(a) == fsm_digest(cf));
	assert_true(checks > 0);
	assert_int_equal(ra.results[FSM_EDIVERGED], 0);
	assert_int_equal(fsm_diverged(a) | fsm_diverged(bf) | fsm_diverged(cf),
	                 0);
	assert_int_equal(fsm_failed(a) | fsm_failed(bf) | fsm_failed(cf), 0);
	assert_int_equal(ra.effects, rc.effects);
	assert_memory_equal(ra.results, rc.results, sizeof(ra.results));
	printf("determinism: %llu commands in %llu entries, %.0f commands/s "
	       "(apply only); %llu effects; ok %llu enomsg %llu efull %llu\n",
	       (unsigned long long)done, (unsigned long long)batches,
	       (double)done / secs, (unsigned long long)ra.effects,
	       (unsigned long long)ra.results[FSM_OK],
	       (unsigned long long)ra.results[FSM_ENOMSG],
	       (unsigned long long)ra.results[FSM_EFULL]);
	/* The stream must have exercised the interesting paths. */
	assert_true(ra.results[FSM_ENOMSG] > 0);
	assert_true(ra.results[FSM_EBUSY] > 0);
	assert_true(ra.results[FSM_ENOCONSUMER] > 0);
	assert_true(ra.effects > total / 4);
	fsm_free(a);
	fsm_free(bf);
	fsm_free(cf);
}

/* ---- Model test: one queue, checked against a linear reference. */

enum { M_READY, M_FLIGHT, M_ACKED, M_DL, M_EXPIRED, M_DROPPED, M_PURGED };

#define MAXM 4096

struct model {
	struct {
		uint8_t st;
		uint32_t dc;
		uint64_t deadline, expires;
		uint64_t owner_c, owner_s; /* consumer (0 = get), session */
	} m[MAXM + 1];
	uint64_t n; /* last seq */
	struct {
		uint64_t id, session;
		uint32_t prefetch;
		int live;
	} c[256];
	uint32_t nc;
	uint64_t now;
	uint64_t ack_timeout;
	uint32_t max_len, max_deliv;
};

static uint64_t model_count(const struct model *md, uint8_t st)
{
	uint64_t i, k = 0;

	for (i = 1; i <= md->n; i++)
		k += md->m[i].st == st;
	return k;
}

static uint64_t lowest_ready(const struct model *md)
{
	uint64_t i;

	for (i = 1; i <= md->n; i++)
		if (md->m[i].st == M_READY)
			return i;
	return 0;
}

static uint32_t inflight_of(const struct model *md, uint64_t cid)
{
	uint64_t i;
	uint32_t k = 0;

	for (i = 1; i <= md->n; i++)
		k += md->m[i].st == M_FLIGHT && md->m[i].owner_c == cid;
	return k;
}

/* A message leaves an owner: READY again, or dead-lettered. */
static void model_return(struct model *md, uint64_t s)
{
	md->m[s].st = md->m[s].dc >= md->max_deliv ? M_DL : M_READY;
}

static void model_time(struct model *md, uint64_t t)
{
	uint64_t i;

	if (t > md->now)
		md->now = t;
	for (i = 1; i <= md->n; i++) {
		if (md->m[i].st != M_READY && md->m[i].st != M_FLIGHT)
			continue;
		if (md->m[i].expires && md->m[i].expires <= md->now)
			md->m[i].st = M_EXPIRED;
		else if (md->m[i].st == M_FLIGHT &&
		         md->m[i].deadline <= md->now)
			model_return(md, i);
	}
}

/* Checks the deliveries the FSM reported against the model. */
static void model_deliveries(struct model *md, struct rec *r, uint32_t from,
                             uint64_t timeout)
{
	uint32_t i;

	for (i = from; i < r->n_eff; i++) {
		uint64_t s = r->eff[i].seq;

		if (r->eff[i].type != FSM_EFFECT_DELIVER)
			continue;
		assert_int_equal(s, lowest_ready(md));
		md->m[s].st = M_FLIGHT;
		md->m[s].dc++;
		assert_int_equal(r->eff[i].delivery_count, md->m[s].dc);
		md->m[s].owner_c = r->eff[i].consumer;
		md->m[s].owner_s = r->eff[i].session;
		md->m[s].deadline =
		    md->now + (r->eff[i].consumer ? md->ack_timeout : timeout);
		if (r->eff[i].consumer) {
			uint32_t k;

			for (k = 0; k < md->nc; k++)
				if (md->c[k].id == r->eff[i].consumer)
					break;
			assert_true(k < md->nc && md->c[k].live);
			assert_true(inflight_of(md, md->c[k].id) <=
			            md->c[k].prefetch);
		}
	}
}

static void model_compare(struct fsm *f, const struct model *md)
{
	struct fsm_queue_stats s = qstats(f, "m");
	uint32_t k;
	int credit = 0;

	assert_int_equal(s.ready, model_count(md, M_READY));
	assert_int_equal(s.in_flight, model_count(md, M_FLIGHT));
	assert_int_equal(s.acked, model_count(md, M_ACKED));
	assert_int_equal(s.dead_lettered, model_count(md, M_DL));
	assert_int_equal(s.expired, model_count(md, M_EXPIRED));
	assert_int_equal(s.dropped, model_count(md, M_DROPPED));
	assert_int_equal(s.published, md->n);
	assert_int_equal(s.last_seq, md->n);
	/* Work conserving: no READY message while a consumer has credit. */
	for (k = 0; k < md->nc; k++)
		if (md->c[k].live &&
		    inflight_of(md, md->c[k].id) < md->c[k].prefetch)
			credit = 1;
	assert_false(credit && s.ready > 0);
}

static void model_run(uint64_t seed, uint32_t steps)
{
	struct fsm *f = fsm_new(NULL);
	struct model *md = calloc(1, sizeof(*md));
	struct rec *r = rec_new();
	struct fsm_queue_opts o = {0};
	uint64_t rng = seed, tm = 1000;
	uint32_t i;

	assert_non_null(md);
	o.ack_timeout = md->ack_timeout = 50;
	o.max_deliveries = md->max_deliv = 3;
	o.max_length = md->max_len = 20;
	o.overflow = FSM_OVERFLOW_DROP_HEAD;
	test_time = tm;
	assert_int_equal(declare(f, "m", &o, r), FSM_OK);
	md->now = tm;
	for (i = 0; i < steps && md->n < MAXM - 1; i++) {
		uint32_t p = rnd(&rng, 100), from;
		uint64_t timeout = 0;
		int rc;

		tm += rnd(&rng, 10);
		/* Timers first, in their own tick, so that the command below
		 * starts from a settled state. */
		r->n_eff = 0;
		model_time(md, tm);
		assert_int_equal(tick(f, tm, r), FSM_OK);
		model_deliveries(md, r, 0, 0);
		model_compare(f, md);
		test_time = tm;
		r->n_eff = 0;
		from = 0;
		if (p < 35) {
			uint64_t ttl =
			    rnd(&rng, 5) == 0 ? 1 + rnd(&rng, 200) : 0;
			uint64_t total = model_count(md, M_READY) +
			                 model_count(md, M_FLIGHT);

			rc = publish_full(f, "", "m", "", "x", ttl, 0, r);
			if (total + 1 > md->max_len &&
			    model_count(md, M_READY) == 0) {
				assert_int_equal(rc, FSM_EFULL);
				continue;
			}
			assert_int_equal(rc, FSM_OK);
			while (total + 1 > md->max_len) {
				md->m[lowest_ready(md)].st = M_DROPPED;
				total--;
			}
			md->n++;
			assert_int_equal(last_res(r)->u.publish.seq, md->n);
			md->m[md->n].st = M_READY;
			md->m[md->n].expires = ttl ? md->now + ttl : 0;
		} else if (p < 45) {
			uint32_t max = 1 + rnd(&rng, 4);
			uint64_t ready = model_count(md, M_READY);

			timeout = 10 + rnd(&rng, 100);
			assert_int_equal(get_msgs(f, "m", 1 + rnd(&rng, 3), max,
			                          timeout, 7, r),
			                 FSM_OK);
			assert_int_equal(last_res(r)->u.get.count,
			                 ready < max ? ready : max);
		} else if (p < 52 && md->nc < 256) {
			uint64_t sess = 1 + rnd(&rng, 3);
			uint32_t pf = 1 + rnd(&rng, 3);

			assert_int_equal(consume(f, "m", sess, pf, r), FSM_OK);
			md->c[md->nc].id = last_res(r)->u.consume.consumer;
			md->c[md->nc].session = sess;
			md->c[md->nc].prefetch = pf;
			md->c[md->nc].live = 1;
			md->nc++;
			from = 0;
		} else if (p < 56 && md->nc > 0) {
			uint32_t k = rnd(&rng, md->nc);
			struct fsm_cmd c = cmd_of(FSM_CMD_CANCEL);
			uint64_t s;

			c.u.cancel.consumer = md->c[k].id;
			c.session = md->c[k].session;
			rc = apply(f, &c, r);
			assert_int_equal(rc, md->c[k].live ? FSM_OK
			                                   : FSM_ENOCONSUMER);
			if (md->c[k].live)
				for (s = 1; s <= md->n; s++)
					if (md->m[s].st == M_FLIGHT &&
					    md->m[s].owner_c == md->c[k].id)
						model_return(md, s);
			md->c[k].live = 0;
		} else if (p < 59) {
			uint64_t sess = 1 + rnd(&rng, 3), s;
			uint32_t k;
			struct fsm_cmd c = cmd_of(FSM_CMD_SESSION_DOWN);

			c.u.session_down.session = sess;
			assert_int_equal(apply(f, &c, r), FSM_OK);
			/* Consumers in id order, then the gets. */
			for (k = 0; k < md->nc; k++) {
				if (!md->c[k].live || md->c[k].session != sess)
					continue;
				for (s = 1; s <= md->n; s++)
					if (md->m[s].st == M_FLIGHT &&
					    md->m[s].owner_c == md->c[k].id)
						model_return(md, s);
				md->c[k].live = 0;
			}
			for (s = 1; s <= md->n; s++)
				if (md->m[s].st == M_FLIGHT &&
				    md->m[s].owner_c == 0 &&
				    md->m[s].owner_s == sess)
					model_return(md, s);
		} else if (p < 85 && md->n > 0) {
			uint64_t s =
			    md->n -
			    rnd(&rng, md->n < 40 ? (uint32_t)md->n : 40);
			uint8_t st = md->m[s].st;
			uint32_t kind = rnd(&rng, 4);

			if (kind < 2) {
				rc = settle(f, FSM_CMD_ACK, 1, s, 0, 0, r);
				if ((st == M_READY || st == M_FLIGHT) &&
				    md->m[s].dc > 0) {
					assert_int_equal(rc, FSM_OK);
					md->m[s].st = M_ACKED;
				} else {
					assert_int_equal(rc, FSM_ENOMSG);
				}
			} else if (kind == 2) {
				uint8_t mode = (uint8_t)rnd(&rng, 2);

				rc = settle_as(
				    f, st == M_FLIGHT ? md->m[s].owner_s : 1,
				    FSM_CMD_NACK, 1, s, mode, 0, r);
				if (st == M_FLIGHT) {
					assert_int_equal(rc, FSM_OK);
					if (mode == FSM_NACK_DEADLETTER)
						md->m[s].st = M_DL;
					else
						model_return(md, s);
				} else {
					assert_int_equal(rc, FSM_ENOMSG);
				}
			} else {
				uint64_t t = 1 + rnd(&rng, 100);

				rc = settle_as(
				    f, st == M_FLIGHT ? md->m[s].owner_s : 1,
				    FSM_CMD_EXTEND, 1, s, 0, t, r);
				if (st == M_FLIGHT) {
					assert_int_equal(rc, FSM_OK);
					md->m[s].deadline = md->now + t;
				} else {
					assert_int_equal(rc, FSM_ENOMSG);
				}
			}
		} else if (p < 87) {
			struct fsm_cmd c = cmd_of(FSM_CMD_QUEUE_PURGE);
			uint64_t s, k = 0;

			c.u.qdelete.name = "m";
			c.u.qdelete.name_len = 1;
			assert_int_equal(apply(f, &c, r), FSM_OK);
			for (s = 1; s <= md->n; s++)
				if (md->m[s].st == M_READY) {
					md->m[s].st = M_PURGED;
					k++;
				}
			assert_int_equal(last_res(r)->u.removed.removed, k);
		} else {
			tm += rnd(&rng, 60);
			continue;
		}
		model_deliveries(md, r, from, timeout);
		model_compare(f, md);
	}
	/* Every published message is in exactly one final or live state. */
	{
		uint64_t sum = 0;
		uint8_t st;

		for (st = M_READY; st <= M_PURGED; st++)
			sum += model_count(md, st);
		assert_int_equal(sum, md->n);
		printf("model: %llu published: ready %llu flight %llu acked "
		       "%llu dead %llu expired %llu dropped %llu purged %llu\n",
		       (unsigned long long)md->n,
		       (unsigned long long)model_count(md, M_READY),
		       (unsigned long long)model_count(md, M_FLIGHT),
		       (unsigned long long)model_count(md, M_ACKED),
		       (unsigned long long)model_count(md, M_DL),
		       (unsigned long long)model_count(md, M_EXPIRED),
		       (unsigned long long)model_count(md, M_DROPPED),
		       (unsigned long long)model_count(md, M_PURGED));
	}
	test_time = 1000;
	fsm_free(f);
	free(md);
	free(r);
}

static void test_model(void **state)
{
	uint64_t seeds[] = {1, 2, 3, 0xdeadbeef, 42};
	uint32_t i;

	(void)state;
	if (getenv("FSM_MODEL_SEED") != NULL) {
		model_run(strtoull(getenv("FSM_MODEL_SEED"), NULL, 10) *
		                  0x9e3779b97f4a7c15ull +
		              1,
		          20000);
		return;
	}
	for (i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
		model_run(seeds[i] * 0x9e3779b97f4a7c15ull + 1, 3000);
}

/* ---- Garbage entries leave the state unchanged. */

static void count_result(void *data, const struct fsm_result *r)
{
	uint32_t *n = data;

	n[0]++;
	n[1] = (uint32_t)r->status;
}

static void test_garbage_entries(void **state)
{
	struct fsm *f = fsm_new(NULL);
	struct fsm_batch b;
	const void *buf;
	size_t len, l0, l1;
	uint64_t rng = 7;
	uint32_t cnt[2];
	struct fsm_sink s = {cnt, count_result, NULL};
	char *copy;
	int i;

	(void)state;
	fsm_batch_init(&b);
	gen_declares(&b);
	assert_int_equal(fsm_batch_finish(&b, &buf, &len), 0);
	assert_int_equal(fsm_apply_entry(f, buf, len, NULL), 7);
	copy = malloc(len + 64);
	assert_non_null(copy);
	for (i = 0; i < 3000; i++) {
		void *s0 = snap(f, &l0), *s1;
		size_t n = len;
		int rc;

		memcpy(copy, buf, len);
		switch (i % 3) {
		case 0: /* random bytes with a valid-looking header */
			for (size_t k = 16; k < len; k++)
				copy[k] = (char)rng_next(&rng);
			break;
		case 1: /* truncation */
			n = rnd(&rng, (uint32_t)len);
			break;
		default: /* bit flips */
			copy[rnd(&rng, (uint32_t)len)] ^=
			    (char)(1u << rnd(&rng, 8));
			break;
		}
		cnt[0] = cnt[1] = 0;
		rc = fsm_apply_entry(f, copy, n, &s);
		s1 = snap(f, &l1);
		if (rc < 0) {
			assert_int_equal(rc, -1);
			assert_int_equal(cnt[0], 1);
			assert_int_equal(cnt[1], FSM_EMALFORMED);
			assert_int_equal(l0, l1);
			assert_memory_equal(s0, s1, l0);
		}
		assert_int_equal(fsm_check(f), 0);
		free(s0);
		free(s1);
	}
	cnt[0] = 0;
	assert_int_equal(fsm_apply_entry(f, NULL, 0, &s), -1);
	assert_int_equal(cnt[0], 1);
	free(copy);
	fsm_batch_close(&b);
	fsm_free(f);
}

static void test_status_str(void **state)
{
	(void)state;
	assert_string_equal(fsm_status_str(FSM_OK), "ok");
	assert_string_equal(fsm_status_str(-1), "unknown status");
	assert_string_equal(fsm_status_str(FSM_STATUS_MAX), "unknown status");
	for (int i = 0; i < FSM_STATUS_MAX; i++)
		assert_non_null(fsm_status_str(i));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_status_str),
	    cmocka_unit_test(test_garbage_entries),
	    cmocka_unit_test(test_model),
	    cmocka_unit_test(test_determinism),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
