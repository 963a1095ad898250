"""The commented opsdeck.toml draft of an adopted estate, and what was found as JSON.

Every value is written as TOML by hand (the standard library reads TOML but does not write it);
strings are JSON strings, which TOML's basic strings read the same. A value that could not be
inferred is ``"<TODO>"`` where the deck's checks would refuse it, with a ``# TODO:`` line at the spot.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any, get_args

from opsdeck.core.adopt.infer import TODO, Adoption, EnvDraft, ServiceDraft
from opsdeck.core.adopt.naming import PRODUCTION
from opsdeck.core.estate.sections import Rollout

WIDTH = 110


def _q(value: str) -> str:
    return json.dumps(value)


def _comment(text: str, lead: str = "# ") -> list[str]:
    rest = "#" + " " * (len(lead) + 1)  # a wrapped line stands in from the first
    return textwrap.wrap(text, WIDTH, initial_indent=lead, subsequent_indent=rest, break_on_hyphens=False)


def _todos(adoption: Adoption, where: str) -> list[str]:
    return [line for text in adoption.todos_at(where) for line in _comment(text, "# TODO: ")]


def render(adoption: Adoption) -> str:
    """The draft's text."""
    envs = ", ".join(e.survey.name for e in adoption.envs)
    services = ", ".join(s.name for s in adoption.services) or "none"
    lines = [
        "# opsdeck deck drafted by `opsdeck init` from this repository's Terraform. Review every line, resolve",
        '# each TODO (a "<TODO>" value fails the deck\'s checks until it is given), then commit it.',
        f"# Environments: {envs}. Services: {services}.",
        *_todos(adoption, ""),
        f"name = {_q(adoption.name)}",
        'description = "Drafted by opsdeck init from the Terraform in this repository."',
        "",
        "[aws]",
        *_todos(adoption, "aws"),
        "# The region most environments use (each environment below says its own).",
        f"region = {_q(adoption.region or TODO)}",
        "# Real AWS accounts (true: opsdeck's embedded local cloud).",
        "local = false",
    ]
    if adoption.base_recipe:
        lines += [
            "",
            "[base]",
            "# The base image every service's image builds on.",
            f"recipe = {_q(adoption.base_recipe)}",
        ]
    lines += ["", *_conventions(adoption)]
    if not adoption.services:
        lines += [*_todos(adoption, "services"), "# [services.NAME]", '# recipe = "packer/NAME.json"', ""]
    for service in adoption.services:
        lines += [*_service(adoption, service), ""]
    for env in adoption.envs:
        lines += [*_environment(adoption, env), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _conventions(adoption: Adoption) -> list[str]:
    env_tag, service_tag = adoption.env_tag, adoption.service_tag
    lines = ["[conventions]", *_todos(adoption, "conventions")]
    lines += [*_comment(env_tag.why), f"env_tag = {_q(env_tag.key or TODO)}"]
    if service_tag.key is not None or adoption.services:
        lines += [*_comment(service_tag.why), f"service_tag = {_q(service_tag.key or TODO)}"]
    if adoption.pin_file is not None and adoption.pin_variable is not None:
        lines += [
            "# Each service's pin: the variable feeding its image, in the variable file of each environment's",
            "# root module that sets it.",
            f"pin_file = {_q(adoption.pin_file)}",
            f"pin_variable = {_q(adoption.pin_variable)}",
        ]
    return [*lines, ""]


def _service(adoption: Adoption, service: ServiceDraft) -> list[str]:
    lines = [f"[services.{service.name}]"]
    width = max(len(e) for e in service.envs) if service.envs else 0
    for env, fed in service.envs.items():
        source = f"var.{fed.feed.label}" if fed.feed else "?"
        pinned = f" ({fed.pin_file}: {fed.pin_value or '?'})" if fed.pin_file else ""
        lines += _comment(f"{env + ':':<{width + 1}} {fed.address} <- {source}{pinned}")
        lines += [line for address in fed.also for line in _comment(f"{'':<{width + 1}} and {address}")]
    lines += _todos(adoption, f"services.{service.name}")
    lines.append(f"recipe = {_q(service.recipe)}")
    if service.pin_file is not None:
        lines.append(f"pin_file = {_q(service.pin_file)}")
    if service.pin_variable is not None:
        lines.append(f"pin_variable = {_q(service.pin_variable)}")
    return lines


def _environment(adoption: Adoption, env: EnvDraft) -> list[str]:
    found = env.survey
    lines = [f"[environments.{found.name}]"]
    lines += _comment(f"Root module {found.path} (backend {_q(found.backend)}).")
    lines += _todos(adoption, f"environments.{found.name}")
    if env.path is not None:
        lines.append(f"path = {_q(env.path)}")
    if found.region is not None:
        lines += [f"# From {found.region_from}.", f"region = {_q(found.region)}"]
    if found.role is not None:
        lines += ["# The role its aws provider assumes.", f"role = {_q(found.role)}"]
    elif found.profile is not None:
        lines += ["# The profile its aws provider uses.", f"profile = {_q(found.profile)}"]
    if found.account is not None:
        lines.append(f"account = {_q(found.account)}")
    else:
        lines.append('# account = "123456789012"  # its AWS account id: opsdeck checks it before any change')
    lines += _rollout(adoption, env)
    if env.promote_from is not None:
        lines += [f"# Guessed from the names: only an image that ran in {env.promote_from} may come here.",
                  f"promote_from = {_q(env.promote_from)}"]  # fmt: skip
    if found.name in PRODUCTION:
        lines += ["# protected = true  # production? read-only unless break-glass", '# approval = "typed"']
    return lines


def _rollout(adoption: Adoption, env: EnvDraft) -> list[str]:
    name = env.survey.name
    lines = ["# How each service takes a new image here:"]
    for service in adoption.services:
        fed = service.envs.get(name)
        if fed is not None:
            kind = fed.rollout.kind or "?"
            lines += _comment(f"{service.name}: {kind}: {fed.rollout.why}", "#   ")
    if env.rollout is None:
        return lines if len(lines) > 1 else []
    if env.rollout == "auto":
        lines.append('# "auto": each group rolls out the way its Terraform does.')
    if env.rollout not in get_args(Rollout):
        lines += _comment(rollout_note(env.rollout), "# note: ")
    return [*lines, f"rollout = {_q(env.rollout)}"]


def rollout_note(value: str) -> str:
    accepted = " and ".join(f'"{v}"' for v in get_args(Rollout))
    return f"opsdeck accepts {accepted} today; {_q(value)} comes with the rollout work"


def adoption_json(adoption: Adoption) -> dict[str, Any]:
    """What was found, for scripts: environments, services, variables, files, tags, rollouts, TODOs."""
    return {
        "name": adoption.name,
        "region": adoption.region,
        "conventions": {
            "env_tag": adoption.env_tag.key,
            "service_tag": adoption.service_tag.key,
            "pin_file": adoption.pin_file,
            "pin_variable": adoption.pin_variable,
        },
        "environments": [_env_json(e) for e in adoption.envs],
        "services": [_service_json(s) for s in adoption.services],
        "base_recipe": adoption.base_recipe,
        "unresolved": [{"where": t.where, "text": t.text} for t in adoption.todos],
    }


def _env_json(env: EnvDraft) -> dict[str, Any]:
    found = env.survey
    return {
        "name": found.name,
        "path": found.path,
        "backend": found.backend,
        "region": found.region,
        "role": found.role,
        "profile": found.profile,
        "account": found.account,
        "rollout": env.rollout,
        "promote_from": env.promote_from,
        "variable_files": list(found.tfvars),
        "tags": {k: dict(v) for k, v in sorted(found.tags.items())},
        "not_followed": [{"module": u.address, "source": u.source, "why": u.why} for u in found.unfollowed],
    }


def _service_json(service: ServiceDraft) -> dict[str, Any]:
    return {
        "name": service.name,
        "recipe": service.recipe,
        "recipe_found": service.recipe_found,
        "pin_file": service.pin_file,
        "pin_variable": service.pin_variable,
        "environments": {
            env: {
                "fed": fed.address,
                "also": fed.also,
                "variable": fed.feed.variable if fed.feed else None,
                "keys": list(fed.feed.keys) if fed.feed else [],
                "file": fed.pin_file,
                "image": fed.pin_value,
                "problem": fed.problem,
                "rollout": fed.rollout.kind,
                "rollout_why": fed.rollout.why,
                "tags": fed.tags,
            }
            for env, fed in service.envs.items()
        },
    }
