"""Names read from an estate's Terraform: the tag keys that name environments and services, and
each service's name (its service tag, its map key, or the module call or resource it lives in)."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from dataclasses import dataclass, field

from opsdeck.core.adopt.survey import EnvSurvey, Fed

# Tie-breakers only: a key that names every environment (or service) wins whatever it is called.
ENV_KEYS = ("environment", "env", "stage", "tier")
SERVICE_KEYS = ("service", "app", "application", "component", "role")
NOT_A_SERVICE_TAG = ("name",)
LADDER = (
    "sandbox", "dev", "development", "test", "testing", "qa", "uat", "stage", "staging",
    "preprod", "pre-prod", "prod", "production", "live", "prd",
)  # fmt: skip
PRODUCTION = ("prod", "production", "live", "prd")


def slug(text: str, fallback: str) -> str:
    """``text`` as an opsdeck name (lower-case letters, digits and dashes, a letter first)."""
    name = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if not name or not name[0].isalpha():
        name = f"{fallback}-{name}" if name else fallback
    return name[:31].rstrip("-")


@dataclass
class TagChoice:
    """A tag key chosen for a convention: the key (None: none fits), why, and what is missing."""

    key: str | None
    why: str
    gaps: list[str] = field(default_factory=list)


def env_tag(envs: list[EnvSurvey]) -> TagChoice:
    """The key whose value is the environment's name on its resources, in every environment."""
    keys = sorted({k for e in envs for k in e.tags})

    def score(key: str) -> tuple[int, int, int]:
        named = sum(1 for e in envs if e.name in e.tags.get(key, Counter()))
        count = sum(e.tags.get(key, Counter())[e.name] for e in envs)
        preferred = -ENV_KEYS.index(key.lower()) if key.lower() in ENV_KEYS else -len(ENV_KEYS)
        return named, preferred, count

    ranked = sorted((k for k in keys if score(k)[0] > 0), key=score, reverse=True)
    if not ranked:
        seen = ", ".join(keys[:8]) or "none"
        return TagChoice(None, f"no tag's value is an environment's name (tag keys seen: {seen})")
    key = ranked[0]
    count = score(key)[2]
    gaps = [
        f"{key} is not {e.name} on any resource of {e.path} (values there: {_values(e.tags.get(key))})"
        for e in envs
        if e.name not in e.tags.get(key, Counter())
    ]
    return TagChoice(key, f"{key} = <the environment's name> on {count} resources", gaps)


def service_tag(envs: list[EnvSurvey], env_key: str | None) -> TagChoice:
    """The key whose value differs between an environment's services and is the same for each
    service in every environment (on its group or instances)."""
    feds = [(e, f) for e in envs for f in e.feds]
    if not feds:
        return TagChoice(None, "no service found")
    keys = sorted({k for _, f in feds for k in f.tags if k != env_key and k.lower() not in NOT_A_SERVICE_TAG})

    def fits(key: str) -> bool:
        tells_apart = False
        for env in envs:
            values = [f.tags[key] for f in env.feds if key in f.tags]
            if len(values) != len(set(values)) or env.name in values:
                return False  # two services of one environment with one value: it does not tell them apart
            tells_apart = tells_apart or len(values) > 1
        # One service per environment: any constant tag would do, so only a key called so counts.
        return tells_apart or key.lower() in SERVICE_KEYS

    def score(key: str) -> tuple[int, int]:
        tagged = sum(1 for _, f in feds if key in f.tags)
        preferred = -SERVICE_KEYS.index(key.lower()) if key.lower() in SERVICE_KEYS else -len(SERVICE_KEYS)
        return preferred, tagged

    ranked = sorted((k for k in keys if fits(k)), key=score, reverse=True)
    if not ranked:
        return TagChoice(None, "no tag tells the services apart on their groups and instances")
    key = ranked[0]
    gaps = [f"{f.address.rsplit('.', 1)[0]} in {e.path} has no {key} tag" for e, f in feds if key not in f.tags]
    return TagChoice(key, f"{key} = <the service's name> on each service's group or instances", gaps)


def _values(counter: Counter[str] | None) -> str:
    return ", ".join(sorted(counter)) if counter else "none"


def service_names(env: EnvSurvey, tag: str | None) -> list[str]:
    """A name for each thing an image feeds in ``env``: its service tag's value, else the key of the
    map variable that feeds it, else the first of its module call and resource names that tells it
    apart from the others."""
    names: list[str] = []
    for fed in env.feds:
        if tag is not None and tag in fed.tags:
            names.append(slug(fed.tags[tag], "service"))
        elif fed.feed is not None and fed.feed.keys and isinstance(fed.feed.keys[-1], str):
            names.append(slug(fed.feed.keys[-1], "service"))
        else:
            names.append(slug(_distinct_step(fed, env.feds), "service"))
    seen: Counter[str] = Counter()
    for i, name in enumerate(names):
        seen[name] += 1
        if seen[name] > 1:  # two things of one environment with one name: the second is told apart
            names[i] = f"{name}-{seen[name]}"
    return names


def _distinct_step(fed: Fed, feds: list[Fed]) -> str:
    for i, step in enumerate(fed.steps):
        if not any(other is not fed and other.steps[: i + 1] == fed.steps[: i + 1] for other in feds):
            return step
    return fed.steps[-1]


def ladder_rank(name: str) -> int:
    """Where a well-known environment name stands on the way to production (others come after)."""
    return LADDER.index(name) if name in LADDER else len(LADDER)


def promote_chain(names: list[str]) -> dict[str, str]:
    """Guessed from well-known names: each environment promotes from the one before it on the ladder."""
    known = sorted((n for n in names if n in LADDER and n != "sandbox"), key=LADDER.index)
    return {later: earlier for earlier, later in itertools.pairwise(known)}


def pin_pattern(label: str, service: str) -> str:
    """A pin variable with the service's name as ``{service}``: ``web_ami`` -> ``{service}_ami``,
    ``images.web`` -> ``images.{service}``; the label itself when the name is not a part of it."""
    parts = label.split(".")
    if len(parts) > 1 and parts[-1] == service:
        return ".".join([*parts[:-1], "{service}"])
    if len(parts) == 1:
        words = label.split("_")
        size = len(service.split("_"))
        for start in range(len(words) - size + 1):
            if "_".join(words[start : start + size]) == service and len(words) > size:
                return "_".join([*words[:start], "{service}", *words[start + size :]])
    return label


def most_common(values: list[tuple[str, str]]) -> tuple[str, str] | None:
    counted = Counter(values)
    if not counted:
        return None
    top = max(counted.values())
    return next(v for v in values if counted[v] == top)
