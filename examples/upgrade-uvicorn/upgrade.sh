#!/bin/sh
# The upgrade diff, end to end: installs two pinned uvicorn versions (pip
# --target, one folder each, nothing system-wide), runs upgrade.toml
# against each with --json, and compares the two reports with `hangup
# diff`, which prints every observation that changed and fails on any
# that accepted.txt does not list.
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
UVICORN_UNDER_TEST=$out/$new "$hangup" run "$here/upgrade.toml" --json "$out/new.json"
echo "hangup diff: uvicorn $base -> $new"
# This example compares behaviour: a second of slack keeps a loaded
# machine's scheduling out of the calls' durations it compares.
export HANGUP_TOLERANCE_FLOOR=${HANGUP_TOLERANCE_FLOOR:-1s}
if [ "$base $new" != "0.27.1 0.28.0" ]; then
  exec "$hangup" diff "$out/base.json" "$out/new.json"
fi
# The example's pair: the change must be found (a diff that finds nothing
# would pass with any accept file), and then it is accepted.
if "$hangup" diff "$out/base.json" "$out/new.json"; then
  echo "upgrade.sh: expected hangup diff to find what changed in uvicorn $new, found nothing" >&2
  exit 1
fi
echo "with the differences accepted.txt lists:"
"$hangup" diff "$out/base.json" "$out/new.json" --accept "$here/accepted.txt"
