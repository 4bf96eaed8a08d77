#!/usr/bin/env bash
# Benchmark (run by hand): Rego evaluation of the bundled policies over a graph of N
# resources (default 10,000: files, directories, packages, downloads, firewall rules and
# commands in equal parts, one world-writable file among them so a rule fires), against
# OPA itself (`opa eval`) on the same input document (`froyo policy input`) in the same
# run. froyo's "policies" time (FROYO_TIMINGS=1) is building the input document, loading
# the modules and evaluating deny and warn; opa's is the wall time of `opa eval` (parsing
# the input and the modules, evaluating the same two sets). Both must find the same number
# of denials and warnings.
#
#   bench/policy.sh [N]        # FROYO=path skips the build; OPA=path (default: built once
#                              # from its Go module into /var/tmp/froyo-bench-opa)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
N=${1:-10000}
RUNS=${RUNS:-3}
BIN=$(froyo_bin)
OPA_VERSION=${OPA_VERSION:-v1.22.4}
OPA=${OPA:-/var/tmp/froyo-bench-opa/opa}
if [ ! -x "$OPA" ]; then
    command -v go >/dev/null || { echo "policy.sh: no opa at $OPA and no go to build it" >&2; exit 1; }
    echo "building opa $OPA_VERSION from its Go module into $(dirname "$OPA") (once)"
    mkdir -p "$(dirname "$OPA")"
    GOBIN=$(dirname "$OPA") go install "github.com/open-policy-agent/opa@$OPA_VERSION"
fi
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
# The bundled policies as froyo loads them: its base module (the index by type), the
# rules, empty config.
mkdir "$DIR/rego"
REPO=$(cd "$HERE/.." && pwd)
for f in "$REPO"/policies/*.rego; do
    case $f in *_test.rego) ;; *) cp "$f" "$DIR/rego/" ;; esac
done
cp "$REPO/interpreter/src/policy/base.rego" "$DIR/rego/base.rego"
echo '{"froyo": {"config": {}}}' > "$DIR/data.json"
(cd "$DIR" && "$BIN" policy input gen.star > input.json)

echo "playbook: $N resources, bundled policies (load: $(cut -d' ' -f1-3 /proc/loadavg))"
F=(); O=()
for run in $(seq "$RUNS"); do
    read -r wall rss ev cue graph pol < <(check_timed "$BIN" "$DIR/gen.star")
    F+=("$pol")
    start=$(date +%s.%N)
    "$OPA" eval --format json -d "$DIR/rego" -d "$DIR/data.json" -i "$DIR/input.json" \
        'deny := count(data.froyo.deny); warn := count(data.froyo.warn)' > "$DIR/opa.json"
    end=$(date +%s.%N)
    O+=("$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.3f", b - a}')")
    echo "  run $run: froyo policies ${pol}s, opa eval ${O[-1]}s"
done
fd=$(cd "$DIR" && "$BIN" check --json gen.star | grep -c '"code": "E-POLICY"' || true)
od=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["result"][0]["bindings"]; print(r["deny"], r["warn"])' "$DIR/opa.json")
fm=$(median "${F[@]}"); om=$(median "${O[@]}")
echo "denials: froyo $fd, opa ${od% *} (warnings: opa ${od#* })"
awk -v f="$fm" -v o="$om" -v n="$N" 'BEGIN {
    printf "median: froyo %.3fs (%.4f ms per resource), opa eval %.3fs: froyo takes %.2f× the time of opa\n", f, f * 1000 / n, o, (o > 0 ? f / o : 0) }'
