#!/usr/bin/env python3
"""Markdown summary of bench/peers.sh results (the JSON lines measure.py wrote)."""

import json
import statistics
import sys

PHASES = [("first", "first apply"), ("noop", "no-change apply")]


def per_host_mean(rec, key):
    hosts = rec["hosts"].values()
    # An entry is one sshd; it may serve several hosts (older records: one each).
    return sum(h[key] for h in hosts) / max(sum(h.get("hosts", 1) for h in hosts), 1)


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def main(path):
    recs = [json.loads(line) for line in open(path) if line.strip()]
    tools = []
    for r in recs:
        if r["tool"] not in tools:
            tools.append(r["tool"])
    rows = {}
    for t in tools:
        for ph, _ in PHASES:
            rs = [r for r in recs if r["tool"] == t and r["phase"] == ph]
            if not rs:
                continue
            rows[(t, ph)] = {
                "n": len(rs),
                "walls": [r["wall"] for r in rs],
                "wall": med([r["wall"] for r in rs]),
                "ctrl": med([r["ctrl_cpu"] for r in rs]),
                "target": med([r["target_cpu"] for r in rs]),
                "total": med([r["ctrl_cpu"] + r["target_cpu"] for r in rs]),
                "rss": max(r["ctrl_maxrss_mb"] for r in rs),
                "conns": med([per_host_mean(r, "conns") for r in rs]),
                "sessions": med([per_host_mean(r, "sessions") for r in rs]),
                "sftp": med([per_host_mean(r, "sftp") for r in rs]),
                "runner": med([per_host_mean(r, "runner") for r in rs]),
                "requests": med([per_host_mean(r, "requests") for r in rs]),
                "changes": [r["changes"] for r in rs],
                "rcs": [r["rc"] for r in rs],
                "digests": {r["digest"] for r in rs if r.get("digest")},
            }
    out = []
    out.append("| tool | phase | runs | wall per run (s) | **median wall (s)** | controller CPU (s) "
               "| target CPU (s) | **total CPU (s)** | conns/host | SSH sessions/host "
               "| sftp reqs/host | runner reqs/host | **round trips/host** | changes reported | exit codes |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for t in tools:
        for ph, label in PHASES:
            r = rows.get((t, ph))
            if not r:
                continue
            out.append(
                f"| {t} | {label} | {r['n']} | {', '.join(f'{w:.2f}' for w in r['walls'])} "
                f"| **{r['wall']:.2f}** | {r['ctrl']:.2f} | {r['target']:.2f} | **{r['total']:.2f}** "
                f"| {r['conns']:.0f} | {r['sessions']:.0f} | {r['sftp']:.0f} | {r['runner']:.0f} "
                f"| **{r['requests']:.0f}** | {','.join(str(c) for c in r['changes'])} "
                f"| {','.join(str(c) for c in r['rcs'])} |")
    out.append("")
    out.append("Round trips/host = SSH sessions (exec + subsystem channels, from each sshd's "
               "VERBOSE log) + SFTP requests (from sftp-server's DEBUG3 log) + runner round trips "
               "(froyo's own count from its `Apply:` summary line). Medians of the per-host mean. "
               "Total CPU = controller (tool + all descendants, incl. ssh masters) + target "
               "(cutime+cstime growth of the 4 sshd listeners); all on one machine.")
    out.append("")
    if "froyo" in tools and "froyo-otlp" in tools:
        # The cost of tracing: the same froyo with every span exported to a real OTLP/gRPC
        # receiver on loopback, against froyo with traces off.
        out.append("| tracing overhead | phase | wall | total CPU | controller CPU | target CPU | round trips/host |")
        out.append("|---|---|---|---|---|---|---|")
        for ph, label in PHASES:
            f, o = rows.get(("froyo-otlp", ph)), rows.get(("froyo", ph))
            if not f or not o:
                continue
            ratio = lambda k: f"{f[k] / o[k]:.3f}" if o[k] else "n/a"
            out.append(f"| froyo-otlp/froyo | {label} | {ratio('wall')} | {ratio('total')} "
                       f"| {ratio('ctrl')} | {ratio('target')} | {ratio('requests')} |")
        out.append("")
        out.append("froyo-otlp = froyo with `OTEL_TRACES_EXPORTER=otlp` to the OTLP/gRPC receiver of "
                   "tests/fixtures/otlp/receiver.py (its own CPU is not counted). Ratios > 1 are the "
                   "cost of tracing.")
        out.append("")
    if "froyo" in tools:
        peers = [t for t in tools if t not in ("froyo", "froyo-otlp")]
        out.append("| ratio | phase | wall | total CPU | controller CPU | target CPU | round trips/host |")
        out.append("|---|---|---|---|---|---|---|")
        for p in peers:
            for ph, label in PHASES:
                f, o = rows.get(("froyo", ph)), rows.get((p, ph))
                if not f or not o:
                    continue
                ratio = lambda k: f"{f[k] / o[k]:.3f}" if o[k] else "n/a"
                out.append(f"| froyo/{p} | {label} | {ratio('wall')} | {ratio('total')} "
                           f"| {ratio('ctrl')} | {ratio('target')} | {ratio('requests')} |")
        out.append("")
        out.append("Ratios < 1 mean froyo is faster / cheaper (medians over medians).")
        out.append("")
    digests = {t: rows[(t, "first")]["digests"] for t in tools if (t, "first") in rows}
    all_d = set().union(*digests.values()) if digests else set()
    if len(all_d) == 1:
        out.append(f"Equivalence: every first apply of every tool left the identical tree "
                   f"(paths, modes, sha256) `{next(iter(all_d))[:16]}…`.")
    else:
        out.append("Equivalence: **trees differ** between runs/tools: "
                   + "; ".join(f"{t}: {', '.join(d[:16] for d in sorted(ds))}"
                               for t, ds in digests.items()))
    modes = {t: sorted({m for r in recs if r["tool"] == t and r["phase"] == "first"
                        for m in r.get("cmd_output_modes", [])}) for t in tools}
    out.append("")
    out.append("Mode of the command's output file (not declared by the workload, so not compared; "
               "it follows the umask of the remote shell): "
               + ", ".join(f"{t} {'/'.join(m) or '?'}" for t, m in modes.items()) + ".")
    lingering = [r for r in recs if r.get("lingering_sessions")]
    if lingering:
        out.append("")
        out.append("**SSH sessions still open 30 s after a run** (target CPU incomplete): " + ", ".join(
            f"{r['tool']} {r['phase']} round {r['round']}" for r in lingering))
    failed = [r for r in recs if r["rc"] != 0]
    if failed:
        out.append("")
        out.append("**Failed runs:** " + ", ".join(
            f"{r['tool']} {r['phase']} round {r['round']} (rc {r['rc']}, log {r['log']})"
            for r in failed))
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
