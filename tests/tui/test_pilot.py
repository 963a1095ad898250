"""The deck driven key by key (Textual's pilot) on the shop estate on the fake tools: every key runs the
real core operation (real git, fake cloud, Terraform and Packer) in the deck's workers, in milliseconds,
and the fakes show states the local cloud will not produce (a failed apply, an interrupted operation,
an unreachable cloud). tests/tui/test_pilot_demo.py keeps one flow of each kind on the real demo deck."""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import read_pin
from opsdeck.core.events import Reporter
from opsdeck.core.observe.snapshot import load_snapshot
from opsdeck.core.observe.status import deck_status
from opsdeck.core.release.bake import bake
from opsdeck.core.release.images import load_catalog
from opsdeck.core.release.promote import deploy_newest, promote
from opsdeck.core.safety import audit
from opsdeck.core.team.approvals import approve
from opsdeck.core.types.cloud import Credentials
from opsdeck.core.types.hygiene import Tagged
from opsdeck.tui.app import OpsDeckApp
from opsdeck.tui.hygiene import HygieneScreen
from opsdeck.tui.requests import RequestsScreen
from opsdeck.tui.screens import HelpScreen, ReasonScreen
from opsdeck.tui.widgets.details import EnvPane
from tests.cloudtrail import run_instances
from tests.fakes import World
from tests.tui.pilot import SIZE, confirm_dialog, done, make_app, notices, operations, select, until
from tests.unit.estate import git
from tests.unit.team import Team

DEV, PROD = "111111111111", "333333333333"


def header_text(app: OpsDeckApp) -> str:
    return str(app.deck_screen.header.render())


async def test_first_frame_is_the_stored_snapshot_then_live(shop: tuple[Deck, World]) -> None:
    deck, _ = shop
    snapshot = load_snapshot(deck.root)
    assert snapshot is not None
    app = make_app(deck)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.deck_screen
        assert screen.state is not None and screen.state.taken_at == snapshot.taken_at  # before any worker ran
        assert screen.table.row_count == 4
        await until(pilot, lambda: screen.state is not None and screen.state.taken_at > snapshot.taken_at)
        assert screen.state.cloud == "reachable"


async def test_filter_theme_and_help(shop: tuple[Deck, World]) -> None:
    deck, _ = shop
    app = make_app(deck, live=False)
    async with app.run_test(size=SIZE) as pilot:
        table = app.deck_screen.table
        await pilot.press("slash", *"prod")
        assert [e.name for e in table.visible_rows()] == ["prod"]
        app.deck_screen.query_one("#filter").value = ""  # type: ignore[attr-defined]
        await pilot.pause()
        assert table.row_count == 4
        await pilot.press("escape")
        table.focus()
        before = app.theme
        await pilot.press("t")
        assert app.theme != before
        config = Path(os.environ["OPSDECK_HOME"]) / "config" / "config.toml"
        assert f'theme = "{app.theme}"' in config.read_text()
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")


async def test_read_only_disables_every_mutating_key_visibly(shop: tuple[Deck, World]) -> None:
    deck, _ = shop
    head = git(deck.root, "rev-parse", "HEAD")
    app = make_app(deck, live=False, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await select(pilot, app, "sandbox")
        screen = app.deck_screen
        shown = {b.binding.id: b.enabled for b in screen.active_bindings.values()}
        for action in ("bake", "promote", "deploy_newest", "rollback", "nuke", "break_glass"):
            assert shown[action] is False, action  # in the footer, disabled
        assert shown["refresh"] and shown["drift"] and shown["requests"] and shown["hygiene"]
        for key in ("b", "p", "u", "r", "n", "exclamation_mark"):
            await pilot.press(key)
        await pilot.pause()
        assert operations(app).count == 0 and len(app.screen_stack) == 1
        titles = {c.title for c in app.get_system_commands(screen)}
        assert "Drift" in titles and not {"Bake", "Promote", "Rollback", "Nuke", "Break-glass"} & titles
        screen.releases.action_promote()  # reached some other way, it is refused all the same
        await pilot.pause()
        assert operations(app).count == 0 and "the deck is read-only (--read-only)" in notices(app)
        assert "READ-ONLY" in header_text(app)
    assert git(deck.root, "rev-parse", "HEAD") == head


async def test_protected_environment_is_refused_without_break_glass(shop: tuple[Deck, World]) -> None:
    deck, _ = shop
    head = git(deck.root, "rev-parse", "HEAD")
    app = make_app(deck, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await select(pilot, app, "prod")
        await pilot.press("r")
        await select(pilot, app, "staging")
        await pilot.press("p")  # staging -> prod
        await select(pilot, app, "dev")
        await pilot.press("n")
        await pilot.pause()
        assert operations(app).count == 0
        said = notices(app)
        assert "prod is protected: rollback needs break-glass (press !)" in said
        assert "prod is protected: promote needs break-glass (press !)" in said
        assert "nuke-and-rebuild is only for sandbox environments; dev is not one" in said
    assert git(deck.root, "rev-parse", "HEAD") == head


async def test_bake_deploy_promote_rollback_keys_on_one_service(shop: tuple[Deck, World]) -> None:
    deck, _ = shop
    app = make_app(deck, live=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.deck_screen
        await pilot.press("s", "s")  # every service -> web -> api: the deck shows and acts on api only
        assert screen.service == "api" and "[service: api]" in header_text(app)
        assert [c.label.plain for c in screen.table.columns.values()][2] == "API"
        await pilot.press("b")
        result = await done(pilot, app, 1)
        assert result.ok and result.summary == "baked api 1.0.1", result.summary
        before = {s: read_pin(deck, "dev", s) for s in ("web", "worker")}
        await select(pilot, app, "dev")
        await pilot.press("u")  # api's newest image to dev, confirmed
        confirm = await confirm_dialog(pilot, app)
        assert confirm.title_text == "deploy dev"
        result = await done(pilot, app, 2)
        assert result.ok and result.summary.startswith("deployed to dev: "), result.summary
        assert load_catalog(deck).by_id[read_pin(deck, "dev", "api")].version == "1.0.1"
        assert {s: read_pin(deck, "dev", s) for s in ("web", "worker")} == before  # untouched
        first = read_pin(deck, "staging", "api")
        await pilot.press("p")  # dev -> staging (no approvals in this estate)
        confirm = await confirm_dialog(pilot, app)
        assert confirm.title_text == "promote staging"
        assert (await done(pilot, app, 3)).ok
        promoted = read_pin(deck, "staging", "api")
        assert promoted != first and load_catalog(deck).by_id[promoted].version == "1.0.1"
        await select(pilot, app, "staging")
        await pilot.press("r")
        await confirm_dialog(pilot, app)
        result = await done(pilot, app, 4)
        assert result.ok and result.summary.startswith("rolled staging back: "), result.summary
        assert read_pin(deck, "staging", "api") == first
        assert git(deck.root, "log", "-1", "--format=%s").startswith("rollback staging: api ")


async def test_a_change_that_takes_approvals_goes_through_the_requests_view(team: Team) -> None:
    deck = team.a
    await bake(deck, Reporter("bake"), services=["web"])
    await deploy_newest(deck, "dev", Reporter("deploy"), services=["web"])
    await deck_status(deck, Reporter("status"))  # the snapshot the deck opens on
    app = make_app(deck, live=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.deck_screen
        await pilot.press("s")  # web
        await select(pilot, app, "dev")
        await pilot.press("p")  # dev -> staging, which takes an approval: a request, nothing applied
        result = await done(pilot, app, 1)
        assert result.ok and "awaits 1 approvals" in result.summary, result.summary
        request = result.summary.split()[1].rstrip(":")
        assert read_pin(deck, "staging", "web") != read_pin(deck, "dev", "web")
        screen.environments.load_state()
        await until(pilot, lambda: screen.state is not None and screen.state.env("staging").request is not None)
        assert "awaiting 0/1" in screen.table._shown[("staging", "op")]
        await approve(team.b, request, Reporter("approve"), key=str(team.keys["bob"]))  # bob, on his clone
        await pilot.press("a")  # the requests view; e runs the approved request under the cursor
        await until(pilot, lambda: isinstance(app.screen, RequestsScreen), what="the requests view")
        view = app.screen
        assert isinstance(view, RequestsScreen) and view.selected is not None
        assert view.selected["id"] == request and view.selected["status"] == "approved"
        await pilot.press("e")
        await confirm_dialog(pilot, app)
        result = await done(pilot, app, 2)
        assert result.ok and result.summary.startswith(f"executed {request}: promote staging"), result.summary
        assert read_pin(deck, "staging", "web") == read_pin(deck, "dev", "web")
        await until(pilot, lambda: view.selected is not None and view.selected["status"] == "executed")
        await pilot.press("escape")
        await select(pilot, app, "staging")
        await pilot.press("r")  # a request again; turned down from the view, with a reason
        assert "awaits 1 approvals" in (await done(pilot, app, 3)).summary
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, RequestsScreen) and app.screen.selected is not None)
        assert isinstance(app.screen, RequestsScreen) and app.screen.selected is not None
        assert app.screen.selected["status"] == "pending" and app.screen.selected["action"] == "rollback"
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ReasonScreen), what="the reason prompt")
        await pilot.press(*"not now", "enter")
        result = await done(pilot, app, 4)
        assert result.ok and result.summary.endswith(": not now"), result.summary


async def test_break_glass_opens_for_its_time_box_then_closes(shop: tuple[Deck, World]) -> None:
    deck, world = shop
    creds = Credentials(f"ASIAFAKE{PROD}", "glass-secret-never-printed", "token-never-printed")
    world.keys[creds.access_key] = PROD
    deck.tools.secrets().store("prod", creds)
    await bake(deck, Reporter("bake"), services=["web"])
    await deploy_newest(deck, "dev", Reporter("deploy"), services=["web"])
    await promote(deck, "dev", "staging", Reporter("promote"), services=["web"])
    before = read_pin(deck, "prod", "web")
    app = make_app(deck, live=False)
    async with app.run_test(size=SIZE) as pilot:
        releases = app.deck_screen.releases
        await select(pilot, app, "prod")
        await pilot.press("exclamation_mark")
        await until(pilot, lambda: isinstance(app.screen, ReasonScreen), what="the reason prompt")
        await pilot.press(*"incident 42", "enter")
        await until(pilot, lambda: releases.glass is not None, what="break-glass")
        await until(pilot, lambda: app.deck_screen.header.has_class("-break-glass"), what="the band")
        assert "BREAK-GLASS prod" in header_text(app) and "incident 42" in header_text(app)
        await select(pilot, app, "staging")
        await pilot.press("p")  # staging -> prod: typed, soak bypassed under break-glass
        await confirm_dialog(pilot, app, typed="prod")
        result = await done(pilot, app, 1)
        assert result.ok, result.summary
        assert read_pin(deck, "prod", "web") != before
        assert "glass-secret-never-printed" not in app.export_screenshot()
        # The time box ends: the deck closes break-glass, says so, and prod is refused again.
        assert releases.glass is not None
        releases.glass = dataclasses.replace(releases.glass, expires_at=time.time() - 1)
        await until(pilot, lambda: releases.glass is None, timeout=5, what="break-glass to end")
        assert not app.deck_screen.header.has_class("-break-glass")
        assert any("break-glass for prod expired" in n for n in notices(app))
        await select(pilot, app, "prod")
        await pilot.press("r")
        await pilot.pause()
        assert "prod is protected: rollback needs break-glass (press !)" in notices(app)

        def glass_records() -> list[str]:
            return [
                r["result"] for r in audit.read(deck) if r["action"] == "break-glass" and r["environment"] == "prod"
            ]

        await until(pilot, lambda: glass_records()[-1:] == ["expired"], timeout=10, what="the audit of its end")
    assert glass_records()[-2:] == ["opened", "expired"]
    released = [r for r in audit.read(deck) if r["action"] == "promote" and r["environment"] == "prod"][-1]
    assert released["result"] == "ok" and released["reason"] == "incident 42" and released["break_glass"]


async def test_nuke_and_rebuild_asks_for_the_sandboxs_name(shop: tuple[Deck, World]) -> None:
    deck, _ = shop
    app = make_app(deck, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await select(pilot, app, "sandbox")
        await pilot.press("n")
        await confirm_dialog(pilot, app, typed="sandbox")
        result = await done(pilot, app, 1)
        assert result.ok and result.summary.startswith("nuked and rebuilt sandbox: "), result.summary


async def test_drift_and_refresh_keys(shop: tuple[Deck, World]) -> None:
    deck, _ = shop
    app = make_app(deck, live=True)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.deck_screen
        titles = {c.title for c in app.get_system_commands(screen)}
        assert {"Bake", "Promote", "Rollback", "Nuke", "Drift", "Break-glass", "Deploy"} <= titles
        await pilot.press("d", "b")  # two operations at once, each with its own row and progress
        pane = operations(app)
        assert len(pane.rows) == 2
        await until(pilot, lambda: len(pane.finished) == 2 and not pane.running, what="both operations")
        assert all(pane.rows[key].has_class("-done") for key in pane.finished), [
            pane.rows[key].status_text for key in pane.finished
        ]
        await pilot.press("f")
        result = await done(pilot, app, 3)
        assert result.ok and result.summary.startswith("refreshed 4 plans"), result.summary
        drift = next(c for c in app.get_system_commands(screen) if c.title == "Drift")
        await drift.callback()  # the command palette runs the key's action where the key lives
        assert (await done(pilot, app, 4)).summary.startswith("drift: ")
        await until(
            pilot,
            lambda: screen.state is not None and all(e.drift != "unknown" for e in screen.state.environments),
            what="drift in the table",
        )


async def test_hygiene_view_scans_orphans_and_the_trail_of_the_selected_environment(
    shop: tuple[Deck, World],
) -> None:
    deck, world = shop
    now = datetime.now(UTC)
    world.place(DEV, "us-east-1").tagged.append(
        Tagged("ec2:instance", "i-0stray00000000001", {"env": "qa"}, time.time() - 3600, "t3.micro", state="running")
    )
    record = run_instances(f"arn:aws:iam::{DEV}:user/mallory", now, "22222222-bbbb-4000-8000-000000000001", "dev")
    key = (
        f"cloudtrail/AWSLogs/{DEV}/CloudTrail/us-east-1/{now:%Y/%m/%d}/"
        f"{DEV}_CloudTrail_us-east-1_{now:%Y%m%dT%H%MZ}_pilot.json.gz"
    )
    world.objects[(f"opsdeck-demo-trail-{DEV}", key)] = gzip.compress(json.dumps({"Records": [record]}).encode())
    app = make_app(deck, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await select(pilot, app, "dev")
        await pilot.press("h")
        await until(pilot, lambda: isinstance(app.screen, HygieneScreen), timeout=20, what="the hygiene view")
        view = app.screen
        assert isinstance(view, HygieneScreen)
        await pilot.press("f")
        await until(pilot, lambda: not view.scanning and view.hygiene.orphans_scanned is not None, what="the scan")
        orphans = {o["id"]: o for o in view.hygiene.orphans}
        stray = orphans["i-0stray00000000001"]  # tagged for an environment this deck does not have
        assert stray["cost"]["estimate"] is True and stray["cost"]["usd_per_hour"] > 0
        table = view.query_one("#orphans-table")
        assert "i-0stray00000000001" in [str(table.get_row_at(i)[2]) for i in range(table.row_count)]  # type: ignore[attr-defined]
        assert view.hygiene.last_finding is not None and view.hygiene.last_finding["who"].endswith("user/mallory")
        await pilot.press("right", "right")
        assert view.query_one("#trail-table").row_count == 1  # type: ignore[attr-defined]
        await pilot.press("escape")
        pane = app.deck_screen.query_one(EnvPane)
        await until(pilot, lambda: "est." in str(pane.body.content), timeout=20, what="the environment pane")
        text = str(pane.body.content)
        assert "(prices " in text and "trail: 1 outside the pipeline, last ec2:RunInstances by mallory" in text
