"""Reports: results.json (Jepsen key names), anomalies/, history.txt,
summary.txt, and self-contained index.html / timeline.html with inline SVG
plots (latency, quantiles, rate, unseen, lost map) and nemesis bands."""
import collections
import html
import json
import math
import os

from .checker import CAP, quantiles
from .history import pair_ops, write_history_txt, parse_value
from .nemesis import COLORS, KINDS

TYPE_COLORS = {"ok": "#81BFFC", "info": "#FFA400", "fail": "#FF1E90"}
SHAPES = {"enqueue": "circle", "dequeue": "square", "dequeue-noack":
          "triangle", "drain": "diamond"}


def _cap(res):
    """Caps list values at CAP entries (full lists go to anomalies/)."""
    out = {}
    full = {}
    for k, v in res.items():
        if isinstance(v, dict):
            out[k], sub = _cap(v)
            full.update(sub)
        elif isinstance(v, list) and len(v) > CAP:
            out[k] = v[:CAP]
            full[k] = v
        else:
            out[k] = v
    return out, full


def write_all(run_dir, test, ops, res):
    res = dict(res)
    q = res.get("queue", {})
    lost_class = q.pop("lost-class", None) if isinstance(q, dict) else None
    capped, _ = _cap(res)
    with open(os.path.join(run_dir, "results.json"), "w") as f:
        json.dump(capped, f, indent=1, sort_keys=True, default=str)
    an = os.path.join(run_dir, "anomalies")
    os.makedirs(an, exist_ok=True)
    for name, r in res.items():
        if not isinstance(r, dict):
            continue
        for k, v in r.items():
            if isinstance(v, list) and v and k not in ("bad-error-types",
                                                       "never-succeeded"):
                with open(os.path.join(an, "%s-%s.json" % (name, k)),
                          "w") as f:
                    json.dump(v, f, indent=1, default=str)
    write_history_txt(ops, os.path.join(run_dir, "history.txt"))
    with open(os.path.join(run_dir, "index.html"), "w") as f:
        f.write(index_html(test, ops, res, lost_class or {},
                           summary(test, ops, res, run_dir)))
    with open(os.path.join(run_dir, "timeline.html"), "w") as f:
        f.write(timeline_html(test, ops))


def verdict_word(v):
    return {True: "PASS", False: "FAIL"}.get(v, "UNKNOWN")


def summary(test, ops, res, run_dir):
    o = test.get("opts", {})
    st = res.get("stats", {})
    q = res.get("queue", {})
    od = res.get("order", {})
    lv = res.get("liveness", {})
    lg = res.get("logs", {})
    nem = ",".join("%s:%s" % (k, "/".join(v))
                   for k, v in sorted(o.get("nemesis", {}).items())) or "none"
    lines = ["%s seed=%s mode=%s nodes=%s time-limit=%ss rate=%s nemesis=%s"
             % (test.get("name"), test.get("seed"), o.get("mode"),
                ",".join(test.get("nodes", [])), o.get("time_limit"),
                o.get("rate"), nem)]
    lines.append("ops %d: ok %d fail %d info %d | enqueue acked %d/%d | "
                 "observed %d distinct" % (
                     st.get("count", 0), st.get("ok-count", 0),
                     st.get("fail-count", 0), st.get("info-count", 0),
                     q.get("acknowledged-count", 0),
                     q.get("attempt-count", 0), q.get("ok-count", 0)))
    if q.get("lost-count"):
        b = q.get("lost-breakdown", {})
        lines.append("LOST %d (acked, never delivered; prefix %d middle %d "
                     "postfix %d): %s   <- FAIL" % (
                         q["lost-count"], b.get("prefix", 0),
                         b.get("middle", 0), b.get("postfix", 0),
                         " ".join(q["lost"][:8])))
    else:
        lines.append("lost 0")
    if q.get("unseen-count"):
        lines.append("UNSEEN %d (drain incomplete): %s   <- UNKNOWN" % (
            q["unseen-count"], " ".join(q["unseen"][:8])))
    lines.append("unexpected %d | failed-enqueue-delivered %d | "
                 "delivered-before-sent %d | unconsumed %d (+%d maybe taken "
                 "by a dequeue of unknown outcome) | duplicates %d "
                 "values (+%d deliveries, %d after confirmed ack) | "
                 "recovered %d | unknown %d" % (
                     q.get("unexpected-count", 0),
                     q.get("failed-enqueue-delivered-count", 0),
                     q.get("delivered-before-sent-count", 0),
                     q.get("unconsumed-count", 0),
                     q.get("unconsumed-indeterminate-count", 0),
                     q.get("duplicated-count", 0),
                     q.get("duplicate-deliveries", 0),
                     q.get("duplicated-after-confirmed-ack-count", 0),
                     q.get("recovered-count", 0), q.get("unknown-count", 0)))
    obad = od.get("bad-error-types", [])
    lines.append("order %s: %s (inconsistent-seq %d, nonmonotonic-send %d, "
                 "nonmonotonic-delivery %d, first-delivery %d, lost-write %d)"
                 % (od.get("claim"), "OK" if od.get("valid") is True else
                    verdict_word(od.get("valid")) + " " + ",".join(obad),
                    od.get("inconsistent-seq-count", 0),
                    od.get("nonmonotonic-send-count", 0),
                    od.get("nonmonotonic-delivery-count", 0),
                    od.get("nonmonotonic-first-delivery-count", 0),
                    od.get("lost-write-count", 0)))
    av = st.get("availability", {})
    lines.append("liveness: drain %s %s s, recovery %s s, post-heal ok "
                 "enqueues %s, node crashes %d | availability quiet %s "
                 "fault %s | logs: %s" % (
                     "complete" if lv.get("drain-complete") else
                     "INCOMPLETE", lv.get("drain-s"),
                     lv.get("recovery-time-s"),
                     lv.get("post-heal-ok-enqueues"),
                     len(lv.get("unexpected-node-exits", [])),
                     av.get("quiet"), av.get("fault"),
                     "clean" if lg.get("valid", True) is True else
                     "%d matches" % lg.get("count", 0)))
    rp = res.get("replicas", {})
    if "stable" in rp:
        lines.append("replicas (%s): %s%s%s" % (
            "digests" if rp.get("digest-supported") else
            "queue stats of each node", verdict_word(rp.get("valid")),
            "; %d queue(s) differ" % rp["stats-differ-count"]
            if rp.get("stats-differ-count") else "",
            "; diverged %s" % ",".join(rp["diverged"])
            if rp.get("diverged") else ""))
    tm = res.get("timers", {})
    if tm.get("count") or tm.get("valid") != True:  # noqa: E712
        lines.append("timers: %s probes, %s late; max latency %s" % (
            tm.get("count"), tm.get("late-count"),
            {k: v.get("max-latency-s") for k, v in
             (tm.get("by-kind") or {}).items()}))
    bg = res.get("big", {})
    if bg.get("count") or bg.get("valid") != True:  # noqa: E712
        lines.append("large messages: %s" % "; ".join(
            "%s %s received %s/%s (max delivery count %s%s)" % (
                b.get("op"), b.get("queue"), b.get("count"),
                b.get("published"), b.get("max-delivery-count"),
                ", error " + b["error"] if b.get("error") else "")
            for b in bg.get("batches", [])) + (
                " | dead-lettered %s" % bg["dead-lettered"]
                if bg.get("dead-lettered") else ""))
    warn = []
    deliveries = [inv["f"] for inv, c in pair_ops(ops)
                  if c and c["type"] == "ok" and inv["f"] != "enqueue"]
    # Redeliveries caused by dequeue-noack are by design; warn about the
    # rest.
    extra = q.get("duplicate-deliveries", 0) - deliveries.count(
        "dequeue-noack")
    if extra > 0.01 * max(1, len(deliveries)):
        warn.append("duplicate rate > 1%% (%d deliveries not explained by "
                    "noack)" % extra)
    if q.get("duplicated-after-confirmed-ack-count"):
        warn.append("duplicates after a confirmed ack")
    if (lv.get("recovery-time-s") or 0) > 30:
        warn.append("recovery > 30 s")
    if warn:
        lines.append("warnings: " + "; ".join(warn))
    for name in ("stats", "queue", "order", "liveness", "logs",
                 "replicas", "timers", "big", "payloads"):
        r = res.get(name, {})
        if "trace" in r and r.get("valid") == "unknown":
            lines.append("checker %s crashed: %s" % (name, r["error"]))
    bad = res.get("bad-error-types", [])
    lines.append("VERDICT: %s%s  %s" % (
        verdict_word(res.get("valid")),
        " (%s)" % ", ".join(bad) if bad else "",
        os.path.join(os.path.relpath(run_dir, os.path.dirname(
            os.path.dirname(os.path.dirname(run_dir)))), "index.html")))
    return "\n".join(lines)


# ---- SVG plotting ------------------------------------------------------------

def nemesis_intervals(ops, tmax):
    """[(kind, start, end)] plus [(time, f)] of every nemesis op."""
    opened, out, marks = {}, [], []
    stops = collections.defaultdict(list)
    for start, (pkg, stop) in KINDS.items():
        stops[stop].append(pkg)
    for op in ops:
        if op.get("process") != "nemesis":
            continue
        f, t = op.get("f"), op.get("time", 0)
        marks.append((t, f))
        if f in KINDS:
            opened.setdefault(KINDS[f][0], t)
        for pkg in stops.get(f, []):
            if pkg in opened:
                out.append((pkg, opened.pop(pkg), t))
    for pkg, t in opened.items():
        out.append((pkg, t, tmax))
    return out, marks


def phases(ops):
    out, cur = [], None
    for op in ops:
        if op.get("type") == "log" and op.get("f") == "phase":
            if cur:
                out.append((cur[0], cur[1], op["time"]))
            cur = (op["value"], op["time"])
    if cur:
        out.append((cur[0], cur[1], max(o.get("time", 0) for o in ops)))
    return out


class Plot:
    W, H, L, R, T, B = 960, 330, 60, 170, 20, 48

    def __init__(self, title, tmax, ymin, ymax, log=False, ylabel=""):
        self.title, self.tmax, self.log = title, max(tmax, 1e9), log
        self.ymin, self.ymax = ymin, ymax
        if log:
            self.ymin = max(ymin, 0.1)
            self.ymax = max(ymax, self.ymin * 10)
        elif self.ymax <= self.ymin:
            self.ymax = self.ymin + 1
        self.ylabel = ylabel
        self.parts = []
        self.legend = []

    def x(self, t):
        return self.L + (self.W - self.L - self.R) * t / self.tmax

    def y(self, v):
        h = self.H - self.T - self.B
        if self.log:
            v = max(v, self.ymin)
            f = (math.log10(v) - math.log10(self.ymin)) / (
                math.log10(self.ymax) - math.log10(self.ymin))
        else:
            f = (v - self.ymin) / (self.ymax - self.ymin)
        return self.H - self.B - h * min(max(f, 0), 1)

    def bands(self, intervals, marks, phase_list):
        kinds = []
        for k, _, _ in intervals:
            if k not in kinds:
                kinds.append(k)
        h = (self.H - self.T - self.B) / 12.0
        for k, a, b in intervals:
            row = kinds.index(k)
            self.parts.append(
                '<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" '
                'fill="%s" fill-opacity="0.6"><title>%s %.1f-%.1f s</title>'
                '</rect>' % (self.x(a), self.T + row * h,
                             max(1, self.x(b) - self.x(a)), h,
                             COLORS.get(k, COLORS["other"]), k, a / 1e9,
                             b / 1e9))
            self.parts.append(
                '<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" '
                'fill="%s" fill-opacity="0.15"/>' % (
                    self.x(a), self.T, max(1, self.x(b) - self.x(a)),
                    self.H - self.T - self.B,
                    COLORS.get(k, COLORS["other"])))
        for t, f in marks:
            self.parts.append(
                '<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#999" '
                'stroke-width="0.5"><title>%s</title></line>' % (
                    self.x(t), self.x(t), self.T, self.H - self.B,
                    html.escape(f)))
        for k in kinds:
            self.legend.append(("rect", COLORS.get(k, COLORS["other"]), k))
        for i, (name, a, b) in enumerate(phase_list):
            if name in ("quiet", "heal", "recover", "post-heal", "drain"):
                y = self.H - self.B + 22 + 10 * (i % 2)
                self.parts.append(
                    '<path d="M%.1f %d v4 H%.1f v-4" stroke="#888" '
                    'fill="none"/><text x="%.1f" y="%d" font-size="9" '
                    'fill="#666">%s</text>' % (
                        self.x(a), y - 4, self.x(b), self.x(a) + 2, y + 8,
                        name))

    def point(self, t, v, color, shape="circle", tip=None):
        x, y = self.x(t), self.y(v)
        tt = "<title>%s</title>" % html.escape(tip) if tip else ""
        if shape == "square":
            s = '<rect x="%.1f" y="%.1f" width="3" height="3" fill="%s">' \
                % (x - 1.5, y - 1.5, color)
            self.parts.append(s + tt + "</rect>")
        elif shape == "triangle":
            self.parts.append(
                '<path d="M%.1f %.1fl2 3.5h-4z" fill="%s">%s</path>' % (
                    x, y - 2, color, tt))
        elif shape == "diamond":
            self.parts.append(
                '<path d="M%.1f %.1fl2 2l-2 2l-2 -2z" fill="%s">%s</path>' %
                (x, y - 2, color, tt))
        else:
            self.parts.append('<circle cx="%.1f" cy="%.1f" r="1.6" '
                              'fill="%s">%s</circle>' % (x, y, color, tt))

    def line(self, pts, color, label, dash=False):
        if not pts:
            return
        d = " ".join("%s%.1f %.1f" % ("M" if i == 0 else "L", self.x(t),
                                       self.y(v))
                     for i, (t, v) in enumerate(pts))
        self.parts.append('<path d="%s" stroke="%s" fill="none" '
                          'stroke-width="1.3"%s/>' % (
                              d, color,
                              ' stroke-dasharray="4 2"' if dash else ""))
        self.legend.append(("line", color, label))

    def vline(self, t, label):
        self.parts.append(
            '<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#333" '
            'stroke-dasharray="3 3"/><text x="%.1f" y="%d" font-size="9">'
            '%s</text>' % (self.x(t), self.x(t), self.T, self.H - self.B,
                           self.x(t) + 2, self.T + 10, label))

    def render(self):
        out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" '
               'height="%d" font-family="sans-serif">' % (self.W, self.H),
               '<text x="%d" y="14" font-size="13" font-weight="bold">%s'
               '</text>' % (self.L, html.escape(self.title))]
        out += self.parts
        x0, x1 = self.L, self.W - self.R
        y0, y1 = self.T, self.H - self.B
        out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" '
                   'stroke="#444"/>' % (x0, y0, x1 - x0, y1 - y0))
        step = max(1, int(self.tmax / 1e9 / 10))
        s = 0
        while s * 1e9 <= self.tmax:
            out.append('<text x="%.1f" y="%d" font-size="10" '
                       'text-anchor="middle">%d</text>' % (self.x(s * 1e9),
                                                            y1 + 12, s))
            s += step
        out.append('<text x="%d" y="%d" font-size="10">time (s)</text>' %
                   (x1 - 40, y1 + 24))
        if self.log:
            v = 10 ** math.floor(math.log10(self.ymin))
            while v <= self.ymax * 1.0001:
                if v >= self.ymin:
                    out.append('<text x="%d" y="%.1f" font-size="10" '
                               'text-anchor="end">%g</text>' % (
                                   x0 - 4, self.y(v) + 3, v))
                v *= 10
        else:
            for i in range(5):
                v = self.ymin + (self.ymax - self.ymin) * i / 4
                out.append('<text x="%d" y="%.1f" font-size="10" '
                           'text-anchor="end">%g</text>' % (
                               x0 - 4, self.y(v) + 3, round(v, 1)))
        out.append('<text x="12" y="%d" font-size="10" transform="rotate(-90 '
                   '12 %d)">%s</text>' % ((y0 + y1) // 2, (y0 + y1) // 2,
                                          html.escape(self.ylabel)))
        seen = set()
        ly = y0 + 4
        for kind, color, label in self.legend:
            if label in seen:
                continue
            seen.add(label)
            if kind == "rect":
                out.append('<rect x="%d" y="%d" width="10" height="8" '
                           'fill="%s"/>' % (x1 + 8, ly, color))
            elif kind == "line":
                out.append('<line x1="%d" x2="%d" y1="%d" y2="%d" '
                           'stroke="%s" stroke-width="2"/>' % (
                               x1 + 8, x1 + 18, ly + 4, ly + 4, color))
            else:
                out.append('<circle cx="%d" cy="%d" r="3" fill="%s"/>' % (
                    x1 + 13, ly + 4, color))
            out.append('<text x="%d" y="%d" font-size="10">%s</text>' % (
                x1 + 22, ly + 8, html.escape(label)))
            ly += 13
        out.append("</svg>")
        return "\n".join(out)


PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def plots(ops, lost_class):
    pairs = pair_ops(ops)
    tmax = max((op.get("time", 0) for op in ops), default=1)
    intervals, marks = nemesis_intervals(ops, tmax)
    ph = phases(ops)
    out = []

    def fkey(inv):
        return "drain" if inv.get("phase") == "drain" else inv["f"]

    # latency-raw
    lats = [(inv, c, (c["time"] - inv["time"]) / 1e6) for inv, c in pairs
            if c]
    ymax = max((l for _, _, l in lats), default=10)
    p = Plot("latency-raw", tmax, 0.1, ymax * 1.2, log=True,
             ylabel="latency (ms)")
    p.bands(intervals, marks, ph)
    step = max(1, len(lats) // 20000)
    for inv, c, l in lats[::step]:
        p.point(inv["time"], l, TYPE_COLORS.get(c["type"], "#000"),
                SHAPES.get(fkey(inv), "circle"),
                "%s %s %s %.1f ms %s" % (fkey(inv), c["type"],
                                         c.get("value"), l,
                                         c.get("error") or ""))
    for t, col in TYPE_COLORS.items():
        p.legend.append(("dot", col, t))
    p.legend.append(("dot", "#fff", "o enq \u25a1 deq \u25b3 noack "
                     "\u25c7 drain"))
    out.append(p.render())

    # latency-quantiles
    bucket = 30e9 if tmax >= 600e9 else 5e9
    p = Plot("latency-quantiles (%ds buckets)" % (bucket / 1e9), tmax, 0.1,
             ymax * 1.2, log=True, ylabel="latency (ms)")
    p.bands(intervals, marks, ph)
    byf = collections.defaultdict(lambda: collections.defaultdict(list))
    for inv, c, l in lats:
        byf[fkey(inv)][int(inv["time"] // bucket)].append(l)
    ci = 0
    for f, bk in sorted(byf.items()):
        for qi, qq in enumerate((0.5, 0.95, 0.99, 1)):
            pts = []
            for b in sorted(bk):
                qs = quantiles(bk[b], (qq,))
                pts.append(((b + 0.5) * bucket, list(qs.values())[0]))
            p.line(pts, PALETTE[ci % len(PALETTE)], "%s p%s" % (
                f, {1: "max"}.get(qq, int(qq * 100) if qq != 0.5 else 50)),
                dash=qi % 2 == 1)
            ci += 1
    out.append(p.render())

    # rate
    bucket = 10e9 if tmax >= 600e9 else 1e9
    cnt = collections.defaultdict(collections.Counter)
    for inv, c in pairs:
        if c:
            cnt[(fkey(inv), c["type"])][int(c["time"] // bucket)] += 1
    rmax = max((v for cc in cnt.values() for v in cc.values()), default=1)
    p = Plot("rate (completions/s, %ds buckets)" % (bucket / 1e9), tmax, 0,
             rmax / (bucket / 1e9) * 1.1, ylabel="ops/s")
    p.bands(intervals, marks, ph)
    nb = int(tmax // bucket) + 1
    for i, (k, cc) in enumerate(sorted(cnt.items())):
        pts = [((b + 0.5) * bucket, cc.get(b, 0) / (bucket / 1e9))
               for b in range(nb)]
        p.line(pts, PALETTE[i % len(PALETTE)], "%s %s" % k)
    out.append(p.render())

    # unseen: acked but not yet observed
    events = []
    for inv, c in pairs:
        if inv["f"] == "enqueue" and c and c["type"] == "ok":
            events.append((c["time"], 1, inv["value"]))
        elif inv["f"] != "enqueue" and c and c["type"] == "ok" \
                and c.get("value"):
            events.append((c["time"], 0, c["value"]))
    events.sort()
    acked, seen = set(), set()
    unseen, pts = 0, []
    for t, kind, v in events:
        if kind == 1:
            acked.add(v)
            if v not in seen:
                unseen += 1
        else:
            if v not in seen:
                seen.add(v)
                if v in acked:
                    unseen -= 1
        pts.append((t, unseen))
    # Acks observed before their enqueue completed would go negative for a
    # moment; clamp for display.
    pts = [(t, max(0, u)) for t, u in pts]
    if pts:
        pts.append((tmax, pts[-1][1]))
    p = Plot("unseen (acked, not yet observed)", tmax, 0,
             max((u for _, u in pts), default=1) * 1.1 + 1, ylabel="values")
    p.bands(intervals, marks, ph)
    p.line(pts, "#d62728", "unseen")
    for name, a, b in ph:
        if name == "drain":
            p.vline(a, "drain")
            p.vline(b, "end")
    out.append(p.render())

    # lost map
    procs = sorted({parse_value(inv["value"])[1] for inv, c in pairs
                    if inv["f"] == "enqueue" and parse_value(inv["value"])})
    p = Plot("enqueues by producer (lost map)", tmax, 0,
             max(1, len(procs)), ylabel="producer process")
    p.bands(intervals, marks, ph)
    observed = {c["value"] for inv, c in pairs if inv["f"] != "enqueue"
                and c and c["type"] == "ok"}
    colors = {"ok": "#81BFFC", "prefix": "#8C0348", "middle": "#FF1E90",
              "postfix": "#FF74BA", "unknown": "#FFA400"}
    pindex = {pr: i for i, pr in enumerate(procs)}
    for inv, c in pairs:
        if inv["f"] != "enqueue":
            continue
        pv = parse_value(inv["value"])
        if not pv:
            continue
        v = inv["value"]
        if v in lost_class:
            col = colors[lost_class[v]]
        elif v in observed:
            col = colors["ok"]
        elif c is None or c["type"] == "info":
            col = colors["unknown"]
        else:
            continue
        p.point(inv["time"], pindex[pv[1]] + 0.5, col, tip=v)
    for k, col in colors.items():
        p.legend.append(("dot", col, "lost-" + k if k in (
            "prefix", "middle", "postfix") else k))
    out.append(p.render())
    return out


def index_html(test, ops, res, lost_class, summ):
    try:
        svgs = plots(ops, lost_class)
    except Exception as e:  # a plot bug must not lose the report
        svgs = ["<pre>plot error: %s</pre>" % html.escape(repr(e))]
    v = res.get("valid")
    color = {True: "#2a2", False: "#c22"}.get(v, "#c80")
    capped, _ = _cap(res)
    return """<!DOCTYPE html><html><head><meta charset="utf-8">
<title>%s %s</title><style>body{font-family:sans-serif;margin:20px}
pre{background:#f6f6f6;padding:8px;overflow:auto}
.v{font-size:22px;font-weight:bold;color:%s}</style></head><body>
<h1>%s <span class="v">%s</span></h1>
<pre>%s</pre>
%s
<p><a href="timeline.html">timeline</a> &middot; <a href="history.txt">history.txt</a>
&middot; <a href="results.json">results.json</a></p>
<h2>results.json</h2><pre>%s</pre>
<h2>test</h2><pre>%s</pre></body></html>
""" % (html.escape(test.get("name", "")), verdict_word(v), color,
       html.escape(test.get("name", "")), verdict_word(v), html.escape(summ),
       "\n".join("<div>%s</div>" % s for s in svgs),
       html.escape(json.dumps(capped, indent=1, sort_keys=True,
                              default=str)),
       html.escape(json.dumps(test, indent=1, default=str)))


def timeline_html(test, ops, cap=10000):
    """Jepsen's layout: one column per process, time flowing down."""
    pairs = pair_ops(ops)
    left = max(0, len(pairs) - cap)
    pairs = pairs[:cap]
    procs = sorted({inv["process"] for inv, _ in pairs})
    col = {p: i + 1 for i, p in enumerate(procs)}
    scale = 1e6 * 5  # 5 ms per px
    colors = {"invoke": "#EEEEEE", "ok": "#6DB6FE", "info": "#FFAA26",
              "fail": "#FEB5DA"}
    tmax = max((op.get("time", 0) for op in ops), default=0)
    boxes = []
    for inv, c in pairs:
        end = c["time"] if c else tmax
        t = c["type"] if c else "invoke"
        boxes.append('<div class="op" style="left:%dpx;top:%dpx;height:%dpx;'
                     'background:%s" title="%s"></div>' % (
                         col[inv["process"]] * 60, inv["time"] / scale,
                         max(2, (end - inv["time"]) / scale), colors[t],
                         html.escape(json.dumps(c or inv))))
    for op in ops:
        if op.get("process") == "nemesis":
            boxes.append('<div class="op" style="left:0;top:%dpx;height:3px;'
                         'background:#E9A4A0" title="%s"></div>' % (
                             op["time"] / scale, html.escape(json.dumps(op))))
    heads = "".join('<div class="h" style="left:%dpx">%s</div>' % (
        col[p] * 60, p) for p in procs)
    return """<!DOCTYPE html><html><head><meta charset="utf-8"><title>timeline
</title><style>.op{position:absolute;width:55px}.h{position:absolute;top:0;
font-size:10px}#t{position:relative;margin-top:20px}</style></head><body>
<p>%s: 5 ms per pixel; hover for op JSON. %s</p><div class="h" style="left:0">
nemesis</div>%s<div id="t">%s</div></body></html>""" % (
        html.escape(test.get("name", "")),
        "%d ops left out (cap %d)." % (left, cap) if left else "",
        heads, "\n".join(boxes))
