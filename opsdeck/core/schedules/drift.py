"""Ready-to-install schedules for the nightly drift check: a crontab line, a systemd service and timer,
and a CI pipeline's scheduled job (GitHub Actions).

Each runs the same command line: `opsdeck --deck DECK drift [--trail] --notify TARGET ...`. Its exit
code is drift's (0 clean, 2 drifted, 1 error); the alarm itself goes to the targets, so the systemd
unit counts 2 as success (a failed unit means the check or its alarm failed), while the CI job fails on
drift too (a red nightly run is the pipeline's own alarm).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from opsdeck.core.hygiene.notify import shown_url
from opsdeck.core.schedules import units
from opsdeck.errors import ConfigError

AT = re.compile(r"^(?P<hour>[01]?\d|2[0-3]):(?P<minute>[0-5]\d)$")
KINDS = ("cron", "systemd", "github")


@dataclass(frozen=True)
class Schedule:
    """What the nightly check runs, and when."""

    opsdeck: tuple[str, ...]  # the opsdeck command, absolute (its script, or python -m opsdeck)
    deck: Path  # the deck, absolute
    notify: tuple[str, ...]
    hour: int
    minute: int
    trail: bool = False
    deck_in_repo: str = "."  # the deck's path inside its git repository (for the CI job's checkout)
    version: str = ""

    @property
    def secrets(self) -> dict[str, str]:
        """Each webhook URL and the environment variable it is kept in: its path is its key, so it stays
        out of the command line (`ps`), the crontab and the unit files."""
        hooks = [t for t in self.notify if not t.startswith(("arn:", "env:"))]
        return {url: f"OPSDECK_NOTIFY_{i}" for i, url in enumerate(hooks, 1)}

    def argv(self, opsdeck: str | None = None, deck: str | None = None) -> list[str]:
        out = [*([opsdeck] if opsdeck else self.opsdeck), "--deck", deck or str(self.deck), "drift"]
        if self.trail:
            out.append("--trail")
        secrets = self.secrets
        for target in self.notify:
            out += ["--notify", f"env:{secrets[target]}" if target in secrets else target]
        return out


def parse_at(text: str) -> tuple[int, int]:
    match = AT.match(text.strip())
    if match is None:
        raise ConfigError(f"--at {text}: expected a time of day as HH:MM (24-hour), e.g. 03:17")
    return int(match["hour"]), int(match["minute"])


ENV_FILE = "$HOME/.config/opsdeck/drift.env"


def _env_file_help(s: Schedule) -> list[str]:
    if not s.secrets:
        return []
    lines = ["# the webhooks live in ~/.config/opsdeck/drift.env (chmod 600), one per line, quoted:"]
    lines += [f"#   {name}='{shown_url(url)}'  (the full URL)" for url, name in s.secrets.items()]
    return lines


def crontab(s: Schedule) -> str:
    """One crontab line (the machine's local time), the webhooks read from the env file."""
    load = f"set -a && . {ENV_FILE} && set +a && " if s.secrets else ""
    notes = ["# exit 0 clean, 2 drifted (alarm sent), 1 the check or its alarm failed: see the log", *_env_file_help(s)]
    when = f"{s.minute} {s.hour} * * *"
    return units.cron_entry("nightly drift check", when, load + shlex.join(s.argv()), "drift-cron.log", notes)


def systemd(s: Schedule) -> str:
    """A user service and its timer (the machine's local time)."""
    service = [
        *(["EnvironmentFile=%h/.config/opsdeck/drift.env"] if s.secrets else []),
        f"ExecStart={units.systemd_argv(s.argv())}",
        "# 2 is drift found and the alarm sent: the unit fails only when the check or its alarm did.",
        "SuccessExitStatus=2",
        "TimeoutStartSec=1h",
    ]
    calendar = f"*-*-* {s.hour:02d}:{s.minute:02d}:00"
    return units.systemd_units(
        "drift", "nightly drift check", s.deck, service, calendar, nightly=True, head=_env_file_help(s)
    )


def github(s: Schedule) -> str:
    """A scheduled GitHub Actions job (cron in UTC). Credentials come from the cloud's OIDC role; a
    webhook URL is a secret (its path is the key), so each one is read from a repository secret."""
    install = f"pipx install opsdeck=={s.version}" if s.version else "pipx install opsdeck"
    secrets = s.secrets
    command = shlex.join(s.argv("opsdeck", s.deck_in_repo))
    lines = [
        "# .github/workflows/opsdeck-drift.yml",
        *(f"# repository secret {name}: {shown_url(url)}" for url, name in secrets.items()),
        "name: opsdeck nightly drift",
        "on:",
        "  schedule:",
        f'    - cron: "{s.minute} {s.hour} * * *"  # UTC',
        "  workflow_dispatch: {}",
        "permissions:",
        "  contents: read",
        "  id-token: write  # the OIDC token the AWS role is assumed with",
        "concurrency:",
        "  group: opsdeck-drift",
        "  cancel-in-progress: false",
        "jobs:",
        "  drift:",
        "    runs-on: ubuntu-latest",
        "    timeout-minutes: 60",
        "    steps:",
        "      - uses: actions/checkout@v4",
        "      - uses: hashicorp/setup-terraform@v3",
        "        with:",
        "          terraform_wrapper: false",
        "      - uses: aws-actions/configure-aws-credentials@v4",
        "        with:",
        "          role-to-assume: ${{ vars.OPSDECK_DRIFT_ROLE }}",
        "          aws-region: ${{ vars.AWS_REGION }}",
        f"      - run: {install}  # or the team's wheel: pipx install ./dist/opsdeck-*.whl",
        "      # exit 2 (drift found, alarm sent) fails the run too: a red nightly run is an alarm of its own",
        "      - name: drift",
    ]
    if secrets:
        lines.append("        env:")
        lines += [f"          {name}: ${{{{ secrets.{name} }}}}" for name in secrets.values()]
    lines += ["        run: |", f"          {command}"]
    return "\n".join(lines)


def render(s: Schedule, kinds: tuple[str, ...] = KINDS) -> str:
    makers = {"cron": crontab, "systemd": systemd, "github": github}
    return "\n\n".join(makers[k](s) for k in kinds) + "\n"
