#!/bin/sh
# The upgrade diff, end to end: installs two pinned uvicorn versions (pip
# --target, one folder each, nothing system-wide), runs upgrade.toml
# against each with --json (the base twice), and compares the reports
# with `hangup diff`, which prints every observation that changed, sets
# aside as noise what differs between the base's own two runs too, and
# fails on any difference that accepted.txt does not list. Durations are
# judged against the suite's tolerance, widened by what each run measured
# of the machine's load.
#
#   examples/upgrade-uvicorn/upgrade.sh [BASE NEW]   (default 0.27.1 0.28.0)
#
# HANGUP names the hangup binary (target/debug/hangup by default); OUT the
# folder for the installs and reports (target/upgrade-uvicorn).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
hangup=${HANGUP:-$root/target/debug/hangup}
out=${OUT:-$root/target/upgrade-uvicorn}
base=${1:-0.27.1}
new=${2:-0.28.0}

for version in "$base" "$new"; do
  if [ ! -d "$out/$version/uvicorn" ]; then
    # Only uvicorn itself: its dependencies (h11, click) come from the
    # system's, which ../python-uvicorn/requirements.txt installs.
    python3 -m pip install -q --disable-pip-version-check --no-deps \
      --target "$out/$version" "uvicorn==$version"
  fi
done

UVICORN_UNDER_TEST=$out/$base "$hangup" run "$here/upgrade.toml" --json "$out/base.json"
UVICORN_UNDER_TEST=$out/$base "$hangup" run "$here/upgrade.toml" --json "$out/base-again.json"
UVICORN_UNDER_TEST=$out/$new "$hangup" run "$here/upgrade.toml" --json "$out/new.json"
echo "hangup diff: uvicorn $base -> $new"
compared() {
  "$hangup" diff "$out/base.json" "$out/new.json" --base-again "$out/base-again.json" "$@"
}
if [ "$base $new" != "0.27.1 0.28.0" ]; then
  compared
  exit
fi
# The example's pair: the change must be found (a diff that finds nothing
# would pass with any accept file), and then it is accepted.
if compared; then
  echo "upgrade.sh: expected hangup diff to find what changed in uvicorn $new, found nothing" >&2
  exit 1
fi
echo "with the differences accepted.txt lists:"
compared --accept "$here/accepted.txt"
