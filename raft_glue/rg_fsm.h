/* raft_glue/rg_fsm: fsm/ as a raft_fsm (internal: rg.c and tests only). */
#ifndef RAFTMQ_RG_FSM_H
#define RAFTMQ_RG_FSM_H

#include <stdint.h>

#include <raft.h>

#include "../fsm/fsm.h"

/* Adapter between raft's FSM interface (version 2) and `struct fsm`. Give
 * `&f->raft` to raft_init() or raft_fixture_grow(); the struct must not move
 * while raft uses it.
 *
 * apply:    fsm_apply_entry(fsm, entry, sink); always returns 0 (a malformed
 *           entry yields an FSM_EMALFORMED result and is counted and logged),
 *           `*result` = NULL: outcomes travel through the sink.
 * snapshot: fsm_snapshot() into one malloc'd buffer, freed by finalize.
 * restore:  fsm_restore(); failure is fatal (abort), as raft cannot recover.
 */
struct rg_fsm {
	struct raft_fsm raft;
	struct fsm *fsm;             /* borrowed */
	const struct fsm_sink *sink; /* borrowed; NULL = no callbacks */
	uint64_t n_applied;          /* entries applied */
	uint64_t n_malformed;        /* entries fsm/ could not decode */
	uint64_t n_snapshots;        /* snapshots taken */
	uint64_t n_restores;         /* snapshots restored */
};

void rg_fsm_init(struct rg_fsm *f, struct fsm *fsm,
                 const struct fsm_sink *sink);

#endif /* RAFTMQ_RG_FSM_H */
