"""The deck's key map: one binding (with an id) per action, remappable from the user's config. A key that
runs a core operation names it: the registry says whether it changes anything.

`[keys]` in config.toml maps an action to a key (`promote = "P"`); it becomes a Textual keymap.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from textual.binding import Binding, BindingType

from opsdeck.errors import ConfigError


@dataclass(frozen=True)
class Action:
    name: str
    key: str
    description: str
    help: str
    operation: str = ""  # the core operation it runs (the registry's name): whether it changes anything
    show: bool = True

    @property
    def mutating(self) -> bool:
        """Changes something (the registry says): disabled, visibly, on a read-only deck."""
        from opsdeck.core.engine import registry  # asked only of a read-only deck: not on the start path

        return bool(self.operation) and registry.operation(self.operation).mutating


ACTIONS = (
    Action("bake", "b", "Bake", "bake a new image with the deck's Packer recipe", "bake"),
    Action("promote", "p", "Promote", "promote the selected environment's image to the next one", "promote"),
    Action(
        "deploy_newest",
        "u",
        "Deploy",
        "deploy the newest image to the selected environment (one without promote_from: sandbox, dev)",
        "deploy",
    ),
    Action("rollback", "r", "Rollback", "point the selected environment at the image it ran before", "rollback"),
    Action("requests", "a", "Requests", "changes waiting for approvals: approve, reject or run them"),
    Action("nuke", "n", "Nuke", "nuke and rebuild the selected sandbox from code", "nuke"),
    Action("refresh", "f", "Refresh", "refresh plans, images and instances", "refresh"),
    Action("drift", "d", "Drift", "check every environment for drift", "drift-check"),
    Action(
        "hygiene",
        "h",
        "Hygiene",
        "the selected environment's recovered copies, orphans (estimated cost) and changes outside the pipeline",
    ),
    Action("details", "enter", "Details", "the selected environment's plan, full screen", show=False),
    Action("filter", "slash", "Filter", "filter environments by name, account, region, image, version or drift"),
    Action("service", "s", "Service", "show and act on one service (each in turn, then all again)"),
    Action("theme", "t", "Theme", "switch to the next theme (your choice is saved)", show=False),
    Action(
        "break_glass", "exclamation_mark", "Break-glass", "elevated access to a protected environment", "break-glass"
    ),
    Action("help", "question_mark", "Help", "the key map"),
    Action("quit", "q", "Quit", "leave the deck"),
)
BINDINGS = [Binding(a.key, a.name, a.description, show=a.show, id=a.name) for a in ACTIONS]
ORDER = {a.name: i for i, a in enumerate(ACTIONS)}  # the footer's order, whoever owns each key


@functools.cache
def mutating() -> frozenset[str]:
    """The actions that change something: those a read-only deck disables."""
    return frozenset(a.name for a in ACTIONS if a.mutating)


def bindings(*names: str) -> list[BindingType]:
    """The bindings of the actions a part of the deck owns (each with its id: config.toml remaps it)."""
    unknown = set(names) - set(ORDER)
    if unknown:
        raise ValueError(f"no such deck actions: {', '.join(sorted(unknown))}")
    return [b for b in BINDINGS if b.id in names]


def keymap(remap: dict[str, str] | None) -> dict[str, str]:
    """A validated Textual keymap (binding id -> keys) from the user's [keys] table."""
    remap = dict(remap or {})
    known = {a.name for a in ACTIONS}
    for name in sorted(remap):
        if name not in known:
            raise ConfigError(f"config.toml: keys.{name}: unknown action (expected one of: {', '.join(sorted(known))})")
    used: dict[str, str] = {}
    for action in ACTIONS:
        key = remap.get(action.name, action.key)
        if key in used:
            raise ConfigError(f"config.toml: keys.{action.name}: {key!r} is already the key of {used[key]}")
        used[key] = action.name
    return remap
