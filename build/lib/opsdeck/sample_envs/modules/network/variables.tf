variable "name" {
  description = "Name prefix, e.g. shop-prod."
  type        = string
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

variable "tags" {
  description = "Tags of every resource (env, managed_by)."
  type        = map(string)
}
