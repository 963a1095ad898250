variable "name" {
  description = "Name of the network (the environment's name)."
  type        = string
}

variable "cidr" {
  description = "CIDR block of the VPC; the subnet is its first /20."
  type        = string
}

variable "availability_zone" {
  description = "Availability zone of the subnet."
  type        = string
  default     = "us-east-1a"
}

variable "tags" {
  description = "Tags on every resource of the network."
  type        = map(string)
  default     = {}
}
