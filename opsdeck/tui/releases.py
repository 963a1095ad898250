"""The releases controller: b, p, u, r and ! — bake, promote, deploy, roll back, and break-glass to a
protected (or frozen) environment; and the clock that ends break-glass and scales expired warm standbys to zero.

Each key runs its core operation from the registry (the runner chooses here or a worker) in the
operations pane. Protection is checked here for a clear notice, and again in core. Core's operation
types are imported on the first key press: the deck's first frame does not wait for them.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from textual import work
from textual.reactive import reactive

from opsdeck.errors import LockedError, OpsdeckError, RefusedError
from opsdeck.tui import keys
from opsdeck.tui.controller import Controller, DeckContext
from opsdeck.tui.header import DeckHeader

if TYPE_CHECKING:
    from opsdeck.core.engine.operation import DeployArgs, PromoteArgs, Ran, RollbackArgs
    from opsdeck.core.release.preplan import Ready
    from opsdeck.core.safety.breakglass import BreakGlass
    from opsdeck.tui.confirm import Confirmations

STANDBY_CHECK_SECONDS = 30  # how often the deck looks for warm standbys past their window


def released(result: Any, done: str) -> str:
    """The one-line summary of a release, or of the request it became (the environment takes approvals)."""
    from opsdeck.core.team.requests import Request

    if isinstance(result, Request):
        return (
            f"request {result.id}: {result.describe()} awaits {result.needed} approvals "
            f"(a to see it; approve it from another engineer's deck or `opsdeck approve {result.id}`)"
        )
    return f"{done}: {result.summary()}, commit {result.commit[:10]}"


class ReleasesController(Controller):
    BINDINGS = keys.bindings("bake", "promote", "deploy_newest", "rollback", "break_glass")

    glass: reactive[BreakGlass | None] = reactive(None, init=False)  # this engineer's open break-glass

    def __init__(self, ctx: DeckContext, **kwargs: Any) -> None:
        super().__init__(ctx, **kwargs)
        self._confirm: Confirmations | None = None
        self._ahead_due = False  # inputs may have changed since the pre-planner last ran
        self._planning_ahead = False  # its worker runs (a thread worker is not stopped by a new one)

    @property
    def confirm(self) -> Confirmations:
        if self._confirm is None:
            from opsdeck.tui.confirm import Confirmations

            self._confirm = Confirmations(self.app, self.ctx)
        return self._confirm

    def watch_glass(self, glass: BreakGlass | None) -> None:
        self.query_one(DeckHeader).glass = glass

    def _services(self) -> list[str] | None:
        """The services an operation acts on: the one the deck is filtered to, else all of them."""
        chosen = self.table.service
        return [chosen] if chosen else None

    def _named(self) -> str:
        return f" {self.table.service}" if self.table.service else ""

    def _glass_for(self, env: str) -> BreakGlass | None:
        glass = self.glass
        return glass if glass is not None and glass.env == env else None

    def _allowed(self, env: str, what: str) -> bool:
        """The clear notice for a protected environment; core refuses on its own too. One that takes
        approvals turns the change into a request instead (break-glass bypasses)."""
        settings = self.deck.env(env)
        glass = self.glass
        if settings.approvals:
            return True
        if settings.protected and (glass is None or glass.env != env or not glass.active()):
            self.notify(f"{env} is protected: {what} needs break-glass (press !)", severity="error", timeout=8)
            return False
        return True

    # -- the keys ---------------------------------------------------------------------------------

    def action_bake(self) -> None:
        if self.refused_read_only():
            return
        from opsdeck.core.engine.operation import BakeArgs

        def summary(baked: Ran[list[dict[str, Any]]]) -> str:
            images = ", ".join(f"{r['service'] or 'base'} {r['version']}" for r in baked.result)
            return f"baked {images}" + (f" on {baked.worker}" if baked.worker else "")

        self.run(f"bake{self._named()}", None, "bake", BakeArgs(self._services()), summary)

    def action_promote(self) -> None:
        env = self.selected()
        if env is None or self.refused_read_only():
            return
        target = self.deck.config.next_env(env)
        if target is None:
            self.notify(f"no environment promotes from {env}", severity="warning")
            return
        dst = target.name
        if not self._allowed(dst, "promote"):
            return
        from opsdeck.core.engine.operation import PromoteArgs

        what = PromoteArgs(env, dst, self._services(), self._reason(dst))
        self._release(f"promote{self._named()} → {dst}", "promote", what, f"promoted {dst}")

    def action_deploy_newest(self) -> None:
        env = self.selected()
        if env is None or self.refused_read_only():
            return
        if self.deck.env(env).promote_from:
            self.notify(f"{env} takes images from {self.deck.env(env).promote_from} only", severity="warning")
            return
        if not self._allowed(env, "deploy"):
            return
        from opsdeck.core.engine.operation import DeployArgs

        what = DeployArgs(env, self._services(), self._reason(env))
        self._release(f"deploy{self._named()} → {env}", "deploy", what, f"deployed to {env}")

    def action_rollback(self) -> None:
        env = self.selected()
        if env is None or self.refused_read_only() or not self._allowed(env, "rollback"):
            return
        from opsdeck.core.engine.operation import RollbackArgs

        what = RollbackArgs(env, self._services(), reason=self._reason(env))
        self._release(f"rollback{self._named()} {env}", "rollback", what, f"rolled {env} back")

    def _reason(self, env: str) -> str:
        glass = self._glass_for(env)
        return glass.reason if glass else ""

    def _release(self, title: str, operation: str, what: PromoteArgs | DeployArgs | RollbackArgs, done: str) -> None:
        """A release wherever the runner sends it; under this engineer's break-glass, here, with its reason.
        From a current pre-made plan, its confirmation (or its request) at once."""
        if what.env in self.operations.running:
            self.notify(f"{what.env} is busy: {self.operations.running[what.env]} is running", severity="warning")
            return
        if any(w.group == "change-key" and not w.is_finished for w in self.workers):
            return  # the key pressed twice: its plan made ahead is being looked up, or confirmed
        self._change_key(title, operation, what, done)

    @work(group="change-key", exit_on_error=False)
    async def _change_key(
        self, title: str, operation: str, what: PromoteArgs | DeployArgs | RollbackArgs, done: str
    ) -> None:
        """Look the pre-made plan up off the loop; confirm it here, then apply exactly it (core checks again,
        under the lock, that it is still current). With none, plan as the release does, and say so."""
        glass, ask, env = self._glass_for(what.env), self.confirm.preview, what.env
        ready = await asyncio.to_thread(self._ready, operation, what, glass)
        summary = lambda ran: released(ran.result, done)  # noqa: E731
        if ready is None:
            if self._plans_ahead(operation, env, glass):
                self.notify(f"no plan made ahead for {env}: planning now", timeout=4)
            self.run(title, env, operation, what, summary, confirm=ask, glass=glass)
            return
        if ready.pre.refused:
            self.notify(f"the plan made ahead for {env} is refused: {ready.pre.refused}", severity="error", timeout=12)
            return
        if not ready.request:  # a request is filed from the plan itself: nothing to confirm here
            from opsdeck.core.safety.operation import preflight, refuse

            try:  # a freeze or a lock refuses at the key, as it does when the key plans first
                await asyncio.to_thread(preflight, self.deck, env, operation, glass)
            except (RefusedError, LockedError) as exc:
                await asyncio.to_thread(refuse, self.deck, operation, env, exc, reason=what.reason, preplanned=True)
                self.notify(str(exc), title=f"{operation} refused", severity="error", timeout=12)
                return
            screen = self.confirm.screen_for(ready.preview)
            if screen is not None and not await self.app.push_screen_wait(screen):
                from opsdeck.core.safety.confirm import NotConfirmedError

                said = NotConfirmedError(f"{operation} of {env} was not confirmed; nothing changed")
                await asyncio.to_thread(refuse, self.deck, operation, env, said, reason=what.reason, preplanned=True)
                self.notify(str(said), timeout=4)  # audited as an attempt, as a release's own "no" is
                return
        self.run(title, env, operation, what, summary, confirm=ask, glass=glass, preplanned=ready.pre)

    def _plans_ahead(self, operation: str, env: str, glass: BreakGlass | None) -> bool:
        """Whether the pre-planner makes this key's plan: not a blue/green rollback (its switch back is
        prepared after each release), not with the job engine (a worker plans its own)."""
        if operation == "rollback" and env and self.deck.env(env).blue_green:
            return False
        from opsdeck.core.engine.settings import broker_url

        try:
            return glass is not None or not broker_url(self.deck)
        except OpsdeckError:
            return False

    def _ready(self, operation: str, what: Any, glass: BreakGlass | None) -> Ready | None:
        """The current pre-made plan of exactly what the key asks (blocking: no Terraform)."""
        if not self._plans_ahead(operation, what.env, glass):
            return None
        from opsdeck.core.release.preplan import ready_for

        src = getattr(what, "src", "")
        return ready_for(
            self.deck, operation, what.env, src=src, services=what.services, reason=what.reason, in_glass=bool(glass)
        )

    # -- planned ahead ----------------------------------------------------------------------------

    def plan_ahead(self) -> None:
        """Inputs may have changed (the deck started, an operation ended, a refresh brought new state):
        pre-plan what the change keys would need, now if the deck is idle, else once it is."""
        if not self.ctx.live or self.ctx.read_only or not self._plans_ahead("deploy", "", None):
            return  # with the job engine, releases plan on their workers (break-glass ones plan here)
        self._ahead_due = True
        self._start_ahead()

    def _idle(self) -> bool:
        """No operation runs, no refresh of the deck's state either (its plans would share the cores), and
        no modal is open; read from the pre-planner's thread too."""
        from textual.screen import ModalScreen

        if self.operations.busy or self.ctx.closing.is_set() or isinstance(self.app.screen, ModalScreen):
            return False
        return not any(w.group == "state" and not w.is_finished for w in list(self.app.workers))

    def _start_ahead(self) -> None:
        if self._ahead_due and not self._planning_ahead and self._idle():
            self._ahead_due, self._planning_ahead = False, True
            self._ahead()

    @work(thread=True, group="plan-ahead", exit_on_error=False)
    def _ahead(self) -> None:
        """The registry's preplan operation, one environment at a time; it stops when an operation starts
        (then it runs again once the deck is idle). Discreet: the header says which keys are ready."""
        from opsdeck.core.engine import registry
        from opsdeck.core.engine.operation import Call, EnvsArgs
        from opsdeck.core.events import Reporter
        from opsdeck.core.release.preplan import ready_keys

        def busy() -> bool:
            stop = not self._idle()
            self._ahead_due = self._ahead_due or stop  # what it did not reach is planned later
            return stop

        async def preplan() -> None:
            await registry.PREPLAN.here(self.deck, EnvsArgs(None), Reporter("preplan"), Call(busy=busy))

        try:
            asyncio.run(preplan())
            ready = ready_keys(self.deck)
        except OpsdeckError:
            ready = {}  # an unreachable cloud, a refused release...: the keys plan as without it
        finally:
            self._planning_ahead = False
        if not self.ctx.closing.is_set():
            self.app.call_from_thread(self._show_ahead, ready)

    def _show_ahead(self, ready: dict[str, list[str]]) -> None:
        """The header names each row's keys that are ready (a promotion's on the row it is pressed on)."""
        if not self.is_attached:
            return
        rows: dict[str, list[str]] = {}
        for env, actions in ready.items():
            for action in actions:
                src = self.deck.env(env).promote_from if action == "promote" else env
                rows.setdefault(src or env, []).append(action)
        self.query_one(DeckHeader).ahead = rows

    # -- break-glass ------------------------------------------------------------------------------

    def action_break_glass(self) -> None:
        env = self.selected()
        if env is None or self.refused_read_only():
            return
        state = self.table.state
        row = state.env(env) if state is not None else None  # a frozen row takes break-glass too
        if not self.deck.env(env).protected and not (row is not None and row.freeze):
            self.notify(
                f"{env} is not protected; break-glass is only for protected (or frozen) environments",
                severity="warning",
            )
            return
        from opsdeck.tui.screens import ReasonScreen

        minutes = self.deck.config.safety.break_glass_minutes
        prompt = f"Elevated credentials for {env} from your keyring, for {minutes} minutes. Why?"

        def opened(reason: str | None) -> None:
            if reason:
                self._open_glass(env, reason)

        self.app.push_screen(ReasonScreen(f"BREAK-GLASS · {env}", prompt), opened)

    @work(exclusive=True, group="break-glass", exit_on_error=False)
    async def _open_glass(self, env: str, reason: str) -> None:
        from opsdeck.core.engine import registry, runner
        from opsdeck.core.engine.operation import GlassArgs
        from opsdeck.core.events import Reporter

        ran = await runner.run(self.deck, registry.BREAK_GLASS, GlassArgs(env, reason), Reporter("break-glass", env))
        self.glass = glass = ran.result
        self.query_one(DeckHeader).now = self.ctx.clock()
        self.notify(
            f"break-glass open for {glass.env} with credentials from {glass.source}; every action is audited with "
            "your reason",
            severity="warning",
            timeout=8,
        )

    def expire_break_glass(self) -> None:
        glass, self.glass = self.glass, None
        if glass is None:
            return
        self._close_glass(glass)
        self.notify(f"break-glass for {glass.env} expired; {glass.env} is read-only again", severity="warning")

    @work(thread=True, exclusive=True, group="break-glass-close", exit_on_error=False)
    def _close_glass(self, glass: BreakGlass) -> None:
        from opsdeck.core.safety.breakglass import close_break_glass

        close_break_glass(self.deck, glass, "expired")

    # -- the clock --------------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Every second: break-glass ends with its time box; every STANDBY_CHECK_SECONDS, warm standbys
        past their window are scaled to zero."""
        glass = self.glass
        if glass is not None and not glass.active(now):
            self.expire_break_glass()
        self._start_ahead()  # pre-planning that waited for the deck to be idle
        if self.ctx.live and int(now) % STANDBY_CHECK_SECONDS == 0:
            self.expire_standbys()

    def expire_standbys(self) -> None:
        """An operation on the timeline like any other; an environment that is busy is tried again later."""
        if self.ctx.read_only:
            return
        from opsdeck.core.release import standby

        for settings in self.deck.config.environments:
            name = settings.name
            if not settings.blue_green or name in self.operations.running:
                continue
            try:
                due = standby.due(self.deck, name)
            except OpsdeckError:
                continue
            if due:
                self._expire(name, ", ".join(f"{s} {p.idle}" for s, p in due.items()))

    def _expire(self, env: str, what: str) -> None:
        from opsdeck.core.engine.operation import EnvArgs

        summary = f"{env}: standby {what} scaled to zero (its window ended)"
        self.run(f"standby expire {env}", env, "standby-expire", EnvArgs(env), lambda ran: summary)
