data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = var.name
  description        = "Execution role of the ${var.function_key} function"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  # ENIs in the function's own subnets and security groups only.
  statement {
    sid     = "VpcNetworkInterfaces"
    actions = ["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"]
    resources = concat(
      ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:network-interface/*"],
      [for id in var.subnet_ids : "arn:${local.partition}:ec2:${local.region}:${local.account_id}:subnet/${id}"],
      [for id in var.security_group_ids : "arn:${local.partition}:ec2:${local.region}:${local.account_id}:security-group/${id}"],
    )
  }

  statement {
    sid       = "DescribeNetwork"
    actions   = ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"]
    resources = ["*"]
  }

  # X-Ray has no resource-level permissions: "*" is the only valid resource for these two actions.
  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  statement {
    sid       = "UseDataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }

  statement {
    sid       = "SendFailuresToDeadLetter"
    actions   = ["sqs:SendMessage"]
    resources = [var.dead_letter_queue_arn]
  }

  dynamic "statement" {
    for_each = length(var.secrets) > 0 ? [1] : []

    content {
      sid       = "ReadOwnSecrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [for secret in values(var.secrets) : secret.arn]
    }
  }

  # The database's endpoint; the function logs in as its own runtime role, whose secret it alone
  # may read (the RDS-managed master secret is the migrator's).
  dynamic "statement" {
    for_each = var.database_instance_arn == null ? [] : [1]

    content {
      sid       = "DescribeDatabase"
      actions   = ["rds:DescribeDBInstances"]
      resources = [var.database_instance_arn]
    }
  }

  dynamic "statement" {
    for_each = var.read_database_login ? [1] : []

    content {
      sid       = "ReadOwnDatabaseLogin"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [var.database_credentials_secret_arn]
    }
  }

  dynamic "statement" {
    for_each = local.consumes_queue ? [1] : []

    content {
      sid       = "ConsumeOwnQueue"
      actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
      resources = [var.queue_arn]
    }
  }

  dynamic "statement" {
    for_each = length(var.import_dead_letter_queue_arns) > 0 ? [1] : []

    content {
      sid       = "ImportDeadLetters"
      actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
      resources = var.import_dead_letter_queue_arns
    }
  }

  dynamic "statement" {
    for_each = length(var.publish_queue_arns) > 0 ? [1] : []

    content {
      sid       = "PublishJobs"
      actions   = ["sqs:SendMessage", "sqs:GetQueueAttributes"]
      resources = var.publish_queue_arns
    }
  }

  dynamic "statement" {
    for_each = var.bucket_access != "none" ? [1] : []

    content {
      sid       = "ReadUploads"
      actions   = ["s3:GetObject", "s3:GetObjectVersion"]
      resources = ["${var.bucket_arn}/*"]
    }
  }

  # Without it S3 answers 403 instead of 404 for an object deleted before its event is handled, and
  # the event is retried as an access problem instead of recorded as missing.
  dynamic "statement" {
    for_each = var.bucket_access != "none" ? [1] : []

    content {
      sid       = "ListUploads"
      actions   = ["s3:ListBucket"]
      resources = [var.bucket_arn]
    }
  }

  # Writes only under the signed-upload prefix: a write anywhere else (images/, a track file)
  # would be taken for an upload by the object trigger.
  dynamic "statement" {
    for_each = var.bucket_access == "read_write" ? [1] : []

    content {
      sid       = "WriteSignedUploads"
      actions   = ["s3:PutObject"]
      resources = ["${var.bucket_arn}/${var.bucket_write_prefix}*"]
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "function"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

data "aws_iam_policy_document" "scheduler_assume" {
  count = local.is_schedule ? 1 : 0

  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  count = local.is_schedule ? 1 : 0

  name               = "${var.name}-scheduler"
  description        = "Lets EventBridge Scheduler invoke the ${var.function_key} function"
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume[0].json
  tags               = var.tags
}

data "aws_iam_policy_document" "scheduler" {
  count = local.is_schedule ? 1 : 0

  statement {
    sid       = "InvokeTarget"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.this.arn]
  }

  statement {
    sid       = "SendFailuresToDeadLetter"
    actions   = ["sqs:SendMessage"]
    resources = [var.dead_letter_queue_arn]
  }

  statement {
    sid       = "UseDataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "scheduler" {
  count = local.is_schedule ? 1 : 0

  name   = "invoke-function"
  role   = aws_iam_role.scheduler[0].id
  policy = data.aws_iam_policy_document.scheduler[0].json
}
