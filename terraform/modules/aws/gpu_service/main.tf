data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id

  # The capacity caps, set once by the caller and handed to the worker as configuration.
  cap_environment = {
    CONTENTFN_GPU_MAX_INSTANCES = tostring(var.max_instances)
    CONTENTFN_GPU_MAX_BATCH     = tostring(var.max_batch)
    CONTENTFN_GPU_MAX_IN_FLIGHT = tostring(var.max_in_flight)
    CONTENTFN_GPU_MAX_WAIT_MS   = tostring(var.max_wait_ms)
    CONTENTFN_GPU_QUEUE         = var.queue_url
  }
  environment = merge(
    var.environment,
    # Uploaded images are read from the bucket in S3 (the task role may read it). The region is
    # given: the task's instance metadata is blocked (ECS_AWSVPC_BLOCK_IMDS).
    { CONTENTFN_BLOB_BACKEND = "s3", AWS_REGION = local.region, AWS_DEFAULT_REGION = local.region },
    # Detection jobs deferred by admission wait in Postgres; the service relays them to its queue
    # once due (infra/gpu_worker/outbox.py).
    { CONTENTFN_QUEUES = jsonencode({ detect = var.queue_url }) },
    local.cap_environment,
    var.device_process ? { CONTENTFN_GPU_DEVICE_PROCESS = "true" } : {},
  )
  # The worker alone: where it serves /metrics for the agent (not a setting of the GPU cap).
  worker_environment = merge(local.environment, { CONTENTFN_GPU_METRICS_PORT = tostring(var.metrics_port) })

  container_name = "gpu-worker"
  desired_count  = min(var.min_instances, var.max_instances)

  # The agent scrapes the worker over the task's loopback (awsvpc: one network namespace) and
  # writes what the declarations select as EMF: one metric per name, dimensioned by `service`
  # ("gpu", added at scrape) and, for the store's figures, by job kind.
  prometheus_config = {
    global = { scrape_interval = "${var.metrics_scrape_interval_s}s", scrape_timeout = "10s" }
    scrape_configs = [{
      job_name       = "contentfn-gpu"
      metrics_path   = "/metrics"
      static_configs = [{ targets = ["127.0.0.1:${var.metrics_port}"], labels = { service = "gpu" } }]
    }]
  }
  agent_config = {
    agent = { region = local.region }
    logs = {
      force_flush_interval = 15
      metrics_collected = {
        prometheus = {
          log_group_name         = aws_cloudwatch_log_group.metrics.name
          prometheus_config_path = "env:PROMETHEUS_CONFIG_CONTENT"
          emf_processor = {
            metric_namespace = var.metrics_namespace
            metric_declaration = [
              {
                source_labels    = ["service"]
                label_matcher    = "^gpu$"
                dimensions       = [["service"]]
                metric_selectors = ["^contentfn_gpu_", "^contentfn_llm_budget_"]
              },
              {
                source_labels    = ["service"]
                label_matcher    = "^gpu$"
                dimensions       = [["service", "kind"]]
                metric_selectors = ["^contentfn_queue_depth$", "^contentfn_queue_oldest_age_seconds$", "^contentfn_dead_letters$"]
              },
            ]
          }
        }
      }
    }
  }
}

resource "aws_cloudwatch_log_group" "metrics" {
  name              = "/ecs/${var.name}/metrics"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_ecs_cluster" "this" {
  name = var.name
  tags = var.tags

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_launch_template" "this" {
  name_prefix            = "${var.name}-"
  image_id               = var.ami_id
  instance_type          = var.instance_type
  update_default_version = true
  vpc_security_group_ids = var.security_group_ids
  tags                   = var.tags

  user_data = base64encode(<<-EOT
    #!/bin/bash
    cat >> /etc/ecs/ecs.config <<'CFG'
    ECS_CLUSTER=${var.name}
    ECS_ENABLE_GPU_SUPPORT=true
    ECS_AWSVPC_BLOCK_IMDS=true
    CFG
  EOT
  )

  iam_instance_profile {
    arn = aws_iam_instance_profile.instance.arn
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  monitoring {
    enabled = true
  }

  block_device_mappings {
    device_name = "/dev/xvda"

    # Encrypted with the account's AWS-managed EBS key: Auto Scaling launches the instances, and
    # its service-linked role may use that key without being named in the project key's policy
    # (naming it there fails in an account where the role does not exist yet). The root volume
    # holds the OS and container images only; the data stays in S3, RDS and ElastiCache.
    ebs {
      volume_size           = var.root_volume_gb
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(var.tags, { Name = var.name })
  }
}

# GPU instances: never more than the cap. Scale-in protection lets ECS drain before terminating.
resource "aws_autoscaling_group" "this" {
  name_prefix           = "${var.name}-"
  min_size              = 0
  max_size              = var.max_instances
  vpc_zone_identifier   = var.subnet_ids
  protect_from_scale_in = true
  health_check_type     = "EC2"

  launch_template {
    id      = aws_launch_template.this.id
    version = "$Latest"
  }

  tag {
    key                 = "AmazonECSManaged"
    value               = "true"
    propagate_at_launch = true
  }

  lifecycle {
    ignore_changes = [desired_capacity]
  }
}

resource "aws_ecs_capacity_provider" "this" {
  name = var.name
  tags = var.tags

  auto_scaling_group_provider {
    auto_scaling_group_arn         = aws_autoscaling_group.this.arn
    managed_termination_protection = "ENABLED"
    managed_draining               = "ENABLED"

    managed_scaling {
      status                    = "ENABLED"
      target_capacity           = 100
      minimum_scaling_step_size = 1
      maximum_scaling_step_size = max(1, var.max_instances)
    }
  }
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = [aws_ecs_capacity_provider.this.name]

  default_capacity_provider_strategy {
    capacity_provider = aws_ecs_capacity_provider.this.name
    weight            = 1
  }
}

resource "aws_ecs_task_definition" "this" {
  family                   = var.name
  requires_compatibilities = ["EC2"]
  network_mode             = "awsvpc"
  cpu                      = var.task_cpu
  memory                   = var.task_memory_mb
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  tags                     = var.tags

  container_definitions = jsonencode([
    {
      name                   = local.container_name
      image                  = var.image_uri
      command                = var.command
      essential              = true
      readonlyRootFilesystem = true
      privileged             = false
      resourceRequirements   = [{ type = "GPU", value = "1" }]
      environment            = [for k in sort(keys(local.worker_environment)) : { name = k, value = local.worker_environment[k] }]
      secrets                = [for k in sort(keys(var.secret_arns)) : { name = k, valueFrom = var.secret_arns[k] }]
      mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.this.name
          awslogs-region        = local.region
          awslogs-stream-prefix = "gpu"
        }
      }
    },
    {
      name                   = "metrics-agent"
      image                  = var.metrics_agent_image
      essential              = false # the worker goes on if its metrics cannot be shipped
      readonlyRootFilesystem = true
      privileged             = false
      environment = [
        { name = "CW_CONFIG_CONTENT", value = jsonencode(local.agent_config) },
        # JSON is YAML: the agent reads this as its Prometheus scrape configuration.
        { name = "PROMETHEUS_CONFIG_CONTENT", value = jsonencode(local.prometheus_config) },
      ]
      mountPoints = [
        { sourceVolume = "agent-etc", containerPath = "/opt/aws/amazon-cloudwatch-agent/etc", readOnly = false },
        { sourceVolume = "agent-logs", containerPath = "/opt/aws/amazon-cloudwatch-agent/logs", readOnly = false },
        { sourceVolume = "agent-var", containerPath = "/opt/aws/amazon-cloudwatch-agent/var", readOnly = false },
        { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false },
      ]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.this.name
          awslogs-region        = local.region
          awslogs-stream-prefix = "metrics-agent"
        }
      }
    }
  ])

  volume {
    name = "agent-etc"
  }

  volume {
    name = "agent-logs"
  }

  volume {
    name = "agent-var"
  }

  volume {
    name = "tmp"
  }
}

resource "aws_ecs_service" "this" {
  name                               = var.name
  cluster                            = aws_ecs_cluster.this.id
  task_definition                    = aws_ecs_task_definition.this.arn
  desired_count                      = local.desired_count
  deployment_minimum_healthy_percent = 0
  # Deployments replace tasks in place so a rollout never needs GPUs beyond the cap.
  deployment_maximum_percent = 100
  enable_execute_command     = false
  propagate_tags             = "SERVICE"
  tags                       = var.tags

  capacity_provider_strategy {
    capacity_provider = aws_ecs_capacity_provider.this.name
    weight            = 1
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = var.security_group_ids
    assign_public_ip = false
  }

  lifecycle {
    ignore_changes = [desired_count]
  }

  depends_on = [aws_ecs_cluster_capacity_providers.this]
}

# Backlog-driven scaling between min_instances and the cap; beyond the cap work waits in the queue.
resource "aws_appautoscaling_target" "this" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.this.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = local.desired_count
  max_capacity       = var.max_instances
}

resource "aws_appautoscaling_policy" "backlog" {
  name               = "${var.name}-backlog"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this.service_namespace
  resource_id        = aws_appautoscaling_target.this.resource_id
  scalable_dimension = aws_appautoscaling_target.this.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.max_batch * var.max_in_flight
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    customized_metric_specification {
      metric_name = "ApproximateNumberOfMessagesVisible"
      namespace   = "AWS/SQS"
      statistic   = "Average"

      dimensions {
        name  = "QueueName"
        value = var.queue_name
      }
    }
  }
}
