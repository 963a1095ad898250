"""opsdeck.toml: the sample parses, and every kind of mistake is one line naming file, key and expectation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from opsdeck.core.estate.config import load_config
from opsdeck.errors import ConfigError
from tests.helpers import ROOT, opsdeck


def test_sample_deck_parses() -> None:
    config = load_config(ROOT / "sample_envs")
    assert config.name == "shop"
    assert config.env_names == ["sandbox", "dev", "staging", "prod"]
    assert config.service_names == ["web", "api", "worker"]
    assert config.env("sandbox").sandbox and not config.env("sandbox").protected
    assert config.env("staging").promote_from == "dev"
    prod = config.env("prod")
    assert prod.promote_from == "staging" and prod.protected and prod.confirmation == "typed"
    assert (prod.account, config.region_of("prod")) == ("333333333333", "us-west-2")
    assert prod.role == "arn:aws:iam::333333333333:role/opsdeck-deploy"
    assert config.aws.local and config.aws.region == "us-east-1"
    assert config.build.account == "111111111111" and config.build_region == "us-east-1"
    assert config.regions == ["us-east-1", "us-west-2"]
    assert config.base_recipe == "packer/base.json"
    assert config.env("dev").path == "envs/dev"
    assert config.next_env("dev") is not None and config.next_env("dev").name == "staging"  # type: ignore[union-attr]
    from opsdeck.core.estate.pins import pin_spec

    assert pin_spec(config, "api").file == "images.auto.tfvars.json"
    assert pin_spec(config, "api").variable == ("images", "api")


def test_a_deck_in_the_single_image_format_reads_as_one_service(tmp_path: Path) -> None:
    """Earlier decks have an [image] table (one application): they keep working, as one service."""
    from opsdeck.core.estate.pins import pin_spec

    deck = tmp_path / "old"
    for env in ("sandbox", "dev", "staging", "prod"):
        (deck / "envs" / env).mkdir(parents=True)
    (deck / "packer").mkdir()
    (deck / "packer" / "web.json").write_text("{}")
    (deck / "packer" / "base.json").write_text("{}")
    (deck / "opsdeck.toml").write_text((ROOT / "tests" / "fixtures" / "single-image-opsdeck.toml").read_text())
    config = load_config(deck)
    assert config.service_names == ["web"] and config.services[0].recipe == "packer/web.json"
    assert config.base_recipe == "packer/base.json"
    assert pin_spec(config, "web").file == "image.auto.tfvars.json" and pin_spec(config, "web").variable == (
        "image_id",
    )
    assert config.conventions.env_tag == "env" and config.conventions.service_tag == "app"
    assert (config.conventions.image_service_tag, config.conventions.image_version_tag) == ("app", "version")
    assert config.env("prod").account is None and config.region_of("prod") == "us-east-1"


def _edit(deck: Path, old: str, new: str) -> None:
    path = deck / "opsdeck.toml"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


CASES = [
    # (what, old text, new text, expected message pattern)
    ("syntax", 'name = "shop"', 'name = "shop', r"opsdeck\.toml: invalid TOML: .*line 9"),
    (
        "unknown key",
        "[environments.dev]\n",
        "[environments.dev]\nprotect = true\n",
        r"opsdeck\.toml: environments\.dev\.protect: unknown key \(expected one of: .*protected",
    ),
    (
        "unknown top-level key",
        "refresh_minutes = 5",
        "refresh_minute = 5",
        r"opsdeck\.toml: refresh_minute: unknown key",
    ),
    (
        "wrong type bool",
        "local = true",
        'local = "yes"',
        r"opsdeck\.toml: aws\.local: expected true or false, got 'yes' \(a string\)",
    ),
    (
        "wrong type str",
        'region = "us-east-1"',
        "region = 1",
        r"opsdeck\.toml: aws\.region: expected a string, got 1 \(an integer\)",
    ),
    (
        "wrong type int-as-bool",
        "break_glass_minutes = 30",
        "break_glass_minutes = true",
        r"opsdeck\.toml: safety\.break_glass_minutes: expected an integer, got True \(a boolean\)",
    ),
    (
        "bad approval",
        'approval = "typed"',
        'approval = "sure"',
        r'opsdeck\.toml: environments\.prod\.approval: expected one of "none", "confirm", "typed", got \'sure\'',
    ),
    (
        "unknown promote_from",
        'promote_from = "dev"',
        'promote_from = "qa"',
        r"opsdeck\.toml: environments\.staging\.promote_from: expected the name of another environment "
        r"\(sandbox, dev, prod\), got 'qa'",
    ),
    (
        "cycle",
        "[environments.dev]\n",
        '[environments.dev]\npromote_from = "prod"\n',
        r"opsdeck\.toml: environments\.\w+\.promote_from: promote chain has a cycle: .*dev.*prod",
    ),
    (
        "self promote",
        "[environments.dev]\n",
        '[environments.dev]\npromote_from = "dev"\n',
        r"environments\.dev\.promote_from: an environment cannot promote from itself",
    ),
    (
        "missing env directory",
        "[environments.prod]",
        "[environments.qa]\n\n[environments.prod]",
        r"opsdeck\.toml: environments\.qa\.path: expected a directory with the root module, envs/qa does not exist",
    ),
    (
        "missing section",
        "[services.web]",
        "[servics.web]",
        r"opsdeck\.toml: servics: unknown key",
    ),
    (
        "missing required key",
        'region = "us-east-1"\n',
        "",
        r"opsdeck\.toml: aws\.region: missing \(expected a string\)",
    ),
    (
        "bad account id",
        'protected_accounts = ["333333333333"]',
        'protected_accounts = ["12"]',
        r"opsdeck\.toml: aws\.protected_accounts: expected 12-digit account ids, got '12'",
    ),
    (
        "missing recipe",
        'recipe = "packer/web.json"',
        'recipe = "packer/nope.json"',
        r"opsdeck\.toml: services\.web\.recipe: expected a Packer template, packer/nope\.json does not exist",
    ),
    (
        "both formats",
        "[services.web]",
        '[image]\napp = "web"\nrecipe = "packer/web.json"\n\n[services.web]',
        r"opsdeck\.toml: image: a deck has either \[image\] \(one service\) or \[services\.<name>\], not both",
    ),
    (
        "no services",
        '[services.web]\nrecipe = "packer/web.json"\n\n[services.api]\nrecipe = "packer/api.json"\n\n'
        '[services.worker]\nrecipe = "packer/worker.json"\n',
        "",
        r"opsdeck\.toml: services: expected at least one \[services\.<name>\] table \(or an \[image\] table\)",
    ),
    (
        "role and profile",
        'role = "arn:aws:iam::222222222222:role/opsdeck-deploy"',
        'role = "arn:aws:iam::222222222222:role/opsdeck-deploy"\nprofile = "staging"',
        r"opsdeck\.toml: environments\.staging: give a role to assume or a profile, not both",
    ),
    (
        "not a role arn",
        'role = "arn:aws:iam::111111111111:role/opsdeck-build"',
        'role = "opsdeck-build"',
        r"opsdeck\.toml: build\.role: expected a role ARN such as arn:aws:iam::123456789012:role/deploy, got",
    ),
    (
        "tag key",
        'env_tag = "env"',
        'env_tag = "aws:env"',
        r"opsdeck\.toml: conventions\.env_tag: expected a tag key, got 'aws:env'",
    ),
    (
        "pin file outside the module",
        'pin_file = "images.auto.tfvars.json"',
        'pin_file = "../shared.auto.tfvars.json"',
        r"services\.web\.pin_file: expected a path inside the environment's root module",
    ),
    (
        "bad env name",
        "[environments.dev]",
        "[environments.Dev]",
        r"environments\.Dev: environment names are lower-case",
    ),
    (
        "sandbox and protected",
        "protected = true",
        "protected = true\nsandbox = true",
        r"environments\.prod: an environment cannot be both sandbox and protected",
    ),
    (
        "negative drift_minutes",
        "drift_minutes = 60",
        "drift_minutes = -1",
        r"opsdeck\.toml: drift_minutes: expected a number of minutes, 0 or more",
    ),
    (
        "image tag key",
        'env_tag = "env"',
        'env_tag = "env"\nimage_version_tag = "Release version!"',
        r"opsdeck\.toml: conventions\.image_version_tag: expected a tag key, got 'Release version!'",
    ),
    (
        "an image tag opsdeck sets itself",
        'env_tag = "env"',
        'env_tag = "env"\nimage_service_tag = "role"',
        r"conventions\.image_service_tag: 'role' is a tag opsdeck sets on images itself: pick another key",
    ),
    (
        "one tag for service and version",
        'env_tag = "env"',
        'env_tag = "env"\nimage_service_tag = "Name"\nimage_version_tag = "Name"',
        r"conventions\.image_version_tag: the service and the version of an image need two tags, both are 'Name'",
    ),
]


@pytest.mark.parametrize(("what", "old", "new", "pattern"), CASES, ids=[c[0] for c in CASES])
def test_config_mistakes(sample_copy: Path, what: str, old: str, new: str, pattern: str) -> None:
    _edit(sample_copy, old, new)
    before = (sample_copy / "opsdeck.toml").read_text()
    with pytest.raises(ConfigError) as err:
        load_config(sample_copy)
    message = str(err.value)
    assert "\n" not in message
    assert re.search(pattern, message), message
    assert (sample_copy / "opsdeck.toml").read_text() == before  # nothing rewritten


@pytest.mark.parametrize("case", [CASES[0], CASES[3], CASES[7], CASES[8], CASES[10]], ids=lambda c: c[0])
def test_config_mistakes_through_the_cli(sample_copy: Path, case: tuple[str, str, str, str]) -> None:
    _, old, new, pattern = case
    _edit(sample_copy, old, new)
    result = opsdeck("status", deck=sample_copy)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("opsdeck: ")
    assert re.search(pattern, lines[0]), lines[0]
    assert result.stdout == ""


def test_no_deck_here(tmp_path: Path) -> None:
    result = opsdeck("status", deck=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == f"opsdeck: no opsdeck.toml in {tmp_path} (pass --deck DIR or set OPSDECK_DECK)"


def test_deck_directory_missing(tmp_path: Path) -> None:
    result = opsdeck("status", deck=tmp_path / "nope")
    assert result.returncode == 1
    assert result.stderr.strip() == f"opsdeck: deck directory {tmp_path / 'nope'} does not exist"


def test_stale_drift_is_missing_or_older_than_drift_minutes(sample_copy: Path) -> None:
    import time

    from opsdeck.core.drift import store as drift_store
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.observe.refresh import stale_drift

    deck = Deck.open(sample_copy)
    now = time.time()
    assert stale_drift(deck, now) == ["sandbox", "dev", "staging", "prod"]  # never checked
    drift_store.save(deck, drift_store.DriftReport("dev", "clean", checked_at=now - 59 * 60))
    drift_store.save(deck, drift_store.DriftReport("prod", "drifted", checked_at=now - 61 * 60))
    assert stale_drift(deck, now) == ["sandbox", "staging", "prod"]
    _edit(sample_copy, "drift_minutes = 60", "drift_minutes = 0")
    assert stale_drift(Deck.open(sample_copy), now) == []  # 0: only on d
