/* tests/integration/cluster_util: node processes for integration tests. */
#include "cluster_util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/raftmq.h"

uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

void cluster_init(struct cluster *c, const char *name)
{
	char *p;

	memset(c, 0, sizeof *c);
	snprintf(c->dir, sizeof c->dir, "/tmp/raftmq-it-%s-XXXXXX", name);
	p = mkdtemp(c->dir);
	if (p == NULL) {
		perror("mkdtemp");
		abort();
	}
	/* Ports from the pid so that parallel runs don't collide, and a new
	 * block per cluster, so that nodes a failed test left behind do not
	 * join the next test's cluster. All below the kernel's ephemeral
	 * range (32768 and up): a fresh block there may be some connection's
	 * local port, and the node's bind would fail. */
	static unsigned n_clusters;
	c->base_port =
	    20000 + (int)(((unsigned)getpid() * 7u + n_clusters++) % 420u) * 30;
	c->members[0] = '\0';
	for (int i = 1; i <= CLUSTER_N; i++) {
		char m[96];
		snprintf(c->client_addr[i], sizeof c->client_addr[i],
		         "127.0.0.1:%d", c->base_port + 10 + i);
		snprintf(m, sizeof m, "%s%d@127.0.0.1:%d/%s", i > 1 ? "," : "",
		         i, c->base_port + i, c->client_addr[i]);
		strcat(c->members, m);
	}
}

void cluster_start(struct cluster *c, int i)
{
	char id[8], data[300], log[300];
	const char *argv[40];
	int argc = 0;
	pid_t pid;

	snprintf(id, sizeof id, "%d", i);
	snprintf(data, sizeof data, "%s/n%d", c->dir, i);
	snprintf(log, sizeof log, "%s/n%d.log", c->dir, i);
	argv[argc++] = c->bin[i] != NULL ? c->bin[i] : RAFTMQ_NODE_BIN;
	argv[argc++] = "--id";
	argv[argc++] = id;
	argv[argc++] = "--data-dir";
	argv[argc++] = data;
	argv[argc++] = "--members";
	argv[argc++] = c->members;
	for (int k = 0; k < c->n_extra; k++) {
		argv[argc++] = c->extra[k];
	}
	for (int k = 0; k < c->n_node_extra[i]; k++) {
		argv[argc++] = c->node_extra[i][k];
	}
	argv[argc] = NULL;
	pid = fork();
	if (pid < 0) {
		perror("fork");
		abort();
	}
	if (pid == 0) {
		FILE *f = freopen(log, "a", stderr);
		FILE *o = freopen("/dev/null", "w", stdout);
		(void)f;
		(void)o;
		/* Never outlive the test, even when it crashes. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (int k = 0; k < c->n_node_env[i]; k++) {
			putenv((char *)c->node_env[i][k]);
		}
		execv(argv[0], (char **)argv);
		perror("execv");
		_exit(127);
	}
	c->pid[i] = pid;
}

void cluster_start_all(struct cluster *c)
{
	for (int i = 1; i <= CLUSTER_N; i++) {
		cluster_start(c, i);
	}
}

int cluster_wait_exit(struct cluster *c, int i, int timeout_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	int status;

	if (c->pid[i] <= 0) {
		return -1;
	}
	for (;;) {
		pid_t r = waitpid(c->pid[i], &status, WNOHANG);
		if (r == c->pid[i]) {
			c->pid[i] = 0;
			return status;
		}
		if (r < 0) {
			c->pid[i] = 0; /* not our child any more */
			return -1;
		}
		if (now_ms() > deadline) {
			return -1;
		}
		sleep_ms(20);
	}
}

void cluster_stop(struct cluster *c, int i, int sig)
{
	if (c->pid[i] <= 0) {
		return;
	}
	kill(c->pid[i], sig);
	if (cluster_wait_exit(c, i, 20000) == -1 && c->pid[i] > 0) {
		fprintf(stderr, "node %d ignored signal %d: SIGKILL\n", i, sig);
		kill(c->pid[i], SIGKILL);
		waitpid(c->pid[i], NULL, 0);
	}
	c->pid[i] = 0;
}

void cluster_stop_all(struct cluster *c, int sig)
{
	for (int i = 1; i <= CLUSTER_N; i++) {
		if (c->pid[i] > 0) {
			kill(c->pid[i], sig);
		}
	}
	for (int i = 1; i <= CLUSTER_N; i++) {
		cluster_stop(c, i, sig);
	}
}

void cluster_destroy(struct cluster *c)
{
	char cmd[400];
	cluster_stop_all(c, SIGKILL);
	if (getenv("RAFTMQ_KEEP_TEST_DIR") == NULL) {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", c->dir);
		if (system(cmd) != 0) {
			fprintf(stderr, "could not remove %s\n", c->dir);
		}
	}
}

const char *cluster_addr(struct cluster *c, int i)
{
	return c->client_addr[i];
}

uint64_t cluster_leader_seen_by(struct cluster *c, int i, char *role,
                                uint64_t *applied, uint64_t *commit)
{
	struct raftmq_options o;
	struct raftmq_node_status st;
	struct raftmq *h;
	uint64_t leader = 0;

	if (c->pid[i] <= 0) {
		return 0;
	}
	raftmq_options_default(&o);
	o.servers = c->client_addr[i];
	o.timeout_ms = 1000;
	o.connect_timeout_ms = 500;
	h = raftmq_new(&o);
	if (h == NULL) {
		return 0;
	}
	if (raftmq_status(h, &st) == 0) {
		leader = st.leader_id;
		if (role != NULL) {
			strcpy(role, st.role);
		}
		if (applied != NULL) {
			*applied = st.applied_index;
		}
		if (commit != NULL) {
			*commit = st.commit_index;
		}
	}
	raftmq_close(h);
	return leader;
}

int cluster_status(struct cluster *c, int i, struct raftmq_node_status *out)
{
	struct raftmq_options o;
	struct raftmq *h;
	int rv;

	raftmq_options_default(&o);
	o.servers = c->client_addr[i];
	o.timeout_ms = 1000;
	o.connect_timeout_ms = 500;
	h = raftmq_new(&o);
	if (h == NULL) {
		return RAFTMQ_ENOMEM;
	}
	rv = raftmq_status(h, out);
	raftmq_close(h);
	return rv;
}

int cluster_wait_leader(struct cluster *c, int timeout_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;

	while (now_ms() < deadline) {
		uint64_t leader = 0;
		int agree = 1;
		for (int i = 1; i <= CLUSTER_N && agree; i++) {
			uint64_t l;
			if (c->pid[i] <= 0) {
				continue;
			}
			l = cluster_leader_seen_by(c, i, NULL, NULL, NULL);
			if (l == 0 || (leader != 0 && l != leader)) {
				agree = 0;
			}
			leader = l;
		}
		if (agree && leader != 0 && c->pid[leader] > 0) {
			char role[16] = "";
			cluster_leader_seen_by(c, (int)leader, role, NULL,
			                       NULL);
			if (strcmp(role, "leader") == 0) {
				return (int)leader;
			}
		}
		sleep_ms(100);
	}
	return 0;
}

int cluster_log_contains(struct cluster *c, int i, const char *text)
{
	char path[300], line[2048];
	FILE *f;
	int found = 0;

	snprintf(path, sizeof path, "%s/n%d.log", c->dir, i);
	f = fopen(path, "r");
	if (f == NULL) {
		return 0;
	}
	while (!found && fgets(line, sizeof line, f) != NULL) {
		found = strstr(line, text) != NULL;
	}
	fclose(f);
	return found;
}

void cluster_dump_logs(struct cluster *c)
{
	char cmd[400];
	for (int i = 1; i <= CLUSTER_N; i++) {
		fprintf(stderr, "---- node %d log (tail) ----\n", i);
		snprintf(cmd, sizeof cmd, "tail -n 40 '%s/n%d.log' >&2", c->dir,
		         i);
		if (system(cmd) != 0) {
			fprintf(stderr, "(no log)\n");
		}
	}
}
