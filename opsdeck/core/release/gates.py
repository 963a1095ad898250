"""Gates a release passes before it reaches traffic, each a phase on the operation's timeline that can
stop it with traffic left where it was.

- **policy**: every plan, before it is applied, goes through Checkov (its built-in AWS checks and the
  deck's own checks folder); a failed check names the check and the resource, and nothing is applied.
- **soak**: an image must have run in the environment a target promotes from for that target's
  ``soak_minutes`` before it may be promoted onward; break-glass may bypass it, audited.

A policy verdict is kept per saved plan (by the plan file's SHA-256, with the deck's policy settings
and checks), so the plan that was shown and checked before a confirmation is not checked a second
time when it is applied. A pass is also kept on disk beside the deck's plans: a plan prepared by one
process (a blue/green release prepares the switch back) and applied by another is checked once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.model import PlanResult
from opsdeck.core.plans.planning import hash_tree, keep_shown, sha256_of, shown_dir
from opsdeck.core.release.images import load_catalog
from opsdeck.core.release.ledger import PinChange, service_history
from opsdeck.core.types.tools import Failure
from opsdeck.errors import RefusedError, ToolMissingError
from opsdeck.files import write_atomic


class GateError(RefusedError):
    """A gate stopped the release; nothing past the gate happened."""

    def __init__(self, gate: str, message: str) -> None:
        super().__init__(f"{gate} gate: {message}")
        self.gate = gate


@dataclass(frozen=True)
class PolicyVerdict:
    """The policy gate's answer for one saved plan."""

    plan_sha256: str
    passed: int
    failed: tuple[Failure, ...]
    ran: bool = True
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"ran": self.ran, "passed": self.passed, "failed": [f.to_json() for f in self.failed]}
        if self.note:
            data["note"] = self.note
        return data


_VERDICTS: dict[str, PolicyVerdict] = {}


def _policy_key(deck: Deck) -> str:
    """What a verdict also depends on besides the plan: the deck's policy settings and its own checks
    (a check edited while the deck is open is run on the next apply, not answered from before)."""
    settings = deck.config.policy
    digest = hashlib.sha256(f"{deck.root}\n{settings!r}".encode())
    if settings is not None and settings.checks:
        hash_tree(digest, deck.root / settings.checks)
    return digest.hexdigest()[:16]


async def policy(
    deck: Deck,
    env: str,
    plan: PlanResult,
    rep: Reporter,
    *,
    break_glass: bool = False,
    missing_ok: str = "",
) -> PolicyVerdict | None:
    """Check a saved plan against the deck's policy; GateError when a check fails. None when the deck
    has no policy or the plan changes nothing. Checkov missing refuses the change, unless break-glass
    (audited as a bypass) or ``missing_ok`` (why the caller may go on without it) says otherwise."""
    settings = deck.config.policy
    if settings is None or not plan.summary.has_changes or not plan.planfile:
        return None
    planfile = Path(plan.planfile)
    sha = await asyncio.to_thread(sha256_of, planfile)
    if not settings.enabled:
        rep.log(f"the deck's policy gate is off ([policy] enabled = false): {env}'s plan is not checked")
        return PolicyVerdict(sha, 0, (), ran=False, note="policy.enabled = false")
    key = f"{sha}:{await asyncio.to_thread(_policy_key, deck)}"
    if key in _VERDICTS:
        return _VERDICTS[key]
    kept = await asyncio.to_thread(_kept_pass, deck, key)
    if kept is not None:
        _VERDICTS[key] = kept
        return kept
    with rep.phase("policy"):
        try:
            engine = deck.tools.policy()
        except ToolMissingError as exc:
            if break_glass or missing_ok:
                why = "break-glass" if break_glass else missing_ok
                rep.log(f"policy gate not run ({why}): {exc}", "warning")
                return PolicyVerdict(sha, 0, (), ran=False, note=f"checkov missing; went on: {why}")
            raise GateError("policy", f"{exc}; {env}'s plan was not applied") from None
        shown = shown_dir(deck) / f"{sha}.json"
        if not shown.is_file():
            tf = (await asyncio.to_thread(deck.tools.env, env)).terraform
            await asyncio.to_thread(keep_shown, deck, planfile, await tf.show_json(planfile))
        checks = deck.root / settings.checks if settings.checks else None
        rep.progress("checkov: checking the plan")
        report = await engine.scan(shown, checks_dir=checks, skip=settings.skip)
        verdict = PolicyVerdict(sha, report.passed, report.failed)
        rep.log(
            f"policy: {report.passed} checks passed, {len(report.failed)} failed (checkov {report.version})",
            "error" if report.failed else "info",
        )
        for failure in report.failed:
            rep.log(f"  {failure.describe()}", "error")
    if report.failed:
        first = report.failed[0]
        more = f" (and {len(report.failed) - 1} more)" if len(report.failed) > 1 else ""
        raise GateError(
            "policy",
            f"{first.check_id} fails on {first.resource} ({first.name}){more}; {env}'s plan was not applied",
        )
    _VERDICTS[key] = verdict
    await asyncio.to_thread(_keep_pass, deck, key, verdict)
    return verdict


def _verdict_path(deck: Deck, key: str) -> Path:
    folder = deck.local_dir / "plans" / "verdicts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{key.replace(':', '-')}.json"


def _keep_pass(deck: Deck, key: str, verdict: PolicyVerdict) -> None:
    path = _verdict_path(deck, key)
    write_atomic(path, json.dumps({"sha": verdict.plan_sha256, "passed": verdict.passed}))


def _kept_pass(deck: Deck, key: str) -> PolicyVerdict | None:
    try:
        data = json.loads(_verdict_path(deck, key).read_text("utf-8"))
        return PolicyVerdict(str(data["sha"]), int(data["passed"]), ())
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class Soak:
    """How long an image has run in the source environment, against what the target asks."""

    service: str
    image: str
    source: str
    minutes_live: float
    minutes_needed: float

    @property
    def ok(self) -> bool:
        return self.minutes_live >= self.minutes_needed


def minutes_live(history: list[PinChange], canonical: Callable[[str], str], image: str, now: float) -> float:
    """How long a service ran ``image`` (a copy counts as its original), over every stint, from its pin
    history in one environment (newest first, as ``service_history`` gives it)."""
    live_seconds, until = 0.0, now
    for change in history:  # each pin ran until the next one
        if change.image_id is not None and canonical(change.image_id) == canonical(image):
            live_seconds += until - change.when.timestamp()
        until = change.when.timestamp()
    return live_seconds / 60


def soak(deck: Deck, dst: str, images: dict[str, str], *, glass: bool = False, rep: Reporter) -> list[Soak]:
    """Each image (service -> original image id) must have been live in ``dst``'s source environment
    for ``dst``'s soak_minutes, counted from the commit that pinned it there. GateError naming the
    image and how long is left; break-glass bypasses it, with a warning (the caller audits it)."""
    settings = deck.env(dst)
    source = settings.promote_from
    if source is None or settings.soak_minutes <= 0:
        return []
    catalog = load_catalog(deck)
    now = time.time()
    found = []
    with rep.phase("soak"):
        for service, image in images.items():
            history = service_history(deck, source, service)
            live = minutes_live(history, catalog.canonical, image, now)
            found.append(Soak(service, image, source, live, settings.soak_minutes))
        short = [s for s in found if not s.ok]
        for s in found:
            rep.log(f"soak: {s.service} {s.image} ran in {source} {s.minutes_live:.0f} of {s.minutes_needed:g} min")
    if short:
        first = short[0]
        left = first.minutes_needed - first.minutes_live
        message = (
            f"{first.service} {first.image} has run in {source} for {first.minutes_live:.0f} min; {dst} wants "
            f"{first.minutes_needed:g} min of soak ({left:.0f} min to go)"
        )
        if glass:
            rep.log(f"soak gate bypassed by break-glass: {message}", "warning")
            return found
        raise GateError("soak", f"{message}; promote again later, or under break-glass")
    return found
