"""The user's own settings (`<config dir>/config.toml`): tools, provider mirror, theme and keys.

Environment variables win over the file: OPSDECK_TF_PLUGIN_MIRROR, OPSDECK_TERRAFORM, OPSDECK_PACKER,
OPSDECK_CHECKOV.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from opsdeck import paths
from opsdeck.core.estate.schema import Where, build, read_toml, setting
from opsdeck.files import write_atomic


@dataclass(frozen=True)
class TerraformSettings:
    binary: str = setting("terraform", doc="The terraform binary.")
    plugin_mirror: str | None = setting(
        None,
        doc="A provider filesystem mirror (the folder above registry.terraform.io); unset: download normally.",
    )


@dataclass(frozen=True)
class PackerSettings:
    binary: str = setting("packer", doc="The packer binary.")


@dataclass(frozen=True)
class CheckovSettings:
    binary: str | None = setting(
        None, doc="The checkov command (its own venv; scripts/bootstrap.sh installs one); unset: PATH."
    )


@dataclass(frozen=True)
class UserSettings:
    theme: str = setting("opsdeck-dark", doc="The deck's theme (a file in themes/ or the user's themes dir).")
    keys: dict[str, str] | None = setting(None, doc="Key remaps: action name = key.")
    mouse: bool = setting(
        True,
        doc="The mouse in the deck: a click selects a row or runs a footer key, the wheel scrolls a pane "
        "(false, or --no-mouse: the terminal keeps the mouse, to select and copy text).",
    )
    terraform: TerraformSettings = setting(factory=TerraformSettings, doc="Terraform.")
    packer: PackerSettings = setting(factory=PackerSettings, doc="Packer.")
    checkov: CheckovSettings = setting(factory=CheckovSettings, doc="Checkov, the policy engine.")
    demo_deck: str | None = setting(None, doc="Where the demo deck is (default: under the data dir).")


def settings_file() -> Path:
    return paths.config_dir() / "config.toml"


def load_settings() -> UserSettings:
    path = settings_file()
    label = str(path)
    data = read_toml(path, label) if path.is_file() else {}
    keys = data.pop("keys", None)
    settings = build(UserSettings, data, Where(label))
    if keys is not None:
        if not isinstance(keys, dict) or not all(isinstance(v, str) for v in keys.values()):
            raise Where(label, "keys").error('expected a table of action = "key"')
        settings = replace(settings, keys=dict(keys))
    tf, pk = settings.terraform, settings.packer
    tf = replace(
        tf,
        plugin_mirror=os.environ.get("OPSDECK_TF_PLUGIN_MIRROR") or tf.plugin_mirror,
        binary=os.environ.get("OPSDECK_TERRAFORM") or tf.binary,
    )
    pk = replace(pk, binary=os.environ.get("OPSDECK_PACKER") or pk.binary)
    ck = replace(settings.checkov, binary=os.environ.get("OPSDECK_CHECKOV") or settings.checkov.binary)
    return replace(settings, terraform=tf, packer=pk, checkov=ck)


def save_setting(key: str, value: str) -> None:
    """Set one string setting (``theme`` or ``table.key``) in the user's config file, keeping the rest."""
    path = settings_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    table, _, name = key.rpartition(".")
    headers = [i for i, text in enumerate(lines) if text.lstrip().startswith("[")]
    if table:
        start = next((i + 1 for i in headers if lines[i].strip() == f"[{table}]"), None)
        if start is None:
            lines += ["", f"[{table}]"]
            start = len(lines)
    else:
        start = 0
    end = next((i for i in headers if i >= start), len(lines))
    line = f"{name} = {_quote(value)}"
    for i in range(start, end):
        if lines[i].split("=", 1)[0].strip() == name:
            lines[i] = line
            break
    else:
        lines.insert(end, line)
    write_atomic(path, "\n".join(lines) + "\n")


def _quote(value: str) -> str:
    if value in ("true", "false"):  # a TOML boolean (mouse = false)
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
