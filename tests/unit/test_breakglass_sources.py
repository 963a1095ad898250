"""Where break-glass credentials come from: the keyring, or a demo deck's own file on a machine with no
keyring backend (labelled as such, and never for a deck that is not on the local cloud)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsdeck.adapters.secrets import DEMO_SOURCE, DEMO_STORE
from opsdeck.core.estate.deck import Deck
from opsdeck.core.safety import breakglass
from opsdeck.core.types.cloud import Credentials
from opsdeck.errors import RefusedError, SecretsUnavailableError


@pytest.fixture()
def no_keyring() -> Iterator[None]:
    """This machine as it is without keyrings.alt or a Secret Service: no keyring backend at all."""
    import keyring
    from keyring.backends import fail

    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        yield
    finally:
        keyring.set_keyring(before)


def _demo(sample_copy: Path, local: bool = True) -> Deck:
    toml = sample_copy / "opsdeck.toml"
    text = toml.read_text().replace('name = "web-platform"', f'name = "unit-{sample_copy.parent.name}"')
    toml.write_text(text if local else text.replace("local = true", "local = false"))
    (sample_copy / ".opsdeck").mkdir(exist_ok=True)
    (sample_copy / ".opsdeck" / "demo.json").write_text(json.dumps({"complete": True}))
    return Deck.open(sample_copy)


def test_with_a_keyring_the_demo_credentials_go_there(sample_copy: Path) -> None:
    deck = _demo(sample_copy)
    where = deck.tools.secrets().store("prod", Credentials("ASIAKEYRINGDEMO", "s3cret-keyring"))
    assert where.startswith("keyring")
    creds, source = breakglass.load_credentials(deck, "prod")
    assert creds.access_key == "ASIAKEYRINGDEMO" and source.startswith("keyring")
    assert not (deck.local_dir / DEMO_STORE).exists()


def test_without_a_keyring_the_demo_keeps_its_own_labelled_file(sample_copy: Path, no_keyring: None) -> None:
    deck = _demo(sample_copy)
    where = deck.tools.secrets().store("prod", Credentials("ASIAFILEDEMO", "s3cret-file"))
    assert where == DEMO_SOURCE and "local cloud only" in where
    path = deck.local_dir / DEMO_STORE
    assert path.stat().st_mode & 0o077 == 0  # readable by its owner only
    creds, source = breakglass.load_credentials(deck, "prod")
    assert creds.secret_key == "s3cret-file" and source == DEMO_SOURCE
    glass = breakglass.open_break_glass(deck, "prod", "demo incident")
    assert glass.source == DEMO_SOURCE
    record = json.loads((deck.local_dir / "audit.jsonl").read_text().splitlines()[-1])
    assert record["credentials_from"] == DEMO_SOURCE and "s3cret-file" not in json.dumps(record)


def test_a_deck_off_the_local_cloud_never_uses_the_demo_file(sample_copy: Path, no_keyring: None) -> None:
    deck = _demo(sample_copy, local=False)
    (deck.local_dir / DEMO_STORE).write_text(
        json.dumps({"prod": {"access_key": "ASIAPLANTED", "secret_key": "planted"}})
    )
    with pytest.raises(RefusedError, match="no keyring backend"):
        breakglass.load_credentials(deck, "prod")
    with pytest.raises(SecretsUnavailableError, match="no keyring backend"):
        deck.tools.secrets().store("prod", Credentials("A", "B"))
    assert "ASIAPLANTED" in (deck.local_dir / DEMO_STORE).read_text()  # left as it was, never read or written
