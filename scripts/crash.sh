#!/usr/bin/env bash
# `make crash`: the full crash matrix on a demo deck of its own (tests/crash/matrix.py; about an hour or
# more on 2 cores). Prints the table of operation × phase -> recovered, and writes it to crash-matrix.md
# (and each cell's findings to crash-matrix.json). Extra arguments go to pytest (-k to run some cells).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${OPSDECK_VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH"
export OPSDECK_TF_PLUGIN_MIRROR="${OPSDECK_TF_PLUGIN_MIRROR:-$("$VENV/bin/opsdeck" config get terraform.plugin_mirror)}"
export OPSDECK_CHECKOV="${OPSDECK_CHECKOV:-$("$VENV/bin/opsdeck" config get checkov.binary)}"
export OPSDECK_CRASH_TABLE="${OPSDECK_CRASH_TABLE:-$PWD/crash-matrix.md}"
status=0
"$VENV/bin/python" -m pytest tests/crash/matrix.py -p no:cacheprovider -q -rN -o timeout=1200 "$@" || status=$?
if [ -f "$OPSDECK_CRASH_TABLE" ]; then
  cat "$OPSDECK_CRASH_TABLE"
fi
exit "$status"
