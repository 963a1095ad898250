# The dev environment: the web module at dev's size. Its image is pinned in image.auto.tfvars.json.

terraform {
  required_version = ">= 1.5"

  backend "s3" {
    bucket       = "opsdeck-demo-tfstate"
    key          = "web/dev/terraform.tfstate"
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
  region = var.region
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "image_id" {
  description = "Pinned by opsdeck promote / rollback; the file's git history is this environment's releases."
  type        = string
}

module "web" {
  source = "../../modules/web"

  app              = "web"
  env              = "dev"
  image_id         = var.image_id
  instance_type    = "t3.small"
  min_size         = 1
  max_size         = 3
  desired_capacity = 2
  vpc_cidr         = "10.20.0.0/16"
  settings = {
    LOG_LEVEL     = "debug"
    FEATURE_FLAGS = "beta"
    DB_HOST       = "db.dev.internal"
  }
}

output "autoscaling_group" {
  value = module.web.autoscaling_group
}

output "vpc_id" {
  value = module.web.vpc_id
}
