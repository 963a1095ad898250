# The dev environment: the shop's services at dev's size, in account 111111111111 (us-east-1), each
# blue/green behind the environment's load balancer. Each service's pin (live color, each color's
# image, warm or cold standby) is in images.auto.tfvars.json; that file's git history is its releases.

terraform {
  required_version = ">= 1.5"

  backend "s3" {
    bucket       = "opsdeck-demo-tfstate-111111111111"
    key          = "shop/dev/terraform.tfstate"
    region       = "us-east-1"
    encrypt      = true
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

variable "images" {
  description = "Each service's pin, written by opsdeck promote / rollback / standby expire."
  type = map(object({
    live       = string
    blue       = string
    green      = string
    standby    = optional(string, "cold")
    warm_until = optional(string)
  }))
}

locals {
  prefix = "shop-dev"
  domain = "dev.shop.internal"
  tags = {
    env        = "dev"
    managed_by = "terraform"
  }
  services = {
    web    = { port = 80, priority = 10, size = 2, max = 4 }
    api    = { port = 8080, priority = 20, size = 2, max = 4 }
    worker = { port = 9000, priority = 30, size = 1, max = 2 }
  }
}

module "network" {
  source = "../../modules/network"

  name     = local.prefix
  vpc_cidr = "10.20.0.0/16"
  tags     = local.tags
}

module "edge" {
  source = "../../modules/edge"

  name       = local.prefix
  vpc_id     = module.network.vpc_id
  vpc_cidr   = module.network.vpc_cidr
  subnet_ids = module.network.subnet_ids
  tags       = local.tags
}

module "service" {
  source   = "../../modules/blue_green"
  for_each = local.services

  service              = each.key
  prefix               = local.prefix
  pin                  = var.images[each.key]
  instance_type        = "t3.small"
  min_size             = each.value.size
  max_size             = each.value.max
  desired_capacity     = each.value.size
  port                 = each.value.port
  vpc_id               = module.network.vpc_id
  subnet_ids           = module.network.subnet_ids
  listener_arn         = module.edge.listener_arn
  lb_security_group_id = module.edge.security_group_id
  priority             = each.value.priority
  domain               = local.domain
  tags                 = local.tags
  settings = {
    LOG_LEVEL     = "info"
    FEATURE_FLAGS = "beta"
  }
}

output "vpc_id" {
  value = module.network.vpc_id
}

output "endpoint" {
  description = "The environment's load balancer (every service answers on it by host name)."
  value       = module.edge.dns_name
}

output "traffic" {
  value = { for name, s in module.service : name => s.traffic }
}

output "autoscaling_groups" {
  value = { for name, s in module.service : name => s.autoscaling_groups }
}
