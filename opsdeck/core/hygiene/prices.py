"""Hourly cost estimates from a dated on-demand price table, and its refresh from the AWS Price List API.

opsdeck ships a table (``prices.json`` beside this module, read with importlib.resources) with each
region's on-demand prices: instances by type, load balancers, NAT gateways, public IPv4 addresses per
hour, and EBS volumes, snapshots and S3 storage per GB-month (divided by the table's hours per month).
A deck may name its own table (``[orphans] price_table``); a refresh on a real account writes one to
opsdeck's data folder, used while it is newer than the shipped one. Every figure is an estimate
labelled with the table's date, and a type the table has no price for is unknown, never zero.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsdeck import paths
from opsdeck.errors import ConfigError, OpsdeckError
from opsdeck.files import write_atomic

if TYPE_CHECKING:
    from opsdeck.core.estate.deck import Deck

SHIPPED = "prices.json"
PRICING_REGION = "us-east-1"  # the Price List API answers in us-east-1 (and a few others)
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
HOURLY = ("nat_gateway", "public_ipv4")
MONTHLY = ("snapshot_gb_month", "s3_gb_month")
PER_TYPE = ("instance", "load_balancer", "volume_gb_month")


@dataclass(frozen=True)
class RegionPrices:
    """One region's on-demand prices, in USD."""

    instance: dict[str, float] = field(default_factory=dict)  # per hour, by instance type
    load_balancer: dict[str, float] = field(default_factory=dict)  # per hour, by type (application ...)
    volume_gb_month: dict[str, float] = field(default_factory=dict)  # by volume type (gp3 ...)
    nat_gateway: float | None = None  # per hour
    public_ipv4: float | None = None  # per hour
    snapshot_gb_month: float | None = None
    s3_gb_month: float | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {k: dict(sorted(getattr(self, k).items())) for k in PER_TYPE}
        data.update({k: getattr(self, k) for k in (*HOURLY, *MONTHLY) if getattr(self, k) is not None})
        return data


@dataclass(frozen=True)
class PriceTable:
    """A dated price table: where it came from, and each region's prices."""

    date: str
    regions: dict[str, RegionPrices]
    source: str = "shipped"  # shipped, refreshed, or the deck's own file
    hours_per_month: float = 730.0
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "date": self.date,
            "currency": "USD",
            "source": self.note or self.source,
            "hours_per_month": self.hours_per_month,
            "regions": {r: p.to_json() for r, p in sorted(self.regions.items())},
        }

    # -- estimates ----------------------------------------------------------------------------

    def _region(self, region: str) -> RegionPrices | None:
        return self.regions.get(region)

    def cost(self, what: str, region: str, *, size: str | None = None, gigabytes: float = 0.0) -> Cost:
        """The hourly cost of one ``what`` (instance, load_balancer, volume, nat_gateway, public_ipv4,
        snapshot, s3) in ``region``; unknown (None) when the table has no price for it."""
        prices = self._region(region)
        if prices is None:
            return self._unknown(f"no prices for region {region} in the table")
        if what in ("instance", "load_balancer"):
            table = prices.instance if what == "instance" else prices.load_balancer
            label = "instance type" if what == "instance" else "load balancer type"
            price = table.get(size or "")
            if price is None:
                return self._unknown(f"no price for {label} {size or '?'} in {region}")
            return self._known(price, f"{size} on-demand in {region}")
        if what == "volume":
            per_month = prices.volume_gb_month.get(size or "")
            if per_month is None:
                return self._unknown(f"no price for volume type {size or '?'} in {region}")
            return self._known(gigabytes * per_month / self.hours_per_month, f"{gigabytes:g} GB {size} in {region}")
        if what in ("nat_gateway", "public_ipv4"):
            price = getattr(prices, what)
            label = "NAT gateway" if what == "nat_gateway" else "public IPv4 address"
            if price is None:
                return self._unknown(f"no price for a {label} in {region}")
            return self._known(price, f"{label} in {region}")
        if what in ("snapshot", "s3"):
            per_month = prices.snapshot_gb_month if what == "snapshot" else prices.s3_gb_month
            label = "snapshot storage" if what == "snapshot" else "S3 storage"
            if per_month is None:
                return self._unknown(f"no price for {label} in {region}")
            return self._known(gigabytes * per_month / self.hours_per_month, f"{_gb(gigabytes)} of {label} in {region}")
        raise ValueError(f"unknown priced kind {what!r}")

    def free(self, why: str) -> Cost:
        """Something with no hourly charge of its own."""
        return Cost(0.0, why, self.date)

    def unmeasured(self, why: str) -> Cost:
        return self._unknown(why)

    def _known(self, usd: float, basis: str) -> Cost:
        return Cost(usd, basis, self.date)

    def _unknown(self, why: str) -> Cost:
        return Cost(None, why, self.date)


def _gb(gigabytes: float) -> str:
    return f"{gigabytes:g} GB" if gigabytes >= 0.01 else f"{gigabytes * 1024 * 1024:.0f} KB"


@dataclass(frozen=True)
class Cost:
    """An hourly cost estimate: USD per hour, or None when unknown (never a made-up zero)."""

    usd_per_hour: float | None
    basis: str  # what it was priced as, or why it is unknown
    price_table: str  # the table's date

    @property
    def unknown(self) -> bool:
        return self.usd_per_hour is None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "usd_per_hour": None if self.usd_per_hour is None else significant(self.usd_per_hour),
            "estimate": True,
            "price_table": self.price_table,
            "basis": self.basis,
        }
        if self.usd_per_hour is None:
            data["unknown"] = True
        return data

    def label(self) -> str:
        if self.usd_per_hour is None:
            return "unknown"
        return f"~${significant(self.usd_per_hour):g}/h"


def significant(value: float, digits: int = 4) -> float:
    """``value`` to a few significant digits (a state file's cost is tiny, not zero)."""
    return float(f"{value:.{digits}g}")


# -- reading and checking a table --------------------------------------------------------------


def parse_table(data: Any, label: str, source: str) -> PriceTable:
    """A price table from its JSON; a mistake is one line naming the file and the key."""

    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(f"{label}: {key}: {message}" if key else f"{label}: {message}")

    def price(value: Any, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise fail(key, f"expected a price in USD (a number, 0 or more), got {value!r}")
        return float(value)

    if not isinstance(data, dict):
        raise fail("", "expected a JSON object with date and regions")
    when = data.get("date")
    if not isinstance(when, str) or not DATE.match(when):
        raise fail("date", f"expected the date the prices were read, such as 2026-11-01, got {when!r}")
    hours = price(data.get("hours_per_month", 730), "hours_per_month")
    if hours <= 0:
        raise fail("hours_per_month", "expected a number of hours above 0")
    regions = data.get("regions")
    if not isinstance(regions, dict) or not regions:
        raise fail("regions", "expected a table of regions, each with its prices")
    out: dict[str, RegionPrices] = {}
    for region, raw in regions.items():
        where = f"regions.{region}"
        if not isinstance(raw, dict):
            raise fail(where, "expected a table of prices")
        unknown = sorted(set(raw) - {*PER_TYPE, *HOURLY, *MONTHLY})
        if unknown:
            raise fail(f"{where}.{unknown[0]}", "unknown key")
        per_type: dict[str, dict[str, float]] = {}
        for key in PER_TYPE:
            table = raw.get(key, {})
            if not isinstance(table, dict):
                raise fail(f"{where}.{key}", "expected a table of prices by type")
            per_type[key] = {str(k): price(v, f"{where}.{key}.{k}") for k, v in table.items()}
        singles = {k: price(raw[k], f"{where}.{k}") if k in raw else None for k in (*HOURLY, *MONTHLY)}
        out[str(region)] = RegionPrices(
            instance=per_type["instance"],
            load_balancer=per_type["load_balancer"],
            volume_gb_month=per_type["volume_gb_month"],
            nat_gateway=singles["nat_gateway"],
            public_ipv4=singles["public_ipv4"],
            snapshot_gb_month=singles["snapshot_gb_month"],
            s3_gb_month=singles["s3_gb_month"],
        )
    source_note = data.get("source")
    note = source_note if isinstance(source_note, str) else ""
    return PriceTable(when, out, source, hours, note)


def read_table(path: Path) -> PriceTable:
    """A price table file (the deck's own, or a refreshed one)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"price table {path}: cannot read it ({exc.strerror or exc})") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"price table {path}: invalid JSON ({exc})") from None
    return parse_table(data, f"price table {path}", str(path))


def shipped_table() -> PriceTable:
    item = resources.files("opsdeck.core.hygiene") / SHIPPED
    try:
        data = json.loads(item.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise OpsdeckError(f"opsdeck's price table is missing or broken ({exc}); reinstall opsdeck") from None
    return parse_table(data, f"opsdeck's {SHIPPED}", "shipped")


def refreshed_path() -> Path:
    return paths.data_dir() / "prices.json"


def load_table(deck_table: Path | None = None) -> PriceTable:
    """The deck's own table when it names one; else the refreshed table when newer than the shipped one."""
    if deck_table is not None:
        return read_table(deck_table)
    shipped = shipped_table()
    refreshed = refreshed_path()
    if refreshed.is_file():
        table = read_table(refreshed)
        if table.date >= shipped.date:
            return PriceTable(table.date, table.regions, "refreshed", table.hours_per_month, table.note)
    return shipped


# -- the AWS Price List API ---------------------------------------------------------------------

Fetch = Callable[[str, dict[str, str]], list[dict[str, Any]]]
"""(service code, TERM_MATCH filters) -> the Price List API's product documents."""


def on_demand_price(
    products: list[dict[str, Any]], unit: str, match: Callable[[dict[str, Any]], bool] | None = None
) -> float | None:
    """The on-demand price per ``unit`` (Hrs, GB-Mo) in USD in Price List product documents: the first
    product ``match`` accepts with a first-tier (beginRange 0) price above zero; None when none has one.

    A document is ``{"product": {"productFamily", "attributes": {...}}, "terms": {"OnDemand": {OFFER:
    {"priceDimensions": {RATE: {"unit": "Hrs", "beginRange": "0", "pricePerUnit": {"USD": "0.0104"}}}}}}}``.
    """
    for doc in products:
        attributes = (doc.get("product") or {}).get("attributes") or {}
        if match is not None and not match(attributes):
            continue
        for offer in ((doc.get("terms") or {}).get("OnDemand") or {}).values():
            for dimension in (offer.get("priceDimensions") or {}).values():
                if str(dimension.get("unit", "")).lower() != unit.lower():
                    continue
                if str(dimension.get("beginRange", "0")) not in ("0", "0.0"):
                    continue
                try:
                    usd = float((dimension.get("pricePerUnit") or {}).get("USD", ""))
                except ValueError:
                    continue
                if usd > 0:
                    return usd
    return None


def _usage(suffix: str) -> Callable[[dict[str, Any]], bool]:
    return lambda attributes: str(attributes.get("usagetype", "")).endswith(suffix)


def refresh_table(fetch: Fetch, regions: list[str], base: PriceTable, today: date) -> tuple[PriceTable, list[str]]:
    """A new table dated ``today`` with every price of ``base`` (in ``regions`` too) read again from the
    Price List API; a price the API does not give keeps its old value, and is named in the notes."""
    notes: list[str] = []
    template = base.regions.get(regions[0]) if regions else None
    out: dict[str, RegionPrices] = {}
    for region in sorted({*base.regions, *regions}):
        old = base.regions.get(region) or template or RegionPrices()

        def keep(what: str, new: float | None, previous: float | None, region: str = region) -> float | None:
            if new is None:
                notes.append(f"{region}: no {what} price from the Price List API; kept {previous}")
                return previous
            return new

        ec2 = {"regionCode": region}
        instance = {
            t: keep(
                t,
                on_demand_price(
                    fetch(
                        "AmazonEC2",
                        {
                            **ec2,
                            "instanceType": t,
                            "operatingSystem": "Linux",
                            "tenancy": "Shared",
                            "preInstalledSw": "NA",
                            "capacitystatus": "Used",
                        },
                    ),
                    "Hrs",
                ),
                p if region in base.regions else None,
            )
            for t, p in old.instance.items()
        }
        volumes = {
            v: keep(
                f"{v} volume",
                on_demand_price(fetch("AmazonEC2", {**ec2, "productFamily": "Storage", "volumeApiName": v}), "GB-Mo"),
                p if region in base.regions else None,
            )
            for v, p in old.volume_gb_month.items()
        }
        families = {"application": "Load Balancer-Application", "network": "Load Balancer-Network"}
        balancers = {
            kind: keep(
                f"{kind} load balancer",
                on_demand_price(
                    fetch("AWSELB", {**ec2, "productFamily": families.get(kind, "Load Balancer-Gateway")}),
                    "Hrs",
                    _usage("LoadBalancerUsage"),
                ),
                p if region in base.regions else None,
            )
            for kind, p in old.load_balancer.items()
        }
        here = region in base.regions
        nat = keep(
            "NAT gateway",
            on_demand_price(
                fetch("AmazonEC2", {**ec2, "productFamily": "NAT Gateway"}), "Hrs", _usage("NatGateway-Hours")
            ),
            old.nat_gateway if here else None,
        )
        ipv4 = keep(
            "public IPv4",
            on_demand_price(fetch("AmazonVPC", ec2), "Hrs", _usage("PublicIPv4:InUseAddress")),
            old.public_ipv4 if here else None,
        )
        snapshot = keep(
            "snapshot",
            on_demand_price(
                fetch("AmazonEC2", {**ec2, "productFamily": "Storage Snapshot"}), "GB-Mo", _usage("EBS:SnapshotUsage")
            ),
            old.snapshot_gb_month if here else None,
        )
        s3 = keep(
            "S3 storage",
            on_demand_price(
                fetch("AmazonS3", {**ec2, "storageClass": "General Purpose", "volumeType": "Standard"}), "GB-Mo"
            ),
            old.s3_gb_month if here else None,
        )
        out[region] = RegionPrices(
            instance={k: v for k, v in instance.items() if v is not None},
            load_balancer={k: v for k, v in balancers.items() if v is not None},
            volume_gb_month={k: v for k, v in volumes.items() if v is not None},
            nat_gateway=nat,
            public_ipv4=ipv4,
            snapshot_gb_month=snapshot,
            s3_gb_month=s3,
        )
    note = f"AWS Price List API (on-demand, Linux, shared tenancy), read on {today.isoformat()}"
    return PriceTable(today.isoformat(), out, "refreshed", base.hours_per_month, note), notes


def write_table(table: PriceTable, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(table.to_json(), indent=2) + "\n")


def refresh_from_aws(deck: Deck, today: date | None = None) -> tuple[PriceTable, list[str], Path]:
    """Read every price of the current table again (and the deck's regions) from the AWS Price List API
    with the build account's credentials, and save it as the refreshed table; (table, notes, path)."""
    if deck.is_local:
        raise OpsdeckError(
            "the local cloud has no AWS Price List API (moto does not implement it): refresh prices on a real "
            "account; the shipped table stays in use"
        )
    pricing = deck.tools.build(PRICING_REGION).hygiene()
    own = deck.root / deck.config.orphans.price_table if deck.config.orphans.price_table else None
    table, notes = refresh_table(
        pricing.price_products, deck.config.regions, load_table(own), today or datetime.now(UTC).date()
    )
    path = refreshed_path()
    write_table(table, path)
    return table, notes, path
