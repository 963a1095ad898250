variable "app" {
  description = "Application name; prefixes every resource name."
  type        = string
}

variable "env" {
  description = "Environment name; tagged on every resource as env = <env>."
  type        = string
}

variable "image_id" {
  description = "The baked AMI this environment runs (pinned in image.auto.tfvars.json)."
  type        = string

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.image_id))
    error_message = "image_id must be an AMI id such as ami-0123456789abcdef0."
  }
}

variable "instance_type" {
  description = "EC2 instance type of the web servers."
  type        = string
}

variable "min_size" {
  type = number
}

variable "max_size" {
  type = number
}

variable "desired_capacity" {
  type = number
}

variable "vpc_cidr" {
  description = "CIDR block of the environment's VPC; each environment gets its own."
  type        = string
}

variable "subnet_count" {
  description = "How many subnets (one per availability zone) the servers spread over."
  type        = number
  default     = 2
}

variable "settings" {
  description = "Boot-time settings written by user_data to /etc/web/env: the only thing that differs between environments at boot."
  type        = map(string)
  default     = {}
}

variable "allowed_cidrs" {
  description = "Who may reach the web servers on port 80."
  type        = list(string)
  default     = []
}
