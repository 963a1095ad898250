"""`opsdeck config get | set | path`: the user's own settings (theme, keys, tools, provider mirror)."""

from __future__ import annotations

import argparse
from typing import Any

from opsdeck.errors import ConfigError

SETTABLE = (
    "theme",
    "mouse",
    "demo_deck",
    "terraform.binary",
    "terraform.plugin_mirror",
    "packer.binary",
    "checkov.binary",
)


def register(sub: Any) -> None:
    config = sub.add_parser("config", help="read or change your own settings")
    actions = config.add_subparsers(dest="config_action", metavar="ACTION", required=True)
    get = actions.add_parser("get", help="print one setting (empty when unset)")
    get.add_argument("key", choices=SETTABLE)
    get.set_defaults(handler=get_cmd)
    set_ = actions.add_parser("set", help="change one setting")
    set_.add_argument("key", choices=SETTABLE)
    set_.add_argument("value")
    set_.set_defaults(handler=set_cmd)
    path = actions.add_parser("path", help="where the settings file is")
    path.set_defaults(handler=path_cmd)


def _value(key: str) -> Any:
    from opsdeck.core.estate.settings import load_settings

    value: Any = load_settings()
    for part in key.split("."):
        value = getattr(value, part)
    return value


def get_cmd(args: argparse.Namespace) -> int:
    value = _value(args.key)
    print("" if value is None else value)
    return 0


def set_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.estate.settings import load_settings, save_setting, settings_file

    if not args.value.strip():
        raise ConfigError(f"{args.key}: expected a value, got an empty string")
    path = settings_file()
    before = path.read_bytes() if path.is_file() else None
    save_setting(args.key, args.value)
    try:
        load_settings()  # the file still parses, with a value of the right kind
    except ConfigError:
        if before is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(before)  # nothing lost: the file as it was
        raise
    return 0


def path_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.estate.settings import settings_file

    print(settings_file())
    return 0
