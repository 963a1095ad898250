"""Orphans on the fake cloud: what is found, its age and cost, and how removal behaves."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from opsdeck.core.estate.backend import Backend
from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.hygiene.orphans import OrphanReport, find_orphans
from opsdeck.core.hygiene.price_list import on_demand_price, refresh_table
from opsdeck.core.hygiene.prices import PriceTable, load_table, parse_table, read_table, shipped_table
from opsdeck.core.hygiene.removal import Removal, plan_removal, remove_orphans
from opsdeck.core.release.bake import bake
from opsdeck.core.release.distribute import make_usable
from opsdeck.core.release.images import load_catalog
from opsdeck.core.safety import audit
from opsdeck.core.types.hygiene import Snapshot, Tagged
from opsdeck.errors import ConfigError, OpsdeckError, RefusedError
from tests.fake_hygiene import set_modified
from tests.fakes import World, fake_tools
from tests.unit.estate import make_estate

HOUR = 3600.0
BUILD = ("111111111111", "us-east-1")
STATE_BUCKET = "opsdeck-demo-tfstate-111111111111"
OURS_QA = {"env": "qa", "managed_by": "terraform"}  # an environment the deck lacks, made by its modules


@pytest.fixture()
def estate(tmp_path: Path) -> Iterator[tuple[Deck, World]]:
    deck, world = make_estate(tmp_path / "deck")
    yield deck, world
    deck.tools.git.close()  # type: ignore[attr-defined]  # its persistent `git cat-file` processes


def scan(deck: Deck, **kw: Any) -> OrphanReport:
    return asyncio.run(find_orphans(deck, Reporter("orphans"), **kw))


def plant(world: World, place: tuple[str, str], item: Tagged) -> None:
    world.place(*place).tagged.append(item)


def by_id(report: OrphanReport) -> dict[str, dict[str, Any]]:
    return {o["id"]: o for o in report.to_json()["orphans"]}


# -- finding -----------------------------------------------------------------------------------


def test_a_clean_estate_has_no_orphans(estate: tuple[Deck, World]) -> None:
    deck, _ = estate
    report = scan(deck)
    assert report.orphans == ()
    places = {(p.account, p.region) for p in report.places}
    assert places == {
        BUILD,
        ("111111111111", "us-west-2"),
        ("222222222222", "us-east-1"),
        ("333333333333", "us-west-2"),
    }
    assert report.total_json() == {"usd_per_hour": 0.0, "unknown": 0, "estimate": True, "price_table": "2026-11-01"}


def test_hand_launched_instance_of_an_unknown_environment(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    now = time.time()
    plant(world, BUILD, Tagged("ec2:instance", "i-byhand", {"env": "qa"}, now - 5 * HOUR, "t3.micro", state="running"))
    plant(world, BUILD, Tagged("ec2:volume", "vol-1", {"env": "qa"}, now - 2 * HOUR, "gp3", gigabytes=100.0))
    plant(world, BUILD, Tagged("ec2:natgateway", "nat-1", {"env": "qa"}, now - HOUR))
    plant(world, BUILD, Tagged("ec2:elastic-ip", "eipalloc-1", {"env": "qa"}, size="idle"))
    plant(world, BUILD, Tagged("elasticloadbalancing:loadbalancer", "app/x/1", {"env": "qa"}, now, "application"))
    report = scan(deck, now=now)
    found = by_id(report)
    instance = found["i-byhand"]
    assert instance["kind"] == "unknown-env"
    assert (instance["account"], instance["region"], instance["type"]) == (*BUILD, "ec2:instance")
    assert instance["age_hours"] == 5.0
    assert instance["cost"] == {
        "usd_per_hour": 0.0104,
        "estimate": True,
        "price_table": "2026-11-01",
        "basis": "t3.micro on-demand in us-east-1",
    }
    assert "'qa', which this deck does not have" in instance["detail"]
    assert found["vol-1"]["cost"]["usd_per_hour"] == pytest.approx(100 * 0.08 / 730, rel=1e-3)
    assert found["nat-1"]["cost"]["usd_per_hour"] == 0.045
    assert found["eipalloc-1"]["cost"]["usd_per_hour"] == 0.005
    assert found["eipalloc-1"]["age_hours"] is None  # addresses carry no creation time
    assert found["app/x/1"]["cost"]["usd_per_hour"] == 0.0225
    assert report.usd_per_hour == pytest.approx(0.0104 + 100 * 0.08 / 730 + 0.045 + 0.005 + 0.0225)
    assert report.total_json()["usd_per_hour"] == 0.09386  # four significant digits


def test_a_deck_environment_tagged_outside_its_own_account_is_an_orphan(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    plant(world, BUILD, Tagged("ec2:instance", "i-lost", {"env": "staging"}, time.time(), "t3.small", state="running"))
    plant(world, BUILD, Tagged("ec2:instance", "i-dev", {"env": "dev"}, time.time(), "t3.small", state="running"))
    found = by_id(scan(deck))
    assert "i-dev" not in found  # dev lives here: drift's business, not an orphan
    assert "staging lives in account 222222222222 us-east-1" in found["i-lost"]["detail"]


def test_a_type_the_price_table_lacks_is_unknown_never_zero(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    plant(world, BUILD, Tagged("ec2:instance", "i-odd", {"env": "qa"}, time.time(), "x9.enormous", state="running"))
    plant(world, BUILD, Tagged("ec2:instance", "i-ok", {"env": "qa"}, time.time(), "t3.medium", state="running"))
    report = scan(deck)
    odd = by_id(report)["i-odd"]["cost"]
    assert odd["usd_per_hour"] is None and odd["unknown"] is True and odd["estimate"] is True
    assert "no price for instance type x9.enormous in us-east-1" in odd["basis"]
    assert report.total_json() == {"usd_per_hour": 0.0416, "unknown": 1, "estimate": True, "price_table": "2026-11-01"}


def test_a_stopped_instance_costs_no_instance_hours(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    plant(world, BUILD, Tagged("ec2:instance", "i-off", {"env": "qa"}, time.time(), "t3.large", state="stopped"))
    cost = by_id(scan(deck))["i-off"]["cost"]
    assert cost["usd_per_hour"] == 0.0 and "stopped" in cost["basis"]


def test_leftover_state_files(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    now = time.time()
    body = json.dumps({"version": 4, "serial": 3, "resources": []}).encode()
    world.objects[(STATE_BUCKET, "shop/qa/terraform.tfstate")] = body
    set_modified(world, STATE_BUCKET, "shop/qa/terraform.tfstate", now - 30 * HOUR)
    world.objects[(STATE_BUCKET, "shop/dev/terraform.tfstate.tflock")] = b"{}"  # a lock, not a state
    world.objects[(STATE_BUCKET, "notes.txt")] = b"hello"
    report = scan(deck, now=now)
    found = by_id(report)
    assert set(found) == {"shop/qa/terraform.tfstate"}
    state = found["shop/qa/terraform.tfstate"]
    assert (state["kind"], state["type"], state["bucket"]) == ("state-file", "s3:object", STATE_BUCKET)
    assert state["account"] == "111111111111" and state["age_hours"] == 30.0
    assert 0 < state["cost"]["usd_per_hour"] < 1e-6  # tiny, and still not zero
    assert "S3 storage" in state["cost"]["basis"]


def test_old_unpinned_images_their_copies_and_snapshots(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    rep = Reporter("test")
    for version in ("1.0.1", "1.0.2", "1.0.3", "1.0.4"):
        asyncio.run(bake(deck, rep, services=["web"], version=version))
    catalog = load_catalog(deck)
    old = next(i for i in catalog.service_images("web") if i.version == "1.0.1")
    copy = asyncio.run(make_usable(deck, catalog, old, "prod", rep)).usable_id
    world.place(*BUILD).snapshots[old.id] = [Snapshot("snap-old", 8.0)]
    world.place("111111111111", "us-west-2").snapshots[copy] = [Snapshot("snap-copy", 8.0)]
    report = scan(deck)
    found = by_id(report)
    assert set(found) == {old.id, copy, "snap-old", "snap-copy"}  # 1.0.0 is pinned; 1.0.2-1.0.4 are the newest 3
    assert found[old.id]["kind"] == "image" and found[old.id]["region"] == "us-east-1"
    assert found[old.id]["cost"]["usd_per_hour"] == 0.0 and "snapshots are counted" in found[old.id]["cost"]["basis"]
    assert found[old.id]["age_hours"] is not None
    assert found[copy]["region"] == "us-west-2" and f"copy of {old.id}" in found[copy]["detail"]
    assert found["snap-old"]["image"] == old.id
    assert found["snap-old"]["cost"]["usd_per_hour"] == pytest.approx(8 * 0.05 / 730, rel=1e-3)
    # keeping more images keeps it
    assert not [o for o in scan(deck, keep_images=4).orphans if o.kind == "image"]
    with pytest.raises(OpsdeckError, match="keep-images: expected 1 or more"):
        scan(deck, keep_images=0)


def test_a_pinned_or_running_image_is_never_an_orphan(estate: tuple[Deck, World]) -> None:
    deck, _ = estate
    rep = Reporter("test")
    for version in ("1.0.1", "1.0.2", "1.0.3", "1.0.4", "1.0.5"):
        asyncio.run(bake(deck, rep, services=["api"], version=version))
    images = {i.version: i.id for i in load_catalog(deck).service_images("api")}
    pins = deck.root / "envs/sandbox/images.auto.tfvars.json"
    data = json.loads(pins.read_text())
    data["images"]["api"] = images["1.0.1"]  # pinned in the working tree only (not committed yet)
    pins.write_text(json.dumps(data))
    kinds = {o.id: o.kind for o in scan(deck, keep_images=1).orphans}
    assert images["1.0.1"] not in kinds  # pinned in the working tree
    assert images["1.0.0"] not in kinds  # pinned at HEAD and run by every environment
    assert {images[v] for v in ("1.0.2", "1.0.3", "1.0.4")} <= set(kinds)
    assert images["1.0.5"] not in kinds  # the newest


def test_old_sandboxes(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    now = time.time()
    plant(
        world, BUILD, Tagged("ec2:instance", "i-sb", {"env": "sandbox"}, now - 100 * HOUR, "t3.small", state="running")
    )
    found = by_id(scan(deck, now=now))
    sandbox = found["sandbox"]
    assert (sandbox["kind"], sandbox["type"], sandbox["removable"]) == ("sandbox", "environment", False)
    assert sandbox["age_hours"] == 100.0
    assert "nuke-rebuild sandbox" in sandbox["how"]
    # the fake's group instances have no price facts beyond t3.micro: the sum is known
    assert sandbox["cost"]["usd_per_hour"] > 0.0208
    assert "i-sb" not in found  # a sandbox's own resources are the sandbox's, not orphans of their own
    assert "sandbox" not in by_id(scan(deck, now=now - 50 * HOUR))


def test_recovered_copies_older_than_the_age(estate: tuple[Deck, World]) -> None:
    from opsdeck.core.sandbox.copies import RecoveredCopy, write_copy

    deck, world = estate
    now = time.time()
    key = "shop/staging/recover-us-west-2/terraform.tfstate"
    state = Backend("opsdeck-demo-tfstate-222222222222", key, "us-east-1")
    write_copy(deck, RecoveredCopy("staging", "us-west-2", "222222222222", now - 30 * HOUR, now, {}, {}, state))
    world.objects[(state.bucket, key)] = b"{}"
    plant(
        world,
        ("222222222222", "us-west-2"),
        Tagged("ec2:instance", "i-copy", {"env": "staging"}, now, "t3.micro", state="running"),
    )
    report = scan(deck, now=now)
    found = by_id(report)
    assert key not in found  # the copy's state is in use
    assert "i-copy" not in found  # staging lives in us-west-2 too, as its copy
    copy = found["staging@us-west-2"]
    assert (copy["kind"], copy["region"], copy["account"], copy["removable"]) == (
        "recovered-copy",
        "us-west-2",
        "222222222222",
        False,
    )
    assert copy["how"] == "destroy it with `opsdeck recover staging --region us-west-2 --destroy`"
    assert ("222222222222", "us-west-2") in {(p.account, p.region) for p in report.places}
    assert "staging@us-west-2" not in by_id(scan(deck, now=now - 10 * HOUR))


# -- prices ------------------------------------------------------------------------------------


def test_the_shipped_table_is_dated_and_prices_the_sample_types() -> None:
    table = shipped_table()
    assert table.date == "2026-11-01" and table.source == "shipped"
    for kind in ("t3.micro", "t3.small", "t3.medium"):
        assert table.cost("instance", "us-west-2", size=kind).usd_per_hour
    assert table.cost("instance", "ap-south-9", size="t3.micro").basis == "no prices for region ap-south-9 in the table"


def test_a_deck_price_table_without_a_type(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    own = {"date": "2026-10-01", "regions": {"us-east-1": {"instance": {"t3.small": 0.02}}}}
    (deck.root / "prices.json").write_text(json.dumps(own))
    toml = deck.root / "opsdeck.toml"
    toml.write_text(toml.read_text() + '\n[orphans]\nprice_table = "prices.json"\nkeep_images = 2\n')
    deck = Deck.open(deck.root, tools=fake_tools(world))
    plant(world, BUILD, Tagged("ec2:instance", "i-1", {"env": "qa"}, time.time(), "t3.micro", state="running"))
    plant(world, BUILD, Tagged("ec2:natgateway", "nat-1", {"env": "qa"}, time.time()))
    report = scan(deck)
    deck.tools.git.close()  # type: ignore[attr-defined]
    assert report.keep_images == 2
    found = by_id(report)
    assert found["i-1"]["cost"]["usd_per_hour"] is None and found["i-1"]["cost"]["price_table"] == "2026-10-01"
    assert found["nat-1"]["cost"] == {
        "usd_per_hour": None,
        "estimate": True,
        "price_table": "2026-10-01",
        "basis": "no price for a NAT gateway in us-east-1",
        "unknown": True,
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("[]", "expected a JSON object with date and regions"),
        ('{"date": "last week", "regions": {}}', "date: expected the date the prices were read"),
        ('{"date": "2026-11-01"}', "regions: expected a table of regions"),
        (
            '{"date": "2026-11-01", "regions": {"us-east-1": {"instance": {"t3.micro": "cheap"}}}}',
            "regions.us-east-1.instance.t3.micro: expected a price in USD",
        ),
        ('{"date": "2026-11-01", "regions": {"us-east-1": {"instances": {}}}}', "regions.us-east-1.instances: unknown"),
        ('{"date": "2026-11-01", "regions": {"us-east-1": {"nat_gateway": -1}}}', "nat_gateway: expected a price"),
        ("{not json", "invalid JSON"),
        ('{"date": "2026-11-01", "regions": {"us-east-1": {"nat_gateway": NaN}}}', "nat_gateway: expected a price"),
        (
            '{"date": "2026-11-01", "regions": {"us-east-1": {"instance": {"t3.micro": Infinity}}}}',
            "regions.us-east-1.instance.t3.micro: expected a price in USD .* got inf",
        ),
    ],
)
def test_a_bad_price_table_is_one_line(tmp_path: Path, data: str, message: str) -> None:
    path = tmp_path / "prices.json"
    path.write_text(data)
    with pytest.raises(ConfigError, match=message) as caught:
        read_table(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("keep_images = 0", "orphans.keep_images: expected 1 or more images to keep, got 0"),
        ("sandbox_max_age_hours = -1", "orphans.sandbox_max_age_hours: expected a number of hours above 0"),
        ('price_table = "nowhere.json"', "orphans.price_table: expected a JSON price table, nowhere.json does not"),
        ('keep_images = "three"', "orphans.keep_images: expected an integer"),
        ("keep = 3", "orphans.keep: unknown key"),
    ],
)
def test_bad_orphans_settings(estate: tuple[Deck, World], table: str, message: str) -> None:
    deck, world = estate
    toml = deck.root / "opsdeck.toml"
    toml.write_text(toml.read_text() + f"\n[orphans]\n{table}\n")
    with pytest.raises(ConfigError, match=message):
        Deck.open(deck.root, tools=fake_tools(world))


def test_a_refreshed_table_newer_than_the_shipped_one_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    refreshed = tmp_path / "prices.json"
    monkeypatch.setattr("opsdeck.core.hygiene.prices.refreshed_path", lambda: refreshed)
    assert load_table().source == "shipped"
    refreshed.write_text(json.dumps({"date": "2027-01-05", "regions": {"us-east-1": {"nat_gateway": 0.05}}}))
    table = load_table()
    assert (table.date, table.source) == ("2027-01-05", "refreshed")
    refreshed.write_text(json.dumps({"date": "2025-01-05", "regions": {"us-east-1": {"nat_gateway": 0.05}}}))
    assert load_table().source == "shipped"  # an older refresh does not win over a newer opsdeck


def _product(family: str, attributes: dict[str, str], unit: str, usd: str, begin: str = "0") -> dict[str, Any]:
    """A Price List API product document, in the shape AWS documents for GetProducts."""
    return {
        "product": {"productFamily": family, "attributes": attributes, "sku": "SKU1"},
        "serviceCode": "AmazonEC2",
        "terms": {
            "OnDemand": {
                "SKU1.JRTCKXETXF": {
                    "offerTermCode": "JRTCKXETXF",
                    "sku": "SKU1",
                    "effectiveDate": "2026-11-01T00:00:00Z",
                    "priceDimensions": {
                        "SKU1.JRTCKXETXF.6YS6EN2CT7": {
                            "unit": unit,
                            "beginRange": begin,
                            "endRange": "Inf",
                            "description": "$0.0104 per On Demand Linux t3.micro Instance Hour",
                            "pricePerUnit": {"USD": usd},
                            "rateCode": "SKU1.JRTCKXETXF.6YS6EN2CT7",
                        }
                    },
                    "termAttributes": {},
                }
            }
        },
        "version": "20261101000000",
        "publicationDate": "2026-11-01T00:00:00Z",
    }


def test_price_list_product_documents_are_read() -> None:
    instance = _product("Compute Instance", {"instanceType": "t3.micro", "regionCode": "us-east-1"}, "Hrs", "0.0104")
    assert on_demand_price([instance], "Hrs") == 0.0104
    assert on_demand_price([instance], "GB-Mo") is None  # not the unit asked for
    free = _product("Compute Instance", {"instanceType": "t3.micro"}, "Hrs", "0.0000000000")
    assert on_demand_price([free, instance], "Hrs") == 0.0104  # a zero price is not a price
    nat = _product("NAT Gateway", {"usagetype": "USE1-NatGateway-Bytes"}, "GB", "0.045")
    hours = _product("NAT Gateway", {"usagetype": "NatGateway-Hours"}, "Hrs", "0.045")
    assert on_demand_price([nat, hours], "Hrs", lambda a: a["usagetype"].endswith("NatGateway-Hours")) == 0.045
    tiered = _product("Storage", {"storageClass": "General Purpose"}, "GB-Mo", "0.022", begin="51200")
    assert on_demand_price([tiered], "GB-Mo") is None  # only the first tier


def test_refresh_reads_every_price_again_and_keeps_what_the_api_lacks() -> None:
    base = parse_table(
        {
            "date": "2026-11-01",
            "regions": {
                "us-east-1": {
                    "instance": {"t3.micro": 0.0104, "t3.small": 0.0208},
                    "volume_gb_month": {"gp3": 0.08},
                    "nat_gateway": 0.045,
                }
            },
        },
        "test",
        "shipped",
    )
    asked: list[tuple[str, dict[str, str]]] = []

    def fetch(service: str, filters: dict[str, str]) -> list[dict[str, Any]]:
        asked.append((service, filters))
        if filters.get("instanceType") == "t3.micro":
            return [_product("Compute Instance", filters, "Hrs", "0.0110")]
        if filters.get("volumeApiName") == "gp3":
            return [_product("Storage", filters, "GB-Mo", "0.0800000000")]
        return []

    table, notes = refresh_table(fetch, ["us-east-1"], base, date(2027, 2, 3))
    assert table.date == "2027-02-03" and table.source == "refreshed"
    prices = table.regions["us-east-1"]
    assert prices.instance == {"t3.micro": 0.011, "t3.small": 0.0208}
    assert prices.volume_gb_month == {"gp3": 0.08} and prices.nat_gateway == 0.045
    assert "us-east-1: no t3.small price from the Price List API; kept 0.0208" in notes
    micro = next(f for s, f in asked if f.get("instanceType") == "t3.micro")
    assert micro == {
        "regionCode": "us-east-1",
        "instanceType": "t3.micro",
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
    }
    again = parse_table(table.to_json(), "again", "refreshed")  # what is written reads back the same
    assert again.regions == table.regions and again.date == table.date


def test_refresh_is_refused_on_the_local_cloud(estate: tuple[Deck, World]) -> None:
    from opsdeck.core.hygiene.price_list import refresh_from_aws

    deck, _ = estate
    with pytest.raises(OpsdeckError, match="local cloud has no AWS Price List API"):
        refresh_from_aws(deck)


# -- removal -----------------------------------------------------------------------------------


def _removable_estate(estate: tuple[Deck, World]) -> tuple[Deck, World, str]:
    deck, world = estate
    rep = Reporter("test")
    for version in ("1.0.1", "1.0.2", "1.0.3", "1.0.4"):
        asyncio.run(bake(deck, rep, services=["worker"], version=version))
    old = next(i for i in load_catalog(deck).service_images("worker") if i.version == "1.0.1")
    world.place(*BUILD).snapshots[old.id] = [Snapshot("snap-w", 8.0)]
    plant(world, BUILD, Tagged("ec2:instance", "i-byhand", OURS_QA, time.time(), "t3.micro", state="running"))
    world.objects[(STATE_BUCKET, "shop/qa/terraform.tfstate")] = b"{}"
    return deck, world, old.id


def test_removal_deletes_in_order_and_audits_each(estate: tuple[Deck, World]) -> None:
    deck, world, image = _removable_estate(estate)
    report = scan(deck)
    shown: list[Removal] = []

    async def confirm(removal: Removal) -> bool:
        shown.append(removal)
        return True

    rep = Reporter("orphans-delete")
    result = asyncio.run(remove_orphans(deck, report, rep, confirm=confirm))
    assert {o.id for o in shown[0].selected} == {"i-byhand", image, "snap-w", "shop/qa/terraform.tfstate"}
    assert [name for name, _ in rep.phases][-1] == "delete"  # the deletions are a phase of their own
    assert {o.id for o in result.deleted} == {"i-byhand", image, "snap-w", "shop/qa/terraform.tfstate"}
    assert result.failed == ()
    order = [c for c in world.calls if c.startswith(("remove", "deregister", "delete-snapshot"))]
    assert order == ["remove ec2:instance i-byhand", f"deregister {image}", "delete-snapshot snap-w"]
    assert (STATE_BUCKET, "shop/qa/terraform.tfstate") not in world.objects
    assert scan(deck).orphans == ()
    records = [r for r in audit.read(deck) if r.get("action") == "orphans-delete"]
    assert [r["result"] for r in records] == ["started", "ok"]
    assert {d["id"] for d in records[-1]["deleted"]} == {"i-byhand", image, "snap-w", "shop/qa/terraform.tfstate"}
    assert audit.verify(deck).ok


def test_removal_of_one_image_takes_its_snapshots(estate: tuple[Deck, World]) -> None:
    deck, _, image = _removable_estate(estate)
    report = scan(deck)
    removal = plan_removal(deck, report, ["snap-w"])
    assert {o.id for o in removal.selected} == {image, "snap-w"}
    result = asyncio.run(remove_orphans(deck, report, only=[image]))
    assert {o.id for o in result.deleted} == {image, "snap-w"}
    assert {o.id for o in scan(deck).orphans} == {"i-byhand", "shop/qa/terraform.tfstate"}
    with pytest.raises(OpsdeckError, match="no orphan with id i-nothere"):
        plan_removal(deck, report, ["i-nothere"])


def test_removal_not_confirmed_deletes_nothing(estate: tuple[Deck, World]) -> None:
    deck, world, _ = _removable_estate(estate)
    report = scan(deck)

    async def no(_: Removal) -> bool:
        return False

    with pytest.raises(RefusedError, match="not confirmed; nothing deleted"):
        asyncio.run(remove_orphans(deck, report, confirm=no))
    assert len(scan(deck).orphans) == len(report.orphans)
    assert not [c for c in world.calls if c.startswith(("remove", "deregister"))]


def test_orphans_in_protected_accounts_are_refused(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    prod = ("333333333333", "us-west-2")
    plant(world, prod, Tagged("ec2:instance", "i-prod", OURS_QA, time.time(), "t3.micro", state="running"))
    plant(world, BUILD, Tagged("ec2:instance", "i-dev", OURS_QA, time.time(), "t3.micro", state="running"))
    report = scan(deck)
    result = asyncio.run(remove_orphans(deck, report))
    assert [o.id for o in result.deleted] == ["i-dev"]
    assert [(o.id, why) for o, why in result.refused] == [
        ("i-prod", "account 333333333333 is listed in aws.protected_accounts")
    ]
    assert [t.id for t in world.place(*prod).tagged] == ["i-prod"]
    closing = [r for r in audit.read(deck) if r.get("action") == "orphans-delete"][-1]
    assert closing["refused"][0]["id"] == "i-prod"
    only_prod = asyncio.run(remove_orphans(deck, scan(deck), only=["i-prod"]))
    assert only_prod.deleted == () and len(only_prod.refused) == 1
    assert audit.read(deck)[-1]["result"] == "refused"


def test_a_failed_deletion_is_reported_and_audited(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    plant(world, BUILD, Tagged("ec2:instance", "i-1", OURS_QA, time.time(), "t3.micro", state="running"))
    report = scan(deck)

    async def gone(_: Removal) -> bool:  # gone after the confirmation: the fake answers NotFound
        world.place(*BUILD).tagged.clear()
        return True

    result = asyncio.run(remove_orphans(deck, report, confirm=gone))
    assert result.deleted == () and "NotFound" in result.failed[0][1]
    closing = audit.read(deck)[-1]
    assert closing["result"] == "failed" and closing["failed"][0]["id"] == "i-1"


def test_sandboxes_are_listed_but_not_removed(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    now = time.time()
    plant(
        world, BUILD, Tagged("ec2:instance", "i-sb", {"env": "sandbox"}, now - 100 * HOUR, "t3.small", state="running")
    )
    result = asyncio.run(remove_orphans(deck, scan(deck, now=now)))
    assert result.deleted == () and [o.id for o, _ in result.skipped] == ["sandbox"]


def test_the_json_shape(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    plant(world, BUILD, Tagged("ec2:instance", "i-1", {"env": "qa"}, time.time(), "t3.micro", state="running"))
    data = scan(deck).to_json()
    assert set(data) == {"orphans", "total", "price_table", "settings", "places", "scanned_at", "notes"}
    assert set(data["orphans"][0]) >= {"kind", "account", "region", "type", "id", "age_hours", "created", "cost"}
    assert data["price_table"] == {"date": "2026-11-01", "source": "shipped"}
    assert isinstance(PriceTable, type)


def test_cli_flags_that_need_delete() -> None:
    from opsdeck.cli import main

    assert main(["orphans", "--only", "i-1"]) == 1


# -- review fixes: what must never be taken for an orphan ------------------------------------------

COPY_PLACE = ("111111111111", "us-west-2")  # dev and sandbox live in 111111111111 us-east-1


def test_an_unrecorded_copy_is_listed_never_removed(estate: tuple[Deck, World]) -> None:
    """A recovery under way (or failed, or not pulled): its resources and state are not orphans to delete."""
    deck, world = estate
    now = time.time()
    ours = {"env": "dev", "managed_by": "terraform"}
    plant(world, COPY_PLACE, Tagged("ec2:instance", "i-copy", ours, now, "t3.micro", state="running"))
    plant(world, COPY_PLACE, Tagged("ec2:vpc", "vpc-copy", ours, now))
    backend = deck.backend("dev")
    assert backend is not None
    copy_key = backend.key.replace("/terraform.tfstate", "/recover-us-west-2/terraform.tfstate")
    world.objects[(backend.bucket, copy_key)] = b"{}"
    report = scan(deck, now=now)
    found = by_id(report)
    assert found[copy_key]["removable"] is False  # shaped as a copy's state: listed, never removed here
    assert found[copy_key]["how"] == "opsdeck recover dev --region us-west-2 --destroy"
    assert "recovered copy of dev in us-west-2 the ledger does not record" in found[copy_key]["detail"]
    for ident in ("i-copy", "vpc-copy"):
        assert found[ident]["removable"] is False
        assert found[ident]["how"] == "opsdeck recover dev --region us-west-2 --destroy"
        assert "possibly a recovered copy of dev" in found[ident]["detail"]
    result = asyncio.run(remove_orphans(deck, report))
    assert result.deleted == () and {o.id for o, _ in result.skipped} == {"i-copy", "vpc-copy", copy_key}
    assert {t.id for t in world.place(*COPY_PLACE).tagged} == {"i-copy", "vpc-copy"}
    assert (backend.bucket, copy_key) in world.objects


def test_an_unrecorded_copy_is_looked_for_where_its_state_says_it_runs(estate: tuple[Deck, World]) -> None:
    """A recover killed once Terraform applied the copy, before the ledger recorded it: the copy runs in an
    account and region the deck has no other reason to look in (staging's account in us-west-2), and its state
    is the only trace. Both are listed (unlock says `orphans` lists them), never removed."""
    deck, world = estate
    now = time.time()
    place = ("222222222222", "us-west-2")
    plant(world, place, Tagged("ec2:instance", "i-half", {"env": "staging", "managed_by": "terraform"}, now))
    assert place not in {(p.account, p.region) for p in scan(deck, now=now).places}
    backend = deck.backend("staging")
    assert backend is not None
    copy_key = backend.key.replace("/terraform.tfstate", "/recover-us-west-2/terraform.tfstate")
    world.objects[(backend.bucket, copy_key)] = b"{}"
    found = by_id(scan(deck, now=now))
    assert found["i-half"]["removable"] is False
    assert "possibly a recovered copy of staging" in found["i-half"]["detail"]
    assert found[copy_key]["removable"] is False


def _shared(deck: Deck, tmp_path: Path) -> Path:
    """Give the deck a team remote (a bare repository) and return a teammate's clone of it."""
    from tests.unit.estate import git

    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(deck.root, "remote", "add", "origin", str(remote))
    git(deck.root, "push", "-q", "-u", "origin", "main")
    mate = tmp_path / "mate"
    git(tmp_path, "clone", "-q", str(remote), str(mate))
    git(mate, "config", "user.name", "Mate")
    git(mate, "config", "user.email", "mate@example.com")
    return mate


def _push_record(mate: Path, copy: Any) -> str:
    """A teammate's clone records a recovered copy and pushes it; the record's path."""
    from opsdeck.core.sandbox.copies import record_rel
    from tests.unit.estate import git

    rel = record_rel(copy.env, copy.region)
    (mate / rel).parent.mkdir(parents=True)
    (mate / rel).write_text(json.dumps(copy.to_json()))
    git(mate, "add", rel)
    git(mate, "commit", "-qm", f"recovered {copy.env} into {copy.region}")
    git(mate, "push", "-q")
    return rel


def test_a_copy_pushed_by_a_teammate_is_pulled_before_the_scan(estate: tuple[Deck, World], tmp_path: Path) -> None:
    from opsdeck.core.sandbox.copies import RecoveredCopy

    deck, world = estate
    mate = _shared(deck, tmp_path)
    now = time.time()
    state = Backend("opsdeck-demo-tfstate-222222222222", "shop/staging/recover-us-west-2/terraform.tfstate")
    copy = RecoveredCopy("staging", "us-west-2", "222222222222", now - HOUR, now, {}, {}, state)
    rel = _push_record(mate, copy)
    plant(
        world,
        ("222222222222", "us-west-2"),
        Tagged("ec2:instance", "i-copy", {"env": "staging", "app": "web"}, now, "t3.micro", state="running"),
    )
    report = scan(deck, now=now)
    assert (deck.root / rel).is_file(), report.notes  # fast-forwarded
    assert "i-copy" not in by_id(report) and report.notes == ()


def test_removal_is_refused_when_the_ledger_cannot_be_synced(estate: tuple[Deck, World], tmp_path: Path) -> None:
    from tests.unit.estate import git

    deck, world, _ = _removable_estate(estate)
    _shared(deck, tmp_path)
    git(deck.root, "remote", "set-url", "origin", str(tmp_path / "gone.git"))
    report = scan(deck)
    assert any("cannot be reached" in n for n in report.notes)
    with pytest.raises(RefusedError, match="cannot be reached"):
        asyncio.run(remove_orphans(deck, report))
    assert not [c for c in world.calls if c.startswith(("remove", "deregister", "delete-snapshot"))]
    assert audit.read(deck)[-1]["result"] == "refused"


def test_nothing_of_a_locked_environment_is_deleted(estate: tuple[Deck, World]) -> None:
    from opsdeck.core.safety.locks import env_lock

    deck, world, image = _removable_estate(estate)
    now = time.time()
    lost = {"env": "staging", "app": "api"}  # staging's, in the build account: removable when not busy
    plant(world, BUILD, Tagged("ec2:instance", "i-lost", lost, now, "t3.micro", state="running"))
    report = scan(deck, now=now)
    assert by_id(report)["i-lost"]["removable"] is True
    with env_lock(deck, "staging", "recover"):
        result = asyncio.run(remove_orphans(deck, report))
    why = dict((o.id, w) for o, w in result.skipped)
    assert "staging's lock is held" in why["i-lost"]
    assert "lock is held" in why[image] and why["snap-w"] == f"its image {image} is kept"
    assert {o.id for o in result.deleted} == {"i-byhand", "shop/qa/terraform.tfstate"}
    assert "i-lost" in {t.id for t in world.place(*BUILD).tagged} and image in world.place(*BUILD).images
    closing = [r for r in audit.read(deck) if r.get("action") == "orphans-delete"][-1]
    assert {s["id"] for s in closing["skipped"]} == {"i-lost", image, "snap-w"}


def test_an_image_pinned_after_the_confirmation_is_kept(estate: tuple[Deck, World]) -> None:
    deck, world, image = _removable_estate(estate)
    report = scan(deck)

    async def pin_meanwhile(_: Removal) -> bool:  # a teammate's rollback lands while the operator types
        pins = deck.root / "envs/sandbox/images.auto.tfvars.json"
        data = json.loads(pins.read_text())
        data["images"]["worker"] = image
        pins.write_text(json.dumps(data))
        return True

    result = asyncio.run(remove_orphans(deck, report, confirm=pin_meanwhile))
    why = dict((o.id, w) for o, w in result.skipped)
    assert why[image].startswith(f"in use since the scan: {image}")
    assert why["snap-w"] == f"its image {image} is kept"
    assert image in world.place(*BUILD).images and f"deregister {image}" not in world.calls


def test_images_a_copy_record_or_an_open_request_names_are_kept(estate: tuple[Deck, World]) -> None:
    from opsdeck.core.release.images import SOURCE_TAG
    from opsdeck.core.sandbox.copies import RecoveredCopy, write_copy
    from opsdeck.core.types.cloud import Image

    deck, world = estate
    rep = Reporter("test")
    for version in ("1.0.1", "1.0.2", "1.0.3", "1.0.4", "1.0.5", "1.0.6"):
        asyncio.run(bake(deck, rep, services=["worker"], version=version))
    images = {i.version: i for i in load_catalog(deck).service_images("worker")}
    # a copy of 1.0.1 in eu-west-1, a region the deck only reaches through staging's recovered copy
    far = Image("ami-0eu0000000000001", "worker-1.0.1", images["1.0.1"].created, {SOURCE_TAG: images["1.0.1"].id})
    world.place("111111111111", "eu-west-1").images[far.id] = far
    state = Backend("opsdeck-demo-tfstate-222222222222", "shop/staging/recover-eu-west-1/terraform.tfstate")
    now = time.time()
    pins = {"worker": far.id}
    source = {"worker": images["1.0.2"].id}
    write_copy(deck, RecoveredCopy("staging", "eu-west-1", "222222222222", now, now, pins, source, state))
    for ident, version, done in (("req-open1", "1.0.3", False), ("req-done1", "1.0.4", True)):
        folder = deck.root / "requests" / ident
        folder.mkdir(parents=True)
        body = {"id": ident, "services": [{"name": "worker", "to_image": images[version].id}]}
        (folder / "request.json").write_text(json.dumps(body))
        if done:
            (folder / "executed.json").write_text("{}")
    found = {o.id for o in scan(deck, keep_images=1).orphans}
    for version in ("1.0.1", "1.0.2", "1.0.3"):  # the copy's, what staging pinned then, the open request's
        assert images[version].id not in found
    assert far.id not in found
    assert images["1.0.4"].id in found and images["1.0.5"].id in found  # an executed request holds nothing


def test_an_unknown_environment_without_the_decks_marker_is_not_removable(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    now = time.time()
    plant(world, BUILD, Tagged("ec2:vpc", "vpc-theirs", {"env": "payments"}, now))
    plant(world, BUILD, Tagged("ec2:subnet", "subnet-ours", {"env": "qa", "managed_by": "terraform"}, now))
    plant(world, BUILD, Tagged("ec2:instance", "i-ours", {"env": "qa", "app": "web"}, now, "t3.micro"))
    plant(world, BUILD, Tagged("ec2:instance", "i-other-app", {"env": "qa", "app": "billing"}, now, "t3.micro"))
    report = scan(deck, now=now)
    found = by_id(report)
    assert found["vpc-theirs"]["removable"] is False and "check who owns it" in found["vpc-theirs"]["how"]
    assert found["i-other-app"]["removable"] is False
    assert found["subnet-ours"]["removable"] is True and found["i-ours"]["removable"] is True
    result = asyncio.run(remove_orphans(deck, report))
    assert {o.id for o in result.deleted} == {"subnet-ours", "i-ours"}
    assert {t.id for t in world.place(*BUILD).tagged} == {"vpc-theirs", "i-other-app"}


def test_only_the_decks_own_state_keys_are_orphans(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    for key in ("billing/prod/terraform.tfstate", "env:/blue/shop/dev/terraform.tfstate", "terraform.tfstate"):
        world.objects[(STATE_BUCKET, key)] = b"{}"
    world.objects[(STATE_BUCKET, "shop/qa/terraform.tfstate")] = b"{}"
    report = scan(deck)
    assert {o.id for o in report.orphans} == {"shop/qa/terraform.tfstate"}
    assert "3 state files outside this deck's key prefixes (shop/) were not considered" in report.notes


def test_a_state_file_is_deleted_only_from_a_versioned_bucket(estate: tuple[Deck, World]) -> None:
    from tests.fake_hygiene import set_versioning

    deck, world = estate
    world.objects[(STATE_BUCKET, "shop/qa/terraform.tfstate")] = b"{}"
    set_versioning(world, STATE_BUCKET, "Suspended")
    report = scan(deck)
    removal = plan_removal(deck, report)
    assert removal.selected == ()
    assert removal.refused[0][1].startswith(f"state bucket {STATE_BUCKET} is not versioned (Suspended)")
    result = asyncio.run(remove_orphans(deck, report))
    assert result.deleted == () and len(result.refused) == 1
    assert (STATE_BUCKET, "shop/qa/terraform.tfstate") in world.objects
    set_versioning(world, STATE_BUCKET, "")
    assert "versioning never enabled" in plan_removal(deck, report).refused[0][1]


def test_a_copy_of_an_environment_no_longer_in_the_deck_is_skipped(estate: tuple[Deck, World]) -> None:
    import threading

    from opsdeck.core.sandbox.copies import RecoveredCopy, write_copy

    deck, world = estate
    now = time.time()
    state = Backend(STATE_BUCKET, "shop/qa/recover-us-west-2/terraform.tfstate")
    write_copy(deck, RecoveredCopy("qa", "us-west-2", "111111111111", now, now, {}, {}, state))
    world.objects[(STATE_BUCKET, state.key)] = b"{}"
    plant(world, COPY_PLACE, Tagged("ec2:instance", "i-qa-copy", OURS_QA, now, "t3.micro", state="running"))
    done: list[OrphanReport] = []
    worker = threading.Thread(target=lambda: done.append(scan(deck, now=now)), daemon=True)
    worker.start()
    worker.join(60)  # it used to hang forever (StopIteration inside asyncio.to_thread)
    assert done, "the scan did not finish"
    assert any("recovered copy qa@us-west-2 skipped: qa is no longer in opsdeck.toml" in n for n in done[0].notes)
    left = by_id(done[0])["i-qa-copy"]
    assert left["removable"] is False and "recovered copy qa@us-west-2" in left["how"]
    assert state.key not in by_id(done[0])  # its state is recorded


def test_a_sandboxs_recovered_copy_is_not_a_sandbox_orphan(estate: tuple[Deck, World]) -> None:
    from opsdeck.core.sandbox.copies import RecoveredCopy, write_copy

    deck, world = estate
    now = time.time()
    backend = deck.backend("sandbox")
    assert backend is not None
    state = Backend(backend.bucket, backend.key.replace("/terraform.tfstate", "/recover-us-west-2/terraform.tfstate"))
    write_copy(deck, RecoveredCopy("sandbox", "us-west-2", "111111111111", now, now, {}, {}, state))
    old = {"env": "sandbox", "app": "web"}
    plant(world, COPY_PLACE, Tagged("ec2:instance", "i-sbcopy", old, now - 100 * HOUR, "t3.small", state="running"))
    found = by_id(scan(deck, now=now))
    assert "sandbox" not in found and "i-sbcopy" not in found


def test_removal_syncs_and_scans_again_before_asking(estate: tuple[Deck, World], tmp_path: Path) -> None:
    from opsdeck.core.sandbox.copies import RecoveredCopy

    deck, world, image = _removable_estate(estate)
    mate = _shared(deck, tmp_path)
    report = scan(deck)
    assert image in by_id(report)
    now = time.time()  # meanwhile a teammate recovers staging on that image and pushes its record
    state = Backend("opsdeck-demo-tfstate-222222222222", "shop/staging/recover-us-west-2/terraform.tfstate")
    copy = RecoveredCopy("staging", "us-west-2", "222222222222", now, now, {"worker": image}, {}, state)
    _push_record(mate, copy)
    shown: list[Removal] = []

    async def confirm(removal: Removal) -> bool:
        shown.append(removal)
        return True

    result = asyncio.run(remove_orphans(deck, report, confirm=confirm))
    assert {o.id for o in shown[0].selected} == {"i-byhand", "shop/qa/terraform.tfstate"}
    assert {o.id for o in result.deleted} == {"i-byhand", "shop/qa/terraform.tfstate"}
    why = dict((o.id, w) for o, w in result.skipped)
    assert why[image] == why["snap-w"] == "no longer an orphan after syncing the ledger and scanning again"
    assert image in world.place(*BUILD).images


def test_removal_refused_when_the_remote_goes_away_during_the_confirmation(
    estate: tuple[Deck, World], tmp_path: Path
) -> None:
    from tests.unit.estate import git

    deck, world, _ = _removable_estate(estate)
    _shared(deck, tmp_path)
    report = scan(deck)

    async def meanwhile(_: Removal) -> bool:
        git(deck.root, "remote", "set-url", "origin", str(tmp_path / "gone.git"))
        return True

    with pytest.raises(RefusedError, match="cannot be reached"):
        asyncio.run(remove_orphans(deck, report, confirm=meanwhile))
    assert not [c for c in world.calls if c.startswith(("remove", "deregister", "delete-snapshot"))]
    records = [r for r in audit.read(deck) if r.get("action") == "orphans-delete"]
    assert [r["result"] for r in records] == ["started", "refused"]
