#!/usr/bin/env bash
# Does hangup's scripted peer fail a timing-sensitive case more often than a
# plain program making the same calls, on a loaded machine?
#
#   bash bench/load/compare.sh [N]        (default N=100; run as root)
#
# Scenario (bench/load/stream_5mb.toml and bench/load/stream_pair.py): a
# server streams 80 x 64 KiB (5,242,880 bytes) with 5 ms before each chunk;
# the client reads with a 25 ms SO_RCVTIMEO per read. A run fails when a read
# times out (EAGAIN) before every byte arrived.
#
# Load while measuring: `stress-ng --cpu 2 --timeout 0` plus a loop of
# release builds of hangup into /tmp/hangup-load-build (removed after each).
# Each round runs hangup once and the Python baseline once (the order
# alternates between rounds). Logs go to $LOG_DIR (default: a new /tmp dir).
set -euo pipefail

N="${1:-100}"
[[ "$N" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [N]" >&2; exit 2; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
CMDLINE="bash bench/load/compare.sh $N"
LOG_DIR="${LOG_DIR:-$(mktemp -d /tmp/hangup-load-compare.XXXXXX)}"
mkdir -p "$LOG_DIR"
LOAD_BUILD_DIR=/tmp/hangup-load-build
SUITE=bench/load/stream_5mb.toml
PAIR=bench/load/stream_pair.py
# The interpreter itself, not a pyenv shim, so each run starts the same way.
PY="$(python3 -c 'import sys; print(sys.executable)')"

LOADER_PIDS=()
cleanup() {
  local pid
  trap - EXIT INT TERM HUP
  # Each loader is a session/process-group leader (setsid): end the group.
  for pid in "${LOADER_PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  sleep 1
  for pid in "${LOADER_PIDS[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  for pid in "${LOADER_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  LOADER_PIDS=()
  rm -rf "$LOAD_BUILD_DIR"
}
trap cleanup EXIT
trap 'echo "interrupted; stopping loaders" >&2; cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap 'cleanup; exit 129' HUP

echo "building hangup (debug) ..."
cargo build -q -p hangup
HANGUP="$ROOT/target/debug/hangup"
"$HANGUP" check "$SUITE" >/dev/null

echo "starting load: stress-ng --cpu 2 --timeout 0; cargo build --release loop into $LOAD_BUILD_DIR"
rm -rf "$LOAD_BUILD_DIR"
# setsid without --fork: run from a non-interactive script, the child is not a
# group leader, so setsid execs in place and $! leads the new group.
setsid stress-ng --cpu 2 --timeout 0 >"$LOG_DIR/stress-ng.log" 2>&1 &
LOADER_PIDS+=("$!")
setsid bash -c '
  while :; do
    CARGO_NET_OFFLINE=true cargo build -q --release -p hangup --target-dir "$1" || sleep 1
    rm -rf "$1"
  done' load-build "$LOAD_BUILD_DIR" >"$LOG_DIR/cargo-loop.log" 2>&1 &
LOADER_PIDS+=("$!")
sleep 5   # let both loaders get going

hangup_fail=0 hangup_err=0 py_fail=0 py_err=0
first_hangup_fail="" first_hangup_err="" first_py_err=""
loadavg_mid=""
MID=$(( (N + 1) / 2 ))

run_hangup() {
  local i=$1 out="$LOG_DIR/hangup-$1.log" rc=0
  "$HANGUP" run "$SUITE" >"$out" 2>&1 || rc=$?
  if (( rc == 1 )); then
    hangup_fail=$((hangup_fail + 1)); [[ -n "$first_hangup_fail" ]] || first_hangup_fail="$out"
    echo "  round $i: hangup FAILED (log $out)"
  elif (( rc != 0 )); then
    hangup_err=$((hangup_err + 1)); [[ -n "$first_hangup_err" ]] || first_hangup_err="$out"
    echo "  round $i: hangup ERROR rc=$rc (log $out)"
  else
    rm -f "$out"
  fi
}

run_python() {
  local i=$1 out="$LOG_DIR/python-$1.log" rc=0
  unshare -n sh -c 'ip link set lo up && exec "$0" "$1"' "$PY" "$PAIR" >"$out" 2>&1 || rc=$?
  if (( rc == 1 )); then
    py_fail=$((py_fail + 1))
    echo "  round $i: python FAILED: $(head -n1 "$out")"
  elif (( rc != 0 )); then
    py_err=$((py_err + 1)); [[ -n "$first_py_err" ]] || first_py_err="$out"
    echo "  round $i: python ERROR rc=$rc (log $out)"
  else
    rm -f "$out"
  fi
}

echo "running $N rounds (logs: $LOG_DIR)"
for (( i = 1; i <= N; i++ )); do
  if (( i % 2 )); then run_hangup "$i"; run_python "$i"
  else run_python "$i"; run_hangup "$i"; fi
  if (( i == MID )); then loadavg_mid="$(cat /proc/loadavg)"; fi
  if (( i % 10 == 0 )); then
    echo "  ... $i/$N rounds: hangup $hangup_fail failed, python $py_fail failed; loadavg $(cat /proc/loadavg)"
  fi
done

cleanup

echo
echo "hangup: $hangup_fail failed of $N"
echo "python: $py_fail failed of $N"
echo "loadavg (round $MID of $N): $loadavg_mid"
echo "command: $CMDLINE"
echo "errors (not timing): hangup $hangup_err, python $py_err; logs: $LOG_DIR"
[[ -z "$first_hangup_fail" ]] || echo "first hangup failure: $first_hangup_fail"
[[ -z "$first_hangup_err" ]] || echo "first hangup error: $first_hangup_err"
[[ -z "$first_py_err" ]] || echo "first python error: $first_py_err"
