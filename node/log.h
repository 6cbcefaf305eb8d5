/* node/log: leveled log lines on stderr. */
#ifndef RAFTMQ_NODE_LOG_H
#define RAFTMQ_NODE_LOG_H

enum node_log_level {
	NODE_LOG_DEBUG = 0,
	NODE_LOG_INFO = 1,
	NODE_LOG_WARN = 2,
	NODE_LOG_ERROR = 3
};

/* Sets the lowest level printed and the node id shown on every line. */
void node_log_init(int level, unsigned long long node_id);

/* Parses "debug", "info", "warn" or "error"; returns -1 for anything else. */
int node_log_parse_level(const char *s);

void node_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define LOG_DEBUG(...) node_log(NODE_LOG_DEBUG, __VA_ARGS__)
#define LOG_INFO(...)  node_log(NODE_LOG_INFO, __VA_ARGS__)
#define LOG_WARN(...)  node_log(NODE_LOG_WARN, __VA_ARGS__)
#define LOG_ERROR(...) node_log(NODE_LOG_ERROR, __VA_ARGS__)

#endif /* RAFTMQ_NODE_LOG_H */
