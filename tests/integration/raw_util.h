/* tests/integration/raw_util: speaking the wire protocol over a plain
 * socket, for tests that send what libraftmq never would (bad frames,
 * silence, no HELLO). Include after <cmocka.h>. */
#ifndef RAFTMQ_TEST_RAW_UTIL_H
#define RAFTMQ_TEST_RAW_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "wire/wire.h"

/* Connects to "host:port"; reads time out after `timeout_s` seconds. */
static inline int raw_connect_timeout(const char *addr, int timeout_s)
{
	struct sockaddr_in sa;
	struct timeval tv = {timeout_s, 0};
	char host[64];
	const char *colon = strrchr(addr, ':');
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	inet_pton(AF_INET, host, &sa.sin_addr);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return fd;
}

static inline void raw_send(int fd, const void *p, size_t n)
{
	assert_int_equal(write(fd, p, n), (ssize_t)n);
}

static inline void raw_send_msg(int fd, const struct wire_msg *m)
{
	struct wire_buf b;

	wire_buf_init(&b);
	assert_int_equal(wire_encode(&b, m), 0);
	raw_send(fd, b.data, b.len);
	wire_buf_free(&b);
}

/* Reads one frame into `body` and decodes it. Returns 0, -1 when the
 * connection closed, -2 when the read timed out. */
static inline int raw_recv_any(int fd, char *body, size_t cap,
                               struct wire_msg *m)
{
	unsigned char pre[4];
	size_t len, got = 0;

	while (got < 4) {
		ssize_t r = read(fd, pre + got, 4 - got);
		if (r < 0 && errno == EAGAIN) {
			return -2;
		}
		if (r <= 0) {
			return -1;
		}
		got += (size_t)r;
	}
	len = ((size_t)pre[0] << 24) | ((size_t)pre[1] << 16) |
	      ((size_t)pre[2] << 8) | pre[3];
	assert_true(len <= cap);
	for (got = 0; got < len;) {
		ssize_t r = read(fd, body + got, len - got);
		if (r <= 0) {
			return -1;
		}
		got += (size_t)r;
	}
	assert_int_equal(wire_decode(body, len, m, NULL, 0), 0);
	return 0;
}

/* Like raw_recv_any() but skips the node's HEARTBEAT frames. */
static inline int raw_recv(int fd, char *body, size_t cap, struct wire_msg *m)
{
	int rv;

	while ((rv = raw_recv_any(fd, body, cap, m)) == 0 &&
	       m->op == WIRE_OP_HEARTBEAT) {
	}
	return rv;
}

#endif /* RAFTMQ_TEST_RAW_UTIL_H */
