/* node/reqset: linear probing with backward-shift deletion, so lookups stay
 * short without tombstones. Load factor at most 1/2. */
#include "reqset.h"

#include <stdlib.h>

void reqset_init(struct reqset *s)
{
	s->slots = NULL;
	s->cap = 0;
	s->n = 0;
	s->has_zero = 0;
}

void reqset_free(struct reqset *s)
{
	free(s->slots);
	reqset_init(s);
}

static size_t slot_of(uint64_t id, size_t cap)
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdULL;
	id ^= id >> 33;
	return (size_t)id & (cap - 1);
}

static void insert_raw(uint64_t *slots, size_t cap, uint64_t id)
{
	size_t i = slot_of(id, cap);
	while (slots[i] != 0) {
		i = (i + 1) & (cap - 1);
	}
	slots[i] = id;
}

static int grow(struct reqset *s)
{
	size_t cap = s->cap == 0 ? 16 : s->cap * 2;
	uint64_t *slots = calloc(cap, sizeof *slots);
	if (slots == NULL) {
		return -1;
	}
	for (size_t i = 0; i < s->cap; i++) {
		if (s->slots[i] != 0) {
			insert_raw(slots, cap, s->slots[i]);
		}
	}
	free(s->slots);
	s->slots = slots;
	s->cap = cap;
	return 0;
}

int reqset_has(const struct reqset *s, uint64_t id)
{
	if (id == 0) {
		return s->has_zero;
	}
	if (s->cap == 0) {
		return 0;
	}
	for (size_t i = slot_of(id, s->cap); s->slots[i] != 0;
	     i = (i + 1) & (s->cap - 1)) {
		if (s->slots[i] == id) {
			return 1;
		}
	}
	return 0;
}

int reqset_add(struct reqset *s, uint64_t id)
{
	if (reqset_has(s, id)) {
		return 0;
	}
	if (id == 0) {
		s->has_zero = 1;
		s->n++;
		return 0;
	}
	if ((s->n + 1) * 2 > s->cap && grow(s) != 0) {
		return -1;
	}
	insert_raw(s->slots, s->cap, id);
	s->n++;
	return 0;
}

int reqset_remove(struct reqset *s, uint64_t id)
{
	size_t i, j;

	if (id == 0) {
		if (!s->has_zero) {
			return 0;
		}
		s->has_zero = 0;
		s->n--;
		return 1;
	}
	if (s->cap == 0) {
		return 0;
	}
	for (i = slot_of(id, s->cap); s->slots[i] != id;
	     i = (i + 1) & (s->cap - 1)) {
		if (s->slots[i] == 0) {
			return 0;
		}
	}
	/* Backward shift: move later members of the probe run into the hole
	 * when their home slot does not lie cyclically in (hole, j]. */
	j = i;
	for (;;) {
		size_t home;
		j = (j + 1) & (s->cap - 1);
		if (s->slots[j] == 0) {
			break;
		}
		home = slot_of(s->slots[j], s->cap);
		if ((j > i && (home <= i || home > j)) ||
		    (j < i && (home <= i && home > j))) {
			s->slots[i] = s->slots[j];
			i = j;
		}
	}
	s->slots[i] = 0;
	s->n--;
	return 1;
}

void reqset_foreach(const struct reqset *s, void (*cb)(void *, uint64_t),
                    void *arg)
{
	if (s->has_zero) {
		cb(arg, 0);
	}
	for (size_t i = 0; i < s->cap; i++) {
		if (s->slots[i] != 0) {
			cb(arg, s->slots[i]);
		}
	}
}
