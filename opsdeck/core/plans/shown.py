"""Reading `terraform show -json` of a saved plan: counts, resources and their changed attributes.

Terraform's JSON plan gives each resource's before and after values and marks what is known only after
apply (``after_unknown``). An attribute counts as changed when its known value differs, or when it
becomes unknown and is one the configuration sets (or forces replacement); computed attributes that
merely turn unknown on replacement (arn, id, ...) are not listed. Sensitive values are masked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from opsdeck.core.model import AttributeChange, PlanResult, PlanSummary, ResourceChange

SENSITIVE = "(sensitive value)"  # as Terraform prints a masked value
UNKNOWN = "(known after apply)"
VALUE_WIDTH = 48
IGNORED_ACTIONS = {("no-op",), ("read",)}


def _config_keys(configuration: dict[str, Any]) -> dict[str, set[str]]:
    """Resource address in config (module path + type.name) -> attribute names the config sets."""
    found: dict[str, set[str]] = {}

    def walk(module: dict[str, Any], prefix: str) -> None:
        for res in module.get("resources", []):
            found[prefix + res["address"]] = set((res.get("expressions") or {}).keys())
        for name, call in (module.get("module_calls") or {}).items():
            walk(call.get("module") or {}, f"{prefix}module.{name}.")

    walk(configuration.get("root_module") or {}, "")
    return found


def _config_address(change: dict[str, Any]) -> str:
    module = change.get("module_address")
    base = f"{change.get('type')}.{change.get('name')}"
    if not module:
        return base
    # module.a["x"].module.b[0] -> module.a.module.b
    parts = [p.split("[")[0] for p in module.split(".")]
    return ".".join(parts) + "." + base


def _any_true(value: Any) -> bool:
    if value is True:
        return True
    if isinstance(value, dict):
        return any(_any_true(v) for v in value.values())
    if isinstance(value, list):
        return any(_any_true(v) for v in value)
    return False


def _mask(value: Any, sensitive: Any) -> Any:
    if sensitive is True:
        return SENSITIVE
    if isinstance(value, dict) and isinstance(sensitive, dict):
        return {k: _mask(v, sensitive.get(k)) for k, v in value.items()}
    if isinstance(value, list) and isinstance(sensitive, list):
        return [_mask(v, sensitive[i] if i < len(sensitive) else None) for i, v in enumerate(value)]
    return value


def attribute_changes(
    change: dict[str, Any], configured: set[str] | None
) -> tuple[tuple[str, ...], tuple[AttributeChange, ...]]:
    """Names and before/after values of the attributes a resource change touches."""
    actions = tuple(change.get("actions", ()))
    # Compare the real values; only what is kept for display is masked.
    before = change.get("before") or {}
    after = change.get("after") or {}
    shown_before = _mask(before, change.get("before_sensitive"))
    shown_after = _mask(after, change.get("after_sensitive"))
    shown_before = shown_before if isinstance(shown_before, dict) else {}
    shown_after = shown_after if isinstance(shown_after, dict) else {}
    unknown = change.get("after_unknown") or {}
    if not isinstance(before, dict) or not isinstance(after, dict):
        return (), ()
    forced = {str(path[0]) for path in change.get("replace_paths") or [] if path}
    if actions == ("delete",):
        return (), ()
    names: list[str] = []
    if actions == ("create",):
        keys = configured if configured else {k for k, v in after.items() if v not in (None, [], {})}
        names = sorted(k for k in keys if k in after or k in unknown)
    else:
        replacing = "create" in actions and "delete" in actions
        for key in sorted(set(before) | set(after) | set(unknown if isinstance(unknown, dict) else {})):
            is_unknown = isinstance(unknown, dict) and _any_true(unknown.get(key))
            is_configured = configured is not None and key in configured
            if is_unknown:
                if key in forced or is_configured:
                    names.append(key)
            elif before.get(key) != after.get(key):
                # On replacement, optional attributes the config does not set fall back to null in
                # the new object's plan: a consequence of the replacement, not a change anyone made.
                consequence = (
                    replacing
                    and not is_configured
                    and key not in forced
                    and (
                        before.get(key) in (None, [], {}, False, 0, "")
                        or after.get(key) in (None, [], {}, False, 0, "")
                    )
                )
                if not consequence:
                    names.append(key)
    details = tuple(
        AttributeChange(
            name=key,
            before=None if actions == ("create",) else shown_before.get(key),
            after=shown_after.get(key),
            after_unknown=isinstance(unknown, dict) and _any_true(unknown.get(key)),
            forces_replacement=key in forced,
        )
        for key in names
    )
    return tuple(names), details


def summarize(changes: Iterable[ResourceChange]) -> PlanSummary:
    add = change = destroy = 0
    for rc in changes:
        acts = set(rc.actions)
        if "create" in acts:
            add += 1
        if "delete" in acts:
            destroy += 1
        if "update" in acts:
            change += 1
    return PlanSummary(add, change, destroy)


def parse_plan(environment: str, plan: dict[str, Any], **extra: Any) -> PlanResult:
    """A PlanResult from the JSON of `terraform show -json <planfile>`."""
    configured = _config_keys(plan.get("configuration") or {})
    resources = []
    for rc in plan.get("resource_changes") or []:
        change = rc.get("change") or {}
        actions = tuple(change.get("actions", ()))
        if actions in IGNORED_ACTIONS or not actions or rc.get("mode") == "data":
            continue
        names, details = attribute_changes(change, configured.get(_config_address(rc)))
        resources.append(
            ResourceChange(
                address=rc["address"],
                type=rc.get("type", ""),
                actions=actions,
                attributes=names,
                changes=details,
                reason=rc.get("action_reason"),
            )
        )
    return PlanResult(environment=environment, summary=summarize(resources), resources=tuple(resources), **extra)


def parse_drift(plan: dict[str, Any]) -> list[ResourceChange]:
    """Managed resources changed outside Terraform (`resource_drift` of a refresh-only plan)."""
    drifted = []
    for rc in plan.get("resource_drift") or []:
        change = rc.get("change") or {}
        actions = tuple(change.get("actions", ()))
        if actions in IGNORED_ACTIONS or not actions:
            continue
        if actions == ("delete",):
            names: tuple[str, ...] = ()
            details: tuple[AttributeChange, ...] = ()
        else:
            names, details = attribute_changes({**change, "after_unknown": {}}, None)
        drifted.append(
            ResourceChange(
                address=rc["address"],
                type=rc.get("type", ""),
                actions=actions,
                attributes=names,
                changes=details,
                reason="deleted outside terraform" if actions == ("delete",) else "changed outside terraform",
            )
        )
    return drifted


# -- showing a change to a person -------------------------------------------------------------


def elide(text: str, width: int = VALUE_WIDTH) -> str:
    """``text`` cut in the middle to ``width`` characters: both ends of an id or an ARN stay readable."""
    if len(text) <= width:
        return text
    keep = width - 1
    head = (keep + 1) // 2
    return text[:head] + "…" + text[len(text) - (keep - head) :]


def show_value(value: Any, width: int = VALUE_WIDTH) -> str:
    """One attribute value on one line: strings as they are, the rest as compact JSON, elided."""
    if isinstance(value, str):
        text = value if value in (SENSITIVE, UNKNOWN) else json.dumps(value)
    else:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return elide(" ".join(text.split()), width)


MAX_LEAVES = 4


def leaf_changes(before: Any, after: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """Where two values differ, down to the parts that changed: keys of objects, elements of lists of
    the same length, and blocks that carry a ``key`` (tags) matched by it."""
    if before == after:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        return [
            leaf
            for key in sorted(set(before) | set(after), key=str)
            for leaf in leaf_changes(before.get(key), after.get(key), f"{path}.{key}")
        ]
    if isinstance(before, list) and isinstance(after, list):
        if before and after and all(isinstance(x, dict) and "key" in x for x in [*before, *after]):
            old = {str(x["key"]): x for x in before}
            new = {str(x["key"]): x for x in after}
            return [
                leaf
                for key in sorted(set(old) | set(new))
                for leaf in leaf_changes(old.get(key), new.get(key), f"{path}[{key}]")
            ]
        if len(before) == len(after):
            return [
                leaf
                for i, (x, y) in enumerate(zip(before, after, strict=True))
                for leaf in leaf_changes(x, y, f"{path}[{i}]")
            ]
    return [(path, before, after)]


def change_lines(change: AttributeChange, action: str, width: int = VALUE_WIDTH) -> list[tuple[str, str, str]]:
    """What changed in an attribute as (name, before, after) texts, narrowed to the parts that differ
    when there are few of them (a tag's value, not the whole tag list); before is "" on create."""
    forced = "  (forces replacement)" if change.forces_replacement else ""
    if action == "create" or change.after_unknown or SENSITIVE in (change.before, change.after):
        after = UNKNOWN if change.after_unknown else show_value(change.after, width)
        before = "" if action == "create" else show_value(change.before, width)
        return [(change.name, before, after + forced)]
    leaves = leaf_changes(change.before, change.after)
    if not 0 < len(leaves) <= MAX_LEAVES or leaves == [("", change.before, change.after)]:
        return [(change.name, show_value(change.before, width), show_value(change.after, width) + forced)]
    return [(change.name + path, show_value(b, width), show_value(a, width) + forced) for path, b, a in leaves]


def change_line(change: AttributeChange, action: str, width: int = VALUE_WIDTH) -> str:
    """``name: before → after`` (``name: after`` for a resource being created), one line per part."""
    return "\n".join(
        f"{name}: {after}" if action == "create" else f"{name}: {before} → {after}"
        for name, before, after in change_lines(change, action, width)
    )


SYMBOL = {"create": "+", "update": "~", "delete": "-", "replace": "-/+"}


def plan_lines(result: PlanResult) -> list[str]:
    """The plan for a person, line by line: each resource, then each changed attribute's before → after."""
    if not result.summary.has_changes:
        return [f"{result.environment}: no changes"]
    lines = [
        f"{result.environment}: {result.summary.add} to add, {result.summary.change} to change, "
        f"{result.summary.destroy} to destroy"
    ]
    for r in result.resources:
        lines.append(f"  {SYMBOL.get(r.action, '?'):>3} {r.address}")
        if r.changes:
            lines += [f"        {line}" for c in r.changes for line in change_line(c, r.action).splitlines()]
        elif r.attributes:
            lines.append(f"        {', '.join(r.attributes)}")
    return lines
