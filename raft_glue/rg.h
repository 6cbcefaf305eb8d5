/* raft_glue: the only module that includes raft.h. It runs one raft 0.22.1
 * server (libuv I/O, TCP transport with TCP_NODELAY) whose state machine is
 * fsm/, proposes entries for the node, and reports leadership changes.
 *
 * Threading: every function must be called on the loop thread; every
 * callback runs on it. No callback is invoked from inside the call that
 * registered it (libuv's rule). */
#ifndef RAFTMQ_RG_H
#define RAFTMQ_RG_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "../fsm/fsm.h"

enum rg_status_code {
	RG_OK = 0,
	RG_NOTLEADER =
	    1,          /* this node does not lead (or transfers leadership) */
	RG_NOSPACE = 2, /* raft refused for lack of disk space; retryable */
	RG_BUSY = 3,    /* too many entries in flight; retry after a callback */
	RG_UNKNOWN = 4, /* leadership lost: the entry may or may not commit */
	RG_TOOBIG = 5,  /* entry larger than max_entry */
	RG_NOMEM = 6,
	RG_ERROR = 7,  /* init/start failure; rg_errmsg() tells more */
	RG_CORRUPT = 8 /* rg_start: the data dir holds damaged data */
};

const char *rg_strerror(int code);

/* Bytes of the `errmsg` buffer of rg_start(). */
#define RG_ERRMSG_SIZE 256

/* Sends raft_glue's log lines (level 0 debug, 1 info, 2 warn, 3 error; text
 * without a trailing newline) to `fn`; NULL restores the default, stderr. */
void rg_set_log(void (*fn)(int level, const char *msg));

enum rg_role {
	RG_ROLE_UNAVAILABLE = 0,
	RG_ROLE_FOLLOWER = 1,
	RG_ROLE_CANDIDATE = 2,
	RG_ROLE_LEADER = 3
};

/* "unavailable", "follower", "candidate" or "leader" (logs, STATUS). */
const char *rg_role_name(int role);

struct rg_member {
	uint64_t id; /* >= 1 */
	const char
	    *raft_address; /* host:port, never changes once bootstrapped */
};

struct rg_config {
	uint64_t id;     /* this node's id, one of members */
	const char *dir; /* data directory, must exist */
	const char
	    *bind_address; /* optional "0.0.0.0:port"; NULL = own address */
	const struct rg_member *members;
	unsigned n_members;
	unsigned election_timeout;   /* ms, default 1000 */
	unsigned heartbeat_timeout;  /* ms, default 100 */
	unsigned snapshot_threshold; /* entries, default 4096 */
	unsigned snapshot_trailing;  /* entries, default 8192 */
	size_t log_memory;     /* bytes of raft log in memory, 0 = entry counts
	                          only; default 40 MiB (rg_fsm_bound_log) */
	unsigned max_inflight; /* proposals in flight, default 16 */
	size_t max_entry;      /* bytes per entry, default 1 MiB */
	struct fsm_config fsm; /* unused: the limits are replicated state */
	uint64_t test_skip_apply; /* TEST ONLY (fault 2): this process skips
	                             applying its N-th applied entry, which
	                             corrupts its replica; 0 = never */
};

/* Fills the numeric defaults; id, dir and members stay for the caller. */
void rg_config_default(struct rg_config *c);

struct rg_callbacks {
	void *data;
	/* Every applied entry, on every node, in log order (also while the log
	 * is replayed at start). The glue passes `sink` to fsm_apply_entry; the
	 * callback receives the same results/effects through it. Set by node.
	 */
	struct fsm_sink sink;
	/* Role, term or leader changed. `ready` becomes 1 once, after an
	 * election, when this leader has applied every entry of its log (its
	 * own barrier included): only then may it serve. */
	void (*role)(void *data, int role, uint64_t term, uint64_t leader_id,
	             int ready);
};

struct rg; /* opaque */

/* Initialises, bootstraps (first start) and starts the raft server on
 * `loop`. The fsm is borrowed and must outlive rg. Returns 0, or RG_ERROR
 * (RG_CORRUPT when the data dir holds damaged data) with a message in
 * `errmsg` (RG_ERRMSG_SIZE bytes). After a failure past raft_init()
 * (e.g. the port is in use) raft still closes asynchronously: run the loop
 * until it is idle before uv_loop_close(); no callback fires. */
int rg_start(struct rg **out, uv_loop_t *loop, const struct rg_config *c,
             struct fsm *fsm, const struct rg_callbacks *cbs, char *errmsg);

/* Proposes one entry (an encoded fsm batch, see fsm/codec.h). The bytes are
 * copied. On RG_OK `cb` fires exactly once later: RG_OK = committed and
 * applied on this node (the results went through the sink during apply),
 * RG_UNKNOWN = leadership lost, outcome unknown. Any other return value
 * means it was not proposed and `cb` never fires. */
int rg_propose(struct rg *r, const void *buf, size_t len,
               void (*cb)(void *arg, int status), void *arg);

/* Read barrier: `cb` fires once later with RG_OK when every entry
 * committed before the call has been applied on this node while it still
 * led (a raft barrier entry was committed in its term), or RG_UNKNOWN when
 * leadership was lost first. Other return values: not submitted (no cb).
 * Serve reads from the FSM only after RG_OK, so that a deposed leader never
 * answers from stale state. */
int rg_barrier(struct rg *r, void (*cb)(void *arg, int status), void *arg);

/* Hands leadership to another up-to-date voter (raft_transfer), e.g. when
 * this replica found itself diverged. Returns RG_OK (the transfer runs; the
 * role callback reports the result), RG_NOTLEADER or RG_ERROR. */
int rg_transfer(struct rg *r);

/* Number of proposals in flight, and the bound. */
unsigned rg_inflight(const struct rg *r);
unsigned rg_max_inflight(const struct rg *r);

/* Tells raft_glue that the process of node `leader_id` is gone: a TCP
 * connection to it was closed by its kernel (a crash or SIGKILL closes every
 * socket of the process at once). When this node is a follower of that
 * leader, its election timeout drops to two heartbeats until a leader is
 * known again, so that a new leader is elected in a few hundred ms instead
 * of one to two election timeouts. Safe on a false alarm: heartbeats from a
 * live leader keep resetting the timer, and pre-vote protects the term. A
 * paused or partitioned leader closes nothing and is found by the normal
 * timeout. No-op in every other case. */
void rg_leader_gone(struct rg *r, uint64_t leader_id);

struct rg_info {
	uint64_t id;
	int role;
	uint64_t term;
	uint64_t leader_id; /* 0 = unknown */
	uint64_t commit_index;
	uint64_t applied_index;
	uint64_t last_index;
	int ready;
};

void rg_info(const struct rg *r, struct rg_info *out);

/* Stops the server: when leader, first hands leadership to another voter
 * (bounded by the election timeout), then closes raft. Pending proposals
 * get RG_UNKNOWN. `cb` fires once when every handle is closed; then free
 * nothing else: rg is gone. */
void rg_stop(struct rg *r, void (*cb)(void *arg), void *arg);

#endif /* RAFTMQ_RG_H */
