# The live environment: billing at live's size. Its image is pinned in release.auto.tfvars.json
# (`ami_id`); that file's git history is billing's releases here.

terraform {
  required_version = ">= 1.5"

  backend "s3" {
    bucket       = "opsdeck-conventions-tfstate"
    key          = "billing/live.tfstate"
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

variable "ami_id" {
  description = "Pinned by opsdeck promote / rollback."
  type        = string
}

module "billing" {
  source = "../../modules/app"

  service     = "billing"
  environment = "live"
  ami_id      = var.ami_id
  capacity    = 2
  cidr        = "10.70.0.0/16"
}

output "vpc_id" {
  value = module.billing.vpc_id
}

output "subnet_id" {
  value = module.billing.subnet_id
}

output "fleet" {
  value = module.billing.fleet
}
