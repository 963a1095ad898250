"""What boots an image in an environment, and how a new image would reach its instances.

An image is fed to a launch template's ``image_id``, a launch configuration's ``image_id`` or an
instance's ``ami``. A template reaches instances through the auto scaling group that uses it, and
how that group takes a new image is its rollout: a new group per image (named after its template,
"replace"), an instance refresh when the template version it follows changes ("instance-refresh"),
a new instance ("instances"), or nothing at all (instances keep the image they booted with).
"""

from __future__ import annotations

from dataclasses import dataclass

from opsdeck.core.adopt.modules import ModuleNode
from opsdeck.core.adopt.values import Evaluator, Feed, Value, dependencies, refers_to
from opsdeck.core.types.hcl import Block, Ref, refs

IMAGE_ATTRIBUTE = {"aws_launch_template": "image_id", "aws_launch_configuration": "image_id", "aws_instance": "ami"}
ROLLS_NOTHING = "rolls nothing: instances keep the old image"


@dataclass(frozen=True)
class Sink:
    """A resource an image is fed to."""

    node: ModuleNode
    resource: Block

    @property
    def kind(self) -> str:
        return self.resource.labels[0]

    @property
    def name(self) -> str:
        return self.resource.labels[1]

    @property
    def attribute(self) -> str:
        return IMAGE_ATTRIBUTE[self.kind]

    @property
    def address(self) -> str:
        return f"{self.node.prefix()}{self.kind}.{self.name}"


@dataclass(frozen=True)
class Rollout:
    """How a group would take a new image: its kind (None: it rolls nothing, or it is unknown) and why."""

    kind: str | None
    why: str
    group: Sink | None = None  # the auto scaling group or instance whose tags name the service


def sinks(tree: ModuleNode) -> list[Sink]:
    return [
        Sink(node, block)
        for node in tree.walk()
        for kind in IMAGE_ATTRIBUTE
        for block in node.resources(kind)
        if IMAGE_ATTRIBUTE[kind] in block.attrs
    ]


def _ignores(resource: Block, attribute: str) -> bool:
    for lifecycle in resource.children("lifecycle"):
        ignored = lifecycle.attrs.get("ignore_changes")
        if ignored == "all" or any(r.parts == (attribute,) for r in refs(ignored)):
            return True
        if isinstance(ignored, tuple) and attribute in ignored:
            return True
    return False


def _create_before_destroy(resource: Block) -> bool:
    return any(lc.attrs.get("create_before_destroy") is True for lc in resource.children("lifecycle"))


def _template_blocks(group: Block) -> list[Block]:
    """Where an auto scaling group names its launch template (plain, or in a mixed instances policy)."""
    found = list(group.children("launch_template"))
    for policy in group.children("mixed_instances_policy"):
        for template in policy.children("launch_template"):
            found.extend(template.children("launch_template_specification"))
    return found


def groups_using(tree: ModuleNode, sink: Sink) -> list[Sink]:
    """The auto scaling groups of the environment that launch from ``sink`` (a template or configuration)."""
    found: list[Sink] = []
    for node in tree.walk():
        for group in node.resources("aws_autoscaling_group"):
            exprs = [v for b in _template_blocks(group) for k, v in b.attrs.items() if k != "version"]
            if sink.kind == "aws_launch_configuration" and "launch_configuration" in group.attrs:
                exprs.append(group.attrs["launch_configuration"])
            if any(
                refers_to(where, ref, sink.node, sink.kind, sink.name)
                for expr in exprs
                for where, ref in dependencies(node, expr)
            ):
                found.append(Sink(node, group))
    return found


def rollout_of(tree: ModuleNode, sink: Sink, feeds: Evaluator, image: Value) -> Rollout:
    """How the thing ``sink`` boots takes a new image (``image`` is what feeds it)."""
    if _ignores(sink.resource, sink.attribute):
        return Rollout(None, f"{ROLLS_NOTHING} ({sink.address} ignores changes to {sink.attribute})", sink)
    if sink.kind == "aws_instance":
        return Rollout("instances", f"{sink.address}: a new image replaces the instance", sink)
    groups = groups_using(tree, sink)
    if not groups:
        return Rollout(None, f"no auto scaling group in this environment launches from {sink.address}")
    group = groups[0]
    others = ", ".join(g.address for g in groups[1:])
    also = f"; {others} launches from it too" if others else ""
    if _named_after(tree, group, sink, feeds, image):
        order = (
            "" if _create_before_destroy(group.resource) else "; without create_before_destroy the old one goes first"
        )
        why = f"{group.address} is named after {sink.address}: a new image brings a new group{order}"
        return Rollout("replace", why + also, group)
    refresh = _instance_refresh(group)
    version = _version(group, sink)
    if refresh is not None and version is None:
        why = (
            f"{group.address} follows {sink.address}'s version and refreshes its instances (instance_refresh{refresh})"
        )
        return Rollout("instance-refresh", why + also, group)
    if version is None:
        why = "has no instance_refresh block and is not named after its template"
    elif refresh is None:
        why = f"{version} and has no instance_refresh block"
    else:
        why = f"{version}: a new image changes no setting of the group, so no refresh starts"
    return Rollout(None, f"{ROLLS_NOTHING} ({group.address} {why}){also}", group)


def _named_after(tree: ModuleNode, group: Sink, sink: Sink, feeds: Evaluator, image: Value) -> bool:
    """The group's name changes with the image: it is made of the template's id or name, or the image."""
    for key in ("name", "name_prefix"):
        if key not in group.resource.attrs:
            continue
        for where, ref in dependencies(group.node, group.resource.attrs[key]):
            if refers_to(where, ref, sink.node, sink.kind, sink.name):
                return True
            if isinstance(image, Feed) and ref.parts[0] in ("var", "local") and feeds.eval(where, ref) == image:
                return True
    return False


def _instance_refresh(group: Sink) -> str | None:
    """None without an instance_refresh block; else a note ("" when it is simply there)."""
    resource = group.resource
    if any(b.type == "instance_refresh" for b in resource.blocks):
        return ""
    for dynamic in resource.blocks:
        if dynamic.type != "dynamic" or dynamic.labels != ("instance_refresh",):
            continue
        found = refs(dynamic.attrs.get("for_each"))
        inputs = list(dict.fromkeys(str(r.parts[1]) for r in found if r.parts[0] == "var" and len(r.parts) > 1))
        call = group.node.call
        if inputs and call is not None and not any(name in call.attrs for name in inputs):
            return None  # the module has a switch for it, and its caller leaves it off
        return ", dynamic" if not inputs else f", when {group.node.label} sets {', '.join(inputs)}"
    return None


def _version(group: Sink, sink: Sink) -> str | None:
    """None when the group follows the template's newest version (a pinned version expression); else
    why a new template version changes nothing in the group."""
    if sink.kind == "aws_launch_configuration":
        return None  # a new image is a new configuration: the group's setting changes
    versions = [b.attrs["version"] for b in _template_blocks(group.resource) if "version" in b.attrs]
    if not versions:
        return "runs its template's default version"
    version = versions[0]
    if version in ("$Latest", "$Default"):
        return f'runs version "{version}"'
    if isinstance(version, str | int) and not isinstance(version, bool):
        return f"is pinned to version {version}"
    return None


def tags_of(node: ModuleNode, resource: Block, values: Evaluator) -> dict[str, Value]:
    """The tags a resource sets, as far as they can be known (``tags``, ``tag`` blocks, dynamic tags
    from a map, a launch template's tag specifications)."""
    found: dict[str, Value] = {}
    for source in [resource, *resource.children("tag_specifications")]:
        if "tags" in source.attrs:
            found.update(_tag_map(values.eval(node, source.attrs["tags"])))
    for tag in (b for b in resource.blocks if b.type == "tag"):
        key, value = values.eval(node, tag.attrs.get("key")), values.eval(node, tag.attrs.get("value"))
        if isinstance(key, str):
            found[key] = value
    for dynamic in (b for b in resource.blocks if b.type == "dynamic" and b.labels == ("tag",)):
        found.update(_dynamic_tags(node, dynamic, values))
    return found


def _tag_map(value: Value) -> dict[str, Value]:
    if isinstance(value, dict):
        return dict(value)
    found: dict[str, Value] = {}
    if isinstance(value, tuple):  # an auto scaling group's older form: [{key = ..., value = ...}]
        for item in value:
            if isinstance(item, dict) and isinstance(key := item.get("key"), str):
                found[key] = item.get("value")
    return found


def _dynamic_tags(node: ModuleNode, dynamic: Block, values: Evaluator) -> dict[str, Value]:
    """``dynamic "tag" { for_each = <map> content { key = tag.key value = tag.value } }``."""
    iterator = dynamic.attrs.get("iterator")
    name = iterator.parts[0] if isinstance(iterator, Ref) else "tag"
    items = values.eval(node, dynamic.attrs.get("for_each"))
    found: dict[str, Value] = {}
    for content in (b for b in dynamic.blocks if b.type == "content"):
        key_ref, value_ref = content.attrs.get("key"), content.attrs.get("value")
        if isinstance(items, dict) and key_ref == Ref((name, "key")) and value_ref == Ref((name, "value")):
            found.update(items)
        elif isinstance(items, tuple):
            found.update(_tag_map(items))
    return found
