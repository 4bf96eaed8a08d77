#!/usr/bin/env bash
# Benchmark (run by hand): evaluation + CUE validation of a playbook of N `file()` resources
# (or, with --mixed, the "mixed" playbook of bench/lib.sh). Reports total wall time and
# peak RSS, and the split between Starlark evaluation, CUE validation, the graph and the
# policies (from the timings line `froyo check` prints with FROYO_TIMINGS=1).
#
#   bench/eval-100k.sh [--mixed] [N]    # default N=100000; FROYO=path skips the build
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
GEN=gen_files
if [ "${1:-}" = --mixed ]; then GEN=gen_mixed; shift; fi
N=${1:-100000}
BIN=$(froyo_bin)
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
$GEN "$N" > "$DIR/gen.star"
echo "playbook: $N resources (${GEN#gen_}), default flags (load: $(cut -d' ' -f1-3 /proc/loadavg))"
for run in 1 2 3; do
    read -r wall rss ev cue graph pol < <(check_timed "$BIN" "$DIR/gen.star")
    echo "run $run: wall ${wall}s, peak RSS $((rss / 1024)) MiB: eval ${ev}s, CUE ${cue}s, graph ${graph}s, policies ${pol}s"
done
