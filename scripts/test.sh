#!/usr/bin/env bash
# The test run of `make test`: lint, types, then every test (install, unit, integration on the local cloud, TUI).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${OPSDECK_VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH"
# Tests keep their files under their own OPSDECK_HOME; the provider mirror comes along explicitly.
export OPSDECK_TF_PLUGIN_MIRROR="${OPSDECK_TF_PLUGIN_MIRROR:-$("$VENV/bin/opsdeck" config get terraform.plugin_mirror)}"
export OPSDECK_CHECKOV="${OPSDECK_CHECKOV:-$("$VENV/bin/opsdeck" config get checkov.binary)}"
"$VENV/bin/ruff" check opsdeck tests bench
"$VENV/bin/ruff" format --check --quiet opsdeck tests bench
"$VENV/bin/mypy"  # strict, on the whole package and the fakes (pyproject.toml [tool.mypy])
"$VENV/bin/lint-imports" --no-cache >/dev/null || "$VENV/bin/lint-imports" --no-cache  # the layers ([tool.importlinter]); the report when broken
exec "$VENV/bin/python" -m pytest "$@"
