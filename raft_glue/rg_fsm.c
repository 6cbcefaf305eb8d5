/* raft_glue/rg_fsm: the raft_fsm callbacks that drive fsm/. */
#include <stdio.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <uv.h>

#include "rg_fsm.h"
#include "rg_log.h"

#if !defined(RAFT_VERSION_NUMBER) || RAFT_VERSION_NUMBER < 2201
#error "raft >= 0.22.1 is required (0.15 has safety bugs, see docs/raft.md)"
#endif

#define RG_FSM_OF(raft_fsm) ((struct rg_fsm *)(raft_fsm)->data)

/* Trailing entries kept whatever their size, so that a follower that is a
 * few entries behind needs no snapshot. */
#define RG_MIN_TRAILING 16

/* Runs for every committed command entry, on every node, in log order (also
 * during replay at start). A non-zero return would make raft stop applying
 * at this entry for good, so business errors and even undecodable bytes
 * return 0: fsm/ reports them as results and leaves the state unchanged,
 * which every node does identically.
 *
 * `*result` reaches the leader's apply callback only after later entries may
 * have been applied too (docs/raft.md, N3), so we pass nothing through it: the
 * proposer learns its outcome from the sink during this call. */
static int rg_fsm__apply(struct raft_fsm *rf, const struct raft_buffer *buf,
                         void **result)
{
	struct rg_fsm *f = RG_FSM_OF(rf);
	int rv;

	*result = NULL;
	if (f->skip_apply_at != 0 && f->n_applied + 1 == f->skip_apply_at) {
		/* Test-only fault 2: this replica silently misses one entry,
		 * which the divergence detector must find. */
		rg__log(2, "test fault: entry %llu not applied",
		        (unsigned long long)f->skip_apply_at);
		f->n_applied++;
		return 0;
	}
	rv = fsm_apply_entry(f->fsm, buf->base, buf->len, f->sink);
	if (fsm_failed(f->fsm)) {
		/* The state of this replica may now differ from the others'
		 * (DESIGN invariant 8): stop before it serves or votes with
		 * it. On restart it is rebuilt from the snapshot and log. */
		rg__log(3, "out of memory inside apply: stopping this node so "
		           "that it cannot diverge");
		abort();
	}
	f->n_applied++;
	f->since_bytes += buf->len;
	f->since_entries++;
	if (f->owner != NULL && !f->early &&
	    f->since_bytes >= f->log_budget / 4 * 3) {
		/* raft checks the threshold after this round of applies. */
		raft_set_snapshot_threshold(f->owner, 1);
		f->early = true;
	}
	if (rv < 0) {
		/* Logged, but rate-limited (the 1st..10th, then every power
		 * of two): a misbehaving proposer must not flood the log. */
		f->n_malformed++;
		if (f->n_malformed <= 10 ||
		    (f->n_malformed & (f->n_malformed - 1)) == 0)
			rg__log(2,
			        "malformed entry (%zu bytes) applied as a "
			        "no-op (%llu so far)",
			        buf->len, (unsigned long long)f->n_malformed);
	}
	return 0;
}

/* A snapshot was taken or restored: the bytes since the last one start over
 * at 0, and a threshold lowered to force it goes back to the configured one.
 */
static void rg_fsm__log_restarted(struct rg_fsm *f)
{
	f->since_bytes = 0;
	f->since_entries = 0;
	if (f->early) {
		raft_set_snapshot_threshold(f->owner, f->threshold);
		f->early = false;
	}
}

/* raft calls this with everything applied; the write happens on the thread
 * pool while applies go on, so the buffer must be an independent copy, which
 * fsm_snapshot() gives us. With version 2 raft frees nothing: finalize does. */
static int rg_fsm__snapshot(struct raft_fsm *rf, struct raft_buffer *bufs[],
                            unsigned *n_bufs)
{
	struct rg_fsm *f = RG_FSM_OF(rf);
	struct raft_buffer *b;
	void *data = NULL;
	size_t len = 0;
	uint64_t t0 = uv_hrtime();
	int rv;

	b = malloc(sizeof *b);
	if (b == NULL)
		return RAFT_NOMEM;
	rv = fsm_snapshot(f->fsm, &data, &len);
	if (rv != 0) {
		free(b);
		return RAFT_NOMEM;
	}
	rg__log(1,
	        "snapshot of %zu bytes taken in %llu ms (%llu bytes of log "
	        "since the last)",
	        len, (unsigned long long)((uv_hrtime() - t0) / 1000000),
	        (unsigned long long)f->since_bytes);
	b->base = data;
	b->len = len;
	*bufs = b;
	*n_bufs = 1;
	f->n_snapshots++;
	if (f->owner != NULL) {
		uint64_t mean = f->since_entries > 0
		                    ? f->since_bytes / f->since_entries
		                    : 1;
		uint64_t keep = f->log_budget / 4 / (mean > 0 ? mean : 1);

		if (keep > f->trailing)
			keep = f->trailing;
		if (keep < RG_MIN_TRAILING)
			keep = RG_MIN_TRAILING;
		/* It takes effect for this snapshot: raft reads it when the
		 * snapshot has been written. */
		raft_set_snapshot_trailing(f->owner, (unsigned)keep);
	}
	rg_fsm__log_restarted(f);
	return 0;
}

static int rg_fsm__snapshot_finalize(struct raft_fsm *rf,
                                     struct raft_buffer *bufs[],
                                     unsigned *n_bufs)
{
	unsigned i;

	(void)rf;
	if (*bufs == NULL)
		return 0;
	for (i = 0; i < *n_bufs; i++)
		free((*bufs)[i].base);
	free(*bufs);
	*bufs = NULL;
	*n_bufs = 0;
#ifdef __GLIBC__
	/* raft has just dropped the entries before the trailing ones. Most
	 * lie inside the heap, where glibc keeps freed pages mapped: hand
	 * them back, or the RSS stays at its high-water mark. */
	malloc_trim(0);
#endif
	return 0;
}

/* Inside raft_start(), and on a follower after an installed snapshot was
 * persisted. A snapshot that fsm/ rejects (damaged on disk, or written by a
 * newer version) fails the start cleanly: raft_start() returns the error and
 * the node exits with a message naming its data dir. On the install path raft
 * has already reset its log, so a failure there would leave the node silently
 * diverged (docs/raft.md, "failed restore after a snapshot install"): we stop
 * the process instead. */
static int rg_fsm__restore(struct raft_fsm *rf, struct raft_buffer *buf)
{
	struct rg_fsm *f = RG_FSM_OF(rf);
	int rv;

	rv = fsm_restore(f->fsm, buf->base, buf->len);
	if (rv != 0 && !f->started) {
		rg__log(3, "snapshot restore failed at start (%s, %zu bytes)",
		        fsm_status_str(rv), buf->len);
		return RAFT_CORRUPT; /* raft frees the buffer */
	}
	if (rv != 0) {
		rg__log(3,
		        "installed snapshot restore failed (%s, %zu bytes); "
		        "aborting",
		        fsm_status_str(rv), buf->len);
		abort();
	}
	rg__log(1, "restored snapshot of %zu bytes", buf->len);
	rg_fsm__log_restarted(f);
	raft_free(buf->base);
	f->n_restores++;
	return 0;
}

void rg_fsm_init(struct rg_fsm *f, struct fsm *fsm, const struct fsm_sink *sink)
{
	*f = (struct rg_fsm){0};
	f->fsm = fsm;
	f->sink = sink;
	f->raft.version = 2;
	f->raft.data = f;
	f->raft.apply = rg_fsm__apply;
	f->raft.snapshot = rg_fsm__snapshot;
	f->raft.restore = rg_fsm__restore;
	f->raft.snapshot_finalize = rg_fsm__snapshot_finalize;
	f->raft.snapshot_async = NULL;
}

void rg_fsm_bound_log(struct rg_fsm *f, struct raft *r, size_t budget,
                      unsigned threshold, unsigned trailing)
{
	f->owner = budget > 0 ? r : NULL;
	f->log_budget = budget;
	f->threshold = threshold;
	f->trailing = trailing;
	raft_set_snapshot_threshold(r, threshold);
	raft_set_snapshot_trailing(r, trailing);
}
