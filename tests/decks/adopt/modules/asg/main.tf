# One auto scaling group rolled in place: a new image is a new version of the same launch template,
# and the group's instance_refresh (when configured) replaces its instances batch by batch. The group
# keeps its name across releases; nothing is created beside it.

resource "aws_launch_template" "this" {
  name_prefix            = "${var.name}-"
  description            = "Servers of ${var.name}"
  image_id               = var.image_id
  instance_type          = var.instance_type
  vpc_security_group_ids = var.security_group_ids
  user_data              = base64encode(var.user_data)
  update_default_version = true

  tags = merge(var.tags, { Name = var.name })

  lifecycle {
    # The group tags the instances (propagate_at_launch); the template's own tags echo back in here.
    ignore_changes = [tag_specifications]
  }
}

resource "aws_autoscaling_group" "this" {
  name                      = var.name
  min_size                  = var.min_size
  max_size                  = var.max_size
  desired_capacity          = var.desired_capacity
  vpc_zone_identifier       = var.subnet_ids
  health_check_type         = "EC2"
  health_check_grace_period = var.health_check_grace_period

  launch_template {
    id = aws_launch_template.this.id
    # A numbered version makes every template change a group change, which starts the refresh;
    # "$Latest" leaves running instances alone until something replaces them.
    version = var.use_latest_version ? "$Latest" : aws_launch_template.this.latest_version
  }

  dynamic "instance_refresh" {
    for_each = var.instance_refresh == null ? [] : [var.instance_refresh]
    content {
      strategy = instance_refresh.value.strategy
      triggers = instance_refresh.value.triggers

      preferences {
        min_healthy_percentage = instance_refresh.value.preferences.min_healthy_percentage
        instance_warmup        = instance_refresh.value.preferences.instance_warmup
        auto_rollback          = instance_refresh.value.preferences.auto_rollback
        skip_matching          = instance_refresh.value.preferences.skip_matching
      }
    }
  }

  dynamic "tag" {
    for_each = merge(var.tags, { Name = var.name })
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }
}
