"""Clusters behind one interface: local-netns (each node in its own network
namespace on a bridge this run creates) and docker (not yet)."""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

STATE_DIR = "/run/raftmq-jepsen"
FAKETIME_LIBS = ["/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
                 "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1"]
RAFT_PORT = 9001
CLIENT_PORT = 7001


def sh(args, check=True, quiet=False):
    """Runs a command (list); returns CompletedProcess."""
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), r.stderr.strip()))
    return r


def faketime_lib():
    for p in FAKETIME_LIBS:
        if os.path.exists(p):
            return p
    return None


def ensure_faketime():
    """Installs the Debian faketime package when it is missing (root
    only). Returns the library path or None."""
    lib = faketime_lib()
    if lib or os.geteuid() != 0 or not shutil.which("apt-get"):
        return lib
    print("installing faketime (apt-get) for the clock nemesis ...",
          flush=True)
    try:
        subprocess.run(["apt-get", "install", "-y", "-qq", "faketime"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=300)
    except (OSError, subprocess.TimeoutExpired):
        pass
    return faketime_lib()


class ClusterError(Exception):
    pass


class LocalNetns:
    """Three nodes n1..nN, node i in namespace jn<tag><i> at 10.77.<k>.<i>,
    joined by bridge jbr<tag>; the harness (host side) is 10.77.<k>.254.

    Faults: kill/start/pause/resume by PID (from our own spawn), grudges as
    iptables INPUT DROP rules inside the namespaces, packet loss with the
    iptables statistic match, clock offsets through libfaketime."""

    mode = "local-netns"

    def __init__(self, run_dir, opts, journal):
        self.run_dir = run_dir
        self.opts = opts
        self.journal = journal
        self.n = opts.get("nodes", 3)
        self.tag = "%04x" % (os.getpid() & 0xffff)
        # One /24 per run inside 10.77.0.0/16, so that concurrent runs
        # never share addresses.
        self.octet = opts.get("octet", os.getpid() % 250 + 1)
        self.bridge = "jbr" + self.tag
        self.names = ["n%d" % i for i in range(1, self.n + 1)]
        self.ns = {n: "jn%s%d" % (self.tag, i)
                   for i, n in enumerate(self.names, 1)}
        self.ip = {n: "10.77.%d.%d" % (self.octet, i)
                   for i, n in enumerate(self.names, 1)}
        self.host_ip = "10.77.%d.254" % self.octet
        self.procs = {}
        self.expected_down = set()
        self.paused = set()
        self.lock = threading.Lock()
        self.fwd_rule = False
        self.net_up = False
        self.watch_stop = threading.Event()
        self.watcher = None
        self.ftlib = None
        if "clock" in opts.get("nemesis", {}):
            self.ftlib = ensure_faketime()
            if not self.ftlib:
                raise ClusterError("the clock nemesis needs libfaketime "
                                   "(apt-get install faketime)")
        elif opts.get("faketime", True):
            self.ftlib = faketime_lib()
        self.state_file = os.path.join(STATE_DIR, self.tag + ".json")

    # ---- addresses -------------------------------------------------

    def client_addr(self, node):
        return "%s:%d" % (self.ip[node], CLIENT_PORT)

    def members(self):
        return ",".join("%d@%s:%d/%s:%d" % (i, self.ip[n], RAFT_PORT,
                                            self.ip[n], CLIENT_PORT)
                        for i, n in enumerate(self.names, 1))

    def node_dir(self, node):
        return os.path.join(self.run_dir, "nodes", node)

    # ---- state file for `run clean` -----------------------------------

    def _save_state(self):
        os.makedirs(STATE_DIR, exist_ok=True)
        st = {"tag": self.tag, "owner": os.getpid(), "bridge": self.bridge,
              "ns": list(self.ns.values()), "fwd": self.fwd_rule,
              "pids": [p.pid for p in self.procs.values() if p],
              "run_dir": self.run_dir}
        with open(self.state_file, "w") as f:
            json.dump(st, f)

    # ---- network -----------------------------------------------------

    def setup_network(self):
        if os.geteuid() != 0:
            raise ClusterError("local-netns needs root (ip netns, iptables)")
        for tool in ("ip", "iptables"):
            if sh(["which", tool], check=False).returncode:
                raise ClusterError("%s is missing (apt-get install "
                                   "iproute2 iptables)" % tool)
        self.net_up = True
        self._save_state()
        sh(["ip", "link", "add", self.bridge, "type", "bridge"])
        sh(["ip", "addr", "add", self.host_ip + "/24", "dev", self.bridge])
        sh(["ip", "link", "set", self.bridge, "up"])
        for i, n in enumerate(self.names, 1):
            ns = self.ns[n]
            host_if, ns_if = "jv%s%d" % (self.tag, i), "jp%s%d" % (self.tag, i)
            sh(["ip", "netns", "add", ns])
            sh(["ip", "link", "add", host_if, "type", "veth", "peer", "name",
                ns_if])
            sh(["ip", "link", "set", ns_if, "netns", ns])
            sh(["ip", "link", "set", host_if, "master", self.bridge])
            sh(["ip", "link", "set", host_if, "up"])
            sh(["ip", "netns", "exec", ns, "ip", "addr", "add",
                self.ip[n] + "/24", "dev", ns_if])
            sh(["ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up"])
            sh(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"])
            sh(["ip", "netns", "exec", ns, "iptables", "-F", "INPUT"])
        # Docker sets FORWARD policy DROP and bridge-nf-call-iptables=1,
        # which would drop bridged node-to-node packets.
        sh(["iptables", "-I", "FORWARD", "-i", self.bridge, "-o", self.bridge,
            "-j", "ACCEPT"])
        self.fwd_rule = True
        self._save_state()

    def tcp_probe(self, a, b, port, timeout=1.0):
        """True when namespace a can open a TCP connection to b:port."""
        code = ("import socket,sys\n"
                "try:\n"
                " socket.create_connection((%r,%d),%r).close()\n"
                "except OSError:\n"
                " sys.exit(1)\n" % (self.ip[b], port, timeout))
        r = sh(["ip", "netns", "exec", self.ns[a], sys.executable, "-c",
                code], check=False)
        return r.returncode == 0

    def net_probe(self, a, b, timeout=1.0, port=9999):
        """True when node a reaches node b (a throwaway listener in b's
        namespace on `port`, bounded to a few seconds)."""
        code = ("import socket\n"
                "s=socket.socket();s.setsockopt(socket.SOL_SOCKET,"
                "socket.SO_REUSEADDR,1)\n"
                "s.bind((%r,%d));s.listen(8);s.settimeout(%r)\n"
                "print('up',flush=True)\n"
                "try:\n"
                " s.accept()[0].close()\n"
                "except OSError:\n"
                " pass\n" % (self.ip[b], port, timeout + 2))
        lst = subprocess.Popen(["ip", "netns", "exec", self.ns[b],
                                sys.executable, "-c", code],
                               stdout=subprocess.PIPE, text=True)
        try:
            lst.stdout.readline()
            return self.tcp_probe(a, b, port, timeout)
        finally:
            lst.kill()
            lst.wait()

    def teardown_network(self):
        if not self.net_up:
            return
        for ns in self.ns.values():
            sh(["ip", "netns", "del", ns], check=False)
        sh(["ip", "link", "del", self.bridge], check=False)
        if self.fwd_rule:
            sh(["iptables", "-D", "FORWARD", "-i", self.bridge, "-o",
                self.bridge, "-j", "ACCEPT"], check=False)
            self.fwd_rule = False
        self.net_up = False
        try:
            os.unlink(self.state_file)
        except OSError:
            pass

    def grudge(self, grudge):
        """grudge: {node: [peers whose packets it drops]}."""
        for n, peers in grudge.items():
            for p in peers:
                sh(["ip", "netns", "exec", self.ns[n], "iptables", "-A",
                    "INPUT", "-s", self.ip[p], "-j", "DROP"])

    def packet_loss(self, nodes, prob):
        for n in nodes:
            for p in self.names:
                if p != n:
                    sh(["ip", "netns", "exec", self.ns[n], "iptables", "-A",
                        "INPUT", "-s", self.ip[p], "-m", "statistic",
                        "--mode", "random", "--probability", str(prob),
                        "-j", "DROP"])

    def heal_network(self):
        for ns in self.ns.values():
            sh(["ip", "netns", "exec", ns, "iptables", "-F", "INPUT"],
               check=False)

    # ---- clocks --------------------------------------------------------

    def clock_file(self, node):
        return os.path.join(self.node_dir(node), "faketime.rc")

    def set_clock(self, node, offset_s):
        if not self.ftlib:
            raise ClusterError("libfaketime missing (apt-get install "
                               "faketime)")
        tmp = self.clock_file(node) + ".tmp"
        with open(tmp, "w") as f:
            f.write("%+.3f\n" % offset_s)
        os.rename(tmp, self.clock_file(node))
        with open(os.path.join(self.node_dir(node), "faketime.history"),
                  "a") as f:
            f.write("%.3f %+.3f\n" % (time.time(), offset_s))

    def reset_clocks(self):
        if self.ftlib:
            for n in self.names:
                self.set_clock(n, 0)

    # ---- processes -------------------------------------------------------

    def start_node(self, node):
        with self.lock:
            p = self.procs.get(node)
            if p and p.poll() is None:
                return False
            d = self.node_dir(node)
            os.makedirs(os.path.join(d, "data"), exist_ok=True)
            i = self.names.index(node) + 1
            argv = ["ip", "netns", "exec", self.ns[node],
                    self.opts["node_bin"], "--id", str(i), "--data-dir",
                    os.path.join(d, "data"), "--members", self.members(),
                    "--listen", self.client_addr(node),
                    "--raft-bind", "%s:%d" % (self.ip[node], RAFT_PORT),
                    "--source-address", self.ip[node],
                    "--log-level", self.opts.get("log_level", "info")]
            argv += self.opts.get("node_args", [])
            env = dict(os.environ)
            # An ASan build must tolerate libfaketime in LD_PRELOAD.
            asan = env.get("ASAN_OPTIONS", "")
            if "verify_asan_link_order" not in asan:
                env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + \
                    "verify_asan_link_order=0"
            if self.ftlib:
                if not os.path.exists(self.clock_file(node)):
                    self.set_clock(node, 0)
                env.update({"LD_PRELOAD": self.ftlib,
                            "FAKETIME_TIMESTAMP_FILE": self.clock_file(node),
                            "FAKETIME_NO_CACHE": "1",
                            "FAKETIME_DONT_FAKE_MONOTONIC": "1"})
            log = open(os.path.join(d, "node.log"), "ab")
            log.write(("=== start %s: %s\n" % (time.strftime("%H:%M:%S"),
                                               " ".join(argv))).encode())
            log.flush()
            self.procs[node] = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
            log.close()
            self.expected_down.discard(node)
            self.paused.discard(node)
            self._save_state()
            return True

    def signal_node(self, node, sig):
        p = self.procs.get(node)
        if p is None or p.poll() is not None:
            return False
        try:
            os.kill(p.pid, sig)
        except ProcessLookupError:
            return False
        return True

    def kill(self, node):
        with self.lock:
            self.expected_down.add(node)
            if node in self.paused:
                self.paused.discard(node)
            ok = self.signal_node(node, signal.SIGKILL)
            p = self.procs.get(node)
        if p:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass
        return ok

    def pause(self, node):
        with self.lock:
            if not self.signal_node(node, signal.SIGSTOP):
                return False
            self.paused.add(node)
        # SIGSTOP is asynchronous: wait (bounded) until /proc shows it.
        for _ in range(50):
            if self.pid_state(node) in ("T", "t"):
                break
            time.sleep(0.01)
        return True

    def resume(self, node):
        with self.lock:
            self.paused.discard(node)
            return self.signal_node(node, signal.SIGCONT)

    def is_running(self, node):
        p = self.procs.get(node)
        return p is not None and p.poll() is None

    def pid_state(self, node):
        p = self.procs.get(node)
        try:
            with open("/proc/%d/stat" % p.pid) as f:
                return f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, AttributeError, IndexError):
            return None

    def stop_all(self, grace=10):
        """SIGCONT then SIGTERM every node, SIGKILL after `grace` s."""
        with self.lock:
            self.expected_down.update(self.names)
        for n in self.names:
            self.signal_node(n, signal.SIGCONT)
            self.signal_node(n, signal.SIGTERM)
        deadline = time.monotonic() + grace
        status = {}
        for n in self.names:
            p = self.procs.get(n)
            if p is None:
                continue
            try:
                status[n] = p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                status[n] = "SIGKILL after %ds: %s" % (grace, p.wait(5))
        return status

    # ---- watchdog ----------------------------------------------------------

    def start_watchdog(self):
        def loop():
            reported = {}
            while not self.watch_stop.wait(0.2):
                with self.lock:
                    for n, p in self.procs.items():
                        rc = p.poll()
                        if rc is None or n in self.expected_down:
                            continue
                        if reported.get(n) == p.pid:
                            continue
                        reported[n] = p.pid
                        self.expected_down.add(n)
                        self.journal.append({"type": "info",
                                             "process": "watchdog",
                                             "f": "node-exited",
                                             "value": {"node": n,
                                                       "status": rc}})
        self.watcher = threading.Thread(target=loop, daemon=True)
        self.watcher.start()

    def stop_watchdog(self):
        self.watch_stop.set()
        if self.watcher:
            self.watcher.join(2)

    # ---- heal everything (also used on Ctrl-C / atexit) ----------------------

    def heal_all(self, restart=True):
        for n in self.names:
            self.resume(n)
        self.heal_network()
        try:
            self.reset_clocks()
        except ClusterError:
            pass
        if restart:
            for n in self.names:
                if not self.is_running(n):
                    self.start_node(n)


class Docker:
    mode = "docker"

    def __init__(self, *a, **kw):
        raise ClusterError(
            "docker mode: not yet implemented (needs deploy/docker-compose.yml "
            "with cap_add NET_ADMIN and iptables in the image); use "
            "--mode local-netns")


def make_cluster(mode, run_dir, opts, journal):
    if mode == "local-netns":
        return LocalNetns(run_dir, opts, journal)
    if mode == "docker":
        return Docker(run_dir, opts, journal)
    raise ClusterError("unknown mode %r" % mode)


def _alive(pid):
    """True when `pid` is a live (not zombie) harness process."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmd = f.read()
    except (OSError, IndexError):
        return False
    return state != "Z" and b"jepsen" in cmd


def clean_all(force=False):
    """Removes leftovers of crashed runs: node processes, namespaces,
    bridges and FORWARD rules recorded in STATE_DIR, and any jn*/jbr*
    names our runs created."""
    out = []
    for path in glob.glob(os.path.join(STATE_DIR, "*.json")):
        try:
            with open(path) as f:
                st = json.load(f)
        except (OSError, ValueError):
            continue
        if not force and st.get("owner") and _alive(st["owner"]):
            out.append("skipped %s: its harness (pid %d) is still running"
                       % (st["bridge"], st["owner"]))
            continue
        for pid in st.get("pids", []):
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    cmd = f.read()
                if b"raftmq-node" in cmd:
                    os.kill(pid, signal.SIGCONT)
                    os.kill(pid, signal.SIGKILL)
                    out.append("killed pid %d" % pid)
            except (OSError, ProcessLookupError):
                pass
        for ns in st.get("ns", []):
            if sh(["ip", "netns", "del", ns], check=False).returncode == 0:
                out.append("removed netns %s" % ns)
        if sh(["ip", "link", "del", st["bridge"]],
              check=False).returncode == 0:
            out.append("removed bridge %s" % st["bridge"])
        while sh(["iptables", "-D", "FORWARD", "-i", st["bridge"], "-o",
                  st["bridge"], "-j", "ACCEPT"], check=False).returncode == 0:
            out.append("removed FORWARD rule for %s" % st["bridge"])
        os.unlink(path)
    return out
