# Shared by the bench/*.sh scripts (sourced, not run): where the froyo binary is and the
# generated playbooks of issue 19.

# The release binary: $FROYO, else built in $CARGO_TARGET_DIR (or target/) once.
froyo_bin() {
    if [ -n "${FROYO:-}" ]; then
        echo "$FROYO"
        return
    fi
    local repo
    repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    (cd "$repo" && cargo build --release --quiet -p froyo) >&2
    local dir=${CARGO_TARGET_DIR:-$repo/target}
    case $dir in /*) ;; *) dir=$repo/$dir ;; esac
    echo "$dir/release/froyo"
}

# The "mixed" playbook of N resources, as a user writes them: N/100 directories, each
# holding 97 files `require()`d on it, plus a package and a guarded command per directory.
gen_mixed() {
    local n=$1
    cat <<STAR
load("@stdlib//linux.star", "command", "directory", "file", "package")

def main(host):
    for d in range($n // 100):
        base = "/srv/app%d" % d
        top = directory(base, mode = "0755", owner = "root")
        for i in range(97):
            f = file("%s/f%d.conf" % (base, i), content = "key%d = %d\n" % (i, d), mode = "0644", owner = "root")
            require(f, top)
        package("pkg%d" % d)
        c = command("setup %d" % d, argv = ["touch", base + "/.done"], creates = base + "/.done")
        require(c, top)
STAR
}

# N plain `file()` resources.
gen_files() {
    local n=$1
    cat <<STAR
load("@stdlib//linux.star", "file")

def main(host):
    for i in range($n):
        file("/srv/data/f%d" % i, content = "hello %d\n" % i, mode = "0644", owner = "root")
STAR
}

# `froyo check` of playbook $2 with FROYO_TIMINGS=1: prints "wall_s rss_kib eval cue graph
# policies" (seconds) on one line. Extra arguments go to `froyo check`.
check_timed() {
    local bin=$1 star=$2
    shift 2
    local dir out
    dir=$(dirname "$star")
    out=$(cd "$dir" && /usr/bin/time -f "TIME %e %M" env FROYO_TIMINGS=1 "$bin" check "$@" "$(basename "$star")" 2>&1 >/dev/null) || true
    local t
    t=$(grep '^TIME' <<<"$out" | tail -1)
    local tl
    tl=$(grep '^timings:' <<<"$out" | tail -1)
    [ -n "$tl" ] || { echo "check_timed: no timings from froyo check:" >&2; echo "$out" | tail -5 >&2; return 1; }
    local ev cue gr po
    ev=$(sed -E 's/.*eval ([0-9.]+)s.*/\1/' <<<"$tl")
    cue=$(sed -E 's/.*CUE validation ([0-9.]+)s.*/\1/' <<<"$tl")
    gr=$(sed -E 's/.*graph ([0-9.]+)s.*/\1/' <<<"$tl")
    po=$(sed -E 's/.*policies ([0-9.]+)s.*/\1/' <<<"$tl")
    echo "${t#TIME } $ev $cue $gr $po"
}

# The median of the numbers given as arguments.
median() {
    printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'
}
