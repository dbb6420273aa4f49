#!/usr/bin/env bash
# The floor of tracing with seccomp and ptrace on this machine: an echo
# loop over loopback with its server untraced (0), stopped at each read
# and write's entry only (1), and at entry and exit (2), which is what a
# tracer needs to learn a call's result. The tracer does nothing else, so
# mode 2 over mode 0 is the least any ptrace tracer of results can cost.
# Usage: bash bench/ptrace-floor/run.sh [ROUND_TRIPS]   (needs gcc)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
n=${1:-20000}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
gcc -O2 -o "$out/floor" "$here/floor.c"
for pin in "" "taskset -c 0"; do
    echo "${pin:-unpinned}:"
    for mode in 0 1 2; do $pin "$out/floor" "$mode" "$n"; done
done
