"""Fault self-tests on a real cluster (B.12.2): partition cut and heal seen
by a TCP probe, SIGSTOP seen in /proc, a libfaketime offset read back from
the node's own log timestamps."""
import datetime
import os
import re
import tempfile
import time

from .cluster import RAFT_PORT, make_cluster


class Journal:
    def append(self, op):
        pass


def _first_log_time(path):
    with open(path, errors="replace") as f:
        for line in f:
            m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z", line)
            if m:
                return datetime.datetime.strptime(
                    m.group(1)[:23], "%Y-%m-%dT%H:%M:%S.%f").replace(
                        tzinfo=datetime.timezone.utc).timestamp()
    return None


def run(opts):
    results = []

    def check(name, ok, detail=""):
        results.append((name, ok, detail))
        print("%-34s %s %s" % (name, "ok" if ok else "FAILED", detail),
              flush=True)

    with tempfile.TemporaryDirectory(prefix="jepsen-selftest-") as d:
        c = make_cluster(opts["mode"], d, opts, Journal())
        try:
            c.setup_network()
            for n in c.names:
                os.makedirs(c.node_dir(n), exist_ok=True)
            c.set_clock("n1", 3600)
            t0 = time.time()
            for n in c.names:
                c.start_node(n)
            time.sleep(1.5)
            check("nodes running", all(c.is_running(n) for n in c.names))
            ft = _first_log_time(os.path.join(c.node_dir("n1"), "node.log"))
            ft2 = _first_log_time(os.path.join(c.node_dir("n2"), "node.log"))
            off = (ft - t0) if ft else None
            check("faketime +3600 s on n1", off is not None and
                  3500 < off < 3700, "log offset %s s" % (
                      round(off, 1) if off is not None else None))
            check("no faketime on n2", ft2 is not None and
                  abs(ft2 - t0) < 60, "log offset %s s" % (
                      round(ft2 - t0, 1) if ft2 else None))
            c.reset_clocks()
            check("raft port n1->n2 reachable",
                  c.tcp_probe("n1", "n2", RAFT_PORT))
            c.grudge({"n2": ["n1"], "n1": ["n2"]})
            check("partition n1|n2 cuts n1->n2",
                  not c.tcp_probe("n1", "n2", RAFT_PORT))
            check("partition keeps n1->n3",
                  c.tcp_probe("n1", "n3", RAFT_PORT))
            c.heal_network()
            check("heal restores n1->n2", c.tcp_probe("n1", "n2", RAFT_PORT))
            c.pause("n3")
            check("SIGSTOP: /proc state T", c.pid_state("n3") == "T",
                  "state %s" % c.pid_state("n3"))
            c.resume("n3")
            time.sleep(0.2)
            check("SIGCONT: running again", c.pid_state("n3") in ("S", "R"),
                  "state %s" % c.pid_state("n3"))
            c.kill("n2")
            check("SIGKILL: n2 gone", not c.is_running("n2"))
            c.start_node("n2")
            time.sleep(0.5)
            check("restart: n2 running", c.is_running("n2"))
        finally:
            c.heal_all(restart=False)
            c.stop_all(5)
            c.teardown_network()
    bad = [r for r in results if not r[1]]
    print("selftest: %d checks, %d failed" % (len(results), len(bad)))
    return 1 if bad else 0
