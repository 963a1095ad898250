# An environment's way in: one internal application load balancer that every service of the
# environment shares (a rule per service on its listener), so an environment pays for one balancer
# and its creation once, not once per service.

resource "aws_security_group" "lb" {
  name        = "${var.name}-lb"
  description = "the load balancer of ${var.name}, reachable from inside the environment"
  vpc_id      = var.vpc_id

  ingress {
    description = "HTTP from inside the environment"
    from_port   = 80
    to_port     = 80
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr]
  }

  egress {
    description = "to the services targets"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = [var.vpc_cidr]
  }

  tags = merge(var.tags, { Name = "${var.name}-lb" })
}

resource "aws_lb" "this" {
  name                       = var.name
  internal                   = true
  load_balancer_type         = "application"
  security_groups            = [aws_security_group.lb.id]
  subnets                    = var.subnet_ids
  drop_invalid_header_fields = true

  tags = merge(var.tags, { Name = var.name })
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  # Requests for no known service end here; each service adds a rule for its own host name.
  default_action {
    type = "fixed-response"

    fixed_response {
      content_type = "text/plain"
      message_body = "no such service"
      status_code  = "404"
    }
  }

  tags = merge(var.tags, { Name = "${var.name}-http" })
}
