output "vpc_id" {
  value = aws_vpc.main.id
}

output "subnet_id" {
  value = aws_subnet.app.id
}

output "fleet" {
  value = aws_autoscaling_group.fleet.name
}

output "launch_template_id" {
  value = aws_launch_template.app.id
}
