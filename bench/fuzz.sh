#!/bin/bash
# Runs one fuzz target of fuzz/ for SECONDS and appends its figures to bench/results/fuzz.tsv
# (docs/reliability.md; bench/reliability.sh turns the log into the table there).
#
#   bench/fuzz.sh TARGET SECONDS      build (cargo +nightly fuzz), then fuzz: nice'd, one job
#   bench/fuzz.sh --list              the targets, their features and sanitizer
#   bench/fuzz.sh --merge TARGET      minimise the working corpus into a fresh one (-merge=1)
#
# FROYO_FUZZ_BIN_DIR=DIR runs DIR/TARGET as built earlier instead of building (while a
# build of other targets holds the target dir).
#
# The working corpus lives outside the repository, in $FROYO_FUZZ_DIR/corpus/TARGET
# (default /var/tmp/froyo-fuzz), seeded from the small committed fuzz/corpus/TARGET;
# crash, timeout and OOM inputs land in $FROYO_FUZZ_DIR/artifacts/TARGET. Limits: a run
# fails on an input that takes over 10 s, grows RSS past 512 MB or mallocs 256 MB at once.
# Targets are built without a sanitizer (`-s none`): froyo is safe Rust apart from its C
# and Go dependencies (SQLite, libcue), ASan in one process with the Go runtime is not
# supported, and a sanitizer build of every dependency costs more than the two shared
# cores here allow. Panics, hangs and RSS growth are caught all the same; the 256 MB
# malloc limit needs a sanitizer's allocator hooks, so without one only the RSS limit
# holds. FROYO_FUZZ_SANITIZER=address builds a target with ASan (its own target dir).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
work=${FROYO_FUZZ_DIR:-/var/tmp/froyo-fuzz}
target_dir=${FROYO_FUZZ_TARGET_DIR:-/var/tmp/t-fuzz-nightly}
log="$here/bench/results/fuzz.tsv"
export PATH="/usr/local/go/bin:$HOME/.cargo/bin:$PATH"
# The workspace's rustc wrapper adds the nested builds' targets to the toolchain; a fuzz
# build embeds no nested binaries (interpreter/build.rs), so it needs none.
export RUSTC_WORKSPACE_WRAPPER=

# target  features  sanitizer  boundary
TARGETS="
runner_frames      -       none     frames the runner reads from the controller
controller_frames  interp  none     frames the controller reads from a target
plan_file          interp  none     the saved plan of apply --plan
froyo_toml         interp  none     froyo.toml
inventory_toml     interp  none     inventory.toml
star_eval          interp  none     .star evaluation
cue_eval           interp  none     .cue evaluation (libcue)
template           interp  none     templates (MiniJinja)
policy_input       interp  none     the policy input document (regorus)
agent_recipe       agent   none     the agent's recipe and plan TOML
agent_api          agent   none     the agent's HTTP API requests
agent_document     agent   none     the agent's signed documents (minisign)
ansible_yaml       import  none     the Ansible YAML reader
"

row() { echo "$TARGETS" | awk -v t="$1" '$1 == t'; }

if [ "${1:-}" = "--list" ]; then
    echo "$TARGETS" | sed '/^$/d'
    exit 0
fi

build() {
    local target=$1 features=$2 san=$3
    if [ -n "${FROYO_FUZZ_BIN_DIR:-}" ]; then
        echo "$FROYO_FUZZ_BIN_DIR/$target"
        return
    fi
    local args=(fuzz build --release -s "$san" --target-dir "$target_dir/$san")
    [ "$features" != "-" ] && args+=(--features "$features")
    (cd "$here" && nice -n 19 cargo +nightly "${args[@]}" "$target" >&2)
    echo "$target_dir/$san/x86_64-unknown-linux-gnu/release/$target"
}

if [ "${1:-}" = "--merge" ]; then
    target=${2:?usage: bench/fuzz.sh --merge TARGET}
    read -r _ features san _ <<<"$(row "$target")"
    san=${FROYO_FUZZ_SANITIZER:-$san}
    bin=$(build "$target" "$features" "$san")
    fresh="$work/corpus/$target.merged"
    rm -rf "$fresh" && mkdir -p "$fresh"
    nice -n 19 "$bin" -merge=1 -rss_limit_mb=512 -malloc_limit_mb=256 -timeout=10 \
        "$fresh" "$work/corpus/$target" "$here/fuzz/corpus/$target"
    echo "merged into $fresh ($(ls "$fresh" | wc -l) files)" >&2
    exit 0
fi

target=${1:?usage: bench/fuzz.sh TARGET SECONDS (bench/fuzz.sh --list)}
seconds=${2:?usage: bench/fuzz.sh TARGET SECONDS}
line=$(row "$target")
[ -n "$line" ] || { echo "unknown target $target (bench/fuzz.sh --list)" >&2; exit 2; }
read -r _ features san _ <<<"$line"
san=${FROYO_FUZZ_SANITIZER:-$san}
bin=$(build "$target" "$features" "$san")

corpus="$work/corpus/$target"
artifacts="$work/artifacts/$target"
mkdir -p "$corpus" "$artifacts" "$work/logs"
cp -n "$here/fuzz/corpus/$target"/* "$corpus"/ 2>/dev/null || true
dict=()
[ -f "$here/fuzz/dict/$target.dict" ] && dict=(-dict="$here/fuzz/dict/$target.dict")
out="$work/logs/$target-$(date -u +%Y%m%dT%H%M%SZ).log"
before=$(ls "$artifacts" | wc -l)
start=$(date +%s)

set +e
nice -n 19 "$bin" "$corpus" "${dict[@]}" -artifact_prefix="$artifacts/" \
    -max_total_time="$seconds" -rss_limit_mb=512 -malloc_limit_mb=256 -timeout=10 \
    -print_final_stats=1 -jobs=0 >"$out" 2>&1
status=$?
set -e

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -1)
rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$out" | tail -1)
elapsed=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$out" | tail -1)
if [ -z "$execs" ]; then
    # A crash ends the run before the final stats: take the last status line.
    execs=$(grep -oE '^#[0-9]+' "$out" | tail -1 | tr -d '#')
    rss=$(grep -oE 'rss: [0-9]+Mb' "$out" | tail -1 | grep -oE '[0-9]+')
fi
[ -n "$elapsed" ] || elapsed=$(( $(date +%s) - start ))
crashes=$(( $(ls "$artifacts" | wc -l) - before ))
kind=none
if [ "$crashes" -gt 0 ]; then
    kind=$(ls -t "$artifacts" | head -1 | cut -d- -f1)
fi
files=$(ls "$corpus" | wc -l)
[ -f "$log" ] || printf 'date\ttarget\tcommit\tsanitizer\tseconds\texecutions\texec_per_s\tcrashes\tcrash_kind\tcorpus_files\tpeak_rss_mb\n' >"$log"
rate=$(( ${execs:-0} / (elapsed > 0 ? elapsed : 1) ))
printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$target" "$(git -C "$here" describe --always --dirty)" "$san" \
    "$elapsed" "${execs:-0}" "$rate" "$crashes" "$kind" "$files" "${rss:-0}" >>"$log"
tail -1 "$log"
[ "$crashes" -eq 0 ] || { echo "found: $(ls -t "$artifacts" | head -1) (log $out)" >&2; exit 1; }
[ "$status" -eq 0 ] || { echo "libFuzzer exited $status (log $out)" >&2; exit "$status"; }
