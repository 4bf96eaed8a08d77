#!/usr/bin/env bash
# Benchmark (run by hand): evaluation + CUE validation of a playbook of N `file()` resources.
# Reports total wall time and peak RSS, and the split between Starlark evaluation and CUE
# validation (from the `--timings` line `froyo check` prints with FROYO_TIMINGS=1).
#
#   bench/eval-100k.sh [N]        # default N=100000; builds the release binary first
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
cargo build --release --quiet
BIN=target/release/froyo
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
cat > "$DIR/gen.star" <<STAR
load("@stdlib//linux.star", "file")

def main(host):
    for i in range($N):
        file("/srv/data/f%d" % i, content = "hello %d\n" % i, mode = "0644", owner = "root")
STAR
echo "playbook: $N file() resources"
for run in 1 2 3; do
    /usr/bin/time -f "run $run: wall %e s, peak RSS %M KB" env FROYO_TIMINGS=1 "$BIN" check "$DIR/gen.star" 2>&1 | grep -E "^(run|timings)"
done
