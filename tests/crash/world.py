"""What the checks read: the deck's git and status, Terraform's states, and every resource in the cloud."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers import opsdeck

COPY_REGIONS = ("us-east-1", "us-west-2")  # where the deck's environments and their copies may run


def git(deck: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(deck), *args], capture_output=True, text=True, check=True).stdout


def read_json(deck: Path, *args: str) -> Any:
    return json.loads(opsdeck(*args, "--json", deck=deck, check=True).stdout)


def status(deck: Path) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in read_json(deck, "status")["environments"]}


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 300.0, every: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def terraform_running(deck: Path) -> list[str]:
    """Terraform processes working anywhere in the deck (an environment's folder, or a copy's under
    .opsdeck), from /proc: "pid command" each."""
    root = deck.resolve()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cwd = Path(os.readlink(entry / "cwd"))
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if cwd.is_relative_to(root) and "terraform" in cmdline.split(" ", 1)[0]:
            found.append(f"{entry.name} {cmdline[:80]}")
    return found


def dirty(deck: Path) -> list[str]:
    """The deck's uncommitted changes (git status), one line each."""
    return [line for line in git(deck, "status", "--porcelain").splitlines() if line.strip()]


def pins_at(deck: Path, env: str, rev: str = "HEAD") -> dict[str, Any]:
    """Each service's pin in ``env`` as ``rev`` has it ("" for the working tree): an image id, or a
    blue/green pin's object."""
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.estate.pins import pin_files

    opened = Deck.open(deck)
    pins: dict[str, Any] = {}
    for rel in pin_files(opened, env):
        text = (deck / rel).read_text() if rev == "" else git(deck, "show", f"{rev}:{rel}")
        pins.update(json.loads(text).get("images", {}))
    return pins


def live(pin: Any) -> str:
    """The image a pin runs in traffic (a blue/green pin's live color's)."""
    return str(pin[pin["live"]]) if isinstance(pin, dict) else str(pin)


def cloud_traffic(deck: Path, env: str) -> dict[str, str | None]:
    """Where each service's live listener rule forwards, as the cloud has it (blue/green only)."""
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.release.bluegreen import read_traffic

    return {s: t.live for s, t in read_traffic(Deck.open(deck), env).items()}


# -- everything the cloud holds ------------------------------------------------------------------------


@dataclass(frozen=True)
class Thing:
    """One resource: where it is, its kind and id, and what it belongs to (an instance's group)."""

    place: str
    kind: str
    id: str
    group: str = ""


def inventory(deck: Path) -> set[Thing]:
    """Every resource in every account and region the deck reaches, by its own describe calls (not
    opsdeck's inventory, which is what is being checked)."""
    from opsdeck.core.estate.deck import Deck

    opened = Deck.open(deck)
    places: dict[tuple[str, str], Any] = {}
    for env in opened.config.env_names:
        for region in COPY_REGIONS:
            work = opened.local_dir / "crash-inventory"
            cloud = opened.tools.env_copy(env, region, work).cloud
            places.setdefault((opened.env(env).account or env, region), cloud)
    for region in COPY_REGIONS:
        places.setdefault((opened.config.build.account or "build", region), opened.tools.build(region))
    found: set[Thing] = set()
    for (account, region), cloud in places.items():
        found |= _things(f"{account}/{region}", cloud)
    return found


def _things(place: str, cloud: Any) -> set[Thing]:
    ec2, asg, elb, s3 = (cloud.client(s) for s in ("ec2", "autoscaling", "elbv2", "s3"))
    found: set[Thing] = set()
    for reservation in ec2.describe_instances()["Reservations"]:
        for i in reservation["Instances"]:
            if i["State"]["Name"] in ("pending", "running", "stopping", "stopped"):
                tags = {t["Key"]: t["Value"] for t in i.get("Tags", [])}
                found.add(Thing(place, "instance", i["InstanceId"], tags.get("aws:autoscaling:groupName", "")))
    for group in asg.describe_auto_scaling_groups()["AutoScalingGroups"]:
        found.add(Thing(place, "group", group["AutoScalingGroupName"]))
        for i in group.get("Instances", []):
            found.discard(Thing(place, "instance", i["InstanceId"]))
            found.add(Thing(place, "instance", i["InstanceId"], group["AutoScalingGroupName"]))
    found |= {
        Thing(place, "launch template", t["LaunchTemplateId"])
        for t in ec2.describe_launch_templates()["LaunchTemplates"]
    }
    found |= {Thing(place, "vpc", v["VpcId"]) for v in ec2.describe_vpcs()["Vpcs"] if not v.get("IsDefault")}
    found |= {
        Thing(place, "subnet", s["SubnetId"]) for s in ec2.describe_subnets()["Subnets"] if not s.get("DefaultForAz")
    }
    for sg in ec2.describe_security_groups()["SecurityGroups"]:
        if sg["GroupName"] != "default":
            found.add(Thing(place, "security group", sg["GroupId"]))
    found |= {
        Thing(place, "load balancer", b["LoadBalancerArn"]) for b in elb.describe_load_balancers()["LoadBalancers"]
    }
    found |= {Thing(place, "target group", g["TargetGroupArn"]) for g in elb.describe_target_groups()["TargetGroups"]}
    found |= {Thing(place, "image", i["ImageId"]) for i in ec2.describe_images(Owners=["self"])["Images"]}
    for bucket in s3.list_buckets()["Buckets"]:
        if "tfstate" in bucket["Name"]:
            for obj in s3.list_objects_v2(Bucket=bucket["Name"]).get("Contents", []):
                found.add(Thing(place, "object", f"{bucket['Name']}/{obj['Key']}"))
    return found


def _managed(deck: Path) -> set[str]:
    """The ids in the Terraform state of every environment and of every copy the ledger records, and
    those states' and requests' saved plans' keys."""
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.sandbox.copies import read_copy

    opened = Deck.open(deck)
    ids: set[str] = set()
    states: list[tuple[str, str, Any]] = []
    for env in opened.config.env_names:
        backend = opened.backend(env)
        if backend is not None:
            states.append((backend.bucket, backend.key, opened.tools.env(env).cloud))
        for region in COPY_REGIONS:
            copy = read_copy(opened, env, region) if region != opened.config.region_of(env) else None
            if copy is not None:
                states.append((copy.state.bucket, copy.state.key, opened.tools.env(env).cloud))
    for bucket, key, cloud in states:
        ids.add(f"{bucket}/{key}")
        body = cloud.read_object(bucket, key)
        for resource in json.loads(body).get("resources", []) if body else []:
            for instance in resource.get("instances", []):
                attributes = instance.get("attributes") or {}
                ids |= {str(attributes[k]) for k in ("id", "arn", "name") if attributes.get(k)}
    requests = sorted(p.parent.name for p in (deck / "requests").glob("*/request.json"))
    ids |= {f"{bucket}/opsdeck/requests/{r}.tfplan" for bucket, _key, _cloud in states for r in requests}
    return ids


def _catalogued(deck: Path) -> set[str]:
    """The catalog's images and their copies."""
    ids: set[str] = set()
    for image in read_json(deck, "images"):
        ids.add(image["id"])
        ids |= set((image.get("copies") or {}).values())
    return ids


def _orphans(deck: Path) -> set[str]:
    """What `opsdeck orphans` lists (a state file also by its bucket and key)."""
    ids: set[str] = set()
    found = json.loads(opsdeck("orphans", "--json", deck=deck, stdin=subprocess.DEVNULL, timeout=300).stdout)
    for orphan in found["orphans"]:
        ids.add(str(orphan["id"]))
        if orphan.get("bucket"):
            ids.add(f"{orphan['bucket']}/{orphan['id']}")
    return ids


def unaccounted(deck: Path, before: set[Thing]) -> list[Thing]:
    """What exists now that did not before and that nothing in the deck answers for: a Terraform state
    (an instance through its auto scaling group), the catalog, a request, or `opsdeck orphans`."""
    left = inventory(deck) - before
    for source in (_managed, _catalogued, _orphans):
        if not left:
            break
        known = source(deck)
        left = {t for t in left if t.id not in known and not (t.kind == "instance" and t.group in known)}
    return sorted(left, key=lambda t: (t.place, t.kind, t.id))
