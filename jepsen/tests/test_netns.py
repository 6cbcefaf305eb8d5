"""Network-namespace plumbing: setup, a partition cut and healed (probed
with ping), teardown leaves nothing behind. Needs root; skipped otherwise."""
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from harness.cluster import LocalNetns, sh  # noqa: E402


class Journal:
    def append(self, op):
        pass


@unittest.skipUnless(os.geteuid() == 0 and
                     subprocess.run(["which", "iptables"],
                                    stdout=subprocess.DEVNULL).returncode == 0,
                     "needs root and iptables")
class Netns(unittest.TestCase):
    def test_partition_cut_and_heal(self):
        with tempfile.TemporaryDirectory() as d:
            c = LocalNetns(d, {"node_bin": "/bin/false", "octet": 251},
                           Journal())
            try:
                c.setup_network()
                self.assertTrue(c.net_probe("n1", "n2"))
                self.assertTrue(c.net_probe("n2", "n3"))
                c.grudge({"n1": ["n2"], "n2": ["n1"]})
                self.assertFalse(c.net_probe("n1", "n2"))
                self.assertTrue(c.net_probe("n1", "n3"))
                c.heal_network()
                self.assertTrue(c.net_probe("n1", "n2"))
            finally:
                c.teardown_network()
            ns = sh(["ip", "netns", "list"]).stdout
            self.assertNotIn(c.ns["n1"], ns)
            links = sh(["ip", "link", "show"]).stdout
            self.assertNotIn(c.bridge, links)
            fwd = sh(["iptables", "-S", "FORWARD"]).stdout
            self.assertNotIn(c.bridge, fwd)


if __name__ == "__main__":
    unittest.main()
