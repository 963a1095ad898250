"""The blue/green rollout of one release: the whole environment's strategy, in the release's steps.

Its mechanics (pins, gates, switch plans, traffic) are core/release/bluegreen.py. Here is the order:
the new image is staged on each service's idle color (pin, plan, policy, confirm, apply), the color must
pass the health and smoke gates, then a switch plan moves traffic to it and the color that was live
stays warm. A rollback to a warm standby is the switch alone ("instant"). A gate that fails puts the
idle colors back as the ledger has them, and traffic never moved.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from opsdeck.core.estate.pins import ColorPin, write_color_pins
from opsdeck.core.events import Reporter
from opsdeck.core.model import PlanResult
from opsdeck.core.plans import planning
from opsdeck.core.release import bluegreen, bluegreen_gates, fleet, gates, rollout, traffic
from opsdeck.core.release.transaction import Release
from opsdeck.errors import OpsdeckError


@dataclass
class BlueGreen:
    """How a release moves blue/green services (see the module's docstring)."""

    name: ClassVar[str] = "blue-green"
    release: Release
    before: dict[str, ColorPin]  # the pins as the release found them
    staged: dict[str, ColorPin]  # the new images on the idle colors (empty when instant)
    final: dict[str, ColorPin]  # traffic switched (known up front only when instant)
    instant: bool
    smoke: bool
    traffic_moved_s: float | None = None  # an instant rollback: from the confirmation to traffic moved
    in_line: PlanResult | None = None  # the switch plan still to apply for Terraform's state, once committed

    @classmethod
    async def moving(cls, release: Release, images: dict[str, str], *, rollback: bool) -> BlueGreen:
        """A release of ``images`` (service -> image): staged on the idle colors, or, for a rollback back
        to the images the warm standbys still run, the switch alone."""
        before = await asyncio.to_thread(bluegreen.color_pins, release.deck, release.env, list(images))
        instant = rollback and all(before[s].warm() and before[s].idle_image == i for s, i in images.items())
        staged = {} if instant else {s: before[s].staged(i) for s, i in images.items()}
        minutes = release.deck.env(release.env).standby_minutes
        final = {s: p.switched(minutes) for s, p in before.items()} if instant else {}
        return cls(release, before, staged, final, instant, smoke=not rollback)

    @classmethod
    def from_request(cls, release: Release, services: list[str], *, smoke: bool) -> BlueGreen:
        """An approved request's pins, already written: its plan stages the idle colors, or (a switch back
        to a warm standby) is the switch itself."""
        deck, env = release.deck, release.env
        before = bluegreen.pins_in_texts(deck, env, release.originals, services)
        mine = bluegreen.color_pins(deck, env, services)
        instant = any(mine[s].live != before[s].live for s in services)
        return cls(release, before, {} if instant else mine, mine if instant else {}, instant, smoke)

    async def pin_and_plan(self) -> PlanResult:
        """Write the staged pins and plan them, or (instant) the switch back, prepared or planned now."""
        release = self.release
        if not self.instant:
            release.write_pins(self.staged)
            return await release.plan()
        with release.at("plan", phase=False):
            plan = await bluegreen.prepared_switch_back(release.deck, release.env, self.final)
            if plan is not None:
                release.rep.log("rollback: the switch back prepared at the release is still valid; applying it")
                await asyncio.to_thread(write_color_pins, release.deck, release.env, self.final)
                return plan
            return await bluegreen.plan_switch(
                release.deck, release.env, self.final, release.rep, credentials=release.credentials
            )

    def note(self) -> str:
        minutes = self.release.deck.env(self.release.env).standby_minutes
        if self.instant:
            return "instant: " + ", ".join(
                f"traffic back to {s}'s warm {p.idle} ({p.idle_image}); no instance launched"
                for s, p in self.before.items()
            )
        gates = "the health and smoke gates pass" if self.smoke else "its targets are healthy"
        verb = "stages on" if self.smoke else "brings up"
        return "blue/green: " + ", ".join(
            f"{s} {verb} {p.idle}, traffic switches once {gates}; {p.live} stays warm {minutes:g} min"
            for s, p in self.before.items()
        )

    async def roll(self, plan: PlanResult) -> dict[str, ColorPin]:
        """After the confirmation: stage, gate, switch (or, instant, the switch alone). Returns the pins
        as switched."""
        if self.instant:
            await self._roll_back(plan)
        else:
            await self._switch(await self._stage_and_gate(plan))
        return self.final

    async def _roll_back(self, plan: PlanResult) -> None:
        """Traffic back to the warm standby: by the load balancer's API when the switch plan says every
        rule it moves (its Terraform apply follows the commit), else by Terraform."""
        release = self.release
        deck, env, rep, credentials = release.deck, release.env, release.rep, release.credentials
        moves = traffic.moves_of(planning.shown_of(deck, plan))
        if moves is None:
            with release.at("health", phase=False):
                await bluegreen_gates.health_gate(deck, env, self.before, rep, credentials=credentials)
            await self._switch(plan)
            return
        started = time.monotonic()
        port = deck.tools.env(env, credentials).cloud
        with release.at("traffic moved"):
            await traffic.check_health(port, moves)
            release.applied = True  # from the first rule moved on, the pins follow the cloud
            try:
                await traffic.move(port, moves, rep)
            except OpsdeckError:
                await self._record_traffic()
                raise
        self.traffic_moved_s = time.monotonic() - started
        self.in_line = plan
        rep.log(f"{env}: traffic moved back in {self.traffic_moved_s:.2f}s; Terraform's state follows", "notice")

    async def _stage_and_gate(self, plan: PlanResult) -> PlanResult:
        """Stage the idle colors, then the health and smoke gates, while the switch is planned and
        policy-checked beside them (with variable files: the working tree keeps the staged pins until the
        gates pass). A gate that fails puts the idle colors back; traffic never moved. The switch plan."""
        release = self.release
        deck, env, rep, credentials = release.deck, release.env, release.rep, release.credentials
        planned: asyncio.Future[PlanResult] | None = None
        try:
            if plan.summary.has_changes:
                await release.apply(plan)
                release.applied = False  # staged only: the pins follow the cloud from the switch on
            planning.forget_plan(deck, env)
            self.final = {s: p.switched(deck.env(env).standby_minutes) for s, p in self.staged.items()}
            planned = asyncio.ensure_future(self._plan_switch())
            with release.at("health", phase=False):
                await bluegreen_gates.health_gate(deck, env, self.staged, rep, credentials=credentials)
            if self.smoke:
                with release.at("smoke", phase=False):
                    ran = await bluegreen_gates.smoke_gate(deck, env, self.staged, rep, credentials=credentials)
                if ran:
                    release.run.note(smoke=ran)
            with release.at("switch", phase=False):
                switch = await planned
                await asyncio.to_thread(write_color_pins, deck, env, self.final)
        except BaseException as exc:
            if planned is not None and not planned.done():
                planned.cancel()
                await asyncio.gather(planned, return_exceptions=True)
            if not isinstance(exc, asyncio.CancelledError):
                await self._put_back()  # nothing switched: traffic is where it was
            raise
        return switch

    async def _plan_switch(self) -> PlanResult:
        release = self.release
        switch = await bluegreen.plan_switch_ahead(
            release.deck, release.env, self.final, release.rep, credentials=release.credentials
        )
        # Beside the gates: the release's step stays theirs (an error names the gate, not this).
        verdict = await gates.policy(
            release.deck, release.env, switch, release.rep, break_glass=release.credentials is not None
        )
        if verdict is not None:
            release.run.note(switch_policy=verdict.to_json())
        return switch

    async def state_in_line(self) -> None:
        """After an instant rollback's commit: apply the switch plan whose moves the API made, so Terraform's
        state says what the cloud does (the next plan is clean). A failure here leaves traffic and the ledger
        right, and says how to finish it."""
        if self.in_line is None:
            return
        release = self.release
        try:
            with release.at("state in line"):
                await bluegreen.apply_switch(
                    release.deck, release.env, self.final, self.in_line, release.rep, credentials=release.credentials
                )
        except OpsdeckError as exc:
            release.run.note(state_in_line=str(exc))
            release.rep.log(
                f"{release.env}: traffic and the ledger are right, but Terraform's state is not in line ({exc}): "
                f"`opsdeck apply {release.env}` brings it in line",
                "warning",
            )
        finally:
            Path(self.in_line.planfile).unlink(missing_ok=True)
            self.in_line = None

    async def _switch(self, plan: PlanResult) -> None:
        release = self.release
        with release.at("switch", phase=False):
            release.applied = True  # from the first rule changed on, the pins follow the cloud
            try:
                await bluegreen.apply_switch(
                    release.deck, release.env, self.final, plan, release.rep, credentials=release.credentials
                )
            except OpsdeckError:
                await self._record_traffic()
                raise
            finally:
                Path(plan.planfile).unlink(missing_ok=True)  # a switch plan, made now or prepared: used once

    async def _record_traffic(self) -> None:
        """A switch that failed part way: the ledger takes the live colors the cloud's rules have, so git
        and traffic agree even before anyone looks (best effort: unlock does the same)."""
        try:
            await bluegreen.reconcile_traffic(self.release.deck, self.release.env, self.release.rep)
        except OpsdeckError as exc:
            self.release.rep.log(f"could not record where traffic is after the failed switch ({exc})", "error")

    async def _put_back(self) -> None:
        """A gate stopped the release after the idle colors were staged: return them to what the ledger
        says (the previous standby's image, warm or cold), so pins and cloud agree again."""
        release = self.release
        deck, env, rep, credentials = release.deck, release.env, release.rep, release.credentials
        try:
            with rep.phase("put back idle"):
                release.restore()
                back = await planning.plan(deck, env, rep, reuse=False, credentials=credentials)
                if back.summary.has_changes:
                    await rollout.apply_plan(deck, env, back, rep, credentials)
                planning.forget_plan(deck, env)
                await fleet.wait_for_images(deck, env, self.before, rep, credentials=credentials)
                rep.log(
                    "the idle colors are back as they were: "
                    + ", ".join(f"{s} {p.idle} {p.idle_image or 'empty'} ({p.standby})" for s, p in self.before.items())
                )
        except OpsdeckError as failed:  # the gate's refusal is what the engineer must see first
            release.applied = True  # the pins stay as staged: what the cloud may still run
            rep.log(f"could not put the idle colors back ({failed}); plan {env} to see what runs", "error")

    def traffic_lines(self) -> str:
        lines = []
        for service, pin in self.final.items():
            was = self.before.get(service)
            line = f"traffic: {service} {was.live if was else '?'} -> {pin.live}"
            if pin.standby == "warm" and pin.warm_until is not None:
                until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(pin.warm_until))
                line += f"; standby {pin.idle} ({pin.idle_image}) warm until {until}"
            lines.append(line)
        return "\n".join(lines)

    def follow_up(self, action: str) -> Callable[[Reporter], Awaitable[None]] | None:
        """What to do once the release is reported: prepare the switch back while the old color is warm,
        so a rollback shows its plan at once (a plan with variable files: no lock, no pin file touched).
        After a rollback the next thing is a fix, not a switch back: nothing."""
        release = self.release
        bluegreen.forget_prepared(release.deck, release.env)
        if not self.final or action == "rollback":
            return None
        deck, env, services, credentials = release.deck, release.env, list(self.final), release.credentials

        async def prepare(rep: Reporter) -> None:
            try:
                await bluegreen.prepare_switch_back(deck, env, services, rep, credentials=credentials)
            except OpsdeckError as exc:  # the release stands; a rollback will plan its switch itself
                bluegreen.forget_prepared(deck, env)
                rep.log(f"could not prepare the switch back ({exc}); a rollback will plan it", "warning")

        return prepare
