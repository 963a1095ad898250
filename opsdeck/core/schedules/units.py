"""The two shapes a schedule installs as on a machine, in its local time: a crontab line and a systemd user
service with its timer. Each schedule (drift, bake, sandbox expiry) says only what differs: its name, what
it runs and when, and its own comments."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

STATE = "$HOME/.local/state/opsdeck"  # where the cron lines log (made by the line itself)
LINGER = "# (and `loginctl enable-linger $USER` so it runs while you are logged out)"


def cron_entry(what: str, when: str, command: str, log: str, notes: Sequence[str] = ()) -> str:
    """One crontab line under its comments, logging to ``log`` in STATE. `%` is special to cron (a
    newline), so the command's are escaped."""
    command = command.replace("%", "\\%")
    return "\n".join(
        [
            f"# opsdeck {what} (install: crontab -e, and paste the line below)",
            *notes,
            f"{when} mkdir -p {STATE} && {command} >>{STATE}/{log} 2>&1",
        ]
    )


def systemd_units(
    name: str,
    what: str,
    deck: Path,
    service: Sequence[str],
    calendar: str,
    *,
    nightly: bool = False,
    head: Sequence[str] = (),
) -> str:
    """``opsdeck-NAME.service`` (a oneshot in the deck, running the ``service`` lines: ExecStart and the
    rest) and its timer on ``calendar``. A ``nightly`` one starts within 5 minutes of its time and
    reminds that a user's timer needs lingering to run while they are logged out."""
    return "\n".join(
        [
            *head,
            f"# ~/.config/systemd/user/opsdeck-{name}.service",
            "[Unit]",
            f"Description=opsdeck {what}",
            "Wants=network-online.target",
            "After=network-online.target",
            "",
            "[Service]",
            "Type=oneshot",
            f"WorkingDirectory={systemd_quote(str(deck))}",
            *service,
            "",
            f"# ~/.config/systemd/user/opsdeck-{name}.timer",
            "[Unit]",
            f"Description=opsdeck {what}",
            "",
            "[Timer]",
            f"OnCalendar={calendar}",
            "Persistent=true",
            *(["RandomizedDelaySec=5min"] if nightly else []),
            "",
            "[Install]",
            "WantedBy=timers.target",
            "",
            f"# install: systemctl --user daemon-reload && systemctl --user enable --now opsdeck-{name}.timer",
            *([LINGER] if nightly else []),
        ]
    )


def systemd_argv(argv: Sequence[str]) -> str:
    """A command line for ExecStart= (and its kin), each argument quoted systemd's way."""
    return " ".join(systemd_quote(a) for a in argv)


def systemd_quote(arg: str) -> str:
    """systemd's own quoting: double quotes, with backslash, quote, `%` (a specifier) and `$` (a variable)
    escaped."""
    if re.fullmatch(r"[\w@+=:,./-]+", arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$") + '"'
