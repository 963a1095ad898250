#!/usr/bin/env bash
# Set up everything opsdeck needs on a fresh machine: a venv with opsdeck and its test tools, Packer,
# and (where one lies on this machine) a Terraform provider mirror for offline `terraform init`.
# Idempotent and quiet when there is nothing to do. Used by `make demo` and `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${OPSDECK_VENV:-.venv}
PY=${PYTHON:-python3}

say() { printf '%s\n' "bootstrap: $*" >&2; }

# 1. Python venv with opsdeck (editable) and the test tools.
stamp="$VENV/.opsdeck-installed"
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  "$PY" -m venv "$VENV"
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  say "installing opsdeck and its dependencies into $VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
  "$VENV/bin/python" -m pip install --quiet -e '.[test,bench,engine]'
  touch "$stamp"
fi

# Byte-compile opsdeck's own modules: this machine kind sets PYTHONDONTWRITEBYTECODE, and the
# editable install would otherwise compile every module at every start (the deck's first frame).
"$VENV/bin/python" -m compileall -q opsdeck >/dev/null

# 2. Terraform: on PATH on this machine kind; opsdeck cannot install it.
if ! command -v terraform >/dev/null 2>&1; then
  say "terraform is not on PATH: install Terraform >= 1.5 (https://developer.hashicorp.com/terraform/install)"
  exit 1
fi

# 3. Packer 1.6.6 from Debian's packages.
if ! command -v packer >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "installing packer with apt-get"
    (apt-get install -y -q packer >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q packer >/dev/null 2>&1; }) \
      || { say "apt-get install packer failed"; exit 1; }
  else
    say "packer is not on PATH: install it (apt-get install packer, or https://developer.hashicorp.com/packer/install)"
    exit 1
  fi
fi

# 3b. Redis from Debian's packages: the engine's broker (opt-in; its tests start their own redis-server).
if ! command -v redis-server >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "installing redis-server with apt-get"
    (apt-get install -y -q redis-server >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q redis-server >/dev/null 2>&1; }) \
      || { say "apt-get install redis-server failed"; exit 1; }
  else
    say "redis-server is not on PATH: install it (apt-get install redis-server) for the engine's tests"
    exit 1
  fi
fi

# 4. A provider mirror, when this machine has one (no internet here); recorded in the user's config
#    so plain `opsdeck` runs use it too. Elsewhere Terraform downloads providers normally.
if [ -z "$("$VENV/bin/opsdeck" config get terraform.plugin_mirror 2>/dev/null)" ]; then
  mirror=""
  for dir in /opt/tf-plugins "$HOME/.terraform.d/plugins" /usr/share/terraform/plugins /usr/local/share/terraform/plugins; do
    if [ -d "$dir/registry.terraform.io" ]; then mirror=$dir; break; fi
  done
  if [ -z "$mirror" ]; then
    found=$(find / -maxdepth 8 -name 'terraform-provider-aws_*' -path '*/registry.terraform.io/*' \
              -not -path '/proc/*' -not -path '*/.terraform/*' 2>/dev/null | head -n 1 || true)
    [ -n "$found" ] && mirror=${found%%/registry.terraform.io/*}
  fi
  if [ -n "$mirror" ]; then
    say "using the Terraform provider mirror at $mirror"
    "$VENV/bin/opsdeck" config set terraform.plugin_mirror "$mirror"
  fi
fi

# 5. Checkov, the policy gate's engine, in its own venv: it pins its own boto3 and brings numpy,
#    aiohttp and networkx, so it is never installed beside opsdeck. Recorded as checkov.binary.
CHECKOV_VERSION=3.3.30
CHECKOV_VENV=${OPSDECK_CHECKOV_VENV:-$PWD/.tools/checkov}
configured=$("$VENV/bin/opsdeck" config get checkov.binary 2>/dev/null || true)
if [ -z "${OPSDECK_CHECKOV:-}" ] && { [ -z "$configured" ] || [ ! -x "$configured" ]; }; then
  if [ ! -x "$CHECKOV_VENV/bin/checkov" ]; then
    say "installing Checkov $CHECKOV_VERSION into $CHECKOV_VENV (the policy gate)"
    "$PY" -m venv "$CHECKOV_VENV"
    "$CHECKOV_VENV/bin/python" -m pip install --quiet "checkov==$CHECKOV_VERSION" >/dev/null 2>&1 \
      || { say "pip install checkov failed: the policy gate refuses changes until Checkov is installed"; exit 1; }
  fi
  "$VENV/bin/opsdeck" config set checkov.binary "$CHECKOV_VENV/bin/checkov"
fi
