data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  arn_prefix      = "arn:${data.aws_partition.current.partition}:sqs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}"
  queue_arn       = "${local.arn_prefix}:${var.name}"
  dead_letter_arn = "${local.arn_prefix}:${var.name}-dlq"
}

# Queue policies are set inline (ARNs built from the names) so each queue is created in one call.
data "aws_iam_policy_document" "deny_insecure_transport" {
  for_each = { queue = local.queue_arn, dead_letter = local.dead_letter_arn }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [each.value]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

# An object function's queue takes the uploads bucket's S3 notifications: S3 may send to it, from
# that bucket in this account only.
data "aws_iam_policy_document" "queue" {
  source_policy_documents = [data.aws_iam_policy_document.deny_insecure_transport["queue"].json]

  dynamic "statement" {
    for_each = var.sender_bucket_arn == null ? [] : [1]

    content {
      sid       = "BucketNotifications"
      actions   = ["sqs:SendMessage"]
      resources = [local.queue_arn]

      principals {
        type        = "Service"
        identifiers = ["s3.amazonaws.com"]
      }

      condition {
        test     = "ArnEquals"
        variable = "aws:SourceArn"
        values   = [var.sender_bucket_arn]
      }

      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [data.aws_caller_identity.current.account_id]
      }
    }
  }
}

resource "aws_sqs_queue" "dead_letter" {
  name                       = "${var.name}-dlq"
  message_retention_seconds  = var.dead_letter_retention_seconds
  visibility_timeout_seconds = var.visibility_timeout_seconds
  kms_master_key_id          = var.kms_key_arn
  policy                     = data.aws_iam_policy_document.deny_insecure_transport["dead_letter"].json
  tags                       = var.tags
}

resource "aws_sqs_queue" "this" {
  count = var.create_queue ? 1 : 0

  name                       = var.name
  visibility_timeout_seconds = var.visibility_timeout_seconds
  message_retention_seconds  = var.message_retention_seconds
  receive_wait_time_seconds  = 20
  kms_master_key_id          = var.kms_key_arn
  policy                     = data.aws_iam_policy_document.queue.json
  tags                       = var.tags

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter.arn
    maxReceiveCount     = var.max_receive_count
  })
}

# Only this queue may redrive into the dead letter queue (or nothing, for a bare DLQ).
resource "aws_sqs_queue_redrive_allow_policy" "dead_letter" {
  count = var.create_redrive_allow_policy ? 1 : 0

  queue_url = aws_sqs_queue.dead_letter.id

  redrive_allow_policy = var.create_queue ? jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.this[0].arn]
    }) : jsonencode({
    redrivePermission = "denyAll"
  })
}
