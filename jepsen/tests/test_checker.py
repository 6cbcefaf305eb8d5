"""Checker unit tests on hand-made histories: one test per rule."""
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from harness import checker  # noqa: E402
from harness.history import pair_ops  # noqa: E402


class H:
    """Builds a history: each call appends invoke+completion ops."""

    def __init__(self):
        self.ops = []
        self.t = 0

    def _add(self, op):
        op["index"] = len(self.ops)
        op.setdefault("time", self.t)
        self.t += 10
        self.ops.append(op)
        return op

    def op(self, p, f, q, inv_value, typ, **kw):
        self._add({"type": "invoke", "process": p, "f": f, "queue": q,
                   "value": inv_value, "phase": kw.pop("phase", "main")})
        c = {"type": typ, "process": p, "f": f, "queue": q,
             "value": kw.pop("value", inv_value), "phase": "main"}
        c.update(kw)
        return self._add(c)

    def enq(self, p, v, typ="ok", q="q0", seq=None, **kw):
        return self.op(p, "enqueue", q, v, typ, seq=seq, **kw)

    def deq(self, p, v, ack="ok", q="q0", seq=None, redelivered=False,
            f="dequeue"):
        return self.op(p, f, q, None, "ok", value=v, seq=seq, ack=ack,
                       redelivered=redelivered)

    def empty(self, p, q="q0"):
        return self.op(p, "dequeue", q, None, "fail", value=None,
                       error="empty")

    def invoke_only(self, p, f, v, q="q0"):
        return self._add({"type": "invoke", "process": p, "f": f,
                          "queue": q, "value": v, "phase": "main"})

    def drained(self, complete=True):
        self._add({"type": "log", "process": "harness", "f": "drain-complete",
                   "value": {"complete": complete, "drain-s": 1.0}})
        return self


def q(h, **opts):
    return checker.check_queue(h.ops, opts)


class QueueChecker(unittest.TestCase):
    def test_clean(self):
        h = H()
        h.enq(0, "1:0:1")
        h.deq(1, "1:0:1")
        r = q(h.drained())
        self.assertIs(r["valid"], True)
        self.assertEqual(r["acknowledged-count"], 1)
        self.assertEqual(r["ok-count"], 1)

    def test_lost(self):
        h = H()
        h.enq(0, "1:0:1")
        h.enq(0, "2:0:2")
        h.enq(0, "3:0:3")
        h.deq(1, "1:0:1")
        h.deq(1, "3:0:3")
        r = q(h.drained())
        self.assertIs(r["valid"], False)
        self.assertEqual(r["lost"], ["2:0:2"])
        self.assertEqual(r["lost-breakdown"], {"prefix": 0, "middle": 1,
                                               "postfix": 0})
        self.assertEqual(r["bad-error-types"], ["lost"])

    def test_lost_prefix_postfix(self):
        h = H()
        for i in range(1, 5):
            h.enq(0, "%d:0:%d" % (i, i))
        h.deq(1, "2:0:2")
        h.deq(1, "3:0:3")
        r = q(h.drained())
        self.assertEqual(r["lost-breakdown"], {"prefix": 1, "middle": 0,
                                               "postfix": 1})

    def test_incomplete_drain_is_unseen_unknown(self):
        h = H()
        h.enq(0, "1:0:1")
        r = q(h.drained(False))
        self.assertEqual(r["valid"], "unknown")
        self.assertEqual(r["lost-count"], 0)
        self.assertEqual(r["unseen"], ["1:0:1"])

    def test_unexpected(self):
        h = H()
        h.enq(0, "1:0:1")
        h.deq(1, "1:0:1")
        h.deq(1, "99:9:9")
        r = q(h.drained())
        self.assertIs(r["valid"], False)
        self.assertEqual(r["unexpected"], ["99:9:9"])
        self.assertEqual(r["bad-error-types"], ["unexpected"])

    def test_duplicate_allowed(self):
        h = H()
        h.enq(0, "1:0:1")
        h.deq(1, "1:0:1", ack="info")
        h.deq(2, "1:0:1", redelivered=True)
        r = q(h.drained())
        self.assertIs(r["valid"], True)
        self.assertEqual(r["duplicated-count"], 1)
        self.assertEqual(r["duplicate-deliveries"], 1)
        self.assertEqual(r["duplicated-explained-count"], 1)
        self.assertEqual(r["duplicated-after-confirmed-ack-count"], 0)

    def test_duplicate_after_confirmed_ack(self):
        h = H()
        h.enq(0, "1:0:1")
        h.deq(1, "1:0:1", ack="ok")
        h.deq(2, "1:0:1", redelivered=True)
        r = q(h.drained())
        self.assertEqual(r["duplicated-after-confirmed-ack-count"], 1)
        self.assertIs(r["valid"], False)
        r = q(h, **{"strict-acks": False})
        self.assertIs(r["valid"], True)

    def test_consume_duplicate_after_ack_is_not_provable(self):
        h = H()
        h.enq(0, "1:0:1")
        h.deq(1, "1:0:1", ack="ok")
        h.op(2, "dequeue", "q0", None, "ok", value="1:0:1", ack="fail",
             redelivered=True, via="consume")
        h.ops[-2]["via"] = "consume"
        r = q(h.drained())
        self.assertIs(r["valid"], True)
        self.assertEqual(r["duplicated-explained-count"], 1)

    def test_recovered_and_unknown(self):
        h = H()
        h.enq(0, "1:0:1")
        h.enq(0, "2:0:2", typ="info", error="ETIMEOUT")
        h.enq(3, "3:3:1", typ="info", error="ETIMEOUT")
        h.invoke_only(4, "enqueue", "4:4:1")
        h.deq(1, "1:0:1")
        h.deq(1, "2:0:2")
        r = q(h.drained())
        self.assertIs(r["valid"], True)
        self.assertEqual(r["recovered"], ["2:0:2"])
        self.assertEqual(r["unknown"], ["3:3:1", "4:4:1"])

    def test_failed_enqueue_delivered(self):
        h = H()
        h.enq(0, "1:0:1")
        h.enq(0, "2:0:2", typ="fail", error="EINVAL")
        h.deq(1, "1:0:1")
        h.deq(1, "2:0:2")
        r = q(h.drained())
        self.assertIs(r["valid"], False)
        self.assertEqual(r["failed-enqueue-delivered"], ["2:0:2"])
        r = q(h, **{"lenient-fail": True})
        self.assertIs(r["valid"], True)
        self.assertEqual(r["recovered-count"], 1)

    def test_delivered_before_sent(self):
        h = H()
        h.enq(0, "1:0:1")
        h.deq(1, "2:0:2")
        h.enq(0, "2:0:2")
        h.deq(1, "1:0:1")
        r = q(h.drained())
        self.assertIs(r["valid"], False)
        self.assertEqual(r["delivered-before-sent"], ["2:0:2"])

    def test_unconsumed(self):
        h = H()
        h.enq(0, "1:0:1")
        h.deq(1, "1:0:1", ack="none", f="dequeue-noack")
        h.empty(2)
        r = q(h.drained())
        self.assertIs(r["valid"], False)
        self.assertEqual(r["unconsumed"], ["1:0:1"])
        self.assertEqual(r["lost-count"], 0)

    def test_unconsumed_explained_by_indeterminate_dequeue(self):
        # A dequeue that timed out after the message came back may have
        # taken and acked it: not a failure. One such dequeue explains one
        # value only, and only one delivered before it ended.
        h = H()
        h.enq(0, "1:0:1")
        h.enq(0, "1:0:2")
        h.deq(1, "1:0:1", ack="none", f="dequeue-noack")
        h.deq(1, "1:0:2", ack="none", f="dequeue-noack")
        h.op(2, "dequeue", "q0", None, "info", value=None, error="ETIMEOUT")
        h.empty(3)
        r = q(h.drained())
        self.assertEqual(r["unconsumed-indeterminate-count"], 1)
        self.assertEqual(r["unconsumed"], ["1:0:2"])
        self.assertIs(r["valid"], False)
        h = H()
        h.enq(0, "1:0:1")
        h.op(2, "dequeue", "q0", None, "info", value=None, error="ETIMEOUT")
        h.deq(1, "1:0:1", ack="none", f="dequeue-noack")
        h.empty(3)
        r = q(h.drained())
        self.assertEqual(r["unconsumed"], ["1:0:1"])
        h = H()
        h.enq(0, "1:0:1")
        h.deq(1, "1:0:1", ack="none", f="dequeue-noack")
        h.op(2, "dequeue", "q0", None, "info", value=None, error="ETIMEOUT")
        h.empty(3)
        r = q(h.drained())
        self.assertIs(r["valid"], True)
        self.assertEqual(r["unconsumed-indeterminate"], ["1:0:1"])

    def test_noack_then_redelivered_is_fine(self):
        h = H()
        h.enq(0, "1:0:1")
        h.deq(1, "1:0:1", ack="none", f="dequeue-noack")
        h.deq(2, "1:0:1", redelivered=True)
        r = q(h.drained())
        self.assertIs(r["valid"], True)

    def test_ack_indeterminate_not_redelivered(self):
        h = H()
        h.enq(0, "1:0:1")
        h.deq(1, "1:0:1", ack="info")
        r = q(h.drained())
        self.assertIs(r["valid"], True)
        self.assertEqual(r["ack-indeterminate-not-redelivered-count"], 1)

    def test_nothing_acked_is_unknown(self):
        h = H()
        h.enq(0, "1:0:1", typ="fail", error="ECONNECT")
        r = q(h.drained())
        self.assertEqual(r["valid"], "unknown")


class OrderChecker(unittest.TestCase):
    def test_clean(self):
        h = H()
        h.enq(0, "1:0:1", seq=1)
        h.enq(0, "2:0:2", seq=2)
        h.deq(1, "1:0:1", seq=1)
        h.deq(1, "2:0:2", seq=2)
        r = checker.check_order(h.drained().ops)
        self.assertIs(r["valid"], True)

    def test_inconsistent_seq(self):
        h = H()
        h.enq(0, "1:0:1", seq=1)
        h.enq(0, "2:0:2", seq=2)
        h.deq(1, "3:3:1", seq=1)
        r = checker.check_order(h.drained().ops, "none")
        self.assertIs(r["valid"], False)
        self.assertEqual(r["inconsistent-seq"][0]["values"],
                         ["1:0:1", "3:3:1"])

    def test_duplicate_in_log(self):
        h = H()
        h.enq(0, "1:0:1", seq=1)
        h.deq(1, "1:0:1", seq=5)
        r = checker.check_order(h.drained().ops)
        self.assertEqual(r["duplicate-in-log"], ["1:0:1"])
        self.assertIs(r["valid"], True)

    def test_nonmonotonic_send(self):
        h = H()
        h.enq(0, "1:0:1", seq=5)
        h.enq(0, "2:0:2", seq=3)
        r = checker.check_order(h.drained().ops)
        self.assertIs(r["valid"], False)
        self.assertEqual(r["nonmonotonic-send-count"], 1)
        # Different producers: fine per-producer, not for total order.
        h = H()
        h.enq(0, "1:0:1", seq=5)
        h.enq(1, "2:1:1", seq=3)
        self.assertIs(checker.check_order(h.drained().ops)["valid"], True)
        r = checker.check_order(h.ops, "total")
        self.assertEqual(r["nonmonotonic-send-count"], 1)

    def test_nonmonotonic_delivery(self):
        h = H()
        h.enq(0, "1:0:1", seq=1)
        h.enq(0, "2:0:2", seq=2)
        h.deq(1, "2:0:2", seq=2)
        h.deq(1, "1:0:1", seq=1)
        r = checker.check_order(h.drained().ops)
        self.assertIs(r["valid"], False)
        self.assertEqual(r["nonmonotonic-delivery-count"], 1)
        self.assertEqual(r["nonmonotonic-first-delivery-count"], 1)

    def test_consume_prefetch_exempt_from_first_delivery_order(self):
        h = H()
        h.enq(0, "1:0:1", seq=1)
        h.enq(0, "2:0:2", seq=2)
        h.deq(2, "2:0:2", seq=2)
        h.op(1, "dequeue", "q0", None, "ok", value="1:0:1", seq=1,
             ack="ok", redelivered=False, via="consume")
        h.ops[-2]["via"] = "consume"
        r = checker.check_order(h.drained().ops)
        self.assertEqual(r["nonmonotonic-first-delivery-count"], 0)

    def test_redelivery_exempt(self):
        h = H()
        h.enq(0, "1:0:1", seq=1)
        h.enq(0, "2:0:2", seq=2)
        h.deq(1, "1:0:1", seq=1, ack="info")
        h.deq(1, "2:0:2", seq=2)
        h.deq(1, "1:0:1", seq=1, redelivered=True)
        r = checker.check_order(h.drained().ops)
        self.assertIs(r["valid"], True)

    def test_lost_write(self):
        h = H()
        h.enq(0, "1:0:1", seq=1)
        h.enq(0, "2:0:2", seq=2)
        h.deq(1, "2:0:2", seq=2)
        r = checker.check_order(h.drained().ops, "none")
        self.assertEqual(r["lost-write"], ["1:0:1"])
        self.assertIs(r["valid"], False)
        h2 = H()
        h2.ops = [o for o in h.ops if o.get("f") != "drain-complete"]
        r = checker.check_order(h2.ops, "none")
        self.assertEqual(r["valid"], "unknown")


class OtherCheckers(unittest.TestCase):
    def test_liveness(self):
        h = H()
        h.enq(0, "1:0:1")
        h.drained()
        self.assertIs(checker.check_liveness(h.ops)["valid"], True)
        h._add({"type": "info", "process": "watchdog", "f": "node-exited",
                "value": {"node": "n2", "status": -11}})
        r = checker.check_liveness(h.ops)
        self.assertIs(r["valid"], False)
        self.assertIn("unexpected-node-exit", r["bad-error-types"])
        h = H().drained(False)
        self.assertIn("drain-incomplete",
                      checker.check_liveness(h.ops)["bad-error-types"])
        # No drain at all (the harness stopped early): unknown, not FAIL.
        self.assertEqual(checker.check_liveness(H().ops)["valid"], "unknown")

    def test_unavailable_after_heal(self):
        h = H()
        h._add({"type": "log", "process": "harness", "f": "phase",
                "value": "post-heal"})
        h.drained()
        r = checker.check_liveness(h.ops)
        self.assertIn("unavailable-after-heal", r["bad-error-types"])

    def test_logs(self):
        with tempfile.TemporaryDirectory() as d:
            os.makedirs(os.path.join(d, "nodes", "n1"))
            with open(os.path.join(d, "nodes", "n1", "node.log"), "w") as f:
                f.write("ok\nnode: fsm.c:10: x: Assertion `a' failed.\n")
            r = checker.check_logs(d)
            self.assertIs(r["valid"], False)
            self.assertEqual(r["matches"][0]["node"], "n1")

    def test_stats_and_exceptions(self):
        h = H()
        h.enq(0, "1:0:1")
        h.enq(0, "2:0:2", typ="info", error="ETIMEOUT")
        r = checker.check_stats(h.ops)
        self.assertEqual(r["valid"], "unknown")  # dequeue never succeeded
        self.assertEqual(r["by-f"]["enqueue"]["info-count"], 1)
        e = checker.check_exceptions(h.ops)
        self.assertEqual(e["exceptions"][0]["error"], "enqueue ETIMEOUT")

    def test_pairing_and_crash_safe_compose(self):
        h = H()
        h.enq(0, "1:0:1")
        h.invoke_only(0, "enqueue", "2:0:2")
        self.assertEqual(len(pair_ops(h.ops)), 2)
        self.assertEqual(checker.merge_valid([True, "unknown", True]),
                         "unknown")
        self.assertIs(checker.merge_valid([True, "unknown", False]), False)
        h.deq(1, "1:0:1", seq=1)
        h.drained()
        r = checker.check_all(h.ops)
        self.assertIn(r["valid"], (True, "unknown"))
        self.assertIs(r["queue"]["valid"], True)

    def test_fault_windows(self):
        ops = [{"process": "nemesis", "type": "info", "f": "kill",
                "time": 10},
               {"process": "nemesis", "type": "info", "f": "start",
                "time": 20},
               {"process": "nemesis", "type": "info", "f": "pause",
                "time": 30},
               {"process": "x", "type": "log", "f": "y", "time": 50}]
        self.assertEqual(checker.fault_windows(ops), [(10, 20), (30, 50)])


if __name__ == "__main__":
    unittest.main()
