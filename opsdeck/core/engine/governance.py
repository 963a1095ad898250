"""How the governance operations run, all in this process: change freezes (signed records in the ledger),
sandbox lifetimes (expire, extend) and the plans made ahead of promote, deploy and rollback.
`registry.py` names them."""

from __future__ import annotations

from opsdeck.core.engine.operation import Call, EnvsArgs, ExpireArgs, ExtendArgs, FreezeArgs, UnfreezeArgs
from opsdeck.core.estate import lifetimes
from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.release import preplan
from opsdeck.core.sandbox import expire
from opsdeck.core.team import freezing


async def freeze_here(deck: Deck, a: FreezeArgs, rep: Reporter, call: Call) -> list[freezing.Decided]:
    return await freezing.freeze(deck, a.envs, a.until, a.reason, rep, key=a.key)


async def unfreeze_here(deck: Deck, a: UnfreezeArgs, rep: Reporter, call: Call) -> list[freezing.Decided]:
    return await freezing.unfreeze(deck, a.envs, rep, key=a.key)


async def expire_here(deck: Deck, a: ExpireArgs, rep: Reporter, call: Call) -> list[expire.Expiry]:
    """Sandboxes whose lifetime ended: listed, or (``a.yes``) destroyed."""
    return await expire.expire(deck, rep, yes=a.yes)


async def extend_here(deck: Deck, a: ExtendArgs, rep: Reporter, call: Call) -> lifetimes.Lifetime:
    return await expire.extend(deck, a.env, a.hours, rep, reason=a.reason)


async def preplan_here(deck: Deck, a: EnvsArgs, rep: Reporter, call: Call) -> list[preplan.PrePlan]:
    """The plans promote, deploy and rollback would need that were missing or no longer current."""
    return await preplan.ahead(deck, rep, envs=a.envs)
