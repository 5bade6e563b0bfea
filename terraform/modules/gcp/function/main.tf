locals {
  is_object   = var.trigger == "object"
  is_schedule = var.trigger == "schedule"
  # Cloud Run refuses more than one request at a time on less than one vCPU, and the CPU it derives
  # from memory is below one up to 2 GiB: such a function gets one vCPU per 4 GiB (at least one).
  # One request at a time keeps the CPU Cloud Run derives from the memory.
  available_cpu = var.concurrency > 1 ? tostring(max(1, ceil(var.memory_mb / 4096))) : null

  # Who may invoke the function: its own trigger identity plus the explicitly named invokers.
  invokers = merge(
    var.trigger == "http" ? {} : { trigger = "serviceAccount:${google_service_account.invoker.email}" },
    var.invokers,
  )
}

resource "google_service_account" "this" {
  project      = var.project_id
  account_id   = var.name
  display_name = "contentfn ${var.function_key} function"
}

# The identity Eventarc, Pub/Sub push and Cloud Scheduler use to call the function.
resource "google_service_account" "invoker" {
  project      = var.project_id
  account_id   = "${var.name}-inv"
  display_name = "Invokes the contentfn ${var.function_key} function"
}

resource "google_cloudfunctions2_function" "this" {
  project     = var.project_id
  name        = var.name
  location    = var.region
  description = "contentfn ${var.function_key} (${var.trigger} trigger)"
  labels      = var.labels

  build_config {
    runtime         = var.runtime
    entry_point     = var.entry_point
    service_account = var.build_service_account_id

    source {
      storage_source {
        bucket = var.source_bucket
        object = var.source_object
      }
    }
  }

  service_config {
    available_memory                 = "${var.memory_mb}M"
    available_cpu                    = local.available_cpu
    timeout_seconds                  = var.timeout_s
    min_instance_count               = 0
    max_instance_count               = var.max_instances
    max_instance_request_concurrency = var.concurrency
    service_account_email            = google_service_account.this.email
    ingress_settings                 = var.ingress_settings
    all_traffic_on_latest_revision   = true
    vpc_connector                    = var.vpc_connector_id
    vpc_connector_egress_settings    = "PRIVATE_RANGES_ONLY"
    # The idempotency claim of a delivery lasts just past this timeout (shared.idempotency).
    environment_variables = merge(var.environment, { CONTENTFN_FUNCTION = var.function_key, CONTENTFN_FUNCTION_TIMEOUT_S = tostring(var.timeout_s) })

    dynamic "secret_environment_variables" {
      for_each = var.secrets

      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = "latest"
      }
    }
  }

  # Object finalize on the uploads bucket, delivered by Eventarc with retries.
  dynamic "event_trigger" {
    for_each = local.is_object ? [1] : []

    content {
      trigger_region        = var.bucket_location
      event_type            = "google.cloud.storage.object.v1.finalized"
      retry_policy          = "RETRY_POLICY_RETRY"
      service_account_email = google_service_account.invoker.email

      event_filters {
        attribute = "bucket"
        value     = var.bucket_name
      }
    }
  }

  depends_on = [google_secret_manager_secret_iam_member.this]
}

# Object deletions on the uploads bucket, to the same service: a gen2 function holds one trigger,
# so the second is its own Eventarc trigger. A deleted (or overwritten) generation removes the
# tracks it alone fed; the function tells the two event types apart.
resource "google_eventarc_trigger" "object_deleted" {
  count = local.is_object ? 1 : 0

  project         = var.project_id
  name            = "${var.name}-deleted"
  location        = var.bucket_location
  service_account = google_service_account.invoker.email
  labels          = var.labels

  matching_criteria {
    attribute = "type"
    value     = "google.cloud.storage.object.v1.deleted"
  }

  matching_criteria {
    attribute = "bucket"
    value     = var.bucket_name
  }

  destination {
    cloud_run_service {
      service = google_cloudfunctions2_function.this.name
      region  = var.region
    }
  }

  depends_on = [google_cloud_run_service_iam_member.invoker]
}

resource "google_secret_manager_secret_iam_member" "this" {
  for_each = var.secrets

  project   = var.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.this.email}"
}

resource "google_cloud_run_service_iam_member" "invoker" {
  for_each = local.invokers

  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.this.name
  role     = "roles/run.invoker"
  member   = each.value
}

resource "google_cloud_scheduler_job" "this" {
  count = local.is_schedule ? 1 : 0

  project          = var.project_id
  region           = var.region
  name             = var.name
  description      = "contentfn ${var.function_key} schedule"
  schedule         = var.schedule
  time_zone        = var.schedule_timezone
  attempt_deadline = "${min(var.timeout_s, 1800)}s"

  retry_config {
    retry_count          = 3
    min_backoff_duration = "30s"
    max_backoff_duration = "600s"
  }

  http_target {
    uri         = google_cloudfunctions2_function.this.service_config[0].uri
    http_method = "POST"
    body        = base64encode(jsonencode({ source = "contentfn.scheduler", function = var.function_key }))
    headers     = { "Content-Type" = "application/json" }

    oidc_token {
      service_account_email = google_service_account.invoker.email
      audience              = google_cloudfunctions2_function.this.service_config[0].uri
    }
  }

  depends_on = [google_cloud_run_service_iam_member.invoker]
}
