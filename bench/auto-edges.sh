#!/usr/bin/env bash
# Benchmark (run by hand): the cost of automatic edges (spec §3) on a playbook of N
# resources written without require(): N/100 directories, 10 users with their groups
# declared after them, and files spread over the directories, owned by the users. The
# peer, measured in the same run, is the same number of files with nothing managed
# around them (no automatic edge). Prints the `graph` phase of `froyo check` (building
# the graph, automatic edges, cycle check) for both, from FROYO_TIMINGS=1.
#
#   bench/auto-edges.sh [N]       # default N=100000; builds the release binary first
#   FROYO=/path/to/froyo bench/auto-edges.sh 20000
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
if [ -z "${FROYO:-}" ]; then
    cargo build --release --quiet -p froyo
    FROYO=${CARGO_TARGET_DIR:-target}/release/froyo
fi
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
cat > "$DIR/auto.star" <<STAR
load("@stdlib//linux.star", "directory", "file", "group", "user")

def main(host):
    dirs = $N // 100
    for d in range(dirs):
        directory("/srv/bench/d%d" % d, mode = "0755")
    for u in range(10):
        user("bench%d" % u, group = "bench%d" % u)
        group("bench%d" % u)
    for i in range($N - dirs - 20):
        file("/srv/bench/d%d/f%d" % (i % dirs, i), content = "x", owner = "bench%d" % (i % 10), group = "bench%d" % (i % 10))
STAR
cat > "$DIR/flat.star" <<STAR
load("@stdlib//linux.star", "file")

def main(host):
    for i in range($N):
        file("/srv/flat/f%d" % i, content = "x", owner = "root")
STAR
echo "playbooks: $N resources each"
for run in 1 2 3; do
    for p in auto flat; do
        printf '%s run %s: ' "$p" "$run"
        FROYO_TIMINGS=1 "$FROYO" check "$DIR/$p.star" 2>&1 | grep -oE "graph [0-9.]+s" || true
    done
done
