"""The seam operations go through: in this process (no broker: today's code path, unchanged) or on the
engine's workers (a broker configured). The deck and scripts call these; the CLI's commands do the same
choice themselves (they print each path's own result).

    result = await refresh_deck(deck, rep, with_drift=False)      # a RefreshResult either way
    result = await release(deck, "promote", "dev", rep, src="sandbox", confirm=ask)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opsdeck.core.engine.settings import broker_url
from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.observe.refresh import RefreshResult
from opsdeck.core.safety.confirm import Confirm, confirmed


def runs_on_workers(deck: Deck) -> bool:
    """Whether the deck's operations run on the engine's workers (a broker is configured)."""
    return bool(broker_url(deck))


async def refresh_deck(
    deck: Deck,
    rep: Reporter,
    *,
    with_drift: bool = True,
    reuse: bool = True,
    envs: list[str] | None = None,
    drift_envs: list[str] | None = None,
) -> RefreshResult:
    """`refresh` here, or with each environment's Terraform on a worker of its account (``workers`` names them)."""
    broker = broker_url(deck)
    if not broker:
        from opsdeck.core.observe.refresh import refresh

        return await refresh(deck, rep, with_drift=with_drift, reuse=reuse, envs=envs, drift_envs=drift_envs)
    from opsdeck.core.engine.dispatch import Engine
    from opsdeck.core.engine.remote import refresh_on_workers

    engine = Engine(deck, broker)
    try:
        return await refresh_on_workers(
            deck, engine, rep, with_drift=with_drift, reuse=reuse, envs=envs, drift_envs=drift_envs
        )
    finally:
        engine.close()


@dataclass(frozen=True)
class RemoteRelease:
    """A release a worker ran, read back from its JSON: what the deck needs to show it."""

    action: str
    environment: str
    worker: str
    job: str
    commit: str
    seconds: float
    text: str  # the release's own one-line summary
    data: dict[str, Any] = field(default_factory=dict)  # its JSON, as `promote --json` prints it

    def summary(self) -> str:
        return f"{self.text} (on {self.worker})"

    def to_json(self) -> dict[str, Any]:
        return {**self.data, "worker": self.worker, "job": self.job}


async def release(
    deck: Deck,
    action: str,
    env: str,
    rep: Reporter,
    *,
    src: str = "",
    services: list[str] | None = None,
    to: str | None = None,
    reason: str = "",
    confirm: Confirm = confirmed,
) -> Any:
    """promote (from ``src``), rollback (to ``to``) or deploy ``env``: here (a ReleaseResult, or the Request
    it became) or on a worker (a RemoteRelease, or the Request it became). Break-glass releases are not
    sent: call promote/rollback/deploy_newest with the glass here."""
    broker = broker_url(deck)
    if not broker:
        from opsdeck.core.release.promote import deploy_newest, promote, rollback

        if action == "promote":
            return await promote(deck, src, env, rep, services=services, reason=reason, confirm=confirm)
        if action == "rollback":
            return await rollback(deck, env, rep, services=services, to=to, reason=reason, confirm=confirm)
        return await deploy_newest(deck, env, rep, services=services, reason=reason, confirm=confirm)
    from opsdeck.core.engine.dispatch import Engine
    from opsdeck.core.engine.remote import release_on_worker
    from opsdeck.core.team.requests import Request, load

    args: dict[str, Any] = {"services": services, "reason": reason}
    if action == "promote":
        args["src"] = src
    if action == "rollback":
        args["to"] = to
    engine = Engine(deck, broker)
    try:
        outcome = await release_on_worker(deck, engine, action, env, args, rep, confirm)
    finally:
        engine.close()
    if "request" in outcome.result:  # the worker pushed it to the ledger; this clone followed
        request: Request = load(deck, str(outcome.result["request"]["id"]))
        return request
    data = dict(outcome.result.get("release") or {})
    return RemoteRelease(
        action,
        env,
        outcome.worker,
        outcome.spec.id,
        str(outcome.result.get("commit", "")),
        outcome.seconds,
        str(outcome.result.get("summary", "")),
        data,
    )
