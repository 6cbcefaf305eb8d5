"""Checkers: queue (at-least-once), order, stats, liveness, logs, exceptions,
perf, composed with Jepsen's merge rule (false > unknown > true)."""
import collections
import glob
import os
import re

from .history import pair_ops, parse_value

CAP = 32
DEQ_FS = ("dequeue", "dequeue-noack")
LOG_PATTERN = re.compile(
    r"Assertion .* failed|AddressSanitizer|LeakSanitizer|"
    r"UndefinedBehaviorSanitizer|"
    r"runtime error:|PANIC|FATAL|double free|stack smashing")


def merge_valid(vals):
    vals = list(vals)
    if any(v is False for v in vals):
        return False
    if any(v == "unknown" for v in vals):
        return "unknown"
    return True


def _sort_vals(vals):
    def key(v):
        p = parse_value(v)
        return (0, p) if p else (1, (0, 0, 0), str(v))
    return sorted(vals, key=key)


def _markers(ops, f):
    """The value of the last harness log marker `f`, or None."""
    val = None
    for op in ops:
        if op.get("type") == "log" and op.get("f") == f:
            val = op.get("value")
    return val


def receipts(pairs):
    """Ok dequeue completions with their invoke: the observations D."""
    out = []
    for inv, comp in pairs:
        if inv["f"] in DEQ_FS and comp and comp["type"] == "ok" \
                and comp.get("value") is not None:
            out.append((inv, comp))
    return out


def explain_unconsumed(unconsumed, by_val, deq_indet):
    """A delivered value that no acking delivery confirmed is explained
    when an acking dequeue of its queue with an unknown outcome ended after
    that value's last delivery: that dequeue may have taken and acked it.
    Each such dequeue explains at most one value (a GET of one). Returns
    (still unconsumed, explained)."""
    left, explained = [], []
    free = {q: sorted(ends) for q, ends in deq_indet.items()}
    items = []
    for v in unconsumed:
        rs = by_val[v]
        last = max(c["time"] for _, c in rs)
        items.append((last, v, rs[-1][0].get("queue")))
    for last, v, q in sorted(items, key=lambda t: t[0]):
        ends = free.get(q, [])
        k = next((i for i, e in enumerate(ends) if e > last), None)
        if k is None:
            left.append(v)
        else:
            ends.pop(k)
            explained.append(v)
    return left, explained


def check_queue(ops, opts=None):
    """B.8.1: at-least-once queue checker over a complete history."""
    opts = opts or {}
    pairs = pair_ops(ops)
    attempts, e_ok, e_fail, e_info = {}, set(), set(), set()
    for inv, comp in pairs:
        if inv["f"] != "enqueue":
            continue
        v = inv.get("value")
        attempts[v] = (inv, comp)
        if comp is None or comp["type"] == "info":
            e_info.add(v)
        elif comp["type"] == "ok":
            e_ok.add(v)
        else:
            e_fail.add(v)
    rec = receipts(pairs)
    d_count = collections.Counter(c["value"] for _, c in rec)
    by_val = collections.defaultdict(list)
    for inv, comp in rec:
        by_val[comp["value"]].append((inv, comp))
    observed = set(d_count)
    drain = _markers(ops, "drain-complete")
    drain_complete = bool(drain and drain.get("complete"))
    # Acking dequeues whose outcome is unknown: each may have taken (and
    # acked) one message without the client learning which.
    deq_indet = collections.defaultdict(list)
    for inv, comp in pairs:
        if inv["f"] == "dequeue" and (comp is None or
                                      comp["type"] == "info"):
            end = comp["time"] if comp else float("inf")
            deq_indet[inv.get("queue")].append(end)

    lost = e_ok - observed
    unexpected = observed - set(attempts)
    failed_delivered = e_fail & observed
    before_sent = []
    for v, rs in by_val.items():
        if v not in attempts:
            continue
        einv = attempts[v][0]
        for inv, comp in rs:
            if comp["time"] < einv["time"]:
                before_sent.append(v)
                break
    unconsumed, ack_indet = [], []
    dup_explained, dup_after_ack = [], []
    dup_deliveries, max_mult = 0, 1
    for v, rs in by_val.items():
        acks = [c.get("ack") for _, c in rs]
        if "ok" not in acks:
            if "info" in acks:
                ack_indet.append(v)
            else:
                unconsumed.append(v)
        if len(rs) > 1:
            dup_deliveries += len(rs) - 1
            max_mult = max(max_mult, len(rs))
            rs = sorted(rs, key=lambda ic: ic[0]["time"])
            after = False
            for k in range(1, len(rs)):
                # A GET is sent at invoke time, so its delivery happened
                # after the invoke. A push consumer's delivery may have
                # been sent (and buffered by the library) long before the
                # op asked for it: no lower bound, so it can't prove a
                # delivery after a confirmed ack.
                if rs[k][0].get("via") == "consume":
                    continue
                for j in range(k):
                    if rs[j][1].get("ack") == "ok" and \
                            rs[j][1]["time"] < rs[k][0]["time"]:
                        after = True
            (dup_after_ack if after else dup_explained).append(v)
    recovered = e_info & observed
    unknown = e_info - observed

    # Lost breakdown per producer (process, queue): prefix/middle/postfix
    # relative to that producer's first and last observed pseq.
    seen_range = {}
    for v in observed:
        p = parse_value(v)
        if p and v in attempts:
            k = (p[1], attempts[v][0].get("queue"))
            lo, hi = seen_range.get(k, (p[2], p[2]))
            seen_range[k] = (min(lo, p[2]), max(hi, p[2]))
    breakdown = {"prefix": 0, "middle": 0, "postfix": 0}
    lost_class = {}
    for v in lost:
        p = parse_value(v)
        if not p:
            breakdown["middle"] += 1
            lost_class[v] = "middle"
            continue
        rng = seen_range.get((p[1], attempts[v][0].get("queue")))
        if rng is None or p[2] < rng[0]:
            c = "prefix"
        elif p[2] > rng[1]:
            c = "postfix"
        else:
            c = "middle"
        breakdown[c] += 1
        lost_class[v] = c

    unconsumed, unconsumed_indet = explain_unconsumed(unconsumed, by_val,
                                                      deq_indet)
    strict_acks = opts.get("strict-acks", True)
    lenient_fail = opts.get("lenient-fail", False)
    res = {
        "attempt-count": len(attempts),
        "acknowledged-count": len(e_ok),
        "ok-count": len(observed & set(attempts)),
        "drain-complete": drain_complete,
        "unexpected-count": len(unexpected),
        "unexpected": _sort_vals(unexpected),
        "failed-enqueue-delivered-count": len(failed_delivered),
        "failed-enqueue-delivered": _sort_vals(failed_delivered),
        "delivered-before-sent-count": len(before_sent),
        "delivered-before-sent": _sort_vals(before_sent),
        "unconsumed-count": len(unconsumed) if drain_complete else 0,
        "unconsumed": _sort_vals(unconsumed) if drain_complete else [],
        "unconsumed-indeterminate-count": len(unconsumed_indet),
        "unconsumed-indeterminate": _sort_vals(unconsumed_indet),
        "ack-indeterminate-not-redelivered-count": len(ack_indet),
        "duplicated-count": len(dup_explained) + len(dup_after_ack),
        "duplicated": _sort_vals(dup_explained + dup_after_ack),
        "duplicate-deliveries": dup_deliveries,
        "max-multiplicity": max_mult,
        "duplicated-explained-count": len(dup_explained),
        "duplicated-after-confirmed-ack-count": len(dup_after_ack),
        "duplicated-after-confirmed-ack": _sort_vals(dup_after_ack),
        "recovered-count": len(recovered),
        "recovered": _sort_vals(recovered),
        "unknown-count": len(unknown),
        "unknown": _sort_vals(unknown),
        "lost-class": lost_class,
    }
    if lenient_fail:
        res["recovered-count"] += len(failed_delivered)
        res["failed-enqueue-delivered-count"] = 0
        res["failed-enqueue-delivered"] = []
    if drain_complete:
        res["lost-count"] = len(lost)
        res["lost"] = _sort_vals(lost)
        res["lost-breakdown"] = breakdown
        res["unseen-count"] = 0
        res["unseen"] = []
    else:
        res["lost-count"] = 0
        res["lost"] = []
        res["unseen-count"] = len(lost)
        res["unseen"] = _sort_vals(lost)
        res["unseen-breakdown"] = breakdown
    bad = []
    for key in ("lost", "unexpected", "failed-enqueue-delivered",
                "delivered-before-sent", "unconsumed"):
        if res[key + "-count"]:
            bad.append(key)
    if strict_acks and dup_after_ack:
        bad.append("duplicated-after-confirmed-ack")
    res["bad-error-types"] = bad
    if bad:
        res["valid"] = False
    elif not drain_complete and (lost or unconsumed):
        res["valid"] = "unknown"
    elif not e_ok:
        res["valid"] = "unknown"
    else:
        res["valid"] = True
    return res


def check_order(ops, claim="per-producer"):
    """B.8.2: seq consistency and per-producer order."""
    pairs = pair_ops(ops)
    drain = _markers(ops, "drain-complete")
    drain_complete = bool(drain and drain.get("complete"))
    at_seq = collections.defaultdict(set)     # (queue, seq) -> values
    seqs_of = collections.defaultdict(set)    # value -> {(queue, seq)}
    sends = collections.defaultdict(list)     # key -> [(inv, comp)]
    acked_seq = {}                            # value -> (queue, seq)
    for inv, comp in pairs:
        if inv["f"] == "enqueue" and comp and comp["type"] == "ok" \
                and comp.get("seq") is not None:
            q, v = inv.get("queue"), inv.get("value")
            at_seq[(q, comp["seq"])].add(v)
            seqs_of[v].add((q, comp["seq"]))
            acked_seq[v] = (q, comp["seq"])
            key = inv["process"] if claim == "per-producer" else "all"
            sends[(key, q)].append((inv, comp))
    rec = receipts(pairs)
    observed = set()
    max_deliv = collections.defaultdict(int)
    for inv, comp in rec:
        if comp.get("seq") is None:
            continue
        q = comp.get("queue") or inv.get("queue")
        at_seq[(q, comp["seq"])].add(comp["value"])
        seqs_of[comp["value"]].add((q, comp["seq"]))
        observed.add(comp["value"])
        max_deliv[q] = max(max_deliv[q], comp["seq"])
    inconsistent = [{"queue": q, "seq": s, "values": _sort_vals(vs)}
                    for (q, s), vs in sorted(at_seq.items(),
                                             key=lambda kv: (str(kv[0][0]),
                                                             kv[0][1]))
                    if len(vs) > 1]
    dup_in_log = _sort_vals(v for v, s in seqs_of.items() if len(s) > 1)
    lost_write = _sort_vals(v for v, (q, s) in acked_seq.items()
                            if v not in observed and s < max_deliv[q])
    nonmono_send = []
    if claim in ("per-producer", "total"):
        for key, lst in sends.items():
            lst.sort(key=lambda ic: ic[0]["time"])
            if claim == "per-producer":
                for (i1, c1), (i2, c2) in zip(lst, lst[1:]):
                    if c1["time"] < i2["time"] and c1["seq"] >= c2["seq"]:
                        nonmono_send.append({"first": i1["value"],
                                             "seq1": c1["seq"],
                                             "second": i2["value"],
                                             "seq2": c2["seq"]})
            else:
                # Linearizable append: for ops in real-time order the seqs
                # must grow. Check each op against the max seq of all ops
                # that completed before it was invoked.
                done = sorted(lst, key=lambda ic: ic[1]["time"])
                j, best = 0, None
                for i2, c2 in lst:
                    while j < len(done) and done[j][1]["time"] < i2["time"]:
                        if best is None or done[j][1]["seq"] > best[1]["seq"]:
                            best = done[j]
                        j += 1
                    if best and best[1]["seq"] >= c2["seq"]:
                        nonmono_send.append({"first": best[0]["value"],
                                             "seq1": best[1]["seq"],
                                             "second": i2["value"],
                                             "seq2": c2["seq"]})
    # Consumer side: within one session (a process until it drops its
    # connection with dequeue-noack), first-time deliveries per queue must
    # have increasing seq.
    nonmono_deliv = []
    epoch = collections.defaultdict(int)
    last = {}
    for inv, comp in sorted(rec, key=lambda ic: ic[1]["time"]):
        p = inv["process"]
        q = comp.get("queue") or inv.get("queue")
        sess = (p, epoch[p], q, comp.get("consumer"))
        if not comp.get("redelivered") and comp.get("seq") is not None:
            prev = last.get(sess)
            if prev and prev[1] >= comp["seq"]:
                nonmono_deliv.append({"process": p, "queue": q,
                                      "prev": prev[0], "prev-seq": prev[1],
                                      "value": comp["value"],
                                      "seq": comp["seq"]})
            last[sess] = (comp["value"], comp["seq"])
        if inv["f"] == "dequeue-noack":
            epoch[p] += 1
    # Per-producer first-delivery order in real time (no seq needed): for
    # one producer's acked values in one queue, a later value's first
    # delivery must not complete before an earlier value's first delivery
    # (with redelivered=false) was even invoked.
    nonmono_first = []
    if claim in ("per-producer", "total"):
        first = {}
        for inv, comp in sorted(rec, key=lambda ic: ic[0]["time"]):
            first.setdefault(comp["value"], (inv, comp))
        for key, lst in sends.items():
            vals = [i["value"] for i, _ in sorted(lst,
                                                  key=lambda ic: ic[0]["time"])]
            fd = [first.get(v) for v in vals]
            suffix_min = [None] * (len(fd) + 1)
            for k in range(len(fd) - 1, -1, -1):
                cur = suffix_min[k + 1]
                if fd[k] is not None and (cur is None or
                                          fd[k][1]["time"] < cur[1]["time"]):
                    cur = fd[k]
                suffix_min[k] = cur
            for k, f in enumerate(fd):
                # The earlier value's first receipt must be a GET: a push
                # consumer may have held it (prefetched) since long before
                # the op was invoked.
                if f is None or f[1].get("redelivered") or \
                        f[0].get("via") == "consume":
                    continue
                later = suffix_min[k + 1]
                if later and later[1]["time"] < f[0]["time"]:
                    nonmono_first.append({"value": vals[k],
                                          "overtaken-by": later[1]["value"]})
    res = {
        "claim": claim,
        "inconsistent-seq-count": len(inconsistent),
        "inconsistent-seq": inconsistent[:CAP],
        "duplicate-in-log-count": len(dup_in_log),
        "duplicate-in-log": dup_in_log[:CAP],
        "lost-write-count": len(lost_write),
        "lost-write": lost_write[:CAP],
        "nonmonotonic-send-count": len(nonmono_send),
        "nonmonotonic-send": nonmono_send[:CAP],
        "nonmonotonic-delivery-count": len(nonmono_deliv),
        "nonmonotonic-delivery": nonmono_deliv[:CAP],
        "nonmonotonic-first-delivery-count": len(nonmono_first),
        "nonmonotonic-first-delivery": nonmono_first[:CAP],
    }
    bad = []
    if inconsistent:
        bad.append("inconsistent-seq")
    if claim != "none":
        for k in ("nonmonotonic-send", "nonmonotonic-delivery",
                  "nonmonotonic-first-delivery"):
            if res[k + "-count"]:
                bad.append(k)
    if lost_write and drain_complete:
        bad.append("lost-write")
    res["bad-error-types"] = bad
    if bad:
        res["valid"] = False
    elif lost_write:
        res["valid"] = "unknown"
    else:
        res["valid"] = True
    return res


def check_stats(ops):
    pairs = pair_ops(ops)
    by_f = collections.defaultdict(collections.Counter)
    tot = collections.Counter()
    windows = fault_windows(ops)
    avail = {"fault": collections.Counter(), "quiet": collections.Counter()}
    for inv, comp in pairs:
        t = comp["type"] if comp else "info"
        by_f[inv["f"]]["count"] += 1
        by_f[inv["f"]][t + "-count"] += 1
        tot["count"] += 1
        tot[t + "-count"] += 1
        if inv["f"] == "enqueue" and inv.get("phase") in ("quiet", "main"):
            w = "fault" if any(a <= inv["time"] < b for a, b in windows) \
                else "quiet"
            avail[w]["count"] += 1
            avail[w]["ok"] += t == "ok"
    res = {"count": tot["count"], "ok-count": tot["ok-count"],
           "fail-count": tot["fail-count"], "info-count": tot["info-count"],
           "by-f": {f: {"count": c["count"], "ok-count": c["ok-count"],
                        "fail-count": c["fail-count"],
                        "info-count": c["info-count"]}
                    for f, c in sorted(by_f.items())}}
    res["availability"] = {w: (round(c["ok"] / c["count"], 4)
                               if c["count"] else None)
                           for w, c in avail.items()}
    never = [f for f in ("enqueue", "dequeue")
             if by_f[f]["ok-count"] == 0]
    res["never-succeeded"] = never
    res["valid"] = "unknown" if never else True
    return res


def check_liveness(ops, opts=None):
    opts = opts or {}
    drain = _markers(ops, "drain-complete") or {}
    rec = _markers(ops, "recovered") or {}
    exits = [op.get("value") for op in ops if op.get("f") == "node-exited"]
    post = [op for op in ops if op.get("phase") == "post-heal"
            and op.get("type") == "ok" and op.get("f") == "enqueue"]
    has_post = any(op.get("type") == "log" and op.get("value") == "post-heal"
                   for op in ops)
    res = {"drain-complete": bool(drain.get("complete")),
           "drain-s": drain.get("drain-s"),
           "recovery-time-s": rec.get("recovery-time-s"),
           "converged": rec.get("converged"),
           "post-heal-ok-enqueues": len(post),
           "unexpected-node-exits": exits}
    bad = []
    if drain and not res["drain-complete"]:
        bad.append("drain-incomplete")
    if exits:
        bad.append("unexpected-node-exit")
    if has_post and not post:
        bad.append("unavailable-after-heal")
    if rec and not rec.get("converged"):
        bad.append("no-convergence")
    res["bad-error-types"] = bad
    if not drain and not bad:
        # The run stopped before the drain (harness crash or Ctrl-C).
        res["valid"] = "unknown"
        res["note"] = "no drain: the run stopped early"
    else:
        res["valid"] = not bad
    return res


def check_logs(run_dir):
    matches = []
    paths = sorted(glob.glob(os.path.join(run_dir, "nodes", "*", "*.log")))
    paths.append(os.path.join(run_dir, "adapters.stderr"))
    for path in paths:
        node = os.path.basename(os.path.dirname(path)) \
            if path.endswith(".log") else "adapter"
        try:
            with open(path, errors="replace") as f:
                for line in f:
                    if LOG_PATTERN.search(line):
                        matches.append({"node": node, "line": line.strip()[:300]})
        except OSError:
            pass
    return {"valid": not matches, "count": len(matches),
            "matches": matches[:CAP]}


def check_exceptions(ops):
    pairs = pair_ops(ops)
    groups = collections.OrderedDict()
    for inv, comp in pairs:
        if comp is None or comp["type"] != "info":
            continue
        err = "%s %s" % (inv["f"], comp.get("error") or "none")
        g = groups.setdefault(err, {"error": err, "count": 0,
                                    "example": {"index": comp["index"],
                                                "msg": comp.get("msg")}})
        g["count"] += 1
    return {"valid": True, "exceptions": sorted(groups.values(),
                                                key=lambda g: -g["count"])}


def quantiles(xs, qs=(0.5, 0.95, 0.99, 1)):
    xs = sorted(xs)
    if not xs:
        return {}
    out = {}
    for q in qs:
        i = min(len(xs) - 1, int(q * (len(xs) - 1) + 0.5))
        out[str(q if q != 1 else 1)] = round(xs[i], 2)
    return out


def check_perf(ops):
    pairs = pair_ops(ops)
    lat = collections.defaultdict(list)
    tmax = max((op.get("time", 0) for op in ops), default=0)
    for inv, comp in pairs:
        if comp:
            lat[inv["f"]].append((comp["time"] - inv["time"]) / 1e6)
    n = sum(1 for _, c in pairs if c)
    return {"valid": True,
            "latency-ms": {f: quantiles(v) for f, v in sorted(lat.items())},
            "throughput-ops-s": round(n / (tmax / 1e9), 2) if tmax else 0}


NEMESIS_PAIRS = {"kill": "start", "pause": "resume",
                 "start-partition": "stop-partition",
                 "start-packet": "stop-packet", "bump-clock": "reset-clock",
                 "strobe-clock": "reset-clock",
                 "truncate": "start-corrupted", "bitflip": "start-corrupted",
                 "wipe": "start-wiped"}


def fault_windows(ops):
    """(start, end) ns intervals during which some fault was active."""
    out, open_ = [], {}
    end = max((op.get("time", 0) for op in ops), default=0)
    for op in ops:
        if op.get("process") != "nemesis" or op.get("type") != "info":
            continue
        f = op.get("f")
        if f in NEMESIS_PAIRS:
            open_.setdefault(f, op["time"])
            continue
        for k in [k for k in open_ if NEMESIS_PAIRS[k] == f]:
            out.append((open_.pop(k), op["time"]))
    for t in open_.values():
        out.append((t, end))
    return out


def check_replicas(ops):
    """Replica equality at the end of a run (the `replicas` marker): every
    node's own queue stats must be equal, and so must the digests of
    `raftmq cluster status` when the binary prints them; a node that
    reports `diverged` fails. Unknown when the sample never became stable
    (applied indexes kept differing or moving) or fewer than two nodes
    answered; true with a note for runs that predate the check."""
    m = _markers(ops, "replicas")
    if m is None:
        return {"valid": True, "note": "no replica sample in this run"}
    nodes = m.get("nodes", {})
    res = {"stable": m.get("stable"), "attempts": m.get("attempts"),
           "digest-supported": m.get("digest-supported", False),
           "applied": {n: v.get("applied") for n, v in nodes.items()}}
    diverged = sorted(n for n, v in nodes.items() if v.get("diverged"))
    answered = {n: v for n, v in nodes.items()
                if v.get("queues") is not None}
    diffs = []
    names = sorted(answered)
    if len(names) >= 2:
        ref = names[0]
        for n in names[1:]:
            qa, qb = answered[ref]["queues"], answered[n]["queues"]
            for q in sorted(set(qa) | set(qb)):
                a, b = qa.get(q), qb.get(q)
                if a != b:
                    keys = sorted(k for k in set(a or {}) | set(b or {})
                                  if (a or {}).get(k) != (b or {}).get(k))
                    diffs.append({"queue": q, "nodes": [ref, n],
                                  ref: a and {k: a.get(k) for k in keys},
                                  n: b and {k: b.get(k) for k in keys}})
    digests = {n: (v.get("digest-applied"), v.get("digest"))
               for n, v in nodes.items() if v.get("digest")}
    digest_mismatch = []
    if len(digests) >= 2:
        by_applied = collections.defaultdict(dict)
        for n, (ap, d) in digests.items():
            by_applied[ap][n] = d
        for ap, ds in sorted(by_applied.items(), key=lambda x: str(x[0])):
            if len(set(ds.values())) > 1:
                digest_mismatch.append({"applied": ap, "digests": ds})
    res.update({"diverged": diverged, "stats-differ": diffs[:CAP],
                "stats-differ-count": len(diffs),
                "digest-mismatch": digest_mismatch})
    bad = []
    if diverged:
        bad.append("replica-diverged")
    if digest_mismatch:
        bad.append("replica-digest-mismatch")
    # Stats of nodes at different applied indexes may differ legitimately.
    stats_stable = m.get("stats-stable", m.get("stable"))
    if diffs and stats_stable:
        bad.append("replica-state-differs")
    res["bad-error-types"] = bad
    digest_ok = bool(m.get("digest-stable")) and len(digests) >= 2
    if bad:
        res["valid"] = False
    elif digest_ok or (stats_stable and len(answered) >= 2):
        res["valid"] = True
    else:
        res["valid"] = "unknown"
        res["error"] = "no stable sample of at least two replicas"
    return res


def check_timers(ops, opts=None):
    """Timer probes (`timer-probe` markers, clock-jump scenario): each
    delay, ack timeout and TTL must fire within expected + bound seconds,
    measured by the client. A probe that saw nothing within its window is
    `late`. Unknown when the scenario has timers but no probe finished."""
    opts = opts or {}
    probes = [op.get("value") or {} for op in ops
              if op.get("type") == "log" and op.get("f") == "timer-probe"]
    if not probes and not opts.get("timers"):
        return {"valid": True, "count": 0}
    late, errors, done = [], [], []
    for p in probes:
        lim = p.get("expected-s", 0) + p.get("bound-s",
                                            opts.get("timer-bound-s", 10))
        if p.get("late") or (p.get("latency-s") is not None and
                             p["latency-s"] > lim):
            late.append(p)
        elif p.get("latency-s") is not None:
            done.append(p)
        else:
            errors.append(p)
    by_kind = {}
    for p in probes:
        k = by_kind.setdefault(p.get("kind"), {"count": 0, "late": 0,
                                               "max-latency-s": None})
        k["count"] += 1
        if p in late:
            k["late"] += 1
        lat = p.get("latency-s")
        if lat is not None and (k["max-latency-s"] is None or
                                lat > k["max-latency-s"]):
            k["max-latency-s"] = lat
    res = {"count": len(probes), "late-count": len(late),
           "late": late[:CAP], "errors": errors[:CAP], "by-kind": by_kind}
    if late:
        res["valid"] = False
        res["bad-error-types"] = ["timer-late"]
    elif not done:
        res["valid"] = "unknown"
        res["error"] = "no timer probe completed"
    else:
        res["valid"] = True
    return res


def check_big(ops, opts=None):
    """Large messages (`big-batch` markers): each batch (one GET of N, or
    one consumer with a big prefetch) must receive every message that was
    confirmed, intact, with no error (a connection drop loop or a session
    closed by the node shows as an error or a short batch), and the
    queues in `no-deadletter` must end with dead_lettered 0 on every
    node (from the replicas sample): no consumer ever nacks there."""
    opts = opts or {}
    batches = [op.get("value") or {} for op in ops
               if op.get("type") == "log" and op.get("f") == "big-batch"]
    if not batches and not opts.get("big"):
        return {"valid": True, "count": 0}
    bad, short = [], []
    for b in batches:
        if (b.get("count") or 0) < (b.get("published") or 0) or \
                b.get("error") or b.get("type") != "ok":
            short.append(b)
        if b.get("payload-errors"):
            bad.append("payload-damaged")
    if short:
        bad.append("batch-incomplete")
    dl = []
    m = _markers(ops, "replicas") or {}
    for n, v in sorted((m.get("nodes") or {}).items()):
        for q in opts.get("no-deadletter", []):
            st = (v.get("queues") or {}).get(q)
            if st and st.get("dead_lettered"):
                dl.append({"node": n, "queue": q,
                           "dead_lettered": st["dead_lettered"]})
    if dl:
        bad.append("dead-lettered-unseen")
    res = {"count": len(batches), "batches": batches[:CAP],
           "incomplete": short[:CAP], "dead-lettered": dl,
           "bad-error-types": sorted(set(bad))}
    if bad:
        res["valid"] = False
    elif opts.get("big") and len(batches) < 2:
        res["valid"] = "unknown"
        res["error"] = "the large-message batches did not all run"
    else:
        res["valid"] = True
    return res


def check_payloads(ops):
    """A padded payload delivered with the wrong length or filler."""
    badv = [op for op in ops if op.get("type") == "ok" and
            op.get("payload-error")]
    res = {"valid": not badv, "count": len(badv),
           "examples": [{"index": op.get("index"), "value": op.get("value"),
                         "size": op.get("size")} for op in badv[:CAP]]}
    if badv:
        res["bad-error-types"] = ["payload-damaged"]
    return res


def check_all(ops, run_dir=None, opts=None):
    """Runs every checker (each one crash-safe) and composes the result."""
    opts = opts or {}
    res = {}
    checkers = [
        ("stats", lambda: check_stats(ops)),
        ("queue", lambda: check_queue(ops, opts)),
        ("order", lambda: check_order(ops, opts.get("order", "per-producer"))),
        ("liveness", lambda: check_liveness(ops, opts)),
        ("exceptions", lambda: check_exceptions(ops)),
        ("perf", lambda: check_perf(ops)),
        ("replicas", lambda: check_replicas(ops)),
        ("timers", lambda: check_timers(ops, opts)),
        ("big", lambda: check_big(ops, opts)),
        ("payloads", lambda: check_payloads(ops)),
    ]
    if run_dir:
        checkers.append(("logs", lambda: check_logs(run_dir)))
    for name, fn in checkers:
        try:
            res[name] = fn()
        except Exception as e:  # check-safe: a crash makes it unknown
            import traceback
            res[name] = {"valid": "unknown", "error": repr(e),
                         "trace": traceback.format_exc()}
    types, bad = [], []
    for name in ("queue", "order", "liveness", "replicas", "timers", "big",
                 "payloads"):
        r = res.get(name, {})
        bad += r.get("bad-error-types", [])
    q = res.get("queue", {})
    for k in ("lost", "unseen", "unexpected", "duplicated", "recovered",
              "unknown", "failed-enqueue-delivered", "delivered-before-sent",
              "unconsumed"):
        if q.get(k + "-count"):
            types.append(k)
    if res.get("logs", {}).get("count"):
        bad.append("logs")
    res["error-types"] = sorted(set(types + bad))
    res["bad-error-types"] = sorted(set(bad))
    res["valid"] = merge_valid(r.get("valid") for k, r in res.items()
                               if isinstance(r, dict))
    return res
