#!/usr/bin/env bash
# Benchmark (run by hand): Rego evaluation of the bundled policies over a graph of N
# resources (default 10,000: files, directories, packages, downloads, firewall rules and
# commands in equal parts, one world-writable file among them so a rule fires).
# Prints `froyo check`'s timings line (FROYO_TIMINGS=1); "policies" is the Rego part
# (building the input document, loading the modules, evaluating deny and warn).
#
#   bench/policy.sh [N]        # builds the release binary first
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
[ -n "${FROYO:-}" ] || cargo build --release --quiet -p froyo
BIN=${FROYO:-$PWD/target/release/froyo}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
cat > "$DIR/gen.star" <<STAR
load("@stdlib//linux.star", "command", "directory", "file", "firewall_rule", "package")
load("@stdlib//net.star", "download")

SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

def main(host):
    for i in range($N // 6):
        file("/srv/f%d" % i, content = "hello %d\n" % i, mode = "0644")
        directory("/srv/d%d" % i, mode = "0755")
        package("pkg%d" % i)
        download("/opt/t%d.tgz" % i, url = "https://example.com/t%d.tgz" % i, sha256 = SHA)
        firewall_rule("r%d" % i, port = 1000 + i, source = "10.0.0.0/8")
        command("c%d" % i, argv = ["true"], creates = "/srv/c%d" % i)
    file("/srv/open", content = "x", mode = "0666")
STAR
echo "playbook: $N resources, bundled policies"
for run in 1 2 3; do
    (cd "$DIR" && FROYO_TIMINGS=1 "$BIN" check gen.star 2>&1 | grep -E "^timings|world_writable\]" | sed 's/^/  /') || true
done
echo "same playbook, --no-bundled-policies (no Rego at all):"
(cd "$DIR" && FROYO_TIMINGS=1 "$BIN" check --no-bundled-policies gen.star 2>&1 | grep -E "^timings" | sed 's/^/  /') || true
