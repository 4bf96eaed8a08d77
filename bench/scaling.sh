#!/usr/bin/env bash
# Benchmark (run by hand): does evaluation scale linearly? Evaluates the "mixed" playbook
# (bench/lib.sh: directories of 97 `require()`d files, a package and a guarded command
# each) at N and 10·N resources, 3 runs each, and compares the median evaluation times
# (the `eval` part of FROYO_TIMINGS). Exits 1 when 10× the resources cost 12× the time or
# more: the guard of issue 19 against a quadratic step coming back (it was `add_edge`
# scanning every edge for duplicates). A ratio, so it holds on a loaded machine too.
#
#   bench/scaling.sh [N]        # default N=10000 (and 100000); FROYO=path skips the build
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
N=${1:-10000}
BIN=$(froyo_bin)
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
declare -A EV
for n in "$N" $((N * 10)); do
    gen_mixed "$n" > "$DIR/mixed$n.star"
    evs=()
    for run in 1 2 3; do
        read -r wall rss ev cue graph pol < <(check_timed "$BIN" "$DIR/mixed$n.star" --no-bundled-policies)
        evs+=("$ev")
        echo "  $n resources, run $run: eval ${ev}s (wall ${wall}s, peak RSS $((rss / 1024)) MiB; CUE ${cue}s, graph ${graph}s)"
    done
    EV[$n]=$(median "${evs[@]}")
done
ratio=$(awk -v a="${EV[$N]}" -v b="${EV[$((N * 10))]}" 'BEGIN {printf "%.2f", (a > 0 ? b / a : 0)}')
echo "evaluation: ${EV[$N]}s at $N, ${EV[$((N * 10))]}s at $((N * 10)): ${ratio}× for 10× the resources (load: $(cut -d' ' -f1-3 /proc/loadavg))"
if awk -v r="$ratio" 'BEGIN {exit !(r < 12)}'; then
    echo "PASS: linear (< 12×)"
else
    echo "FAIL: super-linear (>= 12×)"
    exit 1
fi
