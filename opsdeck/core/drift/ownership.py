"""Which environment owns a cloud resource: by its Terraform state, its VPC, then its environment tag.

Each environment's state (read from the backend as JSON, with the environment's own credentials)
says what it manages and which VPCs are its own. A resource belongs to exactly one environment:
the one whose state holds it, else the one whose VPC it sits in, else the one its environment tag
names; only environments in the same account and region compete for it. So a look-alike tagged
``env = sandbox`` inside dev's VPC is dev's, and nothing done to the sandbox can touch it.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.plans import planning
from opsdeck.core.tasks import all_or_nothing
from opsdeck.core.types.cloud import CloudResource


@dataclass(frozen=True)
class Ownership:
    """What one environment's Terraform state manages."""

    env: str
    vpc_ids: frozenset[str] = frozenset()
    managed_ids: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()  # auto scaling group names (their instances are managed)
    addresses: tuple[str, ...] = ()
    serial: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def _address(res: dict[str, Any], inst: dict[str, Any]) -> str:
    base = (
        f"{res['type']}.{res['name']}"
        if res.get("mode", "managed") == "managed"
        else f"data.{res['type']}.{res['name']}"
    )
    if res.get("module"):
        base = f"{res['module']}.{base}"
    key = inst.get("index_key")
    if isinstance(key, int):
        return f"{base}[{key}]"
    if isinstance(key, str):
        return f'{base}["{key}"]'
    return base


def from_state(env: str, state: dict[str, Any] | None) -> Ownership:
    if not state:
        return Ownership(env)
    vpcs, ids, groups, addresses = set(), set(), set(), []
    for res in state.get("resources", []):
        if res.get("mode") != "managed":
            continue
        for inst in res.get("instances", []):
            attrs = inst.get("attributes") or {}
            addresses.append(_address(res, inst))
            for key in ("id", "arn", "name"):
                value = attrs.get(key)
                if isinstance(value, str) and value:
                    ids.add(value)
            if res["type"] == "aws_vpc" and attrs.get("id"):
                vpcs.add(attrs["id"])
            if res["type"] == "aws_autoscaling_group" and attrs.get("name"):
                groups.add(attrs["name"])
    return Ownership(
        env, frozenset(vpcs), frozenset(ids), frozenset(groups), tuple(addresses), state.get("serial"), state
    )


def read_state(deck: Deck, env: str) -> dict[str, Any] | None:
    """The environment's current state, read from its backend (S3) as JSON."""
    backend = deck.backend(env)
    if backend is None:
        return None
    body = deck.tools.env(env).cloud.read_object(backend.bucket, backend.key)
    if body is None:
        return None
    data = json.loads(body)
    return data if isinstance(data, dict) else None


def peers(deck: Deck, env: str) -> list[str]:
    """The environments that share ``env``'s account and region (those that can own what it finds)."""
    mine = deck.config.env(env)
    where = (mine.account, deck.config.region_of(env))
    return [e.name for e in deck.config.environments if (e.account, deck.config.region_of(e.name)) == where]


async def ownerships(deck: Deck, rep: Reporter, envs: list[str] | None = None) -> dict[str, Ownership]:
    """The ownership of ``envs`` and of every environment sharing an account and region with one of
    them (default: every environment), initialising any that were never initialised here."""
    wanted = {p for env in (envs or deck.config.env_names) for p in peers(deck, env)}
    names = [n for n in deck.config.env_names if n in wanted]

    async def one(env: str) -> Ownership:
        if deck.state_location(env) is None:
            await planning.ensure_init(deck, env, rep.child(env=env))
        return from_state(env, await asyncio.to_thread(read_state, deck, env))

    results = await all_or_nothing(*(one(env) for env in names))
    return {o.env: o for o in results}


def manages(own: Ownership, res: CloudResource) -> bool:
    """``own``'s state has ``res``: by its id, its ARN (load balancers and target groups have their
    ARN as Terraform's id, the inventory names them by the ARN's resource part) or its group."""
    return (
        res.id in own.managed_ids
        or (res.arn is not None and res.arn in own.managed_ids)
        or bool(res.group and res.group in own.groups)
    )


def owner(res: CloudResource, owners: dict[str, Ownership], tag_key: str = "env") -> str | None:
    """The environment a resource belongs to, or None (``owners``: the environments of one account
    and region)."""
    for own in owners.values():
        if manages(own, res):
            return own.env
    for own in owners.values():
        if res.vpc_id and res.vpc_id in own.vpc_ids:
            return own.env
    tagged = res.tags.get(tag_key)
    return tagged if tagged in owners else None


def unmanaged(
    env: str, found: list[CloudResource], owners: dict[str, Ownership], tag_key: str = "env"
) -> list[CloudResource]:
    """Resources of ``env`` its state does not manage (the default security group of its VPC aside)."""
    own = owners[env]
    out = []
    for res in found:
        if owner(res, owners, tag_key) != env:
            continue
        if manages(own, res):
            continue
        if res.tags.get("opsdeck:default") and res.vpc_id in own.vpc_ids:
            continue
        out.append(res)
    return out


def among_peers(deck: Deck, env: str, owners: dict[str, Ownership]) -> dict[str, Ownership]:
    """``owners`` narrowed to the environments of ``env``'s own account and region."""
    mine = set(peers(deck, env))
    return {name: own for name, own in owners.items() if name in mine}
