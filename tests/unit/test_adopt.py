"""`opsdeck init`'s inference on small Terraform repositories: the draft it writes, parsed back."""

from __future__ import annotations

import json
import re
import socket
import tomllib
from pathlib import Path
from typing import Any, get_args

import pytest

from opsdeck.core.adopt.draft import render
from opsdeck.core.adopt.infer import Adoption, adopt
from opsdeck.core.estate.config import DeckConfig, load_config
from opsdeck.core.estate.pins import pin_spec
from opsdeck.core.estate.sections import Rollout
from opsdeck.errors import ConfigError
from tests.unit.terraform_repos import ASG_MODULE, community, red_black, root_head, write


def drafted(repo: Path) -> tuple[Adoption, dict[str, Any], str]:
    adoption = adopt(repo)
    text = render(adoption)
    return adoption, tomllib.loads(text), text


def loaded(repo: Path, text: str) -> DeckConfig:
    """The draft through the deck's own checks. A rollout the config does not accept yet ("auto",
    "instance-refresh", "instances": the lead is adding them) is read as "replace" until it does."""
    accepted = get_args(Rollout)
    text = re.sub(
        r'^rollout = "([\w-]+)"$', lambda m: m[0] if m[1] in accepted else 'rollout = "replace"', text, flags=re.M
    )
    (repo / "opsdeck.toml").write_text(text)
    return load_config(repo)


def rollouts(adoption: Adoption, env: str) -> dict[str, str | None]:
    return {s.name: s.envs[env].rollout.kind for s in adoption.services if env in s.envs}


def test_the_community_shape_drafts_tags_pins_and_rollouts(tmp_path: Path) -> None:
    """modules/asg (in-place template, latest_version, instance_refresh, dynamic tags) and
    modules/instances, in qa and live: what tests/decks/adopt is built like."""
    adoption, data, _ = drafted(community(tmp_path / "estate"))
    assert list(data["environments"]) == ["qa", "live"]
    assert data["conventions"] == {
        "env_tag": "Environment",
        "service_tag": "Service",
        "pin_file": "amis.auto.tfvars.json",
        "pin_variable": "{service}_ami",
    }
    assert list(data["services"]) == ["web", "batch"]
    assert rollouts(adoption, "qa") == {"web": "instance-refresh", "batch": "instances"}
    assert data["environments"]["qa"] == {"region": "us-east-1", "rollout": "auto"}
    assert data["environments"]["live"]["promote_from"] == "qa"
    assert data["aws"] == {"region": "us-east-1", "local": False}
    web = adoption.services[0].envs["live"]
    assert web.address == "module.web.aws_launch_template.this.image_id"
    assert (web.pin_file, web.pin_value) == ("amis.auto.tfvars.json", "ami-0123456789abcdef0")
    # No Packer template: the only thing left to the team.
    assert [(t.where, t.text.split(":")[0]) for t in adoption.todos] == [
        ("services.web", "no Packer template for web found"),
        ("services.batch", "no Packer template for batch found"),
    ]
    assert data["services"]["web"] == {"recipe": "packer/web.json"}


def test_the_community_shape_with_its_templates_is_complete_and_loads(tmp_path: Path) -> None:
    repo = community(tmp_path / "estate", packer=True)
    adoption, data, text = drafted(repo)
    assert adoption.todos == []
    assert data["services"] == {"web": {"recipe": "packer/web.json"}, "batch": {"recipe": "packer/batch.pkr.hcl"}}
    assert "# note: opsdeck accepts" in text or "auto" in get_args(Rollout)
    config = loaded(repo, text)
    assert config.env_names == ["qa", "live"] and config.env("live").promote_from == "qa"
    assert pin_spec(config, "web").file == "amis.auto.tfvars.json"
    assert pin_spec(config, "batch").variable == ("batch_ami",)


def test_red_black_is_complete_and_loads_as_written(tmp_path: Path) -> None:
    """A template per image and a group named after it; the environment's name comes from a root
    variable set in terraform.tfvars.json; the provider assumes a role in each account."""
    repo = red_black(tmp_path / "billing")
    adoption, data, text = drafted(repo)
    assert adoption.todos == []
    assert rollouts(adoption, "prod") == {"billing": "replace"}
    config = load_config_as_written(repo, text)
    assert (config.conventions.env_tag, config.conventions.service_tag) == ("env", "app")
    assert pin_spec(config, "billing") == pin_spec(config, "billing").__class__("release.auto.tfvars.json", ("ami_id",))
    prod = config.env("prod")
    assert (prod.region, prod.account, prod.role) == (
        "us-west-2",
        "333333333333",
        "arn:aws:iam::333333333333:role/deploy",
    )
    assert prod.promote_from == "dev" and prod.rollout == "replace"
    assert config.base_recipe == "images/base.json" and config.services[0].recipe == "images/billing.json"
    assert data["name"] == "billing"


def load_config_as_written(repo: Path, text: str) -> DeckConfig:
    (repo / "opsdeck.toml").write_text(text)
    return load_config(repo)


def test_plain_instances_with_an_hcl_tfvars_file(tmp_path: Path) -> None:
    """Instances at the root, tags written out, the images in terraform.tfvars (HCL): opsdeck writes
    pins as JSON, so the draft asks for them to move, and points at the JSON file."""
    repo = write(tmp_path / "ops", {
        "sandbox/main.tf": root_head("sandbox") + """
            variable "api_ami" { type = string }
            variable "worker_ami" { type = string }
            resource "aws_instance" "api" {
              ami           = var.api_ami
              instance_type = "t3.micro"
              tags          = { Env = "sandbox", Role = "api" }
            }
            resource "aws_instance" "worker" {
              ami           = var.worker_ami
              instance_type = "t3.micro"
              tags          = { Env = "sandbox", Role = "worker" }
              lifecycle {
                ignore_changes = [ami]
              }
            }
            """,
        "sandbox/terraform.tfvars": 'api_ami = "ami-0aaaaaaaaaaaaaaaa"\nworker_ami = "ami-0bbbbbbbbbbbbbbbb"\n',
    })  # fmt: skip
    adoption, data, _ = drafted(repo)
    assert data["environments"]["sandbox"]["path"] == "sandbox"
    assert (data["conventions"]["env_tag"], data["conventions"]["service_tag"]) == ("Env", "Role")
    assert (data["conventions"]["pin_file"], data["conventions"]["pin_variable"]) == (
        "terraform.tfvars.json",
        "{service}_ami",
    )
    assert rollouts(adoption, "sandbox") == {"api": "instances", "worker": None}
    assert data["environments"]["sandbox"]["rollout"] == "instances"
    texts = [t.text for t in adoption.todos]
    assert any("move api_ami from terraform.tfvars into terraform.tfvars.json" in t for t in texts)
    assert any(t.startswith("worker: rolls nothing") and "ignores changes to ami" in t for t in texts)


def test_a_map_variable_pins_each_service_by_its_key(tmp_path: Path) -> None:
    """var.images["web"] and lookup(var.images, "api"): pin_variable "images.{service}". A group on
    "$Latest" without an instance refresh rolls nothing, and the draft says so."""
    repo = write(tmp_path / "shop", {
        "envs/dev/main.tf": root_head("dev") + """
            variable "images" { type = map(string) }
            locals {
              tags = { env = "dev" }
            }
            resource "aws_launch_template" "web" {
              name_prefix = "web-"
              image_id    = var.images["web"]
            }
            resource "aws_autoscaling_group" "web" {
              name     = "web"
              min_size = 1
              max_size = 1
              launch_template {
                id      = aws_launch_template.web.id
                version = "$Latest"
              }
              tag {
                key                 = "env"
                value               = local.tags.env
                propagate_at_launch = true
              }
            }
            resource "aws_instance" "api" {
              ami  = lookup(var.images, "api")
              tags = merge(local.tags, { Name = "api" })
            }
            """,
        "envs/dev/images.auto.tfvars.json": json.dumps({"images": {"web": "ami-01", "api": "ami-02"}}),
    })  # fmt: skip
    adoption, data, _ = drafted(repo)
    assert data["conventions"]["pin_variable"] == "images.{service}"
    assert data["conventions"]["pin_file"] == "images.auto.tfvars.json"
    assert [s.name for s in adoption.services] == ["web", "api"]
    assert rollouts(adoption, "dev") == {"web": None, "api": "instances"}
    latest = [t.text for t in adoption.todos if t.where == "environments.dev"]
    assert len(latest) == 1 and "rolls nothing: instances keep the old image" in latest[0] and "$Latest" in latest[0]
    assert data["conventions"]["env_tag"] == "env"


MODULES_JSON = {
    "Modules": [
        {"Key": "", "Source": "", "Dir": "."},
        {
            "Key": "web",
            "Source": "registry.terraform.io/terraform-aws-modules/autoscaling/aws",
            "Version": "8.3.1",
            "Dir": ".terraform/modules/web",
        },
    ]
}

REGISTRY_ROOT = """
variable "web_ami" { type = string }
module "web" {
  source   = "terraform-aws-modules/autoscaling/aws"
  version  = "8.3.1"
  name     = "web-prod"
  image_id = var.web_ami
  tags     = { Environment = "prod", Service = "web" }
}
"""


def test_a_registry_module_terraform_init_downloaded_is_followed(tmp_path: Path) -> None:
    repo = write(tmp_path / "estate", {
        "envs/prod/main.tf": root_head("prod") + REGISTRY_ROOT,
        "envs/prod/web.auto.tfvars.json": json.dumps({"web_ami": "ami-0c"}),
        "envs/prod/.terraform/modules/modules.json": json.dumps(MODULES_JSON),
        "envs/prod/.terraform/modules/web/main.tf": ASG_MODULE,
    })  # fmt: skip
    adoption, data, _ = drafted(repo)
    assert [e.survey.name for e in adoption.envs] == ["prod"]  # .terraform holds no root module
    assert rollouts(adoption, "prod") == {"web": "instance-refresh"}
    assert data["conventions"]["env_tag"] == "Environment" and data["conventions"]["service_tag"] == "Service"
    assert adoption.envs[0].survey.unfollowed == []


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection attempt fails the test: init never fetches a module."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"opsdeck init tried to connect: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.usefixtures("no_network")
def test_a_registry_module_not_downloaded_is_reported_not_fetched(tmp_path: Path) -> None:
    repo = write(tmp_path / "estate", {
        "envs/prod/main.tf": root_head("prod") + REGISTRY_ROOT,
        "envs/prod/web.auto.tfvars.json": json.dumps({"web_ami": "ami-0c"}),
    })  # fmt: skip
    adoption, data, _ = drafted(repo)
    assert not (repo / "envs/prod/.terraform").exists()
    [unfollowed] = adoption.envs[0].survey.unfollowed
    assert unfollowed.address == "module.web" and "is not downloaded" in unfollowed.why
    # Its image_id input still names the service's pin; what it rolls out is left to the team.
    assert data["services"] == {"web": {"recipe": "packer/web.json"}}
    assert data["conventions"]["pin_variable"] == "{service}_ami"
    texts = [t.text for t in adoption.todos]
    assert any(t.startswith("could not follow module.web: terraform-aws-modules/autoscaling/aws") for t in texts)
    assert "web: unknown: module.web was not followed" in texts
    assert "rollout" not in data["environments"]["prod"]


def test_nested_module_calls_are_followed_to_the_template(tmp_path: Path) -> None:
    """root -> modules/stack -> modules/asg twice: each service is named by the call that tells it
    apart; the environment tag is set two modules up."""
    repo = write(tmp_path / "estate", {
        "modules/asg/main.tf": ASG_MODULE,
        "modules/stack/main.tf": """
            variable "stage" { type = string }
            variable "web_ami" { type = string }
            variable "api_ami" { type = string }
            module "web" {
              source   = "../asg"
              name     = "web"
              image_id = var.web_ami
              tags     = { Stage = var.stage }
            }
            module "api" {
              source   = "../asg"
              name     = "api"
              image_id = var.api_ami
              tags     = { Stage = var.stage }
            }
            """,
        "live/staging/main.tf": root_head("staging") + """
            variable "web_image" { type = string }
            variable "api_image" { type = string }
            module "stack" {
              source  = "../../modules/stack"
              stage   = "staging"
              web_ami = var.web_image
              api_ami = var.api_image
            }
            """,
        "live/staging/images.auto.tfvars.json": json.dumps({"web_image": "ami-1", "api_image": "ami-2"}),
    })  # fmt: skip
    adoption, data, _ = drafted(repo)
    assert [s.name for s in adoption.services] == ["web", "api"]
    web = adoption.services[0].envs["staging"]
    assert web.address == "module.stack.module.web.aws_launch_template.this.image_id"
    assert web.feed is not None and web.feed.label == "web_image"
    assert data["conventions"]["pin_variable"] == "{service}_image"
    assert data["conventions"]["env_tag"] == "Stage"
    # No tag tells web from api: the draft asks for one (and cannot be loaded until then).
    assert data["conventions"]["service_tag"] == "<TODO>"
    assert rollouts(adoption, "staging") == {"web": "instance-refresh", "api": "instance-refresh"}
    assert data["environments"]["staging"]["rollout"] == "instance-refresh"


def test_the_variable_file_terraform_loads_last_is_the_pin(tmp_path: Path) -> None:
    repo = community(tmp_path / "estate", envs=("qa",), packer=True)
    (repo / "envs/qa/terraform.tfvars").write_text('web_ami = "ami-0old"\nbatch_ami = "ami-0old"\n')
    adoption, data, _ = drafted(repo)
    assert data["conventions"]["pin_file"] == "amis.auto.tfvars.json"
    assert adoption.envs[0].survey.tfvars.keys() == {"terraform.tfvars", "amis.auto.tfvars.json"}
    assert adoption.todos == []


def test_a_repository_without_a_backend_is_one_error(tmp_path: Path) -> None:
    write(tmp_path / "mods", {"modules/asg/main.tf": ASG_MODULE})
    with pytest.raises(ConfigError) as raised:
        adopt(tmp_path / "mods")
    assert "no Terraform root module under" in str(raised.value) and "\n" not in str(raised.value)


def test_a_file_the_parser_refuses_is_a_todo_not_a_crash(tmp_path: Path) -> None:
    repo = community(tmp_path / "estate", envs=("qa",), packer=True)
    (repo / "modules/asg/broken.tf").write_text('resource "aws_eip" "x" {\n  domain = \n}\n')
    adoption, _, _ = drafted(repo)
    assert any(t.text.startswith("could not read modules/asg/broken.tf:") for t in adoption.todos)
    assert [s.name for s in adoption.services] == ["web", "batch"]


@pytest.mark.parametrize("for_each", ["local.services", 'toset(["web", "api"])'])
def test_a_module_called_for_each_service_is_one_service_per_key(tmp_path: Path, for_each: str) -> None:
    repo = write(tmp_path / "estate", {
        "modules/asg/main.tf": ASG_MODULE,
        "envs/dev/main.tf": root_head("dev") + f"""
            variable "images" {{ type = map(string) }}
            locals {{
              services = {{ web = {{ size = 2 }}, api = {{ size = 1 }} }}
            }}
            module "svc" {{
              source   = "../../modules/asg"
              for_each = {for_each}
              name     = "dev-${{each.key}}"
              image_id = var.images[each.key]
              tags     = {{ env = "dev", app = each.key }}
            }}
            """,
        "envs/dev/images.auto.tfvars.json": json.dumps({"images": {"web": "ami-01", "api": "ami-02"}}),
    })  # fmt: skip
    adoption, data, _ = drafted(repo)
    assert sorted(s.name for s in adoption.services) == ["api", "web"]
    web = next(s for s in adoption.services if s.name == "web").envs["dev"]
    assert web.address == 'module.svc["web"].aws_launch_template.this.image_id'
    assert web.feed is not None and web.feed.label == "images.web" and web.pin_value == "ami-01"
    assert data["conventions"] == {
        "env_tag": "env",
        "service_tag": "app",
        "pin_file": "images.auto.tfvars.json",
        "pin_variable": "images.{service}",
    }
    assert rollouts(adoption, "dev") == {"web": "instance-refresh", "api": "instance-refresh"}


def test_names_the_tags_do_not_match_are_todos(tmp_path: Path) -> None:
    """The environment's tag says "prod" where its directory says production; a service tag that is
    not an opsdeck name. Both would keep opsdeck from finding the resources: the draft says so."""
    repo = red_black(tmp_path / "billing", envs=("dev", "production"))
    (repo / "envs/production/terraform.tfvars.json").write_text(json.dumps({"environment": "prod"}))
    (repo / "modules/app/main.tf").write_text(
        (repo / "modules/app/main.tf").read_text().replace("app = var.service", 'app = "Billing Svc"')
    )
    adoption, data, _ = drafted(repo)
    assert data["conventions"]["env_tag"] == "env" and data["conventions"]["service_tag"] == "app"
    texts = {(t.where, t.text) for t in adoption.todos}
    assert ("conventions", "env is not production on any resource of envs/production (values there: prod)") in texts
    assert [s.name for s in adoption.services] == ["billing-svc"]
    assert any(w == "services.billing-svc" and "its app tag is 'Billing Svc'" in t for w, t in texts)
