"""Moving traffic with the load balancer's own API: a listener rule pointed at another target group,
that group's targets' health, and where rules forward now. Three calls where a Terraform apply of the
same switch takes seconds; Terraform's state is brought in line after (core/release/traffic.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opsdeck.adapters.aws import Aws


class Traffic:
    """ELBv2 rules and target health in one account and region (blocking calls)."""

    def __init__(self, aws: Aws) -> None:
        self.aws = aws

    def target_health(self, target_group: str) -> dict[str, str]:
        """Each registered target of the group and its state (healthy, initial, unhealthy, draining...)."""
        with self.aws.errors(f"aws elbv2 describe-target-health {target_group.rsplit('/', 2)[-2]}"):
            raw = self.aws.client("elbv2").describe_target_health(TargetGroupArn=target_group)
        return {
            h["Target"]["Id"]: h.get("TargetHealth", {}).get("State", "unknown")
            for h in raw["TargetHealthDescriptions"]
        }

    def forward(self, rule: str, target_group: str) -> None:
        """Make the rule forward everything to ``target_group`` (its conditions stay as they are)."""
        with self.aws.errors("aws elbv2 modify-rule"):
            self.aws.client("elbv2").modify_rule(
                RuleArn=rule, Actions=[{"Type": "forward", "TargetGroupArn": target_group}]
            )

    def rule_targets(self, rules: list[str]) -> dict[str, str | None]:
        """Where each rule forwards now (its target group's ARN; None when it forwards nowhere)."""
        with self.aws.errors("aws elbv2 describe-rules"):
            raw = self.aws.client("elbv2").describe_rules(RuleArns=rules)["Rules"]
        found: dict[str, str | None] = {}
        for rule in raw:
            forward: dict[str, Any] = next((a for a in rule.get("Actions", []) if a.get("Type") == "forward"), {})
            target = forward.get("TargetGroupArn") or next(
                (t["TargetGroupArn"] for t in (forward.get("ForwardConfig") or {}).get("TargetGroups", [])), None
            )
            found[rule["RuleArn"]] = target
        return found
