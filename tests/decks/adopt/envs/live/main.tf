# The live environment: web on one auto scaling group rolled by instance refresh, batch on plain
# servers. Its images are pinned in amis.auto.tfvars.json (web_ami, batch_ami).

terraform {
  required_version = ">= 1.5"

  backend "s3" {
    bucket       = "opsdeck-adopt-tfstate"
    key          = "live/terraform.tfstate"
    region       = "us-east-1"
    use_lockfile = true
  }

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40, < 6.0"
    }
  }
}

provider "aws" {
  region = "us-east-1"
}

variable "web_ami" {
  description = "The AMI web runs here."
  type        = string

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.web_ami))
    error_message = "web_ami must be an AMI id such as ami-0123456789abcdef0."
  }
}

variable "batch_ami" {
  description = "The AMI batch runs here."
  type        = string

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.batch_ami))
    error_message = "batch_ami must be an AMI id such as ami-0123456789abcdef0."
  }
}

locals {
  environment = "live"
}

module "network" {
  source = "../../modules/network"

  name = local.environment
  cidr = "10.81.0.0/16"
  tags = { Environment = local.environment }
}

module "web" {
  source = "../../modules/asg"

  name               = "web-${local.environment}"
  image_id           = var.web_ami
  min_size           = 3
  max_size           = 3 + 1
  desired_capacity   = 3
  subnet_ids         = [module.network.subnet_id]
  security_group_ids = [module.network.security_group_id]
  user_data          = <<-EOT
    #!/bin/sh
    echo "web in ${local.environment}" > /etc/motd
  EOT

  instance_refresh = {
    strategy = "Rolling"
    preferences = {
      min_healthy_percentage = 50
      instance_warmup        = 60
    }
  }

  tags = { Environment = local.environment, Service = "web" }
}

module "batch" {
  source = "../../modules/instances"

  name               = "batch-${local.environment}"
  ami                = var.batch_ami
  instance_count     = 2
  subnet_id          = module.network.subnet_id
  security_group_ids = [module.network.security_group_id]
  tags               = { Environment = local.environment, Service = "batch" }
}

output "web_group" {
  value = module.web.group_name
}

output "web_launch_template_version" {
  value = module.web.launch_template_version
}

output "batch_instances" {
  value = module.batch.instance_ids
}
