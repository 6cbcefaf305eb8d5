"""Scripted nemeses for the scenarios of issue 10 (rolling restart with
changed flags, leader clock jump with timer probes, large messages), the
final replica-equality sample every scenario ends with, and the CLI
probes (`raftmq cluster status` digests, `raftmq cluster config`).

A script runs in its own thread during the main phase (instead of the
random flip-flop nemesis), journals its faults as `process: "nemesis"`
ops and its measurements as `log` markers, and stops when `stop` is set.
"""
import os
import re
import subprocess
import threading
import time

from .client import Adapter, AdapterDied

# ---- the raftmq CLI --------------------------------------------------------


def cli_path(test):
    return os.path.join(test.o["build_dir"], "client", "raftmq")


def cli(test, args, timeout=15):
    """Runs `raftmq -s <every node> ARGS`; (returncode, stdout+stderr)."""
    servers = ",".join(test.cluster.client_addr(n) for n in
                       test.cluster.names)
    try:
        r = subprocess.run([cli_path(test), "-s", servers] + args,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        return 255, str(e)
    return r.returncode, r.stdout


STATUS_ROW = re.compile(r"^\s*(\d+)\b(.*)$")
DIGEST = re.compile(r"\bapplied\s+(\d+)\s+digest\s+([0-9A-Fa-f]+)")


def parse_cluster_status(text):
    """{member id: {"applied": N, "digest": HEX, "diverged": bool}} for the
    rows of `raftmq cluster status` that carry `applied N digest HEX` (the
    contract of issue 10); {} when the binary does not print digests."""
    out = {}
    for line in text.splitlines():
        m = STATUS_ROW.match(line)
        if not m:
            continue
        d = DIGEST.search(m.group(2))
        if d:
            out[int(m.group(1))] = {
                "applied": int(d.group(1)), "digest": d.group(2).lower(),
                "diverged": bool(re.search(r"\bdiverged\b", m.group(2)))}
        elif re.search(r"\bdiverged\b", m.group(2)):
            out[int(m.group(1))] = {"applied": None, "digest": None,
                                    "diverged": True}
    return out


def config_supported(test):
    """True when the binary has `raftmq cluster config get`."""
    rc, out = cli(test, ["cluster", "config", "get"])
    return rc == 0 and bool(out.strip())


def config_set(test, kv):
    """`raftmq cluster config set k=v ...`, journaled; returns ok."""
    if not config_supported(test):
        test.j.nemesis("config-set-unsupported", {
            "want": kv, "why": "this raftmq binary has no `cluster config` "
            "(issue 10 adds it); the replicated value was not changed"})
        test.say("config set %s: NOT SUPPORTED by this binary" % kv)
        return False
    rc, out = cli(test, ["cluster", "config", "set"] + list(kv))
    test.j.nemesis("config-set", {"kv": list(kv), "rc": rc,
                                  "out": out.strip()[-500:]})
    return rc == 0


# ---- one-shot adapter calls -------------------------------------------------


def call(test, node, req, timeout=10.0, timeout_ms=None):
    """One request on a fresh adapter bound to `node`; the reply dict, or
    {"type": "info", "error": ...}."""
    a = Adapter(test.adapter, test.cluster.client_addr(node),
                timeout_ms or 4000, os.path.join(test.dir, "adapters.stderr"))
    try:
        return a.call(req, timeout)
    except TimeoutError:
        return {"type": "info", "error": "HARNESS-TIMEOUT"}
    except AdapterDied as e:
        return {"type": "info", "error": "ADAPTER-DIED", "msg": str(e)}
    finally:
        a.close()


def wait_leader(test, stop, limit=20.0):
    end = time.monotonic() + limit
    while time.monotonic() < end and not stop.is_set():
        ld = test.leader()
        if ld:
            return ld
        time.sleep(0.3)
    return None


def sleep(stop, s):
    return stop.wait(s)


# ---- replica equality (every scenario) ---------------------------------------

STAT_KEYS = ("ready", "delayed", "in_flight", "bytes", "consumers",
             "published", "acked", "dead_lettered", "expired", "dropped",
             "deduplicated", "last_seq")


def _queues(test, node):
    if not test.cluster.is_running(node):
        return None
    r = call(test, node, {"op": "list"}, 5)
    if r.get("type") != "ok" or r.get("error"):
        return None
    return {q["name"]: {k: q.get(k) for k in STAT_KEYS}
            for q in r.get("queues", [])}


def _stable_applied(test, limit_s=20):
    """Waits until every node reports the same applied index twice in a
    row; returns it or None."""
    end = time.monotonic() + limit_s
    prev = None
    while time.monotonic() < end:
        sts = [test.status(n) for n in test.cluster.names]
        ap = {s.get("applied") for s in sts if s}
        cur = ap.pop() if len(ap) == 1 and all(sts) else None
        if cur is not None and cur == prev:
            return cur
        prev = cur
        time.sleep(0.5)
    return None


def rotation_sample(test, limit_s=150):
    """Fallback for a binary whose followers proxy every request (queue
    stats included) to the leader, so that a follower's own state cannot
    be read: each node in turn is made the leader (the current leader is
    restarted, same flags, until the node leads; at most 4 times), and
    its queue stats are read while it leads. Returns the `replicas`
    marker (mode "rotation")."""
    c = test.cluster
    end = time.monotonic() + limit_s
    nodes, restarts = {}, []
    for n in c.names:
        ld = None
        if not c.is_running(n):
            nodes[n] = {"applied": None, "moved": True, "queues": None,
                        "digest": None, "digest-applied": None,
                        "diverged": False, "leader-when-read": False,
                        "note": "not running"}
            continue
        for _ in range(5):
            ld = wait_leader(test, threading.Event(), 15)
            if ld == n or ld is None or time.monotonic() > end:
                break
            restarts.append({"node": ld, "for": n})
            test.j.nemesis("restart-for-sample", {"node": ld, "for": n})
            c.restart_node(ld, c.node_extra.get(ld, []))
            time.sleep(1)
        ap = _stable_applied(test) if ld == n else None
        q = _queues(test, n) if ld == n else None
        st = test.status(n) or {}
        nodes[n] = {"applied": st.get("applied"), "moved": ap is None or
                    st.get("applied") != ap, "queues": q, "digest": None,
                    "digest-applied": None, "diverged": False,
                    "leader-when-read": ld == n, "stable-applied": ap}
    ok = [v for v in nodes.values() if v["queues"] is not None]
    # Each node was read while it led, at a quiescent point; the applied
    # indexes differ by the entries of the elections.
    return {"mode": "rotation", "attempts": 1, "nodes": nodes,
            "restarts": restarts, "digest-supported": False,
            "stable": len(ok) == len(nodes),
            "stats-stable": len(ok) == len(nodes)}


def replica_sample(test, tries=30, pause=1.0, limit_s=60):
    """Samples every node's own state until their applied indexes are equal
    and did not move while the queue stats were read (bounded). Each
    node's queue stats come from that node alone (QUEUE_LIST is answered
    from the local state machine); the digests from `raftmq cluster
    status` when the binary prints them. Returns the `replicas` marker."""
    last = None
    end = time.monotonic() + limit_s
    for attempt in range(1, tries + 1):
        before = {n: test.status(n) for n in test.cluster.names}
        queues = {n: _queues(test, n) for n in test.cluster.names}
        rc, text = cli(test, ["cluster", "status"], timeout=8)
        digests = parse_cluster_status(text) if rc == 0 else {}
        # "applied 0 digest 0000000000000000" after a whole run is a stub
        # (a node whose state machine does not count yet), not a digest.
        digests = {k: v for k, v in digests.items()
                   if v.get("applied") or v.get("diverged")}
        after = {n: test.status(n) for n in test.cluster.names}
        nodes = {}
        for i, n in enumerate(test.cluster.names, 1):
            b, a = before[n], after[n]
            d = digests.get(i, {})
            nodes[n] = {
                "applied": a.get("applied") if a else None,
                "moved": not (a and b and a.get("applied") ==
                              b.get("applied")),
                "queues": queues[n],
                "digest": d.get("digest"), "digest-applied":
                d.get("applied"), "diverged": d.get("diverged", False)}
        last = {"attempts": attempt, "nodes": nodes,
                "digest-supported": bool(digests)}
        ok = [v for v in nodes.values() if v["applied"] is not None and
              v["queues"] is not None]
        # Stats compare only at one applied index that did not move while
        # they were read; digests at one applied index of one CLI call
        # (the leader may propose CHECK entries all the time).
        last["stats-stable"] = len(ok) == len(nodes) and \
            len({v["applied"] for v in ok}) == 1 and \
            not any(v["moved"] for v in ok)
        da = [v["digest-applied"] for v in nodes.values()]
        last["digest-stable"] = bool(digests) and None not in da and \
            len(set(da)) == 1
        stable = last["digest-stable"] or last["stats-stable"]
        last["stable"] = stable
        if stable or time.monotonic() > end:
            break
        time.sleep(pause)
    if not last.get("digest-supported") and test.o.get("replica_rotation",
                                                       True):
        # Without digests, the stats of a follower are the leader's (it
        # proxies the request): read each node while it leads.
        rot = rotation_sample(test)
        rot["proxied-sample"] = {n: {"applied": v["applied"]}
                                 for n, v in last["nodes"].items()}
        return rot
    return last


# ---- 1. rolling restart with changed flags ---------------------------------


def rolling_restart(test, stop):
    """Restarts every node in turn with --max-payload 4000 (started with
    1000) while producers publish 600/2000/3500-byte messages: the first
    node before any snapshot exists, the other two once every node has
    taken a snapshot (so they restore one, the first replays the log), the
    leader among them. Then, when the binary supports the replicated
    configuration, `raftmq cluster config set max_payload=4000`."""
    c = test.cluster
    new = test.o.get("restart_args", ["--max-payload", "4000"])
    thr = test.o.get("snapshot_every", 300)
    ld = wait_leader(test, stop)
    first = next(n for n in c.names if n != ld)

    def restart(n, why):
        test.j.nemesis("restart-flags", {"node": n, "args": new,
                                         "why": why})
        st = c.restart_node(n, new)
        test.j.nemesis("restarted", {"node": n, "stop-status": st})
        test.say("restarted %s with %s (%s)" % (n, " ".join(new), why))

    restart(first, "first: before any snapshot, so it replays its log")
    # Every node snapshots every `thr` entries: wait for 3 x thr.
    end = time.monotonic() + 60
    while time.monotonic() < end and not stop.is_set():
        st = test.status(ld or c.names[0]) or {}
        if (st.get("commit") or 0) >= 3 * thr:
            break
        sleep(stop, 0.5)
    test.j.log("snapshot-wait", {"commit": (test.status(c.names[0]) or {})
                                 .get("commit")})
    for _ in range(2):
        if stop.is_set():
            return
        ld = wait_leader(test, stop) or c.names[-1]
        rest = [n for n in c.names if n != first and
                not c.node_extra.get(n)]
        n = ld if ld in rest else rest[0]
        restart(n, "restores its snapshot" +
                (" (the leader)" if n == ld else ""))
        sleep(stop, 8)
    # The replayed node leading is the case of the issue (its followers
    # restored their snapshots): restart the leader (same flags) until it
    # leads, at most 3 times.
    for _ in range(3):
        ld = wait_leader(test, stop)
        if stop.is_set() or ld is None or ld == first:
            break
        restart(ld, "again, to move leadership to %s" % first)
        sleep(stop, 5)
    test.j.log("leader-after-restarts", {"leader": test.leader(),
                                         "replayed": first})
    if not stop.is_set():
        config_set(test, ["max_payload=4000"])


# ---- 2. clock jump on the leader, then a leader change; timer probes --------

def timer_probe(test, stop, node, kind, expected_s, bound_s):
    """One probe; journals a `timer-probe` log marker with the latency
    measured from the client side, or late=True when nothing happened
    within expected + bound + 2 s."""
    with test.counter_lock:
        test.counter += 1
        tag = "timer-%s-%d" % (kind, test.counter)
    limit = expected_s + bound_s + 2
    res = {"kind": kind, "node": node, "value": tag,
           "expected-s": expected_s, "bound-s": bound_s}
    a = Adapter(test.adapter, test.cluster.client_addr(node), 4000,
                os.path.join(test.dir, "adapters.stderr"))
    b = None
    try:
        q = {"delay": "tdelay", "ack": "tack", "ttl": "tttl"}[kind]
        base = None
        if kind == "ttl":
            st = a.call({"op": "stats", "queue": q}, 6)
            if st.get("type") != "ok":
                res["error"] = "stats: %s" % st.get("error")
                return res
            base = st["stats"]["expired"]
        r = a.call({"op": "enqueue", "queue": q, "value": tag}, 6)
        if r.get("type") != "ok":
            res["error"] = "enqueue: %s" % r.get("error")
            return res
        t0 = time.monotonic()
        if kind == "ack":
            # Take it and never ack it on an open connection: only the
            # queue's ack timeout can give it back.
            h = a.call({"op": "hold", "queue": q, "vis": 0}, 6)
            if h.get("type") != "ok" or h.get("value") != tag:
                res["error"] = "hold: %s" % (h.get("error") or h.get("value"))
                return res
            t0 = time.monotonic()
            b = Adapter(test.adapter, test.cluster.client_addr(node), 4000,
                        os.path.join(test.dir, "adapters.stderr"))
        while time.monotonic() - t0 < limit and not stop.is_set():
            if kind == "ttl":
                st = a.call({"op": "stats", "queue": q}, 6)
                if st.get("type") == "ok" and st["stats"]["expired"] > base:
                    res["latency-s"] = round(time.monotonic() - t0, 3)
                    return res
            else:
                d = (b or a).call({"op": "dequeue", "queue": q,
                                   "vis": 30000}, 6)
                if d.get("type") == "ok" and d.get("value") == tag:
                    res["latency-s"] = round(time.monotonic() - t0, 3)
                    return res
            time.sleep(0.2)
        if stop.is_set() and time.monotonic() - t0 < limit:
            res["error"] = "stopped"
            return res
        res["late"] = True
        return res
    except (TimeoutError, AdapterDied) as e:
        res["error"] = repr(e)
        return res
    finally:
        a.close()
        if b:
            b.close()


def clock_jump(test, stop):
    """The leader's wall clock jumps by +3 h (libfaketime); clients keep
    publishing through it for 4 s; then its clock is reset and it is
    killed (a leader with a correct clock takes over) and restarted.
    From then on, timer probes run one after the other: a 2 s delay, a
    3 s ack timeout, a 3 s message TTL (queues tdelay, tack, tttl)."""
    c = test.cluster
    jump = test.o.get("clock_jump_s", 3 * 3600)
    bound = test.o.get("timer_bound_s", 10)
    ld = wait_leader(test, stop)
    if ld is None:
        test.j.nemesis("error", {"error": "no leader for the clock jump"})
        return
    c.set_clock(ld, jump)
    test.j.nemesis("bump-clock-leader", {"node": ld, "offset-s": jump})
    test.say("clock of leader %s +%d s" % (ld, jump))
    sleep(stop, 4)
    c.set_clock(ld, 0)
    test.j.nemesis("reset-clock", {"nodes": [ld]})
    c.kill(ld)
    test.j.nemesis("kill", {"nodes": [ld], "target": "leader",
                            "note": "clock reset to +0 first"})
    sleep(stop, 2)
    c.start_node(ld)
    test.j.nemesis("start", {"nodes": [ld]})
    nl = wait_leader(test, stop)
    test.j.log("new-leader", {"leader": nl})
    test.say("leader after the jump: %s" % nl)
    probes = [("delay", 2), ("ack", 3), ("ttl", 3)]
    i = 0
    while not stop.is_set():
        kind, exp = probes[i % len(probes)]
        node = c.names[i % len(c.names)]
        i += 1
        r = timer_probe(test, stop, node, kind, exp, bound)
        if r.get("error") == "stopped":
            break
        test.j.log("timer-probe", r)
        test.say("timer probe %s on %s: %s" % (
            kind, node, "LATE" if r.get("late") else
            r.get("latency-s", r.get("error"))))


# ---- 3. large messages, a big GET and a big prefetch -------------------------

def _publish_big(test, stop, node, queue, n, size):
    """Publishes n messages of `size` bytes, journaled as enqueue ops of
    one process (the queue checker then requires each confirmed one to
    come out). Returns the confirmed count."""
    process = test.new_process()
    pseq = {}
    a = Adapter(test.adapter, test.cluster.client_addr(node), 20000,
                os.path.join(test.dir, "adapters.stderr"))
    ok = 0
    try:
        for _ in range(n):
            if stop.is_set():
                break
            comp = test.invoke(a, -1, process, node,
                               {"f": "enqueue", "queue": queue,
                                "value": test.next_value(process, queue,
                                                         pseq),
                                "size": size}, timeout=25)
            if comp["type"] == "ok":
                ok += 1
            elif comp["type"] == "info":
                a.close()
                process = test.new_process()
                pseq = {}
                a = Adapter(test.adapter, test.cluster.client_addr(node),
                            20000, os.path.join(test.dir,
                                                "adapters.stderr"))
    finally:
        a.close()
    return ok


def _batch(test, node, queue, req, wait_s):
    """Runs a get-many / consume-many request and journals each received
    value as a dequeue op (ack ok) plus a `big-batch` marker."""
    process = test.new_process()
    a = Adapter(test.adapter, test.cluster.client_addr(node), 20000,
                os.path.join(test.dir, "adapters.stderr"))
    t0 = time.monotonic()
    try:
        r = a.call(dict(req, queue=queue), wait_s + 30)
    except (TimeoutError, AdapterDied) as e:
        r = {"type": "info", "error": repr(e)}
    finally:
        a.close()
    seqs = r.get("seqs") or []
    for i, v in enumerate(r.get("values", [])):
        base = {"process": process, "worker": -1, "node": node,
                "f": "dequeue", "queue": queue, "via": req["op"]}
        test.j.append(dict(base, type="invoke", value=None))
        comp = dict(base, type="ok", value=v, ack="ok")
        if i < len(seqs):
            comp["seq"] = seqs[i]
        dcs = r.get("delivery-counts") or []
        if i < len(dcs):
            comp["delivery-count"] = dcs[i]
            comp["redelivered"] = dcs[i] > 1
        test.j.append(comp)
    m = {k: r.get(k) for k in ("type", "granted", "count", "acked",
                               "max-delivery-count", "redelivered",
                               "payload-errors", "error", "ack-error")}
    m.update({"queue": queue, "node": node, "op": req["op"],
              "elapsed-s": round(time.monotonic() - t0, 2),
              "request": {k: v for k, v in req.items() if k != "op"}})
    return m


def _pulls(test, node, queue, req, want, wait_s):
    """`get --max N` until `want` messages came out: a GET may grant
    fewer than N (flow control by the session's window); each GET must
    deliver all it granted. One marker for all of them."""
    end = time.monotonic() + wait_s
    total, pulls, bad = 0, [], None
    while total < want and time.monotonic() < end and len(pulls) < 50:
        m = _batch(test, node, queue, req, max(5, int(end -
                                                      time.monotonic())))
        pulls.append({k: m.get(k) for k in ("type", "granted", "count",
                                            "error", "max-delivery-count",
                                            "elapsed-s")})
        total += m.get("count") or 0
        if m.get("type") != "ok" or m.get("error") or \
                (m.get("count") or 0) < (m.get("granted") or 0):
            bad = m
            break
    first = pulls[0] if pulls else {}
    out = {"type": (bad or first).get("type", "info"), "count": total,
           "op": "get-many", "queue": queue, "node": node, "pulls": pulls,
           "granted": sum(p.get("granted") or 0 for p in pulls),
           "max-delivery-count": max([p.get("max-delivery-count") or 0
                                      for p in pulls] or [0]),
           "payload-errors": (bad or {}).get("payload-errors", 0),
           "error": (bad or {}).get("error"),
           "request": {k: v for k, v in req.items() if k != "op"}}
    return out


def big_messages(test, stop):
    """300 messages of 250 kB on qbig (max deliveries 3, dead letters to
    qbig.dlq) fetched by `get --max 300` (again while a GET grants fewer,
    each GET delivering all it granted); then 300 more on qbig2
    received by one consumer with prefetch 1000. Both batches exceed the
    node's 64 MiB session output. Journals `big-batch` markers."""
    c = test.cluster
    n = test.o.get("big_count", 300)
    size = test.o.get("big_size", 250000)
    wait = test.o.get("big_wait_s", 90)
    node = wait_leader(test, stop) or c.names[0]
    for queue, req in (
            ("qbig", {"op": "get-many", "max": n, "vis": 300000,
                      "wait": wait * 1000, "ack": 1}),
            ("qbig2", {"op": "consume-many", "prefetch": 1000, "n": n,
                       "wait": wait * 1000})):
        if stop.is_set():
            return
        t0 = time.monotonic()
        ok = _publish_big(test, stop, node, queue, n, size)
        test.say("published %d/%d messages of %d bytes to %s in %.1f s" % (
            ok, n, size, queue, time.monotonic() - t0))
        if stop.is_set():
            return
        if req["op"] == "consume-many":
            m = _batch(test, node, queue, dict(req, n=ok), wait)
        else:
            m = _pulls(test, node, queue, req, ok, wait)
        m.update({"published": ok, "size": size})
        test.j.log("big-batch", m)
        test.say("%s on %s: received %s of %d (max delivery count %s, "
                 "error %r)" % (req["op"], queue, m.get("count"), ok,
                                m.get("max-delivery-count"),
                                m.get("error")))


SCRIPTS = {"rolling-restart": rolling_restart, "clock-jump": clock_jump,
           "big-messages": big_messages}


class ScriptRunner:
    """Runs a script in a thread; `final()` stops it and heals like the
    nemesis' final generator."""

    def __init__(self, test, name):
        self.test = test
        self.name = name
        self.stop = threading.Event()
        self.thread = None

    def _run(self):
        try:
            SCRIPTS[self.name](self.test, self.stop)
        except Exception as e:
            import traceback
            self.test.j.nemesis("error", {"script": self.name,
                                          "error": repr(e),
                                          "trace": traceback.format_exc()})
            self.test.say("script %s: %r" % (self.name, e))

    def start(self):
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def halt(self, timeout=120):
        self.stop.set()
        if self.thread:
            self.thread.join(timeout)
