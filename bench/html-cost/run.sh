#!/usr/bin/env bash
# What writing the HTML page adds to a run of many tiny cases (issue 19:
# under 5 %). Generates N passing cases (a listen, a connect, a send and
# a close each; the client waits for the server's `listening` mark) into
# a temp folder, then runs them K times with and K times without
# `--html`, interleaved (the order rotates each round), and prints each
# variant's median wall time, their ratio and the page's size.
#
#   bash bench/html-cost/run.sh [N] [K]
#
# N is 1000 and K 9 unless given. HANGUP names the binary
# (target/release/hangup unless set), or several, space-separated (say
# an older build and a newer one): all their runs are interleaved, and
# each binary gets its own lines. JOBS sets `-j` (the default unless
# set). Each `--html` run also reports the page writer's own time
# (HANGUP_HTML_TIMING=1: building and writing the page, on stderr; a
# build before b45739c does not say it), whose median is printed too: it
# is less sensitive to other load on the machine than the runs' wall
# times. Exits 1 when a run fails a case. Run it by hand, as root, on a
# machine otherwise idle; CI runs none of it.
set -euo pipefail
cd "$(dirname "$0")/../.."

n=${1:-1000}
k=${2:-9}
read -r -a binaries <<<"${HANGUP:-target/release/hangup}"
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

# One run of binary number $1, with the page when $2 is 1; its time
# (and the writer's) appended to $out/times-$1-$2.
one() {
  local b=$1 html=$2 start took status=0 w=""
  start=$(now)
  if [ "$html" = 1 ]; then
    HANGUP_HTML_TIMING=1 "${binaries[$b]}" run "$suite" "${jobs[@]}" --html "$out/page-$b.html" \
      >"$out/run.log" 2>"$out/run.err" || status=$?
  else
    "${binaries[$b]}" run "$suite" "${jobs[@]}" >"$out/run.log" 2>"$out/run.err" || status=$?
  fi
  took=$(($(now) - start))
  if [ "$status" -ne 0 ]; then
    echo "a run of ${binaries[$b]} exited $status (html=$html):" >&2
    tail -n 20 "$out/run.log" "$out/run.err" >&2
    exit 1
  fi
  echo "$took" >>"$out/times-$b-$html"
  if [ "$html" = 1 ]; then
    w=$(sed -n 's/^html page: .* \([0-9.]*\) ms in all.*/\1/p' "$out/run.err")
    if [ -n "$w" ]; then echo "$w" >>"$out/writer-$b"; fi
    echo "round $round, ${binaries[$b]} with --html: $took ms (writer: ${w:-?} ms); $(tail -n 1 "$out/run.log")"
  else
    echo "round $round, ${binaries[$b]} without:     $took ms; $(tail -n 1 "$out/run.log")"
  fi
}

variants=()
for b in "${!binaries[@]}"; do variants+=("$b 0" "$b 1"); done
for round in $(seq 1 "$k"); do
  for j in "${!variants[@]}"; do
    # shellcheck disable=SC2086 # "binary html", split on purpose
    one ${variants[$(((j + round) % ${#variants[@]}))]}
  done
done

echo "$n cases, $k runs each, load $(cut -d' ' -f1-3 /proc/loadavg)"
for b in "${!binaries[@]}"; do
  m0=$(median <"$out/times-$b-0")
  m1=$(median <"$out/times-$b-1")
  size=$(stat -c %s "$out/page-$b.html")
  echo "${binaries[$b]}:"
  echo "  median without --html: $m0 ms"
  echo "  median with --html:    $m1 ms"
  awk -v a="$m0" -v b="$m1" 'BEGIN { printf "  ratio: %.3f (%+.1f %%)\n", b / a, (b / a - 1) * 100 }'
  if [ -s "$out/writer-$b" ]; then
    w=$(median <"$out/writer-$b")
    echo "  median page writer (in the process): $w ms"
    awk -v w="$w" -v a="$m0" 'BEGIN { printf "  writer / run without: %.1f %%\n", w / a * 100 }'
  fi
  echo "  page: $size bytes ($((size / n)) a case)"
done
