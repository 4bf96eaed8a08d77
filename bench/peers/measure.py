#!/usr/bin/env python3
"""One measured run of one tool for bench/peers.sh; appends a JSON line to --out.

Measures, for the command after `--`:
  wall        from spawn to exit of the tool;
  ctrl_cpu    user+sys of the tool and every descendant (this process is a child
              subreaper, so daemonized ssh ControlPersist masters are reaped here too,
              after --cleanup has closed them);
  target_cpu  growth of cutime+cstime of the sshd listeners, i.e. all reaped target-side
              work (sshd sessions, shells, remote Python, sftp-server, froyo's runner),
              read once every sshd session of the run has ended;
  per host, from that sshd's own logs (LogLevel VERBOSE, sftp-server -l DEBUG3):
    conns     SSH connections ("Accepted publickey"),
    sessions  exec + subsystem channel requests (one remote command / sftp session each),
    sftp      SFTP requests (open, write, close, stat, setstat, ...),
    runner    froyo only: the runner round trips froyo reports in its summary line,
    requests  sessions + sftp + runner: request/response exchanges the tool started.
"""

import argparse
import ctypes
import hashlib
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
TICKS = os.sysconf("SC_CLK_TCK")


def children_cpu(pid):
    """cutime + cstime of `pid` in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[13]) + int(rest[14])) / TICKS


def child_pids(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except FileNotFoundError:
        pass
    return out


def size(path):
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


def segment(path, start):
    try:
        with open(path, "rb") as f:
            f.seek(start)
            return f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


SFTP_REQ = re.compile(r"request \d+: (?!sent )")


def count_host(sshd_log, sftp_log):
    return {
        "conns": len(re.findall(r"Accepted publickey for ", sshd_log)),
        "sessions": len(re.findall(r"Starting session: (?:command|subsystem)", sshd_log)),
        "sftp": sum(1 for line in sftp_log.splitlines() if SFTP_REQ.search(line)),
    }


# Not declared by the workload: the mode of the command's output file follows the umask
# of the remote shell each tool runs it in, so only its content is compared.
UNMANAGED_MODE = {"uname.txt"}


def tree_digest(root, manifest=None):
    """sha256 over (relative path, mode, sha256 of content) of every entry below root
    (root itself, which the tools create as a parent, is left out). Every entry with its
    mode is written to `manifest` when given."""
    h = hashlib.sha256()
    if not os.path.isdir(root):
        return None
    lines = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in [""] + sorted(filenames):
            p = os.path.join(dirpath, name) if name else dirpath
            rel = os.path.relpath(p, root)
            if rel == ".":
                continue
            mode = f"{os.lstat(p).st_mode:o}"
            digest = ""
            if name:
                with open(p, "rb") as f:
                    digest = " " + hashlib.sha256(f.read()).hexdigest()
            lines.append(f"{rel} {mode}{digest}\n")
            hashed = "-" if name in UNMANAGED_MODE else mode
            h.update(f"{rel} {hashed}{digest}\n".encode())
    if manifest:
        with open(manifest, "w") as f:
            f.writelines(lines)
    return h.hexdigest()


def changes(tool, text):
    """Changes the tool itself reported, summed over hosts (None if not found)."""
    if tool.startswith("froyo"):
        m = re.search(r"Apply: (\d+) changed, (\d+) unchanged, (\d+) failed", text)
        return int(m.group(1)) if m else None
    if tool.startswith("ansible"):
        found = re.findall(r"^\S+\s+: ok=\d+\s+changed=(\d+)", text, re.M)
        return sum(int(x) for x in found) if found else None
    if tool == "pyinfra":
        # Its results table ends with "Grand total  <ops> <success> <error> <no change>";
        # "success" counts the operations that changed something ("-" is 0).
        m = re.search(r"^\s*Grand total\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", text, re.M)
        return 0 if m and m.group(2) == "-" else int(m.group(2)) if m else None
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--phase", required=True)
    ap.add_argument("--round", type=int, required=True)
    ap.add_argument("--out", required=True, help="JSON lines file to append to")
    ap.add_argument("--log", required=True, help="stdout+stderr of the tool")
    ap.add_argument("--host", action="append", default=[],
                    help="NAME:SSHD_PID:SSHD_LOG:SFTP_LOG[:HOST,HOST,...] (repeat per sshd; "
                         "the hosts it serves, default NAME alone)")
    ap.add_argument("--cleanup", help="shell command run after the tool (not timed)")
    ap.add_argument("--digest-root", help="hash this tree after the run")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not cmd:
        ap.error("no command after --")

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed")

    hosts = []
    for spec in a.host:
        name, pid, slog, flog, *members = spec.split(":", 4)
        pid = int(pid)
        members = members[0].split(",") if members else [name]
        hosts.append({"name": name, "pid": pid, "sshd_log": slog, "sftp_log": flog,
                      "members": members,
                      "cpu0": children_cpu(pid), "off_sshd": size(slog),
                      "off_sftp": size(flog)})

    with open("/proc/loadavg") as f:
        load1 = float(f.read().split()[0])
    with open(a.log, "wb") as log:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        interrupted = []

        def stop(signum, _frame):
            # The tool runs in its own session (so a timeout can kill its whole group):
            # pass Ctrl-C / TERM on to it, then clean up and record as usual.
            interrupted.append(signum)
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            rc = p.wait(timeout=a.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            rc = p.wait()
            log.write(f"\n[measure] TIMEOUT after {a.timeout}s\n".encode())
        wall = time.monotonic() - t0
    if a.cleanup:
        subprocess.run(["bash", "-c", a.cleanup], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)
    # Reap every orphaned descendant (ssh masters) so its CPU lands in RUSAGE_CHILDREN.
    deadline = time.monotonic() + 30
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            if time.monotonic() > deadline:
                for c in child_pids(os.getpid()):
                    os.kill(c, signal.SIGKILL)
                deadline = time.monotonic() + 5
            time.sleep(0.05)
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)

    # Target side: wait until every sshd session of this run has ended.
    deadline = time.monotonic() + 30
    while any(child_pids(h["pid"]) for h in hosts) and time.monotonic() < deadline:
        time.sleep(0.05)
    lingering = sum(len(child_pids(h["pid"])) for h in hosts)
    time.sleep(0.1)  # let sftp-server/sshd flush their last log lines

    with open(a.log, errors="replace") as f:
        text = f.read()
    runner = {}
    if a.tool.startswith("froyo"):
        m = re.search(r"round trips: ([^)]*)\)", text)
        if m:
            for part in m.group(1).split(","):
                bits = part.split()
                if len(bits) == 2:
                    runner[bits[0]] = int(bits[1])
    per_host = {}
    target_cpu = 0.0
    for h in hosts:
        c = count_host(segment(h["sshd_log"], h["off_sshd"]),
                       segment(h["sftp_log"], h["off_sftp"]))
        c["runner"] = sum(runner.get(m, 0) for m in h["members"])
        c["requests"] = c["sessions"] + c["sftp"] + c["runner"]
        # One sshd may serve several hosts: its counts are theirs together.
        c["hosts"] = len(h["members"])
        per_host[h["name"]] = c
        target_cpu += children_cpu(h["pid"]) - h["cpu0"]

    rec = {
        "tool": a.tool, "phase": a.phase, "round": a.round, "rc": rc,
        "wall": round(wall, 3),
        "ctrl_cpu": round(ru.ru_utime + ru.ru_stime, 3),
        "ctrl_maxrss_mb": round(ru.ru_maxrss / 1024, 1),
        "target_cpu": round(target_cpu, 3),
        "changes": changes(a.tool, text),
        "hosts": per_host,
        "cmd_output_modes": sorted({
            f"{os.stat(os.path.join(d.path, n)).st_mode & 0o7777:o}"
            for d in (os.scandir(a.digest_root) if a.digest_root and os.path.isdir(a.digest_root) else [])
            for n in UNMANAGED_MODE if os.path.exists(os.path.join(d.path, n))}),
        "lingering_sessions": lingering,
        "load1_before": load1,
        "digest": (tree_digest(a.digest_root, a.log.rsplit(".", 1)[0] + ".tree")
                   if a.digest_root else None),
        "log": a.log,
    }
    with open(a.out, "a") as f:
        f.write(json.dumps(rec) + "\n")
    mean = lambda k: (sum(v[k] for v in per_host.values())
                      / max(sum(v["hosts"] for v in per_host.values()), 1))
    print(f"  {a.tool:<18} {a.phase:<8} round {a.round}: rc={rc} wall={wall:.2f}s "
          f"ctrl_cpu={rec['ctrl_cpu']:.2f}s target_cpu={target_cpu:.2f}s "
          f"requests/host={mean('requests'):.0f} (sessions {mean('sessions'):.0f}, "
          f"sftp {mean('sftp'):.0f}, runner {mean('runner'):.0f}) changes={rec['changes']} "
          f"load={load1}",
          flush=True)
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
