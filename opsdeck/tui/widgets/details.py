"""The panes for the selected environment: plan diff, drift detail, and the deck's images; `Details`
holds the three and loads what they show."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.style import Style
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Static

from opsdeck.errors import OpsdeckError
from opsdeck.tui.controller import TellsFailures

if TYPE_CHECKING:
    from opsdeck.core.drift.store import DriftReport
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.hygiene.store import EnvHygiene
    from opsdeck.core.model import DeckState, EnvStatus, PlanResult, ResourceChange

ACTION_ORDER = ("delete", "replace", "update", "create")
ACTION_LABEL = {"create": "+ create", "update": "~ update", "delete": "- destroy", "replace": "-/+ replace"}
ACTION_VAR = {"create": "plan-create", "update": "plan-update", "delete": "plan-delete", "replace": "plan-replace"}


class Pane(VerticalScroll):
    """A titled, scrollable pane holding one Static."""

    ALLOW_MAXIMIZE = True
    DEFAULT_CSS = """
    Pane { border: round $secondary; height: 1fr; }
    Pane:focus-within { border: round $primary; }
    """

    def __init__(self, title: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.border_title = title
        self.body = Static("", markup=False)

    def compose(self) -> ComposeResult:
        yield self.body

    def var(self, name: str, fallback: str = "white") -> str:
        return self.app.theme_variables.get(name, fallback)


class PlanPane(Pane):
    """The plan diff, grouped by action. Beside the table it shows the first resources; maximized, all."""

    SIDE_LIMIT = 30

    def show(self, env: str, plan: PlanResult | None, *, full: bool = False) -> None:
        self.border_title = f"Plan · {env}"
        if plan is None:
            self.body.update(Text("no plan yet: press f to refresh", style=Style(dim=True)))
            return
        if not plan.summary.has_changes:
            self.body.update(
                Text("no changes: the environment matches its code", style=Style(color=self.var("success")))
            )
            return
        s = plan.summary
        out = Text(f"{s.add} to add, {s.change} to change, {s.destroy} to destroy", style=Style(bold=True))
        shown = 0
        limit = None if full else self.SIDE_LIMIT
        for action in ACTION_ORDER:
            group = [r for r in plan.resources if r.action == action]
            if not group:
                continue
            color = Style(color=self.var(ACTION_VAR[action]), bold=True)
            out.append(f"\n{ACTION_LABEL[action]} ({len(group)})", style=color)
            for res in group:
                if limit is not None and shown >= limit:
                    break
                self._resource(out, res, color)
                shown += 1
        if limit is not None and len(plan.resources) > shown:
            out.append(f"\n… {len(plan.resources) - shown} more: enter shows the whole plan", style=Style(dim=True))
        self.body.update(out)  # one Text, not one renderable per line: 200-resource plans stay fast

    def _resource(self, out: Text, res: ResourceChange, color: Style) -> None:
        from opsdeck.tui.diff import change_text

        colors = {"add": self.var("plan-create"), "del": self.var("plan-delete")}
        out.append(f"\n  {res.address}", style=color)
        for change in res.changes:
            out.append("\n")
            out.append_text(change_text(change, res.action, colors, indent="      "))
        if not res.changes and res.attributes:
            out.append(f"\n      {', '.join(res.attributes)}", style=Style(dim=True))


class EnvPane(Pane):
    """The selected environment: where it runs, each service's image and instances, and its drift."""

    def _traffic(self, out: Text, traffic: dict[str, Any]) -> None:
        """Blue/green: the live color, and the warm standby with the time left in its window (`r` on
        this environment is then instant)."""
        out.append(f"{traffic.get('live', '?')} live ", style=Style(color=self.var("primary"), bold=True))
        standby = traffic.get("standby")
        if not standby:
            return
        left = ""
        if standby.get("until"):
            import calendar  # only for a warm standby's window

            seconds = calendar.timegm(time.strptime(standby["until"], "%Y-%m-%dT%H:%M:%SZ")) - time.time()
            left = f" {max(0, seconds) / 60:.0f}m" if seconds > 0 else " window ended"
        style = Style(color=self.var("success" if standby.get("warm") else "warning"))
        out.append(f"{standby['color']} warm{left} (r: instant) ", style=style)

    def show(self, env: EnvStatus | None, report: DriftReport | None, hygiene: EnvHygiene | None = None) -> None:
        if env is None:
            self.body.update(Text("", style=Style(dim=True)))
            return
        self.border_title = f"Environment · {env.name}"
        warn = Style(color=self.var("drift-drifted"), bold=True)
        out = Text(f"{env.account or '?'} · {env.region}", style=Style(bold=True))
        if env.promote_from:
            out.append(f"  ← {env.promote_from}", style=Style(dim=True))
        for service in env.services:
            out.append(f"\n{service.name:<8}", style=Style(bold=True))
            if service.image is None:
                out.append("no pin", style=Style(dim=True))
                continue
            out.append(f"{service.image.version or '?':<8}", style=Style(color=self.var("primary")))
            n = service.instances
            counts = Style(color=self.var("success" if n.healthy else "warning"))
            out.append(f"{n.on_pinned_image}/{n.running}/{n.desired} ", style=counts)
            if service.image.revoked:
                out.append("REVOKED ", style=Style(color=self.var("error"), bold=True))
            if service.traffic is not None:
                self._traffic(out, service.traffic)
            if service.lag is not None and not service.lag.in_sync:
                behind = f"{service.lag.behind} behind" if service.lag.behind else "differs from"
                out.append(f"{behind} {service.lag.source} ", style=Style(color=self.var("warning")))
                if service.lag.soak_needed:
                    left = service.lag.soak_left
                    soak = f"soak {left:.0f}m left " if left else "soaked "
                    out.append(soak, style=Style(color=self.var("warning" if left else "success")))
            out.append(service.image.id, style=Style(dim=True))
        if env.error:
            out.append(f"\n✗ {env.error}", style=Style(color=self.var("error")))
        out.append("\n")
        if report is None:
            out.append("\ndrift: not checked yet: press d", style=Style(dim=True))
        elif report.status == "clean":
            note = f" ({report.ignored} accepted in .driftignore)" if report.ignored else ""
            out.append(f"\ndrift: clean{note}", style=Style(color=self.var("drift-clean")))
        else:
            if report.managed:
                out.append(f"\nmanaged drift ({len(report.managed)})", style=warn)
                for m in report.managed:
                    out.append(f"\n  ~ {m['address']}  [{', '.join(m['attributes'])}]")
            if report.unmanaged:
                out.append(f"\nunmanaged ({len(report.unmanaged)})", style=warn)
                for u in report.unmanaged:
                    out.append(f"\n  ? {u['type'].split(':')[-1]} {u['id']}")
            if report.image:
                out.append(f"\nimage drift ({len(report.image)})", style=warn)
                for i in report.image:
                    out.append(f"\n  ! {i['instance']} runs {i['image_id']}")
        if hygiene is not None:
            self._hygiene(out, hygiene)
        self.body.update(out)

    def _hygiene(self, out: Text, h: EnvHygiene) -> None:
        """Recovered copies, orphans with their estimated cost, the last trail finding (h: the detail)."""
        from opsdeck.tui.hygiene import cost_line, finding_line

        dim, warn = Style(dim=True), Style(color=self.var("warning"))
        out.append("\n")
        if h.copies:
            regions = ", ".join(f"{c['region']}{'' if c.get('healthy') else ' (unhealthy)'}" for c in h.copies)
            out.append(f"\ncopies: {regions}", style=warn)
        out.append("\norphans: ", style=dim)
        out.append(cost_line(h), style=warn if h.orphans else dim)
        finding = h.last_finding
        if finding is not None:
            count = len((h.trail or {}).get("findings") or [])
            out.append(f"\ntrail: {count} outside the pipeline, last ", style=warn)
            out.append(finding_line(finding), style=warn)
        elif h.trail is not None:
            out.append("\ntrail: no changes outside the pipeline", style=Style(color=self.var("drift-clean")))


class ImagesPane(Pane):
    def show(self, images: list[dict[str, Any]] | None) -> None:
        self.border_title = "Images"
        if images is None:
            self.body.update(Text("loading…", style=Style(dim=True)))
            return
        lines = []
        apps = [i for i in images if i["layer"] == "app"]
        # A pipeline's image without a version is shown by its creation time, longer than a version.
        wide = max([7, *(len(i["version"]) for i in apps)])
        for image in reversed(apps):
            line = Text(
                f"{image.get('service') or '':<7} {image['version']:<{wide}} ",
                style=Style(bold=bool(image["environments"])),
                no_wrap=True,
                overflow="ellipsis",
            )
            line.append(f"{','.join(image['environments']) or '-':<14}", style=Style(color=self.var("primary")))
            if image["revoked"]:
                line.append("REVOKED ", style=Style(color=self.var("error"), bold=True))
            if image["base_outdated"]:
                line.append("old base ", style=Style(color=self.var("warning")))
            line.append(image["id"], style=Style(dim=True))
            lines.append(line)
        bases = [i for i in images if i["layer"] == "base"]
        if bases:
            newest = bases[-1]
            lines.append(
                Text(
                    f"base {newest['version']} (newest of {len(bases)}) {newest['id']}",
                    style=Style(dim=True),
                    no_wrap=True,
                    overflow="ellipsis",
                )
            )
        self.body.update(Group(*lines) if lines else Text("no images yet: press b to bake one"))


DETAILS_DELAY = 0.12  # seconds the cursor rests on a row before its details load


class Details(TellsFailures, Horizontal):
    """The selected environment's plan and environment, and the deck's images, side by side. The saved
    plan, drift report and hygiene of the row the cursor rests on load off the UI loop."""

    state: reactive[DeckState | None] = reactive(None)

    @dataclass
    class Loaded(Message, bubble=False):
        """The saved plan, drift report and hygiene of ``env``."""

        env: str
        plan: PlanResult | None
        drift: DriftReport | None
        hygiene: EnvHygiene | None = None

    def __init__(self, deck: Deck, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deck = deck
        self.loaded: Details.Loaded | None = None
        self._timer: Timer | None = None
        self._wanted: str | None = None

    def compose(self) -> ComposeResult:
        yield PlanPane("Plan", id="plan")
        yield EnvPane("Environment", id="env")
        yield ImagesPane("Images", id="images")

    def watch_state(self, state: DeckState | None) -> None:
        if state is not None:
            self.query_one(ImagesPane).show(list(state.images) if state.images else None)

    def select(self, env: str | None) -> None:
        """Load ``env``'s details once the cursor rests on it: scrolling or filtering through many rows
        loads only where it stops."""
        self._wanted = env
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(DETAILS_DELAY, lambda: self.load(self._wanted))

    def load(self, env: str | None) -> None:
        if self._timer is not None:
            self._timer.stop()
        if env is not None:
            self._load(env)

    @work(thread=True, exclusive=True, group="details", exit_on_error=False)
    def _load(self, env: str) -> None:
        from opsdeck.core.drift import store as drift_store
        from opsdeck.core.hygiene.store import env_hygiene
        from opsdeck.core.plans import planning

        try:
            hygiene = env_hygiene(self.deck, env)
        except OpsdeckError:
            hygiene = None  # a broken copy record: the hygiene view names it
        self.post_message(
            self.Loaded(env, planning.stored_plan(self.deck, env), drift_store.load(self.deck, env), hygiene)
        )

    def on_details_loaded(self, message: Details.Loaded) -> None:
        self.loaded = message
        pane = self.query_one(PlanPane)
        pane.show(message.env, message.plan, full=self.screen.maximized is pane)
        env = self.state.env(message.env) if self.state else None
        self.query_one(EnvPane).show(env, message.drift, message.hygiene)

    def toggle_full(self, env: str | None) -> None:
        """The plan full screen, or back beside the table; ``env``: the row under the cursor now (not the
        one the debounce was waiting on)."""
        if self._timer is not None:
            self.load(env)
        pane = self.query_one(PlanPane)
        if self.screen.maximized is pane:
            self.screen.minimize()
            full = False
        else:
            self.screen.maximize(pane, container=False)
            full = True
        if self.loaded is not None:
            pane.show(self.loaded.env, self.loaded.plan, full=full)
