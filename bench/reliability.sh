#!/bin/bash
# Regenerates the figures tables of docs/reliability.md from the logs in bench/results/.
#
#   bench/reliability.sh            rewrite every section's table in docs/reliability.md
#   bench/reliability.sh --print    print the tables instead
#   bench/reliability.sh --faults   first run the fault-injection tests (as root, like CI),
#                                   record their figures in bench/results/faults.tsv
#                                   (only when every one passes), then rewrite the tables
#
# One section per source of figures. Each is a shell function `section_NAME` that prints a
# Markdown table to stdout; its output replaces what lies between the markers
#   <!-- reliability:NAME:begin -->  and  <!-- reliability:NAME:end -->
# in docs/reliability.md. To add a source, write its function and add NAME to SECTIONS.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
doc="$here/docs/reliability.md"
SECTIONS="fuzz faults"

# Fuzzing: bench/results/fuzz.tsv, one row per `bench/fuzz.sh TARGET SECONDS` session.
# Sessions of a target add up; the rate, corpus and RSS are the last session's (peak RSS:
# the highest seen). A crash column counts sessions that ended on a crash, timeout or OOM
# (each became a regression test once fixed); "open" says whether the last one did.
section_fuzz() {
    local log="$here/bench/results/fuzz.tsv"
    [ -f "$log" ] || { echo "_No fuzzing session recorded yet (bench/fuzz.sh)._"; return; }
    awk -F'\t' '
        NR == 1 { next }
        {
            t = $2
            if (!(t in sessions)) order[++n] = t
            sessions[t]++; secs[t] += $5; execs[t] += $6; rate[t] = $7
            crashes[t] += ($8 > 0); open[t] = ($8 > 0) ? $9 : "no"
            corpus[t] = $10; if ($11 + 0 > rss[t] + 0) rss[t] = $11
            san[t] = $4; last[t] = substr($1, 1, 10)
        }
        function human(x) {
            if (x >= 1e6) return sprintf("%.1f M", x / 1e6)
            if (x >= 1e3) return sprintf("%.0f k", x / 1e3)
            return x
        }
        function dur(s) {
            if (s >= 3600) return sprintf("%.1f h", s / 3600)
            if (s >= 60) return sprintf("%.0f min", s / 60)
            return sprintf("%d s", s)
        }
        END {
            print "| Target | Sessions | Executions | Fuzzing time | Exec/s (last) | Crashes found | Open | Corpus | Peak RSS | To 10 M | Sanitizer | Last run |"
            print "|---|--:|--:|--:|--:|--:|---|--:|--:|--:|---|---|"
            for (i = 1; i <= n; i++) {
                t = order[i]
                left = 1e7 - execs[t]
                if (left <= 0) to = "reached"
                else if (rate[t] > 0) to = dur(left / rate[t]) " more"
                else to = "?"
                printf "| `%s` | %d | %s | %s | %s | %d | %s | %d | %s MB | %s | %s | %s |\n", \
                    t, sessions[t], human(execs[t]), dur(secs[t]), human(rate[t]), crashes[t], \
                    open[t], corpus[t], rss[t], to, san[t], last[t]
                all += execs[t]; time += secs[t]; found += crashes[t]; if (open[t] != "no") still++
                if (left <= 0) reached++
            }
            printf "\nIn all: **%s bad inputs tried** in %s of fuzzing, %d crashes found and fixed, %d open; %d of %d targets past 10 M.\n", \
                human(all), dur(time), found - still, still, reached, n
        }' "$log"
}

# Faults: bench/results/faults.tsv, one row per fault a test injected (tests/it/fault_log.rs
# writes them): the records the state held just before the fault and how many of those
# were gone afterwards.
section_faults() {
    local log="$here/bench/results/faults.tsv"
    [ -f "$log" ] || { echo "_No fault run recorded yet (bench/reliability.sh --faults)._"; return; }
    awk -F'\t' '
        NR == 1 { next }
        /^#/ { when = substr($0, 3); next }
        {
            n++; before += $4; lost += $5
            printf "| %s | `%s` | %s | %d | **%d** |\n", $2, $1, $3, $4, $5
        }
        END {
            printf "| **%d faults injected, %d survived** | | | **%d** | **%d** |\n", n, n, before, lost
            if (when != "") printf "\nRecorded %s.\n", when
        }' "$log" | {
        echo "| Fault injected | Test | Outcome asserted | Records before | Lost |"
        echo "|---|---|---|--:|--:|"
        cat
    }
}

if [ "${1:-}" = "--faults" ]; then
    tmp=$(mktemp)
    trap 'rm -f "$tmp"' EXIT
    (cd "$here" && FROYO_FAULT_LOG="$tmp" cargo test --test it -- \
        faults queue::a_worker_killed_mid_host) || {
        echo "a fault test failed: bench/results/faults.tsv is left as it was" >&2
        exit 1
    }
    {
        printf 'test\tfault\toutcome\trecords_before\trecords_lost\tseconds\n'
        printf '# %s, commit %s, %s\n' "$(date -u +%Y-%m-%d)" \
            "$(git -C "$here" describe --always --dirty)" "$(uname -sr)"
        sort "$tmp"
    } >"$here/bench/results/faults.tsv"
    shift
fi

if [ "${1:-}" = "--print" ]; then
    for s in $SECTIONS; do "section_$s"; echo; done
    exit 0
fi

for s in $SECTIONS; do
    table=$("section_$s")
    TABLE="$table" python3 - "$doc" "$s" <<'PY'
import os, sys
path, name = sys.argv[1], sys.argv[2]
begin, end = f"<!-- reliability:{name}:begin -->", f"<!-- reliability:{name}:end -->"
text = open(path).read()
if begin not in text or end not in text:
    sys.exit(f"{path}: no {begin} … {end} markers")
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(path, "w").write(f"{head}{begin}\n{os.environ['TABLE']}\n{end}{tail}")
PY
done
echo "updated $doc ($SECTIONS)"
