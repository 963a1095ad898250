"""One environment's root module surveyed: where it runs, what images feed, the files that set them, its tags."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from opsdeck.core.adopt.groups import Rollout, Sink, rollout_of, sinks, tags_of
from opsdeck.core.adopt.modules import ModuleNode, ModuleReader, Unfollowed, backend_of
from opsdeck.core.adopt.values import Evaluator, Feed, Unknown, Value
from opsdeck.core.estate.sections import ROLE_ARN
from opsdeck.core.types.hcl import Expr, HclError, shown

IMAGE_INPUT = re.compile(r"^(ami|ami_id|image|image_id|.+_ami|.+_ami_id|.+_image_id)$")


@dataclass
class Fed:
    """One thing an image is fed to in an environment: a service there."""

    address: str  # where the image goes in: module.web.aws_launch_template.this.image_id
    steps: tuple[str, ...]  # the module call names, then the resource's name (names for the service)
    feed: Feed | None  # the root variable (and key) it comes from
    problem: str | None  # why there is no feed
    rollout: Rollout
    tags: dict[str, str] = field(default_factory=dict)  # its group's tags whose value is known
    pin_file: str | None = None  # the tfvars file (in the root module) that sets the feed
    pin_value: str | None = None
    also: list[str] = field(default_factory=list)  # other resources fed the same image


@dataclass
class EnvSurvey:
    """What one root module says about its environment."""

    name: str
    path: str  # relative to the repository
    backend: str
    region: str | None = None
    region_from: str = ""
    role: str | None = None
    profile: str | None = None
    account: str | None = None
    feds: list[Fed] = field(default_factory=list)
    tags: dict[str, Counter[str]] = field(default_factory=dict)  # key -> values seen on its resources
    tfvars: dict[str, dict[str, Expr]] = field(default_factory=dict)  # file -> what it sets, Terraform's order
    unfollowed: list[Unfollowed] = field(default_factory=list)
    todos: list[str] = field(default_factory=list)


def tfvars_files(root: Path) -> list[Path]:
    """The variable files Terraform loads by itself, in its order (a later file wins)."""
    auto = sorted(
        (p for p in root.iterdir() if p.name.endswith((".auto.tfvars", ".auto.tfvars.json"))), key=lambda p: p.name
    )
    fixed = [root / n for n in ("terraform.tfvars", "terraform.tfvars.json") if (root / n).is_file()]
    return fixed + [p for p in auto if p.is_file()]


def survey(reader: ModuleReader, root: Path, name: str) -> EnvSurvey:
    backend = next((b for b in (backend_of(x) for x in reader.blocks(root)) if b), "")
    env = EnvSurvey(name, reader.rel(root), backend)
    for path in tfvars_files(root):
        try:
            env.tfvars[path.name] = reader.files.read_tfvars(path, reader.rel(path))
        except HclError as exc:
            env.todos.append(f"{exc}: its values are not read")
    others = sorted(p.name for p in root.glob("*.tfvars*") if p.is_file() and p not in tfvars_files(root))
    if others:
        env.todos.append(
            f"{env.path} has variable files Terraform does not load by itself ({', '.join(others)}): opsdeck "
            "takes one root module per environment, whose pins Terraform loads without -var-file"
        )
    own = ModuleNode((), root, reader.blocks(root))  # the root module's own variables
    values = Evaluator(lambda variable: _root_value(own, env, variable))
    feeds = Evaluator(lambda variable: Feed(variable))
    tree, env.unfollowed = reader.tree(root, lambda parent, expr: _instances(values, parent, expr))
    _where(tree, env, values)
    for sink in sinks(tree):
        _add_sink(tree, env, sink, feeds, values)
    for call in env.unfollowed:
        _add_unfollowed(env, call, feeds, values)
    env.tags = _all_tags(tree, env, values)
    return env


def _instances(values: Evaluator, parent: ModuleNode, for_each: Expr) -> list[tuple[str, object]] | None:
    """A module call's for_each instances, when its caller's map or set of names can be read."""
    items = values.eval(parent, for_each)
    if isinstance(items, dict):
        return list(items.items())
    if isinstance(items, tuple) and all(isinstance(i, str) for i in items):
        return [(str(i), i) for i in items]  # a set of names: each.value is each.key
    return None


def _root_value(tree: ModuleNode, env: EnvSurvey, variable: str) -> Value:
    plain = Evaluator(lambda name: Unknown(f"var.{name} inside a variable file"))
    for file in reversed(list(env.tfvars)):
        if variable in env.tfvars[file]:
            return plain.eval(tree, env.tfvars[file][variable])
    declared = tree.variable(variable)
    if declared is not None and "default" in declared.attrs:
        return plain.eval(tree, declared.attrs["default"])
    return Unknown(f"var.{variable} is set by no variable file in {env.path}")


def _where(tree: ModuleNode, env: EnvSurvey, values: Evaluator) -> None:
    """Region, role, account and profile: from the default aws provider, else the backend's region."""
    provider = next((b for b in tree.of_type("provider") if b.labels == ("aws",) and "alias" not in b.attrs), None)
    if provider is not None:
        region = values.eval(tree, provider.attrs.get("region"))
        if isinstance(region, str) and region:
            env.region, env.region_from = region, "its aws provider"
        for assume in provider.children("assume_role"):
            role = values.eval(tree, assume.attrs.get("role_arn"))
            if isinstance(role, str) and (match := ROLE_ARN.match(role)):
                env.role, env.account = role, match.group(1)
        profile = values.eval(tree, provider.attrs.get("profile"))
        if isinstance(profile, str) and profile and env.role is None:
            env.profile = profile
        accounts = values.eval(tree, provider.attrs.get("allowed_account_ids"))
        if isinstance(accounts, tuple) and len(accounts) == 1 and isinstance(accounts[0], str):
            env.account = env.account or accounts[0]
    if env.region is None:
        for block in tree.of_type("terraform"):
            for backend in block.children("backend"):
                literal = backend.attrs.get("region")
                if isinstance(literal, str) and literal:
                    env.region, env.region_from = literal, f'its backend "{backend.labels[0]}"'


def _known(tags: dict[str, Value]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if isinstance(v, str)}


def _add_sink(tree: ModuleNode, env: EnvSurvey, sink: Sink, feeds: Evaluator, values: Evaluator) -> None:
    image = feeds.eval(sink.node, sink.resource.attrs[sink.attribute])
    address = f"{sink.address}.{sink.attribute}"
    if isinstance(image, Feed):
        same = next((f for f in env.feds if f.feed == image), None)
        if same is not None:  # a template and an instance fed the same image: one service
            same.also.append(address)
            return
    rollout = rollout_of(tree, sink, feeds, image)
    group = rollout.group or sink
    tags = _known(tags_of(group.node, group.resource, values))
    if group is not sink:  # what the template gives its instances counts too, below the group's own
        tags = {**_known(tags_of(sink.node, sink.resource, values)), **tags}
    fed = Fed(address, (*sink.node.names, sink.name), None, None, rollout, tags)
    if isinstance(image, Feed):
        fed.feed = image
        _pin(env, fed)
    elif isinstance(image, str):
        fed.problem = f"{address} is the literal {image!r}: opsdeck pins an image in a variable"
    elif isinstance(image, Unknown):
        fed.problem = f"{address} comes from {image.why}: opsdeck pins an image in a variable"
    else:
        fed.problem = f"{address} is not an image id"
    env.feds.append(fed)


def _add_unfollowed(env: EnvSurvey, call: Unfollowed, feeds: Evaluator, values: Evaluator) -> None:
    """A module that was not read, given an input that looks like an image: probably a service."""
    for key, expr in call.call.attrs.items():
        if not IMAGE_INPUT.match(key):
            continue
        image = feeds.eval(call.parent, expr)
        if not isinstance(image, Feed) or any(f.feed == image for f in env.feds):
            continue
        why = f"could not follow {call.address}: {call.why}"
        tags = values.eval(call.parent, call.call.attrs.get("tags"))
        rollout = Rollout(None, f"unknown: {call.address} was not followed")
        fed = Fed(f"{call.address}.{key}", (*call.parent.names, call.call.labels[0]), image, None, rollout)
        fed.tags = _known(tags) if isinstance(tags, dict) else {}
        env.todos.append(f"{why}; its input {key} = {shown(expr)} is taken to feed an image: check it")
        _pin(env, fed)
        env.feds.append(fed)


def _pin(env: EnvSurvey, fed: Fed) -> None:
    """The variable file that sets the feed: the last one Terraform loads that sets its variable."""
    assert fed.feed is not None
    for file in reversed(list(env.tfvars)):
        if fed.feed.variable not in env.tfvars[file]:
            continue
        value: Expr = env.tfvars[file][fed.feed.variable]
        for key in fed.feed.keys:
            value = value.get(str(key)) if isinstance(value, dict) else None
        fed.pin_file = file
        fed.pin_value = value if isinstance(value, str) else None
        return


def _all_tags(tree: ModuleNode, env: EnvSurvey, values: Evaluator) -> dict[str, Counter[str]]:
    """Every tag value seen on the environment's resources (provider default tags count once each)."""
    seen: dict[str, Counter[str]] = {}

    def count(tags: dict[str, Value]) -> None:
        for key, value in _known(tags).items():
            seen.setdefault(key, Counter())[value] += 1

    for node in tree.walk():
        for block in node.of_type("resource"):
            count(tags_of(node, block, values))
    for provider in tree.of_type("provider"):
        for default in provider.children("default_tags"):
            tags = values.eval(tree, default.attrs.get("tags"))
            count(tags if isinstance(tags, dict) else {})
    for call in env.unfollowed:
        tags = values.eval(call.parent, call.call.attrs.get("tags"))
        count(tags if isinstance(tags, dict) else {})
    return seen
