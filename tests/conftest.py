"""Test-wide isolation: each run has its own OPSDECK_HOME, no real AWS settings, and a file keyring.

Every process the tests start inherits this environment, and opsdeck hands the local cloud's endpoint
to each tool explicitly, so nothing can reach a real AWS host.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from opsdeck import wiring
from tests.helpers import ROOT, opsdeck

SESSION_HOME = Path(tempfile.mkdtemp(prefix="opsdeck-tests-"))
wiring.install()  # decks the tests open without fakes get the real tools, as the command line's do

for key in [k for k in os.environ if k.startswith("AWS_")]:
    del os.environ[key]
os.environ.update(
    {
        "OPSDECK_HOME": str(SESSION_HOME),
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        # A real keyring backend (a file) that lives inside this run's home.
        "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
        "XDG_DATA_HOME": str(SESSION_HOME / "xdg-data"),
        "CHECKPOINT_DISABLE": "1",
        "GIT_CONFIG_NOSYSTEM": "1",
        # The local cloud's instance refreshes: a batch warms up for 0.3 s, and one whose instances stay
        # unhealthy fails after 1.5 s (the local cloud reads both when a refresh starts).
        "OPSDECK_LOCALCLOUD_REFRESH_SECONDS": "0.3",
        "OPSDECK_LOCALCLOUD_REFRESH_HEALTH_SECONDS": "1.5",
    }
)
os.environ.pop("OPSDECK_DECK", None)

# Ctrl-C reaches every process the tests start, as at an engineer's terminal. A test run started in the
# background by a non-interactive shell (as a CI job may be) has SIGINT ignored, every child inherits
# that, and Python then leaves it ignored: the tests that interrupt an operation saw it run to the end.
# A handler here (not SIG_IGN) is reset to the default in each child at exec.
signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    subprocess.run([sys.executable, "-m", "opsdeck", "cloud", "stop"], capture_output=True, check=False)
    if not os.environ.get("OPSDECK_KEEP_TEST_HOME"):
        shutil.rmtree(SESSION_HOME, ignore_errors=True)


def _cloud_log() -> Path:
    return SESSION_HOME / "state" / "localcloud.log"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """A failed test's report carries what the local cloud said meanwhile beyond its access lines
    (server errors with their tracebacks, SDK retries): the one place a CI log shows them."""
    log = _cloud_log()
    if call.when == "setup":
        item.stash[_LOG_START] = log.stat().st_size if log.exists() else 0
    outcome = yield
    report = outcome.get_result()
    if report.failed and log.exists():
        with log.open("rb") as f:
            f.seek(item.stash.get(_LOG_START, 0))
            said = [
                line
                for line in f.read().decode("utf-8", "replace").splitlines()
                if not line.startswith("127.0.0.1 - - ") or '" 5' in line
            ]
        if said:
            report.sections.append(("local cloud (not access lines)", "\n".join(said[-200:])))


_LOG_START = pytest.StashKey[int]()


@pytest.fixture(scope="session")
def demo_deck() -> Iterator[Path]:
    """One applied demo deck on the local cloud for the whole session (the expensive fixture)."""
    for tool in ("terraform", "packer"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not on PATH; run the tests through `make test`")
    if not os.environ.get("OPSDECK_TF_PLUGIN_MIRROR"):
        print("note: OPSDECK_TF_PLUGIN_MIRROR unset; terraform init downloads providers", file=sys.stderr)
    deck = SESSION_HOME / "demo"
    opsdeck("demo", str(deck), "--no-open", check=True, timeout=900)
    yield deck


@pytest.fixture()
def sample_copy(tmp_path: Path) -> Path:
    """A fresh copy of sample_envs/ (not applied, not a git repository)."""
    target = tmp_path / "deck"
    shutil.copytree(ROOT / "sample_envs", target, ignore=shutil.ignore_patterns(".terraform", ".opsdeck"))
    return target
