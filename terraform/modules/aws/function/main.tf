data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id

  is_queue  = var.trigger == "queue"
  is_object = var.trigger == "object"
  # Object functions take S3 notifications through their queue (S3 → SQS → Lambda), whose
  # visibility and redrive outlive a crashed invocation; queue functions take jobs from theirs.
  consumes_queue = local.is_queue || local.is_object
  is_schedule    = var.trigger == "schedule"

  # Secrets are passed by name; the entry point resolves <NAME>_SECRET_ID at cold start.
  secret_environment = { for name, secret in var.secrets : "${name}_SECRET_ID" => secret.name }

  log_group_name = "/aws/lambda/${var.name}"
}

resource "aws_cloudwatch_log_group" "this" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_272:Code signing applies to zip packages; container images are pinned by tag in an immutable, scanned ECR repository.
  function_name                  = var.name
  description                    = "contentfn ${var.function_key} (${var.trigger} trigger)"
  role                           = aws_iam_role.this.arn
  package_type                   = "Image"
  image_uri                      = var.image_uri
  architectures                  = [var.architecture]
  timeout                        = var.timeout_s
  memory_size                    = var.memory_mb
  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = var.kms_key_arn

  image_config {
    command = var.command
  }

  environment {
    # The idempotency claim of a delivery lasts just past this timeout (shared.idempotency).
    variables = merge(var.environment, local.secret_environment, { CONTENTFN_FUNCTION_TIMEOUT_S = tostring(var.timeout_s) })
  }

  vpc_config {
    subnet_ids         = var.subnet_ids
    security_group_ids = var.security_group_ids
  }

  tracing_config {
    mode = "Active"
  }

  # Failed asynchronous invocations (S3 notifications, schedules) land here after Lambda's retries.
  dead_letter_config {
    target_arn = var.dead_letter_queue_arn
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.this.name
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.this]
}

resource "aws_lambda_event_source_mapping" "queue" {
  count = local.consumes_queue ? 1 : 0

  event_source_arn                   = var.queue_arn
  function_name                      = aws_lambda_function.this.arn
  batch_size                         = var.batch_size
  maximum_batching_window_in_seconds = var.maximum_batching_window_s
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.max_concurrency
  }

  lifecycle {
    precondition {
      condition     = var.queue_visibility_timeout_s >= 6 * var.timeout_s + var.maximum_batching_window_s
      error_message = "The queue's visibility timeout must be at least 6x the function timeout plus the batching window."
    }
  }
}

resource "aws_scheduler_schedule" "this" {
  count = local.is_schedule ? 1 : 0

  name                         = var.name
  description                  = "contentfn ${var.function_key} schedule"
  schedule_expression          = var.schedule_expression
  schedule_expression_timezone = var.schedule_timezone
  kms_key_arn                  = var.kms_key_arn

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_lambda_function.this.arn
    role_arn = aws_iam_role.scheduler[0].arn
    input    = jsonencode({ source = "contentfn.scheduler", function = var.function_key })

    retry_policy {
      maximum_event_age_in_seconds = 3600
      maximum_retry_attempts       = 3
    }

    dead_letter_config {
      arn = var.dead_letter_queue_arn
    }
  }
}
