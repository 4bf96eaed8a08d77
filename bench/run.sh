#!/usr/bin/env bash
# Runs the benchmarks of issue 19 and prints one Markdown table: medians, and ratios against
# the peer measured in the same run (pyinfra for applies, OPA for policies). The numbers
# of the README's "Performance" section come from this script.
#
#   bench/run.sh            # as root (the peer workload logs in to loopback sshd as root)
#   bench/run.sh --quick    # 1 round of each instead of 3 (a smoke run)
#
# Environment: FROYO (the release binary; default: built into $CARGO_TARGET_DIR/release),
# OPA (see bench/policy.sh), RUNS (3), N (100000: resources of the check rows).
# Steps: bench/peers.sh (froyo vs pyinfra, 4 hosts, fresh project), bench/eval-100k.sh
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

echo "== peers: froyo vs pyinfra, 4 hosts, fresh project (load $(load))" >&2
OUT=$OUTDIR/peers RUNS=$RUNS "$HERE/peers.sh" --tools "froyo pyinfra" >"$OUTDIR/peers.log" 2>&1 \
    || { tail -20 "$OUTDIR/peers.log" >&2; exit 1; }
python3 - "$OUTDIR/peers/results.jsonl" >"$OUTDIR/peers.rows" <<'PY'
import json, statistics, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def med(tool, phase, key):
    return statistics.median(r[key] for r in recs if r["tool"] == tool and r["phase"] == phase)
def rt(tool, phase):
    rs = [r for r in recs if r["tool"] == tool and r["phase"] == phase]
    return statistics.median(sum(h["requests"] for h in r["hosts"].values()) / len(r["hosts"]) for r in rs)
for phase, label in [("first", "first apply"), ("noop", "no-change apply")]:
    f, p = med("froyo", phase, "wall"), med("pyinfra", phase, "wall")
    print(f"peer workload, 4 hosts, fresh project, {label}|froyo {f:.2f} s, pyinfra {p:.2f} s|**{p / f:.1f}× faster** than pyinfra|"
          f"{rt('froyo', phase):.0f} round trips/host (pyinfra {rt('pyinfra', phase):.0f}), controller peak RSS {max(r['ctrl_maxrss_mb'] for r in recs if r['tool'] == 'froyo'):.0f} MB")
PY
while IFS='|' read -r a b c d; do row "$a" "$b" "$c" "$d"; done <"$OUTDIR/peers.rows"

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
