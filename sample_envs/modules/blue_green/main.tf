# One service of one environment, blue/green: two auto scaling groups (blue and green), each in its
# own target group of the environment's load balancer, and a listener rule that sends the service's
# traffic to the live color. The pin says which color is live, the image each color runs, and whether
# the color out of traffic is kept warm (at full size, ready to take traffic back at once) or cold
# (scaled to zero).
#
# A release puts the new image on the idle color (a new launch template and group for that color:
# red/black within the color, nothing patched in place), waits until its targets are healthy, then
# switches the rule; the previous color stays warm for the environment's standby window. Rolling back
# inside the window is the switch alone: no instance is launched and no group is created.

locals {
  name   = "${var.prefix}-${var.service}"
  tags   = merge(var.tags, { app = var.service })
  colors = toset(["blue", "green"])
  # A color that has never run an image (a new environment's idle one) has no template or group.
  imaged = toset([for c in ["blue", "green"] : c if(c == "blue" ? var.pin.blue : var.pin.green) != null])
  idle   = var.pin.live == "blue" ? "green" : "blue"
  image  = { blue = var.pin.blue, green = var.pin.green }
  # The live color at full size; the idle one too while it is warm, at zero once it is cold.
  running = { for c in local.colors : c => c == var.pin.live || var.pin.standby == "warm" }
  user_data = { for c in local.colors : c => templatefile("${path.module}/user_data.sh.tftpl", {
    service  = var.service
    env      = var.tags["env"]
    color    = c
    settings = var.settings
  }) }
}

resource "aws_security_group" "this" {
  name        = local.name
  description = "${var.service} servers of ${var.prefix}"
  vpc_id      = var.vpc_id

  ingress {
    description     = "the service port, from the load balancer of the environment"
    from_port       = var.port
    to_port         = var.port
    protocol        = "tcp"
    security_groups = [var.lb_security_group_id]
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

resource "aws_lb_target_group" "color" {
  for_each = local.colors

  name                 = "${local.name}-${each.key}"
  port                 = var.port
  protocol             = "HTTP"
  vpc_id               = var.vpc_id
  deregistration_delay = 30

  health_check {
    path                = var.health_path
    port                = "traffic-port"
    healthy_threshold   = 2
    unhealthy_threshold = 2
    interval            = 10
    timeout             = 5
    matcher             = "200"
  }

  tags = merge(local.tags, { Name = "${local.name}-${each.key}", color = each.key })
}

# What a color's instances boot (image, type, user data) is part of its launch template's name, so a
# change to it makes a new template (name_prefix cannot change in place) and so a new group. A
# trigger kept in a resource of its own is saved before the template is made: an apply that failed
# in between left the next one updating the template in place, its instances never replaced.
locals {
  boot = {
    for color in local.imaged :
    color => substr(sha256(jsonencode([local.image[color], var.instance_type, sha256(local.user_data[color])])), 0, 12)
  }
}

resource "aws_launch_template" "color" {
  for_each = local.imaged

  name_prefix            = "${local.name}-${each.key}-${local.boot[each.key]}-"
  image_id               = local.image[each.key]
  instance_type          = var.instance_type
  vpc_security_group_ids = [aws_security_group.this.id]
  user_data              = base64encode(local.user_data[each.key])

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  tags = merge(local.tags, { Name = "${local.name}-${each.key}", color = each.key })

  lifecycle {
    create_before_destroy = true
    # The group tags the instances (propagate_at_launch); template tags echo back in here.
    ignore_changes = [tag_specifications]
  }
}

resource "aws_autoscaling_group" "color" {
  for_each = local.imaged

  # Named after its launch template, so a new template means a new group (red/black).
  name                      = "${local.name}-${each.key}-${aws_launch_template.color[each.key].id}"
  min_size                  = local.running[each.key] ? var.min_size : 0
  max_size                  = var.max_size
  desired_capacity          = local.running[each.key] ? var.desired_capacity : 0
  vpc_zone_identifier       = var.subnet_ids
  target_group_arns         = [aws_lb_target_group.color[each.key].arn]
  health_check_type         = "ELB"
  health_check_grace_period = 60
  # opsdeck waits for the color itself (its health gate, with progress and the environment's timeout).
  wait_for_capacity_timeout = "0"

  launch_template {
    id      = aws_launch_template.color[each.key].id
    version = aws_launch_template.color[each.key].latest_version
  }

  dynamic "tag" {
    for_each = merge(local.tags, { Name = "${local.name}-${each.key}", color = each.key, image_id = local.image[each.key] })
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

# The service's traffic: its host name on the environment's listener, forwarded to the live color.
resource "aws_lb_listener_rule" "live" {
  listener_arn = var.listener_arn
  priority     = var.priority

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.color[var.pin.live].arn
  }

  condition {
    host_header {
      values = ["${var.service}.${var.domain}"]
    }
  }

  tags = merge(local.tags, { Name = "${local.name}-live", traffic = "live" })
}

# The idle color under its own host name, for smoke checks before a switch (never the service's
# traffic).
resource "aws_lb_listener_rule" "preview" {
  listener_arn = var.listener_arn
  priority     = var.priority + 1

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.color[local.idle].arn
  }

  condition {
    host_header {
      values = ["${var.service}-preview.${var.domain}"]
    }
  }

  tags = merge(local.tags, { Name = "${local.name}-preview", traffic = "preview" })
}
