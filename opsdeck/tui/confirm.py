"""Confirmations a running operation asks for: from its worker thread to a modal on screen and back.

Core asks before it changes anything (a release's plan, a nuke-and-rebuild's inventory); the worker that
runs it waits for the person's answer here. The deck closing is a "no": nothing is confirmed by default.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import TYPE_CHECKING, Any

from textual.app import App
from textual.screen import ModalScreen

if TYPE_CHECKING:
    from opsdeck.core.safety.confirm import Preview
    from opsdeck.core.sandbox.nuke import NukePlan
    from opsdeck.tui.controller import DeckContext


class Confirmations:
    """Asks ``app``'s person, on behalf of operations running in worker threads."""

    def __init__(self, app: App[Any], ctx: DeckContext) -> None:
        self.app = app
        self.ctx = ctx

    def ask(self, screen: ModalScreen[Any]) -> Any:
        """Show ``screen`` and block this worker thread until it is dismissed (or the deck closes)."""
        answer: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.app.call_from_thread(self.app.push_screen, screen, answer.set_result)
        while not self.ctx.closing.is_set() and self.app.is_running:
            try:
                return answer.result(timeout=0.25)
            except concurrent.futures.TimeoutError:
                continue
        return None

    def _var(self, name: str) -> str:
        return self.app.theme_variables.get(name, "white")

    def screen_for(self, preview: Preview) -> ModalScreen[Any] | None:
        """The modal that confirms a release's or an apply's plan: typed for a protected environment or
        `approval = "typed"`; None when the environment asks for no confirmation."""
        from opsdeck.tui.screens import ConfirmScreen, preview_body

        env = self.ctx.deck.env(preview.environment)
        if preview.approval == "none" and not env.protected:
            return None
        typed = preview.environment if (preview.approval == "typed" or env.protected) else None
        colors = {"add": self._var("plan-create"), "del": self._var("plan-delete"), "warn": self._var("warning")}
        title = f"{preview.action} {preview.environment}" + ("  (PRODUCTION)" if env.protected else "")
        return ConfirmScreen(title, preview_body(preview, colors), typed=typed, danger=env.protected)

    async def preview(self, preview: Preview) -> bool:
        """Asked from an operation's worker thread."""
        screen = self.screen_for(preview)
        return screen is None or bool(await asyncio.to_thread(self.ask, screen))

    async def nuke(self, plan: NukePlan) -> bool:
        """What a nuke-and-rebuild destroys and deletes, confirmed by typing the sandbox's name."""
        from rich.text import Text

        from opsdeck.tui.screens import ConfirmScreen

        lines = [plan.summary(), ""] + [f"  destroy  {a}" for a in plan.managed]
        lines += [f"  delete   {r.type} {r.id}" for r in plan.unmanaged]
        lines += [f"  keep     {kept}" for kept in plan.kept]
        screen = ConfirmScreen(
            f"nuke and rebuild {plan.environment}",
            Text("\n".join(lines)),
            typed=plan.environment,
            danger=True,
            confirm_label="Nuke and rebuild",
        )
        return bool(await asyncio.to_thread(self.ask, screen))
