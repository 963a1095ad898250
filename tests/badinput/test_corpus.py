"""The bad-input corpus: every broken input gets one line naming the problem, exit 1, no traceback,
and changes nothing (files, git, the cloud's images and instances are compared before and after).

Decks are built from sample_envs (no cloud needed) or copied from the applied demo deck (its
commands fail before they could change anything; the cloud fingerprint checks that they did).
Broken input files live in tests/badinput/corpus/.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, opsdeck

CORPUS = Path(__file__).resolve().parent / "corpus"
LONG = "x" * 5000


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    expect: str  # regex the single stderr line must match (after "opsdeck: ")
    base: str = "sample"  # sample | demo | none
    files: dict[str, str] = field(default_factory=dict)  # deck path -> corpus file
    remove: tuple[str, ...] = ()
    git: str = "commit"  # commit | none | empty | detach
    env: dict[str, str] = field(default_factory=dict)
    setup: Callable[[Path], None] | None = None
    args_for: Callable[[Path], tuple[str, ...]] | None = None  # arguments that depend on the deck


PIN = "envs/dev/images.auto.tfvars.json"


def _dirty_pin(deck: Path) -> None:
    pin = deck / PIN
    pin.write_text(pin.read_text() + "\n")


def _edit(rel: str, old: str, new: str) -> Callable[[Path], None]:
    """A setup that edits one file of the deck (committed, so the deck is broken rather than dirty)."""

    def edit(deck: Path) -> None:
        path = deck / rel
        text = path.read_text()
        assert old in text, (rel, old)
        path.write_text(text.replace(old, new))
        _git(deck, "commit", "-q", "-am", f"edit {rel}")

    return edit


def _web_image_as_api(deck: Path) -> tuple[str, ...]:
    web = json.loads((deck / PIN).read_text())["images"]["web"]
    if isinstance(web, dict):  # dev is blue/green: its live color's image
        web = web[web["live"]]
    return ("promote", web, "dev", "--service", "api", "--yes")


def _user_config(deck: Path) -> None:
    home = Path(os.environ["BADINPUT_HOME"])
    (home / "config").mkdir(parents=True, exist_ok=True)
    shutil.copy(CORPUS / "user-config.toml", home / "config" / "config.toml")


def _damaged_audit(deck: Path) -> None:
    (deck / ".opsdeck").mkdir(exist_ok=True)
    (deck / ".opsdeck" / "audit.jsonl").write_text('{"seq": 1}\nnot a record\n')


CASES = [
    # -- decks ------------------------------------------------------------------------------------
    Case(
        "missing opsdeck.toml",
        ("status",),
        r"no opsdeck\.toml in .* \(pass --deck DIR or set OPSDECK_DECK\)",
        remove=("opsdeck.toml",),
    ),
    Case(
        "empty opsdeck.toml",
        ("status",),
        r"opsdeck\.toml: environments: expected at least one",
        files={"opsdeck.toml": "empty.toml"},
    ),
    Case(
        "binary opsdeck.toml",
        ("status",),
        r"opsdeck\.toml: cannot read: .*codec",
        files={"opsdeck.toml": "binary.toml"},
    ),
    Case("toml syntax", ("status",), r"opsdeck\.toml: invalid TOML: .*line 2", files={"opsdeck.toml": "syntax.toml"}),
    Case(
        "environments not a table",
        ("status",),
        r"opsdeck\.toml: environments: expected at least one",
        files={"opsdeck.toml": "environments-not-table.toml"},
    ),
    Case(
        "environment is a string",
        ("status",),
        r"opsdeck\.toml: environments\.dev: expected a table, got 'the dev one'",
        files={"opsdeck.toml": "env-is-string.toml"},
    ),
    Case(
        "accounts not a list",
        ("status",),
        r"aws\.protected_accounts: expected a list of strings, got '210987654321'",
        files={"opsdeck.toml": "accounts-not-list.toml"},
    ),
    Case(
        "negative break-glass minutes",
        ("status",),
        r"safety\.break_glass_minutes: expected a positive number",
        files={"opsdeck.toml": "negative-break-glass.toml"},
    ),
    Case(
        "unknown environment in chain",
        ("status",),
        r"environments\.prod\.promote_from: expected the name of another environment \(dev\), got 'staging'",
        files={"opsdeck.toml": "unknown-env-in-chain.toml"},
    ),
    Case(
        "promote cycle",
        ("status",),
        r"promote chain has a cycle: dev -> prod -> staging -> dev",
        files={"opsdeck.toml": "cycle.toml"},
    ),
    Case(
        "missing env directory",
        ("status",),
        r"environments\.staging\.path: expected a directory with the root module, envs/staging does not exist",
        remove=("envs/staging",),
    ),
    Case(
        "a service recipe that does not exist",
        ("status",),
        r"services\.api\.recipe: expected a Packer template, packer/api\.json does not exist",
        remove=("packer/api.json",),
    ),
    Case(
        "two environments sharing one state key",
        ("status",),
        r"environments dev and staging share one Terraform state \(s3://opsdeck-demo-tfstate-\d+/shop/dev/",
        setup=_edit(
            "envs/staging/main.tf",
            'bucket       = "opsdeck-demo-tfstate-222222222222"\n    key          = "shop/staging/',
            'bucket       = "opsdeck-demo-tfstate-111111111111"\n    key          = "shop/dev/',
        ),
    ),
    Case(
        "a role in another account than its environment",
        ("status",),
        r"environments\.staging\.role: the role is in account 333333333333, but the account is 222222222222",
        setup=_edit("opsdeck.toml", "iam::222222222222:role/opsdeck-deploy", "iam::333333333333:role/opsdeck-deploy"),
    ),
    Case(
        "an account id that is not one",
        ("status",),
        r"environments\.prod\.account: expected a 12-digit account id, got '33333'",
        setup=_edit("opsdeck.toml", 'account = "333333333333"', 'account = "33333"'),
    ),
    Case(
        "a policy checks folder that is not there",
        ("status",),
        r"policy\.checks: expected a folder of Checkov checks, rules does not exist",
        setup=_edit("opsdeck.toml", 'checks = "policy"', 'checks = "rules"'),
    ),
    Case(
        "a skipped policy check that is no check id",
        ("status",),
        r"policy\.skip: expected Checkov check ids such as CKV_AWS_79, got 'flow logs'",
        setup=_edit("opsdeck.toml", '"CKV2_AWS_11",', '"flow logs",'),
    ),
    Case(
        "a negative soak",
        ("status",),
        r"environments\.prod\.soak_minutes: expected 0 or more minutes, got -5",
        setup=_edit("opsdeck.toml", "soak_minutes = 30", "soak_minutes = -5"),
    ),
    Case(
        "an unknown region",
        ("status",),
        r"environments\.prod\.region: expected an AWS region such as us-west-2, got 'mars-north-1'",
        setup=_edit("opsdeck.toml", 'region = "us-west-2"', 'region = "mars-north-1"'),
    ),
    Case(
        "two services sharing one pin",
        ("status",),
        r"services\.api\.pin_variable: api and web would share the pin images\.web",
        setup=_edit("opsdeck.toml", "[services.api]\n", '[services.api]\npin_variable = "images.web"\n'),
    ),
    Case(
        "unknown service",
        ("promote", "sandbox", "dev", "--service", "db", "--yes"),
        r"unknown service 'db' \(this deck has: web, api, worker\)",
    ),
    Case("broken user config", ("status",), r"config\.toml: invalid TOML", setup=_user_config),
    Case(
        "deck dir missing",
        ("--deck", "/nonexistent/deck", "status"),
        r"deck directory /nonexistent/deck does not exist",
        base="none",
    ),
    Case("deck is a file", ("--deck", "/dev/null", "status"), r"deck directory /dev/null does not exist", base="none"),
    # -- the command line --------------------------------------------------------------------------
    Case("unknown command", ("frobnicate",), r"argument COMMAND: invalid choice: 'frobnicate'", base="none"),
    Case("missing argument", ("plan",), r"the following arguments are required: env", base="none"),
    Case("unknown flag", ("status", "--bogus"), r"unrecognized arguments: --bogus", base="none"),
    Case(
        "unknown environment",
        ("plan", "qa"),
        r"unknown environment 'qa' \(this deck has: sandbox, dev, staging, prod\)",
    ),
    Case("absurdly long environment", ("plan", LONG), r"unknown environment 'x{5000}'"),
    Case("control characters in a name", ("drift", "dev\x1b[31m"), r"unknown environment 'dev\\x1b\[31m'"),
    Case(
        "trail since that is no duration",
        ("trail", "--since", "yesterday"),
        r"trail: --since: expected a duration such as 90m, 24h or 7d, got 'yesterday'",
    ),
    Case(
        "trail setting that is no S3 location",
        ("trail",),
        r"environments\.prod\.trail: expected the trail's log bucket as s3://bucket or s3://bucket/prefix, "
        r"got 'arn:aws:s3:::trail-logs'",
        setup=_edit("opsdeck.toml", "s3://opsdeck-demo-trail-333333333333/cloudtrail", "arn:aws:s3:::trail-logs"),
    ),
    Case(
        "trail of an environment without one",
        ("trail", "prod"),
        r'prod has no trail: set trail = "s3://BUCKET/PREFIX" \(where account 333333333333\'s CloudTrail delivers\)',
        setup=_edit("opsdeck.toml", 'trail = "s3://opsdeck-demo-trail-333333333333/cloudtrail"\n', ""),
    ),
    Case(
        "notify target that is no URL or topic",
        ("drift", "--notify", "slack"),
        r"--notify slack: neither an http\(s\):// webhook URL nor an SNS topic ARN",
    ),
    Case(
        "notify topic ARN of another service",
        ("drift", "--notify", "arn:aws:sqs:us-east-1:111111111111:q"),
        r"--notify arn:aws:sqs:us-east-1:111111111111:q: not an SNS topic ARN \(arn:aws:sns:REGION:ACCOUNT:TOPIC\)",
    ),
    Case(
        "notify topic in an unknown region",
        ("drift", "--notify", "arn:aws:sns:mars-north-1:111111111111:alarms"),
        r"--notify arn:aws:sns:mars-north-1:111111111111:alarms: unknown region mars-north-1",
    ),
    Case(
        "schedule at an impossible time",
        ("schedule", "drift", "--at", "25:00"),
        r"--at 25:00: expected a time of day as HH:MM \(24-hour\), e\.g\. 03:17",
    ),
    Case(
        "schedule with a bad notify target",
        ("schedule", "drift", "--notify", "mailto:oncall@example.com"),
        r"--notify mailto:oncall@example.com: neither an http\(s\):// webhook URL nor an SNS topic ARN",
    ),
    Case(
        "notify timeout not a number",
        ("drift", "--notify", "http://127.0.0.1:9/hook", "--notify-timeout", "nan"),
        r"--notify-timeout nan: must be more than 0 seconds",
    ),
    Case(
        "notify target in a variable that is not set",
        ("drift", "--notify", "env:OPSDECK_TEST_UNSET_HOOK"),
        r"--notify env:OPSDECK_TEST_UNSET_HOOK: environment variable OPSDECK_TEST_UNSET_HOOK is not set",
    ),
    Case(
        "notify webhook port not a number",
        ("drift", "--notify", "http://127.0.0.1:abc/hook"),
        r"--notify http://127\.0\.0\.1:abc/…: the port is not a number from 0 to 65535",
    ),
    Case(
        "notify timeout of zero",
        ("drift", "--notify", "http://127.0.0.1:9/hook", "--notify-timeout", "0"),
        r"--notify-timeout 0: must be more than 0 seconds",
    ),
    Case(
        "port out of range",
        ("cloud", "start", "--port", "99999999"),
        r"--port: expected a port between 1024 and 65535",
        base="none",
    ),
    Case(
        "port not a number",
        ("cloud", "start", "--port", "lots"),
        r"argument --port: invalid int value: 'lots'",
        base="none",
    ),
    Case("negative --last", ("audit", "--last", "-5"), r"--last: expected a positive number, got -5"),
    Case("revoke without reason", ("revoke", "1.0.0"), r"the following arguments are required: --reason", base="none"),
    Case(
        "empty setting", ("config", "set", "theme", " "), r"theme: expected a value, got an empty string", base="none"
    ),
    Case("unknown setting", ("config", "set", "colour", "red"), r"argument key: invalid choice: 'colour'", base="none"),
    Case("secrets for an unprotected env", ("secrets", "set", "dev"), r"dev is not protected; break-glass credentials"),
    Case("credentials that are not JSON", ("secrets", "set", "prod"), r"stdin: expected JSON \{\"access_key_id\""),
    Case("damaged audit log", ("audit",), r"audit\.jsonl: line 2 is not a JSON record", setup=_damaged_audit),
    Case(
        "freeze until a word",
        ("freeze", "dev", "--until", "tomorrow", "--reason", "sale"),
        r"--until tomorrow: expected a duration \(90m, 2h, 3d\) or an ISO 8601 time",
    ),
    Case(
        "freeze until a time that has passed",
        ("freeze", "dev", "--until", "2001-01-01T00:00Z", "--reason", "sale"),
        r"--until 2001-01-01T00:00Z: that time has passed",
    ),
    Case("freeze nothing", ("freeze", "--until", "2h", "--reason", "sale"), r"freeze: name an environment, or --all"),
    Case(
        "freeze an unknown environment",
        ("freeze", "qa", "--until", "2h", "--reason", "sale"),
        r"unknown environment 'qa' \(this deck has: sandbox, dev, staging, prod\)",
    ),
    Case(
        "freeze without a signing key",
        ("freeze", "dev", "--until", "2h", "--reason", "sale"),
        r"git has no signing key: set user\.signingkey to your SSH key",
    ),
    Case(
        "extend by a word",
        ("sandbox", "extend", "sandbox", "--hours", "lots"),
        r"--hours lots: expected a number of hours above 0",
    ),
    Case(
        "extend a sandbox without a lifetime",
        ("sandbox", "extend", "sandbox", "--hours", "2"),
        r"sandbox has no lifetime",
    ),
    Case(
        "expire every seven minutes",
        ("schedule", "sandbox-expire", "--every", "7m"),
        r"--every 7m: expected minutes dividing an hour \(15m, 30m\) or hours dividing a day",
    ),
    Case(
        "no keyring backend",
        ("secrets", "status"),
        r"no keyring backend is available to hold credentials",
        env={"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"},
    ),
    # -- against the applied demo deck (a copy) ------------------------------------------------------
    Case(
        "bake with a bad version",
        ("bake", "--version", "banana"),
        r"--version: expected MAJOR\.MINOR\.PATCH",
        base="demo",
    ),
    Case(
        "bake an existing version",
        ("bake", "--version", "1.0.0"),
        r"web image version 1\.0\.0 already exists",
        base="demo",
    ),
    Case("bake an unknown service", ("bake", "--service", "db"), r"unknown service 'db'", base="demo"),
    Case(
        "an image of one service promoted as another's",
        (),
        r"ami-\w+ is an image of web, not of api: an image is only ever promoted as its own service's",
        base="demo",
        args_for=_web_image_as_api,
    ),
    Case(
        "a role that cannot be assumed",
        ("apply", "staging", "--yes"),
        r"staging: cannot assume arn:aws:iam::222222222222:role/opsdeck-deploi in account 222222222222: "
        r"AccessDenied: .*not authorized to perform: sts:AssumeRole",
        base="demo",
        setup=_edit("opsdeck.toml", "222222222222:role/opsdeck-deploy", "222222222222:role/opsdeck-deploi"),
    ),
    Case(
        "the caller's real account is not the configured one",
        ("apply", "staging", "--yes"),
        r"staging: staging \(account 222222222222, us-east-1\)'s credentials reach account 123456789012, "
        r"but opsdeck\.toml says staging is in account 222222222222; nothing was changed",
        base="demo",
        setup=_edit("opsdeck.toml", 'role = "arn:aws:iam::222222222222:role/opsdeck-deploy"\n', ""),
    ),
    Case("promote to itself", ("promote", "dev", "dev", "--yes"), r"cannot promote dev to itself", base="demo"),
    Case(
        "promote an AMI that does not exist",
        ("promote", "ami-0123456789abcdef0", "dev", "--yes"),
        r"'ami-0123456789abcdef0' is neither an environment .* nor an image id or version",
        base="demo",
    ),
    Case(
        "rollback to an unknown image",
        ("rollback", "dev", "--to", "ami-0deadbeef0000000", "--yes"),
        r"--to ami-0deadbeef0000000: not an image id or version of web, api, worker",
        base="demo",
    ),
    Case(
        "nuke a protected environment",
        ("nuke-rebuild", "prod", "--yes"),
        r"nuke-and-rebuild is only for sandbox environments; prod is not one",
        base="demo",
    ),
    Case(
        "dirty pin file",
        ("promote", "sandbox", "dev", "--yes"),
        r"envs/dev/images\.auto\.tfvars\.json has uncommitted changes",
        base="demo",
        setup=_dirty_pin,
    ),
    Case(
        "pin file not JSON",
        ("promote", "sandbox", "dev", "--yes"),
        r"envs/dev/images\.auto\.tfvars\.json: invalid JSON",
        base="demo",
        files={PIN: "pin-invalid-json.json"},
    ),
    Case(
        "a service with no pin in an environment",
        ("promote", "sandbox", "dev", "--yes"),
        r"envs/dev/images\.auto\.tfvars\.json: expected images\.web to hold an image id",
        base="demo",
        files={PIN: "pin-wrong-key.json"},
    ),
    Case(
        "detached HEAD",
        ("promote", "sandbox", "dev", "--yes"),
        r"the deck's git HEAD is detached",
        base="demo",
        git="detach",
    ),
    Case(
        "not a git repository",
        ("promote", "sandbox", "dev", "--yes"),
        r"is not a git repository",
        base="demo",
        git="none",
    ),
    Case(
        "git repository without commits",
        ("bake", "--service", "web"),
        r"the git repository has no commit yet",
        base="demo",
        git="empty",
    ),
    Case(
        "recipe that is not JSON",
        ("bake", "--service", "web"),
        r"web\.json: not a readable Packer JSON template",
        base="demo",
        files={"packer/web.json": "recipe-syntax.json"},
    ),
    Case(
        "recipe with an unknown builder",
        ("bake", "--service", "web"),
        r"packer build web\.json: .*amazon-ebss",
        base="demo",
        files={"packer/web.json": "recipe-unknown-builder.json"},
    ),
    Case(
        "recipe from an AMI that does not exist",
        ("bake", "--service", "web"),
        r"packer build web\.json: .*(InvalidAMIID|ami-0badc0ffee0ddf00d)",
        base="demo",
        files={"packer/web.json": "recipe-missing-ami.json"},
    ),
    Case(
        "terraform that does not parse",
        ("plan", "dev"),
        r"terraform (init|plan) in dev: .*",
        base="demo",
        files={"envs/dev/broken.tf": "invalid.tf"},
    ),
    Case(
        "terraform that does not validate",
        ("plan", "dev"),
        r"terraform (init|plan) in dev: .*Invalid default value for variable",
        base="demo",
        files={"envs/dev/types.tf": "type-error.tf"},
    ),
    Case(
        "terraform missing",
        ("plan", "dev"),
        r"terraform is not installed or not on PATH \(looked for '/nonexistent/terraform'\)",
        base="demo",
        env={"OPSDECK_TERRAFORM": "/nonexistent/terraform"},
    ),
    Case(
        "packer missing",
        ("bake", "--service", "web"),
        r"packer is not installed or not on PATH \(looked for '/nonexistent/packer'\)",
        base="demo",
        env={"OPSDECK_PACKER": "/nonexistent/packer"},
    ),
    Case(
        "plugin mirror that is not one",
        ("plan", "dev"),
        r"terraform\.plugin_mirror: /tmp is not a provider mirror",
        base="demo",
        env={"OPSDECK_TF_PLUGIN_MIRROR": "/tmp"},
    ),
    Case(
        "break-glass with no stored credentials",
        ("rollback", "prod", "--yes", "--break-glass", "--reason", "x"),
        r"no break-glass credentials for prod in the keyring; store them with `opsdeck secrets set prod`",
        base="demo",
        env={"XDG_DATA_HOME": "{home}/empty-keyring"},
    ),
    Case(
        "break-glass without a reason",
        ("rollback", "prod", "--yes", "--break-glass"),
        r"break-glass needs a reason \(--reason TEXT\)",
        base="demo",
    ),
    Case(
        "drift ignore file broken",
        ("drift", "dev"),
        r"\.driftignore: line 1: unknown kind 'addr'",
        base="demo",
        setup=lambda deck: (deck / ".driftignore").write_text("addr:module.web\n"),
    ),
    Case(
        "init over an existing opsdeck.toml",
        ("init",),
        r"opsdeck\.toml already exists: opsdeck init never overwrites it",
        args_for=lambda deck: ("init", str(deck)),
    ),
    Case(
        "init where no Terraform has a backend",
        ("init",),
        r"no Terraform root module under .*: no \.tf file has a terraform \{ backend",
        remove=("envs", "opsdeck.toml"),
        args_for=lambda deck: ("init", str(deck)),
    ),
]


def _git(deck: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(deck), *args], capture_output=True, text=True)
    return result.stdout


def _files(deck: Path) -> dict[str, str]:
    out = {}
    for path in sorted(deck.rglob("*")):
        rel = path.relative_to(deck)
        if (
            path.is_file()
            and not path.is_symlink()
            and rel.parts[0] not in (".opsdeck", ".git")
            and ".terraform" not in rel.parts
        ):
            out[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _cloud(demo: Path) -> dict[str, Any]:
    """What the estate holds: the build account's images in every region, each environment's instances
    (in its own account and region) and each account's buckets."""
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.release.fleet import env_groups

    deck = Deck.open(demo)
    return {
        "images": {r: sorted(i.id for i in deck.tools.build(r).images()) for r in deck.config.regions},
        "instances": {
            env: sorted((i.id, i.image_id) for g in env_groups(deck, env) for i in g.instances)
            for env in deck.config.env_names
        },
        "buckets": {
            env: sorted(b["Name"] for b in deck.tools.env(env).cloud.client("s3").list_buckets()["Buckets"])
            for env in deck.config.env_names
        },
    }


def _fingerprint(deck: Path | None, demo: Path | None) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if deck is not None and deck.exists():
        data["files"] = _files(deck)
        data["head"] = _git(deck, "rev-parse", "HEAD")
        data["status"] = _git(deck, "status", "--porcelain")
    if demo is not None:
        data["cloud"] = _cloud(demo)
    return data


def _build(case: Case, tmp_path: Path, demo: Path | None) -> Path | None:
    if case.base == "none":
        return None
    deck = tmp_path / "deck"
    if case.base == "demo":
        assert demo is not None
        shutil.copytree(demo, deck, symlinks=True, ignore=shutil.ignore_patterns(".git", ".opsdeck"))
    else:
        shutil.copytree(ROOT / "sample_envs", deck, ignore=shutil.ignore_patterns(".terraform", ".opsdeck"))
    for rel in case.remove:
        target = deck / rel
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    for rel, name in case.files.items():  # committed with the deck: broken, not merely uncommitted
        (deck / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(CORPUS / name, deck / rel)
    if case.git != "none":
        subprocess.run(["git", "init", "-q", "-b", "main", str(deck)], check=True)
        _git(deck, "config", "user.name", "corpus")
        _git(deck, "config", "user.email", "corpus@localhost")
        if case.git != "empty":
            _git(deck, "add", "-A")
            _git(deck, "commit", "-q", "-m", "deck")
        if case.git == "detach":
            _git(deck, "checkout", "-q", "--detach")
    if case.setup is not None:
        case.setup(deck)
    return deck


@pytest.fixture(scope="module")
def demo_if_needed(request: pytest.FixtureRequest) -> Path | None:
    needs = any(c.base == "demo" for c in CASES)
    return request.getfixturevalue("demo_deck") if needs else None


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, tmp_path: Path, demo_if_needed: Path | None, monkeypatch: pytest.MonkeyPatch) -> None:
    demo = demo_if_needed if case.base == "demo" else None
    home = tmp_path / "home"
    monkeypatch.setenv("BADINPUT_HOME", str(home))
    deck = _build(case, tmp_path, demo)
    env = dict(os.environ)
    if case.setup is _user_config:
        env["OPSDECK_HOME"] = str(home)
    env.update({k: v.format(home=home) for k, v in case.env.items()})
    args = list(case.args_for(deck) if case.args_for is not None and deck is not None else case.args)
    if deck is not None and "--deck" not in args:
        args = ["--deck", str(deck), *args]
    before = _fingerprint(deck, demo)
    result = opsdeck(*args, env=env, timeout=300, input="")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("opsdeck: "), lines[0]
    assert re.search(case.expect, lines[0]), lines[0]
    assert _fingerprint(deck, demo) == before


def test_corpus_size() -> None:
    """RELIABILITY.md quotes this count."""
    assert len(CASES) >= 50
    assert len({c.name for c in CASES}) == len(CASES)
    used = {name for c in CASES for name in c.files.values()} | {"user-config.toml"}
    assert used == {p.name for p in CORPUS.iterdir()}  # every corpus file is exercised
