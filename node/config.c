/* node/config: flags and RAFTMQ_* environment variables, with validation.
 *
 * Every option has a flag and an environment variable; flags win. Values are
 * checked here, before anything starts, so that a bad configuration stops the
 * node with one clear message instead of a failure deep in raft. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

enum opt_kind { OPT_U64, OPT_UINT, OPT_SIZE, OPT_STR, OPT_MEMBERS, OPT_LEVEL };

struct opt {
	const char *flag; /* long flag without "--" */
	const char *env;  /* environment variable */
	enum opt_kind kind;
	size_t offset; /* into struct node_config */
	size_t size;   /* OPT_STR: buffer size */
	uint64_t min, max;
	const char *help;
};

#define OFF(field) offsetof(struct node_config, field)
#define STR(field) OFF(field), sizeof(((struct node_config *)0)->field)

static const struct opt opts[] = {
    {"id", "RAFTMQ_ID", OPT_U64, OFF(id), 0, 1, 65535,
     "this node's id (1..65535), one of --members"},
    {"data-dir", "RAFTMQ_DATA_DIR", OPT_STR, STR(data_dir), 0, 0,
     "data directory (created if missing)"},
    {"members", "RAFTMQ_MEMBERS", OPT_MEMBERS, 0, 0, 0, 0,
     "ID@RAFT_HOST:PORT/CLIENT_HOST:PORT,... (same on every node)"},
    {"listen", "RAFTMQ_LISTEN", OPT_STR, STR(listen), 0, 0,
     "client listener host:port (default: own client address)"},
    {"raft-bind", "RAFTMQ_RAFT_BIND", OPT_STR, STR(raft_bind), 0, 0,
     "raft listener host:port (default: own raft address)"},
    {"source-address", "RAFTMQ_SOURCE_ADDRESS", OPT_STR, STR(source_addr), 0, 0,
     "local IPv4 address for outgoing proxy connections"},
    {"log-level", "RAFTMQ_LOG_LEVEL", OPT_LEVEL, OFF(log_level), 0, 0, 0,
     "debug|info|warn|error (default info)"},
    {"election-timeout", "RAFTMQ_ELECTION_TIMEOUT", OPT_UINT,
     OFF(election_timeout), 0, 100, 60000, "ms (default 1000)"},
    {"heartbeat-timeout", "RAFTMQ_HEARTBEAT_TIMEOUT", OPT_UINT,
     OFF(heartbeat_timeout), 0, 10, 10000, "ms (default 100)"},
    {"snapshot-threshold", "RAFTMQ_SNAPSHOT_THRESHOLD", OPT_UINT,
     OFF(snapshot_threshold), 0, 2, 10000000,
     "entries between snapshots (default 4096)"},
    {"snapshot-trailing", "RAFTMQ_SNAPSHOT_TRAILING", OPT_UINT,
     OFF(snapshot_trailing), 0, 1, 10000000,
     "entries kept after a snapshot (default 8192)"},
    {"raft-log-memory", "RAFTMQ_RAFT_LOG_MEMORY", OPT_SIZE, OFF(log_memory), 0,
     0, (uint64_t)1 << 40,
     "bytes of raft log held in memory, which bounds the entries between "
     "snapshots and the trailing ones; 0 = entry counts only (default "
     "40 MiB)"},
    {"max-inflight", "RAFTMQ_MAX_INFLIGHT", OPT_UINT, OFF(max_inflight), 0, 1,
     1024, "raft entries in flight (default 16)"},
    {"max-entry", "RAFTMQ_MAX_ENTRY", OPT_U64, OFF(fsm.max_entry), 0, 65536,
     64u << 20, "bytes per raft entry (default 1 MiB)"},
    {"max-frame", "RAFTMQ_MAX_FRAME", OPT_SIZE, OFF(max_frame), 0, 4096,
     64u << 20, "bytes per client frame (default 1 MiB + 64 KiB)"},
    {"max-sessions", "RAFTMQ_MAX_SESSIONS", OPT_UINT, OFF(max_sessions), 0, 1,
     1000000, "client connections (default 10000)"},
    {"hello-timeout", "RAFTMQ_HELLO_TIMEOUT", OPT_UINT, OFF(hello_timeout), 0,
     100, 3600000, "ms a connection may take to send HELLO (default 10000)"},
    {"client-heartbeat", "RAFTMQ_CLIENT_HEARTBEAT", OPT_UINT,
     OFF(client_heartbeat), 0, 0, 3600000,
     "largest heartbeat interval granted to clients and asked of the "
     "leader by proxy links, ms; 0 = none (default 5000)"},
    {"max-payload", "RAFTMQ_MAX_PAYLOAD", OPT_UINT, OFF(fsm.max_payload), 0, 1,
     16u << 20,
     "bytes per message: body, ids, type, reply-to and headers (default "
     "262144)"},
    {"max-queues", "RAFTMQ_MAX_QUEUES", OPT_UINT, OFF(fsm.max_queues), 0, 1,
     10000000, "queues (default 10000)"},
    {"default-max-length", "RAFTMQ_DEFAULT_MAX_LENGTH", OPT_U64,
     OFF(fsm.default_max_length), 0, 1, UINT64_MAX,
     "messages per queue unless declared (default 10000000)"},
    {"default-max-bytes", "RAFTMQ_DEFAULT_MAX_BYTES", OPT_U64,
     OFF(fsm.default_max_bytes), 0, 1, UINT64_MAX,
     "body bytes per queue unless declared (default 1 GiB)"},
    {"test-fault", "RAFTMQ_TEST_FAULT", OPT_UINT, OFF(fault), 0, 0, 16,
     "test-only fault switch (0 = none; only in RAFTMQ_TEST_FAULTS builds): "
     "1 confirms publishes without proposing them, 2 skips applying the "
     "50th applied entry (a diverged replica), 3 refuses the first "
     "proposal, 4 the first one carrying a session-down"},
};

#define N_OPTS (sizeof opts / sizeof opts[0])

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: raftmq-node [OPTIONS]\n\n"
	    "Every option also reads an environment variable; flags win.\n"
	    "--members must be identical on every node. The state machine "
	    "limits\n(--max-payload, --max-entry, --max-queues, "
	    "--default-max-length,\n--default-max-bytes) are the cluster's "
	    "replicated configuration: the\nfirst leader proposes them from "
	    "its flags; later, change them with\n'raftmq cluster config "
	    "set'. A node whose flags differ logs it and follows\nthe "
	    "cluster.\n\n");
	for (size_t i = 0; i < N_OPTS; i++) {
		fprintf(stderr, "  --%-20s %-27s %s\n", opts[i].flag,
		        opts[i].env, opts[i].help);
	}
	fprintf(stderr, "  --%-20s %-27s %s\n", "help", "", "this text");
}

int node_config_check_address(const char *addr)
{
	const char *colon = strrchr(addr, ':');
	char *end;
	unsigned long port;

	if (colon == NULL || colon == addr || colon[1] == '\0') {
		return -1;
	}
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || port == 0 || port > 65535) {
		return -1;
	}
	for (const char *p = addr; p < colon; p++) {
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' &&
		    *p != '_') {
			return -1;
		}
	}
	return 0;
}

int node_config_parse_members(struct node_config *c, const char *s, char *err)
{
	char buf[4096];
	char *save = NULL;

	if (strlen(s) >= sizeof buf) {
		snprintf(err, NODE_ERR_SIZE, "members: list too long");
		return -1;
	}
	strcpy(buf, s);
	c->n_members = 0;
	for (char *tok = strtok_r(buf, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		struct node_member *m;
		char *at = strchr(tok, '@');
		char *slash = at != NULL ? strchr(at, '/') : NULL;
		char *end;

		while (isspace((unsigned char)*tok)) {
			tok++;
		}
		if (c->n_members == NODE_MAX_MEMBERS) {
			snprintf(err, NODE_ERR_SIZE, "members: at most %d",
			         NODE_MAX_MEMBERS);
			return -1;
		}
		if (at == NULL || slash == NULL) {
			snprintf(err, NODE_ERR_SIZE,
			         "members: '%s' is not "
			         "ID@RAFT_HOST:PORT/CLIENT_HOST:PORT",
			         tok);
			return -1;
		}
		*at = '\0';
		*slash = '\0';
		m = &c->members[c->n_members];
		errno = 0;
		m->id = strtoull(tok, &end, 10);
		if (errno != 0 || *end != '\0' || m->id == 0 || m->id > 65535) {
			snprintf(err, NODE_ERR_SIZE,
			         "members: bad id '%s' (1..65535)", tok);
			return -1;
		}
		if (strlen(at + 1) >= NODE_ADDR_MAX ||
		    strlen(slash + 1) >= NODE_ADDR_MAX ||
		    node_config_check_address(at + 1) != 0 ||
		    node_config_check_address(slash + 1) != 0) {
			snprintf(err, NODE_ERR_SIZE,
			         "members: bad address in '%s@%s/%s' "
			         "(want host:port)",
			         tok, at + 1, slash + 1);
			return -1;
		}
		strcpy(m->raft_address, at + 1);
		strcpy(m->client_address, slash + 1);
		for (unsigned i = 0; i < c->n_members; i++) {
			if (c->members[i].id == m->id) {
				snprintf(err, NODE_ERR_SIZE,
				         "members: id %llu twice",
				         (unsigned long long)m->id);
				return -1;
			}
		}
		c->n_members++;
	}
	if (c->n_members == 0) {
		snprintf(err, NODE_ERR_SIZE, "members: empty list");
		return -1;
	}
	return 0;
}

static int set_opt(struct node_config *c, const struct opt *o, const char *v,
                   char *err)
{
	char *p = (char *)c + o->offset;
	unsigned long long n;
	char *end;

	switch (o->kind) {
	case OPT_STR:
		if (strlen(v) >= o->size) {
			snprintf(err, NODE_ERR_SIZE, "--%s: value too long",
			         o->flag);
			return -1;
		}
		strcpy(p, v);
		return 0;
	case OPT_MEMBERS:
		return node_config_parse_members(c, v, err);
	case OPT_LEVEL:
		if (node_log_parse_level(v) < 0) {
			snprintf(err, NODE_ERR_SIZE,
			         "--%s: '%s' is not debug|info|warn|error",
			         o->flag, v);
			return -1;
		}
		*(int *)p = node_log_parse_level(v);
		return 0;
	default:
		break;
	}
	if (o >= opts && o < opts + N_OPTS) {
		c->given |= (uint64_t)1 << (o - opts);
	}
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || v[0] == '-' ||
	    n < o->min || n > o->max) {
		snprintf(err, NODE_ERR_SIZE,
		         "--%s (%s): '%s' is not a number in %llu..%llu",
		         o->flag, o->env, v, (unsigned long long)o->min,
		         (unsigned long long)o->max);
		return -1;
	}
	switch (o->kind) {
	case OPT_U64:
		*(uint64_t *)p = n;
		break;
	case OPT_UINT:
		if (o->offset == OFF(fault)) {
			*(int *)p = (int)n;
		} else {
			*(unsigned *)p = (unsigned)n;
		}
		break;
	case OPT_SIZE:
		*(size_t *)p = (size_t)n;
		break;
	default:
		break;
	}
	return 0;
}

static void defaults(struct node_config *c)
{
	memset(c, 0, sizeof *c);
	c->log_level = NODE_LOG_INFO;
	c->election_timeout = 1000;
	c->heartbeat_timeout = 100;
	c->snapshot_threshold = 4096;
	c->snapshot_trailing = 8192;
	c->log_memory = (size_t)40 << 20;
	c->max_inflight = 16;
	c->max_entry = 1u << 20;
	c->fsm.max_entry = c->max_entry;
	c->max_frame = (1u << 20) + (64u << 10);
	c->max_sessions = 10000;
	c->max_session_output = 64u << 20;
	c->hello_timeout = 10000;
	c->client_heartbeat = 5000;
	fsm_config_default(&c->fsm);
	c->fsm.max_entry = c->max_entry;
}

void node_config_fsm_diff(const struct node_config *c,
                          const struct fsm_config *cluster,
                          void (*cb)(void *arg, const char *flag, uint64_t mine,
                                     uint64_t theirs),
                          void *arg)
{
	const size_t lo = OFF(fsm), hi = lo + sizeof(struct fsm_config);

	for (size_t i = 0; i < N_OPTS; i++) {
		const struct opt *o = &opts[i];
		const char *mine_p = (const char *)c + o->offset;
		const char *theirs_p = (const char *)cluster + (o->offset - lo);
		uint64_t mine, theirs;

		if (o->offset < lo || o->offset >= hi ||
		    !(c->given & ((uint64_t)1 << i))) {
			continue;
		}
		if (o->kind == OPT_U64) {
			memcpy(&mine, mine_p, sizeof mine);
			memcpy(&theirs, theirs_p, sizeof theirs);
		} else {
			uint32_t a, b;
			memcpy(&a, mine_p, sizeof a);
			memcpy(&b, theirs_p, sizeof b);
			mine = a;
			theirs = b;
		}
		if (mine != theirs) {
			cb(arg, o->flag, mine, theirs);
		}
	}
}

const struct node_member *node_config_member(const struct node_config *c,
                                             uint64_t id)
{
	for (unsigned i = 0; i < c->n_members; i++) {
		if (c->members[i].id == id) {
			return &c->members[i];
		}
	}
	return NULL;
}

const struct node_member *node_config_self(const struct node_config *c)
{
	return node_config_member(c, c->id);
}

int node_config_load(struct node_config *c, int argc, char **argv, char *err)
{
	struct option long_opts[N_OPTS + 2];
	int ch;
	int idx;

	defaults(c);
	for (size_t i = 0; i < N_OPTS; i++) {
		const char *v = getenv(opts[i].env);
		if (v != NULL && v[0] != '\0' && set_opt(c, &opts[i], v, err)) {
			return -1;
		}
		long_opts[i] = (struct option){opts[i].flag, required_argument,
		                               NULL, (int)i};
	}
	long_opts[N_OPTS] = (struct option){"help", no_argument, NULL, 'h'};
	long_opts[N_OPTS + 1] = (struct option){NULL, 0, NULL, 0};
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", long_opts, &idx)) != -1) {
		if (ch == 'h') {
			usage();
			return 1;
		}
		if (ch == '?' || ch < 0 || (size_t)ch >= N_OPTS) {
			snprintf(err, NODE_ERR_SIZE,
			         "unknown option (try --help)");
			return -1;
		}
		if (set_opt(c, &opts[ch], optarg, err) != 0) {
			return -1;
		}
	}
	if (optind < argc) {
		snprintf(err, NODE_ERR_SIZE, "unexpected argument '%s'",
		         argv[optind]);
		return -1;
	}
	if (c->id == 0) {
		snprintf(err, NODE_ERR_SIZE, "--id (RAFTMQ_ID) is required");
		return -1;
	}
	if (c->n_members == 0) {
		snprintf(err, NODE_ERR_SIZE,
		         "--members (RAFTMQ_MEMBERS) is required");
		return -1;
	}
	if (node_config_self(c) == NULL) {
		snprintf(err, NODE_ERR_SIZE, "--id %llu is not in --members",
		         (unsigned long long)c->id);
		return -1;
	}
	c->max_entry = (size_t)c->fsm.max_entry;
	if (c->data_dir[0] == '\0') {
		snprintf(err, NODE_ERR_SIZE,
		         "--data-dir (RAFTMQ_DATA_DIR) is required");
		return -1;
	}
	if (c->listen[0] == '\0') {
		strcpy(c->listen, node_config_self(c)->client_address);
	}
	if (node_config_check_address(c->listen) != 0) {
		snprintf(err, NODE_ERR_SIZE, "--listen: '%s' is not host:port",
		         c->listen);
		return -1;
	}
	if (c->raft_bind[0] != '\0' &&
	    node_config_check_address(c->raft_bind) != 0) {
		snprintf(err, NODE_ERR_SIZE,
		         "--raft-bind: '%s' is not host:port", c->raft_bind);
		return -1;
	}
	if (c->log_memory != 0 && c->log_memory < 4 * c->max_entry) {
		snprintf(err, NODE_ERR_SIZE,
		         "--raft-log-memory (%zu) must be 0 or at least four "
		         "times --max-entry (%zu)",
		         c->log_memory, c->max_entry);
		return -1;
	}
	if (c->heartbeat_timeout >= c->election_timeout) {
		snprintf(err, NODE_ERR_SIZE,
		         "--heartbeat-timeout (%u) must be below "
		         "--election-timeout (%u)",
		         c->heartbeat_timeout, c->election_timeout);
		return -1;
	}
	if (c->max_frame < (size_t)c->fsm.max_payload + 4096) {
		snprintf(err, NODE_ERR_SIZE,
		         "--max-frame (%zu) must exceed --max-payload (%u) by "
		         "at least 4096",
		         c->max_frame, c->fsm.max_payload);
		return -1;
	}
	if (c->max_entry < (size_t)c->fsm.max_payload + 4096) {
		snprintf(err, NODE_ERR_SIZE,
		         "--max-entry (%zu) must exceed --max-payload (%u) by "
		         "at least 4096",
		         c->max_entry, c->fsm.max_payload);
		return -1;
	}
#ifndef RAFTMQ_TEST_FAULTS
	if (c->fault != 0) {
		snprintf(
		    err, NODE_ERR_SIZE,
		    "--test-fault needs a build with -DRAFTMQ_TEST_FAULTS=ON");
		return -1;
	}
#endif
	return 0;
}
