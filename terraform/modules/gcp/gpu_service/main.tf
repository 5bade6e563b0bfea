locals {
  # The capacity caps, set once by the caller and handed to the worker as configuration.
  cap_environment = {
    CONTENTFN_GPU_MAX_INSTANCES = tostring(var.max_instances)
    CONTENTFN_GPU_MAX_BATCH     = tostring(var.max_batch)
    CONTENTFN_GPU_MAX_IN_FLIGHT = tostring(var.max_in_flight)
    CONTENTFN_GPU_MAX_WAIT_MS   = tostring(var.max_wait_ms)
    CONTENTFN_GPU_QUEUE         = var.subscription_id
  }
  # /healthz and /metrics on the container port, where Cloud Run's probes look.
  probe_environment = {
    CONTENTFN_GPU_METRICS_HOST = "0.0.0.0"
    CONTENTFN_GPU_METRICS_PORT = "8080"
  }
  environment = merge(
    var.environment,
    local.probe_environment,
    # Uploaded images are read from the bucket in Cloud Storage (the service account may read it).
    { CONTENTFN_BLOB_BACKEND = "gcs" },
    # Detection jobs deferred by admission wait in Postgres; the service relays them to the topic of
    # its subscription once due (infra/gpu_worker/outbox.py).
    { CONTENTFN_QUEUES = jsonencode({ detect = var.topic_id }) },
    local.cap_environment,
    var.device_process ? { CONTENTFN_GPU_DEVICE_PROCESS = "true" } : {},
  )
}

resource "google_service_account" "this" {
  project      = var.project_id
  account_id   = var.name
  display_name = "contentfn GPU inference worker"
}

# A pull worker: internal ingress only and no invokers; it is reached by nobody and pulls its jobs.
resource "google_cloud_run_v2_service" "this" {
  project             = var.project_id
  name                = var.name
  location            = var.region
  ingress             = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  deletion_protection = var.deletion_protection
  labels              = var.labels

  template {
    service_account                  = google_service_account.this.email
    max_instance_request_concurrency = var.max_in_flight
    gpu_zonal_redundancy_disabled    = true
    timeout                          = "300s"

    scaling {
      min_instance_count = var.min_instances
      max_instance_count = var.max_instances
    }

    node_selector {
      accelerator = var.accelerator
    }

    vpc_access {
      egress = "PRIVATE_RANGES_ONLY"

      network_interfaces {
        network    = var.network_id
        subnetwork = var.subnetwork_id
      }
    }

    containers {
      name    = "gpu-worker"
      image   = var.image
      command = var.command
      # Its metrics are scraped from its first minute on.
      depends_on = ["metrics-collector"]

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu              = var.cpu
          memory           = var.memory
          "nvidia.com/gpu" = "1"
        }
        # Pulling and batching run outside requests, so CPU stays allocated.
        cpu_idle          = false
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.environment

        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = var.secrets

        content {
          name = env.key

          value_source {
            secret_key_ref {
              secret  = env.value
              version = "latest"
            }
          }
        }
      }

      startup_probe {
        http_get {
          path = "/healthz"
        }
        initial_delay_seconds = 10
        period_seconds        = 10
        failure_threshold     = 30
      }

      liveness_probe {
        http_get {
          path = "/healthz"
        }
        period_seconds = 30
      }
    }

    # Managed Service for Prometheus's Cloud Run sidecar: scrapes the worker's /metrics on the
    # container port (8080, its default target) and writes them to Cloud Monitoring, where the
    # PromQL alert policies and the dashboard read them.
    containers {
      name  = "metrics-collector"
      image = var.metrics_collector_image

      resources {
        limits = {
          cpu    = "1"
          memory = "512Mi"
        }
        cpu_idle = false
      }
    }
  }

  depends_on = [google_secret_manager_secret_iam_member.this]
}

resource "google_secret_manager_secret_iam_member" "this" {
  for_each = var.secrets

  project   = var.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.this.email}"
}

resource "google_pubsub_subscription_iam_member" "this" {
  project      = var.project_id
  subscription = var.subscription_id
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${google_service_account.this.email}"
}

# The collector sidecar writes the scraped metrics to Cloud Monitoring.
resource "google_project_iam_member" "metrics_writer" {
  project = var.project_id
  role    = "roles/monitoring.metricWriter"
  member  = "serviceAccount:${google_service_account.this.email}"
}

# The subscription's backlog (queue depth on /metrics) is reported only to Cloud Monitoring.
resource "google_project_iam_member" "metrics_reader" {
  project = var.project_id
  role    = "roles/monitoring.viewer"
  member  = "serviceAccount:${google_service_account.this.email}"
}

# Relays deferred jobs that fell due, and republishes released ones so that a release spends no
# delivery attempt (shared/queue/pubsub.py).
resource "google_pubsub_topic_iam_member" "relay" {
  project = var.project_id
  topic   = var.topic_id
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.this.email}"
}

# The uploaded images, and nothing else of the bucket (no track files).
resource "google_storage_bucket_iam_member" "this" {
  bucket = var.bucket_name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.this.email}"

  condition {
    title       = "images-only"
    description = "Objects under ${var.images_prefix} only"
    expression  = "resource.name.startsWith(\"projects/_/buckets/${var.bucket_name}/objects/${var.images_prefix}\")"
  }
}
