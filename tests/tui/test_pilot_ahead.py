"""The deck's pre-planner and its change keys, on the shop estate on the fake tools: an idle deck plans what
p, u and r would apply (never beside an operation or a refresh), a key with a current pre-made plan opens its
confirmation without planning and `y` applies exactly that plan, and a key without one plans and says so."""

from __future__ import annotations

import json
from typing import Any

from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import read_pin
from opsdeck.core.events import Reporter
from opsdeck.core.release import preplan
from opsdeck.core.release.bake import bake
from opsdeck.core.safety import audit
from opsdeck.tui.app import OpsDeckApp
from opsdeck.tui.screens import ConfirmScreen
from tests.fakes import World
from tests.tui.pilot import SIZE, confirm_dialog, make_app, notices, operations, select, until
from tests.unit.estate import git

NO_PLAN = "no plan made ahead for dev: planning now"


def settled(app: OpsDeckApp) -> bool:
    """The live state is read and the pre-planner has nothing left to do."""
    releases = app.deck_screen.releases
    return releases._idle() and not releases._planning_ahead and not releases._ahead_due


def planned_before_apply(world: World, since: int, env: str) -> bool:
    """Whether ``env`` was planned after call ``since`` and before its apply."""
    calls = world.calls[since:]
    applied = next(i for i, c in enumerate(calls) if c.startswith(f"apply {env}"))
    return any(c.startswith(f"plan {env}") for c in calls[:applied])


async def released(pilot: Any, app: OpsDeckApp, prefix: str) -> None:
    ops = operations(app)
    await until(pilot, lambda: ops.last is not None and not ops.running, timeout=60, what="the release to end")
    assert ops.last is not None and ops.last.ok and ops.last.summary.startswith(prefix), ops.last


async def test_the_idle_deck_plans_ahead_and_u_confirms_without_planning(shop: tuple[Deck, World]) -> None:
    deck, world = shop
    await bake(deck, Reporter("bake"), services=["web"])  # dev (and sandbox) would now deploy web
    app = make_app(deck)
    async with app.run_test(size=SIZE) as pilot:
        header = app.deck_screen.header
        await until(pilot, lambda: "deploy" in header.ahead.get("dev", []) and settled(app), what="dev planned ahead")
        assert "ahead: " in str(header.render()) and "dev u" in str(header.render())
        pre = preplan.stored(deck, "dev", "deploy")
        assert pre is not None and list(pre.usable) == ["web"]
        assert not git(deck.root, "status", "--porcelain", "--", "envs").strip()  # no pin file touched
        await select(pilot, app, "dev")
        since = len(world.calls)
        await pilot.press("u")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), timeout=10, what="the confirmation")
        assert not [c for c in world.calls[since:] if c.startswith("plan ")]  # shown without planning
        await confirm_dialog(pilot, app)
        await released(pilot, app, "deployed to dev: ")
        assert not planned_before_apply(world, since, "dev")  # `y` applied the plan made ahead
        assert read_pin(deck, "dev", "web") == pre.usable["web"]
        assert NO_PLAN not in notices(app)
        # The release's commit moved dev's inputs: the deck plans again, and dev's promotion is now ready
        await until(pilot, lambda: "promote" in header.ahead.get("dev", []) and settled(app), what="re-planned")
        assert "deploy" not in header.ahead.get("dev", [])  # dev runs the newest web: nothing to deploy


async def test_without_a_plan_made_ahead_the_key_plans_and_says_so(shop: tuple[Deck, World]) -> None:
    deck, world = shop
    await bake(deck, Reporter("bake"), services=["web"])
    app = make_app(deck, live=False)  # a snapshot-only deck: no pre-planner
    async with app.run_test(size=SIZE) as pilot:
        await select(pilot, app, "dev")
        since = len(world.calls)
        await pilot.press("u")
        await until(pilot, lambda: NO_PLAN in notices(app), timeout=10, what="the notice")
        await confirm_dialog(pilot, app)
        await released(pilot, app, "deployed to dev: ")
        assert planned_before_apply(world, since, "dev")
        assert not app.deck_screen.header.ahead


async def test_a_state_change_drops_the_plan_and_the_pre_planner_waits_for_the_operation(
    shop: tuple[Deck, World],
) -> None:
    deck, world = shop
    await bake(deck, Reporter("bake"), services=["web"])
    app = make_app(deck)
    async with app.run_test(size=SIZE) as pilot:
        releases = app.deck_screen.releases
        await until(pilot, lambda: preplan.stored(deck, "dev", "deploy") is not None and settled(app), what="ahead")
        backend = deck.backend("dev")
        assert backend is not None
        world.objects[(backend.bucket, backend.key)] += b" "  # someone applied to dev: its state's ETag moved
        await select(pilot, app, "dev")
        since = len(world.calls)
        await pilot.press("u")
        await until(pilot, lambda: NO_PLAN in notices(app), timeout=10, what="the notice")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), timeout=10, what="the confirmation")
        assert operations(app).busy  # the release waits for its "y": an operation runs
        releases.plan_ahead()  # inputs changed, but the deck is not idle: nothing starts beside it
        assert releases._ahead_due and not releases._planning_ahead
        await confirm_dialog(pilot, app)
        await released(pilot, app, "deployed to dev: ")
        assert planned_before_apply(world, since, "dev")
        await until(pilot, lambda: settled(app), what="the pre-planner to run once idle")
        assert "promote" in app.deck_screen.header.ahead.get("dev", [])


async def test_a_lock_refuses_at_the_key_before_the_plan_made_ahead_is_confirmed(shop: tuple[Deck, World]) -> None:
    """An interrupted operation's lock (a freeze, a break-glass rule alike) refuses the key at once, audited
    as a refused attempt, instead of opening the confirmation and refusing after its "y"."""
    deck, world = shop
    await bake(deck, Reporter("bake"), services=["web"])
    app = make_app(deck)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: preplan.stored(deck, "dev", "deploy") is not None and settled(app), what="ahead")
        record = {"id": "lock-9", "env": "dev", "operation": "promote", "pid": 999999, "host": "gone", "user": "x"}
        (deck.local_dir / "locks").mkdir(exist_ok=True)
        (deck.local_dir / "locks" / "dev.lock").write_text(json.dumps({**record, "since": 1.0}))
        await select(pilot, app, "dev")
        since = len(world.calls)
        await pilot.press("u")
        said = "dev has an interrupted operation: "
        await until(pilot, lambda: any(n.startswith(said) for n in notices(app)), timeout=10, what="the refusal")
        assert not isinstance(app.screen, ConfirmScreen)
        assert not [c for c in world.calls[since:] if c.startswith(("plan ", "apply "))]
        last = audit.read(deck)[-1]
        assert (last["action"], last["environment"], last["result"]) == ("deploy", "dev", "refused")
        assert last["preplanned"] is True and "`opsdeck unlock dev`" in last["error"]
