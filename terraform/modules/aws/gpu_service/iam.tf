data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "instance" {
  name               = "${var.name}-instance"
  description        = "ECS container instances of the GPU service"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
  tags               = var.tags
}

resource "aws_iam_instance_profile" "instance" {
  name = "${var.name}-instance"
  role = aws_iam_role.instance.name
  tags = var.tags
}

# The ECS agent's needs, scoped to this cluster (instead of the broad managed policy).
data "aws_iam_policy_document" "instance" {
  statement {
    sid       = "RegisterWithCluster"
    actions   = ["ecs:RegisterContainerInstance", "ecs:DeregisterContainerInstance", "ecs:UpdateContainerInstancesState"]
    resources = [aws_ecs_cluster.this.arn]
  }

  statement {
    sid = "AgentCommunication"
    actions = [
      "ecs:Poll",
      "ecs:StartTelemetrySession",
      "ecs:SubmitAttachmentStateChanges",
      "ecs:SubmitContainerStateChange",
      "ecs:SubmitTaskStateChange",
    ]
    resources = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:container-instance/${var.name}/*"]
  }

  statement {
    sid       = "DiscoverEndpoint"
    actions   = ["ecs:DiscoverPollEndpoint"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "instance" {
  name   = "ecs-agent"
  role   = aws_iam_role.instance.id
  policy = data.aws_iam_policy_document.instance.json
}

data "aws_iam_policy_document" "task_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  description        = "Pulls the GPU image, writes its logs and reads its secrets"
  assume_role_policy = data.aws_iam_policy_document.task_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "PullImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = [var.repository_arn]
  }

  statement {
    sid       = "WriteLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  statement {
    sid       = "UseDataKey"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }

  dynamic "statement" {
    for_each = length(var.secret_arns) > 0 ? [1] : []

    content {
      sid       = "ReadSecrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = values(var.secret_arns)
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "task-execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

resource "aws_iam_role" "task" {
  name               = "${var.name}-task"
  description        = "The GPU worker: consumes detection jobs, reads images"
  assume_role_policy = data.aws_iam_policy_document.task_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "task" {
  # The CloudWatch agent beside the worker writes the scraped /metrics as EMF to its log group.
  statement {
    sid       = "WriteMetricsAsEmf"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = [aws_cloudwatch_log_group.metrics.arn, "${aws_cloudwatch_log_group.metrics.arn}:*"]
  }

  statement {
    sid       = "ConsumeDetectionJobs"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
    resources = [var.queue_arn]
  }

  # Deferred jobs that fell due, from the Postgres outbox to the queue; and released jobs, sent
  # again so that a release spends no receive (shared/queue/sqs.py).
  statement {
    sid       = "RelayDueDetectionJobs"
    actions   = ["sqs:SendMessage"]
    resources = [var.queue_arn]
  }

  # A poison job is copied to the dead-letter queue; its depth is reported on /metrics.
  statement {
    sid       = "DeadLetterDetectionJobs"
    actions   = ["sqs:SendMessage", "sqs:GetQueueAttributes"]
    resources = [var.dead_letter_queue_arn]
  }

  # The database's endpoint; the worker logs in as its own runtime role (the RDS-managed master
  # secret is the migrator's).
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

  statement {
    sid       = "ReadImages"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${var.bucket_arn}/${var.images_prefix}*"]
  }

  # Without it S3 answers 403 instead of 404 for an image deleted after upload, and the job is
  # retried as an access problem instead of refused as missing.
  statement {
    sid       = "ListImages"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.images_prefix}*"]
    }
  }

  statement {
    sid       = "UseDataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }

  # PutMetricData has no resource-level permissions; the namespace condition is the limit.
  statement {
    sid       = "PublishWorkerMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = ["contentfn/gpu"]
    }
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "gpu-worker"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}
