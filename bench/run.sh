#!/usr/bin/env bash
# Runs the benchmarks of issue 19 and prints one Markdown table: medians, and ratios against
# the peer measured in the same run (pyinfra for applies, OPA for policies). The numbers
# of docs/performance.md come from this script.
#
#   bench/run.sh            # as root (the peer workload logs in to loopback sshd as root)
#   bench/run.sh --quick    # 1 round of each instead of 3 (a smoke run)
#
# Environment: FROYO (the release binary; default: built into $CARGO_TARGET_DIR/release),
# OPA (see bench/policy.sh), RUNS (3), N (100000: resources of the check rows).
# Steps: bench/peers.sh (froyo, froyo tracing to OTLP and pyinfra on 4 hosts with a fresh project and on 48
# hosts; on 200 hosts solo froyo vs the cluster profile with 1 and 3 workers; SKIP_SCALE=1
# leaves the 48- and 200-host rows out), bench/eval-100k.sh
# (100k plain files and 100k mixed resources, default flags), bench/scaling.sh,
# bench/policy.sh (10k resources, vs opa eval), and the binary's size.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
RUNS=${RUNS:-3}
[ "${1:-}" != --quick ] || RUNS=1
N=${N:-100000}
export FROYO
FROYO=$(froyo_bin)
OUTDIR=$(mktemp -d /var/tmp/froyo-bench-run.XXXXXX)
trap 'rm -rf "$OUTDIR"' EXIT
load() { cut -d' ' -f1-3 /proc/loadavg; }
ROWS=()
row() { ROWS+=("| $1 | $2 | $3 | $4 |"); }

# peers NHOSTS TOOLS: bench/peers.sh on NHOSTS hosts, one table row per tool and phase.
peers() {
    local n=$1 tools=$2 out=$OUTDIR/peers$1
    echo "== peer workload, $n hosts: $tools (load $(load))" >&2
    NHOSTS=$n OUT=$out RUNS=$RUNS "$HERE/peers.sh" --tools "$tools" >"$out.log" 2>&1 \
        || { tail -20 "$out.log" >&2; exit 1; }
    python3 - "$out/results.jsonl" "$n" "$out/workers.tsv" >"$out.rows" <<'PY'
import json, os, statistics, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
n = sys.argv[2]
workers = {}
if os.path.exists(sys.argv[3]):
    for line in open(sys.argv[3]):
        tool, _round, _pid, kib = line.split()
        if kib.isdigit():
            workers.setdefault(tool, []).append(int(kib) / 1024)
def med(tool, phase, key):
    return statistics.median(r[key] for r in recs if r["tool"] == tool and r["phase"] == phase)
def rt(tool, phase):
    rs = [r for r in recs if r["tool"] == tool and r["phase"] == phase]
    return statistics.median(sum(h["requests"] for h in r["hosts"].values())
                             / sum(h.get("hosts", 1) for h in r["hosts"].values()) for r in rs)
tools = list(dict.fromkeys(r["tool"] for r in recs))
fresh = "fresh project, " if n == "4" else ""
for phase, label in [("first", "first apply"), ("noop", "no-change apply")]:
    for tool in [t for t in tools if t.startswith("froyo")]:
        f = med(tool, phase, "wall")
        rss = max(r["ctrl_maxrss_mb"] for r in recs if r["tool"] == tool)
        detail = f"{rt(tool, phase):.0f} round trips/host, controller peak RSS {rss:.0f} MB"
        if tool in workers:
            detail += f", worker peak RSS {max(workers[tool]):.0f} MB"
        base = med("froyo", phase, "wall") if tool != "froyo" and "froyo" in tools else None
        if "pyinfra" in tools:
            p = med("pyinfra", phase, "wall")
            vs = f"**{p / f:.1f}× faster** than pyinfra ({p:.2f} s)"
            detail += f" (pyinfra {rt('pyinfra', phase):.0f})"
            if base:
                detail += f"; {f / base:.2f}× the wall time of froyo without it ({base:.2f} s)"
        else:
            vs = f"{base / f:.2f}× solo froyo ({base:.2f} s)" if base else ""
        name = {"froyo": "froyo", "froyo-otlp": "froyo, tracing to OTLP"}.get(tool, tool)
        if tool.startswith("froyo-queue"):
            name = f"froyo --queue, {tool[len('froyo-queue'):]} worker(s)"
        print(f"peer workload, {n} hosts, {fresh}{label}, {name}|{f:.2f} s|{vs}|{detail}")
PY
    while IFS='|' read -r a b c d; do row "$a" "$b" "$c" "$d"; done <"$out.rows"
}
peers 4 "froyo froyo-otlp pyinfra"
[ -n "${SKIP_SCALE:-}" ] || peers 48 "froyo pyinfra"
[ -n "${SKIP_SCALE:-}" ] || peers 200 "froyo froyo-queue1 froyo-queue3"

for kind in files mixed; do
    echo "== froyo check, $N $kind resources, default flags (load $(load))" >&2
    "gen_$kind" "$N" >"$OUTDIR/$kind.star"
    W=(); R=(); line=""
    for _ in $(seq "$RUNS"); do
        read -r wall rss ev cue graph pol < <(check_timed "$FROYO" "$OUTDIR/$kind.star")
        W+=("$wall"); R+=("$rss")
        line="eval ${ev} s, CUE ${cue} s, graph ${graph} s, policies ${pol} s"
    done
    w=$(median "${W[@]}"); r=$(median "${R[@]}")
    row "\`froyo check\`, $N ${kind/files/plain \`file()\`} resources" "$w s wall, $((${r%.*} / 1024)) MiB peak RSS" "goal < 2 s" "last run: $line"
done

echo "== evaluation scaling (load $(load))" >&2
s=$("$HERE/scaling.sh" $((N / 10)) 2>&1 | grep '^evaluation:' || true)
row "evaluation scaling, mixed playbook" "${s#evaluation: }" "goal < 12× for 10× the resources" ""

echo "== policies, 10000 resources, vs opa eval (load $(load))" >&2
p=$(RUNS=$RUNS "$HERE/policy.sh" 10000 2>&1)
m=$(grep '^median:' <<<"$p" | sed 's/^median: //')
dn=$(grep '^denials:' <<<"$p" || true)
row "bundled policies, 10,000 mixed resources" "$m" "goal < 0.03 ms per resource, faster than opa" "$dn"

size=$(stat -c %s "$FROYO")
row "\`froyo\` release binary" "$((size / 1000000)) MB" "" "$(file -b "$FROYO" | grep -o 'not stripped\|stripped' | head -1)"

echo
echo "Machine: $(nproc) CPUs, $(uname -sr); load at the end: $(load); $(date -u +%FT%TZ); rounds: $RUNS"
echo
echo "| what | measured | vs peer / goal | detail |"
echo "|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
