/* raft_glue/rg_log: raft_glue's log lines, routed through rg_set_log(). */
#ifndef RAFTMQ_RG_LOG_H
#define RAFTMQ_RG_LOG_H

/* Levels as in rg_set_log(): 0 debug, 1 info, 2 warn, 3 error. */
void rg__log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif /* RAFTMQ_RG_LOG_H */
