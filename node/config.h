/* node/config: the node's configuration from flags and RAFTMQ_* variables. */
#ifndef RAFTMQ_NODE_CONFIG_H
#define RAFTMQ_NODE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "../fsm/fsm.h"

#define NODE_MAX_MEMBERS 9
#define NODE_ADDR_MAX    256
/* Bytes of the `err` buffer of node_config_load() and friends. */
#define NODE_ERR_SIZE 512

struct node_member {
	uint64_t id;
	char raft_address[NODE_ADDR_MAX];   /* host:port, raft traffic */
	char client_address[NODE_ADDR_MAX]; /* host:port, clients and proxies */
};

struct node_config {
	uint64_t id;
	char data_dir[1024];
	struct node_member members[NODE_MAX_MEMBERS];
	unsigned n_members;
	char listen[NODE_ADDR_MAX];    /* client listener; default own client
	                                  address */
	char raft_bind[NODE_ADDR_MAX]; /* raft listener bind; "" = raft address
	                                */
	char source_addr[NODE_ADDR_MAX]; /* outgoing bind for proxy links; "" =
	                                    any */
	int log_level;
	unsigned election_timeout;  /* ms */
	unsigned heartbeat_timeout; /* ms */
	unsigned snapshot_threshold;
	unsigned snapshot_trailing;
	size_t log_memory;     /* bytes, 0 = entry counts only */
	unsigned max_inflight; /* raft entries in flight */
	size_t max_entry; /* bytes per raft entry: = fsm.max_entry, the seed of
	                     the replicated limit */
	size_t max_frame; /* bytes per client frame */
	unsigned max_sessions;     /* client connections */
	unsigned hello_timeout;    /* ms a connection may take to say HELLO */
	unsigned client_heartbeat; /* ms, largest heartbeat interval granted
	                              to clients (and asked by proxy links);
	                              0 = none */
	size_t max_session_output; /* bytes queued to one client before it is
	                              cut off */
	/* The state machine limits from the flags: only the seed of the
	 * cluster's replicated configuration (the first leader proposes
	 * them); apply and admission read fsm_config_get() instead. */
	struct fsm_config fsm;
	int fault;      /* test-only fault switch, see node_config_usage() */
	uint64_t given; /* bit i: option i was set by a flag or variable */
};

/* Fills defaults, then reads RAFTMQ_* environment variables, then the flags.
 * Returns 0, 1 when --help was asked (usage printed), or -1 with a message
 * in `err` (NODE_ERR_SIZE bytes). */
int node_config_load(struct node_config *c, int argc, char **argv, char *err);

/* Calls `cb` for every state machine flag (--max-payload, ...) that was
 * given on this node and differs from the cluster's replicated value. */
void node_config_fsm_diff(const struct node_config *c,
                          const struct fsm_config *cluster,
                          void (*cb)(void *arg, const char *flag, uint64_t mine,
                                     uint64_t theirs),
                          void *arg);

/* The member entry of this node (never NULL after a successful load). */
const struct node_member *node_config_self(const struct node_config *c);
const struct node_member *node_config_member(const struct node_config *c,
                                             uint64_t id);

/* Parses "ID@RAFT_HOST:PORT/CLIENT_HOST:PORT[,...]" into c->members.
 * Returns 0 or -1 with a message in `err`. */
int node_config_parse_members(struct node_config *c, const char *s, char *err);

/* Checks "host:port" with a port in 1..65535. */
int node_config_check_address(const char *addr);

#endif /* RAFTMQ_NODE_CONFIG_H */
