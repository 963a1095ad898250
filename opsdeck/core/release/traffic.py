"""An instant rollback's traffic move, by the load balancer's own API: the listener rules the switch plan
changes, and only those, pointed at the target groups the plan gives them, once the targets that take the
traffic are healthy; then read back. A Terraform apply of the same switch takes seconds; these are a few
calls. Terraform's state is brought in line after, by applying that same switch plan (it then changes
nothing in the cloud, and the state records it); an interruption in between is recovered by `unlock`,
which takes the live colors the cloud's rules have (core/release/bluegreen.py reconcile_traffic).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from opsdeck.core.events import Reporter
from opsdeck.core.ports.cloud import TrafficPort
from opsdeck.core.release.gates import GateError
from opsdeck.errors import OpsdeckError

RULE_TYPE = "aws_lb_listener_rule"


@dataclass(frozen=True)
class Move:
    """One listener rule the switch plan changes: where it forwards now, and where after."""

    address: str
    rule: str  # its ARN
    target: str  # the target group it forwards to after the switch
    before: str | None
    live: bool  # it carries the service's traffic (not its preview host)


def _forwards_to(values: dict[str, Any]) -> str | None:
    for action in values.get("action") or []:
        if isinstance(action, dict) and action.get("type") == "forward":
            if action.get("target_group_arn"):
                return str(action["target_group_arn"])
            for forward in action.get("forward") or []:
                for group in (forward or {}).get("target_group") or []:
                    if group.get("arn"):
                        return str(group["arn"])
    return None


def moves_of(shown: dict[str, Any] | None) -> list[Move] | None:
    """The rule moves a shown switch plan makes; None when its JSON does not say them all (a value known
    only after the apply, a change that is not a rule's): Terraform then moves the traffic itself."""
    if not shown:
        return None
    moves = []
    for rc in shown.get("resource_changes") or []:
        change = rc.get("change") or {}
        actions = tuple(change.get("actions") or ())
        if actions in (("no-op",), ("read",)) or rc.get("mode") == "data":
            continue
        if rc.get("type") != RULE_TYPE or actions != ("update",):
            return None
        before, after = change.get("before") or {}, change.get("after") or {}
        target = _forwards_to(after)
        if not before.get("arn") or target is None:
            return None
        tags = after.get("tags") or {}
        live = tags.get("traffic") != "preview" and not str(rc.get("address", "")).endswith(".preview")
        moves.append(Move(str(rc.get("address")), str(before["arn"]), target, _forwards_to(before), live))
    return moves or None


async def check_health(traffic: TrafficPort, moves: list[Move]) -> None:
    """The targets that take the live traffic are all healthy, on one read (a warm standby has stayed in
    service under the load balancer's own health checks); GateError otherwise, and nothing moves."""
    for target in sorted({m.target for m in moves if m.live}):
        states = await asyncio.to_thread(traffic.target_health, target)
        healthy = [t for t, s in states.items() if s == "healthy"]
        if not healthy or len(healthy) < len(states):
            detail = ", ".join(f"{t} {s}" for t, s in sorted(states.items())) or "no targets"
            why = f"the standby's targets are not all healthy ({detail}); traffic stays where it was"
            raise GateError("health", why)


async def move(traffic: TrafficPort, moves: list[Move], rep: Reporter) -> None:
    """Move every rule, then read them back; OpsdeckError when one does not forward where the plan says."""
    for m in moves:
        if m.before != m.target:
            await asyncio.to_thread(traffic.forward, m.rule, m.target)
    now = await asyncio.to_thread(traffic.rule_targets, [m.rule for m in moves])
    wrong = [m.address for m in moves if now.get(m.rule) != m.target]
    if wrong:
        raise OpsdeckError(f"after moving traffic, {', '.join(wrong)} do not forward where the switch plan says")
    rep.log(f"traffic moved: {len(moves)} listener rules by the load balancer's API")
