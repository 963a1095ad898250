"""The engine on the demo deck: a real redis-server on 127.0.0.1 and two `opsdeck worker` processes, each
on its own clone of the deck's team remote. A refresh spread over both workers, a promote on a worker
(the result names it), a worker killed mid-apply (no retry, the environment interrupted with the lock
naming the worker, `unlock` recovers), a job for an account no worker serves, bad input, and the
broker going away during a refresh (last: it takes the broker down)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, applying, finish, live_pins, opsdeck

pytestmark = pytest.mark.integration

PIN = "images.auto.tfvars.json"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _git(deck: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(deck), *args], capture_output=True, text=True, check=True).stdout.strip()


def _wait_for(predicate: Any, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _stop(proc: subprocess.Popen[Any] | None, grace: float = 15.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class Engine:
    """The redis-server and workers this module started (stopped at its end, whatever happened)."""

    deck: Path
    port: int
    home: Path
    redis: subprocess.Popen[bytes] | None = None
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def env(self, db: int = 0, **extra: str) -> dict[str, str]:
        return {**os.environ, "OPSDECK_BROKER": f"redis://127.0.0.1:{self.port}/{db}", **extra}

    def start_redis(self) -> None:
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def answers() -> bool:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
            return False

        _wait_for(answers, 20, "redis-server")

    def clone(self, name: str) -> Path:
        """A worker's own clone of the deck's team remote, with the deck's git identity."""
        target = self.home / name
        shutil.rmtree(target, ignore_errors=True)
        remote = _git(self.deck, "remote", "get-url", "origin")
        subprocess.run(["git", "clone", "-q", remote, str(target)], check=True)
        for key in ("user.name", "user.email"):
            _git(target, "config", key, _git(self.deck, "config", key))
        return target

    def start_worker(self, name: str, *args: str, db: int = 0) -> subprocess.Popen[bytes]:
        clone = self.clone(name)
        log = self.home / f"{name}.log"
        self.logs[name] = log
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "opsdeck", "--deck", str(clone), "worker", "--name", name, *args],
                cwd=ROOT,
                env=self.env(db),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.workers[name] = proc
        _wait_for(lambda: self.worker_named(name, db) is not None or proc.poll() is not None, 60, f"worker {name}")
        assert proc.poll() is None, log.read_text()[-3000:]
        return proc

    def status(self, db: int = 0) -> dict[str, Any]:
        result = opsdeck("engine", "status", "--json", deck=self.deck, env=self.env(db))
        return dict(json.loads(result.stdout))

    def worker_named(self, name: str, db: int = 0) -> dict[str, Any] | None:
        workers = self.status(db).get("workers", [])
        return next((w for w in workers if w["name"].split("@")[0] == name), None)

    def stop(self) -> None:
        for proc in self.workers.values():
            _stop(proc)
        _stop(self.redis, 5)


@pytest.fixture(scope="module")
def engine(demo_deck: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not on PATH; run the tests through `make test` (scripts/bootstrap.sh installs it)")
    found = Engine(demo_deck, _free_port(), tmp_path_factory.mktemp("engine"))
    try:
        found.start_redis()
        found.start_worker("w1")
        found.start_worker("w2")
        yield found
    finally:
        found.stop()


def _status(deck: Path) -> dict[str, Any]:
    data = json.loads(opsdeck("status", "--json", deck=deck, check=True).stdout)
    return {e["name"]: e for e in data["environments"]}


def _audit(deck: Path) -> list[dict[str, Any]]:
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.safety import audit

    return audit.read(Deck.open(deck))


def _started(engine: Engine, job: str) -> list[str]:
    """The workers that started ``job``, from its event stream."""
    from opsdeck.core.engine.jobs import events_key
    from opsdeck.core.engine.packages import engine_packages

    with engine_packages():
        import redis

    with redis.Redis.from_url(engine.url) as client:
        entries = client.xrange(events_key(job))
    kinds = [json.loads(fields[b"data"]) for _, fields in entries]
    return [str(data["worker"]) for data in kinds if data.get("kind") == "started"]


def _names(engine: Engine) -> set[str]:
    return {w["name"] for w in engine.status()["workers"]}


def test_engine_status_shows_both_workers_and_every_account_queue(engine: Engine) -> None:
    data = engine.status()
    assert data["mode"] == "workers" and data["reachable"] is True and data["error"] == ""
    assert len(data["workers"]) == 2
    queues = {q["name"]: q for q in data["queues"]}
    assert set(queues) == {"opsdeck.111111111111", "opsdeck.222222222222", "opsdeck.333333333333"}
    assert queues["opsdeck.111111111111"]["environments"] == ["sandbox", "dev"]
    assert all(len(q["workers"]) == 2 and q["waiting"] == 0 for q in queues.values())
    assert data["unserved"] == []
    assert data["consuming"] == {w["name"]: sorted(queues) for w in data["workers"]}  # Celery's own answer
    text = opsdeck("engine", "status", deck=engine.deck, env=engine.env())
    assert text.returncode == 0 and "2 workers" in text.stdout and "opsdeck.222222222222" in text.stdout


async def test_the_deck_header_shows_the_engine(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The deck reads the engine's state from the broker and shows it in its header; without a broker
    nothing is shown (the segment is opt-in like the engine)."""
    from opsdeck.core.estate.deck import Deck
    from opsdeck.tui.app import OpsDeckApp

    monkeypatch.setenv("OPSDECK_BROKER", engine.url)
    app = OpsDeckApp(Deck.open(engine.deck), theme="opsdeck-dark", live=False)
    async with app.run_test(size=(160, 40)) as pilot:
        header = app.deck_screen.header
        header.follow_engine(app.deck)  # what a live deck does on mount (this one is not refreshing the cloud)
        for _ in range(100):
            if header.engine is not None:
                break
            await pilot.pause(0.1)
        assert header.engine == ("engine 2 workers", True)
        await pilot.pause()
        assert "engine 2 workers" in str(header.render())
    monkeypatch.setenv("OPSDECK_BROKER", "redis://127.0.0.1:1/0")
    gone = OpsDeckApp(Deck.open(engine.deck), theme="opsdeck-dark", live=False)
    async with gone.run_test(size=(160, 40)) as pilot:
        header = gone.deck_screen.header
        header.follow_engine(gone.deck)
        for _ in range(100):
            if header.engine is not None:
                break
            await pilot.pause(0.1)
        assert header.engine == ("engine: broker 127.0.0.1:1 UNREACHABLE", False)


async def test_the_decks_refresh_key_runs_on_the_workers_with_their_progress_live(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """f in the deck sends each environment's plan to a worker of its account; the operation's phases
    show which worker runs them while they run, and its summary names the workers."""
    from textual.worker import WorkerState

    from opsdeck.core.estate.deck import Deck
    from opsdeck.tui.app import OpsDeckApp

    monkeypatch.setenv("OPSDECK_BROKER", engine.url)
    deck = Deck.open(engine.deck)
    app = OpsDeckApp(deck, theme="opsdeck-dark")

    def loading() -> bool:  # the deck's own first load (status, stale plans and drift) is still running
        return any(w.group == "state" and w.state in (WorkerState.PENDING, WorkerState.RUNNING) for w in app.workers)

    async with app.run_test(size=(160, 40)) as pilot:
        screen = app.deck_screen
        ops = screen.operations
        for _ in range(1800):
            if screen.state is not None and screen.state.cloud == "reachable" and not loading():
                break
            await pilot.pause(0.1)
        # Every plan stale, here and in the workers' clones (each keeps its own saved plans): a change to
        # a module all environments use, committed and pushed, so each plan is a job on a worker.
        network = engine.deck / "modules" / "network" / "main.tf"
        network.write_text(network.read_text() + f"# touched by {ops.count} tests\n")
        _git(engine.deck, "commit", "-qm", "touch the network module: every plan is stale", "--", str(network))
        _git(engine.deck, "push", "-q")
        before = ops.count
        seen: list[str] = []
        await pilot.press("f")
        for _ in range(1800):
            seen += [" ".join(str(p[0]) for p in row.phases) for row in ops.rows.values()]
            if ops.last is not None and ops.last.key.endswith(f"#{before + 1}"):
                break
            await pilot.pause(0.1)
        assert ops.last is not None and ops.last.ok, ops.last
        summary = ops.last.summary
        assert summary.startswith("refreshed 4 plans in ") and " on w" in summary, summary
        assert any(" on w1@" in s or " on w2@" in s for s in seen), seen[-3:]


def test_refresh_runs_every_environment_on_the_workers_spread_over_both(engine: Engine) -> None:
    started = time.time()
    result = opsdeck("refresh", "--fresh", "--json", "-v", deck=engine.deck, env=engine.env(), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout)
    assert data["errors"] == {} and data["skipped"] == {}
    workers = data["workers"]
    assert set(workers) == {"sandbox", "dev", "staging", "prod"}
    names = _names(engine)
    assert set(workers.values()) <= names, workers
    assert all(f" on {name}: " in result.stderr for name in names)  # both took jobs
    # The plans came back through the state buckets and are this deck's saved plans now; so are the
    # drift reports; and the events arrived here labelled with the worker that ran them.
    for env in data["environments"]:
        assert env["plan"] is not None and env["plan"]["at"] >= started, env["name"]
        assert env["drift_at"] >= started, env["name"]
    assert any(f"plan {env} on {worker}: plan (" in result.stderr for env, worker in workers.items())
    assert "drift prod on " in result.stderr
    rows = _status(engine.deck)
    assert all(rows[env]["plan"]["at"] >= started for env in workers)
    cached = opsdeck("plan", "dev", "--cached", "--json", deck=engine.deck)
    assert cached.returncode in (0, 2) and json.loads(cached.stdout)["cached"] is True  # the shipped plan
    assert not [k for k in os.listdir(engine.deck / ".opsdeck" / "plans") if k.endswith(".part")]


def _spare(deck: Path, env: str) -> str:
    data = json.loads(opsdeck("images", "--json", deck=deck, check=True).stdout)
    pinned = live_pins(deck, env)["web"]
    found = [i["id"] for i in data if i["service"] == "web" and not i["revoked"] and i["id"] != pinned]
    if found:
        return str(found[-1])
    baked = json.loads(opsdeck("bake", "--service", "web", "--json", deck=deck, check=True).stdout)
    return str(baked[0]["id"])


def test_plan_of_one_environment_runs_on_a_worker_of_its_account(engine: Engine) -> None:
    result = opsdeck("plan", "staging", "--json", deck=engine.deck, env=engine.env())
    assert result.returncode in (0, 2), result.stderr
    data = json.loads(result.stdout)
    assert data["environment"] == "staging" and data["cached"] is False
    assert data["worker"].split("@")[0] in ("w1", "w2")
    text = opsdeck("plan", "staging", deck=engine.deck, env=engine.env())
    assert text.returncode == result.returncode and "(planned on w" in text.stdout, text.stdout + text.stderr
    here = opsdeck("plan", "staging", "--json", deck=engine.deck)  # no broker: planned here, as before
    assert here.returncode == result.returncode and "worker" not in json.loads(here.stdout)


def test_a_promote_runs_on_a_worker_and_its_result_names_the_worker(engine: Engine) -> None:
    deck = engine.deck
    image = _spare(deck, "sandbox")
    result = opsdeck(
        "promote", image, "sandbox", "--service", "web", "--yes", "--json", "-v", "--reason", "on a worker",
        deck=deck, env=engine.env(), timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout)
    assert data["worker"] in _names(engine) and data["job"]
    assert data["services"][0]["to_image"] == image and data["environment"] == "sandbox"
    assert f"promote sandbox on {data['worker']}: apply (" in result.stderr  # its phases, live, labelled
    # The worker committed and pushed; this clone followed; the cloud runs the image.
    assert _git(deck, "rev-parse", "HEAD") == data["commit"]
    assert live_pins(deck, "sandbox")["web"] == image
    web = next(s for s in _status(deck)["sandbox"]["services"] if s["name"] == "web")
    assert web["image"]["id"] == image and web["instances"]["on_pinned_image"] == web["instances"]["desired"] > 0
    assert _git(deck, "log", "-1", "--format=%s").startswith("promote web ")


def test_a_worker_killed_mid_apply_leaves_the_environment_interrupted_and_nothing_reruns_it(engine: Engine) -> None:
    deck = engine.deck
    head = _git(deck, "rev-parse", "HEAD")
    before = live_pins(deck, "sandbox")["web"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "opsdeck", "--deck", str(deck), "rollback", "sandbox", "--service", "web", "--yes",
         "--reason", "killed worker", "-v"],
        cwd=ROOT, env=engine.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    seen: list[str] = []
    victim = ""
    for line in proc.stderr:
        seen.append(line)
        if "rollback sandbox on " in line and ": apply" in line:
            victim = line.split("rollback sandbox on ")[1].split(":")[0]
            break
    assert victim, "".join(seen)[-3000:]
    name = victim.split("@")[0]
    _wait_for(lambda: applying(engine.home / name / "envs" / "sandbox"), 60, f"terraform to apply on {victim}")
    engine.workers[name].send_signal(signal.SIGKILL)
    engine.workers[name].wait()
    _out, err = finish(proc, timeout=120)
    gave_up = time.time()
    assert proc.returncode == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"opsdeck: worker {victim} was lost during rollback of sandbox"), err[-2000:]
    assert "nothing runs it again" in last and "`opsdeck unlock sandbox`" in last

    lock = _status(deck)["sandbox"]["lock"]
    assert lock["state"] == "interrupted" and lock["operation"] == "rollback" and lock["worker"] == victim
    refused = opsdeck("deploy", "sandbox", "--yes", deck=deck, env=engine.env())
    assert refused.returncode == 1
    assert (
        "sandbox has an interrupted operation: rollback by " in refused.stderr
        and f"on worker {victim}" in refused.stderr
    )
    # Nothing re-ran it: the job started once, and the other worker, registered again since the caller
    # gave up (its registration says what it runs), is idle; the queue is empty.
    job = next(r for r in reversed(_audit(deck)) if r["action"] == "rollback" and r.get("engine"))["engine"]["job"]
    assert _started(engine, job) == [victim]
    status: dict[str, Any] = {}

    def seen_since() -> bool:
        status.update(engine.status())
        return all(w["seen"] > gave_up for w in status["workers"] if w["name"] != victim)

    _wait_for(seen_since, 30, "the other worker's registration written after the caller gave up")
    other = [w for w in status["workers"] if w["name"] != victim]
    assert len(other) == 1 and other[0]["jobs"] == []
    assert all(q["waiting"] == 0 for q in status["queues"])
    assert _status(deck)["sandbox"]["lock"]["worker"] == victim

    # Terraform was not killed with the worker: unlock waits for it, then releases the lock.
    def unlocked() -> bool:
        result = opsdeck("unlock", "sandbox", "--yes", deck=deck)
        if result.returncode == 0:
            return True
        assert "terraform is still running in sandbox" in result.stderr, result.stderr
        return False

    _wait_for(unlocked, timeout=180, what="unlock")
    assert _status(deck)["sandbox"]["lock"] is None
    # The worker died before its commit; terraform finished the rollback, so unlock (here, in the caller's
    # clone) settled the ledger to the rollback's target, which the lock named, and pushed it.
    assert _git(deck, "rev-parse", "HEAD~1") == head
    assert _git(deck, "log", "-1", "--format=%s").startswith("settle sandbox after an interrupted rollback")
    assert live_pins(deck, "sandbox")["web"] != before and _git(deck, "status", "--porcelain", "--", "envs") == ""
    plan = opsdeck("plan", "sandbox", "--json", deck=deck)
    assert plan.returncode == 0, plan.stdout + plan.stderr  # code and cloud agree
    engine.start_worker(name)


def test_a_bake_runs_on_a_worker_of_the_build_account(engine: Engine) -> None:
    result = opsdeck("bake", "--service", "worker", "--json", deck=engine.deck, env=engine.env(), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    [image] = json.loads(result.stdout)
    assert image["service"] == "worker" and image["worker"].split("@")[0] in ("w1", "w2")
    assert image["git_sha"] == _git(engine.deck, "rev-parse", "HEAD").strip()[: len(image["git_sha"])]
    images = json.loads(opsdeck("images", "--json", deck=engine.deck, check=True).stdout)
    assert any(i["id"] == image["id"] and i["version"] == image["version"] for i in images)


async def test_the_decks_nuke_key_runs_on_a_worker_and_asks_here_first(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """n on the sandbox: a worker of its account takes inventory and sends its plan back; the deck asks
    for the typed confirmation, the worker destroys and rebuilds, and the summary names the worker."""
    from opsdeck.core.estate.deck import Deck
    from opsdeck.tui.app import OpsDeckApp
    from opsdeck.tui.screens import ConfirmScreen

    monkeypatch.setenv("OPSDECK_BROKER", engine.url)
    app = OpsDeckApp(Deck.open(engine.deck), theme="opsdeck-dark", live=False)
    async with app.run_test(size=(160, 40)) as pilot:
        table, ops = app.deck_screen.table, app.deck_screen.operations
        names = [e.name for e in table.visible_rows()]
        table.move_cursor(row=names.index("sandbox"))
        await pilot.pause()
        await pilot.press("n")
        for _ in range(1200):
            if isinstance(app.screen, ConfirmScreen):
                break
            await pilot.pause(0.1)
        screen = app.screen
        assert isinstance(screen, ConfirmScreen) and screen.typed == "sandbox"
        await pilot.pause(7.0)  # a person reads the plan: longer than a redis read waits by default (5 s)
        await pilot.press(*"sandbox", "enter")
        for _ in range(3000):
            if ops.last is not None and not ops.running:
                break
            await pilot.pause(0.1)
        assert ops.last is not None and ops.last.ok, ops.last
        summary = ops.last.summary
        assert summary.startswith("nuked and rebuilt sandbox") and " on w" in summary, summary
    counts = _status(engine.deck)["sandbox"]["instances"]
    assert counts["running"] == counts["desired"] == counts["on_pinned_image"] > 0
    asked = [r for r in _audit(engine.deck) if r.get("action") == "nuke-rebuild" and r.get("engine")]
    assert asked and asked[-1]["result"] == "ok" and asked[-1]["engine"]["worker"].split("@")[0] in ("w1", "w2")


def test_a_job_for_an_account_no_worker_serves_waits_then_gives_up(engine: Engine) -> None:
    engine.start_worker("w3", "--queue", "opsdeck.111111111111", db=1)
    status = engine.status(db=1)
    assert [w["queues"] for w in status["workers"]] == [["opsdeck.111111111111"]]
    assert status["unserved"] == ["222222222222", "333333333333"]
    started = time.monotonic()
    result = opsdeck(
        "refresh", "staging", "--fresh", "--no-drift", "--json", deck=engine.deck,
        env=engine.env(1, OPSDECK_ENGINE_WAIT="3"), timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert "waiting for a worker for account 222222222222 (queue opsdeck.222222222222)" in lines[0]
    assert lines[-1] == (
        "opsdeck: no worker serves account 222222222222 (queue opsdeck.222222222222) after 3s: plan of staging "
        "was not run; start one with `opsdeck worker --queue opsdeck.222222222222`"
    )
    assert 3 <= time.monotonic() - started < 60 and "Traceback" not in result.stderr
    served = opsdeck("refresh", "sandbox", "--fresh", "--no-drift", "--json", deck=engine.deck, env=engine.env(1))
    assert served.returncode == 0, served.stderr[-2000:]
    assert json.loads(served.stdout)["workers"]["sandbox"].startswith("w3@")
    _stop(engine.workers.pop("w3"))


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["worker", "--queue", "bogus"], {}, "--queue 'bogus': queues are named opsdeck.<account>"),
        (["worker", "--concurrency", "0"], {}, "--concurrency 0: at least 1"),
        (["worker", "--name", "a@b"], {}, "--name 'a@b': letters, digits, - and _ only"),
        (["refresh", "--no-drift"], {"OPSDECK_BROKER": "amqp://127.0.0.1:5672"}, "is not a Redis URL"),
        (["refresh", "--no-drift"], {"OPSDECK_ENGINE_WAIT": "soon"}, "OPSDECK_ENGINE_WAIT='soon' is not a number"),
        (["worker"], {"OPSDECK_BROKER": "redis://127.0.0.1:1/0"}, "the job broker at 127.0.0.1:1 does not answer"),
        (["engine", "status"], {"OPSDECK_BROKER": "redis://127.0.0.1:1/0"}, "engine: broker 127.0.0.1:1 does not"),
    ],
)
def test_bad_engine_input_is_one_line(engine: Engine, args: list[str], env: dict[str, str], message: str) -> None:
    result = opsdeck(*args, deck=engine.deck, env=engine.env(**env), timeout=60)
    assert result.returncode == 1
    text = (result.stderr or result.stdout).strip()
    assert len(text.splitlines()) == 1 and message in text and "Traceback" not in text, text


def test_without_a_broker_refresh_runs_here_as_before(engine: Engine) -> None:
    plain = {k: v for k, v in os.environ.items() if k != "OPSDECK_BROKER"}
    result = opsdeck("refresh", "sandbox", "--no-drift", "--json", deck=engine.deck, env=plain)
    assert result.returncode == 0 and "workers" not in json.loads(result.stdout)
    assert json.loads(opsdeck("engine", "status", "--json", deck=engine.deck, env=plain).stdout)["mode"] == "in-process"


def test_cancelling_a_refresh_here_cancels_its_jobs_on_the_workers(engine: Engine) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "opsdeck", "--deck", str(engine.deck), "refresh", "--fresh", "--no-drift", "-v"],
        cwd=ROOT, env=engine.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    seen: list[str] = []
    for line in proc.stderr:
        seen.append(line)
        if ": plan (" not in line and " on w" in line:  # a plan has started on a worker
            break
    else:
        raise AssertionError("no plan started on a worker:\n" + "".join(seen)[-3000:])
    assert proc.poll() is None, "".join(seen)[-3000:]
    proc.send_signal(signal.SIGINT)
    _out, err = finish(proc, timeout=60)
    everything = "".join(seen) + err
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "opsdeck: interrupted", everything[-4000:]

    def idle() -> bool:
        status = engine.status()
        return all(w["jobs"] == [] for w in status["workers"]) and all(q["waiting"] == 0 for q in status["queues"])

    _wait_for(idle, timeout=30, what="the workers to drop the cancelled jobs")
    for env in ("sandbox", "dev", "staging", "prod"):  # nothing left running or locked
        assert _status(engine.deck)[env]["lock"] is None


def test_the_broker_going_away_during_a_refresh_is_one_line_and_the_deck_keeps_its_state(engine: Engine) -> None:
    deck = engine.deck
    snapshot = deck / ".opsdeck" / "snapshot.json"
    kept = snapshot.read_bytes()
    proc = subprocess.Popen(
        [sys.executable, "-m", "opsdeck", "--deck", str(deck), "refresh", "--fresh", "--json", "-v"],
        cwd=ROOT, env=engine.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if " on w" in line:  # a worker's event arrived: jobs are running
            break
    assert engine.redis is not None
    engine.redis.kill()
    engine.redis.wait()
    out, err = finish(proc, timeout=120)
    assert proc.returncode == 1, out + err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"opsdeck: the job broker at 127.0.0.1:{engine.port} went away during "), err[-2000:]
    assert "Traceback" not in err and out == ""
    assert snapshot.read_bytes() == kept  # the deck keeps its last state
    status = opsdeck("status", "--json", deck=deck, env=engine.env())
    assert status.returncode == 0 and len(json.loads(status.stdout)["environments"]) == 4
    down = opsdeck("engine", "status", "--json", deck=deck, env=engine.env())
    assert down.returncode == 1 and json.loads(down.stdout)["reachable"] is False
