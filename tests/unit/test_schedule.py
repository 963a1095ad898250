"""`opsdeck schedule drift`: each schedule runs a command line opsdeck accepts, and installs as is."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from opsdeck.cli import build_parser
from tests.helpers import opsdeck

HOOK = "https://hooks.example.com/services/T1/B2/se%20cret"
TOPIC = "arn:aws:sns:us-west-2:333333333333:drift-alarms"


def _schedule(deck: Path, *kinds: str) -> str:
    only = [a for k in kinds for a in ("--only", k)]
    args = ("schedule", "drift", "--at", "4:05", "--notify", HOOK, "--notify", TOPIC, *only)
    result = opsdeck(*args, deck=deck)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _accepted(argv: list[str]) -> None:
    """opsdeck's own parser takes the scheduled command line (every flag exists), and the webhook is a
    reference to the variable it is kept in, never its URL."""
    argv = argv[argv.index("--deck") :]  # after the executable (a script, or python -m opsdeck)
    parsed = build_parser().parse_args(argv)
    assert parsed.command == "drift" and parsed.notify == ["env:OPSDECK_NOTIFY_1", TOPIC]


def test_the_crontab_line_runs_the_drift_check_at_the_time_asked(sample_copy: Path) -> None:
    line = _schedule(sample_copy, "cron").strip().splitlines()[-1]
    minute, hour, dom, month, dow, command = line.split(" ", 5)
    assert (minute, hour, dom, month, dow) == ("5", "4", "*", "*", "*")
    run = command.split(" && set +a && ", 1)[1].rsplit(" >>", 1)[0]
    assert ". $HOME/.config/opsdeck/drift.env" in command  # the webhook comes from a file only you read
    argv = shlex.split(run.replace("\\%", "%"))
    assert Path(argv[0]).is_absolute()
    assert argv[argv.index("--deck") : argv.index("--deck") + 3] == ["--deck", str(sample_copy.resolve()), "drift"]
    _accepted(argv)


def test_no_schedule_holds_the_webhook_itself(sample_copy: Path) -> None:
    text = _schedule(sample_copy)
    assert "se%20cret" not in text and "services/T1" not in text  # its path is its key
    assert "OPSDECK_NOTIFY_1='https://hooks.example.com/…'" in text  # where to put it, named


def test_an_env_target_stays_a_reference(sample_copy: Path) -> None:
    result = opsdeck("schedule", "drift", "--notify", "env:MY_HOOK", "--only", "cron", deck=sample_copy)
    assert result.returncode == 0, result.stderr
    assert "--notify env:MY_HOOK" in result.stdout and "drift.env" not in result.stdout


def test_the_systemd_units_verify(sample_copy: Path, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    text = _schedule(sample_copy, "systemd")
    service, timer = text.split("# ~/.config/systemd/user/opsdeck-drift.timer\n")
    (tmp_path / "opsdeck-drift.service").write_text(service)
    (tmp_path / "opsdeck-drift.timer").write_text(timer)
    checked = subprocess.run(
        [analyze, "verify", str(tmp_path / "opsdeck-drift.service"), str(tmp_path / "opsdeck-drift.timer")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0 and checked.stderr == "", checked.stderr
    assert "OnCalendar=*-*-* 04:05:00" in timer and "SuccessExitStatus=2" in service
    exec_start = next(line for line in service.splitlines() if line.startswith("ExecStart="))
    assert "--notify env:OPSDECK_NOTIFY_1" in exec_start and "EnvironmentFile=%h/.config/opsdeck/drift.env" in service


def test_the_ci_job_keeps_the_webhook_in_a_secret(sample_copy: Path) -> None:
    text = _schedule(sample_copy, "github")
    assert "se%20cret" not in text  # the webhook's path is its key: never in a committed workflow
    workflow = yaml.safe_load(text)
    on = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert on["schedule"] == [{"cron": "5 4 * * *"}]
    step = workflow["jobs"]["drift"]["steps"][-1]
    assert step["env"] == {"OPSDECK_NOTIFY_1": "${{ secrets.OPSDECK_NOTIFY_1 }}"}
    argv = shlex.split(step["run"])
    assert argv[:4] == ["opsdeck", "--deck", ".", "drift"]
    _accepted(argv)
