"""A deck: its directory, its config, the user's settings, and the one factory of its tools.

The deck is handed its tools (``Tools``); it never builds an adapter itself. ``Deck.open`` gives it the
real ones (core/estate/tools.py); unit tests give it fakes. It holds no credentials: break-glass
credentials travel in the break-glass value of the operation that uses them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from opsdeck.core.estate.config import DeckConfig, EnvSettings, load_config
from opsdeck.core.estate.settings import UserSettings, load_settings
from opsdeck.errors import CloudUnavailableError, ConfigError

if TYPE_CHECKING:
    from opsdeck.core.estate.backend import Backend
    from opsdeck.core.ports import Tools

ToolsFactory = Callable[[Path, DeckConfig, UserSettings], "Tools"]


def find_deck_root(explicit: str | None) -> Path:
    """--deck, then $OPSDECK_DECK, then the current directory."""
    chosen = explicit or os.environ.get("OPSDECK_DECK") or "."
    root = Path(chosen).expanduser()
    if not root.is_dir():
        raise ConfigError(f"deck directory {chosen} does not exist")
    return root.resolve()


def live_tools(root: Path, config: DeckConfig, settings: UserSettings) -> Tools:
    from opsdeck.core.estate.tools import LiveTools

    return LiveTools(root, config, settings)


class Deck:
    """One deck, opened from its directory, with the tools its operations use."""

    def __init__(self, root: Path, config: DeckConfig, settings: UserSettings, tools: Tools) -> None:
        self.root = root
        self.config = config
        self.settings = settings
        self.tools = tools

    @classmethod
    def open(cls, root: Path, tools: ToolsFactory = live_tools) -> Deck:
        config = load_config(root)
        settings = load_settings()
        deck = cls(root, config, settings, tools(root, config, settings))
        check_state_keys(deck)
        return deck

    # -- layout -------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def local_dir(self) -> Path:
        """Deck-local files that are not code: plans, snapshots, locks, the audit log (git-ignored)."""
        path = self.root / ".opsdeck"
        path.mkdir(exist_ok=True)
        return path

    def env(self, name: str) -> EnvSettings:
        return self.config.env(name)

    def env_dir(self, name: str) -> Path:
        return self.root / self.env(name).path

    @property
    def is_local(self) -> bool:
        return self.config.aws.local

    def backend(self, env: str) -> Backend | None:
        """Where ``env``'s Terraform state lives."""
        from opsdeck.core.estate.backend import backend_of

        return backend_of(self.env_dir(env))

    def state_location(self, env: str) -> tuple[str, str] | None:
        """(bucket, key) of the environment's state, as `terraform init` recorded it."""
        from opsdeck.core.estate.backend import initialized_backend

        found = initialized_backend(self.env_dir(env))
        return (found.bucket, found.key) if found else None

    def redact(self, text: str) -> str:
        return self.tools.redact(text)

    # -- the cloud ----------------------------------------------------------------------------

    def check_endpoint(self) -> None:
        self.tools.check_endpoint()

    def check_cloud(self) -> None:
        """The cloud answers and still holds this deck's state (moto forgets all on restart)."""
        self.check_endpoint()
        if not self.is_local:
            return
        env = self.config.environments[0].name
        backend = self.backend(env)
        if backend is None:
            return
        if not self.tools.env(env).cloud.bucket_exists(backend.bucket):
            raise CloudUnavailableError(
                f"the local cloud does not hold this deck's state (bucket {backend.bucket} is gone: the cloud "
                "was restarted and keeps state in memory); run `opsdeck demo --reset` to recreate the demo deck"
            )


def check_state_keys(deck: Deck) -> None:
    """Two environments sharing one state would apply over each other: refuse to open such a deck."""
    seen: dict[str, str] = {}
    for env in deck.config.environments:
        backend = deck.backend(env.name)
        if backend is None:
            continue
        if backend.url in seen:
            raise ConfigError(
                f"opsdeck.toml: environments {seen[backend.url]} and {env.name} share one Terraform state "
                f"({backend.url}); give each environment its own backend key"
            )
        seen[backend.url] = env.name
