"""The panes for the selected environment: plan diff, drift detail, and the deck's images."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

if TYPE_CHECKING:
    from opsdeck.core.drift.store import DriftReport
    from opsdeck.core.model import PlanResult, ResourceChange

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


class DriftPane(Pane):
    def show(self, env: str, report: DriftReport | None) -> None:
        self.border_title = f"Drift · {env}"
        if report is None:
            self.body.update(Text("not checked yet: press d", style=Style(dim=True)))
            return
        if report.status == "clean":
            note = f" ({report.ignored} accepted in .driftignore)" if report.ignored else ""
            self.body.update(Text(f"clean{note}", style=Style(color=self.var("drift-clean"))))
            return
        warn = Style(color=self.var("drift-drifted"), bold=True)
        parts = []
        if report.managed:
            parts.append(Text(f"managed ({len(report.managed)})", style=warn))
            parts += [Text(f"  ~ {m['address']}  [{', '.join(m['attributes'])}]") for m in report.managed]
        if report.unmanaged:
            parts.append(Text(f"unmanaged ({len(report.unmanaged)})", style=warn))
            parts += [Text(f"  ? {u['type'].split(':')[-1]} {u['id']}") for u in report.unmanaged]
        if report.image:
            parts.append(Text(f"image ({len(report.image)})", style=warn))
            parts += [Text(f"  ! {i['instance']}\n      runs {i['image_id']}") for i in report.image]
        self.body.update(Group(*parts))


class ImagesPane(Pane):
    def show(self, images: list[dict[str, Any]] | None) -> None:
        self.border_title = "Images"
        if images is None:
            self.body.update(Text("loading…", style=Style(dim=True)))
            return
        lines = []
        for image in reversed([i for i in images if i["layer"] == "app"]):
            line = Text(
                f"{image['version']:<7} ",
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
