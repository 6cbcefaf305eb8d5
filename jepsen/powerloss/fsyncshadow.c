/* fsyncshadow: LD_PRELOAD shim that keeps, next to a node's data dir, a
 * shadow tree holding what the disk would hold after a power cut. */

/*
 * Environment:
 *   FSYNCSHADOW_DATA    absolute path of the data dir to watch (required)
 *   FSYNCSHADOW_SHADOW  absolute path of the shadow dir (required; it must
 *                       equal the data dir when the process starts)
 *   FSYNCSHADOW_MODE    "normal" (default), or one of two MUTATIONS:
 *                       "nosync": fsync/fdatasync/sync_file_range/syncfs
 *                       return 0 without syncing anything and O_DSYNC /
 *                       RWF_DSYNC writes are not durable either;
 *                       "lag": a disk that acknowledges from a volatile
 *                       cache: every write (synced or not) becomes durable
 *                       only FSYNCSHADOW_LAG_MS (default 1000) ms after it
 *                       was made, or when its file is renamed (like ext4's
 *                       ordered rename); syncs return at once. A power cut
 *                       loses the last LAG ms of acknowledged writes.
 *
 * Model (the one of lazyfs: un-synced data is lost, metadata is not):
 *   - A write to a file under the data dir is durable when it was made
 *     through an O_SYNC/O_DSYNC descriptor, with RWF_DSYNC/RWF_SYNC
 *     (pwritev2, or Linux AIO through io_submit, which raft's uv backend
 *     uses for its segments), or when a later fsync/fdatasync/syncfs/
 *     sync/sync_file_range(WAIT_AFTER) of the same inode returned. A
 *     durable write is copied into the shadow file at the same offset;
 *     until then it is kept in memory ("pending", per inode).
 *   - Metadata is applied to the shadow at once: create, O_TRUNC,
 *     ftruncate/truncate, (posix_)fallocate (size growth), rename, link
 *     (including raft's O_TMPFILE + linkat(/proc/self/fd/N)), unlink,
 *     mkdir, rmdir.
 *   - After SIGKILL of the process, the shadow tree is the content after a
 *     power cut: the harness replaces the data dir with it (see
 *     jepsen/harness/powerloss.py).
 * Limits: writes through mmap, io_uring, or a raw syscall other than
 * write/pwrite64/writev/pwritev/pwritev2/io_submit are not seen; O_DSYNC
 * added later with fcntl(F_SETFL) is not seen; O_APPEND writes are
 * recorded at the position before the write. libuv issues pwritev and
 * close through syscall(2), raft issues io_submit through it: syscall() is
 * interposed and dispatched on the number.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/aio_abi.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifndef RWF_DSYNC
#define RWF_DSYNC 0x00000002
#endif
#ifndef RWF_SYNC
#define RWF_SYNC 0x00000004
#endif
#ifndef SYNC_FILE_RANGE_WAIT_AFTER
#define SYNC_FILE_RANGE_WAIT_AFTER 4
#endif

#define MAX_FDS    65536
#define MAX_INODES 4096

struct chunk {
	struct chunk *next;
	long long ms; /* when it was written (lag mode) */
	off_t off;
	size_t len;
	unsigned char data[];
};

struct inode {
	int used;
	dev_t dev;
	ino_t ino;
	int shadow_fd;
	struct chunk *head, *tail; /* pending (not yet durable) writes */
};

static struct inode inodes[MAX_INODES];
static short fd_inode[MAX_FDS]; /* inode index + 1, 0 = untracked */
static unsigned char fd_dsync[MAX_FDS];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char data_dir[PATH_MAX], shadow_dir[PATH_MAX];
static size_t data_len;
static int active, nosync, lag;
static long long lag_ms = 1000;

/* The real functions. */
static int (*r_open)(const char *, int, ...);
static int (*r_openat)(int, const char *, int, ...);
static ssize_t (*r_write)(int, const void *, size_t);
static ssize_t (*r_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*r_writev)(int, const struct iovec *, int);
static ssize_t (*r_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*r_pwritev2)(int, const struct iovec *, int, off_t, int);
static int (*r_fsync)(int);
static int (*r_fdatasync)(int);
static int (*r_sync_file_range)(int, off_t, off_t, unsigned);
static int (*r_syncfs)(int);
static void (*r_sync)(void);
static int (*r_close)(int);
static int (*r_rename)(const char *, const char *);
static int (*r_renameat)(int, const char *, int, const char *);
static int (*r_renameat2)(int, const char *, int, const char *, unsigned);
static int (*r_unlink)(const char *);
static int (*r_unlinkat)(int, const char *, int);
static int (*r_rmdir)(const char *);
static int (*r_mkdir)(const char *, mode_t);
static int (*r_mkdirat)(int, const char *, mode_t);
static int (*r_link)(const char *, const char *);
static int (*r_linkat)(int, const char *, int, const char *, int);
static int (*r_ftruncate)(int, off_t);
static int (*r_truncate)(const char *, off_t);
static int (*r_fallocate)(int, int, off_t, off_t);
static int (*r_posix_fallocate)(int, off_t, off_t);
static long (*r_syscall)(long, ...);

#define LOAD(name) r_##name = dlsym(RTLD_NEXT, #name)

__attribute__((constructor)) static void shim_init(void)
{
	const char *d = getenv("FSYNCSHADOW_DATA");
	const char *s = getenv("FSYNCSHADOW_SHADOW");
	const char *m = getenv("FSYNCSHADOW_MODE");

	LOAD(open);
	LOAD(openat);
	LOAD(write);
	LOAD(pwrite);
	LOAD(writev);
	LOAD(pwritev);
	LOAD(pwritev2);
	LOAD(fsync);
	LOAD(fdatasync);
	LOAD(sync_file_range);
	LOAD(syncfs);
	LOAD(sync);
	LOAD(close);
	LOAD(rename);
	LOAD(renameat);
	LOAD(renameat2);
	LOAD(unlink);
	LOAD(unlinkat);
	LOAD(rmdir);
	LOAD(mkdir);
	LOAD(mkdirat);
	LOAD(link);
	LOAD(linkat);
	LOAD(ftruncate);
	LOAD(truncate);
	LOAD(fallocate);
	LOAD(posix_fallocate);
	LOAD(syscall);
	if (d == NULL || s == NULL || d[0] != '/' || s[0] != '/' ||
	    strlen(d) >= sizeof(data_dir) - 1 ||
	    strlen(s) >= sizeof(shadow_dir) - 1)
		return;
	snprintf(data_dir, sizeof(data_dir), "%s", d);
	snprintf(shadow_dir, sizeof(shadow_dir), "%s", s);
	data_len = strlen(data_dir);
	while (data_len > 1 && data_dir[data_len - 1] == '/')
		data_dir[--data_len] = '\0';
	nosync = m != NULL && strcmp(m, "nosync") == 0;
	lag = m != NULL && strcmp(m, "lag") == 0;
	if (lag && getenv("FSYNCSHADOW_LAG_MS"))
		lag_ms = atoll(getenv("FSYNCSHADOW_LAG_MS"));
	active = 1;
	fprintf(stderr, "fsyncshadow: watching %s (shadow %s, mode %s)\n",
	        data_dir, shadow_dir,
	        nosync ? "nosync"
	        : lag  ? "lag"
	               : "normal");
}

/* ---- paths ---------------------------------------------------------- */

/* The absolute form of (dirfd, path) in out; 0 or -1. */
static int abs_path(int dirfd, const char *path, char *out, size_t n)
{
	char base[PATH_MAX];

	if (path == NULL)
		return -1;
	if (path[0] == '/') {
		if (strlen(path) >= n)
			return -1;
		strcpy(out, path);
		return 0;
	}
	if (dirfd == AT_FDCWD) {
		if (getcwd(base, sizeof(base)) == NULL)
			return -1;
	} else {
		char proc[64];
		ssize_t k;

		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", dirfd);
		k = readlink(proc, base, sizeof(base) - 1);
		if (k < 0)
			return -1;
		base[k] = '\0';
	}
	if ((size_t)snprintf(out, n, "%s/%s", base, path) >= n)
		return -1;
	return 0;
}

/* The shadow path of (dirfd, path) when it is under the data dir. */
static int shadow_of(int dirfd, const char *path, char *out, size_t n)
{
	char a[PATH_MAX];

	if (!active || abs_path(dirfd, path, a, sizeof(a)))
		return 0;
	if (strncmp(a, data_dir, data_len) != 0 ||
	    (a[data_len] != '\0' && a[data_len] != '/'))
		return 0;
	return (size_t)snprintf(out, n, "%s%s", shadow_dir, a + data_len) < n;
}

static void mkdir_parents(const char *path)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s", path);
	for (char *q = p + 1; *q; q++) {
		if (*q == '/') {
			*q = '\0';
			r_mkdir(p, 0755);
			*q = '/';
		}
	}
}

/* ---- inodes ------------------------------------------------------------ */

static void drop_pending(struct inode *in)
{
	struct chunk *c = in->head;

	while (c) {
		struct chunk *nx = c->next;
		free(c);
		c = nx;
	}
	in->head = in->tail = NULL;
}

static void inode_free(struct inode *in)
{
	drop_pending(in);
	if (in->shadow_fd >= 0)
		r_close(in->shadow_fd);
	in->used = 0;
	in->shadow_fd = -1;
}

static struct inode *inode_find(dev_t dev, ino_t ino)
{
	for (int i = 0; i < MAX_INODES; i++)
		if (inodes[i].used && inodes[i].dev == dev &&
		    inodes[i].ino == ino)
			return &inodes[i];
	return NULL;
}

/* Forgets the inode that `path` names when unlinking it removes its
 * last link (it may be reused by a new file). Under mu. */
static void forget_path(int dirfd, const char *path)
{
	struct stat st;
	struct inode *in;

	if (fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
	    !S_ISREG(st.st_mode) || st.st_nlink > 1)
		return;
	in = inode_find(st.st_dev, st.st_ino);
	if (in == NULL)
		return;
	for (int fd = 0; fd < MAX_FDS; fd++)
		if (fd_inode[fd] == in - inodes + 1)
			return; /* still open: freed at its last close */
	inode_free(in);
}

static struct inode *fd_in(int fd)
{
	if (fd < 0 || fd >= MAX_FDS || fd_inode[fd] == 0)
		return NULL;
	return &inodes[fd_inode[fd] - 1];
}

/* Starts tracking `fd`, just opened with `flags` at (dirfd, path). */
static void track(int fd, int dirfd, const char *path, int flags)
{
	char sp[PATH_MAX];
	struct stat st;
	struct inode *in;
	int idx = -1;

	if (fd < 0 || fd >= MAX_FDS || !shadow_of(dirfd, path, sp, sizeof(sp)))
		return;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		return;
	pthread_mutex_lock(&mu);
	in = inode_find(st.st_dev, st.st_ino);
	if (in == NULL) {
		for (int i = 0; i < MAX_INODES; i++) {
			if (!inodes[i].used) {
				idx = i;
				break;
			}
		}
		if (idx < 0) {
			fprintf(stderr, "fsyncshadow: too many files\n");
			abort();
		}
		in = &inodes[idx];
		memset(in, 0, sizeof(*in));
		in->used = 1;
		in->dev = st.st_dev;
		in->ino = st.st_ino;
		mkdir_parents(sp);
		if ((flags & O_TMPFILE) == O_TMPFILE) {
			in->shadow_fd = r_open(sp, O_TMPFILE | O_RDWR, 0600);
		} else {
			in->shadow_fd =
			    r_open(sp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		}
		if (in->shadow_fd < 0) {
			fprintf(stderr, "fsyncshadow: open %s: %s\n", sp,
			        strerror(errno));
			abort();
		}
	}
	if (flags & O_TRUNC) {
		drop_pending(in);
		r_ftruncate(in->shadow_fd, 0);
	}
	fd_inode[fd] = (short)(in - inodes + 1);
	fd_dsync[fd] = (flags & O_DSYNC) ? 1 : 0;
	pthread_mutex_unlock(&mu);
}

static void shadow_write(struct inode *in, const void *p, size_t len, off_t off)
{
	const unsigned char *b = p;

	while (len > 0) {
		ssize_t k = r_pwrite(in->shadow_fd, b, len, off);

		if (k <= 0) {
			fprintf(stderr, "fsyncshadow: shadow write: %s\n",
			        strerror(errno));
			abort();
		}
		b += k;
		len -= (size_t)k;
		off += k;
	}
}

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Lag mode: every pending write older than lag_ms is durable now (in
 * order, per file). Under mu. */
static void flush_old(void)
{
	long long cut = mono_ms() - lag_ms;

	for (int i = 0; i < MAX_INODES; i++) {
		struct inode *in = &inodes[i];

		if (!in->used)
			continue;
		while (in->head && in->head->ms <= cut) {
			struct chunk *c = in->head;

			shadow_write(in, c->data, c->len, c->off);
			in->head = c->next;
			if (in->head == NULL)
				in->tail = NULL;
			free(c);
		}
	}
}

/* Records `len` bytes written at `off` through `fd`, from `n` iovecs. */
static void record(int fd, const struct iovec *iov, int n, size_t len,
                   off_t off, int dsync)
{
	struct inode *in;

	pthread_mutex_lock(&mu);
	in = fd_in(fd);
	if (in == NULL || len == 0) {
		pthread_mutex_unlock(&mu);
		return;
	}
	dsync |= fd_dsync[fd];
	if (lag) {
		flush_old();
		dsync = 0; /* acknowledged from the volatile cache */
	}
	if (dsync && !nosync) {
		size_t left = len;
		off_t o = off;

		for (int i = 0; i < n && left > 0; i++) {
			size_t k =
			    iov[i].iov_len < left ? iov[i].iov_len : left;
			shadow_write(in, iov[i].iov_base, k, o);
			o += (off_t)k;
			left -= k;
		}
	} else if (!nosync) {
		struct chunk *c = malloc(sizeof(*c) + len);
		size_t left = len, at = 0;

		if (c == NULL) {
			fprintf(stderr, "fsyncshadow: out of memory\n");
			abort();
		}
		c->next = NULL;
		c->ms = mono_ms();
		c->off = off;
		c->len = len;
		for (int i = 0; i < n && left > 0; i++) {
			size_t k =
			    iov[i].iov_len < left ? iov[i].iov_len : left;
			memcpy(c->data + at, iov[i].iov_base, k);
			at += k;
			left -= k;
		}
		if (in->tail)
			in->tail->next = c;
		else
			in->head = c;
		in->tail = c;
	}
	/* nosync: nothing written after start is ever durable. */
	pthread_mutex_unlock(&mu);
}

/* Makes the pending writes of `in` durable. Under mu. */
static void flush_inode(struct inode *in)
{
	for (struct chunk *c = in->head; c; c = c->next)
		shadow_write(in, c->data, c->len, c->off);
	drop_pending(in);
}

static void flush_fd(int fd)
{
	struct inode *in;

	if (nosync)
		return;
	if (lag) {
		/* The sync returns, but only old writes are durable. */
		pthread_mutex_lock(&mu);
		flush_old();
		pthread_mutex_unlock(&mu);
		return;
	}
	pthread_mutex_lock(&mu);
	in = fd_in(fd);
	if (in)
		flush_inode(in);
	pthread_mutex_unlock(&mu);
}

static void flush_all(void)
{
	if (nosync)
		return;
	if (lag) {
		pthread_mutex_lock(&mu);
		flush_old();
		pthread_mutex_unlock(&mu);
		return;
	}
	pthread_mutex_lock(&mu);
	for (int i = 0; i < MAX_INODES; i++)
		if (inodes[i].used)
			flush_inode(&inodes[i]);
	pthread_mutex_unlock(&mu);
}

/* The file shrank or grew to `len`: apply to the shadow, and cut pending
 * writes past the new end (they are gone from the live file too). */
static void resize(struct inode *in, off_t len, int grow_only)
{
	struct stat st;

	if (grow_only) {
		if (fstat(in->shadow_fd, &st) == 0 && st.st_size < len)
			r_ftruncate(in->shadow_fd, len);
		return;
	}
	r_ftruncate(in->shadow_fd, len);
	for (struct chunk *c = in->head; c; c = c->next) {
		if (c->off >= len)
			c->len = 0;
		else if (c->off + (off_t)c->len > len)
			c->len = (size_t)(len - c->off);
	}
}

static void untrack(int fd)
{
	struct inode *in;
	struct stat st;

	if (fd < 0 || fd >= MAX_FDS)
		return;
	pthread_mutex_lock(&mu);
	in = fd_in(fd);
	fd_inode[fd] = 0;
	fd_dsync[fd] = 0;
	if (in) {
		int open_fds = 0;

		for (int i = 0; i < MAX_FDS && !open_fds; i++)
			open_fds = fd_inode[i] == in - inodes + 1;
		/* An unlinked (or never linked O_TMPFILE) file is gone. */
		if (!open_fds && fstat(in->shadow_fd, &st) == 0 &&
		    st.st_nlink == 0)
			inode_free(in);
	}
	pthread_mutex_unlock(&mu);
}

/* ---- open ------------------------------------------------------------------
 */

static int mode_arg(int flags, va_list ap)
{
	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE)
		return va_arg(ap, int);
	return 0;
}

static int do_openat(int dirfd, const char *path, int flags, int mode)
{
	int fd = r_openat(dirfd, path, flags, mode);

	if (fd >= 0 && active)
		track(fd, dirfd, path, flags);
	return fd;
}

int open(const char *path, int flags, ...)
{
	va_list ap;
	int mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	return do_openat(AT_FDCWD, path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
	va_list ap;
	int mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	return do_openat(AT_FDCWD, path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	int mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	return do_openat(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	int mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	return do_openat(dirfd, path, flags, mode);
}

int __open_2(const char *path, int flags)
{
	return do_openat(AT_FDCWD, path, flags, 0);
}

int __open64_2(const char *path, int flags)
{
	return do_openat(AT_FDCWD, path, flags, 0);
}

int __openat_2(int dirfd, const char *path, int flags)
{
	return do_openat(dirfd, path, flags, 0);
}

int __openat64_2(int dirfd, const char *path, int flags)
{
	return do_openat(dirfd, path, flags, 0);
}

int creat(const char *path, mode_t mode)
{
	return do_openat(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC,
	                 (int)mode);
}

int creat64(const char *path, mode_t mode)
{
	return creat(path, mode);
}

/* ---- writes -------------------------------------------------------------- */

static off_t pos_of(int fd)
{
	return lseek(fd, 0, SEEK_CUR);
}

static int tracked(int fd)
{
	return active && fd >= 0 && fd < MAX_FDS && fd_inode[fd] != 0;
}

ssize_t write(int fd, const void *buf, size_t n)
{
	off_t off = tracked(fd) ? pos_of(fd) : 0;
	ssize_t r = r_write(fd, buf, n);

	if (r > 0 && tracked(fd)) {
		struct iovec v = {(void *)buf, (size_t)r};
		record(fd, &v, 1, (size_t)r, off, 0);
	}
	return r;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	ssize_t r = r_pwrite(fd, buf, n, off);

	if (r > 0 && tracked(fd)) {
		struct iovec v = {(void *)buf, (size_t)r};
		record(fd, &v, 1, (size_t)r, off, 0);
	}
	return r;
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	return pwrite(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	off_t off = tracked(fd) ? pos_of(fd) : 0;
	ssize_t r = r_writev(fd, iov, cnt);

	if (r > 0 && tracked(fd))
		record(fd, iov, cnt, (size_t)r, off, 0);
	return r;
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	ssize_t r = r_pwritev(fd, iov, cnt, off);

	if (r > 0 && tracked(fd))
		record(fd, iov, cnt, (size_t)r, off, 0);
	return r;
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off)
{
	return pwritev(fd, iov, cnt, off);
}

ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int fl)
{
	off_t at = off == -1 && tracked(fd) ? pos_of(fd) : off;
	ssize_t r = r_pwritev2(fd, iov, cnt, off, fl);

	if (r > 0 && tracked(fd))
		record(fd, iov, cnt, (size_t)r, at,
		       (fl & (RWF_DSYNC | RWF_SYNC)) != 0);
	return r;
}

ssize_t pwritev64v2(int fd, const struct iovec *iov, int cnt, off_t off, int fl)
{
	return pwritev2(fd, iov, cnt, off, fl);
}

/* Linux AIO: records each submitted write (raft submits them with
 * RWF_DSYNC: durable once complete; the shadow gets it at submission, which
 * may only make an unacknowledged write survive, never lose an
 * acknowledged one). */
static void record_iocbs(long nr, struct iocb **iocbs)
{
	for (long i = 0; i < nr; i++) {
		struct iocb *cb = iocbs[i];
		int fd = (int)cb->aio_fildes;
		int dsync = (cb->aio_rw_flags & (RWF_DSYNC | RWF_SYNC)) != 0;

		if (!tracked(fd))
			continue;
		if (cb->aio_lio_opcode == IOCB_CMD_PWRITE) {
			struct iovec v = {(void *)(uintptr_t)cb->aio_buf,
			                  (size_t)cb->aio_nbytes};
			record(fd, &v, 1, v.iov_len, (off_t)cb->aio_offset,
			       dsync);
		} else if (cb->aio_lio_opcode == IOCB_CMD_PWRITEV) {
			const struct iovec *v =
			    (const struct iovec *)(uintptr_t)cb->aio_buf;
			size_t len = 0;

			for (size_t k = 0; k < cb->aio_nbytes; k++)
				len += v[k].iov_len;
			record(fd, v, (int)cb->aio_nbytes, len,
			       (off_t)cb->aio_offset, dsync);
		} else if (cb->aio_lio_opcode == IOCB_CMD_FSYNC ||
		           cb->aio_lio_opcode == IOCB_CMD_FDSYNC) {
			flush_fd(fd);
		}
	}
}

/* ---- syncs ------------------------------------------------------------ */

int fsync(int fd)
{
	if (nosync && tracked(fd))
		return 0;
	int r = r_fsync(fd);
	if (r == 0)
		flush_fd(fd);
	return r;
}

int fdatasync(int fd)
{
	if (nosync && tracked(fd))
		return 0;
	int r = r_fdatasync(fd);
	if (r == 0)
		flush_fd(fd);
	return r;
}

int sync_file_range(int fd, off_t off, off_t n, unsigned flags)
{
	if (nosync && tracked(fd))
		return 0;
	int r = r_sync_file_range(fd, off, n, flags);
	/* Conservative: only a waited-for range counts, and data only; the
	 * whole pending list is flushed (raft does not use this call). */
	if (r == 0 && (flags & SYNC_FILE_RANGE_WAIT_AFTER))
		flush_fd(fd);
	return r;
}

int syncfs(int fd)
{
	if (nosync && active)
		return 0;
	int r = r_syncfs(fd);
	if (r == 0)
		flush_all();
	return r;
}

void sync(void)
{
	if (nosync && active)
		return;
	r_sync();
	flush_all();
}

/* ---- metadata ------------------------------------------------------------ */

int close(int fd)
{
	/* Untracked first: once closed, another thread may get this fd. */
	if (tracked(fd))
		untrack(fd);
	return r_close(fd);
}

int ftruncate(int fd, off_t len)
{
	int r = r_ftruncate(fd, len);

	if (r == 0 && tracked(fd)) {
		pthread_mutex_lock(&mu);
		struct inode *in = fd_in(fd);
		if (in)
			resize(in, len, 0);
		pthread_mutex_unlock(&mu);
	}
	return r;
}

int ftruncate64(int fd, off_t len)
{
	return ftruncate(fd, len);
}

int truncate(const char *path, off_t len)
{
	char sp[PATH_MAX];
	struct stat st;
	int r = r_truncate(path, len);

	if (r == 0 && shadow_of(AT_FDCWD, path, sp, sizeof(sp)) &&
	    stat(path, &st) == 0) {
		pthread_mutex_lock(&mu);
		struct inode *in = inode_find(st.st_dev, st.st_ino);
		if (in)
			resize(in, len, 0);
		else
			r_truncate(sp, len);
		pthread_mutex_unlock(&mu);
	}
	return r;
}

int truncate64(const char *path, off_t len)
{
	return truncate(path, len);
}

static void grew(int fd, int mode, off_t off, off_t len)
{
	if (!tracked(fd) || (mode & 1 /* FALLOC_FL_KEEP_SIZE */))
		return;
	pthread_mutex_lock(&mu);
	struct inode *in = fd_in(fd);
	if (in)
		resize(in, off + len, 1);
	pthread_mutex_unlock(&mu);
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
	int r = r_fallocate(fd, mode, off, len);

	if (r == 0)
		grew(fd, mode, off, len);
	return r;
}

int fallocate64(int fd, int mode, off_t off, off_t len)
{
	return fallocate(fd, mode, off, len);
}

int posix_fallocate(int fd, off_t off, off_t len)
{
	int r = r_posix_fallocate(fd, off, len);

	if (r == 0)
		grew(fd, 0, off, len);
	return r;
}

int posix_fallocate64(int fd, off_t off, off_t len)
{
	return posix_fallocate(fd, off, len);
}

static int do_renameat(int od, const char *op, int nd, const char *np,
                       unsigned flags, int use2)
{
	char so[PATH_MAX], sn[PATH_MAX];
	int both, r;

	both = shadow_of(od, op, so, sizeof(so)) &&
	       shadow_of(nd, np, sn, sizeof(sn));
	if (both) {
		struct stat st;

		pthread_mutex_lock(&mu);
		forget_path(nd, np); /* replaced target */
		/* Lag mode: a rename commits the file's data first. */
		if (lag && fstatat(od, op, &st, 0) == 0) {
			struct inode *in = inode_find(st.st_dev, st.st_ino);
			if (in)
				flush_inode(in);
		}
		pthread_mutex_unlock(&mu);
	}
	r = use2 ? r_renameat2(od, op, nd, np, flags)
	         : r_renameat(od, op, nd, np);
	if (r == 0 && both) {
		mkdir_parents(sn);
		r_rename(so, sn);
	}
	return r;
}

int rename(const char *op, const char *np)
{
	return do_renameat(AT_FDCWD, op, AT_FDCWD, np, 0, 0);
}

int renameat(int od, const char *op, int nd, const char *np)
{
	return do_renameat(od, op, nd, np, 0, 0);
}

int renameat2(int od, const char *op, int nd, const char *np, unsigned fl)
{
	return do_renameat(od, op, nd, np, fl, 1);
}

int unlinkat(int dirfd, const char *path, int flags)
{
	char sp[PATH_MAX];
	int in_data = shadow_of(dirfd, path, sp, sizeof(sp));
	int r;

	if (in_data && !(flags & AT_REMOVEDIR)) {
		pthread_mutex_lock(&mu);
		forget_path(dirfd, path);
		pthread_mutex_unlock(&mu);
	}
	r = r_unlinkat(dirfd, path, flags);
	if (r == 0 && in_data) {
		if (flags & AT_REMOVEDIR)
			r_rmdir(sp);
		else
			r_unlink(sp);
	}
	return r;
}

int unlink(const char *path)
{
	return unlinkat(AT_FDCWD, path, 0);
}

int rmdir(const char *path)
{
	return unlinkat(AT_FDCWD, path, AT_REMOVEDIR);
}

int mkdirat(int dirfd, const char *path, mode_t mode)
{
	char sp[PATH_MAX];
	int r = r_mkdirat(dirfd, path, mode);

	if (r == 0 && shadow_of(dirfd, path, sp, sizeof(sp))) {
		mkdir_parents(sp);
		r_mkdir(sp, mode);
	}
	return r;
}

int mkdir(const char *path, mode_t mode)
{
	return mkdirat(AT_FDCWD, path, mode);
}

/* The tracked fd named by "/proc/self/fd/N" (or -1). */
static int proc_fd(const char *p)
{
	const char *pre = "/proc/self/fd/";
	char *end;
	long v;

	if (p == NULL || strncmp(p, pre, strlen(pre)) != 0)
		return -1;
	v = strtol(p + strlen(pre), &end, 10);
	if (*end != '\0' || v < 0 || v >= MAX_FDS)
		return -1;
	return (int)v;
}

int linkat(int od, const char *op, int nd, const char *np, int flags)
{
	char so[PATH_MAX], sn[PATH_MAX];
	int r = r_linkat(od, op, nd, np, flags);
	int src = -1;

	if (r != 0 || !shadow_of(nd, np, sn, sizeof(sn)))
		return r;
	if ((flags & AT_EMPTY_PATH) && op[0] == 0)
		src = od;
	else
		src = proc_fd(op);
	mkdir_parents(sn);
	if (src >= 0 && tracked(src)) {
		char pp[64];
		pthread_mutex_lock(&mu);
		struct inode *in = fd_in(src);
		if (in && lag)
			flush_inode(in); /* like rename: data first */
		if (in) {
			snprintf(pp, sizeof(pp), "/proc/self/fd/%d",
			         in->shadow_fd);
			r_linkat(AT_FDCWD, pp, AT_FDCWD, sn, AT_SYMLINK_FOLLOW);
		}
		pthread_mutex_unlock(&mu);
	} else if (shadow_of(od, op, so, sizeof(so))) {
		r_link(so, sn);
	}
	return r;
}

int link(const char *op, const char *np)
{
	return linkat(AT_FDCWD, op, AT_FDCWD, np, 0);
}

/* ---- syscall(2) --------------------------------------------------------- */

long syscall(long nr, ...)
{
	va_list ap;
	long a[6];
	long r;

	va_start(ap, nr);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (!active)
		return r_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	switch (nr) {
	case SYS_close:
		if (tracked((int)a[0]))
			untrack((int)a[0]);
		return r_syscall(nr, a[0]);
	case SYS_write:
		return write((int)a[0], (const void *)a[1], (size_t)a[2]);
	case SYS_pwrite64:
		return pwrite((int)a[0], (const void *)a[1], (size_t)a[2],
		              (off_t)a[3]);
	case SYS_writev:
		return writev((int)a[0], (const struct iovec *)a[1], (int)a[2]);
	case SYS_pwritev: {
		/* The kernel takes the offset as (low, high) words. */
		int fd = (int)a[0];
		const struct iovec *iov = (const struct iovec *)a[1];
		off_t off = (off_t)(unsigned long)a[3];
		r = r_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
		if (r > 0 && tracked(fd))
			record(fd, iov, (int)a[2], (size_t)r, off, 0);
		return r;
	}
	case SYS_pwritev2: {
		int fd = (int)a[0];
		const struct iovec *iov = (const struct iovec *)a[1];
		off_t off = (off_t)(unsigned long)a[3];
		int fl = (int)a[5];
		if (off == -1 && tracked(fd))
			off = pos_of(fd);
		r = r_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
		if (r > 0 && tracked(fd))
			record(fd, iov, (int)a[2], (size_t)r, off,
			       (fl & (RWF_DSYNC | RWF_SYNC)) != 0);
		return r;
	}
	case SYS_fsync:
		return fsync((int)a[0]);
	case SYS_fdatasync:
		return fdatasync((int)a[0]);
	case SYS_io_submit: {
		long nrq = a[1];
		struct iocb **cbs = (struct iocb **)a[2];
		if (nosync) {
			/* Durable only through a sync that never comes. */
			for (long i = 0; i < nrq; i++)
				cbs[i]->aio_rw_flags &= ~(RWF_DSYNC | RWF_SYNC);
		}
		r = r_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
		if (r > 0)
			record_iocbs(r, cbs);
		return r;
	}
	default:
		return r_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	}
}
