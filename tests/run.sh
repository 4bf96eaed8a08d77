#!/usr/bin/env bash
# Runs every test of the project on a fresh machine of the supported kind (Debian bookworm
# with rustup and Go): first installs what the tests drive for real, then the tests.
# This is the README's test command; `.ci/run` calls it verbatim.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$HOME/.cargo/bin:$PATH:/usr/sbin:/sbin"

command -v go >/dev/null || { echo "error: Go >= 1.24 is required (cue-rs builds libcue from Go source)" >&2; exit 1; }
command -v cargo >/dev/null || { echo "error: Rust is required: install rustup (https://rustup.rs)" >&2; exit 1; }

# What the tests start or call for real: OpenSSH servers on loopback and sudo (transport,
# `become`, onboarding); nftables and iproute2 (firewall tests in a network namespace);
# dpkg-dev, curl, wget, zip and unzip (package, download and archive tests); dpkg's
# start-stop-daemon and update-rc.d (sysvinit services); tmux, the terminal the REPL tests
# type and paste into; neovim, the editor client of the language server tests; python3, the
# components the edge agent tests supervise; minisign, which signs what they verify; bash, zsh
# and fish, which load `froyo completions` scripts; man-db, which renders `froyo man` pages;
# graphviz, whose `dot` draws `froyo graph --format svg|png`; PostgreSQL (the cluster
# profile's state: tests run initdb + pg_ctl in a temporary directory, no service is
# started) and nats-server (its work queue).
need=()
for tool in /usr/sbin/sshd:openssh-server ssh-keygen:openssh-client sudo:sudo nft:nftables \
    ip:iproute2 dpkg-scanpackages:dpkg-dev curl:curl wget:wget zip:zip unzip:unzip \
    start-stop-daemon:dpkg update-rc.d:init-system-helpers tmux:tmux nvim:neovim python3:python3 \
    minisign:minisign bash:bash zsh:zsh fish:fish man:man-db dot:graphviz \
    /usr/lib/postgresql/15/bin/initdb:postgresql nats-server:nats-server; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool#*:}")
done
# Observability: promtool (Debian's prometheus) and a Pushgateway check the metrics;
# python3-venv makes the OTLP/gRPC receiver's virtualenv (below).
for tool in promtool:prometheus prometheus-pushgateway:prometheus-pushgateway python3:python3; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool#*:}")
done
python3 -c 'import ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
if ((${#need[@]})); then
    sudo=()
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || { echo "error: installing ${need[*]} needs root" >&2; exit 1; }
        sudo=(sudo)
    fi
    echo "installing the test tools: ${need[*]}" >&2
    # No service may start on install (openssh-server would listen on :22).
    policy=/usr/sbin/policy-rc.d
    made_policy=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
        "${sudo[@]}" chmod +x "$policy"
        made_policy=1
    fi
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
    [ -z "$made_policy" ] || "${sudo[@]}" rm -f "$policy"
fi

# Ansible itself, for the differential tests of `froyo import ansible` (tests/it/import_diff.rs):
# the `ansible` package from PyPI (ansible-core plus the collections real roles use, such as
# ansible.posix for authorized_key), in its own virtualenv.
FROYO_ANSIBLE="${FROYO_ANSIBLE:-/var/tmp/froyo-ansible}"
if [ ! -x "$FROYO_ANSIBLE/bin/ansible-playbook" ]; then
    echo "installing ansible 12.3.0 from PyPI into $FROYO_ANSIBLE" >&2
    python3 -m venv "$FROYO_ANSIBLE"
    "$FROYO_ANSIBLE/bin/pip" install -q "ansible==12.3.0"
fi
export FROYO_ANSIBLE

# The real `cue` command, the same version froyo links through libcue, for the test that
# `cue vet` and froyo agree on the same files (tests/it/cue.rs).
FROYO_CUE="${FROYO_CUE:-/var/tmp/froyo-cue}"
if [ ! -x "$FROYO_CUE/cue" ]; then
    echo "installing cue v0.15.3 from the Go module proxy into $FROYO_CUE" >&2
    GOBIN="$FROYO_CUE" go install cuelang.org/go/cmd/cue@v0.15.3
fi
export FROYO_CUE

# mdbook, which builds the user guide (docs/book) in tests/it/book.rs: a pinned version
# from crates.io, built once into $FROYO_MDBOOK (without its server and file watcher).
FROYO_MDBOOK="${FROYO_MDBOOK:-/var/tmp/froyo-mdbook}"
if [ ! -x "$FROYO_MDBOOK/bin/mdbook" ] || [ "$("$FROYO_MDBOOK/bin/mdbook" --version)" != "mdbook v0.5.4" ]; then
    echo "installing mdbook 0.5.4 from crates.io into $FROYO_MDBOOK" >&2
    cargo install mdbook --locked --version 0.5.4 --no-default-features --features search \
        --root "$FROYO_MDBOOK" --quiet
fi
export FROYO_MDBOOK

# The real OTLP/gRPC trace receiver of the observability tests (tests/fixtures/otlp/receiver.py):
# grpcio and the official OpenTelemetry protobuf stubs from PyPI, in their own virtualenv.
FROYO_OTLP_PY="${FROYO_OTLP_PY:-/var/tmp/froyo-otlp}"
if ! "$FROYO_OTLP_PY/bin/python" -c 'import grpc, opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc' 2>/dev/null; then
    echo "installing grpcio 1.85.1 and opentelemetry-proto 1.45.2 from PyPI into $FROYO_OTLP_PY" >&2
    python3 -m venv "$FROYO_OTLP_PY"
    "$FROYO_OTLP_PY/bin/pip" install -q "grpcio==1.85.1" "opentelemetry-proto==1.45.2"
fi
export FROYO_OTLP_PY

# The extra rustup targets are added by the build itself (toolchain/build.rs).
cargo test --workspace
cargo test --workspace --manifest-path providers/Cargo.toml
