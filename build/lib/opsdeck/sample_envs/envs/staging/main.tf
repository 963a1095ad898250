# The staging environment: the shop's services at staging's size, in account 222222222222 (us-east-1).
# Each service's image is pinned in images.auto.tfvars.json; that file's git history is its releases here.

terraform {
  required_version = ">= 1.5"

  backend "s3" {
    bucket       = "opsdeck-demo-tfstate-222222222222"
    key          = "shop/staging/terraform.tfstate"
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
  description = "The image each service runs here, pinned by opsdeck promote / rollback."
  type        = map(string)
}

locals {
  prefix = "shop-staging"
  tags = {
    env        = "staging"
    managed_by = "terraform"
  }
}

module "network" {
  source = "../../modules/network"

  name     = local.prefix
  vpc_cidr = "10.30.0.0/16"
  tags     = local.tags
}

module "web" {
  source = "../../modules/service"

  service          = "web"
  prefix           = local.prefix
  image_id         = var.images["web"]
  instance_type    = "t3.medium"
  min_size         = 2
  max_size         = 4
  desired_capacity = 2
  port             = 80
  vpc_id           = module.network.vpc_id
  vpc_cidr         = module.network.vpc_cidr
  subnet_ids       = module.network.subnet_ids
  tags             = local.tags
  settings = {
    LOG_LEVEL     = "info"
    FEATURE_FLAGS = "stable"
  }
}

module "api" {
  source = "../../modules/service"

  service          = "api"
  prefix           = local.prefix
  image_id         = var.images["api"]
  instance_type    = "t3.medium"
  min_size         = 2
  max_size         = 4
  desired_capacity = 2
  port             = 8080
  vpc_id           = module.network.vpc_id
  vpc_cidr         = module.network.vpc_cidr
  subnet_ids       = module.network.subnet_ids
  tags             = local.tags
  settings = {
    LOG_LEVEL     = "info"
    FEATURE_FLAGS = "stable"
  }
}

module "worker" {
  source = "../../modules/service"

  service          = "worker"
  prefix           = local.prefix
  image_id         = var.images["worker"]
  instance_type    = "t3.medium"
  min_size         = 2
  max_size         = 4
  desired_capacity = 2
  port             = 9000
  vpc_id           = module.network.vpc_id
  vpc_cidr         = module.network.vpc_cidr
  subnet_ids       = module.network.subnet_ids
  tags             = local.tags
  settings = {
    LOG_LEVEL     = "info"
    FEATURE_FLAGS = "stable"
  }
}

output "vpc_id" {
  value = module.network.vpc_id
}

output "autoscaling_groups" {
  value = { web = module.web.autoscaling_group, api = module.api.autoscaling_group, worker = module.worker.autoscaling_group }
}
