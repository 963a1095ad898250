"""The AWS Price List API: every price of the current table read again, on-demand, into a new dated table
(`opsdeck orphans --refresh-prices`); a price the API does not give keeps its old value and is named."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from opsdeck.core.estate.deck import Deck
from opsdeck.core.hygiene import prices
from opsdeck.core.hygiene.prices import PRICING_REGION, PriceTable, RegionPrices, load_table
from opsdeck.errors import OpsdeckError
from opsdeck.files import write_atomic

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
        out[region] = _region_prices(fetch, region, old, region in base.regions, notes)
    note = f"AWS Price List API (on-demand, Linux, shared tenancy), read on {today.isoformat()}"
    return PriceTable(today.isoformat(), out, "refreshed", base.hours_per_month, note), notes


def _region_prices(fetch: Fetch, region: str, old: RegionPrices, known: bool, notes: list[str]) -> RegionPrices:
    """One region's prices read again; ``known``: the old table has the region (else its prices are only
    the list of what to ask, kept from the first region's, never kept as values)."""

    def keep(what: str, new: float | None, previous: float | None) -> float | None:
        if new is None:
            notes.append(f"{region}: no {what} price from the Price List API; kept {previous}")
            return previous
        return new

    def ask(
        what: str, service: str, filters: dict[str, str], unit: str, usage: str | None, previous: float | None
    ) -> float | None:
        products = fetch(service, {"regionCode": region, **filters})
        return keep(
            what, on_demand_price(products, unit, _usage(usage) if usage else None), previous if known else None
        )

    linux = {"operatingSystem": "Linux", "tenancy": "Shared", "preInstalledSw": "NA", "capacitystatus": "Used"}
    instance = {t: ask(t, "AmazonEC2", {"instanceType": t, **linux}, "Hrs", None, p) for t, p in old.instance.items()}
    volumes = {
        v: ask(f"{v} volume", "AmazonEC2", {"productFamily": "Storage", "volumeApiName": v}, "GB-Mo", None, p)
        for v, p in old.volume_gb_month.items()
    }
    families = {"application": "Load Balancer-Application", "network": "Load Balancer-Network"}
    balancers = {
        kind: ask(
            f"{kind} load balancer",
            "AWSELB",
            {"productFamily": families.get(kind, "Load Balancer-Gateway")},
            "Hrs",
            "LoadBalancerUsage",
            p,
        )
        for kind, p in old.load_balancer.items()
    }
    return RegionPrices(
        instance={k: v for k, v in instance.items() if v is not None},
        load_balancer={k: v for k, v in balancers.items() if v is not None},
        volume_gb_month={k: v for k, v in volumes.items() if v is not None},
        nat_gateway=ask(
            "NAT gateway", "AmazonEC2", {"productFamily": "NAT Gateway"}, "Hrs", "NatGateway-Hours", old.nat_gateway
        ),
        public_ipv4=ask("public IPv4", "AmazonVPC", {}, "Hrs", "PublicIPv4:InUseAddress", old.public_ipv4),
        snapshot_gb_month=ask(
            "snapshot",
            "AmazonEC2",
            {"productFamily": "Storage Snapshot"},
            "GB-Mo",
            "EBS:SnapshotUsage",
            old.snapshot_gb_month,
        ),
        s3_gb_month=ask(
            "S3 storage",
            "AmazonS3",
            {"storageClass": "General Purpose", "volumeType": "Standard"},
            "GB-Mo",
            None,
            old.s3_gb_month,
        ),
    )


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
    path = prices.refreshed_path()  # through the module: tests point it elsewhere
    write_table(table, path)
    return table, notes, path
