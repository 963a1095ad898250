"""The adopt estate (tests/decks/adopt) made real on the local cloud, as a team adopts it: copied into a git
repository, drafted by `opsdeck init`, reviewed, baked and applied. Shared by the integration tests
(tests/integration/test_53_adopt.py) and the benchmark of instance refresh rollouts (bench/refresh.py).

Its account is 444444444444 (reached by assuming a role, as the demo reaches its accounts), so nothing
here meets the demo's or another deck's resources, tags or state.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

SOURCE = Path(__file__).resolve().parent / "decks" / "adopt"
ACCOUNT = "444444444444"
REGION = "us-east-1"
BUCKET = "opsdeck-adopt-tfstate"
PIN = "amis.auto.tfvars.json"
DUMMY = {"aws_access_key_id": "adopt", "aws_secret_access_key": "adopt"}


@dataclass(frozen=True)
class Estate:
    deck: Path
    draft: str  # what `opsdeck init` wrote, before the review
    session: boto3.Session  # the adopted account, as the tests look at it from outside
    endpoint: str

    def client(self, name: str) -> Any:
        return self.session.client(name, endpoint_url=self.endpoint)


def run(deck: Path, *args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """The real `opsdeck` command line on ``deck`` (or, with ``cwd``, where it is run); fails on an error."""
    argv = [sys.executable, "-m", "opsdeck", *(() if cwd else ("--deck", str(deck))), *args]
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise AssertionError(f"opsdeck {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def git(deck: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(deck), *args], capture_output=True, text=True, check=True).stdout


def review(draft: str) -> str:
    """What the team changes in the draft: the local cloud, its account and roles, its image tags."""
    role = f"arn:aws:iam::{ACCOUNT}:role/adopt"
    text = draft.replace("local = false", "local = true")
    text = text.replace('# account = "123456789012"', f'account = "{ACCOUNT}"\nrole = "{role}-deploy"\n#')
    text = text.replace(
        "[conventions]\n", '[conventions]\nimage_service_tag = "Service"\nimage_version_tag = "Release"\n'
    )
    return text.replace(
        "[conventions]\n", f'[build]\naccount = "{ACCOUNT}"\nrole = "{role}-build"\n\n[conventions]\n', 1
    )


def adopt(deck: Path, endpoint: str) -> Estate:
    """The estate at ``deck``: drafted, reviewed and committed; its state bucket made; its first images baked,
    pinned and applied in qa and live."""
    shutil.copytree(
        SOURCE, deck, ignore=shutil.ignore_patterns(".terraform", ".opsdeck", "*.tfplan", ".terraform.lock.hcl")
    )
    git(deck, "init", "-q", "-b", "main")
    git(deck, "config", "user.name", "Web Team")
    git(deck, "config", "user.email", "web@example.com")
    run(deck, "init", cwd=deck)  # exit 0: everything inferred, no TODO left
    draft = (deck / "opsdeck.toml").read_text()
    (deck / "opsdeck.toml").write_text(review(draft))
    git(deck, "add", "-A")
    git(deck, "reset", "-q", "--", f"envs/qa/{PIN}", f"envs/live/{PIN}")  # the first pins are the first release
    git(deck, "commit", "-q", "-m", "opsdeck deck, drafted by opsdeck init and reviewed")

    sts = boto3.client("sts", endpoint_url=endpoint, region_name=REGION, **DUMMY)
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/adopt-test", RoleSessionName="test")["Credentials"]
    session = boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=REGION,
    )
    estate = Estate(deck, draft, session, endpoint)
    estate.client("s3").create_bucket(Bucket=BUCKET)

    run(deck, "bake", "--base")
    images = {i["service"]: i["id"] for i in json.loads(run(deck, "bake", "--json").stdout)}
    for env in ("qa", "live"):
        (deck / "envs" / env / PIN).write_text(
            json.dumps({"web_ami": images["web"], "batch_ami": images["batch"]}) + "\n"
        )
        git(deck, "add", f"envs/{env}/{PIN}")
        git(deck, "commit", "-q", "-m", f"pin web and batch in {env}")
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda env: run(deck, "apply", env, "--yes"), ("qa", "live")))
    return estate
