#!/usr/bin/env bash
# What writing the HTML page adds to a run of many tiny cases (issue 19:
# under 5 %). Generates N passing cases (a listen, a connect, a send and
# a close each; the client waits for the server's `listening` mark) into
# a temp folder, then runs them K times with and K times without
# `--html`, interleaved (the order alternates each round), and prints
# each variant's median wall time, their ratio and the page's size.
#
#   bash bench/html-cost/run.sh [N] [K]
#
# N is 1000 and K 9 unless given. HANGUP names the binary
# (target/release/hangup unless set), JOBS its `-j` (the default unless
# set). Each `--html` run also prints the page writer's own time
# (HANGUP_HTML_TIMING=1: the time spent building and writing the page,
# on stderr), whose median is printed too: it is less sensitive to other
# load on the machine than the runs' wall times. Exits 1 when a run fails
# a case. Run it by hand, as root, on a machine otherwise idle; CI runs
# none of it.
set -euo pipefail
cd "$(dirname "$0")/../.."

n=${1:-1000}
k=${2:-9}
hangup=${HANGUP:-target/release/hangup}
jobs=()
if [ -n "${JOBS:-}" ]; then jobs=(-j "$JOBS"); fi
out=$(mktemp -d /tmp/hangup-html-cost.XXXXXX)
trap 'rm -rf "$out"' EXIT
suite=$out/tiny.toml

{
  for i in $(seq 1 "$n"); do
    cat <<CASE
[[case]]
name = "tiny_$i"
server = [{ listen = 8080 }, { mark = "listening" }, "accept", { wait = "client_closed" }]
client = [{ wait = "listening" }, { connect = 8080 }, { send = 100 }, "close", { mark = "client_closed" }]

CASE
  done
} >"$suite"

# Milliseconds since the epoch.
now() { date +%s%3N; }
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

without=()
with=()
writer=()
one() {
  local html=$1 start took status=0
  start=$(now)
  if [ "$html" = 1 ]; then
    HANGUP_HTML_TIMING=1 "$hangup" run "$suite" "${jobs[@]}" --html "$out/page.html" \
      >"$out/run.log" 2>"$out/run.err" || status=$?
  else
    "$hangup" run "$suite" "${jobs[@]}" >"$out/run.log" 2>"$out/run.err" || status=$?
  fi
  took=$(($(now) - start))
  if [ "$status" -ne 0 ]; then
    echo "a run exited $status (html=$html):" >&2
    tail -n 20 "$out/run.log" "$out/run.err" >&2
    exit 1
  fi
  if [ "$html" = 1 ]; then
    with+=("$took")
    local w
    w=$(sed -n 's/^html page: .* \([0-9.]*\) ms in all.*/\1/p' "$out/run.err")
    if [ -n "$w" ]; then writer+=("$w"); fi
    echo "round $round with --html: $took ms (writer: ${w:-?} ms); $(tail -n 1 "$out/run.log")"
  else
    without+=("$took")
    echo "round $round without:     $took ms; $(tail -n 1 "$out/run.log")"
  fi
}

for round in $(seq 1 "$k"); do
  if [ $((round % 2)) = 1 ]; then one 0; one 1; else one 1; one 0; fi
done

m0=$(printf '%s\n' "${without[@]}" | median)
m1=$(printf '%s\n' "${with[@]}" | median)
size=$(stat -c %s "$out/page.html")
echo "$n cases, $k runs each, $("$hangup" --version 2>/dev/null || echo hangup) ($hangup), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "median without --html: $m0 ms"
echo "median with --html:    $m1 ms"
awk -v a="$m0" -v b="$m1" 'BEGIN { printf "ratio: %.3f (%+.1f %%)\n", b / a, (b / a - 1) * 100 }'
if [ ${#writer[@]} -gt 0 ]; then
  w=$(printf '%s\n' "${writer[@]}" | median)
  echo "median page writer (in the process): $w ms"
  awk -v w="$w" -v a="$m0" 'BEGIN { printf "writer / run without: %.1f %%\n", w / a * 100 }'
fi
echo "page: $size bytes ($((size / n)) a case)"
