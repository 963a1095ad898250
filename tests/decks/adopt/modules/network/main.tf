# An environment's network: one VPC, one subnet and the security group its servers share.

resource "aws_vpc" "this" {
  cidr_block = var.cidr
  tags       = merge(var.tags, { Name = var.name })
}

resource "aws_subnet" "this" {
  vpc_id            = aws_vpc.this.id
  cidr_block        = cidrsubnet(var.cidr, 4, 0)
  availability_zone = var.availability_zone
  tags              = merge(var.tags, { Name = "${var.name}-servers" })
}

resource "aws_security_group" "servers" {
  name        = "${var.name}-servers"
  description = "servers of ${var.name}"
  vpc_id      = aws_vpc.this.id

  ingress {
    description = "https from inside the environment"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = [var.cidr]
  }

  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }

  tags = merge(var.tags, { Name = "${var.name}-servers" })
}
