# No security group admits traffic from outside the VPC. Workloads reach AWS APIs and scrape
# sources over HTTPS (the GPU workers also video streams on the ports the gpu block lists) and the
# database and cache inside the VPC; the data stores accept only them.
resource "aws_security_group" "functions" {
  name        = "${local.name}-functions"
  description = "Lambda functions: egress only"
  vpc_id      = module.network.vpc_id
  tags        = local.tags

  egress {
    description = "HTTPS to AWS APIs and external sources"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  # Scrape sources may be plain http (the SSRF-safe client still refuses private addresses).
  egress {
    description = "HTTP to external sources"
    from_port   = 80
    to_port     = 80
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  egress {
    description = "PostgreSQL inside the VPC"
    from_port   = 5432
    to_port     = 5432
    protocol    = "tcp"
    cidr_blocks = [module.network.vpc_cidr_block]
  }

  egress {
    description = "Redis inside the VPC"
    from_port   = 6379
    to_port     = 6379
    protocol    = "tcp"
    cidr_blocks = [module.network.vpc_cidr_block]
  }
}

resource "aws_security_group" "gpu" {
  name        = "${local.name}-gpu"
  description = "GPU instances and worker tasks: egress only"
  vpc_id      = module.network.vpc_id
  tags        = local.tags

  egress {
    description = "HTTPS to AWS APIs, ECR and stream sources"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  # Video streams (rtsp, rtsps, http) on the ports the gpu block lists; the worker reads them over TCP.
  dynamic "egress" {
    for_each = toset(var.gpu.stream_ports)

    content {
      description = "Video streams on port ${egress.value}"
      from_port   = egress.value
      to_port     = egress.value
      protocol    = "tcp"
      cidr_blocks = ["0.0.0.0/0"]
    }
  }

  egress {
    description = "PostgreSQL inside the VPC"
    from_port   = 5432
    to_port     = 5432
    protocol    = "tcp"
    cidr_blocks = [module.network.vpc_cidr_block]
  }

  egress {
    description = "Redis inside the VPC"
    from_port   = 6379
    to_port     = 6379
    protocol    = "tcp"
    cidr_blocks = [module.network.vpc_cidr_block]
  }
}

resource "aws_security_group" "database" {
  name        = "${local.name}-database"
  description = "PostgreSQL: from the functions and the GPU workers only"
  vpc_id      = module.network.vpc_id
  tags        = local.tags

  ingress {
    description     = "PostgreSQL from functions and GPU workers"
    from_port       = 5432
    to_port         = 5432
    protocol        = "tcp"
    security_groups = [aws_security_group.functions.id, aws_security_group.gpu.id]
  }
}

resource "aws_security_group" "cache" {
  name        = "${local.name}-cache"
  description = "Redis: from the functions and the GPU workers only"
  vpc_id      = module.network.vpc_id
  tags        = local.tags

  ingress {
    description     = "Redis from functions and GPU workers"
    from_port       = 6379
    to_port         = 6379
    protocol        = "tcp"
    security_groups = [aws_security_group.functions.id, aws_security_group.gpu.id]
  }
}
