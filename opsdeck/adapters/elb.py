"""Load balancing through boto3 (elbv2): target groups with their targets' health, and listener rules with
their host names and the target group each forwards to, found by the tags of their load balancer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opsdeck.core.types.cloud import Rule, TargetGroup

if TYPE_CHECKING:
    from opsdeck.adapters.aws import Aws


def _tags_of(aws: Aws, arns: list[str]) -> dict[str, dict[str, str]]:
    elb = aws.client("elbv2")
    found: dict[str, dict[str, str]] = {}
    for start in range(0, len(arns), 20):
        raw = elb.describe_tags(ResourceArns=arns[start : start + 20])
        for item in raw.get("TagDescriptions", []):
            found[item["ResourceArn"]] = {t["Key"]: t["Value"] for t in item.get("Tags", [])}
    return found


def target_groups(aws: Aws, tag_key: str, value: str) -> list[TargetGroup]:
    """Target groups tagged ``tag_key = value``, with each target's health."""
    elb = aws.client("elbv2")
    with aws.errors("aws elbv2 describe-target-groups"):
        raw = [g for page in elb.get_paginator("describe_target_groups").paginate() for g in page["TargetGroups"]]
        tags = _tags_of(aws, [g["TargetGroupArn"] for g in raw])
        groups = []
        for g in raw:
            arn = g["TargetGroupArn"]
            if tags.get(arn, {}).get(tag_key) != value:
                continue
            health = elb.describe_target_health(TargetGroupArn=arn).get("TargetHealthDescriptions", [])
            targets = {h["Target"]["Id"]: h.get("TargetHealth", {}).get("State", "unknown") for h in health}
            groups.append(TargetGroup(arn, g.get("TargetGroupName", ""), tags.get(arn, {}), targets))
    return groups


def listener_rules(aws: Aws, tag_key: str, value: str) -> list[Rule]:
    """The rules on the listeners of load balancers tagged ``tag_key = value`` (default rules left out)."""
    elb = aws.client("elbv2")
    with aws.errors("aws elbv2 describe-rules"):
        lbs = [b for page in elb.get_paginator("describe_load_balancers").paginate() for b in page["LoadBalancers"]]
        lb_tags = _tags_of(aws, [b["LoadBalancerArn"] for b in lbs])
        raw_rules = []
        for lb in lbs:
            if lb_tags.get(lb["LoadBalancerArn"], {}).get(tag_key) != value:
                continue
            for listener in elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"]).get("Listeners", []):
                rules = elb.describe_rules(ListenerArn=listener["ListenerArn"]).get("Rules", [])
                raw_rules += [(r, lb.get("DNSName", "")) for r in rules if not r.get("IsDefault")]
        tags = _tags_of(aws, [r["RuleArn"] for r, _ in raw_rules])
    found = []
    for r, dns in raw_rules:
        hosts: list[str] = []
        for condition in r.get("Conditions", []):
            if condition.get("Field") == "host-header":
                hosts += (condition.get("HostHeaderConfig") or {}).get("Values") or condition.get("Values", [])
        forward = next((a for a in r.get("Actions", []) if a.get("Type") == "forward"), None)
        target = None
        if forward is not None:
            target = forward.get("TargetGroupArn") or next(
                (t["TargetGroupArn"] for t in (forward.get("ForwardConfig") or {}).get("TargetGroups", [])), None
            )
        found.append(Rule(r["RuleArn"], tuple(hosts), target, tags.get(r["RuleArn"], {}), dns))
    return found


# -- moving traffic with the load balancer's own API (an instant rollback: core/release/traffic.py) ---------


def target_health(aws: Aws, target_group: str) -> dict[str, str]:
    """Each registered target of the group and its state (healthy, initial, unhealthy, draining...)."""
    with aws.errors(f"aws elbv2 describe-target-health {target_group.rsplit('/', 2)[-2]}"):
        raw = aws.client("elbv2").describe_target_health(TargetGroupArn=target_group)
    return {
        h["Target"]["Id"]: h.get("TargetHealth", {}).get("State", "unknown") for h in raw["TargetHealthDescriptions"]
    }


def forward(aws: Aws, rule: str, target_group: str) -> None:
    """Make the rule forward everything to ``target_group`` (its conditions stay as they are)."""
    with aws.errors("aws elbv2 modify-rule"):
        aws.client("elbv2").modify_rule(RuleArn=rule, Actions=[{"Type": "forward", "TargetGroupArn": target_group}])


def rule_targets(aws: Aws, rules: list[str]) -> dict[str, str | None]:
    """Where each rule forwards now (its target group's ARN; None when it forwards nowhere)."""
    with aws.errors("aws elbv2 describe-rules"):
        raw = aws.client("elbv2").describe_rules(RuleArns=rules)["Rules"]
    found: dict[str, str | None] = {}
    for rule in raw:
        forwarding: dict[str, Any] = next((a for a in rule.get("Actions", []) if a.get("Type") == "forward"), {})
        target = forwarding.get("TargetGroupArn") or next(
            (t["TargetGroupArn"] for t in (forwarding.get("ForwardConfig") or {}).get("TargetGroups", [])), None
        )
        found[rule["RuleArn"]] = target
    return found
