# The billing service of one environment: VPC, subnet, security group, launch template and fleet.
#
# Tags follow this team's own names: Environment and Service (not opsdeck's defaults, env and app).
# A new image rolls out red/black: a new launch template and a new fleet (auto scaling group) are
# created before the old ones are destroyed; nothing is changed in place.

locals {
  prefix = "${var.service}-${var.environment}"
  tags = {
    Environment = var.environment
    Service     = var.service
    managed_by  = "terraform"
  }
}

resource "aws_vpc" "main" {
  cidr_block = var.cidr
  tags       = merge(local.tags, { Name = local.prefix })
}

resource "aws_subnet" "app" {
  vpc_id            = aws_vpc.main.id
  cidr_block        = cidrsubnet(var.cidr, 4, 0)
  availability_zone = "us-east-1a"
  tags              = merge(local.tags, { Name = "${local.prefix}-app" })
}

resource "aws_security_group" "app" {
  name        = "${local.prefix}-app"
  description = "servers of ${local.prefix}"
  vpc_id      = aws_vpc.main.id

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

  tags = merge(local.tags, { Name = "${local.prefix}-app" })
}

# Changes whenever what an instance boots changes; it replaces the launch template (never a new
# version of it), which is what keeps the rollout immutable.
resource "terraform_data" "release" {
  input = {
    ami_id        = var.ami_id
    instance_type = var.instance_type
  }
}

resource "aws_launch_template" "app" {
  name_prefix            = "${local.prefix}-"
  image_id               = var.ami_id
  instance_type          = var.instance_type
  vpc_security_group_ids = [aws_security_group.app.id]

  tags = merge(local.tags, { Name = local.prefix })

  lifecycle {
    create_before_destroy = true
    replace_triggered_by  = [terraform_data.release]
    # The fleet tags the instances (propagate_at_launch); the template's own tags echo back in here.
    ignore_changes = [tag_specifications]
  }
}

resource "aws_autoscaling_group" "fleet" {
  # Named after its launch template: a new template means a new fleet (red/black).
  name                      = "${local.prefix}-${aws_launch_template.app.id}"
  min_size                  = var.capacity
  max_size                  = var.capacity + 1
  desired_capacity          = var.capacity
  vpc_zone_identifier       = [aws_subnet.app.id]
  health_check_type         = "EC2"
  health_check_grace_period = 30
  wait_for_capacity_timeout = "5m"

  launch_template {
    id      = aws_launch_template.app.id
    version = aws_launch_template.app.latest_version
  }

  dynamic "tag" {
    for_each = merge(local.tags, { Name = local.prefix })
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
