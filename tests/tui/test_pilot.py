"""The deck driven key by key (Textual's pilot) against the real demo deck on the local cloud.

Every flow runs the real core operation (Terraform, Packer, boto3, git) in the deck's workers; the
assertions read the results from outside (the headless status, git, the audit log), not from mocks.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from opsdeck.core.estate.deck import Deck
from opsdeck.tui.app import OpsDeckApp
from opsdeck.tui.header import DeckHeader
from opsdeck.tui.requests import RequestsScreen
from opsdeck.tui.screens import ConfirmScreen, ReasonScreen
from tests.helpers import NO_PROD_APPROVALS, approve_and_execute, demo_key, edited, opsdeck, released

pytestmark = pytest.mark.integration
SIZE = (120, 40)


def assumed(role: str) -> dict[str, Any]:
    """What `aws sts assume-role` prints, from the local cloud (credentials a team would store)."""
    import boto3

    endpoint = json.loads(opsdeck("cloud", "status", "--json", check=True).stdout)["endpoint"]
    sts = boto3.client(
        "sts", endpoint_url=endpoint, region_name="us-west-2", aws_access_key_id="x", aws_secret_access_key="x"
    )
    return dict(sts.assume_role(RoleArn=role, RoleSessionName="tui-break-glass"))


async def until(pilot: Any, predicate: Callable[[], bool], timeout: float = 240.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.1)


def status(deck: Path) -> dict[str, Any]:
    data = json.loads(opsdeck("status", "--json", deck=deck, check=True).stdout)
    return {e["name"]: e for e in data["environments"]}


def git(deck: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(deck), *args], capture_output=True, text=True, check=True).stdout


def make_app(deck: Path, **kw: Any) -> OpsDeckApp:
    return OpsDeckApp(Deck.open(deck), theme="opsdeck-dark", **kw)


async def confirm_dialog(pilot: Any, app: OpsDeckApp, typed: str | None = None) -> ConfirmScreen:
    """Wait for the confirmation modal, let it finish mounting, and confirm it."""
    await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation")
    screen = app.screen
    assert isinstance(screen, ConfirmScreen)
    await pilot.pause(0.3)
    assert screen.typed == typed
    if typed:
        await pilot.press(*typed, "enter")
    else:
        await pilot.click("#ok")
    await until(pilot, lambda: app.screen is not screen, timeout=10, what="the modal to close")
    return screen


async def select(pilot: Any, app: OpsDeckApp, env: str) -> None:
    names = [e.name for e in app.table.visible_rows()]
    app.table.move_cursor(row=names.index(env))
    await pilot.pause()
    assert app.table.selected == env


async def done(pilot: Any, app: OpsDeckApp, count: int) -> Any:
    await until(
        pilot,
        lambda: app.last_done is not None and app.last_done.key.endswith(f"#{count}") and not app.running_envs,
        what=f"operation #{count} to end",
    )
    return app.last_done


def notices(app: OpsDeckApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


def image_of(row: dict[str, Any], service: str) -> str:
    return str(next(s for s in row["services"] if s["name"] == service)["image"]["id"])


def lag_of(row: dict[str, Any], service: str) -> dict[str, Any]:
    return dict(next(s for s in row["services"] if s["name"] == service)["lag"])


async def test_first_frame_is_the_stored_snapshot_then_live(demo_deck: Path) -> None:
    opsdeck("status", deck=demo_deck, check=True)  # a stored snapshot
    snapshot = json.loads((demo_deck / ".opsdeck" / "snapshot.json").read_text())
    app = make_app(demo_deck)
    async with app.run_test(size=SIZE) as pilot:
        assert app.state is not None and app.state.taken_at == snapshot["taken_at"]  # before any worker ran
        assert app.table.row_count == 4
        await until(pilot, lambda: app.state is not None and app.state.taken_at > snapshot["taken_at"], what="live")
        assert app.state.cloud == "reachable"


async def test_filter_theme_and_help(demo_deck: Path) -> None:
    app = make_app(demo_deck, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash", *"prod")
        assert [e.name for e in app.table.visible_rows()] == ["prod"]
        app.query_one("#filter").value = ""  # type: ignore[attr-defined]
        await pilot.pause()
        assert app.table.row_count == 4
        await pilot.press("escape")
        app.table.focus()
        before = app.theme
        await pilot.press("t")
        assert app.theme != before
        config = Path(os.environ["OPSDECK_HOME"]) / "config" / "config.toml"
        assert f'theme = "{app.theme}"' in config.read_text()
        await pilot.press("question_mark")
        assert app.screen.__class__.__name__ == "HelpScreen"
        await pilot.press("escape")
        app.theme = "opsdeck-dark"


async def test_read_only_disables_every_mutating_key(demo_deck: Path) -> None:
    head = git(demo_deck, "rev-parse", "HEAD")
    app = make_app(demo_deck, live=False, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await select(pilot, app, "sandbox")
        for key in ("b", "p", "r", "n", "exclamation_mark"):
            await pilot.press(key)
        await pilot.pause()
        assert app.op_count == 0 and len(app.screen_stack) == 1
        for action in ("bake", "promote", "rollback", "nuke", "break_glass"):
            assert app.check_action(action, ()) is None  # shown, visibly disabled
        app.action_promote()  # what the command palette would call
        await pilot.pause()
        assert app.op_count == 0 and "the deck is read-only (--read-only)" in notices(app)
        assert "READ-ONLY" in str(app.query_one(DeckHeader).render())
    assert git(demo_deck, "rev-parse", "HEAD") == head


async def test_protected_environment_is_refused_without_break_glass(demo_deck: Path) -> None:
    head = git(demo_deck, "rev-parse", "HEAD")
    with edited(demo_deck / "opsdeck.toml", *NO_PROD_APPROVALS):  # with approvals, a change is a request
        app = make_app(demo_deck, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await select(pilot, app, "prod")
        await pilot.press("r")
        await pilot.pause()
        assert app.op_count == 0
        assert "prod is protected: rollback needs break-glass (press !)" in notices(app)
        await select(pilot, app, "staging")
        await pilot.press("p")  # staging -> prod
        await pilot.pause()
        assert app.op_count == 0
        await select(pilot, app, "dev")
        await pilot.press("n")
        await pilot.pause()
        assert "nuke-and-rebuild is only for sandbox environments; dev is not one" in notices(app)
        assert app.op_count == 0
    assert git(demo_deck, "rev-parse", "HEAD") == head


async def test_bake_promote_rollback_keys_on_one_service(demo_deck: Path) -> None:
    app = make_app(demo_deck, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s", "s")  # every service -> web -> api: the deck shows and acts on api only
        assert app.service_filter == "api" and "[service: api]" in str(app.query_one(DeckHeader).render())
        assert [c.label.plain for c in app.table.columns.values()][2] == "API"
        await pilot.press("b")
        result = await done(pilot, app, 1)
        assert result.ok, result.summary
        assert result.summary.startswith("baked api ")
        app.load_state()  # live=False: the deck learns of the new image when told to load
        await until(
            pilot,
            lambda: app.state is not None and any(i["service"] == "api" for i in app.state.images),
            what="image",
        )
        baked = [
            i
            for i in json.loads(opsdeck("images", "--json", deck=demo_deck, check=True).stdout)
            if i["service"] == "api"
        ][-1]["id"]
        before = {s: image_of(status(demo_deck)["dev"], s) for s in ("web", "worker")}
        # u: api's newest image to dev, confirmed with y; then p: dev -> staging
        await select(pilot, app, "dev")
        await pilot.press("u")
        screen = await confirm_dialog(pilot, app)
        assert screen.title_text.startswith("deploy dev")
        result = await done(pilot, app, 2)
        assert result.ok, result.summary
        assert image_of(status(demo_deck)["dev"], "api") == baked
        assert {s: image_of(status(demo_deck)["dev"], s) for s in ("web", "worker")} == before  # untouched
        before_staging = image_of(status(demo_deck)["staging"], "api")
        # p: dev -> staging, which takes an approval: the change becomes a request, nothing is applied.
        await select(pilot, app, "dev")
        await pilot.press("p")
        result = await done(pilot, app, 3)
        assert result.ok and result.summary.startswith("request r") and "awaits 1 approvals" in result.summary
        request = result.summary.split()[1].rstrip(":")
        assert image_of(status(demo_deck)["staging"], "api") == before_staging
        app.load_state()
        await until(
            pilot,
            lambda: app.state is not None and app.state.env("staging").request is not None,
            what="the row to show the request",
        )
        assert "awaiting 0/1" in app.table._shown[("staging", "op")]
        opsdeck("approve", request, "--key", str(demo_key("bob")), deck=demo_deck, check=True)  # bob, elsewhere
        # a: the requests view; e runs the approved request under the cursor.
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, RequestsScreen), what="the requests view")
        screen = app.screen
        assert isinstance(screen, RequestsScreen) and screen.selected is not None
        assert screen.selected["id"] == request and screen.selected["status"] == "approved"
        await pilot.press("e")
        await confirm_dialog(pilot, app)
        result = await done(pilot, app, 4)
        assert result.ok, result.summary
        assert image_of(status(demo_deck)["staging"], "api") == baked
        assert git(demo_deck, "log", "-1", "--format=%s").startswith("promote api ")
        await pilot.press("escape")
        # r on staging: a request again; carol approves it and it runs headless.
        await select(pilot, app, "staging")
        await pilot.press("r")
        result = await done(pilot, app, 5)
        assert result.ok and "awaits 1 approvals" in result.summary, result.summary
        approve_and_execute(demo_deck, result.summary.split()[1].rstrip(":"), "carol")
        assert image_of(status(demo_deck)["staging"], "api") == before_staging
        assert git(demo_deck, "log", "-1", "--format=%s").startswith("rollback staging: api ")


async def test_break_glass_opens_for_its_time_box_then_closes(demo_deck: Path) -> None:
    stored = assumed("arn:aws:iam::333333333333:role/opsdeck-break-glass")
    secret = stored["Credentials"]["SecretAccessKey"]
    opsdeck("secrets", "set", "prod", deck=demo_deck, input=json.dumps(stored, default=str), check=True)
    if lag_of(status(demo_deck)["prod"], "api")["in_sync"]:
        if lag_of(status(demo_deck)["staging"], "api")["in_sync"]:
            opsdeck("bake", "--service", "api", deck=demo_deck, check=True)  # dev may run api's newest
            opsdeck("deploy", "dev", "--service", "api", "--yes", deck=demo_deck, check=True)
        released(demo_deck, "promote", "dev", "staging", "--service", "api")
    app = make_app(demo_deck, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await select(pilot, app, "prod")
        await pilot.press("exclamation_mark")
        await until(pilot, lambda: isinstance(app.screen, ReasonScreen), what="the reason prompt")
        await pilot.press(*"incident 42", "enter")
        await until(pilot, lambda: app.glass is not None, what="break-glass")
        await pilot.pause(1.1)
        header = str(app.query_one(DeckHeader).render())
        assert "BREAK-GLASS prod" in header and "incident 42" in header
        assert app.query_one(DeckHeader).has_class("-break-glass")
        before = image_of(status(demo_deck)["prod"], "api")
        await select(pilot, app, "staging")
        await pilot.press("p")  # staging -> prod: the train (api differs), typed confirmation
        await confirm_dialog(pilot, app, typed="prod")
        result = await done(pilot, app, 1)
        assert result.ok, result.summary
        assert image_of(status(demo_deck)["prod"], "api") != before
        assert secret not in app.export_screenshot()
        # The time box ends: the deck closes break-glass, says so, and prod is read-only again.
        app.glass = dataclasses.replace(app.glass, expires_at=time.time() - 1)  # type: ignore[type-var]
        await pilot.pause(1.2)
        assert app.glass is None and not app.query_one(DeckHeader).has_class("-break-glass")
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


async def test_nuke_and_rebuild_key(demo_deck: Path) -> None:
    app = make_app(demo_deck, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await select(pilot, app, "sandbox")
        await pilot.press("n")
        await confirm_dialog(pilot, app, typed="sandbox")
        result = await done(pilot, app, 1)
        assert result.ok, result.summary
        assert result.summary.startswith("nuked and rebuilt sandbox")
    counts = status(demo_deck)["sandbox"]["instances"]
    assert counts["running"] == counts["desired"] == counts["on_pinned_image"] > 0


async def test_drift_and_refresh_keys(demo_deck: Path) -> None:
    from opsdeck.tui.widgets.ops import OperationsPane

    app = make_app(demo_deck, live=False)
    async with app.run_test(size=SIZE) as pilot:
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Bake", "Promote", "Rollback", "Nuke", "Drift", "Break-glass", "Deploy"} <= titles
        await pilot.press("d", "b")  # two operations at once, each with its own row and progress
        pane = app.main(OperationsPane)
        assert len(pane.rows) == 2 and not pane.finished
        await until(pilot, lambda: len(pane.finished) == 2 and not app.running_envs, what="both operations")
        assert all(pane.rows[key].has_class("-done") for key in pane.finished), [
            pane.rows[key].status_text for key in pane.finished
        ]
        app.live = True
        await pilot.press("f")
        result = await done(pilot, app, 3)
        assert result.ok and result.summary.startswith("refreshed 4 plans")
        await until(
            pilot,
            lambda: app.state is not None and all(e.drift != "unknown" for e in app.state.environments),
            what="drift in the table",
        )


async def test_hygiene_view_scans_orphans_and_the_trail_of_the_selected_environment(demo_deck: Path) -> None:
    from datetime import UTC, datetime

    from opsdeck.core.estate.pins import read_pin
    from opsdeck.tui.hygiene import HygieneScreen
    from opsdeck.tui.widgets.details import EnvPane
    from tests.cloudtrail import DEV, Delivery, run_instances

    deck = Deck.open(demo_deck)
    ec2 = deck.tools.env("dev").cloud.client("ec2")  # type: ignore[attr-defined]
    stray = ec2.run_instances(
        ImageId=read_pin(deck, "dev", "web"),
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "env", "Value": "qa"}]}],
    )["Instances"][0]["InstanceId"]
    delivery = Delivery(deck, "dev")
    now = datetime.now(UTC)
    records = [run_instances(f"arn:aws:iam::{DEV}:user/mallory", now, "22222222-bbbb-4000-8000-000000000001", "dev")]
    delivery.put(gzip.compress(json.dumps({"Records": records}).encode()), now, "pilot")
    app = make_app(demo_deck, live=False)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await select(pilot, app, "dev")
            await pilot.press("h")
            await until(pilot, lambda: isinstance(app.screen, HygieneScreen), timeout=20, what="the hygiene view")
            screen = app.screen
            assert isinstance(screen, HygieneScreen)
            await pilot.press("f")
            await until(
                pilot,
                lambda: not screen.scanning and screen.hygiene.orphans_scanned is not None,
                timeout=120,
                what="the scan",
            )
            orphans = {o["id"]: o for o in screen.hygiene.orphans}
            assert stray in orphans and orphans[stray]["cost"]["estimate"] is True
            assert orphans[stray]["cost"]["usd_per_hour"] > 0
            table = screen.query_one("#orphans-table")
            assert stray in [str(table.get_row_at(i)[2]) for i in range(table.row_count)]  # type: ignore[attr-defined]
            assert screen.hygiene.last_finding is not None
            assert screen.hygiene.last_finding["who"].endswith("user/mallory")
            await pilot.press("right", "right")
            trail = screen.query_one("#trail-table")
            assert trail.row_count == 1  # type: ignore[attr-defined]
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, HygieneScreen), timeout=10, what="the view to close")
            await until(pilot, lambda: "est." in str(app.main(EnvPane).body.content), timeout=20, what="the pane")
            pane = str(app.main(EnvPane).body.content)
            assert "est." in pane and "(prices " in pane
            assert "trail: 1 outside the pipeline, last ec2:RunInstances by mallory" in pane
    finally:
        ec2.terminate_instances(InstanceIds=[stray])
        delivery.clean()


async def test_unreachable_cloud_shows_unknown_and_recovers(demo_deck: Path) -> None:
    pid = int(json.loads(opsdeck("cloud", "status", "--json", check=True).stdout)["pid"])
    app = make_app(demo_deck, live=False)
    async with app.run_test(size=SIZE) as pilot:
        os.kill(pid, signal.SIGSTOP)
        try:
            app.load_state()
            await until(
                pilot,
                lambda: app.state is not None and app.state.cloud == "unreachable",
                timeout=60,
                what="unreachable",
            )
            assert "UNREACHABLE" in str(app.query_one(DeckHeader).render())
            assert all(not e.services for e in app.state.environments)
            assert app.is_running
        finally:
            os.kill(pid, signal.SIGCONT)
        app.load_state()
        await until(
            pilot, lambda: app.state is not None and app.state.cloud == "reachable", timeout=60, what="recovery"
        )
        assert all(e.services for e in app.state.environments)
