"""Checkov's JSON output read into a verdict, and how a missing Checkov is reported (no Checkov run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opsdeck.adapters import checkov
from opsdeck.errors import ToolError, ToolMissingError


def _run(failed: list[tuple[str, str]], passed: int = 3) -> dict[str, object]:
    return {
        "check_type": "terraform_plan",
        "results": {
            "passed_checks": [{"check_id": f"CKV_AWS_{n}", "resource": "r"} for n in range(passed)],
            "failed_checks": [
                {"check_id": cid, "check_name": f"name of {cid}", "resource": res, "guideline": None}
                for cid, res in failed
            ],
            "skipped_checks": [],
        },
        "summary": {"passed": passed, "failed": len(failed), "checkov_version": "3.3.30"},
    }


def test_one_framework_with_failures_names_check_and_resource() -> None:
    report = checkov.parse(json.dumps(_run([("CKV_AWS_79", "module.web.aws_launch_template.this")])))
    assert not report.ok and report.passed == 3 and report.version == "3.3.30"
    assert report.failed[0].describe() == ("CKV_AWS_79 on module.web.aws_launch_template.this: name of CKV_AWS_79")


def test_several_frameworks_add_up() -> None:
    report = checkov.parse(json.dumps([_run([("A_1", "x")], 2), _run([("B_2", "y")], 1)]))
    assert report.passed == 3 and [f.check_id for f in report.failed] == ["A_1", "B_2"]


def test_nothing_to_check_is_a_pass() -> None:
    summary_only = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0, "resource_count": 0}
    report = checkov.parse(json.dumps(summary_only))
    assert report.ok and report.passed == 0


def test_output_that_is_not_json_is_a_tool_error() -> None:
    with pytest.raises(ToolError, match="its output is not JSON"):
        checkov.parse("Traceback (most recent call last):")


def test_a_named_checkov_that_is_not_there_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPSDECK_CHECKOV", str(tmp_path / "nowhere" / "checkov"))
    with pytest.raises(ToolMissingError, match=r"not installed at .*nowhere/checkov \(OPSDECK_CHECKOV\); run "):
        checkov.find_binary(None)


def test_no_checkov_anywhere_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("OPSDECK_CHECKOV", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissingError, match=r"^Checkov is not installed: run scripts/bootstrap\.sh"):
        checkov.find_binary(None)
