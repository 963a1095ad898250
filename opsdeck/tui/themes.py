"""Themes as data: TOML files in themes/ (and the user's config dir) become registered Textual themes."""

from __future__ import annotations

import tomllib
from typing import TYPE_CHECKING, Any

from textual.theme import Theme

from opsdeck import paths
from opsdeck.errors import ConfigError
from opsdeck.shipped import shipped

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

DEFAULT = "opsdeck-dark"
REQUIRED_VARIABLES = ("prod-background", "prod-foreground", "breakglass-background", "breakglass-foreground")
FIELDS = (
    "primary",
    "secondary",
    "accent",
    "warning",
    "error",
    "success",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
)


def theme_dirs() -> list[Traversable]:
    """The themes shipped with opsdeck, then the user's own (which may override them by name)."""
    return [shipped("themes"), paths.config_dir() / "themes"]


def load_theme(path: Traversable) -> Theme:
    """One theme file; a mistake names the file and what is wrong."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path.name}: not a readable theme ({exc})") from None
    variables = data.get("variables", {})
    missing = [v for v in REQUIRED_VARIABLES if v not in variables]
    if "name" not in data or "primary" not in data or missing:
        raise ConfigError(f"{path.name}: a theme needs name, primary and variables {', '.join(REQUIRED_VARIABLES)}")
    colors: dict[str, Any] = {field: str(data[field]) for field in FIELDS if field in data}
    return Theme(
        name=str(data["name"]),
        dark=bool(data.get("dark", True)),
        variables={str(k): str(v) for k, v in variables.items()},
        **colors,
    )


def load_themes() -> dict[str, Theme]:
    themes: dict[str, Theme] = {}
    for folder in theme_dirs():
        if folder.is_dir():
            for path in sorted((p for p in folder.iterdir() if p.name.endswith(".toml")), key=lambda p: p.name):
                theme = load_theme(path)
                themes[theme.name] = theme
    if DEFAULT not in themes:
        raise ConfigError(f"the default theme {DEFAULT} is missing (looked in {theme_dirs()[0]})")
    return themes
