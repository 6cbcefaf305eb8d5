"""Docker-mode cluster: unsupported scenarios are refused, the compose
override pins addresses, and (when a docker engine and raftmq:local exist)
a cut, a kill/restart that keeps the cut, a heal and a pause really work."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from harness.cluster import RAFT_PORT, ClusterError, Docker  # noqa: E402


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


class Refusals(unittest.TestCase):
    def test_unsupported_packages(self):
        with tempfile.TemporaryDirectory() as d:
            for pkg in ("clock", "corrupt", "wipe"):
                with self.assertRaises(ClusterError) as cm:
                    Docker(d, {"nemesis": {pkg: ["one"]}}, Journal())
                self.assertIn("local-netns", str(cm.exception))

    def test_test_fault_build(self):
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaises(ClusterError):
                Docker(d, {"nemesis": {"kill": ["leader"]}, "test_fault": 1},
                       Journal())


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
                c.kill("n2")
                self.assertFalse(c.is_running("n2"))
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


if __name__ == "__main__":
    unittest.main()
