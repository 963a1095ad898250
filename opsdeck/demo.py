"""`opsdeck demo`: the sample deck as a git repository, applied to the local cloud, ready to open.

An application of core on the local cloud, like the command line: it sits above core and the adapters
(it sets up what a team's accounts would hold: roles, trails, SSH keys, a git remote), so core stays
free of the demo and of every adapter.

The demo deck is an ordinary deck: the same Packer recipes and Terraform a team would run against a
real account, on the embedded local cloud. A deck is "ready" while the cloud it was built on still
runs (moto forgets everything when it stops); otherwise it is rebuilt.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import shutil
import time
from collections import defaultdict
from importlib.resources.abc import Traversable
from pathlib import Path

from opsdeck import paths
from opsdeck.adapters import localcloud, sshsig
from opsdeck.adapters.aws import Aws
from opsdeck.adapters.git import Git
from opsdeck.adapters.secrets import DEMO_SOURCE
from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.demo_deck import is_demo_deck
from opsdeck.core.estate.demo_deck import marker as marker_file
from opsdeck.core.estate.pins import ColorPin, write_color_pins, write_pins
from opsdeck.core.estate.sections import trail_location
from opsdeck.core.events import Reporter
from opsdeck.core.plans import planning
from opsdeck.core.release import fleet, rollout
from opsdeck.core.release.bake import bake
from opsdeck.core.release.distribute import make_usable
from opsdeck.core.release.images import load_catalog
from opsdeck.core.tasks import all_or_nothing, concurrency
from opsdeck.core.types.cloud import Credentials
from opsdeck.errors import OpsdeckError, RefusedError, ToolError
from opsdeck.shipped import copy_tree, shipped
from opsdeck.wiring.tools import LOCAL_KEY

TEAM = (("alice", "Alice (on call)"), ("bob", "Bob"), ("carol", "Carol"))  # alice runs the demo's deck
TEAM_DOMAIN = "shop.example"
FIRST_VERSION = "1.0.0"


SAMPLE_SKIP = {".terraform", ".opsdeck", ".terraform.lock.hcl", "__pycache__"}


def sample_deck() -> Traversable:
    """The sample deck shipped with opsdeck (package data)."""
    here = shipped("sample_envs")
    if not (here / "opsdeck.toml").is_file():
        raise OpsdeckError(f"the sample deck is missing from opsdeck's installation ({here}); reinstall opsdeck")
    return here


def _write_marker(root: Path, **data: object) -> None:
    path = marker_file(root)
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def is_ready(root: Path) -> bool:
    """Built on the local cloud that runs now, and the cloud still holds its state."""
    try:
        marker = json.loads(marker_file(root).read_text("utf-8"))
    except (OSError, ValueError):
        return False
    cloud = localcloud.status()
    if not cloud.running or marker.get("cloud_started_at") != cloud.started_at or not marker.get("complete"):
        return False
    if not demo_remote(root).is_dir():
        return False
    try:
        Deck.open(root).check_cloud()
    except OpsdeckError:
        return False
    return True


def _copy_sample(target: Path) -> None:
    copy_tree(sample_deck(), target, skip=lambda name: name in SAMPLE_SKIP or name.endswith(".tfplan"))


async def _apply_env(deck: Deck, env: str, pins: dict[str, str], rep: Reporter) -> None:
    plan = await planning.plan(deck, env, rep, reuse=False)
    if plan.summary.has_changes:
        await rollout.apply_plan(deck, env, plan, rep, policy_missing_ok="the demo's first build")
        planning.forget_plan(deck, env)
    await fleet.wait_for_images(deck, env, fleet.expected_pins(deck, env, list(pins)), rep)


def _accounts(deck: Deck) -> None:
    """Each account's roles (deploy, build, break-glass), as a team's account set-up would have made them:
    from then on the local cloud, like AWS, refuses a role its account does not have."""
    wanted = [deck.config.build.role]
    for env in deck.config.environments:
        wanted += [env.role, env.break_glass_role]
    by_account: dict[str, list[str]] = defaultdict(list)
    for arn in dict.fromkeys(r for r in wanted if r):
        by_account[arn.split(":")[4]].append(arn)
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}
            ],
        }
    )
    endpoint = deck.tools.endpoint()
    for arns in by_account.values():
        setup = Aws(deck.config.aws.region, endpoint=endpoint, credentials=Credentials(LOCAL_KEY, LOCAL_KEY))
        creds = setup.assume_role(arns[0], "opsdeck-demo-setup")  # the account has no role yet: set it up
        iam = Aws(deck.config.aws.region, endpoint=endpoint, credentials=creds).client("iam")
        for arn in arns:
            path, _, name = arn.split(":", 5)[5].removeprefix("role").rpartition("/")
            with setup.errors(f"aws iam create-role {name}"):
                iam.create_role(RoleName=name, Path=f"{path}/", AssumeRolePolicyDocument=trust)


async def _state_buckets(deck: Deck) -> None:
    """Each environment's state bucket, made in its own account and region (once per bucket)."""
    made: set[str] = set()
    for env in deck.config.env_names:
        backend = deck.backend(env)
        if backend is None or backend.bucket in made:
            continue
        cloud = (await asyncio.to_thread(deck.tools.env, env)).cloud
        await asyncio.to_thread(cloud.ensure_bucket, backend.bucket)
        made.add(backend.bucket)


async def _trails(deck: Deck) -> None:
    """Each account's CloudTrail trail (multi-region) and the bucket it delivers to, as a team's account
    set-up would have made them. The local cloud never delivers a file: `opsdeck trail` reads what is
    written there in CloudTrail's format."""
    made: set[str] = set()
    for env in deck.config.environments:
        if not env.trail or env.account in made:
            continue
        bucket, prefix = trail_location(env.trail)
        cloud = (await asyncio.to_thread(deck.tools.env, env.name)).cloud
        await asyncio.to_thread(cloud.ensure_bucket, bucket)
        if isinstance(cloud, Aws):
            name = f"{deck.name}-trail"
            trails = cloud.client("cloudtrail")
            with cloud.errors(f"aws cloudtrail create-trail {name}"):
                await asyncio.to_thread(
                    trails.create_trail,
                    Name=name,
                    S3BucketName=bucket,
                    S3KeyPrefix=prefix,
                    IsMultiRegionTrail=True,
                    IncludeGlobalServiceEvents=True,
                )
                await asyncio.to_thread(trails.start_logging, Name=name)
        made.add(env.account or env.name)


def _store_break_glass(deck: Deck, rep: Reporter) -> None:
    """Credentials for the protected environments, so break-glass (`!`) works in the demo as it would
    with a team's own stored credentials. On the local cloud any key is accepted."""
    for env in (e for e in deck.config.environments if e.protected):
        if env.break_glass_role:  # credentials of the environment's break-glass role, in its own account
            local = Aws(
                deck.config.region_of(env.name),
                endpoint=deck.tools.endpoint(),
                credentials=Credentials(LOCAL_KEY, LOCAL_KEY),
            )
            creds = local.assume_role(env.break_glass_role, "opsdeck-demo-break-glass", seconds=43200)
            creds = Credentials(creds.access_key, creds.secret_key, creds.session_token)  # kept past the hour
        else:
            key = "ASIA" + "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
            creds = Credentials(key, secrets.token_urlsafe(30))
        where = deck.tools.secrets().store(env.name, creds)
        if where == DEMO_SOURCE:  # the keyring has no backend here (opsdeck/wiring/tools.py secrets)
            rep.log(
                f"no keyring backend on this machine: {env.name}'s demo break-glass credentials are in {where}; "
                "for a keyring, `pip install keyrings.alt` or run a Secret Service (see README, Secrets)",
                "notice",
            )


def demo_team_dir() -> Path:
    """Where the demo team's SSH keys are (private keys: never in the deck or its git)."""
    return paths.data_dir() / "demo-team"


def demo_remote(target: Path) -> Path:
    """The demo deck's team remote: a bare repository on disk, as a team's git server would be."""
    digest = hashlib.sha256(str(target).encode()).hexdigest()[:12]
    return paths.data_dir() / "demo-remote" / f"{target.name}-{digest}.git"


def _team(target: Path, git: Git) -> None:
    """The demo's team: an SSH key each (alice, who runs the deck; bob and carol, who approve), the deck's
    allowed_signers file naming them, and alice's git identity and signing key in the deck's repository."""
    keys = demo_team_dir()
    lines = [
        "# Who may approve changes to this deck's environments (git's SSH allowed-signers format).",
        "# The demo's team; their private keys are in " + str(keys) + ".",
    ]
    for name, _ in TEAM:
        key = keys / name
        if not key.is_file():
            sshsig.new_key(key, f"{name}@{TEAM_DOMAIN}")
        lines.append(f'{name}@{TEAM_DOMAIN} namespaces="opsdeck-approval,git" {sshsig.public_key(str(key))}')
    (target / "allowed_signers").write_text("\n".join(lines) + "\n", encoding="utf-8")
    name, full = TEAM[0]
    for setting_key, value in (
        ("user.name", full),
        ("user.email", f"{name}@{TEAM_DOMAIN}"),
        ("user.signingkey", str(keys / name)),
        ("gpg.format", "ssh"),
        ("gpg.ssh.allowedSignersFile", "allowed_signers"),
    ):
        git.set_config(setting_key, value)


async def prepare(target: Path, rep: Reporter, *, reset: bool = False) -> Deck:
    """Build (or reuse) the demo deck at ``target`` and return it opened."""
    target = target.expanduser().resolve()
    if not reset and is_ready(target):
        rep.log(f"the demo deck at {target} is ready; reusing it (--reset rebuilds it from nothing)", "notice")
        return Deck.open(target)
    try:
        return await _build(target, rep)
    except ToolError as exc:
        # The emulator now and then loses a response under Terraform's parallel calls, and the
        # SDK's retry of a create then meets the object the first call made (seen once in ~40 runs:
        # InvalidGroup.Duplicate). The demo is built from nothing, so one rebuild is always safe.
        rep.log(f"building the demo failed on the local cloud ({exc}); rebuilding it once from nothing", "warning")
        return await _build(target, rep)


async def _build(target: Path, rep: Reporter) -> Deck:
    if target.exists() and any(target.iterdir()) and not is_demo_deck(target):
        raise RefusedError(f"{target} exists and is not an opsdeck demo deck; pick an empty or new directory")
    if target.exists():
        with rep.phase("remove old demo deck"):
            shutil.rmtree(target)
    if localcloud.status().running:
        # The local cloud belongs to the demo: a rebuild starts from an empty one, so nothing of an
        # earlier (or interrupted) demo, its images or its Terraform state, leaks into the new one.
        with rep.phase("stop old local cloud"):
            await asyncio.to_thread(localcloud.stop)
    with rep.phase("copy sample deck"):
        target.mkdir(parents=True)
        _copy_sample(target)
    with rep.phase("git init"):
        git = Git.init(target)
        _team(target, git)
        # The sample's pins are placeholders: the first commit of a pin is the first real release.
        placeholders = [str(p.relative_to(target)) for p in target.glob("envs/*/*.auto.tfvars.json")]
        git.add_all_and_commit("opsdeck demo deck: an estate of services in four environments", leave=placeholders)
    with rep.phase("local cloud"):
        cloud = await asyncio.to_thread(localcloud.start)
        rep.log(f"local cloud at {cloud.endpoint}", "notice")
    deck = Deck.open(target)
    _write_marker(target, cloud_started_at=cloud.started_at, complete=False)
    with rep.phase("accounts and roles"):
        await asyncio.to_thread(_accounts, deck)
    with rep.phase("state buckets"):
        await _state_buckets(deck)
    with rep.phase("trails"):
        await _trails(deck)
    if deck.config.base_recipe:
        (base,) = await bake(deck, rep.child(op="bake base image"), version=FIRST_VERSION, base=True)
        rep.log(f"base image {base.version}: {base.id}")
    baked = await bake(deck, rep.child(op="bake images"), version=FIRST_VERSION)
    for image in baked:
        rep.log(f"{image.service} image {image.version}: {image.id}")
    catalog = await asyncio.to_thread(load_catalog, deck)
    pins: dict[str, dict[str, str]] = {}
    with rep.phase("distribute images"):
        for env in deck.config.env_names:
            pins[env] = {}
            for image in baked:
                assert image.service is not None
                original = catalog.by_id[image.id]
                made = await make_usable(deck, catalog, original, env, rep.child(op="distribute", env=env))
                pins[env][image.service] = made.usable_id
            catalog = await asyncio.to_thread(load_catalog, deck)  # copies made for this env are reused
    with rep.phase("pin images"):
        written = []
        for env in deck.config.env_names:
            if deck.env(env).blue_green:  # the first release is blue's; green has run nothing yet
                colored = {s: ColorPin("blue", image, None) for s, image in pins[env].items()}
                written += write_color_pins(deck, env, colored)
            else:
                written += write_pins(deck, env, pins[env])
        written = list(dict.fromkeys(written))
        what = ", ".join(f"{i.service} {i.version}" for i in baked)
        deck.tools.git.commit(written, f"pin {what} in every environment")
    gate = asyncio.Semaphore(concurrency())

    async def one(env: str) -> None:
        async with gate:
            child = rep.child(op=f"apply {env}", env=env)
            with rep.phase(f"apply {env}"):
                await _apply_env(deck, env, pins[env], child)

    await all_or_nothing(*(one(env) for env in deck.config.env_names))
    with rep.phase("break-glass credentials"):
        _store_break_glass(deck, rep)
    with rep.phase("commit provider locks"):
        locks = [
            f"{deck.env(env).path}/.terraform.lock.hcl"
            for env in deck.config.env_names
            if (deck.env_dir(env) / ".terraform.lock.hcl").is_file()
        ]
        if locks:
            deck.tools.git.commit(locks, "terraform provider lock files")
    with rep.phase("team remote"):
        remote = demo_remote(target)
        if remote.exists():
            shutil.rmtree(remote)
        Git.init_bare(remote)
        repo = Git(target)
        repo.add_remote("origin", str(remote))
        repo.push_upstream("origin", "main")
        repo.close()
    _write_marker(target, cloud_started_at=cloud.started_at, complete=True, built_at=time.time())
    state = paths.state_dir()
    state.mkdir(parents=True, exist_ok=True)
    (state / "demo-deck").write_text(str(target), encoding="utf-8")
    return deck
