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
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsdeck import paths
from opsdeck.errors import ConfigError, OpsdeckError

if TYPE_CHECKING:
    pass

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
