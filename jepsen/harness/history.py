"""History model: op records, a JSON-lines writer flushed per op, and readers."""
import datetime
import json
import threading
import time

CLIENT_FS = ("enqueue", "dequeue", "dequeue-noack")


class HistoryWriter:
    """Appends ops to history.jsonl, one flushed line per op, thread-safe.

    `time` is CLOCK_MONOTONIC ns since the writer was created; `wall` is the
    UTC wall time, only for lining ops up with node logs."""

    def __init__(self, path):
        self.path = path
        self.f = open(path, "a", buffering=1)
        self.lock = threading.Lock()
        self.t0 = time.monotonic_ns()
        self.index = 0
        self.phase = "setup"

    def now(self):
        return time.monotonic_ns() - self.t0

    def append(self, op):
        with self.lock:
            if self.f.closed:
                # A straggler thread after teardown: nothing to record.
                return dict(op)
            op = dict(op)
            op["index"] = self.index
            self.index += 1
            op.setdefault("time", self.now())
            op["wall"] = datetime.datetime.now(datetime.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            op.setdefault("phase", self.phase)
            self.f.write(json.dumps(op, sort_keys=True) + "\n")
            self.f.flush()
            return op

    def log(self, f, value=None):
        return self.append({"type": "log", "process": "harness", "f": f,
                            "value": value})

    def set_phase(self, phase):
        self.phase = phase
        self.log("phase", phase)

    def nemesis(self, f, value, type_="info"):
        return self.append({"type": type_, "process": "nemesis", "f": f,
                            "value": value})

    def close(self):
        with self.lock:
            self.f.close()


def read_history(path):
    """Reads history.jsonl. A truncated last line (harness crash) is
    skipped."""
    ops = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                ops.append(json.loads(line))
            except ValueError:
                break
    return ops


def is_client(op):
    return isinstance(op.get("process"), int) and op.get("f") in CLIENT_FS


def pair_ops(ops):
    """Pairs each client invoke with its completion (same process, next op).

    Returns a list of (invoke, completion-or-None) in invoke order."""
    pending = {}
    pairs = []
    for op in ops:
        if not is_client(op):
            continue
        p = op["process"]
        if op["type"] == "invoke":
            if p in pending:
                pairs.append((pending.pop(p), None))
            pending[p] = op
        elif p in pending:
            pairs.append((pending.pop(p), op))
    for inv in pending.values():
        pairs.append((inv, None))
    pairs.sort(key=lambda pc: pc[0]["index"])
    return pairs


def parse_value(v):
    """Splits "id:process:pseq" into ints, or None."""
    try:
        a, b, c = v.split(":")
        return int(a), int(b), int(c)
    except (AttributeError, ValueError):
        return None


def write_history_txt(ops, path):
    """Tab-separated history in Jepsen's layout."""
    with open(path, "w") as f:
        for op in ops:
            val = op.get("value")
            if not isinstance(val, str):
                val = json.dumps(val)
            f.write("%d\t%.3f\t%s\t%s\t%s\t%s\t%s\t%s\n" % (
                op.get("index", 0), op.get("time", 0) / 1e9,
                op.get("process"), op.get("type"), op.get("f"),
                op.get("queue") or "", val, op.get("error") or ""))
