"""The engine's own packages (Celery and Redis's client) are opt-in: a machine without them is told what
to install in one line, wherever the engine is first needed (a worker, `engine status`, a broker set)."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator

from opsdeck.errors import ToolMissingError

INSTALL = "pip install 'opsdeck[engine]'"


class EngineNotInstalledError(ToolMissingError):
    """Celery or Redis's client (or one of theirs) is not importable here."""


@contextlib.contextmanager
def engine_packages() -> Iterator[None]:
    """Around the imports of Celery and Redis: a missing package is one line saying what to install. Any
    module missing under them counts (celery[redis] brings kombu, billiard, vine ...), not just the two."""
    try:
        yield
    except ModuleNotFoundError as exc:
        missing = exc.name or str(exc)
        raise EngineNotInstalledError(
            f"the engine (Celery on Redis) is not installed here ({missing} is missing): {INSTALL}"
        ) from None


def check_installed() -> None:
    """Both packages import here: a worker needs Celery as well as Redis, and says so before it does anything."""
    with engine_packages():
        for name in ("redis", "celery"):
            importlib.import_module(name)
