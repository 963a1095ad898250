output "traffic" {
  description = "What opsdeck reads to show and switch the service's traffic."
  value = {
    live          = var.pin.live
    rule          = aws_lb_listener_rule.live.arn
    preview_rule  = aws_lb_listener_rule.preview.arn
    target_groups = { for c, tg in aws_lb_target_group.color : c => tg.arn }
    host          = "${var.service}.${var.domain}"
    preview_host  = "${var.service}-preview.${var.domain}"
  }
}

output "autoscaling_groups" {
  value = { for c, g in aws_autoscaling_group.color : c => g.name }
}
