# Alarms and a dashboard over what AWS measures itself (SQS, Lambda) and what the product emits
# into var.metrics_namespace: EMF from the functions (dimension `service` = the function, plus the
# Prometheus labels) and the GPU service's /metrics, collected by its CloudWatch agent (service =
# "gpu"). Metric names are the Prometheus ones, as on the Grafana dashboard of the repository.

locals {
  topic_arn = var.alarm_topic_arn != null ? var.alarm_topic_arn : aws_sns_topic.alarms[0].arn
  actions   = [local.topic_arn]
  ns        = var.metrics_namespace

  # A widget per question; SEARCH picks every series of a metric whatever its label values.
  search = {
    requests = "SEARCH('{${local.ns},service,route,method,status} MetricName=\"contentfn_http_requests_total\"', 'Sum', 300)"
    latency  = "SEARCH('{${local.ns},service,route,status_class} MetricName=\"contentfn_http_request_duration_seconds_sum\"', 'Sum', 300)"
    jobs     = "SEARCH('{${local.ns},service,kind,outcome} MetricName=\"contentfn_jobs_total\"', 'Sum', 300)"
    outbox   = "SEARCH('{${local.ns},service,kind} MetricName=\"contentfn_queue_depth\"', 'Maximum', 300)"
    dead     = "SEARCH('{${local.ns},service,kind} MetricName=\"contentfn_dead_letters\"', 'Maximum', 300)"
    embed    = "SEARCH('{${local.ns},service,model} MetricName=\"contentfn_embedded_texts_total\"', 'Sum', 300)"
    cache    = "SEARCH('{${local.ns},service,kind,result} MetricName=\"contentfn_cache_requests_total\"', 'Sum', 300)"
    routing  = "SEARCH('{${local.ns},service,route} MetricName=\"contentfn_analyses_total\"', 'Sum', 3600)"
    llm      = "SEARCH('{${local.ns},service,analyzer,outcome} MetricName=\"contentfn_llm_calls_total\"', 'Sum', 300)"
    tokens   = "SEARCH('{${local.ns},service,analyzer,direction} MetricName=\"contentfn_llm_tokens_total\"', 'Sum', 300)"
    cost     = "SEARCH('{${local.ns},service,analyzer} MetricName=\"contentfn_llm_cost_usd_total\"', 'Sum', 3600)"
    breaker  = "SEARCH('{${local.ns},service,breaker} MetricName=\"contentfn_breaker_state\"', 'Maximum', 300)"
    sqs_age  = "SEARCH('{AWS/SQS,QueueName} MetricName=\"ApproximateAgeOfOldestMessage\" ${var.name}', 'Maximum', 300)"
    sqs_dlq  = "SEARCH('{AWS/SQS,QueueName} MetricName=\"ApproximateNumberOfMessagesVisible\" ${var.name} dlq', 'Maximum', 300)"
    errors   = "SEARCH('{AWS/Lambda,FunctionName} MetricName=\"Errors\" ${var.name}', 'Sum', 300)"
  }
  gpu_metrics = ["contentfn_gpu_batch_fill", "contentfn_gpu_images_per_second", "contentfn_gpu_busy_ratio", "contentfn_gpu_queue_lag_seconds"]

  widgets = concat(
    [for i, w in [
      ["API requests by route and status", local.search.requests],
      ["API time by route (s per 5 min)", local.search.latency],
      ["Lambda errors", local.search.errors],
      ["Stage throughput by kind and outcome", local.search.jobs],
      ["Oldest message by queue (s)", local.search.sqs_age],
      ["Dead-letter queue depth", local.search.sqs_dlq],
      ["Postgres outbox depth by kind", local.search.outbox],
      ["Dead letters in the store by kind", local.search.dead],
      ["Embed rate (texts per 5 min)", local.search.embed],
      ["Cache look-ups by kind and result", local.search.cache],
      ["Analysis routing mix (per hour)", local.search.routing],
      ["LLM calls by outcome", local.search.llm],
      ["LLM tokens by direction", local.search.tokens],
      ["LLM cost (USD per hour)", local.search.cost],
      ["LLM breaker (0 closed, 1 half-open, 2 open)", local.search.breaker],
      ] : {
      type   = "metric"
      x      = (i % 3) * 8
      y      = floor(i / 3) * 6
      width  = 8
      height = 6
      properties = {
        title   = w[0]
        region  = var.region
        view    = "timeSeries"
        metrics = [[{ expression = w[1], id = "e1", label = "" }]]
      }
    }],
    [
      {
        type   = "metric"
        x      = 0
        y      = 30
        width  = 12
        height = 6
        properties = {
          title   = "LLM budget used today"
          region  = var.region
          view    = "timeSeries"
          metrics = [[local.ns, "contentfn_llm_budget_used_ratio", "service", "analyze", { stat = "Maximum" }]]
          annotations = {
            horizontal = [{ label = "alarm", value = var.thresholds.llm_budget_ratio }]
          }
        }
      },
      {
        type   = "metric"
        x      = 12
        y      = 30
        width  = 12
        height = 6
        properties = {
          title   = "GPU service: batch fill, img/s, busy ratio, queue lag"
          region  = var.region
          view    = "timeSeries"
          metrics = [for m in local.gpu_metrics : [local.ns, m, "service", "gpu", { stat = "Average" }]]
        }
      },
    ],
  )
}

resource "aws_sns_topic" "alarms" {
  count = var.alarm_topic_arn == null ? 1 : 0

  name              = "${var.name}-alarms"
  kms_master_key_id = var.kms_key_arn
  tags              = var.tags
}

resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  for_each = var.dead_letter_queue_names

  alarm_name          = "${var.name}-${each.key}-dead-letters"
  alarm_description   = "Messages in the ${each.key} dead-letter queue: they failed every attempt (contentfn dead list, then redrive)."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "oldest_message" {
  for_each = var.queue_names

  alarm_name          = "${var.name}-${each.key}-oldest-message"
  alarm_description   = "The oldest ${each.key} job has waited over ${var.thresholds.oldest_message_age_s} s: its consumer is not keeping up or is failing."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.thresholds.oldest_message_age_s
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "function_errors" {
  for_each = var.function_names

  alarm_name          = "${var.name}-${each.key}-errors"
  alarm_description   = "The ${each.key} function failed invocations (unhandled errors; partial batch failures are retried, not errors)."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = each.value }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

# Reported by the analyze function after each batch (shared.platform.runtime.report_store_metrics).
resource "aws_cloudwatch_metric_alarm" "llm_budget" {
  alarm_name          = "${var.name}-llm-budget"
  alarm_description   = "Over ${var.thresholds.llm_budget_ratio * 100}% of today's LLM token budget is used; analyses fall back to rules when it is spent."
  namespace           = local.ns
  metric_name         = "contentfn_llm_budget_used_ratio"
  dimensions          = { service = "analyze" }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = var.thresholds.llm_budget_ratio
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

# Collected from the GPU service's /metrics by its CloudWatch agent (gpu_service module).
resource "aws_cloudwatch_metric_alarm" "gpu_queue_lag" {
  count = var.gpu_service ? 1 : 0

  alarm_name          = "${var.name}-gpu-queue-lag"
  alarm_description   = "The oldest detection job has waited over ${var.thresholds.gpu_queue_lag_s} s, the latency the GPU cap is sized for."
  namespace           = local.ns
  metric_name         = "contentfn_gpu_queue_lag_seconds"
  dimensions          = { service = "gpu" }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.thresholds.gpu_queue_lag_s
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = jsonencode({ widgets = local.widgets })
}
