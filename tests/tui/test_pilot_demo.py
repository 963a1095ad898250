"""The deck end to end on the real demo deck on the local cloud: one flow of each kind (a release through
its confirmation, a request through the requests view, the nuke's typed confirmation, break-glass).

Every key runs the real core operation (Terraform, Packer, boto3, git) in the deck's workers; the
assertions read the results from outside (the headless status, git, the audit log). The key-by-key
flows in every other state run on the fake tools (tests/tui/test_pilot.py).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import pytest

from opsdeck.core.estate.deck import Deck
from opsdeck.tui.app import OpsDeckApp
from opsdeck.tui.requests import RequestsScreen
from opsdeck.tui.screens import ReasonScreen
from tests.helpers import demo_key, opsdeck, released
from tests.tui.pilot import SIZE, confirm_dialog, done, notices, select, until

pytestmark = pytest.mark.integration


def assumed(role: str) -> dict[str, Any]:
    """What `aws sts assume-role` prints, from the local cloud (credentials a team would store)."""
    import boto3

    endpoint = json.loads(opsdeck("cloud", "status", "--json", check=True).stdout)["endpoint"]
    sts = boto3.client(
        "sts", endpoint_url=endpoint, region_name="us-west-2", aws_access_key_id="x", aws_secret_access_key="x"
    )
    return dict(sts.assume_role(RoleArn=role, RoleSessionName="tui-break-glass"))


def status(deck: Path) -> dict[str, Any]:
    data = json.loads(opsdeck("status", "--json", deck=deck, check=True).stdout)
    return {e["name"]: e for e in data["environments"]}


def git(deck: Path, *args: str) -> str:
    import subprocess

    return subprocess.run(["git", "-C", str(deck), *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module", autouse=True)
def snapshot(demo_deck: Path) -> None:
    """The demo deck's status stored: the deck opens on it (these decks do not refresh themselves)."""
    opsdeck("status", deck=demo_deck, check=True)


def demo_app(deck: Path) -> OpsDeckApp:
    return OpsDeckApp(Deck.open(deck), theme="opsdeck-dark", live=False)


def image_of(row: dict[str, Any], service: str) -> str:
    return str(next(s for s in row["services"] if s["name"] == service)["image"]["id"])


def lag_of(row: dict[str, Any], service: str) -> dict[str, Any]:
    return dict(next(s for s in row["services"] if s["name"] == service)["lag"])


async def test_a_bake_and_a_deploy_through_the_confirmation(demo_deck: Path) -> None:
    app = demo_app(demo_deck)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s", "s")  # every service -> web -> api: the deck shows and acts on api only
        assert app.deck_screen.service == "api"
        await pilot.press("b")
        result = await done(pilot, app, 1)
        assert result.ok and result.summary.startswith("baked api "), result.summary
        images = json.loads(opsdeck("images", "--json", deck=demo_deck, check=True).stdout)
        baked = [i for i in images if i["service"] == "api"][-1]["id"]
        before = {s: image_of(status(demo_deck)["dev"], s) for s in ("web", "worker")}
        await select(pilot, app, "dev")
        await pilot.press("u")
        screen = await confirm_dialog(pilot, app)
        assert screen.title_text.startswith("deploy dev")
        result = await done(pilot, app, 2)
        assert result.ok, result.summary
    assert image_of(status(demo_deck)["dev"], "api") == baked
    assert {s: image_of(status(demo_deck)["dev"], s) for s in ("web", "worker")} == before  # untouched


async def test_a_promote_to_staging_is_a_request_run_from_the_requests_view(demo_deck: Path) -> None:
    if lag_of(status(demo_deck)["staging"], "api")["in_sync"]:  # give staging something to take from dev
        opsdeck("bake", "--service", "api", deck=demo_deck, check=True)
        opsdeck("deploy", "dev", "--service", "api", "--yes", deck=demo_deck, check=True)
    before = image_of(status(demo_deck)["staging"], "api")
    app = demo_app(demo_deck)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s", "s")
        await select(pilot, app, "dev")
        await pilot.press("p")  # staging takes an approval: the change becomes a request, nothing applied
        result = await done(pilot, app, 1)
        assert result.ok and result.summary.startswith("request r") and "awaits 1 approvals" in result.summary
        request = result.summary.split()[1].rstrip(":")
        assert image_of(status(demo_deck)["staging"], "api") == before
        opsdeck("approve", request, "--key", str(demo_key("bob")), deck=demo_deck, check=True)  # bob, elsewhere
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, RequestsScreen), what="the requests view")
        screen = app.screen
        assert isinstance(screen, RequestsScreen) and screen.selected is not None
        assert screen.selected["id"] == request and screen.selected["status"] == "approved"
        await pilot.press("e")
        await confirm_dialog(pilot, app)
        result = await done(pilot, app, 2)
        assert result.ok, result.summary
    assert image_of(status(demo_deck)["staging"], "api") == image_of(status(demo_deck)["dev"], "api") != before
    assert git(demo_deck, "log", "-1", "--format=%s").startswith("promote api ")


async def test_the_idle_live_deck_plans_sandbox_ahead_and_u_applies_that_plan(demo_deck: Path) -> None:
    """sandbox asks for no confirmation: `u` starts its deploy at once, and the release only applies."""

    def versions() -> tuple[str, str]:  # sandbox's api, and api's newest image
        images = json.loads(opsdeck("images", "--json", deck=demo_deck, check=True).stdout)
        newest = [i for i in images if i["service"] == "api" and not i["revoked"]][-1]["version"]
        row = next(s for s in status(demo_deck)["sandbox"]["services"] if s["name"] == "api")
        return str(row["image"]["version"]), str(newest)

    runs, newest = versions()
    if runs == newest:  # give sandbox's deploy something to move
        opsdeck("bake", "--service", "api", deck=demo_deck, check=True)
    app = OpsDeckApp(Deck.open(demo_deck), theme="opsdeck-dark", live=True)
    async with app.run_test(size=SIZE) as pilot:
        releases, header = app.deck_screen.releases, app.deck_screen.header
        await until(
            pilot,
            lambda: "deploy" in header.ahead.get("sandbox", []) and not releases._planning_ahead,
            what="sandbox planned ahead by the idle deck",
        )
        assert "ahead: " in str(header.render())  # as much as fits at 120 columns, last on the line
        assert "sandbox u" in header._ahead_fitted(None)  # its widest form names sandbox's key
        assert not git(demo_deck, "status", "--porcelain", "--", "envs").strip()  # no pin file touched
        await select(pilot, app, "sandbox")
        await pilot.press("u")
        ops = app.deck_screen.operations
        await until(pilot, lambda: ops.last is not None and not ops.running, what="the deploy to end")
        assert ops.last is not None and ops.last.ok, ops.last.summary
        row = ops.rows[ops.last.key]
        assert "plan" not in [name for name, _, _ in row.phases]  # the plan made ahead was applied
        assert not any(n.startswith("no plan made ahead") for n in notices(app))
    runs, newest = versions()
    assert runs == newest


async def test_break_glass_opens_for_its_time_box_then_closes(demo_deck: Path) -> None:
    stored = assumed("arn:aws:iam::333333333333:role/opsdeck-break-glass")
    secret = stored["Credentials"]["SecretAccessKey"]
    opsdeck("secrets", "set", "prod", deck=demo_deck, input=json.dumps(stored, default=str), check=True)
    if lag_of(status(demo_deck)["prod"], "api")["in_sync"]:
        if lag_of(status(demo_deck)["staging"], "api")["in_sync"]:
            opsdeck("bake", "--service", "api", deck=demo_deck, check=True)  # dev may run api's newest
            opsdeck("deploy", "dev", "--service", "api", "--yes", deck=demo_deck, check=True)
        released(demo_deck, "promote", "dev", "staging", "--service", "api")
    app = demo_app(demo_deck)
    async with app.run_test(size=SIZE) as pilot:
        releases = app.deck_screen.releases
        header = app.deck_screen.header
        await select(pilot, app, "prod")
        await pilot.press("exclamation_mark")
        await until(pilot, lambda: isinstance(app.screen, ReasonScreen), what="the reason prompt")
        await pilot.press(*"incident 42", "enter")
        await until(pilot, lambda: releases.glass is not None and header.has_class("-break-glass"), what="break-glass")
        assert "BREAK-GLASS prod" in str(header.render()) and "incident 42" in str(header.render())
        before = image_of(status(demo_deck)["prod"], "api")
        await select(pilot, app, "staging")
        await pilot.press("p")  # staging -> prod: the train (api differs), typed confirmation
        await confirm_dialog(pilot, app, typed="prod")
        result = await done(pilot, app, 1)
        assert result.ok, result.summary
        assert image_of(status(demo_deck)["prod"], "api") != before
        assert secret not in app.export_screenshot()
        # The time box ends: the deck closes break-glass, says so, and prod is read-only again.
        assert releases.glass is not None
        releases.glass = dataclasses.replace(releases.glass, expires_at=time.time() - 1)
        await until(pilot, lambda: releases.glass is None, timeout=5, what="break-glass to end")
        assert not header.has_class("-break-glass")
        assert any("break-glass for prod expired" in n for n in notices(app))
        # Without break-glass a change to prod is a request for two approvals, not a change.
        after = image_of(status(demo_deck)["prod"], "api")
        await select(pilot, app, "prod")
        await pilot.press("r")
        result = await done(pilot, app, 2)
        assert result.ok and "awaits 2 approvals" in result.summary, result.summary
        assert image_of(status(demo_deck)["prod"], "api") == after
    records = json.loads(opsdeck("audit", "--json", deck=demo_deck, check=True).stdout)
    glass = [r for r in records if r["action"] == "break-glass" and r["environment"] == "prod"]
    assert [r["result"] for r in glass[-2:]] == ["opened", "expired"]
    promote = [r for r in records if r["action"] == "promote" and r["environment"] == "prod"][-1]
    assert promote["result"] == "ok" and promote["reason"] == "incident 42" and promote["break_glass"]


async def test_nuke_and_rebuild_key_with_its_typed_confirmation(demo_deck: Path) -> None:
    app = demo_app(demo_deck)
    async with app.run_test(size=SIZE) as pilot:
        await select(pilot, app, "sandbox")
        await pilot.press("n")
        await confirm_dialog(pilot, app, typed="sandbox")
        result = await done(pilot, app, 1)
        assert result.ok, result.summary
        assert result.summary.startswith("nuked and rebuilt sandbox")
    counts = status(demo_deck)["sandbox"]["instances"]
    assert counts["running"] == counts["desired"] == counts["on_pinned_image"] > 0
