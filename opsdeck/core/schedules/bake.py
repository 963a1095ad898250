"""Ready-to-install bake schedules: the nightly base bake (a crontab line, a systemd service and timer),
and a CI job per service that bakes it on a merge to the main branch (GitHub Actions, GitLab CI).

Every one runs `opsdeck bake` rather than a bare `packer build`: opsdeck picks the next version, tags
the image the deck's way (its ``[conventions]``) and writes the audit record, so a pipeline's image is
the same kind of image a person bakes. A service's job runs only when its recipe or the files it
provisions with changed (a path filter), so the pin commits of promote and rollback never start one.
AWS credentials come from the CI's identity (an OIDC role), never from a key in the file.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from opsdeck.core.estate.config import DeckConfig
from opsdeck.core.schedules import units

KINDS = ("cron", "systemd", "github", "gitlab")
NIGHTLY = ("cron", "systemd")
AUDIT = ".opsdeck/audit.jsonl"


@dataclass(frozen=True)
class Watched:
    """A path (relative to the repository) whose change rebakes a service; a folder means all below it."""

    path: str
    folder: bool = False

    def github(self) -> str:
        return f"{self.path}/**" if self.folder else self.path

    def gitlab(self) -> str:
        return f"{self.path}/**/*" if self.folder else self.path


@dataclass(frozen=True)
class BakeSchedule:
    """What the schedules run, and when."""

    opsdeck: tuple[str, ...]  # the opsdeck command, absolute (its script, or python -m opsdeck)
    git: str  # git, absolute: the nightly bake pulls the deck first
    deck: Path  # the deck, absolute
    hour: int
    minute: int
    services: tuple[tuple[str, tuple[Watched, ...]], ...]  # each service and what rebakes it
    region: str  # the build account's region
    branch: str = "main"
    deck_in_repo: str = "."  # the deck's path inside its git repository (for the CI jobs)
    version: str = ""  # opsdeck's, pinned in the CI jobs
    packer: str = ""  # Packer's, pinned in the CI jobs ("" when unknown: the latest)

    def ci_argv(self, service: str) -> list[str]:
        return ["opsdeck", "--deck", self.deck_in_repo, "bake", "--service", service]

    def in_repo(self, rel: str) -> str:
        return str(PurePosixPath(self.deck_in_repo, rel)) if self.deck_in_repo != "." else rel


def watched(config: DeckConfig, root: Path, service: str, deck_in_repo: str = ".") -> tuple[Watched, ...]:
    """What a change to rebakes ``service``: its recipe's folder when no other recipe lives there,
    else the recipe itself and the local files its provisioners name (scripts, uploaded files)."""
    recipe = PurePosixPath(config.service(service).recipe)
    others = [PurePosixPath(r) for r in [*(s.recipe for s in config.services), config.base_recipe] if r]
    others = [r for r in others if r != recipe]
    folder = recipe.parent
    shared = folder == PurePosixPath(".") or any(folder in r.parents for r in others)
    found = [Watched(str(recipe))] if shared else [Watched(str(folder), folder=True)]
    if shared:
        for rel in _provisioned(root, recipe):
            found.append(Watched(rel, folder=(root / rel).is_dir()))
    out = []
    for w in dict.fromkeys(found):
        path = str(PurePosixPath(deck_in_repo, w.path)) if deck_in_repo != "." else w.path
        out.append(Watched(path, w.folder))
    return tuple(out)


def _provisioned(root: Path, recipe: PurePosixPath) -> list[str]:
    """Local files a JSON recipe's provisioners name, relative to the deck (Packer runs in the
    recipe's folder); templated names and paths outside the deck are left out. HCL: none found."""
    try:
        data = json.loads((root / recipe).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    names: list[str] = []
    for step in data.get("provisioners", []) if isinstance(data, dict) else []:
        if not isinstance(step, dict):
            continue
        for key in ("script", "source"):
            if isinstance(step.get(key), str):
                names.append(step[key])
        for key in ("scripts", "sources"):
            names += [n for n in step.get(key) or [] if isinstance(n, str)]
    out = []
    base = (root / recipe).parent.resolve()
    for name in names:
        if "{{" in name or name.startswith("/"):
            continue
        path = (base / name).resolve()
        if path.is_relative_to(root.resolve()) and path.exists():
            out.append(path.relative_to(root.resolve()).as_posix())
    return out


def crontab(s: BakeSchedule) -> str:
    """One crontab line (the machine's local time): pull the deck, then bake the base layer."""
    command = f"{shlex.join(_pull(s))} && {shlex.join(_bake_base(s))}"
    notes = [
        "# the machine's AWS credentials (or the deck's [build] role or profile) reach the build account;",
        "# it bakes what the team's branch holds (a clone that cannot fast-forward bakes nothing);",
        "# exit 0 baked, 1 failed: see the log",
    ]
    return units.cron_entry("nightly base bake", f"{s.minute} {s.hour} * * *", command, "bake-cron.log", notes)


def systemd(s: BakeSchedule) -> str:
    """A user service and its timer (the machine's local time)."""
    service = [
        "# bake what the team's branch holds: a clone that cannot fast-forward fails the unit",
        f"ExecStartPre={units.systemd_argv(_pull(s))}",
        f"ExecStart={units.systemd_argv(_bake_base(s))}",
        "TimeoutStartSec=2h",
    ]
    calendar = f"*-*-* {s.hour:02d}:{s.minute:02d}:00"
    return units.systemd_units("bake-base", "nightly base bake", s.deck, service, calendar, nightly=True)


def _pull(s: BakeSchedule) -> list[str]:
    return [s.git, "-C", str(s.deck), "pull", "--ff-only", "--quiet"]


def _bake_base(s: BakeSchedule) -> list[str]:
    return [*s.opsdeck, "--deck", str(s.deck), "bake", "--base"]


def github(s: BakeSchedule) -> str:
    """One workflow per service: on a push to the branch that touches what it bakes from."""
    return "\n\n".join(_github_one(s, service, paths) for service, paths in s.services)


def _github_one(s: BakeSchedule, service: str, paths: tuple[Watched, ...]) -> str:
    install = f"pipx install opsdeck=={s.version}" if s.version else "pipx install opsdeck"
    packer = s.packer or "latest"
    return "\n".join(
        [
            f"# .github/workflows/opsdeck-bake-{service}.yml",
            "# repository variable OPSDECK_BAKE_ROLE: the build account's role this repository's OIDC token may assume",
            f"name: opsdeck bake {service}",
            "on:",
            "  push:",
            f"    branches: [{json.dumps(s.branch)}]",
            "    paths:",
            *(f"      - {json.dumps(p.github())}" for p in paths),
            "  workflow_dispatch: {}",
            "permissions:",
            "  contents: read",
            "  id-token: write  # the OIDC token the AWS role is assumed with",
            "concurrency:  # one bake of a service at a time: each picks the next version",
            f"  group: opsdeck-bake-{service}",
            "  cancel-in-progress: false",
            "jobs:",
            "  bake:",
            "    runs-on: ubuntu-latest",
            "    timeout-minutes: 60",
            "    steps:",
            "      - uses: actions/checkout@v4",
            "      - uses: hashicorp/setup-packer@v3",
            "        with:",
            f"          version: {json.dumps(packer)}  # the Packer the deck bakes with",
            "      - uses: aws-actions/configure-aws-credentials@v4",
            "        with:",
            "          role-to-assume: ${{ vars.OPSDECK_BAKE_ROLE }}",
            f"          aws-region: {s.region}",
            f"      - run: {install}  # or the team's wheel: pipx install ./dist/opsdeck-*.whl",
            f"      - name: bake {service}",
            f"        run: {shlex.join(s.ci_argv(service))}",
            "      - name: keep the audit record",
            "        if: always()",
            "        uses: actions/upload-artifact@v4",
            "        with:",
            f"          name: opsdeck-audit-{service}-${{{{ github.run_id }}}}",
            f"          path: {s.in_repo(AUDIT)}",
            "          include-hidden-files: true",
            "          if-no-files-found: ignore",
        ]
    )


def gitlab(s: BakeSchedule) -> str:
    """A hidden template job and one job per service, each run by a push to the branch that changes
    what it bakes from. Credentials: the job's OIDC token, which boto3 and Packer exchange for the
    role in ``AWS_ROLE_ARN`` themselves (web identity)."""
    version = f"=={s.version}" if s.version else ""
    lines = [
        "# opsdeck-bake.gitlab-ci.yml: include it from .gitlab-ci.yml (include: - local: opsdeck-bake.gitlab-ci.yml)",
        "# CI/CD variable OPSDECK_BAKE_ROLE: the build account's role this project's OIDC token may assume",
        ".opsdeck-bake:",
        "  stage: build",
        "  image: python:3.12-bookworm",
        "  id_tokens:",
        "    OPSDECK_AWS_TOKEN:",
        "      aud: sts.amazonaws.com",
        "  variables:",
        f"    AWS_REGION: {s.region}",
        "    AWS_ROLE_ARN: $OPSDECK_BAKE_ROLE",
        "    AWS_WEB_IDENTITY_TOKEN_FILE: /tmp/opsdeck-aws-token",
        "  before_script:",
        '    - printf \'%s\' "$OPSDECK_AWS_TOKEN" > "$AWS_WEB_IDENTITY_TOKEN_FILE"',
        *_gitlab_packer(s.packer),
        f"    - pip install --quiet opsdeck{version}",
        "  artifacts:  # the audit record of the bake",
        "    when: always",
        "    paths:",
        f"      - {s.in_repo(AUDIT)}",
    ]
    for service, paths in s.services:
        lines += [
            "",
            f"opsdeck-bake-{service}:",
            "  extends: .opsdeck-bake",
            f"  resource_group: opsdeck-bake-{service}  # one bake of a service at a time: each picks the next version",
            "  rules:",
            f"    - if: '$CI_PIPELINE_SOURCE == \"push\" && $CI_COMMIT_BRANCH == {json.dumps(s.branch)}'",
            "      changes:",
            *(f"        - {json.dumps(p.gitlab())}" for p in paths),
            "  script:",
            f"    - {shlex.join(s.ci_argv(service))}",
        ]
    return "\n".join(lines)


def _gitlab_packer(version: str) -> list[str]:
    """Install the Packer the deck bakes with (its release archive), or the newest from HashiCorp's
    Debian repository when that is unknown."""
    if version:
        url = f"https://releases.hashicorp.com/packer/{version}/packer_{version}_linux_amd64.zip"
        return [
            f"    - curl -fsSL {url} -o /tmp/packer.zip  # the Packer the deck bakes with",
            "    - python -m zipfile -e /tmp/packer.zip /usr/local/bin && chmod +x /usr/local/bin/packer",
        ]
    key = "/usr/share/keyrings/hashicorp.gpg"
    return [
        f"    - curl -fsSL https://apt.releases.hashicorp.com/gpg | gpg --dearmor -o {key}",
        f'    - echo "deb [signed-by={key}] https://apt.releases.hashicorp.com bookworm main"'
        " > /etc/apt/sources.list.d/hashicorp.list",
        "    - apt-get update -qq && apt-get install -y -qq packer",
    ]


def render(s: BakeSchedule, kinds: tuple[str, ...] = KINDS) -> str:
    makers = {"cron": crontab, "systemd": systemd, "github": github, "gitlab": gitlab}
    return "\n\n".join(makers[k](s) for k in kinds) + "\n"
