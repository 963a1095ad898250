"""The mutating operations of the matrix: each one's phases (as its -v lines name them, in order), which
of them start before the environment's lock is taken, and how to set the demo deck up so that the
operation has something to do (a new image, a previous pin, a warm standby, a request, an orphan)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.crash.kill import Phase
from tests.crash.world import git, live, pins_at, read_json
from tests.helpers import demo_key, opsdeck

RELEASE = ("sync", "distribute", "pin", "plan", "show", "policy", "apply", "verify instances", "commit", "push")
BLUE_GREEN = (
    *("sync", "distribute", "pin", "plan", "show", "policy", "apply", "health", "plan switch", "smoke", "policy#2"),
    *("apply#2", "verify traffic", "commit", "push", "prepare switch back", "policy#3"),
)
INSTANT = ("sync", "traffic moved", "commit", "push", "state in line", "apply", "verify traffic")
EXECUTE = ("sync", "show", "apply", "verify instances", "commit", "push")
EXPIRE = ("sync", "pin", "plan", "show", "policy", "apply", "verify instances", "commit", "push")
NUKE = (
    *("sync", "inventory", "delete unmanaged", "terraform destroy", "verify empty", "terraform apply", "plan"),
    *("show", "policy", "apply", "verify instances"),
)
RECOVER = ("sync", "copy images", "prepare", "plan", "policy", "apply", "verify instances", "ledger", "push")
ORPHANS = (
    *("sync", "accounts and regions", "tagged resources", "state files", "images", "sync#2", "sync#3"),
    *("accounts and regions#2", "tagged resources#2", "state files#2", "images#2", "sync#4", "delete"),
)
FREEZE = ("sync", "push")
REGION = "us-west-2"  # where recover copies staging


@dataclass
class Prepared:
    """One run of an operation, set up: its arguments, the images it moves to (service -> image), the
    arguments of running it again, and what else counts as that run succeeding."""

    args: list[str]
    after: dict[str, str] = field(default_factory=dict)
    again: list[str] | None = None  # None: the same arguments
    done_already: tuple[str, ...] = ()  # a refusal of the run again that says it was done already
    note: str = ""


@dataclass(frozen=True)
class Operation:
    """A row group of the matrix."""

    name: str
    action: str  # as its lock and audit record name it
    env: str | None  # the environment it locks and changes (None: none)
    phases: tuple[str, ...]
    prepare: Callable[[Path], Prepared]
    unlocked: frozenset[str] = frozenset({"sync"})  # phases that run without the lock (before or after it)
    locks: bool = True
    rebuilds: bool = False  # tears the environment down: code and cloud agree again after the run again
    cleanup: Callable[[Path], None] | None = None
    blue_green: bool = False  # its environment's traffic is checked against the ledger's live colors
    terraform: tuple[str, ...] = ()  # phases killed a second time, once Terraform runs in them

    @property
    def cells(self) -> list[Phase]:
        """Its phases, in order."""
        return [Phase.parse(p) for p in self.phases]

    @property
    def all_cells(self) -> list[Phase]:
        """Its phases, each followed by its kill once Terraform runs where it has one."""
        found = []
        for phase in self.phases:
            found.append(Phase.parse(phase))
            if phase in self.terraform:
                found.append(Phase.parse(f"{phase}@terraform"))
        return found

    def lock_expected(self, phase: Phase) -> bool:
        return self.locks and _plain(phase) not in self.unlocked


def _plain(phase: Phase) -> str:
    return str(Phase(phase.name, phase.nth))


# -- the deck's images ---------------------------------------------------------------------------------


def web_images(deck: Path) -> list[dict[str, Any]]:
    """The web images a release may take, oldest first."""
    images = [i for i in read_json(deck, "images") if i["service"] == "web" and not i["revoked"]]
    return sorted(images, key=lambda i: str(i["created"]))


def bake_web(deck: Path) -> str:
    return str(read_json(deck, "bake", "--service", "web")[0]["id"])


def other_web_image(deck: Path, *not_these: str | None) -> str:
    """A web image none of ``not_these`` is (baked when the deck has none)."""
    found = [i["id"] for i in web_images(deck) if i["id"] not in not_these]
    return found[-1] if found else bake_web(deck)


def web_pin(deck: Path, env: str) -> Any:
    return pins_at(deck, env)["web"]


def previous_web(deck: Path, env: str) -> str | None:
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.release.ledger import previous_pin
    from opsdeck.errors import RefusedError

    try:
        return previous_pin(Deck.open(deck), env, "web")
    except RefusedError:
        return None


def released(deck: Path, *args: str) -> None:
    opsdeck(*args, "--yes", "--reason", "crash matrix: set up", deck=deck, check=True, timeout=600)


# -- each operation's set-up -----------------------------------------------------------------------------

ALREADY = ("already runs",)


def promote_sandbox(deck: Path) -> Prepared:
    image = other_web_image(deck, live(web_pin(deck, "sandbox")))
    return Prepared(["promote", image, "sandbox", "--service", "web", "--yes"], {"web": image}, done_already=ALREADY)


def promote_dev(deck: Path) -> Prepared:
    pin = web_pin(deck, "dev")
    image = other_web_image(deck, pin.get("blue"), pin.get("green"))
    return Prepared(["promote", image, "dev", "--service", "web", "--yes"], {"web": image}, done_already=ALREADY)


def rollback_sandbox(deck: Path) -> Prepared:
    target = previous_web(deck, "sandbox")
    if target is None:
        released(deck, "promote", other_web_image(deck, live(web_pin(deck, "sandbox"))), "sandbox", "--service", "web")
        target = previous_web(deck, "sandbox")
    assert target is not None
    again = ["rollback", "sandbox", "--service", "web", "--to", target, "--yes"]
    return Prepared(["rollback", "sandbox", "--service", "web", "--yes"], {"web": target}, again, ALREADY)


def rollback_dev(deck: Path) -> Prepared:
    """An instant rollback: dev's previous web image still warm on the idle color."""
    pin, target = web_pin(deck, "dev"), previous_web(deck, "dev")
    if not _warm(pin) or target is None or pin[_idle(pin)] != target:
        released(deck, "promote", other_web_image(deck, pin.get("blue"), pin.get("green")), "dev", "--service", "web")
        pin, target = web_pin(deck, "dev"), previous_web(deck, "dev")
    assert target is not None and pin[_idle(pin)] == target and _warm(pin), pin
    again = ["rollback", "dev", "--service", "web", "--to", target, "--yes"]
    return Prepared(["rollback", "dev", "--service", "web", "--yes"], {"web": target}, again, ALREADY, "instant")


def _idle(pin: dict[str, Any]) -> str:
    return "green" if pin["live"] == "blue" else "blue"


def _warm(pin: dict[str, Any], margin: float = 300.0) -> bool:
    """A warm standby whose window lasts at least ``margin`` more seconds."""
    import calendar

    until = pin.get("warm_until")
    ends = calendar.timegm(time.strptime(until, "%Y-%m-%dT%H:%M:%SZ")) if until else float("inf")
    return pin.get("standby") == "warm" and pin[_idle(pin)] is not None and ends > time.time() + margin


def deploy_sandbox(deck: Path) -> Prepared:
    newest = bake_web(deck)
    return Prepared(["deploy", "sandbox", "--service", "web", "--yes"], {"web": newest}, done_already=ALREADY)


def execute_staging(deck: Path) -> Prepared:
    """An approved request to promote a web image to staging (filed as alice, approved by bob): the image dev
    runs (staging takes only images that ran in dev; one is promoted to dev first when dev runs staging's)."""
    staging, dev = live(web_pin(deck, "staging")), web_pin(deck, "dev")
    if live(dev) == staging:
        released(
            deck,
            "promote",
            other_web_image(deck, dev.get("blue"), dev.get("green"), staging),
            "dev",
            "--service",
            "web",
        )
        dev = web_pin(deck, "dev")
    image = live(dev)
    request = read_json(deck, "promote", image, "staging", "--service", "web", "--yes", "--reason", "crash matrix")
    opsdeck("approve", str(request["id"]), "--key", str(demo_key("bob")), deck=deck, check=True)
    args = ["execute", str(request["id"]), "--yes"]
    return Prepared(args, {"web": image}, done_already=("was executed already",), note=str(request["id"]))


def expire_dev(deck: Path) -> Prepared:
    """A warm standby in dev whose window has ended (ended by a commit, as the deck's clock would find it)."""
    pin = web_pin(deck, "dev")
    if not _warm(pin, margin=0):
        released(deck, "promote", other_web_image(deck, pin.get("blue"), pin.get("green")), "dev", "--service", "web")
    path = deck / "envs" / "dev" / "images.auto.tfvars.json"
    data = json.loads(path.read_text())
    data["images"]["web"]["warm_until"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    git(deck, "commit", "-q", "-m", "crash matrix: web's standby window in dev has ended", "--", str(path))
    git(deck, "push", "-q")
    return Prepared(["standby", "expire", "dev"], {"web": live(data["images"]["web"])})


def nuke_sandbox(deck: Path) -> Prepared:
    return Prepared(["nuke-rebuild", "sandbox", "--yes"], {"web": live(web_pin(deck, "sandbox"))})


def recover_staging(deck: Path) -> Prepared:
    """No copy of staging in the region yet (one left by an earlier cell is destroyed first)."""
    remove_copy(deck)
    return Prepared(["recover", "staging", "--region", REGION, "--yes"], {"web": live(web_pin(deck, "staging"))})


def remove_copy(deck: Path) -> None:
    gone = opsdeck("recover", "staging", "--region", REGION, "--destroy", "--yes", deck=deck, timeout=600)
    if gone.returncode != 0 and "there is no recovered copy" not in gone.stderr:
        raise AssertionError(f"could not remove the copy of staging in {REGION}:\n{gone.stderr}")


def orphans_delete(deck: Path) -> Prepared:
    """An instance tagged for an environment the deck does not have (as test_84 plants one)."""
    from opsdeck.core.estate.deck import Deck

    opened = Deck.open(deck)
    ec2 = opened.tools.env("dev").cloud.client("ec2")
    tags = [{"Key": "env", "Value": "qa"}, {"Key": "managed_by", "Value": "terraform"}]
    made = ec2.run_instances(
        ImageId=live(web_pin(deck, "dev")),
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )
    instance = str(made["Instances"][0]["InstanceId"])
    args = ["orphans", "--keep-images", "1", "--delete", "--yes", "--only", instance]
    return Prepared(args, done_already=(f"no orphan with id {instance}",), note=instance)


def freeze_sandbox(deck: Path) -> Prepared:
    unfreeze_sandbox(deck)
    return Prepared(["freeze", "sandbox", "--until", "2h", "--reason", "crash matrix"])


def unfreeze_sandbox(deck: Path) -> None:
    opsdeck("unfreeze", "sandbox", deck=deck, check=True)


APPLY = ("apply",)
OPERATIONS = [
    Operation("promote (replace)", "promote", "sandbox", RELEASE, promote_sandbox, terraform=APPLY),
    Operation(
        "promote (blue/green)",
        "promote",
        "dev",
        BLUE_GREEN,
        promote_dev,
        unlocked=frozenset({"sync", "prepare switch back", "policy#3"}),  # the switch back is made unlocked
        blue_green=True,
        terraform=("apply", "apply#2"),
    ),
    Operation(
        "rollback (replace)",
        "rollback",
        "sandbox",
        tuple(p for p in RELEASE if p != "distribute"),
        rollback_sandbox,
        terraform=APPLY,
    ),
    Operation("rollback (instant)", "rollback", "dev", INSTANT, rollback_dev, blue_green=True, terraform=APPLY),
    Operation("deploy", "deploy", "sandbox", RELEASE, deploy_sandbox, terraform=APPLY),
    Operation("execute", "promote", "staging", EXECUTE, execute_staging, terraform=APPLY),
    Operation("standby expire", "standby-expire", "dev", EXPIRE, expire_dev, blue_green=True, terraform=APPLY),
    Operation(
        "nuke-rebuild",
        "nuke-rebuild",
        "sandbox",
        NUKE,
        nuke_sandbox,
        rebuilds=True,
        terraform=("terraform destroy", "apply"),
    ),
    Operation("recover", "recover", "staging", RECOVER, recover_staging, cleanup=remove_copy, terraform=APPLY),
    Operation("orphans delete", "orphans-delete", None, ORPHANS, orphans_delete, locks=False),
    Operation("freeze", "freeze", "sandbox", FREEZE, freeze_sandbox, locks=False, cleanup=unfreeze_sandbox),
]
BY_NAME = {op.name: op for op in OPERATIONS}
