"""Without the engine's packages (Celery, Redis's client) the real command line says in one line what to
install, for every command that needs the engine; a deck without a broker never notices."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

INSTALL = "pip install 'opsdeck[engine]'"

# Loaded by Python at start-up from PYTHONPATH: the named top-level packages cannot be imported, as on
# a machine where `pip install opsdeck` left the engine's extra out.
BLOCKER = """
import sys

BLOCKED = {blocked!r}


class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, Blocker())
"""

DECK = """
name = "tiny"

[aws]
region = "us-east-1"
local = true

[services.web]
recipe = "packer/web.json"

[environments.dev]
"""


def _without(tmp_path: Path, *blocked: str) -> dict[str, str]:
    """An environment in which ``blocked`` cannot be imported (checked, so the test cannot pass vacuously)."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER.format(blocked=set(blocked)), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("OPSDECK_BROKER", "OPSDECK_DECK")}
    env |= {"PYTHONPATH": str(site), "OPSDECK_HOME": str(tmp_path / "home")}
    for name in blocked:
        probe = subprocess.run([sys.executable, "-c", f"import {name}"], env=env, capture_output=True, text=True)
        assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr, f"{name} still imports: {probe}"
    return env


def _deck(tmp_path: Path) -> Path:
    deck = tmp_path / "deck"
    (deck / "envs" / "dev").mkdir(parents=True)
    (deck / "packer").mkdir()
    (deck / "packer" / "web.json").write_text("{}", encoding="utf-8")
    (deck / "opsdeck.toml").write_text(DECK, encoding="utf-8")
    return deck


def _run(env: dict[str, str], deck: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opsdeck", "--deck", str(deck), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def _one_line_saying_what_to_install(result: subprocess.CompletedProcess[str], missing: str) -> None:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert INSTALL in lines[0] and f"{missing} is missing" in lines[0], lines[0]
    assert "internal error" not in lines[0] and "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("args", "broker"),
    [
        (("worker",), ""),
        (("engine", "status"), ""),
        (("engine", "status", "--json"), ""),
        (("refresh",), "redis://127.0.0.1:1/0"),  # a broker set: refresh goes to the workers
        (("promote", "dev", "dev", "--yes"), "redis://127.0.0.1:1/0"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else ("broker" if v else "no broker"),
)
def test_without_redis_a_command_that_needs_the_engine_says_what_to_install(
    tmp_path: Path, args: tuple[str, ...], broker: str
) -> None:
    env = _without(tmp_path, "redis", "celery", "kombu")
    if broker:
        env["OPSDECK_BROKER"] = broker
    _one_line_saying_what_to_install(_run(env, _deck(tmp_path), *args), "redis")


def test_a_worker_without_celery_says_so_before_it_touches_the_cloud(tmp_path: Path) -> None:
    # Redis's client is there, Celery is not: the worker still stops at once (no local cloud runs here).
    env = _without(tmp_path, "celery")
    _one_line_saying_what_to_install(_run(env, _deck(tmp_path), "worker"), "celery")


def test_without_a_broker_the_engines_packages_are_never_needed(tmp_path: Path) -> None:
    env = _without(tmp_path, "redis", "celery", "kombu")
    result = _run(env, _deck(tmp_path), "plan", "dev")
    # No local cloud runs here: the command gets as far as asking for it, not stopping at the engine.
    assert result.returncode == 1 and "local cloud is not running" in result.stderr, result.stderr
    assert INSTALL not in result.stderr


def test_the_readme_says_how_to_install_the_engine() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Beyond one machine: the job engine", 1)[1].split("\n## ", 1)[0]
    assert INSTALL in section
