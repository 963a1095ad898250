"""Following an auto scaling group's instance refresh: find the one an apply started, report its
progress live, and stop it (roll it back, or cancel it) when the release is stopped.

Terraform's AWS provider starts a refresh when a group with an ``instance_refresh`` block gets a new
launch template version, and returns without waiting for it; so the refresh an apply started is the
one whose id was not there before the apply. Polls are short (a quarter of a second) so that the release ends
within a second of the refresh's last replacement.
"""

from __future__ import annotations

import asyncio
import time

from opsdeck.core.events import Reporter
from opsdeck.core.ports.cloud import FleetPort
from opsdeck.core.types.cloud import InstanceRefresh
from opsdeck.errors import OpsdeckError

INTERVAL = 0.25
STARTED_WITHIN = 15.0  # seconds after the apply for the refresh it started to show up


class RefreshFailed(OpsdeckError):
    """A refresh ended in anything but Successful."""

    def __init__(self, refresh: InstanceRefresh) -> None:
        why = f": {refresh.reason}" if refresh.reason else ""
        super().__init__(f"the instance refresh of {refresh.group} ended {refresh.status}{why}")
        self.refresh = refresh


def known_ids(fleet: FleetPort, group: str) -> frozenset[str]:
    return frozenset(r.id for r in fleet.refreshes(group))


async def started_since(fleet: FleetPort, group: str, known: frozenset[str]) -> InstanceRefresh | None:
    """The refresh of ``group`` that is not among ``known`` (the one the apply started), if any."""
    deadline = time.monotonic() + STARTED_WITHIN
    while True:
        new = [r for r in await asyncio.to_thread(fleet.refreshes, group) if r.id not in known]
        if new:
            return new[0]
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(INTERVAL)


def _line(service: str, refresh: InstanceRefresh) -> str:
    return f"{service}: instance refresh of {refresh.group} {refresh.describe()}"


def _tell(rep: Reporter, service: str, refresh: InstanceRefresh, said: str) -> str:
    """Progress on every poll (the deck's operations pane), and a line each time the refresh moves on
    (a notice: the CLI prints it, a person at a terminal sees percentage, instances left and status)."""
    line = _line(service, refresh)
    rep.progress(line, refresh.rollback_percentage if refresh.rolling_back else refresh.percentage, 100)
    if line != said:
        rep.log(line, "notice")
    return line


async def follow(
    fleet: FleetPort, refresh: InstanceRefresh, service: str, rep: Reporter, *, timeout: float
) -> InstanceRefresh:
    """Poll the refresh until it ends, reporting its percentage, instances left and status; the final
    state. RefreshFailed unless it ends Successful; OpsdeckError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    current = refresh
    said = ""
    while True:
        said = _tell(rep, service, current, said)
        if not current.active:
            break
        if time.monotonic() > deadline:
            raise OpsdeckError(
                f"the instance refresh of {current.group} still ran after {timeout:.0f}s ({current.describe()})"
            )
        await asyncio.sleep(INTERVAL)
        current = await _reread(fleet, current)
    if current.status != "Successful":
        raise RefreshFailed(current)
    return current


async def _reread(fleet: FleetPort, refresh: InstanceRefresh) -> InstanceRefresh:
    found = await asyncio.to_thread(fleet.refreshes, refresh.group)
    return next((r for r in found if r.id == refresh.id), refresh)


async def stop(fleet: FleetPort, group: str, service: str, rep: Reporter, *, timeout: float = 600.0) -> str:
    """Stop the group's active refresh: roll it back when it was started with a desired configuration
    (AWS can then put the previous launch template back), else cancel it; wait until it has ended.
    What happened, for the result ("" when no refresh was running)."""
    refreshes = await asyncio.to_thread(fleet.refreshes, group)
    active = next((r for r in refreshes if r.active), None)
    if active is None:
        return ""
    if active.desired and not active.rolling_back and active.status != "Cancelling":
        try:
            await asyncio.to_thread(fleet.rollback_refresh, group)
            how = "rolled back"
        except OpsdeckError as exc:
            rep.log(f"{service}: could not roll the refresh back ({exc}); cancelling it", "warning")
            await asyncio.to_thread(fleet.cancel_refresh, group)
            how = "cancelled"
    elif not active.rolling_back:
        await asyncio.to_thread(fleet.cancel_refresh, group)
        how = "cancelled"
    else:
        how = "rolled back"
    deadline = time.monotonic() + timeout
    current = active
    said = ""
    while True:
        current = await _reread(fleet, current)
        said = _tell(rep, service, current, said)
        if not current.active or time.monotonic() > deadline:
            break
        await asyncio.sleep(INTERVAL)
    left = "" if not current.active else f", still {current.status} after {timeout:.0f}s"
    return f"{service}: the instance refresh of {group} was {how} at {active.percentage}% ({current.status}{left})"
