# Plain servers, counted: each boots var.ami, and a new AMI replaces them (destroy, then create).

resource "aws_instance" "this" {
  count                  = var.instance_count
  ami                    = var.ami
  instance_type          = var.instance_type
  subnet_id              = var.subnet_id
  vpc_security_group_ids = var.security_group_ids

  tags = merge(var.tags, { Name = "${var.name}-${count.index}" })
}
