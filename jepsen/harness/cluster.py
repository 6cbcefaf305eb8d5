"""Clusters behind one interface: local-netns (each node in its own network
namespace on a bridge this run creates) and docker (the services of
deploy/docker-compose.yml in a compose project of this run)."""
import glob
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from . import powerloss

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


class Unsupported(ClusterError):
    """A scenario this cluster mode cannot run here; `test-all` prints a
    SKIP line for it instead of a harness error."""


# The libfaketime path inside the derived docker image (a symlink made by
# jepsen/docker/Dockerfile.faketime) and where each container sees its own
# node dir (read-only bind mount) with the clock file.
FAKETIME_IMAGE_LIB = "/usr/local/lib/libfaketimeMT.so.1"
NODE_DIR_MOUNT = "/jepsen"
CLOCK_FILE = "faketime.rc"


def faketime_env(lib, clock_file):
    """Environment that makes a node take its wall-clock offset from
    clock_file, re-read on every call; monotonic clocks stay real (so
    raft's timers are not skewed). Same for both cluster modes."""
    return {"LD_PRELOAD": lib, "FAKETIME_TIMESTAMP_FILE": clock_file,
            "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def write_clock(path, offset_s, history=None):
    """Atomically replaces libfaketime's offset file (`+S`/`-S` seconds);
    appends `<unix time> <offset>` to `history` when given."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("%+.3f\n" % offset_s)
    os.chmod(tmp, 0o644)
    os.rename(tmp, path)
    if history:
        with open(history, "a") as f:
            f.write("%.3f %+.3f\n" % (time.time(), offset_s))


def derived_tag(kind, parent_id, extra=None):
    """Tag of a test image derived from image `parent_id` (sha256:...):
    raftmq-jepsen:<kind>-<12 hex of the parent>[-<extra>]. A new parent
    (rebuilt raftmq:local) or a new binary gives a new tag, so a cached
    image is never stale."""
    h = parent_id.split(":", 1)[-1][:12]
    return "raftmq-jepsen:%s-%s%s" % (kind, h, "-" + extra if extra else "")


def unsupported(mode, opts):
    """Why `mode` cannot run a scenario with these options here, or None.
    Checked before a run starts, so that `test-all` can skip it."""
    if mode == "docker" and opts.get("nodes", 3) != 3:
        return "docker mode: the compose file has exactly 3 nodes"
    if mode == "docker" and (opts.get("powerloss") or opts.get("script")):
        return "docker mode: scripted scenarios and the power-loss shim " \
            "run in local-netns only"
    return None


class _Cluster:
    """What every cluster mode shares: the watchdog's stop and the heal that
    undoes every fault (also used on Ctrl-C / atexit)."""

    def stop_watchdog(self):
        self.watch_stop.set()
        if self.watcher:
            self.watcher.join(5)

    # ---- clocks (libfaketime offset file per node) ------------------------

    NO_FAKETIME = "libfaketime missing (apt-get install faketime)"

    def clock_file(self, node):
        """Host path of the node's offset file."""
        return os.path.join(self.node_dir(node), CLOCK_FILE)

    def set_clock(self, node, offset_s):
        if not self.ftlib:
            raise ClusterError(self.NO_FAKETIME)
        write_clock(self.clock_file(node), offset_s,
                    os.path.join(self.node_dir(node), "faketime.history"))

    def reset_clocks(self):
        if self.ftlib:
            for n in self.names:
                self.set_clock(n, 0)

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


class LocalNetns(_Cluster):
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
        if "clock" in opts.get("nemesis", {}) or opts.get("needs_faketime"):
            self.ftlib = ensure_faketime()
            if not self.ftlib:
                raise ClusterError("the clock nemesis needs libfaketime "
                                   "(apt-get install faketime)")
        elif opts.get("faketime", True):
            self.ftlib = faketime_lib()
        self.state_file = os.path.join(STATE_DIR, self.tag + ".json")
        self.node_extra = {}
        self.shim = None
        if opts.get("powerloss"):
            self.shim = powerloss.build_shim(os.path.join(run_dir, "shim"))

    def shadow_dir(self, node):
        """The fsyncshadow tree of a node: its durable data."""
        return os.path.join(self.node_dir(node), "durable")

    def lose_unfsynced(self, node):
        """Power loss of a stopped node: its data dir becomes what was
        durable. Returns what changed (powerloss.compare)."""
        if self.is_running(node):
            raise ClusterError("%s: power loss only while it is down" % node)
        if not self.shim:
            raise ClusterError("power loss needs the fsyncshadow shim "
                               "(scenario option powerloss)")
        return powerloss.restore(self.data_dir(node), self.shadow_dir(node))

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

    def data_dir(self, node):
        return os.path.join(self.node_dir(node), "data")

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
            # Per-node flags (rolling restarts change them; later flags
            # win over earlier ones).
            argv += self.node_extra.get(node, [])
            env = dict(os.environ)
            # An ASan build must tolerate libfaketime in LD_PRELOAD.
            asan = env.get("ASAN_OPTIONS", "")
            if "verify_asan_link_order" not in asan:
                env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + \
                    "verify_asan_link_order=0"
            if self.ftlib:
                if not os.path.exists(self.clock_file(node)):
                    self.set_clock(node, 0)
                env.update(faketime_env(self.ftlib, self.clock_file(node)))
            if self.shim:
                shadow = self.shadow_dir(node)
                if not os.path.isdir(shadow):
                    powerloss.init_shadow(os.path.join(d, "data"), shadow)
                pre = env.get("LD_PRELOAD")
                env.update(powerloss.shim_env(
                    self.shim, os.path.join(d, "data"), shadow,
                    self.opts.get("powerloss_mode", "normal")))
                if pre:
                    powerloss.merge_preload(env, pre)
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

    def restart_node(self, node, extra_args, grace=10):
        """Graceful restart (SIGTERM, SIGKILL after `grace` s) with
        `extra_args` appended to the node's flags from now on. Returns the
        exit status."""
        with self.lock:
            self.expected_down.add(node)
            self.signal_node(node, signal.SIGCONT)
            self.signal_node(node, signal.SIGTERM)
            p = self.procs.get(node)
        status = None
        if p:
            try:
                status = p.wait(grace)
            except subprocess.TimeoutExpired:
                p.kill()
                status = "SIGKILL after %ds: %s" % (grace, p.wait(5))
        self.node_extra[node] = list(extra_args)
        self.start_node(node)
        return status

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


class Docker(_Cluster):
    """Three nodes n1..n3 as the services of deploy/docker-compose.yml, in
    compose project raftmq-jepsen-<pid> (its own network and volumes).

    Clients reach node i on 127.0.0.1:<port_base + i> (RAFTMQ_PORT_Ni); the
    nodes talk to each other on the project's network, pinned by an override
    file to 10.79.<k>.0/24 with node i at 10.79.<k>.1<i>, so that a restarted
    container keeps its address. Faults: `docker kill -s KILL` / `docker
    start`, `docker pause` / `unpause`, and grudges as iptables INPUT DROP
    rules inside each container's network namespace (`nsenter -t <pid> -n`,
    the host's iptables), reapplied when a killed container starts again.

    Test-only images, derived from raftmq:local and cached by tag (see
    derived_tag), only for the scenarios that need them: with the clock
    nemesis, raftmq-jepsen:faketime-* (libfaketime; each container gets its
    node dir bind-mounted read-only at /jepsen and preloads libfaketime with
    /jepsen/faketime.rc, the same offset file as local-netns); with a
    test_fault, raftmq-jepsen:faults-* (the host's -DRAFTMQ_TEST_FAULTS=ON
    node binary). Corrupt and wipe edit the host side of a stopped
    container's /data volume (its Mountpoint)."""

    mode = "docker"
    NO_FAKETIME = "docker mode: clock skew needs the faketime image, which " \
        "is used only when the scenario has the clock nemesis"

    def __init__(self, run_dir, opts, journal):
        self.run_dir = run_dir
        self.opts = opts
        self.journal = journal
        self.n = opts.get("nodes", 3)
        why = unsupported("docker", opts)
        if why:
            raise Unsupported(why)
        if os.geteuid() != 0:
            raise ClusterError("docker mode needs root (dockerd, nsenter, "
                               "iptables)")
        for tool in ("docker", "nsenter", "iptables"):
            if not shutil.which(tool):
                raise ClusterError("docker mode: %s is missing (apt-get "
                                   "install docker.io docker-compose "
                                   "iptables)" % tool)
        if shutil.which("docker-compose"):
            self.compose = ["docker-compose"]
        else:
            self.compose = ["docker", "compose"]
        self.repo = os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))))
        self.compose_file = os.path.join(self.repo, "deploy",
                                         "docker-compose.yml")
        self.project = "raftmq-jepsen-%d" % os.getpid()
        self.tag = "d%04x" % (os.getpid() & 0xffff)
        self.octet = opts.get("octet", os.getpid() % 250 + 1)
        self.names = ["n%d" % i for i in range(1, self.n + 1)]
        self.ip = {n: "10.79.%d.1%d" % (self.octet, i)
                   for i, n in enumerate(self.names, 1)}
        base = opts.get("docker_port_base", 27500)
        self.port = {n: base + i for i, n in enumerate(self.names, 1)}
        self.base_image = opts.get("docker_image", "raftmq:local")
        self.image = self.base_image
        # Libfaketime path inside the container, when this run skews clocks.
        self.ftlib = FAKETIME_IMAGE_LIB if "clock" in opts.get(
            "nemesis", {}) or opts.get("docker_faketime") else None
        self.faults_bin = opts.get("node_bin") if opts.get("test_fault") \
            else None
        self.volume = {}
        self.cid = {}
        self.rules = {n: [] for n in self.names}
        self.expected_down = set()
        self.paused = set()
        self.lock = threading.Lock()
        self.dockerd = None
        self.project_up = False
        self.collected = False
        self.watch_stop = threading.Event()
        self.watcher = None
        self.override = os.path.join(run_dir, "docker-compose.override.yml")
        self.state_file = os.path.join(STATE_DIR, self.tag + ".json")

    # ---- addresses -------------------------------------------------

    def client_addr(self, node):
        return "127.0.0.1:%d" % self.port[node]

    def node_dir(self, node):
        return os.path.join(self.run_dir, "nodes", node)

    # ---- docker plumbing ---------------------------------------------

    def dc(self, *args, timeout=300, check=True):
        env = dict(os.environ)
        for n in self.names:
            env["RAFTMQ_PORT_" + n.upper()] = str(self.port[n])
        env["RAFTMQ_LOG_LEVEL"] = self.opts.get("log_level", "info")
        argv = self.compose + ["-p", self.project, "-f", self.compose_file,
                               "-f", self.override] + list(args)
        try:
            r = subprocess.run(argv, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ClusterError("%s: timed out after %d s"
                               % (" ".join(argv), timeout))
        if check and r.returncode != 0:
            raise ClusterError("%s: %s" % (" ".join(argv),
                                           r.stderr.strip()[-2000:]))
        return r

    def docker(self, *args, check=True, timeout=60):
        try:
            r = subprocess.run(["docker"] + list(args),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ClusterError("docker %s: timed out" % " ".join(args))
        if check and r.returncode != 0:
            raise ClusterError("docker %s: %s" % (" ".join(args),
                                                  r.stderr.strip()))
        return r

    def _docker_ok(self):
        try:
            return subprocess.run(["docker", "info"],
                                  stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL,
                                  timeout=20).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def _ensure_engine(self):
        """Starts dockerd (remembered, stopped at teardown) when `docker
        info` fails."""
        if self._docker_ok():
            return
        if not shutil.which("dockerd"):
            raise ClusterError("docker mode: no docker engine (apt-get "
                               "install docker.io)")
        log = open(os.path.join(self.run_dir, "dockerd.log"), "ab")
        self.dockerd = subprocess.Popen(["dockerd"], stdout=log,
                                        stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL,
                                        start_new_session=True)
        log.close()
        self._save_state()
        for _ in range(60):
            if self._docker_ok():
                return
            if self.dockerd.poll() is not None:
                break
            time.sleep(0.5)
        raise ClusterError("dockerd did not come up (see dockerd.log)")

    def _ensure_image(self):
        if self.docker("image", "inspect", self.image,
                       check=False).returncode == 0:
            return
        print("docker mode: building %s (deploy/base-image.sh, compose "
              "build) ..." % self.image, flush=True)
        r = subprocess.run([os.path.join(self.repo, "deploy",
                                         "base-image.sh")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=900)
        if r.returncode != 0:
            raise ClusterError("deploy/base-image.sh: %s" % r.stdout[-2000:])
        self.dc("build", timeout=1800)

    def _image_id(self, image):
        r = self.docker("image", "inspect", "-f", "{{.Id}}", image,
                        check=False)
        return r.stdout.strip() if r.returncode == 0 else None

    def _build(self, tag, dockerfile, context, parent):
        """docker build of a derived test image (legacy builder, no
        registry), unless `tag` already exists."""
        if self._image_id(tag):
            return tag
        print("docker mode: building test image %s ..." % tag, flush=True)
        self.docker("build", "--force-rm", "-q", "-f", dockerfile,
                    "--build-arg", "BASE=" + parent, "-t", tag, context,
                    timeout=1200)
        return tag

    def _ensure_test_images(self):
        """Derives this run's image from raftmq:local: + libfaketime for
        the clock nemesis, + the faults node binary for a test_fault."""
        here = os.path.join(self.repo, "jepsen", "docker")
        image = self.base_image
        if self.ftlib:
            tag = derived_tag("faketime", self._image_id(image))
            try:
                image = self._build(tag, os.path.join(
                    here, "Dockerfile.faketime"), here, image)
            except ClusterError as e:
                # apt-get inside `docker build` needs Debian's mirror.
                raise Unsupported("docker mode: could not build the "
                                  "libfaketime test image %s (is the Debian "
                                  "mirror reachable from docker build?): %s"
                                  % (tag, str(e)[-500:]))
        if self.faults_bin:
            if not os.access(self.faults_bin, os.X_OK):
                raise ClusterError("no faults node binary at %s"
                                   % self.faults_bin)
            h = hashlib.sha256()
            with open(self.faults_bin, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            tag = derived_tag("faults", self._image_id(image),
                              h.hexdigest()[:12])
            if not self._image_id(tag):
                with tempfile.TemporaryDirectory(prefix="jepsen-faults-") \
                        as ctx:
                    shutil.copy2(self.faults_bin,
                                 os.path.join(ctx, "raftmq-node"))
                    shutil.copy2(os.path.join(here, "Dockerfile.faults"),
                                 os.path.join(ctx, "Dockerfile"))
                    self._build(tag, os.path.join(ctx, "Dockerfile"), ctx,
                                image)
            # The binary comes from the host: it must run in the image.
            r = self.docker("run", "--rm", "--network", "none",
                            "--entrypoint", "raftmq-node", tag, "--help",
                            check=False, timeout=120)
            if "usage: raftmq-node" not in r.stdout + r.stderr:
                raise Unsupported(
                    "docker mode: the host's faults build %s does not run in "
                    "image %s (a host newer than Debian bookworm?): %s"
                    % (self.faults_bin, tag, (r.stdout + r.stderr)[-300:]))
            image = tag
        self.image = image

    def override_text(self):
        """The compose override: pins the addresses, disables restart
        policies (a killed node must stay down until the nemesis starts
        it), selects this run's image, passes extra node flags and, for
        clock skew, preloads libfaketime with the node dir mounted at
        /jepsen. Values are JSON strings, which YAML reads as they are."""
        lines = ['version: "3.7"', "services:"]
        for n in self.names:
            lines += ["  %s:" % n, '    restart: "no"',
                      "    image: %s" % json.dumps(self.image),
                      "    networks:", "      raftmq:",
                      "        ipv4_address: %s" % self.ip[n]]
            if self.opts.get("node_args"):
                lines.append("    command: %s"
                             % json.dumps(self.opts["node_args"]))
            if self.ftlib:
                env = faketime_env(self.ftlib, NODE_DIR_MOUNT + "/" +
                                   CLOCK_FILE)
                lines.append("    environment:")
                lines += ["      %s: %s" % (k, json.dumps(v))
                          for k, v in sorted(env.items())]
                lines += ["    volumes:", "      - %s" % json.dumps(
                    "%s:%s:ro" % (os.path.abspath(self.node_dir(n)),
                                  NODE_DIR_MOUNT))]
        lines += ["networks:", "  raftmq:", "    ipam:", "      config:",
                  "        - subnet: 10.79.%d.0/24" % self.octet]
        return "\n".join(lines) + "\n"

    def _write_override(self):
        with open(self.override, "w") as f:
            f.write(self.override_text())

    def _save_state(self):
        os.makedirs(STATE_DIR, exist_ok=True)
        st = {"tag": self.tag, "owner": os.getpid(), "mode": "docker",
              "project": self.project, "compose": self.compose,
              "compose_files": [self.compose_file, self.override],
              "dockerd": self.dockerd.pid if self.dockerd else None,
              "run_dir": self.run_dir}
        with open(self.state_file, "w") as f:
            json.dump(st, f)

    def _pid(self, node):
        r = self.docker("inspect", "-f", "{{.State.Pid}}", self.cid[node],
                        check=False)
        try:
            pid = int(r.stdout.strip())
        except ValueError:
            return None
        return pid or None

    def _inspect(self):
        """{node: (status, exit code)} for every container, one call."""
        ids = [self.cid[n] for n in self.names]
        r = self.docker("inspect", "-f",
                        "{{.Id}} {{.State.Status}} {{.State.ExitCode}}",
                        *ids, check=False)
        by_id = {}
        for line in r.stdout.splitlines():
            parts = line.split()
            if len(parts) == 3:
                by_id[parts[0]] = (parts[1], parts[2])
        return {n: by_id.get(self.cid[n], (None, None)) for n in self.names}

    def _status(self, node):
        return self._inspect()[node][0]

    # ---- network -------------------------------------------------------

    def setup_network(self):
        """Engine, image, then the project's network and stopped
        containers (`up --no-start`); start_node starts them."""
        self._ensure_engine()
        self._ensure_image()
        self._ensure_test_images()
        for n in self.names:
            try:
                socket.create_connection(("127.0.0.1", self.port[n]),
                                         0.5).close()
                raise ClusterError("127.0.0.1:%d is in use (set "
                                   "docker_port_base)" % self.port[n])
            except OSError:
                pass
        os.makedirs(self.run_dir, exist_ok=True)
        for n in self.names:
            os.makedirs(self.node_dir(n), exist_ok=True)
            if self.ftlib:
                self.set_clock(n, 0)
        self._write_override()
        self.project_up = True
        self._save_state()
        self.dc("up", "--no-start", "--no-build")
        for n in self.names:
            cid = self.dc("ps", "-a", "-q", n).stdout.strip()
            if not cid:
                raise ClusterError("no container for service %s" % n)
            r = self.docker("inspect", "-f", "{{.Id}}", cid)
            self.cid[n] = r.stdout.strip()

    def _nsenter(self, node, argv, check=True):
        pid = self._pid(node)
        if pid is None:
            if check:
                raise ClusterError("%s is not running" % node)
            return None
        return sh(["nsenter", "-t", str(pid), "-n"] + argv, check=check)

    def tcp_probe(self, a, b, port, timeout=1.0):
        """True when container a can open a TCP connection to b:port."""
        code = ("import socket,sys\n"
                "try:\n"
                " socket.create_connection((%r,%d),%r).close()\n"
                "except OSError:\n"
                " sys.exit(1)\n" % (self.ip[b], port, timeout))
        r = self._nsenter(a, [sys.executable, "-c", code], check=False)
        return r is not None and r.returncode == 0

    def net_probe(self, a, b, timeout=1.0, port=9999):
        """The containers do not run yet when the harness probes: the
        compose network is docker's, so there is nothing to probe."""
        return True

    def _apply(self, node, rule):
        self._nsenter(node, ["iptables", "-A", "INPUT"] + rule)

    def grudge(self, grudge):
        """grudge: {node: [peers whose packets it drops]}. A rule for a
        stopped container is kept and applied when it starts."""
        for n, peers in grudge.items():
            for p in peers:
                rule = ["-s", self.ip[p], "-j", "DROP"]
                with self.lock:
                    self.rules[n].append(rule)
                    if self._pid(n):
                        self._apply(n, rule)

    def packet_loss(self, nodes, prob):
        for n in nodes:
            for p in self.names:
                if p == n:
                    continue
                rule = ["-s", self.ip[p], "-m", "statistic", "--mode",
                        "random", "--probability", str(prob), "-j", "DROP"]
                with self.lock:
                    self.rules[n].append(rule)
                    if self._pid(n):
                        self._apply(n, rule)

    def heal_network(self):
        with self.lock:
            for n in self.names:
                self.rules[n] = []
                if self.cid.get(n):
                    self._nsenter(n, ["iptables", "-F", "INPUT"],
                                  check=False)

    def teardown_network(self):
        """`down -v` of this run's project only; stops dockerd if this run
        started it."""
        if self.project_up:
            try:
                self.dc("down", "-v", "--remove-orphans", "-t", "5",
                        timeout=180, check=False)
            except ClusterError as e:
                print("warning: %s" % e, file=sys.stderr)
            self.project_up = False
        if self.dockerd is not None:
            self.dockerd.terminate()
            try:
                self.dockerd.wait(30)
            except subprocess.TimeoutExpired:
                self.dockerd.kill()
                self.dockerd.wait(5)
            self.dockerd = None
        try:
            os.unlink(self.state_file)
        except OSError:
            pass

    # ---- data (the host side of the /data volume) ------------------------

    def data_dir(self, node):
        """Host path of the node's /data volume (its Mountpoint), for the
        corrupt and wipe nemeses; only while the container is stopped."""
        if self.is_running(node):
            raise ClusterError("%s: its data is edited only while its "
                               "container is stopped" % node)
        if node not in self.volume:
            r = self.docker("inspect", "-f", '{{range .Mounts}}{{if eq '
                            '.Destination "/data"}}{{.Source}}{{end}}{{end}}',
                            self.cid[node])
            path = r.stdout.strip()
            if not path or not os.path.isdir(path):
                raise ClusterError("%s: no host path for /data (%r)"
                                   % (node, path))
            self.volume[node] = path
        return self.volume[node]

    # ---- containers ------------------------------------------------------

    def start_node(self, node):
        with self.lock:
            st = self._status(node)
            if st == "paused":
                self.docker("unpause", self.cid[node], check=False)
            if st in ("running", "paused"):
                self.paused.discard(node)
                return False
            self.docker("start", self.cid[node])
            for rule in self.rules[node]:
                self._apply(node, rule)
            self.expected_down.discard(node)
            self.paused.discard(node)
            return True

    def kill(self, node):
        with self.lock:
            self.expected_down.add(node)
            self.paused.discard(node)
            r = self.docker("kill", "-s", "KILL", self.cid[node],
                            check=False)
        # The kill is asynchronous: wait (bounded) until docker says so.
        for _ in range(50):
            if self._status(node) not in ("running", "paused"):
                break
            time.sleep(0.1)
        return r.returncode == 0

    node_extra = {}

    def restart_node(self, node, extra_args, grace=10):
        """Graceful restart (`docker stop -t grace`, then start); the
        container's command is fixed, so no per-node flags here."""
        if extra_args:
            raise Unsupported("docker mode: per-node flags need a new "
                              "container command")
        with self.lock:
            self.expected_down.add(node)
        self.docker("stop", "-t", str(grace), self.cid[node], check=False,
                    timeout=grace + 60)
        self.start_node(node)
        return None

    def pause(self, node):
        with self.lock:
            r = self.docker("pause", self.cid[node], check=False)
            if r.returncode != 0:
                return False
            self.paused.add(node)
            return True

    def resume(self, node):
        with self.lock:
            self.paused.discard(node)
            if not self.cid.get(node):
                return False
            if self._status(node) != "paused":
                return False
            return self.docker("unpause", self.cid[node],
                               check=False).returncode == 0

    def is_running(self, node):
        if not self.cid.get(node):
            return False
        return self._status(node) in ("running", "paused")

    def pid_state(self, node):
        """Docker's state of the container (`paused`, `running`, ...)."""
        if not self.cid.get(node):
            return None
        return self._status(node)

    def _collect(self):
        """Node logs (`docker logs`) and a copy of each data volume into
        nodes/nX/, once."""
        if self.collected or not self.cid:
            return
        self.collected = True
        for n in self.names:
            d = self.node_dir(n)
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "node.log"), "wb") as f:
                try:
                    subprocess.run(["docker", "logs", self.cid[n]],
                                   stdout=f, stderr=subprocess.STDOUT,
                                   timeout=60)
                except subprocess.TimeoutExpired:
                    pass
            self.docker("cp", self.cid[n] + ":/data",
                        os.path.join(d, "data"), check=False, timeout=120)

    def stop_all(self, grace=10):
        """Unpauses, then `docker stop -t grace` (SIGTERM, then SIGKILL);
        returns each node's exit code and collects logs and data."""
        if not self.cid:
            return {}
        with self.lock:
            self.expected_down.update(self.names)
        before = self._inspect()
        for n in self.names:
            if before[n][0] == "paused":
                self.docker("unpause", self.cid[n], check=False)
        running = [n for n in self.names if before[n][0] in ("running",
                                                             "paused")]
        if running:
            self.docker("stop", "-t", str(grace),
                        *[self.cid[n] for n in running], check=False,
                        timeout=grace + 60)
        after = self._inspect()
        status = {}
        for n in self.names:
            code = after[n][1]
            try:
                code = int(code)
            except (TypeError, ValueError):
                pass
            status[n] = code if n in running else \
                "not running at stop (exit %s)" % code
        self._collect()
        return status

    # ---- watchdog ----------------------------------------------------------

    def start_watchdog(self):
        def loop():
            reported = set()
            while not self.watch_stop.wait(0.5):
                # Inspect under the lock: a state read before a concurrent
                # start_node (which clears expected_down) would be stale.
                with self.lock:
                    states = self._inspect()
                    for n, (st, code) in states.items():
                        if st in ("running", "paused", None):
                            reported.discard(n)
                            continue
                        if n in self.expected_down or n in reported:
                            continue
                        reported.add(n)
                        self.expected_down.add(n)
                        self.journal.append({"type": "info",
                                             "process": "watchdog",
                                             "f": "node-exited",
                                             "value": {"node": n,
                                                       "status": code,
                                                       "docker": st}})
        self.watcher = threading.Thread(target=loop, daemon=True)
        self.watcher.start()


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


def _clean_docker(st):
    """`down -v` of a dead docker-mode run's compose project; stops the
    dockerd it started."""
    out = []
    files = [a for f in st.get("compose_files", []) if os.path.exists(f)
             for a in ("-f", f)]
    try:
        r = subprocess.run(st["compose"] + ["-p", st["project"]] + files +
                           ["down", "-v", "--remove-orphans", "-t", "5"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=180)
        if r.returncode == 0:
            out.append("removed compose project %s" % st["project"])
    except (OSError, KeyError, subprocess.TimeoutExpired):
        pass
    pid = st.get("dockerd")
    if pid:
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                if f.read().startswith(b"dockerd"):
                    os.kill(pid, signal.SIGTERM)
                    out.append("stopped dockerd pid %d" % pid)
        except (OSError, ProcessLookupError):
            pass
    return out


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
        what = st.get("bridge") or st.get("project", "?")
        if not force and st.get("owner") and _alive(st["owner"]):
            out.append("skipped %s: its harness (pid %d) is still running"
                       % (what, st["owner"]))
            continue
        if st.get("mode") == "docker":
            out += _clean_docker(st)
            os.unlink(path)
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


def clean_images():
    """Removes the cached test images raftmq-jepsen:* (never raftmq:local
    or any other image)."""
    try:
        r = subprocess.run(["docker", "images", "--format",
                            "{{.Repository}}:{{.Tag}}", "raftmq-jepsen"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ["docker images: not available; test images not checked"]
    if r.returncode != 0:
        return ["docker images: %s; test images not checked"
                % r.stderr.strip()]
    out = []
    for tag in r.stdout.split():
        if not tag.startswith("raftmq-jepsen:"):
            continue
        rm = subprocess.run(["docker", "rmi", tag], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, timeout=120)
        out.append("removed image %s" % tag if rm.returncode == 0 else
                   "could not remove image %s: %s" % (tag, rm.stderr.strip()))
    return out
