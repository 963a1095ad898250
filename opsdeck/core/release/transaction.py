"""One release transaction: a pin change from start to end, in the order it runs.

    async with audited(deck, action, env, rep, ...) as run:
        async with Release(deck, env, rep, run, action=action, files=files) as release:
            release.write_pins(images)                   # pin
            plan = await release.plan()                  # plan (and show)
            await release.policy(plan)                   # policy
            await release.confirm(preview, confirm)      # confirm
            await release.roll(plan, expected)           # apply, the rollout strategies, verify instances
            await release.commit(head, body)             # commit, with the operator's trailers
            await release.publish()                      # push to the team's remote

Promote, deploy, rollback (core/release/promote.py), execute (core/release/execute.py), standby expiry
(core/release/standby.py) and blue/green releases (core/release/bluegreen_rollout.py) are compositions
of these steps. The failure rule lives here and nowhere else: until the apply, the pin files are put
back as they were; once applied, they stay as written (uncommitted: what the cloud may run now), and
the error names the step it failed at and which of the two happened. A rollout that is stopped (Ctrl-C,
an instance refresh that fails) is stopped by its strategy, then refreshed back: the previous pins
applied again, so the environment is never left half on the new image without saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any

from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import ColorPin, write_color_pins, write_pins
from opsdeck.core.events import Reporter
from opsdeck.core.ledger.identity import operator
from opsdeck.core.ledger.remote import publish
from opsdeck.core.model import PlanResult
from opsdeck.core.plans import planning
from opsdeck.core.release import fleet, gates, preplan, rollout, strategies
from opsdeck.core.release.facts import read_facts
from opsdeck.core.safety.audit import anchor
from opsdeck.core.safety.confirm import Confirm, NotConfirmedError, Preview
from opsdeck.core.safety.operation import Run
from opsdeck.core.tasks import all_or_nothing
from opsdeck.core.types.cloud import Credentials
from opsdeck.errors import OpsdeckError, RefusedError, reworded
from opsdeck.files import write_atomic


class RolloutStopped(OpsdeckError):
    """A rollout stopped by its strategy and refreshed back to the previous pins."""


class Release:
    """A pin change of one environment under its lock and audit record (see the module's docstring)."""

    def __init__(
        self,
        deck: Deck,
        env: str,
        rep: Reporter,
        run: Run,
        *,
        action: str,
        files: list[str],
        credentials: Credentials | None = None,
        label: str = "",
    ) -> None:
        self.deck, self.env, self.rep, self.run = deck, env, rep, run
        self.action, self.files, self.credentials = action, files, credentials
        self.label = label or f"{action} of {env}"  # how errors name the release
        self.step = "start"
        self.applied = False
        self.restored = False  # refreshed back: the previous pins are what runs again
        self.originals: dict[str, str] = {}
        self.unverified: OpsdeckError | None = None
        self.strategies: dict[str, strategies.Strategy] = {}
        self.still: list[str] = []  # services whose instances nothing replaced, with their counts

    # -- the failure rule ---------------------------------------------------------------------------

    async def __aenter__(self) -> Release:
        git = self.deck.tools.git
        for rel in self.files:  # under the lock: another operation's half-written pins are its own
            if await asyncio.to_thread(git.is_dirty, rel):
                raise RefusedError(f"{rel} has uncommitted changes; commit or discard them before {self.action}")
        self.originals = {rel: (self.deck.root / rel).read_text(encoding="utf-8") for rel in self.files}
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        planning.drop_scratch(self.deck, self.env, "switch")
        if exc is None:
            return
        if not self.applied:
            self.restore()
        planning.forget_plan(self.deck, self.env)
        if isinstance(exc, OpsdeckError) and not isinstance(exc, RefusedError):
            raise reworded(exc, f"{self.label} failed at {self.step} ({self.kept()}): {exc}") from exc

    def kept(self) -> str:
        if self.restored:
            return "refreshed back to the previous pins"
        if self.applied:
            return f"applied, pins left uncommitted in {', '.join(self.files)}"
        return "pins restored"

    def restore(self) -> None:
        """The pin files as they were when the release started."""
        for rel, text in self.originals.items():
            write_atomic(self.deck.root / rel, text)

    @contextlib.contextmanager
    def at(self, step: str, *, phase: bool = True) -> Iterator[None]:
        """The step the release is at (named by an error), as a phase of the operation's timeline."""
        self.step = step
        if not phase:
            yield
            return
        with self.rep.phase(step):
            yield

    # -- the steps, in order ------------------------------------------------------------------------

    def write_pins(self, images: Mapping[str, str | ColorPin]) -> None:
        with self.at("pin"):
            plain = {s: i for s, i in images.items() if isinstance(i, str)}
            colors = {s: i for s, i in images.items() if isinstance(i, ColorPin)}
            write_pins(self.deck, self.env, plain)
            write_color_pins(self.deck, self.env, colors)

    def write_texts(self, texts: Mapping[str, str]) -> None:
        """Pin files written as given (an approved request's, checked against its plan)."""
        with self.at("pin", phase=False):
            for rel, text in texts.items():
                write_atomic(self.deck.root / rel, text)

    async def plan(self) -> PlanResult:
        with self.at("plan", phase=False):  # planning reports its own plan and show phases
            return await planning.plan(self.deck, self.env, self.rep, reuse=False, credentials=self.credentials)

    async def policy(self, plan: PlanResult) -> None:
        with self.at("policy", phase=False):  # the gate reports its phase when it runs
            verdict = await gates.policy(self.deck, self.env, plan, self.rep, break_glass=self.credentials is not None)
        if verdict is not None:
            self.run.note(policy=verdict.to_json())

    async def confirm(self, preview: Preview, confirm: Confirm) -> None:
        with self.at("confirm", phase=False):
            if not await confirm(preview):
                raise NotConfirmedError(f"{self.label} was not confirmed; nothing changed")

    def choose(self, plan: PlanResult, services: list[str]) -> dict[str, strategies.Strategy]:
        """The rollout strategy of each service for this plan (what the confirmation then shows)."""
        shown = planning.shown_of(self.deck, plan)
        facts = read_facts(shown or {}, self.deck.config.conventions.service_tag, self.deck.config.service_names)
        tools = self.deck.tools.env(self.env, self.credentials)
        where = strategies.Where(self.env, self.deck.env(self.env), tools.cloud, self.rep)
        self.strategies = strategies.for_plan(where, services, facts)
        return self.strategies

    async def apply(self, plan: PlanResult) -> None:
        with self.at("apply", phase=False):  # apply_plan reports its phase
            await rollout.apply_plan(self.deck, self.env, plan, self.rep, self.credentials)
        self.applied = True

    async def roll(self, plan: PlanResult, expected: Mapping[str, fleet.Expected], *, back: bool = True) -> None:
        """Apply the plan and see the new images reach the instances, each service by its strategy.
        Stopped part way (Ctrl-C, a refresh that fails), the strategies stop what they follow and (with
        ``back``) the previous pins are applied again: a refresh back."""
        chosen = self.strategies or self.choose(plan, list(expected))
        for strategy in chosen.values():
            await strategy.before_apply()
        if plan.summary.has_changes:
            await self.apply(plan)
        else:
            self.applied = True
        try:
            with self.at("rollout", phase=False):
                rolled = await all_or_nothing(*(s.after_apply() for s in chosen.values()))
        except (OpsdeckError, asyncio.CancelledError) as exc:
            if back:
                await self._refresh_back(chosen, exc)
            else:
                stopped = [line for line in [await s.stop() for s in chosen.values()] if line]
                if stopped:
                    self.run.note(stopped="; ".join(stopped))
            raise
        moving = {s: expected[s] for s, ok in zip(chosen, rolled, strict=True) if ok}
        for service in (s for s, ok in zip(chosen, rolled, strict=True) if not ok):
            self.still.append(await self._still(service, expected[service]))
        if moving:
            await self.verify(moving)
        for line in self.still:
            self.rep.log(line, "notice")

    async def _still(self, service: str, want: fleet.Expected) -> str:
        snap = await asyncio.to_thread(fleet.snapshot, self.deck, self.env, self.credentials)
        image = want.live_image if isinstance(want, ColorPin) else want
        old, total = strategies.still_counts(snap, self.deck, service, image)
        return f"{service}: {old} of {total} instances still run the old image (nothing in {self.env} replaces them)"

    async def _refresh_back(self, chosen: dict[str, strategies.Strategy], cause: BaseException) -> None:
        """Stop every strategy, then put the previous pins back and apply them (best effort; a second
        Ctrl-C ends it, and the lock then names the interrupted operation)."""
        stopped = [line for line in [await s.stop() for s in chosen.values()] if line]
        if not any(isinstance(s, strategies.Refresh) for s in chosen.values()):
            return  # replace and plain instances: the apply ran to its end; verify is what failed
        step, self.step = self.step, "refresh back"
        with self.rep.phase("refresh back"):
            self.restore()
            back = await planning.plan(self.deck, self.env, self.rep, reuse=False, credentials=self.credentials)
            back_strategies = self.choose(back, list(chosen))
            for strategy in back_strategies.values():
                await strategy.before_apply()
            if back.summary.has_changes:
                await rollout.apply_plan(self.deck, self.env, back, self.rep, self.credentials)
            await all_or_nothing(*(s.after_apply() for s in back_strategies.values()))
        self.restored, self.step = True, step  # the error names the step the rollout stopped at
        what = "; ".join(stopped) or str(cause) or "stopped"
        self.rep.log(f"{self.env}: {what}; refreshed back to the previous pins", "notice")
        self.run.note(stopped=what, refreshed_back=True)

    async def verify(self, expected: Mapping[str, fleet.Expected]) -> None:
        """The instances run what their pins say. Once applied the code follows the cloud: a slow
        instance is reported (``unverified``) after the commit, not a reason to leave pins behind."""
        with self.at("verify instances", phase=False):
            try:
                await fleet.wait_for_images(self.deck, self.env, expected, self.rep, credentials=self.credentials)
            except OpsdeckError as exc:
                self.unverified = exc

    async def commit(self, text: str, extra: list[str] | None = None) -> str:
        """Commit the pin files (and ``extra``) with ``text``, the operator's trailers and the anchor of
        the operation's audit record."""
        with self.at("commit"):
            if self.still:
                text += "\n" + "\n".join(self.still)
            if self.unverified is not None:
                text += f"\n\nunverified: {self.unverified}"
            who = await asyncio.to_thread(operator, self.deck)
            caller = self.run.record.who.get("aws", "") if self.run.record.who else ""
            text += f"\n\n{who.trailers(caller)}\n{anchor(self.deck, self.run.hash)}\n"
            return await asyncio.to_thread(self.deck.tools.git.commit, [*self.files, *(extra or [])], text)

    async def publish(self) -> tuple[bool, str]:
        with self.at("publish", phase=False):  # publishing reports its own push phase
            pushed, sha = await asyncio.to_thread(publish, self.deck, self.rep)
        self.run.note(pushed=pushed)
        return pushed, sha

    def finish(self, sha: str) -> None:
        """The closing record: the commit, and a release whose instances did not all come up as failed."""
        planning.forget_plan(self.deck, self.env)
        preplan.forget(self.deck, self.env)  # made for the pins before this release
        self.run.note(commit=sha)
        if self.strategies:
            self.run.note(rollouts={s: st.to_json() for s, st in self.strategies.items()})
        if self.unverified is not None:
            self.run.end_as("failed", f"verify instances: {self.unverified}")

    def result_notes(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.strategies:
            data["rollouts"] = {s: st.to_json() for s, st in self.strategies.items()}
        if self.still:
            data["still"] = list(self.still)
        return data
