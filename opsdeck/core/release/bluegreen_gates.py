"""The blue/green gates a staged color passes before traffic switches to it: health (every instance of
the new color runs its image and is healthy in its target group) and smoke (the environment's smoke
commands against the new color). A gate that fails leaves traffic where it was (core/release/bluegreen.py)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import ColorPin
from opsdeck.core.events import Reporter
from opsdeck.core.release import fleet
from opsdeck.core.release.bluegreen import COLOR_TAG, ServiceTraffic, read_traffic
from opsdeck.core.release.gates import GateError
from opsdeck.core.types.cloud import Credentials

# Like a load balancer's healthy threshold: a color is healthy when two reads in a row, one interval
# apart, find every target healthy (a target that fails right after registering is not let through).
HEALTHY_READS = 2


# -- gates --------------------------------------------------------------------------------------


async def health_gate(
    deck: Deck,
    env: str,
    staged: dict[str, ColorPin],
    rep: Reporter,
    *,
    credentials: Credentials | None = None,
    interval: float = 1.0,
) -> None:
    """Wait until each staged service's idle color runs its image on every desired instance and every
    one of them is healthy in the color's target group, on HEALTHY_READS reads in a row; GateError
    after the environment's health_timeout, naming the service, the color and what is not healthy."""
    timeout = deck.env(env).health_timeout
    # Only the new color is waited for: the live one may be the very thing that is failing (a rollback).
    with rep.phase("health"):
        deadline = time.monotonic() + timeout
        healthy_reads = 0
        while True:
            groups = await asyncio.to_thread(fleet.env_groups, deck, env, credentials)
            traffic = await asyncio.to_thread(read_traffic, deck, env, credentials)
            waiting = []
            healthy_total = wanted_total = 0
            for service, pin in staged.items():
                color = pin.idle
                image = pin.image(color)
                mine = [g for g in fleet.service_groups(deck, groups, service) if g.tags.get(COLOR_TAG) == color]
                members = {
                    i.id: i.state if i.image_id == image else f"on {i.image_id}"
                    for g in mine
                    for i in g.instances
                    if i.state != "terminated"
                }
                wanted = max(sum(g.desired for g in mine), len(members))
                group = traffic.get(service, ServiceTraffic(service, {}, None, None)).target_groups.get(color)
                healthy = [
                    i
                    for i, state in members.items()
                    if state == "running" and group and group.targets.get(i) == "healthy"
                ]
                healthy_total += len(healthy)
                wanted_total += wanted
                if group is None:
                    waiting.append(f"{service} {color}: no target group tagged {COLOR_TAG} = {color}")
                elif not wanted or len(healthy) < wanted:
                    states = ", ".join(
                        f"{i} {group.targets.get(i, 'not registered') if state == 'running' else state}"
                        for i, state in members.items()
                        if i not in healthy
                    )
                    waiting.append(f"{service} {color}: {len(healthy)} of {wanted} targets healthy ({states})")
            rep.progress(
                f"{healthy_total}/{wanted_total} targets of the new colors healthy", healthy_total, wanted_total
            )
            healthy_reads = 0 if waiting else healthy_reads + 1
            if healthy_reads >= HEALTHY_READS:
                rep.log(
                    f"health: {healthy_total} targets healthy in "
                    + ", ".join(f"{s} {p.idle}" for s, p in staged.items())
                )
                return
            if waiting and time.monotonic() > deadline:
                raise GateError("health", f"after {timeout:g}s {'; '.join(waiting)}; traffic stays where it was")
            await asyncio.sleep(interval)


async def smoke_gate(
    deck: Deck,
    env: str,
    staged: dict[str, ColorPin],
    rep: Reporter,
    *,
    credentials: Credentials | None = None,
) -> list[dict[str, Any]]:
    """Run the environment's smoke commands against each staged service's new color; GateError on the
    first that fails or outlives its timeout. Returns what ran (for the audit record)."""
    settings = deck.env(env)
    if not settings.smoke:
        return []
    ran: list[dict[str, Any]] = []
    with rep.phase("smoke"):
        traffic = await asyncio.to_thread(read_traffic, deck, env, credentials)
        for service, pin in staged.items():
            color = pin.idle
            seen = traffic.get(service)
            group = seen.target_groups.get(color) if seen else None
            variables = {
                "OPSDECK_ENV": env,
                "OPSDECK_SERVICE": service,
                "OPSDECK_COLOR": color,
                "OPSDECK_IMAGE": pin.image(color) or "",
                "OPSDECK_ENDPOINT": seen.endpoint if seen else "",
                "OPSDECK_HOST": seen.host if seen else "",
                "OPSDECK_PREVIEW_HOST": seen.preview_host if seen else "",
                "OPSDECK_TARGET_GROUP": group.arn if group else "",
                "OPSDECK_LOCAL_CLOUD": deck.tools.endpoint() or "",
                "OPSDECK_PYTHON": sys.executable,
            }
            environ = {**os.environ, **variables}
            for command in settings.smoke:
                rep.progress(f"smoke {service} {color}: {command}")
                result = await deck.tools.processes().run_shell(
                    command,
                    cwd=deck.root,
                    env=environ,
                    timeout=settings.smoke_timeout,
                    on_line=_smoke_sink(rep, service),
                    redact=deck.tools.redact,
                )
                ran.append(
                    {
                        "service": service,
                        "color": color,
                        "command": command,
                        "exit": result.returncode,
                        "seconds": round(result.seconds, 2),
                    }
                )
                if result.timed_out:
                    raise GateError(
                        "smoke",
                        f"`{command}` did not finish within {settings.smoke_timeout:g}s for {service} {color}; "
                        "traffic stays where it was",
                    )
                if result.returncode != 0:
                    last = f": {result.tail[-1]}" if result.tail else ""
                    raise GateError(
                        "smoke",
                        f"`{command}` failed (exit {result.returncode}) for {service} {color}{last}; "
                        "traffic stays where it was",
                    )
            rep.log(f"smoke: {len(settings.smoke)} checks passed for {service} {color}")
    return ran


def _smoke_sink(rep: Reporter, service: str) -> Callable[[str], None]:
    def sink(line: str) -> None:
        rep.log(f"smoke {service}: {line}")

    return sink
