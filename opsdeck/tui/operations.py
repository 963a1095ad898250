"""The deck's operations: each key starts one core operation in a worker, with its own progress.

One worker style: a thread worker runs the core coroutine with `asyncio.run`, so neither Terraform and
Packer subprocesses nor the blocking boto3 and git calls inside core ever run on the UI's loop. Core
events come back as OpEvent messages; a core confirmation (the plan to apply) opens a modal and the
worker waits for the answer. Protection is checked here for a clear notice, and again in core.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from textual import work
from textual.screen import ModalScreen

from opsdeck.errors import OpsdeckError
from opsdeck.tui.messages import OpDone, OpEvent

if TYPE_CHECKING:
    from opsdeck.core.events import Reporter
    from opsdeck.core.hygiene.store import EnvHygiene
    from opsdeck.core.safety.breakglass import BreakGlass
    from opsdeck.core.safety.confirm import Preview
    from opsdeck.tui.app import OpsDeckApp

Factory = Callable[["Reporter"], Awaitable[Any]]


def released(result: Any, done: str) -> str:
    """The one-line summary of a release, or of the request it became (the environment takes approvals)."""
    from opsdeck.core.team.requests import Request

    if isinstance(result, Request):
        return (
            f"request {result.id}: {result.describe()} awaits {result.needed} approvals "
            f"(a to see it; approve it from another engineer's deck or `opsdeck approve {result.id}`)"
        )
    return f"{done}: {result.summary()}, commit {result.commit[:10]}"


async def _awaited(work: Awaitable[Any]) -> Any:
    """``asyncio.run`` takes a coroutine; core operations are awaitables."""
    return await work


class Operations:
    """Mixed into OpsDeckApp: starting operations, confirming them, break-glass."""

    def init_operations(self) -> None:
        self.glass: BreakGlass | None = None
        self.running_envs: dict[str, str] = {}
        self.op_envs: dict[str, str | None] = {}
        self.closing = threading.Event()
        self.op_count = 0
        self.hygiene_scanning = False  # one hygiene scan at a time

    @property
    def _app(self) -> OpsDeckApp:
        return self  # type: ignore[return-value]

    # -- running ------------------------------------------------------------------------------

    def start(self, title: str, env: str | None, factory: Factory, summarize: Callable[[Any], str]) -> str | None:
        """Start an operation unless one already runs on ``env``; returns its key."""
        app = self._app
        if env is not None and env in self.running_envs:
            app.notify(f"{env} is busy: {self.running_envs[env]} is running", severity="warning")
            return None
        self.op_count += 1
        key = f"{title}#{self.op_count}"
        self.op_envs[key] = env
        if env is not None:
            self.running_envs[env] = title
            app.table.running = dict(self.running_envs)
            app.table.refresh_rows()
        from opsdeck.tui.widgets.ops import OperationsPane

        app.main(OperationsPane).start(key, title, env)
        self._run(key, title, env, factory, summarize)
        return key

    @work(thread=True, exit_on_error=False, group="operations")
    def _run(self, key: str, title: str, env: str | None, factory: Factory, summarize: Callable[[Any], str]) -> None:
        from opsdeck.core.events import Event, Reporter

        app = self._app

        def sink(event: Event) -> None:
            app.post_message(OpEvent(key, event))

        rep = Reporter(title, env, sink)
        try:
            result: Any = asyncio.run(_awaited(factory(rep)))
        except OpsdeckError as exc:
            app.post_message(OpDone(key, False, str(exc)))
        except Exception as exc:
            app.post_message(OpDone(key, False, f"internal error: {type(exc).__name__}: {exc}"))
        else:
            app.post_message(OpDone(key, True, summarize(result)))

    def finish_operation(self, message: OpDone) -> None:
        env = self.op_envs.pop(message.key, None)
        if env is not None:
            self.running_envs.pop(env, None)

    # -- confirmations: from a worker thread to a modal and back ------------------------------

    def ask(self, screen: ModalScreen[Any]) -> Any:
        """Show ``screen`` and block this worker thread until it is dismissed (or the deck closes)."""
        answer: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._app.call_from_thread(self._app.push_screen, screen, answer.set_result)
        while not self.closing.is_set() and self._app.is_running:
            try:
                return answer.result(timeout=0.25)
            except concurrent.futures.TimeoutError:
                continue
        return None

    async def confirm_preview(self, preview: Preview) -> bool:
        from opsdeck.tui.screens import ConfirmScreen, preview_body

        env = self._app.deck.env(preview.environment)
        typed = preview.environment if (preview.approval == "typed" or env.protected) else None
        colors = {"add": self._var("plan-create"), "del": self._var("plan-delete"), "warn": self._var("warning")}
        title = f"{preview.action} {preview.environment}" + ("  (PRODUCTION)" if env.protected else "")
        screen = ConfirmScreen(title, preview_body(preview, colors), typed=typed, danger=env.protected)
        if preview.approval == "none" and not env.protected:
            return True
        return bool(await asyncio.to_thread(self.ask, screen))

    def _var(self, name: str) -> str:
        return self._app.theme_variables.get(name, "white")

    # -- the keys -----------------------------------------------------------------------------

    def _selected(self) -> str | None:
        env = self._app.table.selected
        if env is None:
            self._app.notify("select an environment first", severity="warning")
        return env

    def _allowed(self, env: str, what: str) -> bool:
        """The clear notice for a protected environment; core refuses on its own too. One that takes
        approvals turns the change into a request instead (break-glass bypasses)."""
        settings = self._app.deck.env(env)
        glass = self.glass
        if settings.approvals:
            return True
        if settings.protected and (glass is None or glass.env != env or not glass.active()):
            self._app.notify(f"{env} is protected: {what} needs break-glass (press !)", severity="error", timeout=8)
            return False
        return True

    def _glass_for(self, env: str) -> BreakGlass | None:
        glass = self.glass
        return glass if glass is not None and glass.env == env else None

    def expire_standbys(self) -> None:
        """The deck's clock: a warm standby whose window has ended is scaled to zero (an operation on the
        timeline like any other; an environment that is busy is tried again on a later tick)."""
        app = self._app
        if app.read_only:
            return
        from opsdeck.core.release import standby
        from opsdeck.errors import OpsdeckError

        deck = app.deck
        for settings in deck.config.environments:
            name = settings.name
            if not settings.blue_green or name in self.running_envs:
                continue
            try:
                due = standby.due(deck, name)
            except OpsdeckError:
                continue
            if due:
                self._expire(name, ", ".join(f"{s} {p.idle}" for s, p in due.items()))

    def _expire(self, env: str, what: str) -> None:
        from opsdeck.core.release import standby

        deck = self._app.deck
        self.start(
            f"standby expire {env}",
            env,
            lambda rep: standby.expire(deck, env, rep),
            lambda r: f"{env}: standby {what} scaled to zero (its window ended)",
        )

    def _refuse_if_read_only(self) -> bool:
        if self._app.read_only:
            self._app.notify("the deck is read-only (--read-only)", severity="error")
        return self._app.read_only

    def _services(self) -> list[str] | None:
        """The services an operation acts on: the one the deck is filtered to, else all of them."""
        chosen = self._app.service_filter
        return [chosen] if chosen else None

    def _named(self) -> str:
        return f" {self._app.service_filter}" if self._app.service_filter else ""

    def action_bake(self) -> None:
        if self._refuse_if_read_only():
            return
        from opsdeck.core.engine import registry, runner
        from opsdeck.core.engine.operation import BakeArgs, Ran

        services = self._services()

        def summary(baked: Ran[list[dict[str, Any]]]) -> str:
            images, worker = baked.result, baked.worker
            return (
                "baked "
                + ", ".join(f"{r['service'] or 'base'} {r['version']}" for r in images)
                + (f" on {worker}" if worker else "")
            )

        what = BakeArgs(services)
        self.start(
            f"bake{self._named()}", None, lambda rep: runner.run(self._app.deck, registry.BAKE, what, rep), summary
        )

    def action_promote(self) -> None:
        env = self._selected()
        if env is None or self._refuse_if_read_only():
            return
        target = self._app.deck.config.next_env(env)
        if target is None:
            self._app.notify(f"no environment promotes from {env}", severity="warning")
            return
        self._promote(env, target.name)

    def action_deploy_newest(self) -> None:
        env = self._selected()
        if env is None or self._refuse_if_read_only():
            return
        if self._app.deck.env(env).promote_from:
            self._app.notify(f"{env} takes images from {self._app.deck.env(env).promote_from} only", severity="warning")
            return
        if not self._allowed(env, "deploy"):
            return
        services = self._services()
        self.start(
            f"deploy{self._named()} → {env}",
            env,
            lambda rep: self._release("deploy", env, rep, services),
            lambda r: released(r, f"deployed to {env}"),
        )

    def _promote(self, src: str, dst: str) -> None:
        if not self._allowed(dst, "promote"):
            return
        services = self._services()
        self.start(
            f"promote{self._named()} → {dst}",
            dst,
            lambda rep: self._release("promote", dst, rep, services, src=src),
            lambda r: released(r, f"promoted {dst}"),
        )

    def action_rollback(self) -> None:
        env = self._selected()
        if env is None or self._refuse_if_read_only() or not self._allowed(env, "rollback"):
            return
        services = self._services()
        self.start(
            f"rollback{self._named()} {env}",
            env,
            lambda rep: self._release("rollback", env, rep, services),
            lambda r: released(r, f"rolled {env} back"),
        )

    async def _release(self, action: str, env: str, rep: Reporter, services: list[str] | None, *, src: str = "") -> Any:
        """A release from the deck, wherever the runner sends it (break-glass releases run here, under
        this engineer's glass, with its reason)."""
        from opsdeck.core.engine import registry, runner
        from opsdeck.core.engine.operation import DeployArgs, PromoteArgs, RollbackArgs

        glass = self._glass_for(env)
        reason = glass.reason if glass else ""
        deck, ask = self._app.deck, self.confirm_preview
        if action == "promote":
            ran: Any = await runner.run(
                deck, registry.PROMOTE, PromoteArgs(src, env, services, reason), rep, confirm=ask, glass=glass
            )
        elif action == "rollback":
            what = RollbackArgs(env, services, reason=reason)
            ran = await runner.run(deck, registry.ROLLBACK, what, rep, confirm=ask, glass=glass)
        else:
            ran = await runner.run(
                deck, registry.DEPLOY, DeployArgs(env, services, reason), rep, confirm=ask, glass=glass
            )
        return ran.result

    def action_nuke(self) -> None:
        env = self._selected()
        if env is None or self._refuse_if_read_only():
            return
        if not self._app.deck.env(env).sandbox:
            self._app.notify(
                f"nuke-and-rebuild is only for sandbox environments; {env} is not one", severity="error", timeout=8
            )
            return
        from opsdeck.core.engine import registry, runner
        from opsdeck.core.engine.operation import EnvArgs

        def summary(done: Any) -> str:
            r, worker = done.result, done.worker
            return (
                f"nuked and rebuilt {env}: -{r.destroyed} managed, -{r.unmanaged_deleted} strays, "
                f"+{r.created} ({r.seconds:.0f}s{f' on {worker}' if worker else ''})"
            )

        self.start(
            f"nuke {env}",
            env,
            lambda rep: runner.run(self._app.deck, registry.NUKE, EnvArgs(env), rep, confirm=self._confirm_nuke),
            summary,
        )

    async def _confirm_nuke(self, plan: Any) -> bool:
        from rich.text import Text

        from opsdeck.tui.screens import ConfirmScreen

        lines = [plan.summary(), ""] + [f"  destroy  {a}" for a in plan.managed]
        lines += [f"  delete   {r.type} {r.id}" for r in plan.unmanaged]
        screen = ConfirmScreen(
            f"nuke and rebuild {plan.environment}",
            Text("\n".join(lines)),
            typed=plan.environment,
            danger=True,
            confirm_label="Nuke and rebuild",
        )
        return bool(await asyncio.to_thread(self.ask, screen))

    def action_refresh(self) -> None:
        if not self._app.live:
            return
        from opsdeck.core.engine import registry, runner
        from opsdeck.core.engine.operation import RefreshArgs

        def summary(ran: Any) -> str:
            r = ran.result
            workers = sorted({w for w in r.workers.values() if w})
            return f"refreshed {len(r.plans)} plans in {r.seconds:.1f}s" + (
                f" on {', '.join(workers)}" if workers else ""
            )

        what = RefreshArgs(with_drift=False)
        self.start("refresh", None, lambda rep: runner.run(self._app.deck, registry.REFRESH, what, rep), summary)

    def action_drift(self) -> None:
        from opsdeck.core.drift.check import check

        def summary(reports: list[Any]) -> str:
            drifted = [r.name for r in reports if r.status == "drifted"]
            return f"drift: {', '.join(drifted)} drifted" if drifted else "drift: every environment is clean"

        self.start("drift", None, lambda rep: check(self._app.deck, None, rep), summary)

    def action_break_glass(self) -> None:
        env = self._selected()
        if env is None or self._refuse_if_read_only():
            return
        if not self._app.deck.env(env).protected:
            self._app.notify(
                f"{env} is not protected; break-glass is only for protected environments", severity="warning"
            )
            return
        from opsdeck.tui.screens import ReasonScreen

        minutes = self._app.deck.config.safety.break_glass_minutes
        prompt = f"Elevated credentials for {env} from your keyring, for {minutes} minutes. Why?"

        def opened(reason: str | None) -> None:
            if reason:
                self._open_glass(env, reason)

        self._app.push_screen(ReasonScreen(f"BREAK-GLASS · {env}", prompt), opened)

    @work(thread=True, exit_on_error=False, group="break-glass")
    def _open_glass(self, env: str, reason: str) -> None:
        from opsdeck.core.safety.breakglass import open_break_glass

        app = self._app
        try:
            glass = open_break_glass(app.deck, env, reason)
        except OpsdeckError as exc:
            app.call_from_thread(app.notify, str(exc), severity="error", timeout=10)
            return
        app.call_from_thread(self._glass_opened, glass)

    def _glass_opened(self, glass: BreakGlass) -> None:
        self.glass = glass
        self._app.tick()
        self._app.notify(
            f"break-glass open for {glass.env} with credentials from {glass.source}; every action is audited with "
            "your reason",
            severity="warning",
            timeout=8,
        )

    def expire_break_glass(self) -> None:
        glass, self.glass = self.glass, None
        if glass is None:
            return
        self._app.header.glass = None
        self._close_glass(glass)
        self._app.notify(f"break-glass for {glass.env} expired; {glass.env} is read-only again", severity="warning")

    @work(thread=True, exit_on_error=False, group="break-glass")
    def _close_glass(self, glass: BreakGlass) -> None:
        from opsdeck.core.safety.breakglass import close_break_glass

        close_break_glass(self._app.deck, glass, "expired")

    # -- hygiene: recovered copies, orphans and their cost, changes outside the pipeline --------

    def action_hygiene(self) -> None:
        env = self._app.table.selected
        if env is None:
            self._app.notify("no environment selected", timeout=3)
            return
        self._open_hygiene(env)

    @work(thread=True, exclusive=True, group="hygiene", exit_on_error=False)
    def _open_hygiene(self, env: str) -> None:
        from opsdeck.core.hygiene.store import env_hygiene

        app = self._app
        try:
            hygiene = env_hygiene(app.deck, env)
        except OpsdeckError as exc:
            app.call_from_thread(app.notify, str(exc), severity="error", timeout=10)
            return
        app.call_from_thread(self._show_hygiene, hygiene)

    def _show_hygiene(self, hygiene: EnvHygiene) -> None:
        from opsdeck.tui.hygiene import HygieneScreen

        screen = self._app.screen
        if isinstance(screen, HygieneScreen) and screen.hygiene.env == hygiene.env:
            screen.scanned(hygiene)
        elif not isinstance(screen, HygieneScreen):
            tab = "orphans" if hygiene.orphans and not hygiene.copies else "copies"
            self._app.push_screen(HygieneScreen(hygiene, tab))

    def _hygiene_scanned(self, env: str, hygiene: EnvHygiene | None) -> None:
        """A scan's result goes to the view it was asked from, if that view is still open (never a new
        one on top of whatever is there now); the environment pane reloads either way."""
        from opsdeck.tui.hygiene import HygieneScreen

        self.hygiene_scanning = False
        for screen in self._app.screen_stack:
            if isinstance(screen, HygieneScreen) and screen.hygiene.env == env:
                screen.scanned(hygiene or screen.hygiene)
        self._app.load_details()

    def scan_hygiene(self, env: str) -> bool:
        """Start a scan unless one runs (a closed and reopened view does not start a second)."""
        if self.hygiene_scanning:
            self._app.notify("a hygiene scan is already running", timeout=3)
            return False
        self.hygiene_scanning = True
        self._scan_hygiene(env)
        return True

    @work(thread=True, exclusive=True, group="hygiene-scan", exit_on_error=False)
    def _scan_hygiene(self, env: str) -> None:
        """Scan for orphans everywhere the deck knows and read every configured trail (read-only), keep
        both for the panes, then show ``env``'s again."""
        import asyncio
        from datetime import timedelta

        from opsdeck.core.events import Reporter
        from opsdeck.core.hygiene import store
        from opsdeck.core.hygiene.orphans import find_orphans
        from opsdeck.core.hygiene.trail import read_trail, trail_envs

        app = self._app
        problems: list[str] = []
        hygiene = None
        try:
            try:
                store.save_orphans(app.deck, asyncio.run(find_orphans(app.deck, Reporter("orphans"))))
            except OpsdeckError as exc:
                problems.append(f"orphans: {exc}")
            if trail_envs(app.deck):
                try:
                    reports = asyncio.run(read_trail(app.deck, None, timedelta(hours=24), Reporter("trail")))
                    problems += [f"trail of {r.name} not read: {r.error}" for r in reports if r.error]
                except OpsdeckError as exc:
                    problems.append(f"trail: {exc}")
            hygiene = store.env_hygiene(app.deck, env)
        except Exception as exc:  # whatever went wrong is said, and the view stops saying "scanning"
            problems.append(f"hygiene scan: {type(exc).__name__}: {' '.join(str(exc).split())}")
        finally:
            for problem in problems:
                app.call_from_thread(app.notify, problem, severity="error", timeout=10)
            app.call_from_thread(self._hygiene_scanned, env, hygiene)

    # -- requests: changes waiting for approvals ------------------------------------------------

    def action_requests(self) -> None:
        self.open_requests()

    @work(thread=True, exclusive=True, group="requests", exit_on_error=False)
    def open_requests(self, reload_only: bool = False) -> None:
        """Read the ledger's requests (signatures checked) off the UI loop, then show them."""
        from opsdeck.core.team.remote import latest
        from opsdeck.core.team.requests import all_requests

        app = self._app
        try:
            ledger = latest(app.deck)  # the team's requests, not only the ones this clone has
            if ledger.offline or ledger.behind:
                app.call_from_thread(
                    app.notify, f"requests as this clone has them: {ledger.describe()}", severity="warning"
                )
            rows = [r.to_json() for r in all_requests(app.deck)]
        except OpsdeckError as exc:
            app.call_from_thread(app.notify, str(exc), severity="error", timeout=10)
            return
        open_first = sorted(rows, key=lambda r: (r["status"] not in ("pending", "approved", "stale"), -r["created_at"]))
        app.call_from_thread(self._show_requests, open_first, reload_only)

    def _show_requests(self, rows: list[dict[str, Any]], reload_only: bool) -> None:
        from opsdeck.tui.requests import RequestsScreen

        screen = self._app.screen
        if isinstance(screen, RequestsScreen):
            screen.show(rows)
        elif not reload_only:
            self._app.push_screen(RequestsScreen(rows))

    def approve_request(self, request_id: str) -> None:
        if self._refuse_if_read_only():
            return
        from opsdeck.core.team.approvals import approve

        self.start(
            f"approve {request_id}",
            None,
            lambda rep: approve(self._app.deck, request_id, rep),
            lambda r: f"approved {r.id}: {len(r.valid_approvers)}/{r.needed} approvals, {r.status}",
        )

    def reject_request(self, request_id: str, reason: str) -> None:
        if self._refuse_if_read_only():
            return
        from opsdeck.core.team.approvals import reject

        self.start(
            f"reject {request_id}",
            None,
            lambda rep: reject(self._app.deck, request_id, reason, rep),
            lambda r: f"rejected {r.id}: {reason}",
        )

    def execute_request(self, request_id: str) -> None:
        if self._refuse_if_read_only():
            return
        from opsdeck.core.team.execute import execute

        self.start(
            f"execute {request_id}",
            None,
            lambda rep: execute(self._app.deck, request_id, rep, confirm=self.confirm_preview),
            lambda r: f"executed {request_id}: {r.action} {r.environment} {r.summary()}, commit {r.commit[:10]}",
        )
