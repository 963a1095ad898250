"""Install as users do: a wheel built from this checkout, in a fresh venv elsewhere, runs the demo.

Nothing of the source tree is on the path: the themes and the sample deck must come from the wheel.
The installed opsdeck gets a home of its own (its own local cloud, config and keyring settings) and
runs from another working directory; the machine has no keyring backend there, as a fresh box has not.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.integration

PILOT = """
import asyncio, sys
from pathlib import Path

import opsdeck
from opsdeck import wiring
from opsdeck.core.estate.deck import Deck
from opsdeck.tui.app import OpsDeckApp
from opsdeck.tui.themes import load_themes


async def main(root: str) -> None:
    wiring.install()
    deck = Deck.open(Path(root))
    shown = []
    for name in sorted(load_themes()):
        app = OpsDeckApp(deck, theme=name, live=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            screen = app.export_screenshot()
            assert app.theme == name, (app.theme, name)
            assert "PROD" in screen and "sandbox" in screen, screen[:400]
            shown.append(name)
    print(opsdeck.__file__)
    print(",".join(shown))


asyncio.run(main(sys.argv[1]))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """A fresh venv with the wheel built from this checkout, and the environment to run it in."""
    work = tmp_path_factory.mktemp("wheel-install")
    dist = work / "dist"
    # Built from a copy of the source tree: setuptools builds in place, and a build/ left over from an
    # earlier build (with modules since removed) must not end up in this wheel.
    source = work / "source"
    shutil.copytree(
        ROOT,
        source,
        symlinks=True,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".opsdeck", ".terraform", ".*_cache"
        ),
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(source)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    wheels = list(dist.glob("opsdeck-*.whl"))
    assert len(wheels) == 1, wheels
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheels[0])],
        check=True,
        capture_output=True,
        timeout=900,
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHON_KEYRING_BACKEND", "OPSDECK_DECK", "VIRTUAL_ENV")
    }
    env.update(
        OPSDECK_HOME=str(work / "home"),
        XDG_DATA_HOME=str(work / "xdg-data"),
        XDG_CONFIG_HOME=str(work / "xdg-config"),
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
    )
    yield venv, env
    subprocess.run([str(venv / "bin" / "opsdeck"), "cloud", "stop"], env=env, capture_output=True, check=False)


def test_the_wheel_carries_the_themes_and_the_sample_deck(installed: tuple[Path, dict[str, str]]) -> None:
    venv, _ = installed
    site = next((venv / "lib").glob("python3*/site-packages"))
    package = site / "opsdeck"
    assert sorted(p.name for p in (package / "themes").glob("*.toml")) == [
        "opsdeck-dark.toml",
        "opsdeck-high-contrast.toml",
        "opsdeck-light.toml",
    ]
    assert (package / "sample_envs" / "opsdeck.toml").is_file()
    assert (package / "sample_envs" / ".driftignore").is_file()
    assert not list((package / "sample_envs").rglob(".terraform"))


def test_the_installed_opsdeck_runs_the_demo_and_opens_with_every_theme(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    venv, env = installed
    elsewhere = tmp_path / "somewhere-else"
    elsewhere.mkdir()
    deck = tmp_path / "my-demo"
    opsdeck = str(venv / "bin" / "opsdeck")

    demo = subprocess.run(
        [opsdeck, "demo", str(deck), "--no-open"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=900
    )
    assert demo.returncode == 0, demo.stderr
    assert "demo deck ready" in demo.stdout
    # No keyring backend on this fresh install: the demo says how to get one, in one line.
    assert "no keyring backend on this machine" in demo.stderr

    status = subprocess.run(
        [opsdeck, "status", "--json"], cwd=deck, env=env, capture_output=True, text=True, timeout=300
    )
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["cloud"] == "reachable"
    for row in data["environments"]:
        counts = row["instances"]
        assert counts["desired"] > 0 and counts["running"] == counts["desired"] == counts["on_pinned_image"], row

    pilot = subprocess.run(
        [str(venv / "bin" / "python"), "-c", PILOT, str(deck)],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert pilot.returncode == 0, pilot.stderr
    where, themes = pilot.stdout.split()
    assert str(venv) in where and str(ROOT) not in where  # the installed copy, not the checkout
    assert themes.split(",") == ["opsdeck-dark", "opsdeck-high-contrast", "opsdeck-light"]
