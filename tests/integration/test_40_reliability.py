"""Faults on the demo deck: two operators at once, opsdeck killed mid-apply, the cloud going away,
a planted secret, and break-glass that expires. Runs after test_30_drift.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import applying, finish, live_pins, opsdeck, released, spawn

pytestmark = pytest.mark.integration

PIN = "images.auto.tfvars.json"


def _status(deck: Path) -> dict[str, Any]:
    data = json.loads(opsdeck("status", "--json", deck=deck, check=True).stdout)
    return {e["name"]: e for e in data["environments"]}


def _images(deck: Path) -> dict[str, str]:
    """version -> id of the web service's images (the service these faults are played on)."""
    data = json.loads(opsdeck("images", "--json", deck=deck, check=True).stdout)
    return {i["version"]: i["id"] for i in data if i["service"] == "web" and not i["revoked"]}


@pytest.fixture(scope="module")
def spare(demo_deck: Path) -> list[str]:
    """Two web images that neither dev nor the sandbox runs now (baked if the deck lacks them)."""
    pins = {_pin(demo_deck, env) for env in ("dev", "sandbox")}
    found = [image for image in _images(demo_deck).values() if image not in pins]
    while len(found) < 2:
        baked = json.loads(opsdeck("bake", "--service", "web", "--json", deck=demo_deck, check=True).stdout)
        found.append(baked[0]["id"])
    return found[:2]


def _pin(deck: Path, env: str, service: str = "web") -> str:
    return live_pins(deck, env)[service]


def _web(row: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in row["services"] if s["name"] == "web")


def _assume(role: str) -> dict[str, Any]:
    """What `aws sts assume-role` prints, from the local cloud."""
    import boto3

    endpoint = json.loads(opsdeck("cloud", "status", "--json", check=True).stdout)["endpoint"]
    sts = boto3.client(
        "sts", endpoint_url=endpoint, region_name="us-west-2", aws_access_key_id="x", aws_secret_access_key="x"
    )
    return dict(sts.assume_role(RoleArn=role, RoleSessionName="planted"))


def _wait_for(predicate: Any, timeout: float = 120.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _lock_held(deck: Path, env: str) -> bool:
    path = deck / ".opsdeck" / "locks" / f"{env}.lock"
    return path.is_file() and path.read_text().strip() != ""


def _git(deck: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(deck), *args], capture_output=True, text=True, check=True).stdout


def test_same_environment_one_proceeds_other_fails_at_once(demo_deck: Path, spare: list[str]) -> None:
    first = spawn(demo_deck, "promote", spare[0], "dev", "--service", "web", "--yes", "--reason", "concurrency A")
    try:
        _wait_for(lambda: _lock_held(demo_deck, "dev"), what="the first promote to take dev's lock")
        second = opsdeck(
            "promote", spare[1], "dev", "--service", "web", "--yes", "--reason", "concurrency B", deck=demo_deck
        )
        assert first.poll() is None  # the second failed while the first still ran: it did not wait
        assert second.returncode == 1
        line = second.stderr.strip().splitlines()[-1]
        assert line.startswith("opsdeck: dev is locked: promote by ") and " since " in line and "lock id " in line
    finally:
        _out, err = finish(first)
    assert first.returncode == 0, err
    assert _web(_status(demo_deck)["dev"])["image"]["id"] == spare[0]


def test_different_environments_proceed_in_parallel(demo_deck: Path, spare: list[str]) -> None:
    dev = spawn(demo_deck, "promote", spare[1], "dev", "--service", "web", "--yes", "--reason", "parallel")
    sandbox = spawn(demo_deck, "promote", spare[0], "sandbox", "--service", "web", "--yes", "--reason", "parallel")
    both = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and dev.poll() is None and sandbox.poll() is None:
            if _lock_held(demo_deck, "dev") and _lock_held(demo_deck, "sandbox"):
                both.set()
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    results = [finish(p) for p in (dev, sandbox)]
    watcher.join()
    assert dev.returncode == 0, results[0][1][-3000:]
    assert sandbox.returncode == 0, results[1][1][-3000:]
    assert both.is_set(), "both locks were never held at the same time"
    status = _status(demo_deck)
    assert _web(status["dev"])["image"]["id"] == spare[1] and _web(status["sandbox"])["image"]["id"] == spare[0]


def test_refresh_leaves_an_environment_with_a_running_operation_alone(demo_deck: Path, spare: list[str]) -> None:
    target = next(image for image in spare if image != _pin(demo_deck, "dev"))
    promote = spawn(demo_deck, "promote", target, "dev", "--service", "web", "--yes", "--reason", "refresh beside it")
    try:
        _wait_for(lambda: _lock_held(demo_deck, "dev"), what="the promote to take dev's lock")
        refresh = opsdeck("refresh", "dev", "sandbox", "--json", deck=demo_deck)
    finally:
        _out, err = finish(promote)
    assert promote.returncode == 0, err  # it applied its own saved plan, untouched by the refresh
    assert refresh.returncode == 0, refresh.stderr
    data = json.loads(refresh.stdout)
    assert data["skipped"] == {"dev": "promote"}
    assert _web(_status(demo_deck)["dev"])["image"]["id"] == target
    kept = ".switch-back."  # the switch back a blue/green release prepares is kept on purpose
    scratch = [p.name for p in (demo_deck / ".opsdeck" / "plans").iterdir() if p.name.count(".") > 1]
    scratch = [name for name in scratch if kept not in name]
    assert scratch == []  # every run's own plan file was moved into place or removed


def test_killed_mid_apply_shows_interrupted_and_loses_nothing(demo_deck: Path, spare: list[str]) -> None:
    """A red/black rollback (the sandbox rolls out by replacement; dev's blue/green switch is killed in
    test_70_blue_green) killed while Terraform creates the new template."""
    other = next(image for image in spare if image != _pin(demo_deck, "sandbox"))
    opsdeck("promote", other, "sandbox", "--service", "web", "--yes", deck=demo_deck, check=True)
    head = _git(demo_deck, "rev-parse", "HEAD")
    releases = json.loads(
        opsdeck("history", "sandbox", "--service", "web", "--json", deck=demo_deck, check=True).stdout
    )
    pins = [r["services"][0]["image_id"] for r in releases]
    target = next(image for image in pins if image != pins[0])  # the previous pin, as rollback finds it
    proc = spawn(demo_deck, "rollback", "sandbox", "--service", "web", "--yes", "--reason", "killed", "-v")
    assert proc.stderr is not None
    for line in proc.stderr:
        if "rollback sandbox: apply" in line:
            break
    _wait_for(lambda: applying(demo_deck / "envs" / "sandbox"), timeout=60, what="terraform to apply in sandbox")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()

    status = _status(demo_deck)["sandbox"]
    lock = status["lock"]
    assert lock["state"] == "interrupted" and lock["operation"] == "rollback" and lock["id"]
    refused = opsdeck("deploy", "sandbox", "--yes", deck=demo_deck)
    assert refused.returncode == 1
    assert "sandbox has an interrupted operation: rollback by " in refused.stderr
    assert "release it with `opsdeck unlock sandbox`" in refused.stderr
    records = json.loads(opsdeck("audit", "--json", deck=demo_deck, check=True).stdout)
    started = [r for r in records if r["environment"] == "sandbox" and r["action"] == "rollback"][-1]
    assert started["result"] == "started"

    # Terraform was not killed with opsdeck: unlock waits for it, then releases the lock.
    def unlocked() -> bool:
        result = opsdeck("unlock", "sandbox", "--yes", deck=demo_deck)
        if result.returncode == 0:
            assert "released sandbox's lock (rollback, lock id" in result.stdout
            return True
        assert "terraform is still running in sandbox" in result.stderr, result.stderr
        return False

    _wait_for(unlocked, timeout=180, what="unlock")
    assert _status(demo_deck)["sandbox"]["lock"] is None
    records = json.loads(opsdeck("audit", "--json", deck=demo_deck, check=True).stdout)
    closing = [r for r in records if r.get("started") == started["seq"]]
    assert closing and closing[0]["result"] == "interrupted"
    assert records[-1]["action"] == "unlock" and records[-1]["interrupted"] == "rollback"
    assert opsdeck("audit", "verify", deck=demo_deck).returncode == 0

    # Nothing lost: terraform finished the apply, so unlock settled the ledger to what the cloud runs (the
    # pin the operation wrote, committed with the unlock's audit anchor), and code and cloud agree.
    assert _git(demo_deck, "rev-parse", "HEAD~1") == head
    assert _git(demo_deck, "log", "-1", "--format=%s").startswith("settle sandbox after an interrupted rollback")
    assert _pin(demo_deck, "sandbox") == target and _git(demo_deck, "status", "--porcelain", "--", "envs") == ""
    plan = opsdeck("plan", "sandbox", "--json", deck=demo_deck)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    counts = _status(demo_deck)["sandbox"]["instances"]
    assert counts["running"] == counts["desired"] == counts["on_pinned_image"] > 0


def _cloud_pid() -> int:
    return int(json.loads(opsdeck("cloud", "status", "--json", check=True).stdout)["pid"])


def test_cloud_going_away_is_one_line_and_recovers(demo_deck: Path) -> None:
    pid = _cloud_pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        for args in (["images"], ["plan", "dev"], ["deploy", "dev", "--yes"], ["drift"]):
            result = opsdeck(*args, deck=demo_deck, timeout=120)
            assert result.returncode == 1, (args, result.stderr)
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and "Traceback" not in result.stderr
            assert (
                lines[0].startswith("opsdeck: the local cloud at http://127.0.0.1:") and "does not answer" in lines[0]
            )
        status = opsdeck("status", "--json", deck=demo_deck, timeout=120)
        assert status.returncode == 0
        data = json.loads(status.stdout)
        assert data["cloud"] == "unreachable"
        assert all(e["services"] == [] and "does not answer" in e["error"] for e in data["environments"])
    finally:
        os.kill(pid, signal.SIGCONT)
    data = json.loads(opsdeck("status", "--json", deck=demo_deck, check=True).stdout)
    assert data["cloud"] == "reachable" and all(e["services"] for e in data["environments"])


def test_planted_secret_appears_nowhere(demo_deck: Path, spare: list[str]) -> None:
    planted = _assume("arn:aws:iam::333333333333:role/opsdeck-break-glass")
    secret, key = planted["Credentials"]["SecretAccessKey"], planted["Credentials"]["AccessKeyId"]
    if _web(_status(demo_deck)["prod"])["lag"]["in_sync"]:
        if _web(_status(demo_deck)["staging"])["lag"]["in_sync"]:
            opsdeck("promote", spare[1], "dev", "--service", "web", "--yes", deck=demo_deck, check=True)
        released(demo_deck, "promote", "dev", "staging", "--service", "web")
    stored = opsdeck("secrets", "set", "prod", deck=demo_deck, input=json.dumps(planted, default=str))
    assert stored.returncode == 0 and secret not in stored.stdout + stored.stderr
    seen_in_argv: list[str] = []
    stop = threading.Event()

    def scan_process_table() -> None:
        while not stop.is_set():
            for entry in Path("/proc").glob("[0-9]*"):
                try:
                    cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
                except OSError:
                    continue
                if secret in cmdline or key in cmdline:
                    seen_in_argv.append(cmdline)
            time.sleep(0.05)

    scanner = threading.Thread(target=scan_process_table)
    scanner.start()
    try:
        runs = [
            opsdeck(
                "promote",
                "staging",
                "prod",
                "--service",
                "web",
                "--yes",
                "--break-glass",
                "--reason",
                "secret test",
                "-v",
                deck=demo_deck,
                timeout=300,
            ),
            opsdeck(
                "rollback",
                "prod",
                "--service",
                "web",
                "--yes",
                "--break-glass",
                "--reason",
                "secret test",
                "-v",
                "--json",
                deck=demo_deck,
                timeout=300,
            ),
            opsdeck("status", deck=demo_deck),
            opsdeck("audit", deck=demo_deck),
            opsdeck("secrets", "status", deck=demo_deck),
        ]
    finally:
        stop.set()
        scanner.join()
    assert runs[0].returncode == 0 and runs[1].returncode == 0, runs[0].stderr + runs[1].stderr
    assert seen_in_argv == []
    for run in runs:
        assert secret not in run.stdout + run.stderr
    keyring_file = Path(os.environ["XDG_DATA_HOME"]) / "python_keyring"
    searched = 0
    for root in (demo_deck, Path(os.environ["OPSDECK_HOME"])):
        for path in root.rglob("*"):
            if not path.is_file() or keyring_file in path.parents or "/.terraform/providers/" in str(path):
                continue
            searched += 1
            assert secret.encode() not in path.read_bytes(), path
    assert searched > 20
    log = _git(demo_deck, "log", "-p", "-5")
    assert secret not in log


def test_break_glass_expires_on_time(demo_deck: Path) -> None:
    import asyncio

    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.events import Reporter
    from opsdeck.core.release.promote import rollback
    from opsdeck.core.safety.breakglass import guard, open_break_glass
    from opsdeck.errors import RefusedError

    deck = Deck.open(demo_deck)
    glass = open_break_glass(deck, "prod", "short window", minutes=0.5 / 60)
    guard(deck, "prod", glass, "rollback")  # open: allowed
    head = _git(demo_deck, "rev-parse", "HEAD")
    # Letting the window pass is what is tested: wait until it has ended by the break-glass's own clock.
    _wait_for(lambda: not glass.active(), timeout=10, what="the half-second break-glass window to end")
    with pytest.raises(
        RefusedError, match=r"break-glass for prod expired at \d\d:\d\d:\d\d; open it again to rollback"
    ):
        asyncio.run(rollback(deck, "prod", Reporter("rollback", "prod"), reason="late", glass=glass))
    assert _git(demo_deck, "rev-parse", "HEAD") == head
    assert not hasattr(deck, "_credentials")  # the deck holds no credentials: the break-glass value does
    assert glass.credentials is not None and "secret" not in repr(glass).lower()
    # A break-glass for one environment does not open another.
    with pytest.raises(RefusedError, match="dev is not protected"):
        open_break_glass(deck, "dev", "nope")
