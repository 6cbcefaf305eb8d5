"""Docker-mode cluster: what cannot run is reported before a run (for
test-all's SKIP), test image tags, the compose override (addresses,
libfaketime, bind mount), the shared clock file, the test-all selection,
and (when a docker engine and raftmq:local exist) a cut, a kill/restart that
keeps the cut, the host path of a stopped node's data volume, a heal and a
pause really work."""
import datetime
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from harness import core  # noqa: E402
from harness.cluster import (RAFT_PORT, ClusterError, Docker,  # noqa: E402
                             FAKETIME_IMAGE_LIB, derived_tag, faketime_env,
                             unsupported, write_clock)


class Journal:
    def __init__(self):
        self.ops = []

    def append(self, op):
        self.ops.append(op)


def _have_tools():
    return os.geteuid() == 0 and all(shutil.which(t) for t in
                                     ("docker", "nsenter", "iptables"))


def _engine_and_image():
    if not _have_tools():
        return False
    try:
        return subprocess.run(["docker", "image", "inspect", "raftmq:local"],
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL,
                              timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


class PureLogic(unittest.TestCase):
    def test_unsupported(self):
        self.assertIsNone(unsupported("docker", {"nemesis": {
            "clock": ["bump"], "corrupt": ["bitflip"], "wipe": ["all"]},
            "test_fault": 1}))
        self.assertIn("3 nodes", unsupported("docker", {"nodes": 5}))
        self.assertIsNone(unsupported("local-netns", {"nodes": 5}))

    def test_derived_tag(self):
        pid = "sha256:" + "ab12" * 16
        self.assertEqual(derived_tag("faketime", pid),
                         "raftmq-jepsen:faketime-ab12ab12ab12")
        self.assertEqual(derived_tag("faults", pid, "0123456789ab"),
                         "raftmq-jepsen:faults-ab12ab12ab12-0123456789ab")

    def test_faketime_env_and_clock_file(self):
        env = faketime_env("/lib/x.so", "/jepsen/faketime.rc")
        self.assertEqual(env["LD_PRELOAD"], "/lib/x.so")
        self.assertEqual(env["FAKETIME_TIMESTAMP_FILE"],
                         "/jepsen/faketime.rc")
        self.assertEqual(env["FAKETIME_NO_CACHE"], "1")
        self.assertEqual(env["FAKETIME_DONT_FAKE_MONOTONIC"], "1")
        with tempfile.TemporaryDirectory() as d:
            rc, hist = os.path.join(d, "rc"), os.path.join(d, "hist")
            write_clock(rc, -12.5, hist)
            write_clock(rc, 3600, hist)
            with open(rc) as f:
                self.assertEqual(f.read(), "+3600.000\n")
            self.assertEqual(os.stat(rc).st_mode & 0o777, 0o644)
            with open(hist) as f:
                lines = f.read().split("\n")
            self.assertEqual([ln.split()[1] for ln in lines if ln],
                             ["-12.500", "+3600.000"])
            self.assertEqual(sorted(os.listdir(d)), ["hist", "rc"])

    def test_test_all_selection(self):
        full = core.select_scenarios(False, False)
        self.assertNotIn("corrupt", full)
        self.assertIn("chaos", full)
        self.assertIn("corrupt", core.select_scenarios(False, True))
        self.assertEqual(len(core.select_scenarios(False, True)),
                         len(core.SCENARIOS))
        quick = [s[0] for s in core.SCENARIOS if s[3] is not None]
        self.assertEqual(core.select_scenarios(True, False), quick)
        self.assertEqual(len(quick), 8)
        self.assertEqual(sorted(core.select_scenarios(True, True)),
                         sorted(quick + ["corrupt"]))

    def test_known_failure(self):
        r = {"valid": False, "liveness": {"valid": False},
             "queue": {"valid": True, "lost-count": 0}}
        self.assertEqual(core.known_failure("corrupt", r),
                         "FAIL (liveness): the corrupted node refuses to "
                         "start and needs an operator; lost 0")
        self.assertIsNone(core.known_failure("kill-one", r))
        r["queue"] = {"valid": False, "lost-count": 3}
        self.assertIsNone(core.known_failure("corrupt", r))


@unittest.skipUnless(_have_tools(), "needs root, docker, nsenter, iptables")
class Override(unittest.TestCase):
    def test_addresses_ports_restart(self):
        with tempfile.TemporaryDirectory() as d:
            c = Docker(d, {"octet": 200, "docker_port_base": 27600},
                       Journal())
            self.assertEqual(c.client_addr("n2"), "127.0.0.1:27602")
            self.assertTrue(c.project.startswith("raftmq-jepsen-"))
            c._write_override()
            with open(c.override) as f:
                text = f.read()
            for n in ("11", "12", "13"):
                self.assertIn("ipv4_address: 10.79.200.%s" % n, text)
            self.assertIn("subnet: 10.79.200.0/24", text)
            self.assertEqual(text.count('restart: "no"'), 3)
            self.assertEqual(text.count('image: "raftmq:local"'), 3)
            self.assertNotIn("LD_PRELOAD", text)
            self.assertNotIn("volumes:", text)

    def test_faketime_override(self):
        with tempfile.TemporaryDirectory() as d:
            c = Docker(d, {"octet": 200, "nemesis": {"clock": ["bump"]},
                           "node_args": ["--log-level", "debug"]},
                       Journal())
            self.assertEqual(c.ftlib, FAKETIME_IMAGE_LIB)
            c.image = "raftmq-jepsen:faketime-x"
            text = c.override_text()
            self.assertEqual(text.count(
                'LD_PRELOAD: "%s"' % FAKETIME_IMAGE_LIB), 3)
            self.assertEqual(text.count(
                'FAKETIME_TIMESTAMP_FILE: "/jepsen/faketime.rc"'), 3)
            self.assertIn('FAKETIME_DONT_FAKE_MONOTONIC: "1"', text)
            self.assertIn('- "%s:/jepsen:ro"' % os.path.join(
                os.path.abspath(d), "nodes", "n2"), text)
            self.assertIn('command: ["--log-level", "debug"]', text)
            self.assertEqual(text.count('image: "raftmq-jepsen:faketime-x"'),
                             3)
            os.makedirs(c.node_dir("n1"))
            c.set_clock("n1", -2)
            with open(os.path.join(c.node_dir("n1"), "faketime.rc")) as f:
                self.assertEqual(f.read(), "-2.000\n")
            # Without the clock nemesis there is no faketime image.
            c2 = Docker(d, {"octet": 200}, Journal())
            with self.assertRaises(ClusterError):
                c2.set_clock("n1", 1)
            c2.reset_clocks()


@unittest.skipUnless(_engine_and_image(),
                     "needs a running docker engine and raftmq:local")
class Plumbing(unittest.TestCase):
    def test_cut_kill_heal_pause(self):
        with tempfile.TemporaryDirectory() as d:
            j = Journal()
            c = Docker(d, {"octet": 201, "docker_port_base": 27610}, j)
            try:
                c.setup_network()
                for n in c.names:
                    self.assertTrue(c.start_node(n))
                self.assertTrue(c.tcp_probe("n1", "n2", RAFT_PORT))
                c.grudge({"n1": ["n2"], "n2": ["n1"]})
                self.assertFalse(c.tcp_probe("n1", "n2", RAFT_PORT))
                self.assertTrue(c.tcp_probe("n1", "n3", RAFT_PORT))
                with self.assertRaises(ClusterError):
                    c.data_dir("n2")    # running: never edited
                c.kill("n2")
                self.assertFalse(c.is_running("n2"))
                # The host side of the stopped node's /data volume.
                self.assertTrue(os.listdir(c.data_dir("n2")))
                self.assertTrue(c.start_node("n2"))
                # The restarted container gets its grudge back.
                self.assertFalse(c.tcp_probe("n2", "n1", RAFT_PORT))
                self.assertTrue(c.tcp_probe("n2", "n3", RAFT_PORT))
                c.heal_network()
                self.assertTrue(c.tcp_probe("n2", "n1", RAFT_PORT))
                c.pause("n3")
                self.assertEqual(c.pid_state("n3"), "paused")
                c.resume("n3")
                self.assertEqual(c.pid_state("n3"), "running")
                st = c.stop_all(5)
                self.assertEqual(sorted(st), ["n1", "n2", "n3"])
                self.assertTrue(os.path.exists(os.path.join(
                    c.node_dir("n1"), "node.log")))
            finally:
                c.stop_all(5)
                c.teardown_network()
            r = subprocess.run(["docker", "ps", "-a", "-q", "--filter",
                                "label=com.docker.compose.project=" +
                                c.project], stdout=subprocess.PIPE,
                               text=True)
            self.assertEqual(r.stdout.strip(), "")


def _faketime_image():
    """True when this raftmq:local's faketime test image is already built
    (the unit tests never build it: that needs Debian's mirror)."""
    if not _engine_and_image():
        return False
    r = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}",
                        "raftmq:local"], stdout=subprocess.PIPE, text=True)
    tag = derived_tag("faketime", r.stdout.strip())
    return subprocess.run(["docker", "image", "inspect", tag],
                          stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


@unittest.skipUnless(_faketime_image(), "needs a running docker engine and "
                     "raftmq-jepsen:faketime-* (run the clock scenario once "
                     "with --mode docker)")
class FaketimePlumbing(unittest.TestCase):
    def test_offset_reaches_the_node(self):
        with tempfile.TemporaryDirectory() as d:
            c = Docker(d, {"octet": 202, "docker_port_base": 27620,
                           "docker_faketime": True}, Journal())
            try:
                c.setup_network()
                self.assertTrue(c.image.startswith("raftmq-jepsen:faketime"))
                c.set_clock("n1", 3600)
                t0 = time.time()
                for n in c.names:
                    c.start_node(n)
                time.sleep(1.5)
                off = {}
                for n in ("n1", "n2"):
                    r = c.docker("logs", c.cid[n])
                    off[n] = _first_log_time(r.stdout + r.stderr)
            finally:
                c.stop_all(5)
                c.teardown_network()
            self.assertTrue(off["n1"] and 3500 < off["n1"] - t0 < 3700, off)
            self.assertTrue(off["n2"] and abs(off["n2"] - t0) < 60, off)


def _first_log_time(text):
    for line in text.splitlines():
        m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)", line)
        if m:
            return datetime.datetime.strptime(
                m.group(1), "%Y-%m-%dT%H:%M:%S").replace(
                    tzinfo=datetime.timezone.utc).timestamp()
    return None


if __name__ == "__main__":
    unittest.main()
