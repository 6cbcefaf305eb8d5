/* raft_glue/rg_fsm: fsm/ as a raft_fsm (internal: rg.c and tests only). */
#ifndef RAFTMQ_RG_FSM_H
#define RAFTMQ_RG_FSM_H

#include <stdbool.h>
#include <stdint.h>

#include <raft.h>

#include "../fsm/fsm.h"

/* Adapter between raft's FSM interface (version 2) and `struct fsm`. Give
 * `&f->raft` to raft_init() or raft_fixture_grow(); the struct must not move
 * while raft uses it.
 *
 * apply:    fsm_apply_entry(fsm, entry, sink); always returns 0 (a malformed
 *           entry yields an FSM_EMALFORMED result and is counted and logged),
 *           `*result` = NULL: outcomes travel through the sink. When fsm/
 *           reports an allocation failure inside apply (fsm_failed), the
 *           process aborts: this replica may now differ from the others
 *           and must not go on (DESIGN invariant 8).
 * snapshot: fsm_snapshot() into one malloc'd buffer, freed by finalize.
 * restore:  fsm_restore(); a failure fails raft_start() with RAFT_CORRUPT
 *           while `started` is false, and is fatal (abort) afterwards, when
 *           raft has already replaced its log for an installed snapshot.
 */
struct rg_fsm {
	struct raft_fsm raft;
	struct fsm *fsm;             /* borrowed */
	const struct fsm_sink *sink; /* borrowed; NULL = no callbacks */
	uint64_t n_applied;          /* entries applied */
	uint64_t n_malformed;        /* entries fsm/ could not decode */
	uint64_t n_snapshots;        /* snapshots taken */
	uint64_t n_restores;         /* snapshots restored */
	bool started;                /* raft_start() has returned */
	/* Test-only fault (rg_config.test_skip_apply): the N-th entry
	 * applied by this process is skipped, 0 = never. */
	uint64_t skip_apply_at;

	/* Byte bound on raft's in-memory log, see rg_fsm_bound_log(). */
	struct raft *owner; /* NULL: entry counts only */
	size_t log_budget;  /* bytes */
	unsigned threshold; /* configured entry counts, upper bounds */
	unsigned trailing;
	uint64_t since_bytes; /* entries applied since the last snapshot */
	uint64_t since_entries;
	bool early; /* threshold lowered to snapshot now */
};

void rg_fsm_init(struct rg_fsm *f, struct fsm *fsm,
                 const struct fsm_sink *sink);

/* raft keeps every entry since the snapshot before last in memory, and with
 * entry counts alone that is unbounded in bytes (4096 + 8192 entries of up
 * to 1 MiB). With a budget, three quarters of it bound the bytes applied
 * between two snapshots (a snapshot is taken early when they reach it), and
 * the last quarter the trailing entries kept after a snapshot for followers
 * that lag (their count is derived from the mean entry size since the
 * previous snapshot). Every snapshot serialises the whole state on the loop,
 * so the larger share goes to the interval between them. `threshold` and
 * `trailing` remain the upper bounds in entries. budget 0 = counts only. */
void rg_fsm_bound_log(struct rg_fsm *f, struct raft *r, size_t budget,
                      unsigned threshold, unsigned trailing);

#endif /* RAFTMQ_RG_FSM_H */
