"""What orphans are made of: the places the deck knows, one orphan (its kind, where, age, cost), the
report of a scan, and the recovered copies (core/sandbox/copies.py) a scan must know about.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from opsdeck.core.estate.deck import Deck
from opsdeck.core.hygiene.prices import Cost, PriceTable, significant
from opsdeck.core.ledger.remote import latest
from opsdeck.core.ports.cloud import CloudPort
from opsdeck.core.sandbox.copies import recovered_copies as ledger_copies
from opsdeck.core.types.hygiene import Tagged
from opsdeck.errors import OpsdeckError

LEDGER_DIR = "recovered"  # core/sandbox/copies.py keeps each copy's record there

KINDS = ("unknown-env", "state-file", "recovered-copy", "sandbox", "image", "snapshot")
HOUR = 3600.0


@dataclass(frozen=True)
class Place:
    """One account and region the deck knows, and how it is reached (an environment, or "build")."""

    account: str
    region: str
    reached_as: str
    envs: tuple[str, ...] = ()  # the environments that live here

    def to_json(self) -> dict[str, Any]:
        return {"account": self.account, "region": self.region, "environments": list(self.envs)}


@dataclass(frozen=True)
class Orphan:
    """One thing left behind."""

    kind: str  # one of KINDS
    account: str
    region: str
    type: str  # ec2:instance, s3:object, ec2:image, ec2:snapshot, environment ...
    id: str
    detail: str
    created: float | None  # epoch seconds; None when the cloud does not say
    cost: Cost
    removable: bool = True
    how: str = ""  # when not removable here: how it is removed
    parent: str | None = None  # a snapshot's image
    bucket: str | None = None  # a state file's bucket
    reached_as: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    item: Tagged | None = field(default=None, compare=False, repr=False)

    def age_hours(self, now: float) -> float | None:
        return None if self.created is None else round(max(0.0, now - self.created) / HOUR, 2)

    def to_json(self, now: float) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "account": self.account,
            "region": self.region,
            "type": self.type,
            "id": self.id,
            "detail": self.detail,
            "created": _iso(self.created),
            "age_hours": self.age_hours(now),
            "cost": self.cost.to_json(),
            "removable": self.removable,
        }
        if self.how:
            data["how"] = self.how
        if self.parent:
            data["image"] = self.parent
        if self.bucket:
            data["bucket"] = self.bucket
        if self.tags:
            data["tags"] = dict(self.tags)
        return data


@dataclass(frozen=True)
class OrphanReport:
    """Every orphan found, the prices they were estimated with, and where opsdeck looked."""

    orphans: tuple[Orphan, ...]
    prices: PriceTable
    places: tuple[Place, ...]
    keep_images: int
    copy_max_age_hours: float
    sandbox_max_age_hours: float
    scanned_at: float
    notes: tuple[str, ...] = ()

    @property
    def usd_per_hour(self) -> float:
        """The sum of the known estimates (unknown ones are counted apart, never as zero)."""
        return sum(o.cost.usd_per_hour or 0.0 for o in self.orphans)

    @property
    def unknown(self) -> int:
        return sum(1 for o in self.orphans if o.cost.unknown)

    def find(self, ident: str) -> Orphan | None:
        return next((o for o in self.orphans if o.id == ident), None)

    def total_json(self) -> dict[str, Any]:
        return {
            "usd_per_hour": significant(self.usd_per_hour),
            "unknown": self.unknown,
            "estimate": True,
            "price_table": self.prices.date,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "orphans": [o.to_json(self.scanned_at) for o in self.orphans],
            "total": self.total_json(),
            "price_table": {"date": self.prices.date, "source": self.prices.source},
            "settings": {
                "keep_images": self.keep_images,
                "copy_max_age_hours": self.copy_max_age_hours,
                "sandbox_max_age_hours": self.sandbox_max_age_hours,
            },
            "places": [p.to_json() for p in self.places],
            "scanned_at": _iso(self.scanned_at),
            "notes": list(self.notes),
        }


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if text else None
    except ValueError:
        return None


# -- recovered copies (core/sandbox/recover.py, when present) -----------------------------------


class RecoveredCopyLike(Protocol):
    """What orphans needs of a recovered copy (``RecoveredCopy`` of core/sandbox/copies.py)."""

    @property
    def env(self) -> str: ...

    @property
    def region(self) -> str: ...

    @property
    def account(self) -> str | None: ...

    @property
    def created(self) -> float: ...  # epoch seconds

    @property
    def state_key(self) -> str: ...

    @property
    def images(self) -> Mapping[str, object]: ...  # service -> image id or blue/green pin, in its region

    @property
    def source_images(self) -> Mapping[str, object]: ...  # what the environment pinned then


def recovered_copies(deck: Deck) -> tuple[list[RecoveredCopyLike], str]:
    """The deck's recovered copies (its ledger's records), and a note when they cannot be known."""
    return list(ledger_copies(deck)), ""


def known_copies(deck: Deck, copies: Iterable[RecoveredCopyLike]) -> tuple[list[RecoveredCopyLike], list[str]]:
    """The copies whose environment the deck still has, and a note for each one it does not."""
    names = set(deck.config.env_names)
    kept: list[RecoveredCopyLike] = []
    notes: list[str] = []
    for copy in copies:
        if copy.env in names:
            kept.append(copy)
        else:
            notes.append(
                f"recovered copy {copy.env}@{copy.region} skipped: {copy.env} is no longer in opsdeck.toml "
                f"(its record {LEDGER_DIR}/{copy.env}/{copy.region}.json stays; its resources are listed, not removed)"
            )
    return kept, notes


def sync_for_reading(deck: Deck) -> str:
    """Bring the clone level with the team's remote before a scan (recovered copies, pins and requests
    are committed there); a note when it could not be, empty when it is level or has no remote."""
    try:
        ledger = latest(deck)
    except OpsdeckError as exc:
        return f"the ledger could not be synced ({exc}): copies and pins not pulled yet are unknown"
    if ledger.offline:
        return (
            f"the ledger's remote cannot be reached ({ledger.error}): copies and pins not pulled yet are unknown, "
            "and --delete is refused"
        )
    if ledger.behind:
        return (
            f"the deck is {ledger.behind} commits behind {ledger.ref} and could not fast-forward: copies and pins "
            "not pulled yet are unknown"
        )
    return ""


# -- whose a state key is ------------------------------------------------------------------------


def state_prefixes(deck: Deck) -> dict[str, set[str]]:
    """Per state bucket, the key prefixes this deck's environments use (the first folder of each
    environment's key, ``shop/``); a key without a folder gives none."""
    found: dict[str, set[str]] = {}
    for env in deck.config.env_names:
        backend = deck.backend(env)
        if backend is None:
            continue
        head, sep, _ = backend.key.partition("/")
        prefixes = found.setdefault(backend.bucket, set())
        if sep and head:
            prefixes.add(f"{head}/")
    return found


def copy_state_of(deck: Deck, bucket: str, key: str) -> tuple[str, str] | None:
    """(environment, region) when ``key`` is shaped as a recovered copy's state of one of the deck's
    environments (``<env key dir>/recover-<region>/<env key name>``, core/sandbox/copies.py)."""
    folder, name = posixpath.split(key)
    parent, leaf = posixpath.split(folder)
    if not leaf.startswith("recover-") or len(leaf) <= len("recover-"):
        return None
    for env in deck.config.env_names:
        backend = deck.backend(env)
        if backend is None or backend.bucket != bucket:
            continue
        env_folder, env_name = posixpath.split(backend.key)
        if env_folder == parent and (env_name or "terraform.tfstate") == name:
            return env, leaf[len("recover-") :]
    return None


def env_of_state(deck: Deck, bucket: str, key: str) -> str | None:
    """The environment whose state folder holds ``key`` (its own state, a copy's, a lock), if any."""
    for env in deck.config.env_names:
        backend = deck.backend(env)
        if backend is None or backend.bucket != bucket:
            continue
        folder = posixpath.dirname(backend.key)
        if key == backend.key or (folder and key.startswith(f"{folder}/")):
            return env
    return None


# -- where to look -------------------------------------------------------------------------------


def cloud_of(deck: Deck, place: Place) -> CloudPort:
    """The place's account and region, reached as the build account or as its environment."""
    if place.reached_as == "build":
        return deck.tools.build(place.region)
    if deck.config.region_of(place.reached_as) == place.region:
        return deck.tools.env(place.reached_as).cloud
    return deck.tools.account(place.account, place.region)  # a recovered copy's region


def places(deck: Deck, copies: Iterable[RecoveredCopyLike] = ()) -> list[Place]:
    """Every account and region the deck knows, once each (the build account's regions first); a
    recovered copy's environment lives in the copy's region too."""
    config = deck.config
    found: dict[tuple[str, str], Place] = {}
    build_account = config.build.account or deck.tools.build().caller_identity().get("account", "")
    for region in config.regions:
        found.setdefault((build_account, region), Place(build_account, region, "build"))
    for env in config.environments:
        account = env.account or deck.tools.env(env.name).cloud.caller_identity().get("account", "")
        key = (account, config.region_of(env.name))
        place = found.get(key)
        if place is None:
            found[key] = Place(account, key[1], env.name, (env.name,))
        else:
            found[key] = Place(place.account, place.region, place.reached_as, (*place.envs, env.name))
    for copy in copies:
        if copy.env not in config.env_names:  # its environment left opsdeck.toml (known_copies says so)
            continue
        home = next((p for p in found.values() if copy.env in p.envs and p.region == config.region_of(copy.env)), None)
        if home is None:  # its environment left opsdeck.toml (known_copies says so)
            continue
        key = (copy.account or home.account, copy.region)
        place = found.get(key)
        if place is None:
            found[key] = Place(key[0], copy.region, "build" if key[0] == build_account else copy.env, (copy.env,))
        elif copy.env not in place.envs:
            found[key] = Place(place.account, place.region, place.reached_as, (*place.envs, copy.env))
    return list(found.values())


def unrecorded_copies(deck: Deck, recorded: set[str]) -> list[tuple[str, str]]:
    """(environment, region) of each state in the deck's state buckets shaped as a recovered copy's that no
    record of the ledger names (``recorded``: their state keys): a recovery interrupted, failed, under way
    or not pulled yet, whose resources run in that region."""
    buckets: dict[str, str] = {}
    for env in deck.config.env_names:
        backend = deck.backend(env)
        if backend is not None:
            buckets.setdefault(backend.bucket, env)
    found: set[tuple[str, str]] = set()
    for bucket, env in buckets.items():
        for obj in deck.tools.env(env).cloud.hygiene().objects(bucket):
            shaped = copy_state_of(deck, bucket, obj.key) if obj.key not in recorded else None
            if shaped is not None:
                found.add(shaped)
    return sorted(found)


def with_unrecorded(deck: Deck, where: list[Place], copies: Iterable[tuple[str, str]]) -> list[Place]:
    """``where`` and the account and region of each unrecorded copy (``unrecorded_copies``), reached as its
    environment but not one it lives in: what is tagged with that environment there is listed as possibly
    the copy's, never removed (an interrupted recover leaves it, and unlock says orphans lists it)."""
    out = list(where)
    for env, region in copies:
        home = next((p for p in where if env in p.envs and p.region == deck.config.region_of(env)), None)
        if home is not None and not any(p.account == home.account and p.region == region for p in out):
            out.append(Place(home.account, region, env))
    return out


def count_by_kind(orphans: Iterable[Orphan]) -> dict[str, int]:
    counts = {k: 0 for k in KINDS}
    for orphan in orphans:
        counts[orphan.kind] = counts.get(orphan.kind, 0) + 1
    return {k: v for k, v in counts.items() if v}
