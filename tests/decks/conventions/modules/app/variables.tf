variable "service" {
  description = "The service's name; tagged on its groups and instances as Service = <service>."
  type        = string
}

variable "environment" {
  description = "The environment's name; tagged on every resource as Environment = <environment>."
  type        = string
}

variable "ami_id" {
  description = "The baked AMI this environment runs (pinned in release.auto.tfvars.json)."
  type        = string

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "ami_id must be an AMI id such as ami-0123456789abcdef0."
  }
}

variable "instance_type" {
  description = "EC2 instance type of the servers."
  type        = string
  default     = "t3.micro"
}

variable "capacity" {
  description = "How many servers the fleet runs (its minimum and desired size)."
  type        = number
}

variable "cidr" {
  description = "CIDR block of the environment's VPC."
  type        = string
}
