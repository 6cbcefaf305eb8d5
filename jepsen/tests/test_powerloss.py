"""The fsyncshadow shim (jepsen/powerloss/): the spec's self-test (write A
and fsync, write B without, SIGKILL, restore: exactly A), extended to
every path raft 0.22.1 and libuv use: pwrite, syscall(SYS_pwritev),
O_TMPFILE + linkat(/proc/self/fd/N), rename, unlink, and Linux AIO
(io_submit) with and without RWF_DSYNC; and the two mutation modes."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from harness import powerloss  # noqa: E402

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROG = os.path.join(HERE, "powerloss", "selftest.c")


@unittest.skipUnless(shutil.which("cc"), "needs a C compiler")
class Shim(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="fsyncshadow-test-")
        cls.lib = powerloss.build_shim(cls.tmp)
        cls.prog = os.path.join(cls.tmp, "selftest")
        subprocess.run(["cc", "-std=c11", "-O2", "-Wall", "-Wextra",
                        "-Werror", "-o", cls.prog, PROG], check=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def run_prog(self, mode, extra_env=None):
        base = tempfile.mkdtemp(dir=self.tmp)
        data, shadow = os.path.join(base, "data"), os.path.join(base,
                                                                "shadow")
        os.makedirs(data)
        with open(os.path.join(data, "old"), "w") as f:
            f.write("O")
        powerloss.init_shadow(data, shadow)
        env = dict(os.environ)
        env.update(powerloss.shim_env(self.lib, data, shadow, mode))
        env.update(extra_env or {})
        p = subprocess.run([self.prog, data], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        self.assertEqual(p.returncode, -9, p.stderr)
        self.assertEqual(p.stdout, b"ready\n")
        live = self.contents(data)
        diff = powerloss.restore(data, shadow)
        return live, self.contents(data), diff

    def contents(self, d):
        out = {}
        for n in sorted(os.listdir(d)):
            with open(os.path.join(d, n), "rb") as f:
                out[n] = f.read().decode()
        return out

    def test_normal(self):
        live, after, diff = self.run_prog("normal")
        self.assertEqual(live, {"aio-dsync": "D", "aio-plain": "P",
                                "meta": "Y", "old": "O", "plain": "AB",
                                "renamed": "R", "tmp": "T",
                                "vec": "V1V1"})
        self.assertEqual(after, {"aio-dsync": "D", "aio-plain": "",
                                 "meta": "X", "old": "O", "plain": "A",
                                 "renamed": "R", "tmp": "T", "vec": "V1"})
        self.assertEqual(sorted(c["file"] for c in diff["changed"]),
                         ["aio-plain", "meta", "plain", "vec"])

    def test_nosync_mutation(self):
        # Nothing written after start is durable; metadata is.
        live, after, diff = self.run_prog("nosync")
        self.assertEqual(after, {"aio-dsync": "", "aio-plain": "",
                                 "meta": "", "old": "O", "plain": "",
                                 "renamed": "", "tmp": "", "vec": ""})

    def test_lag_mutation(self):
        # A 60 s volatile cache: only rename/link commit data.
        live, after, diff = self.run_prog("lag", {"FSYNCSHADOW_LAG_MS":
                                                  "60000"})
        self.assertEqual(after, {"aio-dsync": "", "aio-plain": "",
                                 "meta": "", "old": "O", "plain": "",
                                 "renamed": "R", "tmp": "T", "vec": ""})

    def test_lag_zero(self):
        # With no lag a write is durable at the next I/O call of the
        # process, whichever file: "B" too.
        live, after, diff = self.run_prog("lag", {"FSYNCSHADOW_LAG_MS":
                                                  "0"})
        self.assertEqual(after["plain"], "AB")
        self.assertEqual(after["aio-dsync"], "D")


class Restore(unittest.TestCase):
    def test_restore_replaces_everything(self):
        base = tempfile.mkdtemp(prefix="fsyncshadow-restore-")
        try:
            data, shadow = os.path.join(base, "d"), os.path.join(base, "s")
            os.makedirs(os.path.join(data, "sub"))
            os.makedirs(shadow)
            for p, t in ((os.path.join(data, "a"), "live"),
                         (os.path.join(data, "only-live"), "x"),
                         (os.path.join(data, "sub", "b"), "y"),
                         (os.path.join(shadow, "a"), "dur")):
                with open(p, "w") as f:
                    f.write(t)
            diff = powerloss.restore(data, shadow)
            self.assertEqual(sorted(os.listdir(data)), ["a"])
            with open(os.path.join(data, "a")) as f:
                self.assertEqual(f.read(), "dur")
            self.assertEqual(diff["changed"],
                             [{"file": "a", "live": 4, "durable": 3}])
            self.assertEqual(diff["only-live"], ["only-live", "sub/b"])
        finally:
            shutil.rmtree(base)


if __name__ == "__main__":
    unittest.main()
