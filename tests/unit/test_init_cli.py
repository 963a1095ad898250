"""`opsdeck init` on the real command line: what it writes, its one-line errors and its exit codes."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from tests.helpers import opsdeck
from tests.unit.terraform_repos import ASG_MODULE, community, red_black, write


def test_an_existing_opsdeck_toml_is_refused_and_left_alone(tmp_path: Path) -> None:
    repo = red_black(tmp_path / "billing")
    (repo / "opsdeck.toml").write_text("# ours\n")
    result = opsdeck("init", str(repo))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "opsdeck.toml already exists" in result.stderr
    assert (repo / "opsdeck.toml").read_text() == "# ours\n"
    elsewhere = opsdeck("init", str(repo), "--output", str(repo / "opsdeck.toml"))
    assert elsewhere.returncode == 1 and (repo / "opsdeck.toml").read_text() == "# ours\n"


def test_a_repository_without_a_backend_is_one_line(tmp_path: Path) -> None:
    write(tmp_path / "mods", {"modules/asg/main.tf": ASG_MODULE})
    result = opsdeck("init", str(tmp_path / "mods"))
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("opsdeck: no Terraform root module under")
    assert not (tmp_path / "mods" / "opsdeck.toml").exists()
    missing = opsdeck("init", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and missing.stderr == f"opsdeck: {tmp_path / 'nowhere'} is not a directory\n"


def test_a_draft_with_todos_exits_2_and_says_each_on_stderr(tmp_path: Path) -> None:
    repo = community(tmp_path / "estate")
    result = opsdeck("init", cwd=repo)
    assert result.returncode == 2, result.stderr
    draft = tomllib.loads((repo / "opsdeck.toml").read_text())
    assert list(draft["services"]) == ["web", "batch"]
    todos = [line for line in result.stderr.splitlines() if line.startswith("TODO: ")]
    assert todos == [
        "TODO: services.web: no Packer template for web found: write one, or point at yours",
        "TODO: services.batch: no Packer template for batch found: write one, or point at yours",
    ]
    assert result.stderr.splitlines()[-1].startswith("wrote opsdeck.toml: 2 environments, 2 services; 2 TODOs")
    assert (repo / "opsdeck.toml").read_text().count("# TODO: ") == 2


def test_a_complete_draft_exits_0_and_can_be_printed_or_told_as_json(tmp_path: Path) -> None:
    repo = red_black(tmp_path / "billing")
    printed = opsdeck("init", str(repo), "--print")
    assert printed.returncode == 0 and printed.stderr == ""
    assert not (repo / "opsdeck.toml").exists()
    assert tomllib.loads(printed.stdout)["services"] == {"billing": {"recipe": "images/billing.json"}}
    told = opsdeck("init", str(repo), "--json", "--print")
    assert told.returncode == 0
    found = json.loads(told.stdout)
    assert found["draft"] == printed.stdout and found["written"] is None and found["unresolved"] == []
    assert [e["name"] for e in found["environments"]] == ["dev", "prod"]
    prod = found["environments"][1]
    assert (prod["region"], prod["account"], prod["rollout"]) == ("us-west-2", "333333333333", "replace")
    billing = found["services"][0]["environments"]["prod"]
    assert (billing["variable"], billing["file"], billing["rollout"]) == (
        "ami_id",
        "release.auto.tfvars.json",
        "replace",
    )
    written = opsdeck("init", str(repo), "--output", str(tmp_path / "draft.toml"))
    assert written.returncode == 0 and (tmp_path / "draft.toml").read_text() == printed.stdout
