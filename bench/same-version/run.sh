#!/usr/bin/env bash
# A version compared with itself, as `hangup diff` compares an upgrade:
# every bundled suite run 2N+1 times against the same programs, under a
# CPU hog (`stress-ng --cpu 4` on the machine's cores), and N comparisons
# of three independent runs each (the base, the base again as its noise
# leg, the new run): run 2i as the base, run 2i+1 as `--base-again`, run
# 2i+2 as the new. Nothing changed, so every comparison must find 0
# differences; the noise set aside is counted apart.
#
#   bash bench/same-version/run.sh [N] [SUITE...]
#
# N is 20 unless given; the suites are suites/, fixtures/suites/ and
# examples/ unless given. HANGUP names the binary (target/debug/hangup
# unless set; the fixtures are found beside it), JOBS its `-j` (8 unless
# set), HOG=0 runs without stress-ng. Prints one line per comparison and
# a last line: `<k> of <N> comparisons found 0 differences`. Exits 1 when
# a comparison found one, or a run failed a case. Run it by hand (it
# takes about 2N+1 runs of the suites); CI runs none of it.
set -euo pipefail
cd "$(dirname "$0")/../.."

n=${1:-20}
shift || true
suites=("$@")
if [ ${#suites[@]} -eq 0 ]; then
  suites=(suites/ fixtures/suites/ examples/)
fi
hangup=${HANGUP:-target/debug/hangup}
jobs=${JOBS:-8}
out=$(mktemp -d /tmp/hangup-same-version.XXXXXX)
echo "reports and logs in $out"

hog=""
if [ "${HOG:-1}" != 0 ]; then
  stress-ng --cpu 4 --timeout 6h >/dev/null 2>&1 &
  hog=$!
fi
stop_hog() { if [ -n "$hog" ]; then kill "$hog" 2>/dev/null || true; wait "$hog" 2>/dev/null || true; fi; }
trap stop_hog EXIT

failed_runs=0
for i in $(seq 0 $((2 * n))); do
  start=$(date +%s)
  status=0
  "$hangup" run "${suites[@]}" -j "$jobs" --json "$out/run-$i.json" >"$out/run-$i.log" 2>&1 || status=$?
  echo "run $i: exit $status, $(($(date +%s) - start)) s, $(tail -n 1 "$out/run-$i.log")"
  if [ "$status" -ne 0 ]; then
    failed_runs=$((failed_runs + 1))
  fi
done

clean=0
for i in $(seq 0 $((n - 1))); do
  base=$((2 * i))
  status=0
  "$hangup" diff "$out/run-$base.json" "$out/run-$((base + 2)).json" \
    --base-again "$out/run-$((base + 1)).json" >"$out/diff-$i.txt" 2>&1 || status=$?
  echo "comparison $i (runs $base, $((base + 1)), $((base + 2))): exit $status, $(tail -n 1 "$out/diff-$i.txt")"
  if [ "$status" -eq 0 ]; then
    clean=$((clean + 1))
  fi
done
echo "$failed_runs of $((2 * n + 1)) runs failed a case"
echo "$clean of $n comparisons found 0 differences"
[ "$clean" -eq "$n" ] && [ "$failed_runs" -eq 0 ]
