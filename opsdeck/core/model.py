"""What the deck shows: plans, images, instances and drift per environment, as plain dataclasses.

A DeckState is the snapshot refresh builds; it round-trips through JSON so the last one opens at once.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class PlanSummary:
    add: int = 0
    change: int = 0
    destroy: int = 0

    @property
    def has_changes(self) -> bool:
        return bool(self.add or self.change or self.destroy)

    def __str__(self) -> str:
        return f"+{self.add} ~{self.change} -{self.destroy}"


@dataclass(frozen=True)
class AttributeChange:
    """One attribute of a resource, before and after (after_unknown: known only after apply)."""

    name: str
    before: Any
    after: Any
    after_unknown: bool = False
    forces_replacement: bool = False


@dataclass(frozen=True)
class ResourceChange:
    address: str
    type: str
    actions: tuple[str, ...]
    attributes: tuple[str, ...]
    changes: tuple[AttributeChange, ...] = ()
    reason: str | None = None

    @property
    def action(self) -> str:
        """create | update | delete | replace | read | no-op."""
        if set(self.actions) == {"create", "delete"}:
            return "replace"
        return self.actions[0] if self.actions else "no-op"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ResourceChange:
        return cls(
            address=data["address"],
            type=data.get("type", ""),
            actions=tuple(data["actions"]),
            attributes=tuple(data["attributes"]),
            changes=tuple(AttributeChange(**c) for c in data.get("changes", [])),
            reason=data.get("reason"),
        )


@dataclass(frozen=True)
class PlanResult:
    """A saved plan of one environment, read back with `terraform show -json`."""

    environment: str
    summary: PlanSummary
    resources: tuple[ResourceChange, ...]
    created_at: float = field(default_factory=time.time)
    key: str = ""
    planfile: str = ""
    pins: dict[str, str] = field(default_factory=dict)  # service -> the pin the plan was made with

    def to_json(self, detail: bool = True) -> dict[str, Any]:
        """``detail``: the stored form (every field); otherwise the `plan --json` form, whose resources
        list each changed attribute as ``{"attribute", "before", "after"}``."""
        data: dict[str, Any] = {
            "environment": self.environment,
            "add": self.summary.add,
            "change": self.summary.change,
            "destroy": self.summary.destroy,
            "resources": [
                {"address": r.address, "actions": list(r.actions), "attributes": list(r.attributes)}
                | (
                    {"type": r.type, "reason": r.reason, "changes": [asdict(c) for c in r.changes]}
                    if detail
                    else {"changes": changes_json(r)}
                )
                for r in self.resources
            ],
        }
        if detail:
            data.update(created_at=self.created_at, key=self.key, planfile=self.planfile, pins=self.pins)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PlanResult:
        return cls(
            environment=data["environment"],
            summary=PlanSummary(data["add"], data["change"], data["destroy"]),
            resources=tuple(ResourceChange.from_json(r) for r in data["resources"]),
            created_at=data.get("created_at", 0.0),
            key=data.get("key", ""),
            planfile=data.get("planfile", ""),
            pins=dict(data.get("pins") or {}),
        )


@dataclass(frozen=True)
class ImageRef:
    id: str
    version: str = ""
    revoked: bool = False


@dataclass(frozen=True)
class InstanceCounts:
    desired: int = 0
    running: int = 0
    on_pinned_image: int = 0

    def __add__(self, other: InstanceCounts) -> InstanceCounts:
        return InstanceCounts(
            self.desired + other.desired, self.running + other.running, self.on_pinned_image + other.on_pinned_image
        )

    @property
    def healthy(self) -> bool:
        return self.desired > 0 and self.running == self.desired == self.on_pinned_image


@dataclass(frozen=True)
class Lag:
    """How far an environment is behind the one it promotes from."""

    source: str
    source_image: ImageRef | None
    behind: int  # versions
    since: float | None  # when the source got the image this one lacks (epoch seconds)
    in_sync: bool = False
    soaked: float | None = None  # minutes the source has run that image (when this env wants a soak)
    soak_needed: float = 0.0  # this environment's soak_minutes

    @property
    def soak_left(self) -> float:
        """Minutes until the source's image may be promoted here (0: it may)."""
        return max(0.0, self.soak_needed - (self.soaked or 0.0)) if self.soak_needed else 0.0


@dataclass(frozen=True)
class ServiceStatus:
    """One service in one environment: the image it pins, and the instances that run it."""

    name: str
    image: ImageRef | None = None
    instances: InstanceCounts = field(default_factory=InstanceCounts)
    lag: Lag | None = None
    # blue/green: {"live": color, "standby": {"color", "image", "until", "warm"} | None}; None: one group
    traffic: dict[str, Any] | None = None
    rollout: str = ""  # how a new image reaches it: replace | instances | instance-refresh | blue-green
    refresh: dict[str, Any] | None = None  # its group's newest instance refresh: {"id", "status", "percentage", ...}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServiceStatus:
        image, lag = data.get("image"), data.get("lag")
        if lag is not None:
            lag = dict(lag)
            src = lag.pop("source_image", None)
            lag = Lag(source_image=ImageRef(**src) if src else None, **lag)
        return cls(
            name=data["name"],
            image=ImageRef(**image) if image else None,
            instances=InstanceCounts(**(data.get("instances") or {})),
            lag=lag,
            traffic=data.get("traffic"),
            rollout=data.get("rollout", ""),
            refresh=data.get("refresh"),
        )


@dataclass(frozen=True)
class EnvStatus:
    """One row of the deck."""

    name: str
    sandbox: bool = False
    protected: bool = False
    promote_from: str | None = None
    account: str | None = None
    region: str = ""
    services: tuple[ServiceStatus, ...] = ()
    image: ImageRef | None = None  # the image, when every service runs the same one (a one-service deck)
    instances: InstanceCounts = field(default_factory=InstanceCounts)  # the sum over its services
    instance_images: dict[str, str] = field(default_factory=dict)  # instance id -> image id
    plan: PlanSummary | None = None
    plan_at: float | None = None
    drift: str = "unknown"  # clean | drifted | unknown
    drift_at: float | None = None
    lag: Lag | None = None
    lock: dict[str, Any] | None = None  # who holds the environment's lock, or an interrupted run
    request: dict[str, Any] | None = None  # the change waiting for approvals: {"id", "approvals", "needed", ...}
    copies: tuple[str, ...] = ()  # the regions of its recovered copies (`opsdeck recover ENV --region R`)
    last: dict[str, Any] | None = None  # its last change from this clone's audit log: action, result, when, why
    freeze: dict[str, Any] | None = None  # the freeze in force: {"by", "reason", "until"} (core/safety/freeze.py)
    freeze_problem: str = ""  # a freeze record in the ledger that does not count, said aloud
    lifetime: dict[str, Any] | None = None  # a sandbox's: {"ttl_hours", "expires_at", "built_at", ...}
    error: str | None = None

    def service(self, name: str) -> ServiceStatus | None:
        return next((s for s in self.services if s.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EnvStatus:
        data = dict(data)
        image = data.pop("image", None)
        plan = data.pop("plan", None)
        lag = data.pop("lag", None)
        counts = data.pop("instances", None) or {}
        services = tuple(ServiceStatus.from_json(s) for s in data.pop("services", None) or ())
        data["copies"] = tuple(data.pop("copies", None) or ())
        if lag is not None:
            lag = dict(lag)
            src = lag.pop("source_image", None)
            lag = Lag(source_image=ImageRef(**src) if src else None, **lag)
        return cls(
            image=ImageRef(**image) if image else None,
            plan=PlanSummary(**plan) if plan else None,
            lag=lag,
            instances=InstanceCounts(**counts),
            services=services,
            **data,
        )


@dataclass(frozen=True)
class DeckState:
    """The snapshot of a whole deck."""

    deck: str
    environments: tuple[EnvStatus, ...]
    taken_at: float = field(default_factory=time.time)
    cloud: str = "unknown"  # reachable | unreachable | unknown
    images: tuple[dict[str, Any], ...] = ()  # the image catalog (core.images.describe_images rows)
    ledger: dict[str, Any] | None = None  # where the clone stands against the team's remote (team.remote.Ledger)

    def env(self, name: str) -> EnvStatus | None:
        return next((e for e in self.environments if e.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "deck": self.deck,
            "taken_at": self.taken_at,
            "cloud": self.cloud,
            "environments": [e.to_json() for e in self.environments],
            "images": list(self.images),
            "ledger": self.ledger,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeckState:
        return cls(
            deck=data["deck"],
            environments=tuple(EnvStatus.from_json(e) for e in data["environments"]),
            taken_at=data.get("taken_at", 0.0),
            cloud=data.get("cloud", "unknown"),
            images=tuple(data.get("images", ())),
            ledger=data.get("ledger"),
        )


def changes_json(resource: ResourceChange) -> list[dict[str, Any]]:
    """Each changed attribute's before and after (masked as Terraform masks sensitive values)."""
    return [
        {
            "attribute": c.name,
            "before": c.before,
            "after": None if c.after_unknown else c.after,
            "after_unknown": c.after_unknown,
            "forces_replacement": c.forces_replacement,
        }
        for c in resource.changes
    ]
