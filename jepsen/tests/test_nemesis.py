"""Nemesis unit tests: grudges, targets, flip-flop scheduling and the final
heal, against a fake cluster (no processes, no root needed)."""
import os
import random
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from harness import nemesis  # noqa: E402
from harness.nemesis import Nemesis, complete_grudge, make_grudge  # noqa


class FakeCluster:
    def __init__(self):
        self.names = ["n1", "n2", "n3"]
        self.down, self.paused, self.rules, self.clock = set(), set(), {}, {}
        self.calls = []

    def kill(self, n):
        self.down.add(n)
        self.calls.append(("kill", n))

    def start_node(self, n):
        self.down.discard(n)
        self.calls.append(("start", n))

    def is_running(self, n):
        return n not in self.down

    def data_dir(self, n):
        return os.path.join(self.node_dir(n), "data")

    def pause(self, n):
        self.paused.add(n)

    def resume(self, n):
        self.paused.discard(n)

    def pid_state(self, n):
        return "T" if n in self.paused else "S"

    def grudge(self, g):
        self.rules = g

    def packet_loss(self, nodes, p):
        self.rules = {n: "loss" for n in nodes}

    def heal_network(self):
        self.rules = {}

    def set_clock(self, n, s):
        self.clock[n] = s

    def reset_clocks(self):
        self.clock = {n: 0 for n in self.names}


class Journal:
    def __init__(self):
        self.ops = []

    def nemesis(self, f, value, type_="info"):
        self.ops.append((f, value))


class Grudges(unittest.TestCase):
    def test_complete_grudge(self):
        g = complete_grudge([["n1"], ["n2", "n3"]])
        self.assertEqual(g, {"n1": ["n2", "n3"], "n2": ["n1"],
                             "n3": ["n1"]})

    def test_shapes(self):
        rng = random.Random(1)
        nodes = ["n1", "n2", "n3"]
        g, x = make_grudge("leader", nodes, rng, leader="n2")
        self.assertEqual(g["n2"], ["n1", "n3"])
        g, halves = make_grudge("majority-split", nodes, rng)
        self.assertEqual(len(halves), 1)
        self.assertEqual(len(g[halves[0]]), 2)
        g, d = make_grudge("bridge", nodes, rng)
        a, c = d["cut"]
        self.assertEqual(g, {a: [c], c: [a]})
        self.assertNotIn(d["bridge"][0], g)
        g, d = make_grudge("one-way", nodes, rng)
        self.assertEqual(len(g), 1)
        with self.assertRaises(ValueError):
            make_grudge("ring", nodes, rng)


class Scheduling(unittest.TestCase):
    def make(self, packages, leader="n3", seed=7):
        self.c = FakeCluster()
        self.j = Journal()
        return Nemesis(self.c, self.j, random.Random(seed), packages, 0.01,
                       lambda: leader)

    def test_kill_leader_flip_flop(self):
        n = self.make({"kill": ["leader"]})
        n.step("kill")
        self.assertEqual(self.c.down, {"n3"})
        n.step("kill")
        self.assertEqual(self.c.down, set())
        self.assertEqual([f for f, _ in self.j.ops], ["kill", "start"])

    def test_leader_unknown(self):
        n = self.make({"kill": ["leader"]}, leader=None)
        n.step("kill")
        self.assertEqual(self.j.ops[0][1]["note"], "leader-unknown")
        self.assertEqual(len(self.c.down), 1)

    def test_majority_and_all(self):
        n = self.make({"kill": ["majority"]})
        n.step("kill")
        self.assertEqual(len(self.c.down), 2)
        n = self.make({"kill": ["all"]})
        n.step("kill")
        self.assertEqual(len(self.c.down), 3)

    def test_pause_partition_clock_and_final_heal(self):
        n = self.make({"pause": ["one"], "partition": ["one"],
                       "clock": ["bump"]})
        n.step("pause")
        n.step("partition")
        n.step("clock")
        self.assertEqual(len(self.c.paused), 1)
        self.assertTrue(self.c.rules)
        self.assertTrue(any(v != 0 for v in self.c.clock.values()))
        self.c.kill("n1")
        n.final()
        self.assertEqual(self.c.paused, set())
        self.assertEqual(self.c.rules, {})
        self.assertEqual(self.c.down, set())
        self.assertTrue(all(v == 0 for v in self.c.clock.values()))
        fs = [f for f, _ in self.j.ops]
        for f in ("resume", "start", "stop-partition", "reset-clock"):
            self.assertIn(f, fs)

    def test_seeded_schedule_is_reproducible(self):
        seqs = []
        for _ in range(2):
            n = self.make({"kill": ["one", "majority"],
                           "partition": ["one", "bridge", "majority-split"]},
                          seed=42)
            for _ in range(12):
                n.step(n.rng.choice(sorted(n.packages)))
            seqs.append(self.j.ops)
        self.assertEqual(seqs[0], seqs[1])

    def test_bump_range(self):
        n = self.make({"clock": ["bump"]})
        for _ in range(50):
            n.step("clock")
            off = [v for v in self.c.clock.values() if v][:1]
            if off:
                self.assertTrue(0.011 <= abs(off[0]) <= 300, off)
            n.step("clock")

    def test_corrupt_file(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "seg")
            with open(path, "wb") as f:
                f.write(b"\0" * 100000)
            r = nemesis.corrupt_file(d, "truncate", random.Random(3))
            self.assertEqual(r["file"], "seg")
            self.assertEqual(os.path.getsize(path), 100000 - r["truncated"])
            r = nemesis.corrupt_file(d, "bitflip", random.Random(3))
            with open(path, "rb") as f:
                ones = sum(bin(b).count("1") for b in f.read())
            self.assertEqual(ones, r["flips"])
            self.assertGreater(r["flips"], 0)

    def test_corrupt_only_when_all_nodes_up(self):
        with tempfile.TemporaryDirectory() as d:
            n = self.make({"corrupt": ["truncate"]})
            self.c.node_dir = lambda node: os.path.join(d, node)
            for m in self.c.names:
                os.makedirs(os.path.join(d, m, "data"))
                with open(os.path.join(d, m, "data", "seg"), "wb") as f:
                    f.write(b"x" * 5000)
            n.step("corrupt")
            self.assertEqual(len(self.c.down), 1)
            n.step("corrupt")           # restart
            self.assertEqual(self.c.down, set())
            self.c.kill("n2")           # a node that stays down
            n.step("corrupt")
            self.assertEqual(self.j.ops[-1][0], "corrupt-skipped")
            self.assertEqual(self.c.down, {"n2"})

    def test_wipe_keeps_the_dir(self):
        with tempfile.TemporaryDirectory() as d:
            n = self.make({"wipe": ["all"]})
            self.c.node_dir = lambda node: os.path.join(d, node)
            for m in self.c.names:
                os.makedirs(os.path.join(d, m, "data", "sub"))
                with open(os.path.join(d, m, "data", "seg"), "wb") as f:
                    f.write(b"x")
                os.chmod(os.path.join(d, m, "data"), 0o750)
            n.step("wipe")
            self.assertEqual(self.c.down, set(self.c.names))
            for m in self.c.names:
                p = os.path.join(d, m, "data")
                self.assertEqual(os.listdir(p), [])
                self.assertEqual(os.stat(p).st_mode & 0o777, 0o750)
            n.step("wipe")
            self.assertEqual(self.c.down, set())
            self.assertEqual(self.j.ops[-1][0], "start-wiped")
        with tempfile.TemporaryDirectory() as d:
            nemesis.wipe_dir(os.path.join(d, "new"))
            self.assertTrue(os.path.isdir(os.path.join(d, "new")))

    def test_colors_cover_packages(self):
        for start, (pkg, stop) in nemesis.KINDS.items():
            self.assertIn(pkg, nemesis.COLORS)


if __name__ == "__main__":
    unittest.main()
