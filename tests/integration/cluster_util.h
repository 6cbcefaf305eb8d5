/* tests/integration/cluster_util: start, kill and query raftmq-node
 * processes on 127.0.0.1 for integration tests. */
#ifndef RAFTMQ_TEST_CLUSTER_UTIL_H
#define RAFTMQ_TEST_CLUSTER_UTIL_H

#include <stdint.h>
#include <sys/types.h>

#define CLUSTER_N 3

struct cluster {
	char dir[256]; /* temp dir with n1..n3 data and logs */
	int base_port; /* raft ports base+1.., client ports base+11.. */
	pid_t pid[CLUSTER_N + 1];
	char client_addr[CLUSTER_N + 1][32];
	char members[512];
	const char *extra[16]; /* extra flags for every node */
	int n_extra;
	/* per node (index 1..3): extra flags, environment ("NAME=value"),
	 * and the binary (NULL = RAFTMQ_NODE_BIN) */
	const char *node_extra[CLUSTER_N + 1][8];
	int n_node_extra[CLUSTER_N + 1];
	const char *node_env[CLUSTER_N + 1][4];
	int n_node_env[CLUSTER_N + 1];
	const char *bin[CLUSTER_N + 1];
};

/* Creates the temp dir and port plan (no process yet). */
void cluster_init(struct cluster *c, const char *name);
/* Starts node i (1..3). */
void cluster_start(struct cluster *c, int i);
void cluster_start_all(struct cluster *c);
/* Sends `sig` to node i and waits for it to exit (bounded: SIGKILL after
 * 20 s). */
void cluster_stop(struct cluster *c, int i, int sig);
void cluster_stop_all(struct cluster *c, int sig);
/* Waits up to timeout_ms for node i to exit by itself; returns its wait
 * status, or -1 when it is still running (or was not started). */
int cluster_wait_exit(struct cluster *c, int i, int timeout_ms);
/* Removes the temp dir (after stopping every node). */
void cluster_destroy(struct cluster *c);
/* Id of the node that node i believes leads (0 = none / unreachable). Also
 * returns i's role in *role when not NULL ("leader", ...), and applied index.
 */
uint64_t cluster_leader_seen_by(struct cluster *c, int i, char *role,
                                uint64_t *applied, uint64_t *commit);
/* Waits (up to timeout_ms) until every running node agrees on one leader
 * that says it leads; returns its id or 0. */
int cluster_wait_leader(struct cluster *c, int timeout_ms);
/* STATUS of node i into *out (the struct of client/raftmq.h). Returns 0
 * or the client's error code. */
struct raftmq_node_status;
int cluster_status(struct cluster *c, int i, struct raftmq_node_status *out);
/* Servers string of the given node. */
const char *cluster_addr(struct cluster *c, int i);
/* Prints the tail of every node's log to stderr (for failures). */
void cluster_dump_logs(struct cluster *c);
/* 1 when node i's log contains `text`. */
int cluster_log_contains(struct cluster *c, int i, const char *text);
uint64_t now_ms(void);
void sleep_ms(int ms);

#endif
