#!/usr/bin/env bash
# Benchmark (run by hand, as root): froyo against Ansible (ansible-core) and pyinfra on the
# workload of research/peers.md §3.2 — 4 loopback sshd targets, each 1 directory + 50 files
# + 1 command (guarded by `creates`, so a no-change apply changes nothing) — first apply
# and no-change apply, RUNS rounds each (interleaved), reporting wall time, total CPU
# (controller + target) and round trips per host, with the ratios froyo/peer.
#
#   bench/peers.sh                  # froyo, ansible, ansible-pipelining, pyinfra; 3 rounds
#   bench/peers.sh --peers-only     # without froyo (to test the harness)
#   bench/peers.sh --runs 1 --tools "froyo pyinfra"
#   bench/peers.sh --tools "froyo froyo-otlp"   # the cost of tracing (OTLP/gRPC on vs off)
#   NHOSTS=48 bench/peers.sh --tools "froyo pyinfra"   # the scale rows of issue 19
#   NHOSTS=200 bench/peers.sh --tools "froyo froyo-queue1 froyo-queue3"   # cluster profile
#
# Environment: FROYO (default target/release/froyo, relative to the repo), RUNS (3),
# VENV (/var/tmp/froyo-bench-venv: ansible-core + pyinfra from PyPI, installed if missing),
# ANSIBLE_CORE_VERSION (2.19.14) and PYINFRA_VERSION (3.10.0), the versions of the
# baseline; NHOSTS (4; one sshd serves up to 16 of them, on consecutive ports), PORT_BASE
# (2200: targets on 127.0.0.1:2201-…), BENCH_ROOT (/tmp/froyo-bench:
# target N writes only under BENCH_ROOT/hostN; wiped before every first apply), OUT (the
# results directory), RUN_TIMEOUT (900 s per run), KEEP_WORK=1 keeps the work directory;
# FROYO_OTLP_PY (/var/tmp/froyo-otlp, the virtualenv tests/run.sh makes: grpcio +
# opentelemetry-proto) runs the OTLP/gRPC receiver that the `froyo-otlp` tool exports to.
# The `froyo-queueN` tools are the cluster profile: `apply --queue` with N `froyo worker`s
# (WORKER_CONCURRENCY hosts each, default 16), started before the first apply and stopped
# after the no-change one, their peak RSS in workers.tsv. They need a PostgreSQL (initdb +
# pg_ctl as the postgres user, trust auth, a loopback port) and a `nats-server -js`, both
# started in the work directory and stopped by PID.
#
# Needs openssh-server + openssh-client (/usr/sbin/sshd, ssh, ssh-keygen) and python3.
# The 4 sshd are stopped by their recorded PIDs on exit (also on error or Ctrl-C).
# How each number is obtained: bench/README.md.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
HERE=$REPO/bench/peers
RUNS=${RUNS:-3}
TOOLS=${TOOLS:-"froyo ansible ansible-pipelining pyinfra"}
VENV=${VENV:-/var/tmp/froyo-bench-venv}
ANSIBLE_CORE_VERSION=${ANSIBLE_CORE_VERSION:-2.19.14}
PYINFRA_VERSION=${PYINFRA_VERSION:-3.10.0}
PORT_BASE=${PORT_BASE:-2200}
BENCH_ROOT=${BENCH_ROOT:-/tmp/froyo-bench}
OUT=${OUT:-/var/tmp/froyo-bench-results/$(date -u +%Y%m%dT%H%M%SZ)}
RUN_TIMEOUT=${RUN_TIMEOUT:-900}
NHOSTS=${NHOSTS:-4}
PER_SSHD=16
WORKER_CONCURRENCY=${WORKER_CONCURRENCY:-16}
PEERS_ONLY=0

usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "peers.sh: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case $1 in
        --peers-only) PEERS_ONLY=1 ;;
        --runs) RUNS=${2:?--runs N}; shift ;;
        --tools) TOOLS=${2:?--tools LIST}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
    shift
done
if [ "$PEERS_ONLY" = 1 ]; then
    TOOLS=$(for t in $TOOLS; do [[ $t = froyo* ]] || printf '%s ' "$t"; done)
fi
for t in $TOOLS; do
    case $t in froyo|froyo-otlp|froyo-queue[1-9]|ansible|ansible-pipelining|pyinfra) ;; *) die "unknown tool $t" ;; esac
done
[ -n "${TOOLS// /}" ] || die "no tools to run"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive number"
[[ $NHOSTS =~ ^[1-9][0-9]*$ ]] || die "NHOSTS must be a positive number"
[ "$(id -u)" = 0 ] || die "run as root (the sshd targets log in as root)"
for b in /usr/sbin/sshd ssh ssh-keygen python3; do
    command -v "$b" >/dev/null || die "$b is missing (apt-get install -y openssh-server openssh-client python3-venv)"
done
case $BENCH_ROOT in /tmp/?*|/var/tmp/?*) ;; *) die "BENCH_ROOT must be under /tmp or /var/tmp (it is wiped)" ;; esac
PY=/usr/bin/python3; [ -x "$PY" ] || PY=$(command -v python3)

if [[ " $TOOLS " == *" froyo"* ]]; then
    FROYO=${FROYO:-target/release/froyo}
    case $FROYO in /*) ;; *) FROYO=$REPO/$FROYO ;; esac
    [ -x "$FROYO" ] || die "no froyo binary at $FROYO (cargo build --release -p froyo, or set FROYO; --peers-only skips froyo)"
    "$FROYO" apply --help >/dev/null 2>&1 || die "$FROYO has no working \`apply\` command"
fi

# --- peers: a venv with ansible-core and pyinfra -------------------------------------
if [[ " $TOOLS " == *" ansible"* || " $TOOLS " == *" pyinfra "* ]]; then
    if [ ! -x "$VENV/bin/ansible-playbook" ] || [ ! -x "$VENV/bin/pyinfra" ]; then
        echo "installing ansible-core==$ANSIBLE_CORE_VERSION pyinfra==$PYINFRA_VERSION into $VENV"
        [ -x "$VENV/bin/pip" ] || "${PYTHON:-python3}" -m venv "$VENV"
        "$VENV/bin/pip" install -q "ansible-core==$ANSIBLE_CORE_VERSION" "pyinfra==$PYINFRA_VERSION"
    fi
fi

# --- work and results directories, cleanup ---------------------------------------------
WORK=$(mktemp -d /tmp/froyo-peers.XXXXXX)
mkdir -p "$OUT/logs" "$OUT/targets"
SSHD_PIDS=()
OTLP_PID=
NATS_PID=
PG_DATA=
WORKER_PIDS=()
stop_workers() {  # [tool round]: stop the workers by PID, record their peak RSS
    local pid hwm
    for pid in "${WORKER_PIDS[@]}"; do
        hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
        [ -z "${1:-}" ] || printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$pid" "${hwm:-?}" >>"$OUT/workers.tsv"
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${WORKER_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    WORKER_PIDS=()
}
cleanup() {
    local rc=$? pid left=()
    stop_workers
    if [ -n "$OTLP_PID" ]; then kill "$OTLP_PID" 2>/dev/null || true; wait "$OTLP_PID" 2>/dev/null || true; fi
    if [ -n "$NATS_PID" ]; then kill "$NATS_PID" 2>/dev/null || true; wait "$NATS_PID" 2>/dev/null || true; fi
    if [ -n "$PG_DATA" ]; then runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w stop >/dev/null 2>&1 || true; fi
    for pid in "${SSHD_PIDS[@]}"; do
        # Only our own sshd: started by this script with a config in $WORK.
        if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$WORK/"; then
            kill "$pid" 2>/dev/null || true
        fi
    done
    for pid in "${SSHD_PIDS[@]}"; do
        for _ in $(seq 50); do [ -d "/proc/$pid" ] && [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ] || break; sleep 0.1; done
        wait "$pid" 2>/dev/null || true
        [ -d "/proc/$pid" ] && left+=("$pid")
    done
    if [ ${#SSHD_PIDS[@]} -gt 0 ]; then
        if [ ${#left[@]} -eq 0 ]; then
            echo "stopped sshd PIDs ${SSHD_PIDS[*]}" >&2
        else
            echo "peers.sh: sshd PIDs still running: ${left[*]}" >&2
        fi
    fi
    rm -rf "$BENCH_ROOT"
    [ -z "${PG_ROOT:-}" ] || rm -rf "$PG_ROOT"
    if [ "${KEEP_WORK:-0}" = 1 ]; then echo "work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- NHOSTS sshd targets on 127.0.0.1, up to PER_SSHD ports per sshd ------------------
mkdir -p "$WORK/keys" /run/sshd
ssh-keygen -q -t ed25519 -N '' -C froyo-peers-bench -f "$WORK/keys/id_ed25519"
cp "$WORK/keys/id_ed25519.pub" "$WORK/keys/authorized_keys"
: >"$WORK/known_hosts"
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
HOSTS=()
HOST_SPECS=()
for g in $(seq $(( (NHOSTS + PER_SSHD - 1) / PER_SSHD ))); do
    first=$(( (g - 1) * PER_SSHD + 1 ))
    last=$(( g * PER_SSHD < NHOSTS ? g * PER_SSHD : NHOSTS ))
    name=sshd$g d=$WORK/sshd/sshd$g members=()
    mkdir -p "$d"
    ssh-keygen -q -t ed25519 -N '' -C "$name" -f "$d/ssh_host_ed25519_key"
    slog=$OUT/targets/$name-sshd.log flog=$OUT/targets/$name-sftp.log
    : >"$slog"; : >"$flog"
    listen=""
    for n in $(seq $first $last); do
        port=$((PORT_BASE + n))
        ! port_open "$port" || die "127.0.0.1:$port is already in use (set PORT_BASE)"
        listen+="ListenAddress 127.0.0.1:$port"$'\n'
        members+=("host$n")
    done
    # LogLevel VERBOSE logs every exec/subsystem session ("Starting session: ..."),
    # sftp-server -l DEBUG3 every SFTP request (both counted per run). (DEBUG1 would leak
    # debug lines into every command's stderr.) SetEnv SHLVL=1 stops bash from sourcing
    # root's ~/.bashrc for every command sshd runs (research/peers.md §3.5).
    cat >"$d/sshd_config" <<EOF
${listen}HostKey $d/ssh_host_ed25519_key
PidFile none
AuthorizedKeysFile $WORK/keys/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
LogLevel VERBOSE
SetEnv SHLVL=1
MaxSessions 50
MaxStartups 200:30:400
Subsystem sftp /usr/lib/openssh/sftp-server -e -l DEBUG3 2>>$flog
EOF
    /usr/sbin/sshd -t -f "$d/sshd_config" 2>"$d/check.log" || die "bad sshd config $d/sshd_config: $(cat "$d/check.log")"
    /usr/sbin/sshd -D -e -f "$d/sshd_config" </dev/null 2>>"$slog" &
    pid=$!
    SSHD_PIDS+=("$pid")
    for n in $(seq $first $last); do
        port=$((PORT_BASE + n)) up=0
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            if port_open "$port"; then up=1; break; fi
            sleep 0.1
        done
        [ $up = 1 ] || die "$name did not listen on port $port: $(tail -5 "$slog")"
        echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$d/ssh_host_ed25519_key.pub")" >>"$WORK/known_hosts"
    done
    HOSTS+=("${members[@]}")
    # Sessions and SFTP requests are counted per sshd (from its logs), round trips per
    # member host (from froyo's report); measure.py divides by the members.
    HOST_SPECS+=(--host "$name:$pid:$slog:$flog:$(IFS=,; echo "${members[*]}")")
done
echo "sshd targets: $NHOSTS hosts on 127.0.0.1:$((PORT_BASE + 1))-$((PORT_BASE + NHOSTS)), sshd PIDs ${SSHD_PIDS[*]}"
# Sanity: key login, strict host key, no rc-file tax.
ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$WORK/known_hosts" \
    -i "$WORK/keys/id_ed25519" -p $((PORT_BASE + 1)) root@127.0.0.1 true \
    || die "ssh to host1 failed: $(tail -5 "$OUT/targets/sshd1-sshd.log")"

# --- the OTLP/gRPC receiver of froyo-otlp ---------------------------------------------
if [[ " $TOOLS " == *" froyo-otlp "* ]]; then
    OTLP_PY=${FROYO_OTLP_PY:-/var/tmp/froyo-otlp}/bin/python
    "$OTLP_PY" -c 'import grpc, opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc' 2>/dev/null \
        || die "no OTLP receiver Python at $OTLP_PY (tests/run.sh installs it; or set FROYO_OTLP_PY)"
    mkfifo "$WORK/otlp.ready"
    "$OTLP_PY" "$REPO/tests/fixtures/otlp/receiver.py" "$OUT/spans.jsonl" >"$WORK/otlp.ready" &
    OTLP_PID=$!
    read -r ready port <"$WORK/otlp.ready" || true
    [ "${ready:-}" = READY ] || die "the OTLP receiver did not start"
    OTLP_ENDPOINT=http://127.0.0.1:$port
    echo "OTLP/gRPC receiver: $OTLP_ENDPOINT (PID $OTLP_PID), spans in $OUT/spans.jsonl"
fi

# --- PostgreSQL and NATS of the froyo-queueN tools ------------------------------------
if [[ " $TOOLS " == *" froyo-queue"* ]]; then
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    [ -x "$PG_BIN/initdb" ] || die "PostgreSQL is not installed (apt-get install postgresql)"
    NATS=$(command -v nats-server || echo /usr/sbin/nats-server)
    [ -x "$NATS" ] || die "nats-server is not installed (apt-get install nats-server)"
    # The postgres user cannot enter $WORK (0700, root's): a directory of its own.
    PG_ROOT=$(mktemp -d /tmp/froyo-peers-pg.XXXXXX)
    chown postgres "$PG_ROOT"
    PG_PORT=$((PORT_BASE + NHOSTS + 1)) NATS_PORT=$((PORT_BASE + NHOSTS + 2))
    runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_ROOT/data" -U froyo --auth=trust -E UTF8 \
        --locale=C >"$PG_ROOT/initdb.log" 2>&1 || die "initdb failed: $(tail -5 "$PG_ROOT/initdb.log")"
    PG_DATA=$PG_ROOT/data
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_ROOT/server.log" -w \
        -o "-p $PG_PORT -k $PG_ROOT -c listen_addresses=127.0.0.1 -c max_connections=500" start >/dev/null \
        || die "PostgreSQL did not start: $(tail -5 "$PG_ROOT/server.log")"
    PG_URL=postgres://froyo@127.0.0.1:$PG_PORT/postgres
    mkdir -p "$WORK/nats"
    "$NATS" -js -sd "$WORK/nats" -a 127.0.0.1 -p "$NATS_PORT" >"$OUT/nats.log" 2>&1 &
    NATS_PID=$!
    for _ in $(seq 100); do port_open "$NATS_PORT" && break; sleep 0.1; done
    port_open "$NATS_PORT" || die "nats-server did not start: $(tail -5 "$OUT/nats.log")"
    NATS_URL=nats://127.0.0.1:$NATS_PORT
    echo "cluster profile: PostgreSQL $PG_URL (data $PG_DATA), NATS $NATS_URL (PID $NATS_PID)"
fi

# --- workloads and inventories ----------------------------------------------------------
# Ansible: stock settings (forks 5, linear, ssh + ControlPersist) plus strict host keys and
# a ControlPath in $WORK so the masters can be closed after every run.
mkdir -p "$WORK/ansible/home" "$WORK/cp"
cp "$HERE/ansible/site.yml" "$WORK/ansible/"
{
    echo "[bench]"
    for n in $(seq $NHOSTS); do echo "host$n ansible_host=127.0.0.1 ansible_port=$((PORT_BASE + n))"; done
    echo "[bench:vars]"
    echo "ansible_user=root"
    echo "ansible_ssh_private_key_file=$WORK/keys/id_ed25519"
    echo "ansible_python_interpreter=/usr/bin/python3"
    echo "bench_root=$BENCH_ROOT"
} >"$WORK/ansible/hosts.ini"
cat >"$WORK/ansible/ansible.cfg" <<EOF
[defaults]
inventory = hosts.ini
forks = 5
interpreter_python = /usr/bin/python3
host_key_checking = True
nocolor = True

[ssh_connection]
ssh_args = -C -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=$WORK/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=10
control_path = $WORK/cp/%%h-%%p-%%r
EOF
# pyinfra: defaults (parallel = min(20 x CPUs, hosts)), paramiko with strict host keys.
mkdir -p "$WORK/pyinfra"
cp "$HERE/pyinfra/deploy.py" "$WORK/pyinfra/"
cat >"$WORK/pyinfra/inventory.py" <<EOF
_common = {
    "ssh_hostname": "127.0.0.1",
    "ssh_user": "root",
    "ssh_key": "$WORK/keys/id_ed25519",
    "ssh_known_hosts_file": "$WORK/known_hosts",
    "ssh_strict_host_key_checking": "yes",
    "bench_root": "$BENCH_ROOT",
}
bench = [(f"host{n}", dict(_common, ssh_port=$PORT_BASE + n)) for n in range(1, $NHOSTS + 1)]
EOF
# froyo: a project with the targets in inventory.toml and their host keys in
# .froyo/known_hosts (OpenSSH format, [host]:port), the client key as the project key.
mkdir -p "$WORK/froyo/.froyo/keys"
cp "$HERE/froyo/site.star" "$WORK/froyo/"
cp "$WORK/keys/id_ed25519" "$WORK/keys/id_ed25519.pub" "$WORK/froyo/.froyo/keys/"
cp "$WORK/known_hosts" "$WORK/froyo/.froyo/known_hosts"
printf '[project]\nname = "peers-bench"\n' >"$WORK/froyo/froyo.toml"
{
    printf '[defaults]\nuser = "root"\nvars = { bench_root = "%s" }\n' "$BENCH_ROOT"
    for n in $(seq $NHOSTS); do
        printf '\n[[targets]]\nname = "host%s"\naddress = "127.0.0.1:%s"\nlabels = { bench = "peers" }\n' "$n" $((PORT_BASE + n))
    done
} >"$WORK/froyo/inventory.toml"
mkdir -p "$OUT/workload"
cp "$WORK/ansible/hosts.ini" "$WORK/ansible/ansible.cfg" "$WORK/ansible/site.yml" \
   "$WORK/pyinfra/inventory.py" "$WORK/pyinfra/deploy.py" \
   "$WORK/froyo/inventory.toml" "$WORK/froyo/site.star" "$OUT/workload/"

# --- versions -----------------------------------------------------------------------------
{
    echo "date: $(date -u +%FT%TZ)"
    echo "host: $(uname -srm), $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "openssh: $(ssh -V 2>&1)"
    [ ! -x "$VENV/bin/python" ] || echo "venv python: $("$VENV/bin/python" --version 2>&1)"
    if [ -x "$VENV/bin/ansible-playbook" ]; then v=$("$VENV/bin/ansible-playbook" --version); echo "ansible: ${v%%$'\n'*}"; fi
    [ ! -x "$VENV/bin/pyinfra" ] || echo "pyinfra: $("$VENV/bin/pyinfra" --version 2>&1)"
    [ -z "${FROYO:-}" ] || echo "froyo: $FROYO ($("$FROYO" --version 2>&1))"
    echo "tools: $TOOLS; rounds: $RUNS"
} | tee "$OUT/versions.txt"

# --- runs ---------------------------------------------------------------------------------
close_masters='for s in '"$WORK"'/cp/*; do [ -S "$s" ] && ssh -o ControlPath="$s" -O exit bench; done; true'

reset_state() {  # $1 = tool, $2 = round: forget everything it remembers between runs
    case $1 in
        # A fresh project every time: nothing of froyo's survives but the SSH keys. The
        # built-in providers are embedded precompiled, so there is no compile cache to keep.
        froyo-queue*)
            # A fresh namespace of the shared state for every round, and N new workers.
            find "$WORK/froyo/.froyo" -mindepth 1 -maxdepth 1 ! -name keys ! -name known_hosts \
                -exec rm -rf {} +
            printf '[project]\nname = "peers-bench"\n\n[state]\nnamespace = "%s-r%s"\n' \
                "$1" "$2" >"$WORK/froyo/froyo.toml"
            local i
            for i in $(seq "${1#froyo-queue}"); do
                env -C "$WORK/froyo" NO_COLOR=1 FROYO_STATE_URL="$PG_URL" "$FROYO" worker \
                    --queue "$NATS_URL" --concurrency "$WORKER_CONCURRENCY" \
                    >"$OUT/logs/$1-$2-worker$i.log" 2>&1 &
                WORKER_PIDS+=("$!")
            done ;;
        froyo*) find "$WORK/froyo/.froyo" -mindepth 1 -maxdepth 1 ! -name keys ! -name known_hosts \
            -exec rm -rf {} +
            printf '[project]\nname = "peers-bench"\n' >"$WORK/froyo/froyo.toml" ;;
        ansible*) rm -rf "$WORK/ansible/home" && mkdir -p "$WORK/ansible/home" ;;
        pyinfra) ;;
    esac
}

run_one() {  # tool phase round
    local tool=$1 phase=$2 round=$3 cleanup="" cmd
    case $tool in
        froyo)
            cmd=(env -C "$WORK/froyo" NO_COLOR=1 "$FROYO" apply --yes site.star) ;;
        froyo-queue*)
            cmd=(env -C "$WORK/froyo" NO_COLOR=1 FROYO_STATE_URL="$PG_URL" "$FROYO" apply --yes site.star
                 --queue "$NATS_URL") ;;
        froyo-otlp)
            cmd=(env -C "$WORK/froyo" NO_COLOR=1 OTEL_TRACES_EXPORTER=otlp OTEL_EXPORTER_OTLP_ENDPOINT="$OTLP_ENDPOINT"
                 OTEL_SERVICE_NAME=froyo-bench "$FROYO" apply --yes site.star) ;;
        ansible|ansible-pipelining)
            local pipelining=False; [ "$tool" = ansible-pipelining ] && pipelining=True
            cmd=(env -C "$WORK/ansible" PATH="$VENV/bin:$PATH" ANSIBLE_CONFIG="$WORK/ansible/ansible.cfg"
                 ANSIBLE_HOME="$WORK/ansible/home" ANSIBLE_PIPELINING=$pipelining ANSIBLE_NOCOLOR=1
                 "$VENV/bin/ansible-playbook" site.yml)
            cleanup=$close_masters ;;
        pyinfra)
            cmd=(env -C "$WORK/pyinfra" PATH="$VENV/bin:$PATH" "$VENV/bin/pyinfra" -y inventory.py deploy.py) ;;
    esac
    "$PY" "$HERE/measure.py" --tool "$tool" --phase "$phase" --round "$round" \
        --out "$OUT/results.jsonl" --log "$OUT/logs/$tool-$phase-$round.log" \
        "${HOST_SPECS[@]}" --cleanup "$cleanup" --digest-root "$BENCH_ROOT" \
        --timeout "$RUN_TIMEOUT" -- "${cmd[@]}"
}

echo "results: $OUT"
for round in $(seq "$RUNS"); do
    for tool in $TOOLS; do
        # Wipe the targets' trees; BENCH_ROOT itself stays (0755) as their common parent.
        rm -rf "$BENCH_ROOT"/host*
        mkdir -p "$BENCH_ROOT" && chmod 755 "$BENCH_ROOT"
        reset_state "$tool" "$round"
        run_one "$tool" first "$round"
        run_one "$tool" noop "$round"
        [[ $tool != froyo-queue* ]] || stop_workers "$tool" "$round"
    done
done

"$PY" "$HERE/summarize.py" "$OUT/results.jsonl" | tee "$OUT/summary.md"
echo
echo "results: $OUT (summary.md, results.jsonl, logs/, targets/ sshd+sftp logs)"
! grep -q '"rc": [1-9]' "$OUT/results.jsonl" || die "some runs failed (see summary)"
