"""The real tools, as the composition root (opsdeck/wiring) installed them: the factory ``Deck.open`` uses
when its caller hands it none, and the outside systems core reaches without a deck.

Core never builds an adapter: the command line, the deck's launcher and the test session install the
wiring once per process (``opsdeck.wiring.install()``); unit tests hand ``Deck.open`` their fakes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from opsdeck.errors import OpsdeckError

if TYPE_CHECKING:  # types only: the ports' modules load with the first tool a deck builds, not at start
    from opsdeck.core.estate.config import DeckConfig
    from opsdeck.core.estate.settings import UserSettings
    from opsdeck.core.ports.factory import Tools
    from opsdeck.core.ports.outside import Outside

ToolsFactory: TypeAlias = "Callable[[Path, DeckConfig, UserSettings], Tools]"

_tools: ToolsFactory | None = None
_outside: Outside | None = None


def install(tools: ToolsFactory, outside: Outside) -> None:
    """Make ``tools`` the factory of every deck opened without one, and ``outside`` the outside systems."""
    global _tools, _outside
    _tools, _outside = tools, outside


def _missing() -> OpsdeckError:
    return OpsdeckError("no tools are installed in this process (opsdeck.wiring.install() was not called)")


def tools_factory() -> ToolsFactory:
    if _tools is None:
        raise _missing()
    return _tools


def outside() -> Outside:
    if _outside is None:
        raise _missing()
    return _outside
