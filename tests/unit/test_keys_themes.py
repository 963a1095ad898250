"""The key map (remappable, validated) and the themes (data files, production impossible to mistake)."""

from __future__ import annotations

import pytest

from opsdeck.errors import ConfigError
from opsdeck.tui import keys
from opsdeck.tui.themes import REQUIRED_VARIABLES, load_theme, load_themes, theme_dirs


def test_every_action_has_a_binding_with_an_id() -> None:
    ids = {b.id for b in keys.BINDINGS}
    assert ids == {a.name for a in keys.ACTIONS}
    assert {"bake", "promote", "deploy_newest", "rollback", "nuke", "break_glass"} == keys.mutating()
    assert {a.key for a in keys.ACTIONS} >= {"b", "p", "r", "n", "f", "d", "slash", "t", "exclamation_mark", "q"}


def test_remap_is_validated() -> None:
    assert keys.keymap({"promote": "P"}) == {"promote": "P"}
    with pytest.raises(ConfigError, match=r"keys\.promot: unknown action"):
        keys.keymap({"promot": "P"})
    with pytest.raises(ConfigError, match=r"keys\.rollback: 'b' is already the key of bake"):
        keys.keymap({"rollback": "b"})


def test_three_themes_as_data_with_a_production_band() -> None:
    themes = load_themes()
    assert {"opsdeck-dark", "opsdeck-light", "opsdeck-high-contrast"} <= set(themes)
    for theme in themes.values():
        for name in REQUIRED_VARIABLES:
            assert theme.variables[name]
        # production: white (or black on yellow) text on a saturated band, never the page background
        assert theme.variables["prod-background"].lower() != (theme.background or "").lower()
    assert not themes["opsdeck-light"].dark


def test_a_broken_theme_file_is_named(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "mine.toml"
    bad.write_text('name = "mine"\nprimary = "#fff"\n')
    with pytest.raises(ConfigError, match=r"mine\.toml: a theme needs name, primary and variables"):
        load_theme(bad)
    assert theme_dirs()[0].name == "themes"


def test_a_key_is_mutating_exactly_when_the_operation_it_runs_is() -> None:
    from opsdeck.core.engine import registry

    for action in keys.ACTIONS:
        if action.operation:
            assert action.mutating is registry.operation(action.operation).mutating, action.name
        else:
            assert not action.mutating, action.name  # views: requests, hygiene, filter, help ...
