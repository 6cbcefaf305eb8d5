/* fsyncshadow self-test program: writes through every path raft uses, then
 * SIGKILLs itself; the test compares the restored files with the durable
 * content (see jepsen/tests/test_powerloss.py). */

/*
 * Usage: selftest DATA_DIR. Files made in DATA_DIR:
 *   plain     "A" written and fsynced, then "B" appended without sync:
 *             durable content "A".
 *   meta      "X" written and fdatasynced at 0, "Y" pwritten at 0 later
 *             without sync: durable "X".
 *   tmp       an O_TMPFILE file written ("T"), fsynced and linked with
 *             linkat(/proc/self/fd/N): durable "T".
 *   renamed   written "R", fsynced, renamed from "renamed.tmp": durable "R".
 *   aio-dsync "D" written by io_submit with RWF_DSYNC: durable "D".
 *   aio-plain "P" written by io_submit without RWF_DSYNC and never synced:
 *             durable "" (created, empty).
 *   vec       "V1" via syscall(SYS_pwritev) then fsync, then "V2" at 2
 *             without sync: durable "V1".
 *   gone      created, written, fsynced, unlinked: absent.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef RWF_DSYNC
#define RWF_DSYNC 0x00000002
#endif

static char dir[4096];

static const char *at(const char *name)
{
	static char p[2][8192];
	static int k;

	k = !k;
	snprintf(p[k], sizeof(p[k]), "%s/%s", dir, name);
	return p[k];
}

static void die(const char *what)
{
	perror(what);
	exit(2);
}

static void aio_write(const char *name, const char *s, int flags)
{
	aio_context_t ctx = 0;
	struct iocb cb;
	struct iocb *cbs[1] = {&cb};
	struct io_event ev;
	int fd = open(at(name), O_WRONLY | O_CREAT, 0644);

	if (fd < 0)
		die("open aio");
	if (syscall(SYS_io_setup, 4, &ctx) != 0)
		die("io_setup");
	memset(&cb, 0, sizeof(cb));
	cb.aio_fildes = (unsigned)fd;
	cb.aio_lio_opcode = IOCB_CMD_PWRITE;
	cb.aio_buf = (unsigned long)s;
	cb.aio_nbytes = strlen(s);
	cb.aio_offset = 0;
	cb.aio_rw_flags = flags;
	if (syscall(SYS_io_submit, ctx, 1, cbs) != 1)
		die("io_submit");
	if (syscall(SYS_io_getevents, ctx, 1, 1, &ev, NULL) != 1)
		die("io_getevents");
	syscall(SYS_io_destroy, ctx);
	close(fd);
}

int main(int argc, char **argv)
{
	char proc[64];
	struct iovec v;
	int fd;

	if (argc < 2)
		return 2;
	snprintf(dir, sizeof(dir), "%s", argv[1]);

	fd = open(at("plain"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, "A", 1) != 1 || fsync(fd) != 0 ||
	    write(fd, "B", 1) != 1)
		die("plain");

	fd = open(at("meta"), O_RDWR | O_CREAT, 0644);
	if (fd < 0 || pwrite(fd, "X", 1, 0) != 1 || fdatasync(fd) != 0 ||
	    pwrite(fd, "Y", 1, 0) != 1)
		die("meta");
	close(fd);

	fd = open(dir, O_TMPFILE | O_WRONLY, 0600);
	if (fd < 0 || write(fd, "T", 1) != 1 || fsync(fd) != 0)
		die("tmp");
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, at("tmp"), AT_SYMLINK_FOLLOW))
		die("linkat");
	close(fd);

	fd = open(at("renamed.tmp"), O_WRONLY | O_CREAT, 0644);
	if (fd < 0 || write(fd, "R", 1) != 1 || fsync(fd) != 0)
		die("renamed");
	close(fd);
	if (rename(at("renamed.tmp"), at("renamed")))
		die("rename");

	aio_write("aio-dsync", "D", RWF_DSYNC);
	aio_write("aio-plain", "P", 0);

	fd = open(at("vec"), O_WRONLY | O_CREAT, 0644);
	v.iov_base = "V1";
	v.iov_len = 2;
	if (fd < 0 || syscall(SYS_pwritev, fd, &v, 1, 0L, 0L) != 2 ||
	    fsync(fd) != 0)
		die("vec");
	if (syscall(SYS_pwritev, fd, &v, 1, 2L, 0L) != 2)
		die("vec2");

	fd = open(at("gone"), O_WRONLY | O_CREAT, 0644);
	if (fd < 0 || write(fd, "G", 1) != 1 || fsync(fd) != 0)
		die("gone");
	close(fd);
	if (unlink(at("gone")))
		die("unlink");

	printf("ready\n");
	fflush(stdout);
	kill(getpid(), SIGKILL);
	return 3;
}
