"""Small Terraform repositories written into tmp dirs, in the shapes teams build their estates in."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return root


def root_head(env: str, region: str = "us-east-1", extra_provider: str = "") -> str:
    """A root module's terraform block with an S3 backend, and its aws provider."""
    return f"""
    terraform {{
      backend "s3" {{
        bucket = "acme-tfstate"
        key    = "{env}/terraform.tfstate"
        region = "us-east-1"
      }}
    }}

    provider "aws" {{
      region = "{region}"
      {extra_provider}
    }}
    """


# The terraform-aws-modules/autoscaling shape: one group, its launch template updated in place (a
# new version per image), the group following latest_version with an instance_refresh block, and its
# tags from a map through a dynamic "tag" block.
ASG_MODULE = """
variable "name" { type = string }
variable "image_id" { type = string }
variable "instance_type" {
  type    = string
  default = "t3.micro"
}
variable "tags" {
  type    = map(string)
  default = {}
}

resource "aws_launch_template" "this" {
  name          = var.name
  image_id      = var.image_id
  instance_type = var.instance_type
  update_default_version = true

  tag_specifications {
    resource_type = "instance"
    tags          = merge(var.tags, { Name = var.name })
  }
}

resource "aws_autoscaling_group" "this" {
  name             = var.name
  min_size         = 1
  max_size         = 2
  desired_capacity = 1

  launch_template {
    id      = aws_launch_template.this.id
    version = aws_launch_template.this.latest_version
  }

  instance_refresh {
    strategy = "Rolling"
    preferences {
      min_healthy_percentage = 50
    }
  }

  dynamic "tag" {
    for_each = merge(var.tags, { Name = var.name })
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }
}
"""

INSTANCES_MODULE = """
variable "name" { type = string }
variable "image_id" { type = string }
variable "instance_count" {
  type    = number
  default = 1
}
variable "tags" {
  type    = map(string)
  default = {}
}

resource "aws_instance" "this" {
  count         = var.instance_count
  ami           = var.image_id
  instance_type = "t3.micro"
  tags          = merge(var.tags, { Name = "${var.name}-${count.index}" })
}
"""


def community(root: Path, envs: tuple[str, ...] = ("qa", "live"), packer: bool = False) -> Path:
    """The adopt deck's shape: modules/asg and modules/instances, tags Environment and Service, the
    AMIs in envs/<env>/amis.auto.tfvars.json as web_ami and batch_ami."""
    files = {"modules/asg/main.tf": ASG_MODULE, "modules/instances/main.tf": INSTANCES_MODULE}
    for env in envs:
        files[f"envs/{env}/main.tf"] = (
            root_head(env)
            + f"""
        variable "web_ami" {{ type = string }}
        variable "batch_ami" {{ type = string }}

        locals {{
          environment = "{env}"
        }}

        module "web" {{
          source   = "../../modules/asg"
          name     = "web-{env}"
          image_id = var.web_ami
          tags     = {{ Environment = local.environment, Service = "web" }}
        }}

        module "batch" {{
          source   = "../../modules/instances"
          name     = "batch-{env}"
          image_id = var.batch_ami
          tags     = {{ Environment = local.environment, Service = "batch" }}
        }}
        """
        )
        amis = {"web_ami": "ami-0123456789abcdef0", "batch_ami": "ami-0fedcba9876543210"}
        files[f"envs/{env}/amis.auto.tfvars.json"] = json.dumps(amis, indent=2)
    if packer:
        files["packer/web.json"] = json.dumps({"builders": [{"type": "amazon-ebs"}]})
        files["packer/batch.pkr.hcl"] = 'source "amazon-ebs" "batch" {}\n'
    return write(root, files)


# Red/black: a template per image (name_prefix, create_before_destroy) and a group named after it.
RED_BLACK_MODULE = """
variable "service" { type = string }
variable "environment" { type = string }
variable "ami_id" { type = string }

locals {
  prefix = "${var.service}-${var.environment}"
  tags   = { env = var.environment, app = var.service }
}

resource "aws_launch_template" "app" {
  name_prefix   = "${local.prefix}-"
  image_id      = var.ami_id
  instance_type = "t3.micro"

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_autoscaling_group" "fleet" {
  name     = "${local.prefix}-${aws_launch_template.app.id}"
  min_size = 1
  max_size = 2

  launch_template {
    id      = aws_launch_template.app.id
    version = aws_launch_template.app.latest_version
  }

  dynamic "tag" {
    for_each = local.tags
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}
"""


def red_black(root: Path, envs: tuple[str, ...] = ("dev", "prod")) -> Path:
    """One service, billing, rolled out red/black; the environment's name a root variable set in
    terraform.tfvars.json, the image in release.auto.tfvars.json; packer templates beside it."""
    files = {
        "modules/app/main.tf": RED_BLACK_MODULE,
        "images/billing.json": json.dumps({"builders": [{"type": "amazon-ebs"}]}),
        "images/base.json": json.dumps({"builders": [{"type": "amazon-ebs"}]}),
    }
    for env in envs:
        region = "us-west-2" if env == "prod" else "us-east-1"
        role = f'assume_role {{ role_arn = "arn:aws:iam::{"3" * 12 if env == "prod" else "1" * 12}:role/deploy" }}'
        files[f"envs/{env}/main.tf"] = (
            root_head(env, region, role)
            + """
        variable "environment" { type = string }
        variable "ami_id" { type = string }

        module "billing" {
          source      = "../../modules/app"
          service     = "billing"
          environment = var.environment
          ami_id      = var.ami_id
        }
        """
        )
        files[f"envs/{env}/terraform.tfvars.json"] = json.dumps({"environment": env})
        files[f"envs/{env}/release.auto.tfvars.json"] = json.dumps({"ami_id": "ami-00000000000000001"})
    return write(root, files)
