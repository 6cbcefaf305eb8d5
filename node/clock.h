/* node/clock: the cluster clock stamped by the serving leader (DESIGN
 * "Time").
 *
 * The FSM clock is not anyone's wall clock. When a node becomes the serving
 * leader it starts from the FSM's current time and advances it with its own
 * monotonic clock; every command it proposes carries the next stamp, never
 * less than the previous one. To keep elections (time with no leader does
 * not count) from making the cluster clock lag for ever, the clock is slewed
 * toward the leader's wall clock by at most 1% of the elapsed time: a leader
 * with a skewed wall clock can neither jump the cluster clock nor stop it.
 *
 * Pure: the caller passes the monotonic (ns) and wall (ms) readings, so that
 * the unit test can drive it. */
#ifndef RAFTMQ_NODE_CLOCK_H
#define RAFTMQ_NODE_CLOCK_H

#include <stdint.h>

/* Slew bound: the clock moves toward the wall clock by at most 1/N of the
 * elapsed monotonic time. */
#define NODE_CLOCK_SLEW_DIV 100

struct node_clock {
	int running;
	uint64_t t_ns;  /* cluster time of the last reading, in ns */
	uint64_t mono;  /* monotonic ns of the last reading */
	uint64_t stamp; /* last stamp handed out (ms) */
};

/* Starts the clock when this node becomes the serving leader: `fsm_now` is
 * the FSM clock (ms) with the whole log applied. A fresh cluster (fsm_now 0
 * and `fresh` set: nothing can be pending) starts at `wall_ms`. */
void node_clock_start(struct node_clock *c, uint64_t fsm_now, int fresh,
                      uint64_t mono_ns, uint64_t wall_ms);

/* Stops it (leadership lost); the next start begins from the FSM again. */
void node_clock_stop(struct node_clock *c);

/* The cluster time now (ms), advancing the clock: never less than the
 * previous stamp. */
uint64_t node_clock_stamp(struct node_clock *c, uint64_t mono_ns,
                          uint64_t wall_ms);

#endif /* RAFTMQ_NODE_CLOCK_H */
