/* node/main: raftmq-node, one member of a raftmq cluster. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "node.h"

_Static_assert(NODE_ERR_SIZE >= RG_ERRMSG_SIZE,
               "one buffer holds config and raft errors");

static int mkdir_p(const char *path)
{
	char buf[1024];
	size_t len = strlen(path);

	if (len >= sizeof buf) {
		return -1;
	}
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p != '\0'; p++) {
		if (*p == '/') {
			*p = '\0';
			if (mkdir(buf, 0750) != 0 && errno != EEXIST) {
				return -1;
			}
			*p = '/';
		}
	}
	if (mkdir(buf, 0750) != 0 && errno != EEXIST) {
		return -1;
	}
	return 0;
}

static void rg_log_cb(int level, const char *msg)
{
	node_log(level, "raft: %s", msg);
}

static void check_cb(uv_check_t *h)
{
	node_flush(h->data);
}

static void handle_closed(uv_handle_t *h)
{
	(void)h;
}

static void rg_stopped(void *arg)
{
	struct node *n = arg;

	n->rg = NULL;
	uv_close((uv_handle_t *)&n->check, handle_closed);
	uv_close((uv_handle_t *)&n->ticker, handle_closed);
	uv_close((uv_handle_t *)&n->sigterm, handle_closed);
	uv_close((uv_handle_t *)&n->sigint, handle_closed);
	LOG_INFO("stopped");
}

static void listener_closed(uv_handle_t *h)
{
	(void)h;
}

static void node_stop(struct node *n)
{
	if (n->stopping) {
		return;
	}
	n->stopping = 1;
	n->serving = 0;
	LOG_INFO("shutting down");
	uv_close((uv_handle_t *)&n->listener, listener_closed);
	node_watch_stop(n);
	node_close_sessions(n, WIRE_ESHUTDOWN, "node is shutting down; retry",
	                    0);
	/* raft_glue hands leadership over first when this node leads. */
	rg_stop(n->rg, rg_stopped, n);
}

static void signal_cb(uv_signal_t *h, int signum)
{
	LOG_INFO("signal %d", signum);
	node_stop(h->data);
}

static void walk_close(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h)) {
		uv_close(h, NULL);
	}
}

int main(int argc, char **argv)
{
	static struct node_config cfg;
	static struct node n;
	struct rg_config rgc;
	struct rg_member members[NODE_MAX_MEMBERS];
	struct rg_callbacks cbs;
	char err[NODE_ERR_SIZE];
	uv_loop_t loop;
	int rv;

	rv = node_config_load(&cfg, argc, argv, err);
	if (rv == 1) {
		return 0;
	}
	if (rv != 0) {
		fprintf(stderr, "raftmq-node: %s\n", err);
		return 2;
	}
	node_log_init(cfg.log_level, (unsigned long long)cfg.id);
	signal(SIGPIPE, SIG_IGN);
	rg_set_log(rg_log_cb);
	if (mkdir_p(cfg.data_dir) != 0) {
		LOG_ERROR("data dir %s: %s", cfg.data_dir, strerror(errno));
		return 1;
	}

	memset(&n, 0, sizeof n);
	n.cfg = &cfg;
	n.loop = &loop;
	uv_loop_init(&loop);
	fsm_batch_init(&n.batch);
	n.reads_tail = &n.reads;
	/* The defaults: the limits are replicated state (a config command
	 * from the first leader's flags), never this node's flags. */
	n.fsm = fsm_new(NULL);
	if (n.fsm == NULL) {
		LOG_ERROR("cannot create the state machine (out of memory)");
		return 1;
	}

	rg_config_default(&rgc);
	for (unsigned i = 0; i < cfg.n_members; i++) {
		members[i].id = cfg.members[i].id;
		members[i].raft_address = cfg.members[i].raft_address;
	}
	rgc.id = cfg.id;
	rgc.dir = cfg.data_dir;
	rgc.bind_address = cfg.raft_bind[0] != '\0' ? cfg.raft_bind : NULL;
	rgc.members = members;
	rgc.n_members = cfg.n_members;
	rgc.election_timeout = cfg.election_timeout;
	rgc.heartbeat_timeout = cfg.heartbeat_timeout;
	rgc.snapshot_threshold = cfg.snapshot_threshold;
	rgc.snapshot_trailing = cfg.snapshot_trailing;
	rgc.log_memory = cfg.log_memory;
	rgc.max_inflight = cfg.max_inflight;
	/* The replicated max_entry is the admission limit (command.c); this
	 * only caps what raft_glue accepts. */
	rgc.max_entry = (size_t)64 << 20;
#ifdef RAFTMQ_TEST_FAULTS
	if (cfg.fault == 2) {
		/* Test-only fault 2: this replica skips applying its 50th
		 * applied entry (the divergence detector must catch it). */
		rgc.test_skip_apply = 50;
	}
#endif

	memset(&cbs, 0, sizeof cbs);
	cbs.data = &n;
	cbs.sink.data = &n;
	cbs.sink.result = node_sink_result;
	cbs.sink.effect = node_sink_effect;
	cbs.role = node_role_cb;

	LOG_INFO("raftmq-node %llu starting: raft %s, clients %s, data %s",
	         (unsigned long long)cfg.id,
	         node_config_self(&cfg)->raft_address, cfg.listen,
	         cfg.data_dir);
	if ((rv = rg_start(&n.rg, &loop, &rgc, n.fsm, &cbs, err)) != 0) {
		LOG_ERROR("raft: %s", err);
		if (rv == RG_CORRUPT)
			LOG_ERROR(
			    "the data in %s is damaged; this node will not "
			    "start with it. See 'Damaged data' in "
			    "docs/operations.md",
			    cfg.data_dir);
		/* The loop below lets raft finish closing what it opened. */
		n.exit_code = 1;
	} else if (node_listen(&n) != 0) {
		n.exit_code = 1;
		node_stop(&n);
	} else {
		uv_check_init(&loop, &n.check);
		n.check.data = &n;
		uv_check_start(&n.check, check_cb);
		uv_timer_init(&loop, &n.ticker);
		n.ticker.data = &n;
		uv_timer_start(&n.ticker, node_tick_cb, 20, 20);
		uv_signal_init(&loop, &n.sigterm);
		n.sigterm.data = &n;
		uv_signal_start(&n.sigterm, signal_cb, SIGTERM);
		uv_signal_init(&loop, &n.sigint);
		n.sigint.data = &n;
		uv_signal_start(&n.sigint, signal_cb, SIGINT);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&loop) != 0) {
		uv_walk(&loop, walk_close, NULL);
		uv_run(&loop, UV_RUN_DEFAULT);
		uv_loop_close(&loop);
	}
	node_commands_free(&n);
	fsm_free(n.fsm);
	fsm_batch_close(&n.batch);
	return n.exit_code;
}
