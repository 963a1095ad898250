variable "service" {
  description = "The service's name; tagged on its resources as app = <service>."
  type        = string
}

variable "prefix" {
  description = "Name prefix of the environment, e.g. shop-prod."
  type        = string
}

variable "pin" {
  description = "The service's pin (images.auto.tfvars.json): the live color, each color's image, and whether the idle color is warm or cold."
  type = object({
    live       = string
    blue       = string
    green      = string
    standby    = optional(string, "cold")
    warm_until = optional(string)
  })

  validation {
    condition     = contains(["blue", "green"], var.pin.live)
    error_message = "pin.live must be blue or green."
  }

  validation {
    condition = alltrue([
      for image in [var.pin.blue, var.pin.green] : image == null || can(regex("^ami-[0-9a-f]{8,17}$", image))
    ]) && (var.pin.live == "blue" ? var.pin.blue : var.pin.green) != null
    error_message = "pin.blue and pin.green must be AMI ids such as ami-0123456789abcdef0 (or null when idle), and the live color must run one."
  }

  validation {
    condition     = contains(["warm", "cold"], var.pin.standby)
    error_message = "pin.standby must be warm or cold."
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

variable "health_path" {
  description = "What the load balancer asks each instance before it takes traffic."
  type        = string
  default     = "/health"
}

variable "vpc_id" {
  type = string
}

variable "subnet_ids" {
  type = list(string)
}

variable "listener_arn" {
  description = "The environment's load balancer listener (modules/edge)."
  type        = string
}

variable "lb_security_group_id" {
  description = "The load balancer's security group: the only source the service port takes."
  type        = string
}

variable "priority" {
  description = "The service's rule priority on the listener (the preview rule takes the next one)."
  type        = number
}

variable "domain" {
  description = "The environment's internal domain: the service answers as <service>.<domain>."
  type        = string
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
