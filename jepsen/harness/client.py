"""Adapter processes (JSON lines to the C adapter) and the adapter build."""
import glob
import json
import os
import select
import subprocess
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(HERE)


def find_lib(build_dirs, names):
    for b in build_dirs:
        for n in names:
            hits = glob.glob(os.path.join(b, "**", n), recursive=True)
            if hits:
                return hits[0]
    return None


def build_adapter(build_dir, out_path):
    """Compiles jepsen/adapter.c against the client and wire static libs of
    `build_dir`. Returns the binary path (rebuilt when stale)."""
    src = os.path.join(HERE, "adapter.c")
    dirs = [build_dir]
    client = find_lib(dirs, ["libraftmq_client.a", "libraftmq.a"])
    wire = find_lib(dirs, ["libwire.a"])
    if not client or not wire:
        raise RuntimeError("client/wire libraries not found under %s "
                           "(build targets raftmq_client and wire first)"
                           % build_dir)
    deps = [src, client, wire]
    if os.path.exists(out_path) and all(
            os.path.getmtime(out_path) >= os.path.getmtime(d) for d in deps):
        return out_path
    libs = subprocess.run(["pkg-config", "--libs", "msgpack", "libuv"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True).stdout.split()
    san = []
    try:
        with open(os.path.join(build_dir, "CMakeCache.txt")) as f:
            if "RAFTMQ_SANITIZE:BOOL=ON" in f.read():
                san = ["-fsanitize=address,undefined"]
    except OSError:
        pass
    cmd = (["cc", "-std=c11", "-O2", "-g", "-Wall", "-Wextra", "-Werror"] +
           san + ["-D_POSIX_C_SOURCE=200809L", "-I",
                  os.path.join(REPO, "client"), "-o", out_path + ".tmp",
                  src, client, wire] + libs + ["-lpthread"])
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    if r.returncode:
        raise RuntimeError("adapter build failed: %s\n%s" % (" ".join(cmd),
                                                              r.stdout))
    os.rename(out_path + ".tmp", out_path)
    return out_path


class AdapterDied(Exception):
    pass


class Adapter:
    """One adapter process bound to one server list."""

    def __init__(self, binary, servers, timeout_ms, stderr_path=None):
        err = open(stderr_path, "ab") if stderr_path else subprocess.DEVNULL
        self.p = subprocess.Popen([binary, servers, str(timeout_ms)],
                                  stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=err,
                                  start_new_session=True)
        if stderr_path:
            err.close()
        self.buf = b""
        self.next_id = 1

    def call(self, req, timeout_s):
        """Sends `req` and waits for its reply. Raises TimeoutError or
        AdapterDied."""
        rid = self.next_id
        self.next_id += 1
        req = dict(req, id=rid)
        try:
            self.p.stdin.write((json.dumps(req) + "\n").encode())
            self.p.stdin.flush()
        except (BrokenPipeError, OSError):
            raise AdapterDied("write failed")
        deadline = time.monotonic() + timeout_s
        fd = self.p.stdout.fileno()
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                try:
                    rep = json.loads(line)
                except ValueError:
                    continue
                if rep.get("id") == rid:
                    return rep
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("adapter timeout")
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise AdapterDied("adapter exited (%s)" % self.p.poll())
                self.buf += chunk

    def close(self):
        try:
            self.p.kill()
        except OSError:
            pass
        try:
            self.p.wait(2)
        except subprocess.TimeoutExpired:
            pass
        for s in (self.p.stdin, self.p.stdout):
            try:
                s.close()
            except OSError:
                pass
