"""History writer/reader and report smoke tests."""
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from harness import checker, report  # noqa: E402
from harness.history import (HistoryWriter, pair_ops, parse_value,  # noqa
                             read_history)


class History(unittest.TestCase):
    def test_writer_flushes_and_reader_skips_torn_line(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "history.jsonl")
            w = HistoryWriter(path)
            w.set_phase("main")
            w.append({"type": "invoke", "process": 0, "f": "enqueue",
                      "queue": "q0", "value": "1:0:1"})
            # Readable before close: flushed per op.
            self.assertEqual(len(read_history(path)), 2)
            w.append({"type": "ok", "process": 0, "f": "enqueue",
                      "queue": "q0", "value": "1:0:1", "seq": 1})
            w.close()
            w.append({"type": "ok", "process": 9, "f": "enqueue"})
            with open(path, "a") as f:
                f.write('{"type": "invo')
            ops = read_history(path)
            self.assertEqual([o["index"] for o in ops], [0, 1, 2])
            self.assertEqual(ops[1]["phase"], "main")
            self.assertLess(ops[1]["time"], ops[2]["time"] + 1)
            self.assertEqual(len(pair_ops(ops)), 1)

    def test_parse_value(self):
        self.assertEqual(parse_value("12:3:4"), (12, 3, 4))
        self.assertIsNone(parse_value("probe"))
        self.assertIsNone(parse_value(None))


class Report(unittest.TestCase):
    def test_reports_render(self):
        ops = []
        t = 0

        def add(op):
            nonlocal t
            op.update(index=len(ops), time=t)
            t += 10**8
            ops.append(op)
        add({"type": "log", "process": "harness", "f": "phase",
             "value": "main"})
        add({"type": "invoke", "process": 0, "f": "enqueue", "queue": "q0",
             "value": "1:0:1"})
        add({"type": "ok", "process": 0, "f": "enqueue", "queue": "q0",
             "value": "1:0:1", "seq": 1})
        add({"type": "info", "process": "nemesis", "f": "kill",
             "value": {"nodes": ["n1"]}})
        add({"type": "invoke", "process": 0, "f": "enqueue", "queue": "q0",
             "value": "2:0:2"})
        add({"type": "ok", "process": 0, "f": "enqueue", "queue": "q0",
             "value": "2:0:2", "seq": 2})
        add({"type": "log", "process": "harness", "f": "phase",
             "value": "drain"})
        add({"type": "invoke", "process": 1, "f": "dequeue", "queue": "q0",
             "value": None, "phase": "drain"})
        add({"type": "ok", "process": 1, "f": "dequeue", "queue": "q0",
             "value": "1:0:1", "seq": 1, "ack": "ok", "phase": "drain"})
        add({"type": "log", "process": "harness", "f": "drain-complete",
             "value": {"complete": True, "drain-s": 1}})
        test = {"name": "unit", "seed": 1, "opts": {"mode": "x"},
                "nodes": ["n1"]}
        with tempfile.TemporaryDirectory() as d:
            run = os.path.join(d, "store", "unit", "r1")
            os.makedirs(run)
            res = checker.check_all(ops, run)
            report.write_all(run, test, ops, res)
            s = report.summary(test, ops, res, run)
            self.assertTrue(s.splitlines()[-1].startswith("VERDICT: FAIL"))
            self.assertIn("LOST 1", s)
            with open(os.path.join(run, "results.json")) as f:
                r = json.load(f)
            self.assertIs(r["valid"], False)
            self.assertEqual(r["queue"]["lost"], ["2:0:2"])
            with open(os.path.join(run, "index.html")) as f:
                html = f.read()
            self.assertEqual(html.count("<svg"), 5)
            self.assertNotIn("plot error", html)
            self.assertIn("#E9A4A0", html)  # the kill band
            self.assertNotIn("http://", html.replace(
                'xmlns="http://www.w3.org/2000/svg"', ""))
            self.assertTrue(os.path.exists(os.path.join(
                run, "anomalies", "queue-lost.json")))


if __name__ == "__main__":
    unittest.main()
