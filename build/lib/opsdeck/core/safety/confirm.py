"""Confirmation: what a person (or --yes) is shown before a change is applied, and how they answer.

The operation builds a Preview (the environment, its approval level, each service's from -> to, and
the saved plan that will be applied) and awaits the Confirm it was given: the CLI asks on the
terminal or takes --yes, the deck opens a modal. A change that is not confirmed changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from opsdeck.core.model import ImageRef, PlanResult
from opsdeck.errors import RefusedError


@dataclass(frozen=True)
class ServiceChange:
    """One service's image, before and after a release."""

    service: str
    from_image: ImageRef
    to_image: ImageRef


@dataclass(frozen=True)
class Preview:
    """What a confirmation shows: the environment, its approval level, what moves, and the plan."""

    action: str
    environment: str
    approval: str
    changes: tuple[ServiceChange, ...]
    plan: PlanResult
    reason: str = ""
    note: str = ""  # one line the operation wants seen (e.g. where an image was copied)


Confirm = Callable[[Preview], Awaitable[bool]]


async def confirmed(_: Preview) -> bool:
    """The --yes confirmation."""
    return True


class NotConfirmedError(RefusedError):
    """The person (or the missing --yes) did not confirm; nothing was changed."""
