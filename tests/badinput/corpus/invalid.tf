resource "aws_security_group" "broken" {
  name = var.does_not_exist
  ingress {
