# One service of one environment: its security group, launch template and auto scaling group.
#
# Images roll out the immutable way (red/black): every change to what an instance boots
# (image, type, user data) replaces the launch template and the auto scaling group, and the new
# group is in service before the old one is destroyed. Nothing is patched in place.

locals {
  name = "${var.prefix}-${var.service}"
  tags = merge(var.tags, { app = var.service })
  user_data = templatefile("${path.module}/user_data.sh.tftpl", {
    service  = var.service
    env      = var.tags["env"]
    settings = var.settings
  })
}

resource "aws_security_group" "this" {
  name        = local.name
  description = "${var.service} servers of ${var.prefix}"
  vpc_id      = var.vpc_id

  ingress {
    description = "the service port, from inside the environment"
    from_port   = var.port
    to_port     = var.port
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr]
  }

  egress {
    description = "HTTPS out: package mirrors and the AWS APIs"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  tags = merge(local.tags, { Name = local.name })
}

# What an instance boots (image, type, user data) is part of its launch template's name, so a change
# to it makes a new template (name_prefix cannot change in place) and so a new group. Nothing else
# carries it: a trigger kept in a resource of its own (terraform_data with replace_triggered_by) is
# saved before the template is made, and an apply that failed in between left the next one updating
# the template in place, its instances never replaced.
locals {
  boot = substr(sha256(jsonencode([var.image_id, var.instance_type, sha256(local.user_data)])), 0, 12)
}

resource "aws_launch_template" "this" {
  name_prefix            = "${local.name}-${local.boot}-"
  image_id               = var.image_id
  instance_type          = var.instance_type
  vpc_security_group_ids = [aws_security_group.this.id]
  user_data              = base64encode(local.user_data)

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  tags = merge(local.tags, { Name = local.name })

  lifecycle {
    create_before_destroy = true
    # The group tags the instances (propagate_at_launch); template tags echo back in here.
    ignore_changes = [tag_specifications]
  }
}

resource "aws_autoscaling_group" "this" {
  # Named after its launch template, so a new template means a new group (red/black).
  name                      = "${local.name}-${aws_launch_template.this.id}"
  min_size                  = var.min_size
  max_size                  = var.max_size
  desired_capacity          = var.desired_capacity
  vpc_zone_identifier       = var.subnet_ids
  health_check_type         = "EC2"
  health_check_grace_period = 60
  wait_for_capacity_timeout = "10m"

  launch_template {
    id      = aws_launch_template.this.id
    version = aws_launch_template.this.latest_version
  }

  dynamic "tag" {
    for_each = merge(local.tags, { Name = local.name, image_id = var.image_id })
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}
