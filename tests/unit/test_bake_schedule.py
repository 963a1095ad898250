"""`opsdeck schedule bake`: the nightly base bake and the CI jobs run command lines opsdeck accepts,
bake only what changed, take AWS credentials from the CI's identity, and install as they are."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from opsdeck.cli import build_parser
from tests.helpers import opsdeck


def _schedule(deck: Path, *args: str) -> str:
    result = opsdeck("schedule", "bake", "--at", "1:07", *args, deck=deck)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _accepted(argv: list[str], *expected: str) -> Any:
    """opsdeck's own parser takes the scheduled command line (after the executable)."""
    argv = argv[argv.index("--deck") :]
    parsed = build_parser().parse_args(argv)
    assert parsed.command == "bake", argv
    assert argv[1:] == list(expected), argv
    return parsed


def _workflows(text: str) -> dict[str, dict[Any, Any]]:
    """Each printed GitHub workflow, parsed, by its file name."""
    parts = re.split(r"^# \.github/workflows/(\S+)\n", text, flags=re.M)[1:]
    return {name: yaml.safe_load(body) for name, body in zip(parts[::2], parts[1::2], strict=True)}


def _no_keys(text: str) -> None:
    """No AWS key or secret in a committed pipeline file: the role comes from the CI's OIDC identity."""
    assert not re.search(r"AKIA|aws-access-key-id|aws-secret-access-key|AWS_SECRET_ACCESS_KEY", text), text


def test_the_nightly_base_bake_pulls_the_deck_then_bakes_the_base(sample_copy: Path) -> None:
    line = _schedule(sample_copy, "--only", "cron").strip().splitlines()[-1]
    minute, hour, dom, month, dow, command = line.split(" ", 5)
    assert (minute, hour, dom, month, dow) == ("7", "1", "*", "*", "*")
    steps = command.rsplit(" >>", 1)[0].split(" && ")
    assert steps[0].startswith("mkdir -p ")
    pull, bake = shlex.split(steps[1]), shlex.split(steps[2])
    assert Path(pull[0]).name == "git" and pull[1:] == [
        "-C",
        str(sample_copy.resolve()),
        "pull",
        "--ff-only",
        "--quiet",
    ]
    assert Path(bake[0]).is_absolute()
    _accepted(bake, str(sample_copy.resolve()), "bake", "--base")


def test_the_nightly_systemd_units_verify(sample_copy: Path, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    text = _schedule(sample_copy, "--only", "systemd")
    service, timer = text.split("# ~/.config/systemd/user/opsdeck-bake-base.timer\n")
    (tmp_path / "opsdeck-bake-base.service").write_text(service)
    (tmp_path / "opsdeck-bake-base.timer").write_text(timer)
    checked = subprocess.run(
        [analyze, "verify", str(tmp_path / "opsdeck-bake-base.service"), str(tmp_path / "opsdeck-bake-base.timer")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0 and checked.stderr == "", checked.stderr
    assert "OnCalendar=*-*-* 01:07:00" in timer
    exec_start = next(line for line in service.splitlines() if line.startswith("ExecStart="))
    _accepted(shlex.split(exec_start.removeprefix("ExecStart=")), str(sample_copy.resolve()), "bake", "--base")
    assert "ExecStartPre=" in service and "pull --ff-only" in service


def test_github_bakes_each_service_on_a_merge_that_touches_its_recipe(sample_copy: Path) -> None:
    text = _schedule(sample_copy, "--only", "github")
    _no_keys(text)
    workflows = _workflows(text)
    assert list(workflows) == [f"opsdeck-bake-{s}.yml" for s in ("web", "api", "worker")]
    for service, workflow in zip(("web", "api", "worker"), workflows.values(), strict=True):
        on = workflow[True]  # YAML 1.1 reads the key `on` as true
        assert on["push"] == {"branches": ["main"], "paths": [f"packer/{service}.json"]}, on
        assert "workflow_dispatch" in on
        assert workflow["permissions"] == {"contents": "read", "id-token": "write"}
        assert workflow["concurrency"] == {"group": f"opsdeck-bake-{service}", "cancel-in-progress": False}
        job = workflow["jobs"]["bake"]
        assert job["runs-on"] == "ubuntu-latest"
        steps = {s.get("uses", s.get("name", s.get("run"))).split("@")[0]: s for s in job["steps"]}
        creds = steps["aws-actions/configure-aws-credentials"]["with"]
        assert creds == {"role-to-assume": "${{ vars.OPSDECK_BAKE_ROLE }}", "aws-region": "us-east-1"}
        assert re.fullmatch(r"\d+\.\d+\.\d+", steps["hashicorp/setup-packer"]["with"]["version"])
        _accepted(shlex.split(steps[f"bake {service}"]["run"]), ".", "bake", "--service", service)
        kept = steps["actions/upload-artifact"]
        assert kept["if"] == "always()" and kept["with"]["path"] == ".opsdeck/audit.jsonl"
        assert kept["with"]["include-hidden-files"] is True  # .opsdeck is hidden: upload-artifact skips it otherwise
        order = [s.get("uses", "").split("@")[0] or s.get("name", "") for s in job["steps"]]
        assert order.index("aws-actions/configure-aws-credentials") < order.index(f"bake {service}")


def test_gitlab_bakes_each_service_on_a_merge_that_touches_its_recipe(sample_copy: Path) -> None:
    text = _schedule(sample_copy, "--only", "gitlab", "--service", "api")
    _no_keys(text)
    pipeline = yaml.safe_load(text)
    assert set(pipeline) == {".opsdeck-bake", "opsdeck-bake-api"}
    template, job = pipeline[".opsdeck-bake"], pipeline["opsdeck-bake-api"]
    assert template["id_tokens"] == {"OPSDECK_AWS_TOKEN": {"aud": "sts.amazonaws.com"}}
    variables = template["variables"]
    assert variables["AWS_ROLE_ARN"] == "$OPSDECK_BAKE_ROLE" and variables["AWS_REGION"] == "us-east-1"
    assert variables["AWS_WEB_IDENTITY_TOKEN_FILE"].startswith("/")  # boto3 and Packer read the token there
    first = template["before_script"][0]
    assert "$OPSDECK_AWS_TOKEN" in first and '> "$AWS_WEB_IDENTITY_TOKEN_FILE"' in first, first
    assert any("packer" in line for line in template["before_script"])
    assert template["artifacts"] == {"when": "always", "paths": [".opsdeck/audit.jsonl"]}
    assert job["extends"] == ".opsdeck-bake" and job["resource_group"] == "opsdeck-bake-api"
    (rule,) = job["rules"]
    assert rule["if"] == '$CI_PIPELINE_SOURCE == "push" && $CI_COMMIT_BRANCH == "main"'
    assert rule["changes"] == ["packer/api.json"]
    (script,) = job["script"]
    _accepted(shlex.split(script), ".", "bake", "--service", "api")


def test_a_recipe_in_its_own_folder_is_watched_whole_a_shared_one_with_its_files(sample_copy: Path) -> None:
    """web's recipe gets a folder of its own (anything in it rebakes web); api's stays beside the
    others, so api rebakes when its recipe or a script it provisions with changes, nothing else."""
    (sample_copy / "services" / "web").mkdir(parents=True)
    shutil.move(sample_copy / "packer" / "web.json", sample_copy / "services" / "web" / "web.json")
    toml = sample_copy / "opsdeck.toml"
    toml.write_text(toml.read_text().replace('recipe = "packer/web.json"', 'recipe = "services/web/web.json"'))
    (sample_copy / "packer" / "scripts").mkdir()
    (sample_copy / "packer" / "scripts" / "api.sh").write_text("#!/bin/sh\n")
    recipe = json.loads((sample_copy / "packer" / "api.json").read_text())
    recipe["provisioners"] = [
        *recipe.get("provisioners", []),
        {"type": "shell-local", "script": "scripts/api.sh"},
        {"type": "shell-local", "script": "{{user `app`}}.sh"},  # templated: not a path it can know
    ]
    (sample_copy / "packer" / "api.json").write_text(json.dumps(recipe, indent=2))

    workflows = _workflows(_schedule(sample_copy, "--only", "github"))
    paths = {name: wf[True]["push"]["paths"] for name, wf in workflows.items()}
    assert paths["opsdeck-bake-web.yml"] == ["services/web/**"]
    assert paths["opsdeck-bake-api.yml"] == ["packer/api.json", "packer/scripts/api.sh"]
    gitlab = yaml.safe_load(_schedule(sample_copy, "--only", "gitlab", "--service", "web"))
    assert gitlab["opsdeck-bake-web"]["rules"][0]["changes"] == ["services/web/**/*"]


def test_a_deck_inside_a_repository_runs_from_its_folder(sample_copy: Path) -> None:
    repo = sample_copy.parent
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    text = _schedule(sample_copy, "--only", "github", "--service", "worker")
    (workflow,) = _workflows(text).values()
    assert workflow[True]["push"]["paths"] == ["deck/packer/worker.json"]
    steps = workflow["jobs"]["bake"]["steps"]
    bake = next(s for s in steps if s.get("name") == "bake worker")
    _accepted(shlex.split(bake["run"]), "deck", "bake", "--service", "worker")
    assert steps[-1]["with"]["path"] == "deck/.opsdeck/audit.jsonl"


def test_bad_requests_are_one_line(sample_copy: Path) -> None:
    unknown = opsdeck("schedule", "bake", "--service", "db", deck=sample_copy)
    assert unknown.returncode == 1 and unknown.stderr.strip().splitlines() == [
        "opsdeck: unknown service 'db' (this deck has: web, api, worker)"
    ], unknown.stderr
    bad_time = opsdeck("schedule", "bake", "--at", "25:00", deck=sample_copy)
    assert bad_time.returncode == 1 and "--at 25:00: expected a time of day" in bad_time.stderr

    toml = sample_copy / "opsdeck.toml"
    toml.write_text(re.sub(r"\[base\]\nrecipe = .*\n", "", toml.read_text()))
    no_base = opsdeck("schedule", "bake", "--only", "cron", deck=sample_copy)
    assert no_base.returncode == 1 and "no base layer to bake nightly" in no_base.stderr, no_base.stderr
    rest = opsdeck("schedule", "bake", deck=sample_copy)
    assert rest.returncode == 0 and "no nightly base bake" in rest.stderr, rest.stderr
    assert "crontab" not in rest.stdout and "opsdeck-bake-base" not in rest.stdout
    assert "# .github/workflows/opsdeck-bake-web.yml" in rest.stdout and ".opsdeck-bake:" in rest.stdout
