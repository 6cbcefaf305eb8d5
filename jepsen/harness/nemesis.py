"""Nemesis packages (kill, pause, partition, clock, packet), grudges, targets
and the seeded flip-flop scheduler. Every fault is journaled after it is
applied, with its targets, as a `process: "nemesis"` info op."""
import os
import shutil
import threading
import time

COLORS = {"corrupt": "#99F2E2", "wipe": "#C9A0E9", "kill": "#E9A4A0", "pause": "#A0B1E9", "partition": "#E9DCA0",
          "packet": "#D1E8A0", "clock": "#A0E9E3", "power": "#C9A0E9",
          "restart": "#D2E9A0", "other": "#CCCCCC"}
# fault-start f -> (package, stop f)
KINDS = {"truncate": ("corrupt", "start-corrupted"),
         "bitflip": ("corrupt", "start-corrupted"),
         "wipe": ("wipe", "start-wiped"),
         "lose-unfsynced": ("power", "start-powered"),
         "restart-flags": ("restart", "restarted"),
         "bump-clock-leader": ("clock", "reset-clock"),
         "kill": ("kill", "start"), "pause": ("pause", "resume"),
         "start-partition": ("partition", "stop-partition"),
         "start-packet": ("packet", "stop-packet"),
         "bump-clock": ("clock", "reset-clock"),
         "strobe-clock": ("clock", "reset-clock")}


def corrupt_file(data_dir, kind, rng):
    """Truncates the last U(1..4096) bytes of, or flips bits (p = 1e-3,
    1e-4 or 1e-5 per bit) in, a random non-empty file under data_dir."""
    files = []
    for root, _, names in os.walk(data_dir):
        for n in names:
            p = os.path.join(root, n)
            if os.path.getsize(p) > 0:
                files.append(p)
    if not files:
        return {"file": None}
    path = rng.choice(sorted(files))
    size = os.path.getsize(path)
    rel = os.path.relpath(path, data_dir)
    if kind == "truncate":
        cut = min(size, rng.randint(1, 4096))
        os.truncate(path, size - cut)
        return {"file": rel, "size": size, "truncated": cut}
    p = rng.choice([1e-3, 1e-4, 1e-5])
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        flips = 0
        nbits = len(data) * 8
        # Geometric skips between flipped bits.
        i = int(rng.expovariate(p))
        while i < nbits:
            data[i // 8] ^= 1 << (i % 8)
            flips += 1
            i += 1 + int(rng.expovariate(p))
        f.seek(0)
        f.write(data)
    return {"file": rel, "size": size, "bitflip-p": p, "flips": flips}


def wipe_dir(path):
    """Deletes everything inside `path` but keeps the directory itself:
    its owner and mode matter to a container that runs as a user."""
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        p = os.path.join(path, name)
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p)
        else:
            os.unlink(p)


def complete_grudge(components):
    """Each node drops packets from every node outside its component."""
    g = {}
    for comp in components:
        for n in comp:
            g[n] = sorted(m for c in components if c is not comp for m in c)
    return g


def make_grudge(shape, nodes, rng, leader=None):
    nodes = list(nodes)
    if shape == "one":
        x = rng.choice(nodes)
        return complete_grudge([[x], [n for n in nodes if n != x]]), x
    if shape == "leader":
        x = leader or rng.choice(nodes)
        return complete_grudge([[x], [n for n in nodes if n != x]]), x
    if shape == "majority-split":
        shuffled = nodes[:]
        rng.shuffle(shuffled)
        k = len(nodes) // 2
        return complete_grudge([shuffled[:k], shuffled[k:]]), shuffled[:k]
    if shape == "bridge":
        # Cut one link a-c; b still sees both (non-transitive).
        shuffled = nodes[:]
        rng.shuffle(shuffled)
        a, c = shuffled[0], shuffled[-1]
        return {a: [c], c: [a]}, {"cut": [a, c], "bridge": shuffled[1:-1]}
    if shape == "one-way":
        a, b = rng.sample(nodes, 2)
        return {a: [b]}, {"drops-from": b, "at": a}
    raise ValueError("unknown grudge %r" % shape)


class Nemesis:
    """packages: {"kill": [targets...], "pause": [...], "partition":
    [shapes...], "clock": ["bump", "strobe"], "packet": [targets]}."""

    def __init__(self, cluster, journal, rng, packages, interval, leader_fn):
        self.c = cluster
        self.j = journal
        self.rng = rng
        self.packages = packages
        self.interval = interval
        self.leader_fn = leader_fn
        self.active = {}  # package -> state of the running fault
        self.stop_ev = threading.Event()
        self.thread = None
        self.errors = []

    # ---- targets ---------------------------------------------------------

    def targets(self, spec):
        nodes = self.c.names
        if spec == "one" or spec == "minority":
            return [self.rng.choice(nodes)], None
        if spec == "majority":
            return sorted(self.rng.sample(nodes, len(nodes) // 2 + 1)), None
        if spec == "all":
            return list(nodes), None
        if spec == "leader":
            ld = self.leader_fn()
            if ld is None:
                return [self.rng.choice(nodes)], "leader-unknown"
            return [ld], None
        if spec == "followers":
            ld = self.leader_fn()
            return [n for n in nodes if n != ld], None
        raise ValueError("unknown target %r" % spec)

    # ---- one op ------------------------------------------------------------

    def _log(self, f, value):
        return self.j.nemesis(f, value)

    def step(self, pkg):
        """Applies the next op of package `pkg` (flip-flop)."""
        st = self.active.pop(pkg, None)
        if st is not None:
            return self.stop(pkg, st)
        choices = self.packages[pkg]
        kind = self.rng.choice(choices)
        if pkg == "kill":
            ts, note = self.targets(kind)
            for n in ts:
                self.c.kill(n)
            self.active[pkg] = ts
            self._log("kill", {"target": kind, "nodes": ts, "note": note})
        elif pkg == "corrupt":
            # Disk corruption, minority only, only while the node is down:
            # skipped while any node is down (for example one that refused
            # to start after an earlier corruption), so that at most one
            # node's disk is ever damaged at a time.
            down = [m for m in self.c.names if not self.c.is_running(m)]
            if down:
                self._log("corrupt-skipped", {"down": down})
                return
            n = self.rng.choice(self.c.names)
            self.c.kill(n)
            detail = corrupt_file(self.c.data_dir(n), kind, self.rng)
            self.active[pkg] = [n]
            self._log(kind, dict(detail, node=n))
        elif pkg == "wipe":
            # Self-validation only: losing a majority's disks legitimately
            # loses acked data, which the checker must report.
            ts, note = self.targets(kind)
            for n in ts:
                self.c.kill(n)
                wipe_dir(self.c.data_dir(n))
            self.active[pkg] = ts
            self._log("wipe", {"target": kind, "nodes": ts})
        elif pkg == "power":
            # Coordinated power failure: SIGKILL every target first (as
            # close to at once as signals go), then each data dir loses
            # what was not durable (the fsyncshadow shim's shadow).
            ts, note = self.targets(kind)
            for n in ts:
                self.c.kill(n)
            lost = {}
            for n in ts:
                d = self.c.lose_unfsynced(n)
                lost[n] = {"changed": d["changed"][:8],
                           "changed-files": len(d["changed"]),
                           "only-live": d["only-live"][:8],
                           "live-bytes": d["live-bytes"],
                           "durable-bytes": d["durable-bytes"]}
            self.active[pkg] = ts
            self._log("lose-unfsynced", {"target": kind, "nodes": ts,
                                         "note": note, "dropped": lost})
        elif pkg == "pause":
            ts, note = self.targets(kind)
            for n in ts:
                self.c.pause(n)
            self.active[pkg] = ts
            self._log("pause", {"target": kind, "nodes": ts, "note": note,
                                "state": {n: self.c.pid_state(n)
                                          for n in ts}})
        elif pkg == "partition":
            leader = self.leader_fn() if kind == "leader" else None
            grudge, desc = make_grudge(kind, self.c.names, self.rng, leader)
            self.c.grudge(grudge)
            self.active[pkg] = grudge
            self._log("start-partition", {"shape": kind, "grudge": grudge,
                                          "desc": desc})
        elif pkg == "packet":
            ts, note = self.targets(kind)
            self.c.packet_loss(ts, 0.2)
            self.active[pkg] = ts
            self._log("start-packet", {"target": kind, "nodes": ts,
                                       "loss": 0.2})
        elif pkg == "clock":
            ts = self.rng.sample(self.c.names,
                                 self.rng.randint(1, len(self.c.names)))
            if kind == "bump":
                s = 1.5 ** (6 + self.rng.random() * 25) / 1000.0
                s = s if self.rng.random() < 0.5 else -s
                for n in ts:
                    self.c.set_clock(n, s)
                self._log("bump-clock", {"nodes": ts, "offset-s": s})
            else:
                delta = 1.5 ** (6 + self.rng.random() * 20) / 1000.0
                period = self.rng.uniform(0.001, 1.0)
                dur = self.rng.uniform(0, 8)
                self._log("strobe-clock", {"nodes": ts, "delta-s": delta,
                                           "period-s": period,
                                           "duration-s": dur})
                end = time.monotonic() + dur
                flip = False
                while time.monotonic() < end and not self.stop_ev.is_set():
                    flip = not flip
                    for n in ts:
                        self.c.set_clock(n, delta if flip else 0)
                    time.sleep(max(period, 0.01))
            self.active[pkg] = ts
        else:
            raise ValueError("unknown package %r" % pkg)

    def stop(self, pkg, st):
        if pkg in ("corrupt", "wipe"):
            for n in st:
                self.c.start_node(n)
            self._log("start-corrupted" if pkg == "corrupt"
                      else "start-wiped", {"nodes": st})
        elif pkg == "kill":
            for n in st:
                self.c.start_node(n)
            self._log("start", {"nodes": st})
        elif pkg == "power":
            for n in st:
                self.c.start_node(n)
            self._log("start-powered", {"nodes": st})
        elif pkg == "pause":
            for n in st:
                self.c.resume(n)
            self._log("resume", {"nodes": st})
        elif pkg in ("partition", "packet"):
            self.c.heal_network()
            self._log("stop-partition" if pkg == "partition"
                      else "stop-packet", {})
        elif pkg == "clock":
            self.c.reset_clocks()
            self._log("reset-clock", {"nodes": list(st)})

    # ---- scheduler -----------------------------------------------------------

    def run(self):
        pkgs = sorted(self.packages)
        while not self.stop_ev.wait(self.rng.uniform(0, 2 * self.interval)):
            pkg = self.rng.choice(pkgs)
            try:
                self.step(pkg)
            except Exception as e:  # keep going; journal the error
                self.errors.append(repr(e))
                self.j.nemesis("error", {"package": pkg, "error": repr(e)})

    def start(self):
        if not self.packages:
            return
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def halt(self):
        self.stop_ev.set()
        if self.thread:
            self.thread.join(30)

    def final(self):
        """Heal everything, in the spec's order: resume, start, network,
        clocks; journaled so that the report closes every band."""
        self.halt()
        paused = [n for n in self.c.names if n in self.c.paused]
        for n in self.c.names:
            self.c.resume(n)
        self._log("resume", {"nodes": paused, "final": True})
        down = [n for n in self.c.names if not self.c.is_running(n)]
        for n in down:
            self.c.start_node(n)
        self._log("start", {"nodes": down, "final": True})
        if "power" in self.packages:
            self._log("start-powered", {"nodes": down, "final": True})
        self.c.heal_network()
        if "partition" in self.packages:
            self._log("stop-partition", {"final": True})
        if "packet" in self.packages:
            self._log("stop-packet", {"final": True})
        try:
            self.c.reset_clocks()
        except Exception:
            pass
        if "clock" in self.packages:
            self._log("reset-clock", {"final": True})
        self.active.clear()
