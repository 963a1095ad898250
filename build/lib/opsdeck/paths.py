"""Where opsdeck keeps user-level files: config, data (the demo deck), state (local cloud) and cache.

Everything lives under the XDG directories (platformdirs), or under one root when OPSDECK_HOME is set,
which is how the tests and the benchmarks keep each run apart from the user's own files.
"""

from __future__ import annotations

import os
from pathlib import Path

APP = "opsdeck"


def _home() -> Path | None:
    root = os.environ.get("OPSDECK_HOME")
    return Path(root).expanduser() if root else None


def _dir(kind: str) -> Path:
    home = _home()
    if home is not None:
        return home / kind
    import platformdirs

    return Path(getattr(platformdirs, f"user_{kind}_dir")(APP))


def config_dir() -> Path:
    return _dir("config")


def data_dir() -> Path:
    return _dir("data")


def state_dir() -> Path:
    return _dir("state")


def cache_dir() -> Path:
    return _dir("cache")


def default_demo_dir() -> Path:
    return data_dir() / "demo"
