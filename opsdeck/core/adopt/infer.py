"""Adopting an estate: its Terraform surveyed, and what a deck over it would say, with what is missing.

``adopt(repo)`` finds the root modules (one environment each), what feeds each one's images, the
variable files that pin them, the tags that name environments and services, and each group's
rollout. What cannot be inferred is a ``Todo`` at the place of the draft it belongs to.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from opsdeck.core.adopt.modules import ModuleReader
from opsdeck.core.adopt.naming import (
    TagChoice,
    env_tag,
    ladder_rank,
    most_common,
    pin_pattern,
    promote_chain,
    service_names,
    service_tag,
    slug,
)
from opsdeck.core.adopt.recipes import base_recipe, packer_templates, recipe_for
from opsdeck.core.adopt.survey import EnvSurvey, Fed, survey
from opsdeck.core.estate import installed
from opsdeck.core.ports.outside import TerraformFilesPort
from opsdeck.errors import ConfigError

TODO = "<TODO>"  # a value the team must give: it fails the deck's checks until they do
DEFAULT_PIN_FILE = "images.auto.tfvars.json"


@dataclass(frozen=True)
class Todo:
    """Something the draft could not infer, at its place: "" (the top), "conventions", "services.web" ..."""

    where: str
    text: str


@dataclass
class ServiceDraft:
    name: str
    recipe: str
    recipe_found: bool
    envs: dict[str, Fed] = field(default_factory=dict)  # environment -> what the image feeds there
    pin_file: str | None = None  # None: the convention's
    pin_variable: str | None = None


@dataclass
class EnvDraft:
    survey: EnvSurvey
    path: str | None  # None: the default envs/<name>
    rollout: str | None  # what to write (None: nothing can be said)
    promote_from: str | None = None


@dataclass
class Adoption:
    """Everything `opsdeck init` found, and the draft's values."""

    repo: Path
    name: str
    region: str | None
    envs: list[EnvDraft]
    services: list[ServiceDraft]
    env_tag: TagChoice
    service_tag: TagChoice
    pin_file: str | None
    pin_variable: str | None
    base_recipe: str | None
    todos: list[Todo] = field(default_factory=list)

    def todos_at(self, where: str) -> list[str]:
        return [t.text for t in self.todos if t.where == where]


def adopt(repo: Path, files: TerraformFilesPort | None = None) -> Adoption:
    """Survey the Terraform under ``repo`` (read with ``files``, else the installed reader); a repository
    without a root module is one ConfigError."""
    if not repo.is_dir():
        raise ConfigError(f"{repo} is not a directory")
    reader = ModuleReader(repo, files or installed.outside().terraform_files())
    roots = reader.root_modules()
    if not roots:
        raise ConfigError(
            f'no Terraform root module under {repo}: no .tf file has a terraform {{ backend "..." {{}} }} block'
        )
    names = _env_names(repo, roots)
    order = sorted(zip(roots, names, strict=True), key=lambda pair: ladder_rank(pair[1]))
    surveys = [survey(reader, root, name) for root, name in order]
    todos = [Todo(f"environments.{e.name}", t) for e in surveys for t in e.todos]
    todos += [Todo("", f"could not read {p}") for p in reader.problems]
    envs_tag = env_tag(surveys)
    services_tag = service_tag(surveys, envs_tag.key)
    todos += _tag_todos(envs_tag, services_tag, surveys)
    services = _services(surveys, services_tag.key, todos)
    templates = packer_templates(repo)
    for service in services:
        found = recipe_for(service.name, templates)
        service.recipe, service.recipe_found = found or f"packer/{service.name}.json", found is not None
        if found is None:
            todos.append(
                Todo(
                    f"services.{service.name}",
                    f"no Packer template for {service.name} found: write one, or point at yours",
                )
            )
    pin_file, pin_variable = _conventions(services, todos)
    chain = promote_chain([e.name for e in surveys])
    envs = [_env_draft(e, services, chain, todos) for e in surveys]
    regions = Counter(e.region for e in surveys if e.region)
    region = regions.most_common(1)[0][0] if regions else None
    if region is None:
        todos.append(Todo("aws", "no environment names its region literally (provider or backend): give it"))
    if not services:
        todos.append(
            Todo("services", "nothing in the Terraform is fed an image (launch template, instance): add the services")
        )
    return Adoption(
        repo, slug(repo.resolve().name, "deck"), region, envs, services, envs_tag, services_tag,
        pin_file, pin_variable, base_recipe(templates), todos,
    )  # fmt: skip


def _env_names(repo: Path, roots: list[Path]) -> list[str]:
    """Each root module's directory name as an environment name; the same name twice takes its parent's."""
    names = [slug((root if root != repo else repo.resolve()).name, "env") for root in roots]
    for i, name in enumerate(names):
        if names.count(name) > 1:
            names[i] = slug(f"{roots[i].parent.name}-{roots[i].name}", "env")
    return names


def _tag_todos(envs_tag: TagChoice, services_tag: TagChoice, envs: list[EnvSurvey]) -> list[Todo]:
    todos = [Todo("conventions", gap) for gap in envs_tag.gaps + services_tag.gaps]
    if envs_tag.key is None:
        todos.append(Todo("conventions", f"env_tag: {envs_tag.why}; tag every resource with its environment's name"))
    if services_tag.key is None and any(e.feds for e in envs):
        todos.append(Todo("conventions", f"service_tag: {services_tag.why}; give each group and instance one"))
    return todos


def _services(envs: list[EnvSurvey], tag: str | None, todos: list[Todo]) -> list[ServiceDraft]:
    services: dict[str, ServiceDraft] = {}
    for env in envs:
        for name, fed in zip(service_names(env, tag), env.feds, strict=True):
            service = services.setdefault(name, ServiceDraft(name, "", False))
            service.envs[env.name] = fed
            if tag is not None and fed.tags.get(tag, name) != name:
                todos.append(
                    Todo(f"services.{name}", f"{env.name}: its {tag} tag is {fed.tags[tag]!r}, not an opsdeck "
                         f"name: opsdeck finds its groups by {tag} = {name}")
                )  # fmt: skip
    for service in services.values():
        where = f"services.{service.name}"
        missing = [e.name for e in envs if e.name not in service.envs]
        if missing:
            todos.append(
                Todo(
                    where,
                    f"{service.name} is not in {', '.join(missing)}: opsdeck pins every service in every environment",
                )
            )
        for env_name, fed in service.envs.items():
            problem = _pin_problem(fed)
            if problem:
                todos.append(Todo(where, f"{env_name}: {problem}"))
    return list(services.values())


def _pin_problem(fed: Fed) -> str | None:
    """What keeps opsdeck from pinning the image fed here, if anything."""
    if fed.problem or fed.feed is None:
        return fed.problem
    variable, label = fed.feed.variable, fed.feed.label
    if fed.pin_file is None:
        return (
            f"var.{variable} is set by no variable file Terraform loads by itself (a -var flag or "
            f"TF_VAR_{variable} in CI?): put it in a *.auto.tfvars.json file"
        )
    if not fed.pin_file.endswith(".json"):
        return (
            f"move {label} from {fed.pin_file} into {_json_name(fed.pin_file)}: opsdeck reads and writes pins as JSON"
        )
    if fed.pin_value is not None and not fed.pin_value.startswith("ami-"):
        return f"{fed.pin_file} sets {label} to {fed.pin_value!r}, not an image id"
    return None


def _json_name(file: str) -> str:
    return file if file.endswith(".json") else f"{file}.json"


def _spec(service: ServiceDraft, fed: Fed) -> tuple[str, str] | None:
    if fed.feed is None:
        return None
    return _json_name(fed.pin_file or DEFAULT_PIN_FILE), pin_pattern(fed.feed.label, service.name)


def _conventions(services: list[ServiceDraft], todos: list[Todo]) -> tuple[str | None, str | None]:
    """The pin file and variable most services share; the others get their own."""
    specs: dict[str, tuple[str, str] | None] = {}
    for service in services:
        found = [s for s in (_spec(service, f) for f in service.envs.values()) if s is not None]
        specs[service.name] = most_common(found)
        if len(set(found)) > 1:
            where = ", ".join(f"{e}: {s[1]} in {s[0]}" for e, f in service.envs.items() if (s := _spec(service, f)))
            todos.append(
                Todo(f"services.{service.name}", f"its pin differs between environments ({where}); opsdeck takes one")
            )
    convention = most_common([s for s in specs.values() if s is not None])
    for service in services:
        spec = specs[service.name]
        if spec is None:
            service.pin_variable = TODO
            continue
        if convention is None or spec[0] != convention[0]:
            service.pin_file = spec[0]
        if convention is None or spec[1] != convention[1]:
            service.pin_variable = spec[1].replace("{service}", service.name)
    return (convention[0], convention[1]) if convention else (None, None)


def _env_draft(env: EnvSurvey, services: list[ServiceDraft], chain: dict[str, str], todos: list[Todo]) -> EnvDraft:
    where = f"environments.{env.name}"
    kinds = []
    for service in services:
        fed = service.envs.get(env.name)
        if fed is None:
            continue
        if fed.rollout.kind is None:
            todos.append(Todo(where, f"{service.name}: {fed.rollout.why}"))
        else:
            kinds.append(fed.rollout.kind)
    rollout = (kinds[0] if len(set(kinds)) == 1 else "auto") if kinds else None
    if env.region is None:
        todos.append(Todo(where, "its region is not written literally in its aws provider or backend"))
    path = None if env.path == f"envs/{env.name}" else env.path
    return EnvDraft(env, path, rollout, chain.get(env.name))
