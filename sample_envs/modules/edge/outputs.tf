output "listener_arn" {
  value = aws_lb_listener.http.arn
}

output "dns_name" {
  value = aws_lb.this.dns_name
}

output "security_group_id" {
  value = aws_security_group.lb.id
}
