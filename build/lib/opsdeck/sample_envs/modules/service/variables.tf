variable "service" {
  description = "The service's name; tagged on its resources as app = <service>."
  type        = string
}

variable "prefix" {
  description = "Name prefix of the environment, e.g. shop-prod."
  type        = string
}

variable "image_id" {
  description = "The baked AMI this service runs here (pinned in images.auto.tfvars.json)."
  type        = string

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.image_id))
    error_message = "image_id must be an AMI id such as ami-0123456789abcdef0."
  }
}

variable "instance_type" {
  description = "EC2 instance type of the service's servers."
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

variable "port" {
  description = "The port the service listens on."
  type        = number
}

variable "vpc_id" {
  type = string
}

variable "vpc_cidr" {
  type = string
}

variable "subnet_ids" {
  type = list(string)
}

variable "settings" {
  description = "Boot-time settings written by user_data to /etc/<service>/env: the only thing that differs between environments at boot."
  type        = map(string)
  default     = {}
}

variable "tags" {
  description = "Tags of every resource (env, managed_by); the module adds app = <service>."
  type        = map(string)
}
