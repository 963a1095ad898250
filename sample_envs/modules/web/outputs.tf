output "vpc_id" {
  value = aws_vpc.this.id
}

output "autoscaling_group" {
  value = aws_autoscaling_group.web.name
}

output "launch_template_id" {
  value = aws_launch_template.web.id
}

output "image_id" {
  value = var.image_id
}
