/* node/reqset: a set of 64-bit request ids (open addressing). */
#ifndef RAFTMQ_NODE_REQSET_H
#define RAFTMQ_NODE_REQSET_H

#include <stddef.h>
#include <stdint.h>

struct reqset {
	uint64_t *slots; /* (owned) 0 = empty; id 0 is kept in has_zero */
	size_t cap;      /* power of two, or 0 */
	size_t n;        /* ids stored, has_zero included */
	int has_zero;
};

void reqset_init(struct reqset *s);
void reqset_free(struct reqset *s);
/* Returns 0 (added or already there) or -1 when out of memory. */
int reqset_add(struct reqset *s, uint64_t id);
/* Returns 1 when the id was there (and is now removed), else 0. */
int reqset_remove(struct reqset *s, uint64_t id);
int reqset_has(const struct reqset *s, uint64_t id);
/* Calls cb for every id (any order); the set must not change meanwhile. */
void reqset_foreach(const struct reqset *s, void (*cb)(void *, uint64_t),
                    void *arg);

#endif /* RAFTMQ_NODE_REQSET_H */
