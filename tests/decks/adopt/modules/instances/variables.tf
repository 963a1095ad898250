variable "name" {
  description = "Name prefix of the servers (Name = <name>-<index>)."
  type        = string
}

variable "ami" {
  description = "AMI the servers boot; a change replaces every one of them."
  type        = string
}

variable "instance_count" {
  description = "How many servers run."
  type        = number
}

variable "instance_type" {
  description = "EC2 instance type of the servers."
  type        = string
  default     = "t3.micro"
}

variable "subnet_id" {
  description = "Subnet the servers run in."
  type        = string
}

variable "security_group_ids" {
  description = "Security groups of the servers."
  type        = list(string)
}

variable "tags" {
  description = "Tags on every server."
  type        = map(string)
  default     = {}
}
