# Alert policies and a dashboard over what Google measures itself (Pub/Sub, Cloud Run) and what the
# product reports to Managed Prometheus: the functions' OTLP pushes and the GPU service's /metrics
# (collected by its sidecar). PromQL conditions use the expressions of the repository's Prometheus
# rules (infra/observability/prometheus/alerts.yml), so both name one metric alike.

locals {
  t = var.thresholds

  promql_tiles = [
    ["API requests by route and status", "sum by (route, status) (rate(contentfn_http_requests_total[5m]))"],
    ["API latency p95 by route (s)", "histogram_quantile(0.95, sum by (le, route) (rate(contentfn_http_request_duration_seconds_bucket[5m])))"],
    ["Stage throughput by kind and outcome", "sum by (kind, outcome) (rate(contentfn_jobs_total[5m]))"],
    ["Stage latency p95 by kind (s)", "histogram_quantile(0.95, sum by (le, kind) (rate(contentfn_job_duration_seconds_bucket[5m])))"],
    ["Postgres outbox depth by kind", "max by (kind) (contentfn_queue_depth)"],
    ["Oldest ready job by kind (s)", "max by (kind) (contentfn_queue_oldest_age_seconds)"],
    ["Dead letters by kind", "max by (kind) (contentfn_dead_letters)"],
    ["Embed rate (texts/s)", "sum by (model) (rate(contentfn_embedded_texts_total[5m]))"],
    ["Cache look-ups by kind and result", "sum by (kind, result) (rate(contentfn_cache_requests_total[5m]))"],
    ["Analysis routing mix", "sum by (route) (increase(contentfn_analyses_total[1h]))"],
    ["LLM calls by outcome", "sum by (analyzer, outcome) (rate(contentfn_llm_calls_total[5m]))"],
    ["LLM tokens by direction", "sum by (direction) (rate(contentfn_llm_tokens_total[5m]))"],
    ["LLM cost (USD per hour)", "sum(rate(contentfn_llm_cost_usd_total[1h])) * 3600"],
    ["LLM budget used today", "max(contentfn_llm_budget_used_ratio)"],
    ["LLM breaker (0 closed, 1 half-open, 2 open)", "max by (breaker) (contentfn_breaker_state)"],
    ["GPU batch fill", "avg(contentfn_gpu_batch_fill)"],
    ["GPU images per second", "sum(contentfn_gpu_images_per_second)"],
    ["GPU busy ratio", "avg(contentfn_gpu_busy_ratio)"],
    ["GPU queue lag (s)", "max(contentfn_gpu_queue_lag_seconds)"],
  ]
  tiles = [for i, t in local.promql_tiles : {
    xPos   = (i % 3) * 16
    yPos   = floor(i / 3) * 16
    width  = 16
    height = 16
    widget = {
      title = t[0]
      xyChart = {
        dataSets = [{ plotType = "LINE", timeSeriesQuery = { prometheusQuery = t[1] } }]
      }
    }
  }]

  functions_filter     = join(", ", [for n in values(var.function_names) : "\"${n}\""])
  subscriptions_filter = join(", ", [for n in values(var.subscription_names) : "\"${n}\""])
  dead_filter          = join(", ", [for n in values(var.dead_letter_subscription_names) : "\"${n}\""])
}

resource "google_monitoring_alert_policy" "dead_letters" {
  project               = var.project_id
  display_name          = "${var.name}: dead letters"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = var.labels

  documentation {
    content   = "Jobs failed every attempt. List them with `contentfn dead list`; fix the cause, then redrive."
    mime_type = "text/markdown"
  }

  conditions {
    display_name = "messages in a dead-letter subscription"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.label.subscription_id = one_of(${local.dead_filter})"
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  conditions {
    display_name = "dead letters in the store of record"
    condition_prometheus_query_language {
      query    = "sum by (kind) (contentfn_dead_letters) > 0"
      duration = "0s"
    }
  }
}

resource "google_monitoring_alert_policy" "oldest_message" {
  project               = var.project_id
  display_name          = "${var.name}: oldest message age"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = var.labels

  documentation {
    content   = "A job has waited over ${local.t.oldest_message_age_s} s: its consumer is not keeping up or is failing."
    mime_type = "text/markdown"
  }

  conditions {
    display_name = "oldest unacknowledged job message"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND resource.label.subscription_id = one_of(${local.subscriptions_filter})"
      comparison      = "COMPARISON_GT"
      threshold_value = local.t.oldest_message_age_s
      duration        = "0s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  conditions {
    display_name = "oldest ready job in the Postgres outbox"
    condition_prometheus_query_language {
      query    = "max by (kind) (contentfn_queue_oldest_age_seconds) > ${local.t.oldest_message_age_s}"
      duration = "300s"
    }
  }
}

resource "google_monitoring_alert_policy" "function_errors" {
  project               = var.project_id
  display_name          = "${var.name}: function errors"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = var.labels

  documentation {
    content   = "A function answered 5xx (a job left for redelivery, or an API error). Its logs name the cause."
    mime_type = "text/markdown"
  }

  conditions {
    display_name = "5xx answers of a function"
    condition_threshold {
      filter          = "resource.type = \"cloud_run_revision\" AND metric.type = \"run.googleapis.com/request_count\" AND metric.label.response_code_class = \"5xx\" AND resource.label.service_name = one_of(${local.functions_filter})"
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }
    }
  }
}

resource "google_monitoring_alert_policy" "llm_budget" {
  project               = var.project_id
  display_name          = "${var.name}: LLM budget"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = var.labels

  documentation {
    content   = "Over ${local.t.llm_budget_ratio * 100}% of today's LLM token budget is used; analyses fall back to rules once it is spent."
    mime_type = "text/markdown"
  }

  conditions {
    display_name = "share of today's token budget"
    condition_prometheus_query_language {
      query    = "max(contentfn_llm_budget_used_ratio) >= ${local.t.llm_budget_ratio}"
      duration = "0s"
    }
  }
}

resource "google_monitoring_alert_policy" "gpu_queue_lag" {
  count = var.gpu_service ? 1 : 0

  project               = var.project_id
  display_name          = "${var.name}: GPU queue lag"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = var.labels

  documentation {
    content   = "The oldest detection job has waited over ${local.t.gpu_queue_lag_s} s, the latency the GPU cap is sized for."
    mime_type = "text/markdown"
  }

  conditions {
    display_name = "age of the oldest detection job"
    condition_prometheus_query_language {
      query    = "max(contentfn_gpu_queue_lag_seconds) > ${local.t.gpu_queue_lag_s}"
      duration = "300s"
    }
  }
}

resource "google_monitoring_dashboard" "this" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName  = var.name
    mosaicLayout = { columns = 48, tiles = local.tiles }
  })
}
