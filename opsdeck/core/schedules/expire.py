"""A ready-to-install schedule for `opsdeck sandbox expire --yes`: a crontab line and a systemd service
with its timer, every hour by default (a sandbox outlives its lifetime by at most that long)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from opsdeck.core.schedules import units
from opsdeck.errors import ConfigError

KINDS = ("cron", "systemd")


@dataclass(frozen=True)
class ExpireSchedule:
    opsdeck: tuple[str, ...]  # the opsdeck command, absolute (its script, or python -m opsdeck)
    deck: Path  # the deck, absolute
    every_minutes: int = 60
    minute: int = 23  # past the hour (hourly and longer periods)

    def argv(self) -> list[str]:
        return [*self.opsdeck, "--deck", str(self.deck), "sandbox", "expire", "--yes"]

    def cron_time(self) -> str:
        if self.every_minutes < 60:
            return f"*/{self.every_minutes} * * * *"
        return (
            f"{self.minute} */{self.every_minutes // 60} * * *" if self.every_minutes > 60 else f"{self.minute} * * * *"
        )

    def calendar(self) -> str:
        if self.every_minutes < 60:
            return f"*:0/{self.every_minutes}"
        hours = self.every_minutes // 60
        return f"*-*-* 00/{hours}:{self.minute:02d}:00" if hours > 1 else f"*-*-* *:{self.minute:02d}:00"


def parse_every(text: str) -> int:
    """``--every``: minutes (15m) or hours (1h, 6h); cron-friendly: a divisor of an hour or of a day."""
    value = text.strip().lower()
    try:
        minutes = int(value[:-1]) * (60 if value.endswith("h") else 1) if value[-1:] in ("m", "h") else int(value)
    except ValueError:
        minutes = 0
    if minutes <= 0 or (minutes < 60 and 60 % minutes) or (minutes >= 60 and (minutes % 60 or 24 % (minutes // 60))):
        raise ConfigError(
            f"--every {text}: expected minutes dividing an hour (15m, 30m) or hours dividing a day (1h, 6h)"
        )
    return minutes


def crontab(s: ExpireSchedule) -> str:
    notes = ["# destroys sandboxes whose lifetime ended (not rebuilt); exit 1: one was refused or failed, see the log"]
    return units.cron_entry("sandbox expiry", s.cron_time(), shlex.join(s.argv()), "sandbox-expire.log", notes)


def systemd(s: ExpireSchedule) -> str:
    service = [f"ExecStart={units.systemd_argv(s.argv())}", "TimeoutStartSec=1h"]
    return units.systemd_units("sandbox-expire", "sandbox expiry", s.deck, service, s.calendar())


def render(s: ExpireSchedule, kinds: tuple[str, ...] = KINDS) -> str:
    makers = {"cron": crontab, "systemd": systemd}
    return "\n\n".join(makers[k](s) for k in kinds) + "\n"
