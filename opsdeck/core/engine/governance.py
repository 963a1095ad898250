"""How the governance operations run, all in this process: change freezes (signed records in the ledger),
sandbox lifetimes (expire, extend) and the plans made ahead of promote, deploy and rollback.
`registry.py` names them.

Each body imports its core module when it first runs, for the reason `operations.py` gives: a read-only
deck reads the registry while it draws its first frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsdeck.core.engine.operation import Call, EnvsArgs, ExpireArgs, ExtendArgs, FreezeArgs, UnfreezeArgs

if TYPE_CHECKING:
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.estate.lifetimes import Lifetime
    from opsdeck.core.events import Reporter
    from opsdeck.core.release.preplan import PrePlan
    from opsdeck.core.sandbox.expire import Expiry
    from opsdeck.core.team.freezing import Decided


async def freeze_here(deck: Deck, a: FreezeArgs, rep: Reporter, call: Call) -> list[Decided]:
    from opsdeck.core.team.freezing import freeze

    return await freeze(deck, a.envs, a.until, a.reason, rep, key=a.key)


async def unfreeze_here(deck: Deck, a: UnfreezeArgs, rep: Reporter, call: Call) -> list[Decided]:
    from opsdeck.core.team.freezing import unfreeze

    return await unfreeze(deck, a.envs, rep, key=a.key)


async def expire_here(deck: Deck, a: ExpireArgs, rep: Reporter, call: Call) -> list[Expiry]:
    """Sandboxes whose lifetime ended: listed, or (``a.yes``) destroyed."""
    from opsdeck.core.sandbox.expire import expire

    return await expire(deck, rep, yes=a.yes)


async def extend_here(deck: Deck, a: ExtendArgs, rep: Reporter, call: Call) -> Lifetime:
    from opsdeck.core.sandbox.expire import extend

    return await extend(deck, a.env, a.hours, rep, reason=a.reason)


async def preplan_here(deck: Deck, a: EnvsArgs, rep: Reporter, call: Call) -> list[PrePlan]:
    """The plans promote, deploy and rollback would need that were missing or no longer current."""
    from opsdeck.core.release.preplan import ahead

    return await ahead(deck, rep, envs=a.envs, busy=call.busy)
