variable "name" {
  description = "Name of the group (kept across releases) and prefix of its launch template."
  type        = string
}

variable "image_id" {
  description = "AMI the servers boot; a new one is a new launch template version."
  type        = string
}

variable "instance_type" {
  description = "EC2 instance type of the servers."
  type        = string
  default     = "t3.micro"
}

variable "user_data" {
  description = "User data of the servers, as plain text (the module encodes it)."
  type        = string
  default     = ""
}

variable "security_group_ids" {
  description = "Security groups of the servers."
  type        = list(string)
}

variable "subnet_ids" {
  description = "Subnets the group launches into."
  type        = list(string)
}

variable "min_size" {
  description = "Fewest servers the group keeps."
  type        = number
}

variable "max_size" {
  description = "Most servers the group may run."
  type        = number
}

variable "desired_capacity" {
  description = "How many servers the group runs."
  type        = number
}

variable "health_check_grace_period" {
  description = "Seconds a new server has before its health checks count."
  type        = number
  default     = 60
}

variable "use_latest_version" {
  description = "Point the group at \"$Latest\" instead of the template's latest version number (no refresh on change)."
  type        = bool
  default     = false
}

variable "instance_refresh" {
  description = "How a template change rolls out to running servers; null leaves them until they are replaced."
  type = object({
    strategy = optional(string, "Rolling")
    triggers = optional(list(string), [])
    preferences = optional(object({
      min_healthy_percentage = optional(number, 90)
      instance_warmup        = optional(number)
      auto_rollback          = optional(bool, false)
      skip_matching          = optional(bool, false)
    }), {})
  })
  default = null
}

variable "tags" {
  description = "Tags on the template and the group; the group propagates them to its servers."
  type        = map(string)
  default     = {}
}
