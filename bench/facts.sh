#!/usr/bin/env bash
# Benchmark (run by hand): facts on 10 loopback sshd targets, and 500 file.stat through one
# SSH runner session (batched, sequential, concurrent). Needs openssh-server; run as root
# (it starts sshd instances on loopback ports and stops them by PID).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench -p froyo --bench transport
