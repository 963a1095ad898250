variable "name" {
  description = "The environment's name prefix, e.g. shop-prod (the load balancer's name: at most 32 characters)."
  type        = string
}

variable "vpc_id" {
  type = string
}

variable "vpc_cidr" {
  type = string
}

variable "subnet_ids" {
  description = "Two or more subnets in different availability zones."
  type        = list(string)
}

variable "tags" {
  type = map(string)
}
