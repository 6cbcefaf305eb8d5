"""Power loss without a FUSE layer: the fsyncshadow LD_PRELOAD shim
(jepsen/powerloss/fsyncshadow.c) keeps, per node, a shadow tree of what
the disk holds durably (written with O_DSYNC/RWF_DSYNC, or fsynced);
after every node is SIGKILLed, `restore` replaces each data dir with its
shadow, which drops every write that was never made durable.

Debian (bookworm) has no lazyfs package (`apt-cache search lazyfs` is
empty), hence this shim."""
import hashlib
import os
import shutil
import subprocess

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(HERE, "powerloss", "fsyncshadow.c")


def build_shim(out_dir):
    """Compiles the shim into out_dir/fsyncshadow.so (when stale)."""
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, "fsyncshadow.so")
    if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(SRC):
        return out
    cmd = ["cc", "-std=c11", "-O2", "-g", "-Wall", "-Wextra", "-Werror",
           "-fPIC", "-shared", "-o", out + ".tmp", SRC, "-ldl", "-lpthread"]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    if r.returncode:
        raise RuntimeError("building the fsyncshadow shim failed: %s\n%s"
                           % (" ".join(cmd), r.stdout))
    os.rename(out + ".tmp", out)
    return out


def shim_env(lib, data_dir, shadow_dir, mode="normal"):
    """Environment for a node under the shim (LD_PRELOAD is merged by the
    caller with libfaketime's)."""
    return {"FSYNCSHADOW_DATA": os.path.abspath(data_dir),
            "FSYNCSHADOW_SHADOW": os.path.abspath(shadow_dir),
            "FSYNCSHADOW_MODE": mode, "LD_PRELOAD": lib}


def merge_preload(env, lib):
    """Adds `lib` to env's LD_PRELOAD (space separated)."""
    cur = env.get("LD_PRELOAD", "")
    env["LD_PRELOAD"] = (lib + " " + cur).strip() if cur else lib
    return env


def init_shadow(data_dir, shadow_dir):
    """Makes the shadow an exact copy of the data dir: the state the shim
    assumes when a node starts."""
    if os.path.isdir(shadow_dir):
        shutil.rmtree(shadow_dir)
    if os.path.isdir(data_dir):
        shutil.copytree(data_dir, shadow_dir, symlinks=True)
    else:
        os.makedirs(shadow_dir)


def _digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def _files(root):
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            if os.path.isfile(p) and not os.path.islink(p):
                out[os.path.relpath(p, root)] = p
    return out


def compare(data_dir, shadow_dir):
    """What a power cut would change: {files, only-live, only-durable,
    changed: [{file, live, durable}], live-bytes, durable-bytes}."""
    live, dur = _files(data_dir), _files(shadow_dir)
    changed = []
    for rel in sorted(set(live) & set(dur)):
        a, b = os.path.getsize(live[rel]), os.path.getsize(dur[rel])
        if a != b or _digest(live[rel]) != _digest(dur[rel]):
            changed.append({"file": rel, "live": a, "durable": b})
    return {"files": len(live),
            "only-live": sorted(set(live) - set(dur)),
            "only-durable": sorted(set(dur) - set(live)),
            "changed": changed,
            "live-bytes": sum(os.path.getsize(p) for p in live.values()),
            "durable-bytes": sum(os.path.getsize(p) for p in dur.values())}


def restore(data_dir, shadow_dir):
    """Power loss of a stopped node: the data dir becomes the shadow (the
    shadow stays, equal to it, for the next start). Returns compare()."""
    diff = compare(data_dir, shadow_dir)
    os.makedirs(data_dir, exist_ok=True)
    for name in os.listdir(data_dir):
        p = os.path.join(data_dir, name)
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p)
        else:
            os.unlink(p)
    for name in os.listdir(shadow_dir):
        s, d = os.path.join(shadow_dir, name), os.path.join(data_dir, name)
        if os.path.isdir(s):
            shutil.copytree(s, d, symlinks=True)
        else:
            shutil.copy2(s, d)
    return diff
