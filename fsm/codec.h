/* fsm/codec: the msgpack encoding of FSM commands and of a batch of commands
 * in one Raft entry.
 *
 * Entry layout (every length a multiple of 8, as raft's uv backend demands):
 *
 *   offset  size  field
 *   0       4     magic "RMQB"
 *   4       1     format version (FSM_CODEC_VERSION)
 *   5       3     zero
 *   8       4     body length N (little endian)
 *   12      4     command count (little endian)
 *   16      N     body: the commands, each one msgpack array (see codec.c)
 *   16+N    P     zero padding, 0 <= P < 8
 *
 * Decoding never trusts a length: truncated, oversize or random bytes give
 * FSM_EMALFORMED. */
#ifndef RAFTMQ_FSM_CODEC_H
#define RAFTMQ_FSM_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "fsm.h"

/* Version 2 adds the wall clock to every command (and CONFIG, CHECK);
 * version 1 entries still decode, with wall = 0. */
#define FSM_CODEC_VERSION 2
#define FSM_ENTRY_HEADER  16

/* Codec bounds (semantic limits, stricter, are the fsm's job). */
#define FSM_CODEC_MAX_STR       (64u * 1024)        /* names, ids, keys */
#define FSM_CODEC_MAX_PAYLOAD   (16u * 1024 * 1024) /* payload bytes */
#define FSM_CODEC_MAX_HEADERS   1024u               /* headers per message */
#define FSM_CODEC_MAX_CONFIG_KV 64u /* key = value pairs of one CONFIG */

/* A growing buffer that collects encoded commands for one entry. */
struct fsm_batch {
	char *buf;      /* (owned) header + body */
	size_t len;     /* bytes used, header included */
	size_t cap;     /* bytes allocated */
	uint32_t count; /* commands added */
};

void fsm_batch_init(struct fsm_batch *b);
void fsm_batch_close(struct fsm_batch *b);

/* Forgets the commands, keeps the memory. */
void fsm_batch_reset(struct fsm_batch *b);

/* Appends one command. Returns 0, FSM_EINVAL (bad command type, a field
 * too long, a CONFIG with more than FSM_CODEC_MAX_CONFIG_KV pairs) or
 * FSM_ENOMEM; on error the batch is unchanged. */
int fsm_batch_add(struct fsm_batch *b, const struct fsm_cmd *cmd);

/* Bytes the entry would have if finished now (header and padding included). */
size_t fsm_batch_size(const struct fsm_batch *b);

/* Writes the header and the padding; `*buf`/`*len` then describe the entry,
 * which stays owned by the batch until the next reset/close. Returns 0 or
 * FSM_ENOMEM. */
int fsm_batch_finish(struct fsm_batch *b, const void **buf, size_t *len);

/* Decodes an entry, calling `cb` once per command in order with a command
 * whose pointers borrow from `buf`. Returns the number of commands, or
 * FSM_EMALFORMED as a negative number (-FSM_EMALFORMED) when the header or
 * any command is malformed; in that case `cb` has NOT been called at all
 * (the whole entry is validated first). `cb` returning non-zero stops the
 * walk and that value is returned. A valid entry whose command has more
 * than 32 headers needs a temporary allocation; if that fails,
 * -FSM_ENOMEM is returned and `cb` has not been called. */
int fsm_entry_decode(const void *buf, size_t len,
                     int (*cb)(void *data, const struct fsm_cmd *cmd),
                     void *data);

#endif /* RAFTMQ_FSM_CODEC_H */
