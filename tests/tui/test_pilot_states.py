"""The deck on the fake tools in states the local cloud will not produce on demand: a cloud that stops
answering, an apply that fails half way, an operation interrupted on another machine, two keys pressed
on one environment at once, a release's follow-up (the switch back) held until its result is shown."""

from __future__ import annotations

import threading

from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import read_pin
from opsdeck.core.events import Reporter
from opsdeck.core.release.bake import bake
from opsdeck.core.safety import locks
from opsdeck.tui.app import OpsDeckApp
from tests.fakes import World
from tests.tui.pilot import SIZE, confirm_dialog, done, make_app, notices, operations, select, until
from tests.unit.estate import git


def header_text(app: OpsDeckApp) -> str:
    return str(app.deck_screen.header.render())


async def test_an_unreachable_cloud_shows_unknown_and_recovers(shop: tuple[Deck, World]) -> None:
    deck, world = shop
    app = make_app(deck, live=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.deck_screen
        world.down = True
        screen.environments.load_state()
        await until(pilot, lambda: screen.state is not None and screen.state.cloud == "unreachable")
        assert "UNREACHABLE" in header_text(app) and all(not e.services for e in screen.state.environments)
        assert any("cannot reach it" in n for n in notices(app))
        world.down = False
        screen.environments.load_state()
        await until(pilot, lambda: screen.state is not None and screen.state.cloud == "reachable")
        assert all(e.services for e in screen.state.environments)


async def test_a_failed_apply_is_a_failed_row_one_error_notice_and_the_pins_put_back(
    shop: tuple[Deck, World],
) -> None:
    deck, world = shop
    await bake(deck, Reporter("bake"), services=["web"])
    before = read_pin(deck, "dev", "web")
    world.fail_apply.add("dev")
    app = make_app(deck, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")  # web
        await select(pilot, app, "dev")
        await pilot.press("u")
        await confirm_dialog(pilot, app)
        result = await done(pilot, app, 1)
        assert not result.ok and "fake failure" in result.summary, result.summary
        assert operations(app).rows[result.key].has_class("-failed")
        assert notices(app).count(result.summary) == 1  # said once, as its row says it
        assert app.deck_screen.table._shown[("dev", "op")] == "ready"  # no longer running
    assert read_pin(deck, "dev", "web") == before
    assert git(deck.root, "status", "--porcelain", "envs/dev") == ""


async def test_an_interrupted_operation_shows_and_refuses_the_next(shop: tuple[Deck, World]) -> None:
    deck, _ = shop
    await bake(deck, Reporter("bake"), services=["web"])
    record = locks.LockRecord("lock-9", "dev", "promote", 999999, "gone", "ghost", 1.0)
    (deck.local_dir / "locks").mkdir(exist_ok=True)
    (deck.local_dir / "locks" / "dev.lock").write_text(record.to_json())
    app = make_app(deck, live=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.deck_screen
        screen.environments.load_state()
        await until(pilot, lambda: screen.table._shown.get(("dev", "op"), "").startswith("INTERRUPTED"))
        assert screen.table._shown[("dev", "op")] == "INTERRUPTED promote by ghost"
        await pilot.press("s")
        await select(pilot, app, "dev")
        await pilot.press("u")
        result = await done(pilot, app, 1)
        assert not result.ok and "dev has an interrupted operation: promote by ghost" in result.summary


async def test_one_operation_at_a_time_per_environment(shop: tuple[Deck, World]) -> None:
    deck, _ = shop
    await bake(deck, Reporter("bake"), services=["web"])
    app = make_app(deck, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        await select(pilot, app, "dev")
        await pilot.press("u")  # waits at its confirmation
        await until(pilot, lambda: app.screen is not app.deck_screen, what="the confirmation")
        assert app.deck_screen.table._shown[("dev", "op")] == "▶ deploy web → dev"
        releases = app.deck_screen.releases
        releases.action_rollback()  # what the palette would do meanwhile
        await pilot.pause()
        assert "dev is busy: deploy web → dev is running" in notices(app)
        assert operations(app).count == 1
        releases.action_bake()  # of no environment: it runs beside
        assert operations(app).count == 2
        await pilot.press("escape")  # the deploy is not confirmed: nothing changes
        await until(pilot, lambda: len(operations(app).finished) == 2 and not operations(app).running)
        ends = {key.split("#")[0]: operations(app).rows[key].status_text for key in operations(app).finished}
        assert ends["deploy web → dev"].startswith("✗ deploy of dev was not confirmed; nothing changed"), ends
        assert ends["bake web"].startswith("✓ baked web 1.0.2"), ends


async def test_a_follow_up_runs_after_the_result_is_shown_never_before(shop: tuple[Deck, World]) -> None:
    """A blue/green release prepares its switch back once reported: the row and the notice come first."""
    deck, _ = shop
    shown, tidied = threading.Event(), threading.Event()

    class Released:
        async def follow_up(self, rep: Reporter) -> None:
            assert shown.wait(10)  # the test saw the result first
            tidied.set()

    async def work(rep: Reporter) -> Released:
        return Released()

    app = make_app(deck, live=False)
    async with app.run_test(size=SIZE) as pilot:
        ops = operations(app)
        ops.start("release dev", "dev", work, lambda result: "released dev")
        await until(pilot, lambda: ops.last is not None, timeout=10, what="the result")
        assert ops.last is not None and ops.last.ok and ops.last.summary == "released dev"
        assert not tidied.is_set() and "released dev" in notices(app) and "dev" not in ops.running
        shown.set()
        await until(pilot, tidied.is_set, timeout=10, what="the follow-up")
        await pilot.pause()
        assert notices(app).count("released dev") == 1  # the worker's end says nothing twice
