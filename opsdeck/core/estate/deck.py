"""A deck: its directory, its config, the user's settings, and the one factory of its tools.

The deck is handed its tools (``Tools``); it never builds an adapter itself. ``Deck.open`` gives it the
factory it is handed (unit tests hand it fakes), else the one the composition root installed
(core/estate/installed.py: the real tools of opsdeck/wiring). It holds no credentials: break-glass
credentials travel in the break-glass value of the operation that uses them. Whoever opened it may hand it
an ``Announcer`` (core/hygiene/notices.py), which tells the team of each change once its result is known.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from opsdeck.core.estate import installed
from opsdeck.core.estate.backend import backend_of, initialized_backend
from opsdeck.core.estate.config import CONFIG_FILE, DeckConfig, load_config
from opsdeck.core.estate.demo_deck import is_demo_deck, last_demo_deck
from opsdeck.core.estate.sections import ROLE_ARN, EnvSettings
from opsdeck.core.estate.settings import UserSettings, load_settings
from opsdeck.errors import CloudUnavailableError, ConfigError, OpsdeckError

if TYPE_CHECKING:
    from opsdeck.core.estate.backend import Backend
    from opsdeck.core.estate.installed import ToolsFactory
    from opsdeck.core.ports.cloud import CloudPort
    from opsdeck.core.ports.factory import Tools

# Where `recover` builds an environment's copy in another region (core/sandbox/copies.py), under the deck's
# local dir; here so that unlock, below the sandbox layer, finds the copies' folders too.
COPIES_DIR = "recover"


def copy_name(env: str, region: str) -> str:
    """How a copy is named in locks, plans, messages and its folder: ``staging@us-west-2``."""
    return f"{env}@{region}"


def find_deck_root(explicit: str | None, command: Sequence[str] = ()) -> Path:
    """--deck, then $OPSDECK_DECK, then the current directory. A current directory that is no deck, while
    a demo deck exists, is refused with the demo deck's path and ``command`` run on it (the first run
    from a checkout after `make demo` is made there)."""
    chosen = explicit or os.environ.get("OPSDECK_DECK") or "."
    root = Path(chosen).expanduser()
    if not root.is_dir():
        raise ConfigError(f"deck directory {chosen} does not exist")
    root = root.resolve()
    demo = last_demo_deck() if chosen == "." and not (root / CONFIG_FILE).is_file() else None
    if demo is not None:
        import shlex  # only for this advice

        again = shlex.join(["opsdeck", "--deck", str(demo), *command])
        raise ConfigError(
            f"no {CONFIG_FILE} in {root} (pass --deck DIR or set OPSDECK_DECK); the demo deck is at {demo}: "
            f"`{again}`, or `export OPSDECK_DECK={shlex.quote(str(demo))}`"
        )
    return root


class Announcer(Protocol):
    """Tells the team of a change, given its closing audit record; returns at once (it never blocks or
    fails the change)."""

    def announce(self, record: dict[str, Any], result: str | None = None) -> None: ...


class Deck:
    """One deck, opened from its directory, with the tools its operations use."""

    def __init__(self, root: Path, config: DeckConfig, settings: UserSettings, tools: Callable[[], Tools]) -> None:
        self.root = root
        self.config = config
        self.settings = settings
        self._make_tools = tools
        self._tools: Tools | None = None
        self._tools_lock = threading.Lock()  # workers in threads may reach for the tools at the same moment
        self.announcer: Announcer | None = None

    @property
    def tools(self) -> Tools:
        """The deck's tools, built on first use: a deck opened only to show its stored snapshot (the
        first frame) builds none and loads no adapter."""
        if self._tools is None:
            with self._tools_lock:
                if self._tools is None:
                    self._tools = self._make_tools()
        return self._tools

    def announce(self, record: dict[str, Any], result: str | None = None) -> None:
        """Hand a change's closing record (or a break-glass opening) to the announcer, if one was attached."""
        if self.announcer is not None:
            self.announcer.announce(record, result)

    @classmethod
    def open(cls, root: Path, tools: ToolsFactory | None = None) -> Deck:
        config = load_config(root)
        settings = load_settings()
        factory = tools or installed.tools_factory()
        deck = cls(root, config, settings, lambda: factory(root, config, settings))
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

    def copy_dirs(self, env: str) -> list[Path]:
        """The folders of ``env``'s copies in other regions that `recover` built (none: an empty list)."""
        return sorted((self.root / ".opsdeck" / COPIES_DIR).glob(copy_name(env, "*")))

    @property
    def is_local(self) -> bool:
        return self.config.aws.local

    def backend(self, env: str) -> Backend | None:
        """Where ``env``'s Terraform state lives."""
        return backend_of(self.env_dir(env))

    def state_location(self, env: str) -> tuple[str, str] | None:
        """(bucket, key) of the environment's state, as `terraform init` recorded it."""
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
        cloud = self.tools.env(env).cloud
        if not cloud.bucket_exists(backend.bucket):
            raise CloudUnavailableError(self._no_state_bucket(env, backend, cloud))

    def _no_state_bucket(self, env: str, backend: Backend, cloud: CloudPort) -> str:
        """What to do about a state bucket the local cloud does not hold: the demo is rebuilt; a team's own
        deck is told which bucket, where, and how to make it (it may never have been applied here)."""
        if is_demo_deck(self.root):
            return (
                f"the local cloud does not hold this deck's state (bucket {backend.bucket} is gone: the cloud "
                "was restarted and keeps state in memory); run `opsdeck demo --reset` to recreate the demo deck"
            )
        region = backend.region or cloud.region
        account = self.env(env).account or _role_account(self.env(env).role) or _caller_account(cloud)
        where = f"account {account}, {region}" if account else region
        create = f"aws s3api create-bucket --bucket {backend.bucket} --region {region}"
        if region != "us-east-1":  # S3 takes us-east-1 without a location constraint, and only it
            create += f" --create-bucket-configuration LocationConstraint={region}"
        endpoint = self.tools.endpoint()
        if endpoint:
            create += f" --endpoint-url {endpoint}"
        users = [e for e in self.config.env_names if (b := self.backend(e)) is not None and b.bucket == backend.bucket]
        names = " and ".join([", ".join(users[:-1]), users[-1]] if len(users) > 1 else users)
        return (
            f"the state bucket {backend.bucket} of {names} does not exist on the local cloud ({where}): never "
            "applied there, or the cloud was restarted since (it keeps everything in memory); create it with that "
            f"account's credentials (`{create}`), then apply {names} (`opsdeck apply ENV`)"
        )


def _role_account(role: str | None) -> str | None:
    match = ROLE_ARN.match(role or "")
    return match.group(1) if match else None


def _caller_account(cloud: CloudPort) -> str | None:
    try:
        return cloud.caller_identity().get("account") or None
    except OpsdeckError:  # only for a message: the bucket is named without its account
        return None


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
