"""What an operation is: its typed arguments, where it may run, what a caller brings, what it returns.

Every operation the CLI, the deck and the engine's workers run is one `Operation` in the registry
(`registry.py`): a name, a frozen dataclass of arguments, whether it changes anything, where it may run
(here only, or on a worker of its environment's account or of the build account) and the coroutines
that run it. Arguments travel to a worker as the JSON of that dataclass, read back and checked here.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from opsdeck.errors import OpsdeckError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    from opsdeck.core.engine.dispatch import Engine
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.events import Reporter
    from opsdeck.core.release.preplan import PrePlan
    from opsdeck.core.safety.breakglass import BreakGlass

A = TypeVar("A")
R = TypeVar("R")
D = TypeVar("D", bound="DataclassInstance")

Ask = Callable[[Any], Awaitable[bool]]  # a release's Preview, or a nuke-and-rebuild's NukePlan -> go ahead?


class Where(enum.Enum):
    """Where an operation may run."""

    HERE = "here"  # in this process only
    ENV = "env"  # here, or on a worker of its environment's account (queue opsdeck.<account>)
    BUILD = "build"  # here, or on a worker of the build account (a bake: of no environment)


@dataclass(frozen=True)
class Call:
    """What a caller brings besides the arguments."""

    confirm: Ask | None = None  # asked before a change; None: nobody to ask (as with --yes)
    glass: BreakGlass | None = None  # this engineer's break-glass: the operation runs here, under it
    # A release's plan made ahead, its confirmation shown already by the caller (a worker plans its own)
    preplanned: PrePlan | None = None
    busy: Callable[[], bool] | None = None  # the pre-planner stops as soon as this says an operation runs


@dataclass(frozen=True)
class Ran(Generic[R]):
    """An operation's result, and where it ran."""

    result: R
    sent: bool = False  # the engine's workers were chosen (a saved plan may still have been reused)
    worker: str | None = None  # the worker that ran it (None: here, or no job was needed)
    job: str = ""
    data: dict[str, Any] = field(default_factory=dict)  # the worker's JSON result, as it sent it


Here = Callable[["Deck", A, "Reporter", Call], Awaitable[R]]
Job = Callable[["Deck", A, "Reporter", Call], Awaitable[dict[str, Any]]]
OnWorkers = Callable[["Deck", "Engine", A, "Reporter", Call], Awaitable[Ran[R]]]
Unseen = Callable[["Deck", A], str]


@dataclass(frozen=True)
class Operation(Generic[A, R]):
    """One operation, declared once."""

    name: str
    args: type[A]
    here: Here[A, R]  # the core coroutine that runs it in this process
    mutating: bool = False  # changes something: locked and audited in core, refused by a read-only deck
    where: Where = Where.HERE
    job: Job[A] | None = None  # what a worker runs (its JSON result): the same core coroutine
    on_workers: OnWorkers[A, R] | None = None  # the caller's side of that: send, follow, read the result back
    unseen: Unseen[A] | None = None  # files a worker's clone would not see ("" none): then it runs here
    done_here: str = ""  # what is said when those files keep it here: "baked", "planned" ...

    @property
    def sendable(self) -> bool:
        return self.where is not Where.HERE and self.on_workers is not None


# -- arguments ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanArgs:
    env: str
    reuse: bool = False  # a saved plan nothing has moved since is good enough


@dataclass(frozen=True)
class EnvArgs:
    env: str


@dataclass(frozen=True)
class EnvsArgs:
    envs: list[str] | None = None  # None: every environment


@dataclass(frozen=True)
class RefreshArgs:
    with_drift: bool = True
    reuse: bool = True
    envs: list[str] | None = None
    drift_envs: list[str] | None = None  # drift-checked only these (None: every refreshed one)


@dataclass(frozen=True)
class BakeArgs:
    services: list[str] | None = None
    version: str | None = None
    base: bool = False


@dataclass(frozen=True)
class PromoteArgs:
    src: str  # an environment, or an image id or version
    env: str
    services: list[str] | None = None
    reason: str = ""


@dataclass(frozen=True)
class DeployArgs:
    env: str
    services: list[str] | None = None
    reason: str = ""


@dataclass(frozen=True)
class RollbackArgs:
    env: str
    services: list[str] | None = None
    to: str | None = None  # an image id or version the environment ran before
    reason: str = ""


@dataclass(frozen=True)
class ApproveArgs:
    request: str
    key: str | None = None  # an SSH private key file instead of git's user.signingkey


@dataclass(frozen=True)
class RejectArgs:
    request: str
    reason: str
    key: str | None = None


@dataclass(frozen=True)
class ExecuteArgs:
    request: str


@dataclass(frozen=True)
class GlassArgs:
    env: str
    reason: str


@dataclass(frozen=True)
class FreezeArgs:
    envs: list[str]
    until: float  # epoch seconds
    reason: str
    key: str | None = None  # an SSH private key file instead of git's user.signingkey


@dataclass(frozen=True)
class UnfreezeArgs:
    envs: list[str]
    key: str | None = None


@dataclass(frozen=True)
class ExpireArgs:
    yes: bool = False  # destroy the sandboxes whose lifetime ended (False: list them)


@dataclass(frozen=True)
class ExtendArgs:
    env: str
    hours: float
    reason: str = ""


def args_json(args: Any) -> dict[str, Any]:
    """A job's arguments: the dataclass as JSON, without the environment (the job names it)."""
    return {k: v for k, v in dataclasses.asdict(args).items() if k != "env"}


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


_WANTED: dict[Any, tuple[str, Callable[[Any], bool]]] = {
    str: ("a string", lambda v: isinstance(v, str)),
    bool: ("true or false", lambda v: isinstance(v, bool)),
    str | None: ("a string or null", lambda v: v is None or isinstance(v, str)),
    list[str] | None: ("a list of names", lambda v: v is None or (isinstance(v, list) and all(map(_is_str, v)))),
}


def args_from_job(kind: type[D], env: str, data: dict[str, Any], job: str) -> D:
    """A job's arguments read back and checked; a wrong one is one line naming it (never a traceback on a
    worker). Keys it does not know are left alone."""
    hints = typing.get_type_hints(kind)
    values: dict[str, Any] = {}
    for item in dataclasses.fields(kind):
        if item.name == "env":
            values["env"] = env
        elif item.name in data:
            what, ok = _WANTED[hints[item.name]]
            if not ok(data[item.name]):
                raise OpsdeckError(f"job {job}: {item.name} must be {what}")
            values[item.name] = data[item.name]
    return kind(**values)
