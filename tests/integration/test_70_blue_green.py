"""Blue/green releases in dev on the demo deck: the switch, the warm standby, instant rollback, the
gates that stop a release with traffic where it was, and the faults (killed mid-switch, a standby
window ending during a rollback). Runs after test_60_team.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import applying, edited, finish, live_pins, opsdeck, spawn, state_serial, wait_until

pytestmark = pytest.mark.integration

PIN = "images.auto.tfvars.json"
SMOKE = ("smoke = ['\"$OPSDECK_PYTHON\" smoke/check.py']\nsmoke_timeout = 30\nhealth_timeout = 120\n",)


def _git(deck: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(deck), *args], capture_output=True, text=True, check=True).stdout.strip()


def _color_pin(deck: Path, service: str = "web") -> dict[str, Any]:
    return dict(json.loads((deck / "envs" / "dev" / PIN).read_text())["images"][service])


def _status_traffic(deck: Path, service: str = "web") -> dict[str, Any]:
    data = json.loads(opsdeck("status", "--json", deck=deck, check=True).stdout)
    dev = next(e for e in data["environments"] if e["name"] == "dev")
    return dict(next(s for s in dev["services"] if s["name"] == service)["traffic"])


def _cloud_live(deck: Path) -> dict[str, str | None]:
    """Where each service's live listener rule forwards, as the cloud has it."""
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.release.bluegreen import read_traffic

    return {s: t.live for s, t in read_traffic(Deck.open(deck), "dev").items()}


def _instances(deck: Path) -> dict[str, set[str]]:
    """dev's web instances by color."""
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.release.fleet import env_groups, service_groups

    opened = Deck.open(deck)
    found: dict[str, set[str]] = {"blue": set(), "green": set()}
    for group in service_groups(opened, env_groups(opened, "dev"), "web"):
        found[group.tags["color"]] |= {i.id for i in group.instances if i.state == "running"}
    return found


def _new_web_image(deck: Path) -> str:
    baked = json.loads(opsdeck("bake", "--service", "web", "--json", deck=deck, check=True).stdout)
    return str(baked[0]["id"])


def _release(deck: Path) -> dict[str, Any]:
    """A new web image, deployed to dev: a full blue/green release."""
    _new_web_image(deck)
    return dict(
        json.loads(opsdeck("deploy", "dev", "--service", "web", "--yes", "--json", deck=deck, check=True).stdout)
    )


def _other(color: str) -> str:
    return "green" if color == "blue" else "blue"


@pytest.fixture()
def dev_settings(demo_deck: Path) -> Iterator[Path]:
    """dev's section of opsdeck.toml, editable by the test and put back after it."""
    path = demo_deck / "opsdeck.toml"
    original = path.read_text()
    yield path
    path.write_text(original)


def _stopped(deck: Path, *args: str) -> str:
    """A release a gate must stop: exit 1, one line naming the gate, traffic where it was, the pins and
    git as they were, and the idle color back as the ledger has it."""
    head, pin, live = _git(deck, "rev-parse", "HEAD"), _color_pin(deck), _cloud_live(deck)
    result = opsdeck(*args, deck=deck)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert _git(deck, "rev-parse", "HEAD") == head and _color_pin(deck) == pin
    assert _git(deck, "status", "--porcelain", "--", "envs") == ""
    assert _cloud_live(deck) == live  # nothing switched
    status = json.loads(opsdeck("status", "--json", deck=deck, check=True).stdout)
    dev = next(e for e in status["environments"] if e["name"] == "dev")
    for service in dev["services"]:  # every color as its pin says: the staged one was put back
        counts = service["instances"]
        assert counts["running"] == counts["desired"] == counts["on_pinned_image"] > 0, service
    plan = json.loads(opsdeck("plan", "dev", "--json", deck=deck).stdout)
    assert (plan["add"], plan["change"], plan["destroy"]) == (0, 0, 0), plan["resources"]
    return str(result.stderr.strip().splitlines()[-1])


def test_a_release_stages_the_idle_color_then_switches_and_keeps_the_old_one_warm(demo_deck: Path) -> None:
    before, pin = _instances(demo_deck), _color_pin(demo_deck)
    live, old_image = pin["live"], pin[pin["live"]]
    result = _release(demo_deck)
    new = _other(live)
    assert result["instant"] is False
    traffic = result["traffic"]["web"]
    assert traffic["live"] == new
    assert traffic["standby"]["color"] == live and traffic["standby"]["image"] == old_image
    assert traffic["standby"]["warm"] is True and traffic["standby"]["until"].endswith("Z")
    phases = [p["name"] for p in result["phases"]]
    for gate in ("health", "smoke", "plan switch", "verify traffic"):
        assert gate in phases, phases
    # The switch is planned beside the gates; it is applied (and traffic read back) only once they pass.
    assert phases.index("health") < phases.index("smoke") < phases.index("verify traffic")
    # The cloud, the ledger and status agree on the live color.
    assert _cloud_live(demo_deck)["web"] == new
    assert _color_pin(demo_deck)["live"] == new and live_pins(demo_deck, "dev")["web"] == result["to_image"]
    assert _status_traffic(demo_deck)["live"] == new
    assert _status_traffic(demo_deck)["standby"]["color"] == live
    after = _instances(demo_deck)
    assert after[live] == before[live]  # the old color kept running, untouched: the warm standby
    assert after[new] and not after[new] & before[new]
    message = _git(demo_deck, "log", "-1", "--format=%B")
    assert f"traffic: web {live} -> {new}; standby {live} ({old_image}) warm until" in message


def test_rollback_inside_the_window_switches_back_and_launches_nothing(demo_deck: Path) -> None:
    pin = _color_pin(demo_deck)
    if pin.get("standby") != "warm":
        _release(demo_deck)
        pin = _color_pin(demo_deck)
    live, standby = pin["live"], _other(pin["live"])
    before, serial = _instances(demo_deck), state_serial(demo_deck, "dev")
    result = json.loads(
        opsdeck("rollback", "dev", "--service", "web", "--yes", "--json", deck=demo_deck, check=True).stdout
    )
    assert result["instant"] is True
    assert result["to_image"] == pin[standby] and result["traffic"]["web"]["live"] == standby
    assert _instances(demo_deck) == before  # same instances on both colors: none launched, none stopped
    assert state_serial(demo_deck, "dev") == serial + 1  # one apply: the switch
    assert _cloud_live(demo_deck)["web"] == standby and _status_traffic(demo_deck)["live"] == standby
    assert _status_traffic(demo_deck)["standby"]["color"] == live  # the bad release stays warm, for a look
    phases = [p["name"] for p in result["phases"]]
    assert "plan switch" not in phases  # the switch back, prepared once the release was reported
    # Traffic moved by the load balancer's API first (its own phase, timed from the confirmation), then the
    # ledger, then Terraform's state brought in line by the switch plan: the next plan is clean.
    assert phases.index("traffic moved") < phases.index("commit") < phases.index("state in line"), phases
    assert "apply" not in phases[: phases.index("traffic moved")]
    assert result["traffic_moved_s"] > 0
    assert opsdeck("plan", "dev", deck=demo_deck).returncode == 0


def test_a_failing_smoke_check_stops_the_release_with_traffic_where_it_was(demo_deck: Path, dev_settings: Path) -> None:
    text = dev_settings.read_text()
    dev_settings.write_text(
        text.replace(SMOKE[0], "smoke = ['echo checking $OPSDECK_SERVICE $OPSDECK_COLOR; exit 3']\n")
    )
    _new_web_image(demo_deck)
    idle = _other(_color_pin(demo_deck)["live"])
    line = _stopped(demo_deck, "deploy", "dev", "--service", "web", "--yes")
    command = "echo checking $OPSDECK_SERVICE $OPSDECK_COLOR; exit 3"
    assert line.startswith(f"opsdeck: smoke gate: `{command}` failed (exit 3) for web {idle}: checking web {idle}")
    assert line.endswith("traffic stays where it was")


def test_a_smoke_check_that_hangs_is_stopped_at_its_timeout(demo_deck: Path, dev_settings: Path) -> None:
    text = dev_settings.read_text()
    dev_settings.write_text(text.replace(SMOKE[0], "smoke = ['sleep 600']\nsmoke_timeout = 2\n"))
    _new_web_image(demo_deck)
    started = time.monotonic()
    line = _stopped(demo_deck, "deploy", "dev", "--service", "web", "--yes")
    assert "opsdeck: smoke gate: `sleep 600` did not finish within 2s for web" in line
    assert time.monotonic() - started < 120
    leftover = subprocess.run(["pgrep", "-f", "^sleep 600$"], capture_output=True, text=True).stdout
    assert leftover == ""  # the whole process group went


def _stop_instances_of(deck: Path, image: str, done: threading.Event) -> None:
    """Stop dev's instances of ``image`` as soon as they appear: a color that never becomes healthy."""
    from opsdeck.core.estate.deck import Deck

    cloud = Deck.open(deck).tools.env("dev").cloud
    ec2 = cloud.client("ec2")  # type: ignore[attr-defined]
    while not done.is_set():
        raw = ec2.describe_instances(
            Filters=[{"Name": "image-id", "Values": [image]}, {"Name": "instance-state-name", "Values": ["running"]}]
        )
        ids = [i["InstanceId"] for r in raw["Reservations"] for i in r["Instances"]]
        if ids:
            ec2.stop_instances(InstanceIds=ids)
        time.sleep(0.2)


def test_a_color_that_never_becomes_healthy_stops_the_release(demo_deck: Path, dev_settings: Path) -> None:
    text = dev_settings.read_text()
    dev_settings.write_text(text.replace("health_timeout = 120", "health_timeout = 6"))
    image = _new_web_image(demo_deck)
    done = threading.Event()
    stopper = threading.Thread(target=_stop_instances_of, args=(demo_deck, image, done), daemon=True)
    stopper.start()
    try:
        idle = _other(_color_pin(demo_deck)["live"])
        head, pin, live = _git(demo_deck, "rev-parse", "HEAD"), _color_pin(demo_deck), _cloud_live(demo_deck)
        result = opsdeck("deploy", "dev", "--service", "web", "--yes", deck=demo_deck)
    finally:
        done.set()
        stopper.join()
    assert result.returncode == 1, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    # Stopped before they ran their image everywhere (the wait for instances says so), or after (the
    # target group does): either way the gate names the color that is not healthy.
    assert line.startswith("opsdeck: health gate: after 6s "), line
    assert f"{idle} (warm) 0 of 2 on {image}" in line or f"web {idle}: 0 of 2 targets healthy (i-" in line, line
    assert line.endswith("traffic stays where it was")
    assert _git(demo_deck, "rev-parse", "HEAD") == head and _color_pin(demo_deck) == pin
    assert _cloud_live(demo_deck) == live
    assert image not in {i for ids in _instances(demo_deck).values() for i in ids}


def test_a_planted_policy_violation_refuses_the_release_naming_the_check(demo_deck: Path) -> None:
    _new_web_image(demo_deck)
    module = demo_deck / "modules" / "blue_green" / "main.tf"
    with edited(module, 'http_tokens                 = "required"', 'http_tokens                 = "optional"'):
        head, pin, serial = _git(demo_deck, "rev-parse", "HEAD"), _color_pin(demo_deck), state_serial(demo_deck, "dev")
        result = opsdeck("deploy", "dev", "--service", "web", "--yes", deck=demo_deck)
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("opsdeck: policy gate: CKV_AWS_79 fails on module.service[")  # every template of the module
    assert '].aws_launch_template.color["' in line and line.endswith("dev's plan was not applied")
    assert _git(demo_deck, "rev-parse", "HEAD") == head and _color_pin(demo_deck) == pin
    assert state_serial(demo_deck, "dev") == serial


def _wait_for_line(proc: subprocess.Popen[str], needle: str, nth: int = 1, timeout: float = 240) -> list[str]:
    assert proc.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            count += 1
            if count == nth:
                return seen
    raise AssertionError(f"never saw {needle!r} ({nth}) in:\n{''.join(seen)}")


def _terraform_done(deck: Path) -> None:
    from opsdeck.adapters.process import processes_in

    deadline = time.monotonic() + 120
    while any("terraform" in cmd for _, cmd in processes_in(deck / "envs" / "dev")):
        assert time.monotonic() < deadline, "terraform still runs in dev"
        time.sleep(0.2)


def test_killed_during_the_switch_leaves_traffic_on_one_color_that_ledger_and_status_name(demo_deck: Path) -> None:
    _new_web_image(demo_deck)
    was = _color_pin(demo_deck)["live"]
    proc = spawn(demo_deck, "deploy", "dev", "--service", "web", "--yes", "-v")
    try:
        _wait_for_line(proc, "plan switch (")  # the switch's plan is made; its apply follows
        _wait_for_line(proc, "dev: apply")
        wait_until(lambda: applying(demo_deck / "envs" / "dev"), "terraform to apply the switch in dev")
    finally:
        proc.send_signal(signal.SIGKILL)
        finish(proc)
    _terraform_done(demo_deck)  # Terraform, in its own session, finishes the apply it started
    locked = opsdeck("deploy", "dev", "--yes", deck=demo_deck)
    assert locked.returncode != 0 and "interrupted" in locked.stderr
    opsdeck("unlock", "dev", "--yes", deck=demo_deck, check=True)
    cloud = _cloud_live(demo_deck)["web"]
    assert cloud in ("blue", "green")  # one rule: traffic is on exactly one color
    assert _color_pin(demo_deck)["live"] == cloud  # the working tree ...
    head_pin = json.loads(_git(demo_deck, "show", f"HEAD:envs/dev/{PIN}"))["images"]["web"]
    assert head_pin["live"] == cloud  # ... and the ledger
    assert _status_traffic(demo_deck)["live"] == cloud
    assert _git(demo_deck, "status", "--porcelain", "--", "envs") == ""
    if cloud != was:
        assert "reconcile dev after an interrupted release" in _git(demo_deck, "log", "-1", "--format=%s")


def _end_window_at(deck: Path, when: float) -> None:
    path = deck / "envs" / "dev" / PIN
    data = json.loads(path.read_text())
    data["images"]["web"]["warm_until"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    _git(deck, "commit", "-q", "-am", "test: web's standby window ends soon")


def test_the_standby_window_ending_during_a_rollback_does_not_pull_the_standby_away(demo_deck: Path) -> None:
    """The rollback decides at its start that the standby is warm; the window ends while it waits for
    its confirmation; the expiry that a scheduler starts then is refused (the environment is locked),
    and the rollback switches to the standby it found."""
    import asyncio

    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.events import Reporter
    from opsdeck.core.release import promote

    _release(demo_deck)
    standby = _other(_color_pin(demo_deck)["live"])
    ends = time.time() + 3
    _end_window_at(demo_deck, ends)
    tried: list[subprocess.CompletedProcess[str]] = []

    async def confirm_after_the_window(preview: Any) -> bool:
        assert "instant" in preview.note
        while time.time() < ends + 0.5:  # the window ending meanwhile is what is tested: let it pass
            await asyncio.sleep(0.2)
        tried.append(await asyncio.to_thread(opsdeck, "standby", "expire", "dev", deck=demo_deck))
        return True

    deck = Deck.open(demo_deck)
    result = asyncio.run(
        promote.rollback(deck, "dev", Reporter("rollback", "dev"), services=["web"], confirm=confirm_after_the_window)
    )
    assert tried[0].returncode == 1 and "dev is locked" in tried[0].stderr, tried[0].stderr
    assert isinstance(result, promote.ReleaseResult) and result.instant is True
    assert _cloud_live(demo_deck)["web"] == standby
    # The color the rollback left has a fresh window: nothing to expire.
    again = opsdeck("standby", "expire", "dev", "--json", deck=demo_deck, check=True)
    assert json.loads(again.stdout) == [{"environment": "dev", "cooled": [], "commit": ""}]


def json_time(text: str | None) -> float:
    import calendar

    assert text is not None
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))


def test_after_the_window_the_standby_is_cold_and_a_rollback_scales_it_back_first(demo_deck: Path) -> None:
    pin = _color_pin(demo_deck)
    if pin.get("standby") != "warm":
        _release(demo_deck)
        pin = _color_pin(demo_deck)
    idle = _other(pin["live"])
    _end_window_at(demo_deck, time.time() - 1)
    expired = json.loads(opsdeck("standby", "expire", "--json", deck=demo_deck, check=True).stdout)
    assert expired[0]["cooled"] == [
        {"service": "web", "color": idle, "image": pin[idle], "window_ended": expired[0]["cooled"][0]["window_ended"]}
    ]
    assert _instances(demo_deck)[idle] == set() and _color_pin(demo_deck)["standby"] == "cold"
    assert _status_traffic(demo_deck)["standby"] is None
    assert "standby expire dev: web" in _git(demo_deck, "log", "-1", "--format=%s")
    result = json.loads(
        opsdeck(
            "rollback", "dev", "--service", "web", "--to", pin[idle], "--yes", "--json", deck=demo_deck, check=True
        ).stdout
    )
    assert result["instant"] is False and result["traffic"]["web"]["live"] == idle
    phases = [p["name"] for p in result["phases"]]
    assert "health" in phases and "smoke" not in phases  # a rollback waits for health, not for smoke checks
    assert _cloud_live(demo_deck)["web"] == idle and len(_instances(demo_deck)[idle]) == 2
