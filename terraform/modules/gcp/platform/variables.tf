variable "project_id" {
  description = "GCP project ID."
  type        = string
}

variable "project" {
  description = "Project name, the first part of every resource name."
  type        = string
  default     = "contentfn"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,12}$", var.project))
    error_message = "project must be 2-13 lowercase letters, digits and dashes (service account IDs are short)."
  }
}

variable "environment" {
  description = "Environment name."
  type        = string

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be one of: dev, staging, prod."
  }
}

variable "region" {
  description = "GCP region (one with Cloud Run GPUs for the GPU service)."
  type        = string
}

variable "functions" {
  description = <<-EOT
    The function set: one entry per folder under functions/. Adding a function is one entry.
    trigger: object (GCS finalize on the uploads bucket via Eventarc), queue (Pub/Sub push
    subscription with a dead-letter topic), schedule (Cloud Scheduler; `schedule` is a unix cron
    expression) or http (private HTTPS; callers listed in api_invokers).
    publishes_to: queue-triggered functions (or "detect", the GPU queue) the function sends jobs to.
    secrets: keys of the Secret Manager secrets the function may read.
    imports_dead_letters: the function drains every dead-letter subscription into the dead-letter store.
  EOT
  type = map(object({
    trigger       = string
    timeout_s     = optional(number, 60)
    memory_mb     = optional(number, 512)
    max_instances = optional(number, 10)
    concurrency   = optional(number, 1)
    schedule      = optional(string)
    publishes_to  = optional(list(string), [])
    bucket_access = optional(string, "none")
    secrets       = optional(list(string), ["database-url"])
    environment   = optional(map(string), {})

    imports_dead_letters = optional(bool, false)
  }))

  validation {
    condition     = alltrue([for f in values(var.functions) : contains(["object", "queue", "schedule", "http"], f.trigger)])
    error_message = "Every function's trigger must be one of: object, queue, schedule, http."
  }

  validation {
    condition     = alltrue([for f in values(var.functions) : (f.trigger == "schedule") == (f.schedule != null)])
    error_message = "A schedule is required for, and only for, functions with trigger = schedule."
  }

  validation {
    condition = alltrue(flatten([for f in values(var.functions) : [
      for q in f.publishes_to : q == "detect" || try(var.functions[q].trigger, "") == "queue"
    ]]))
    error_message = "publishes_to may name only queue-triggered functions or \"detect\"."
  }

  validation {
    condition     = alltrue([for f in values(var.functions) : f.trigger != "queue" || f.timeout_s <= 600])
    error_message = "Queue-triggered functions must time out within 600 s (the longest Pub/Sub ack deadline)."
  }

  validation {
    condition     = alltrue([for f in values(var.functions) : contains(["none", "read", "read_write"], f.bucket_access)])
    error_message = "bucket_access must be one of: none, read, read_write."
  }

  validation {
    condition     = alltrue(flatten([for f in values(var.functions) : [for s in f.secrets : contains(["database-url", "api-key", "llm-api-key", "redis-url", "spotify-client-secret", "genius-token"], s)]]))
    error_message = "secrets may name only: database-url, api-key, llm-api-key, redis-url, spotify-client-secret, genius-token."
  }
}

variable "source_object" {
  description = "Source archive of the functions in the sources bucket (see terraform/README.md)."
  type        = string
}

variable "gpu_image_tag" {
  description = "Tag of the GPU worker image in the Artifact Registry repository."
  type        = string
}

variable "gpu" {
  description = "GPU service capacity, set in one place: max_instances is the GPU cap (0 disables the service); batch, in-flight and wait limits are passed to the worker."
  type = object({
    max_instances = number
    min_instances = optional(number, 1)
    max_batch     = optional(number, 8)
    max_in_flight = optional(number, 2)
    max_wait_ms   = optional(number, 50)
    accelerator   = optional(string, "nvidia-l4")
    # One process owns the GPU and the pipelines send it batches through shared memory
    # (CONTENTFN_GPU_DEVICE_PROCESS: memfds, counted as the container's memory; no /dev/shm needed).
    device_process = optional(bool, false)
    # More of the worker's CONTENTFN_* settings (CONTENTFN_GPU_DEVICE_CALLS,
    # CONTENTFN_DETECTOR_PROVIDER_OPTIONS, CONTENTFN_DETECTOR_MODEL_PATH for a model mounted in place
    # of the one baked into the image, ...); the caps above are set from their own fields.
    environment = optional(map(string), {})
  })

  validation {
    condition     = var.gpu.max_instances >= 0 && var.gpu.max_instances <= 100 && floor(var.gpu.max_instances) == var.gpu.max_instances
    error_message = "gpu.max_instances must be a whole number between 0 and 100."
  }

  validation {
    condition     = alltrue([for k in keys(var.gpu.environment) : startswith(k, "CONTENTFN_") && !contains(["CONTENTFN_GPU_MAX_INSTANCES", "CONTENTFN_GPU_MAX_BATCH", "CONTENTFN_GPU_MAX_IN_FLIGHT", "CONTENTFN_GPU_MAX_WAIT_MS", "CONTENTFN_GPU_DEVICE_PROCESS"], k)])
    error_message = "gpu.environment takes CONTENTFN_* settings other than the caps and device_process, which have their own fields."
  }

  validation {
    condition     = var.gpu.max_instances == 0 || (var.gpu.min_instances >= 1 && var.gpu.min_instances <= var.gpu.max_instances)
    error_message = "gpu.min_instances must be between 1 and gpu.max_instances: Cloud Run starts instances for requests, and the GPU worker pulls its queue and gets none, so a service scaled to zero would never start again (max_instances = 0 removes it)."
  }
}

variable "database" {
  description = "Cloud SQL for PostgreSQL settings."
  type = object({
    tier                = optional(string, "db-custom-2-7680")
    database_version    = optional(string, "POSTGRES_16")
    availability_type   = optional(string, "REGIONAL")
    disk_size_gb        = optional(number, 20)
    retained_backups    = optional(number, 7)
    deletion_protection = optional(bool, true)
  })
  default = {}
}

variable "cache" {
  description = "Memorystore Redis settings."
  type = object({
    tier           = optional(string, "STANDARD_HA")
    memory_size_gb = optional(number, 1)
  })
  default = {}
}

variable "api_invokers" {
  description = "Members allowed to call the HTTP function, by a static key (e.g. frontend = serviceAccount:...). Empty keeps it private."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for m in values(var.api_invokers) : !contains(["allUsers", "allAuthenticatedUsers"], m)])
    error_message = "api_invokers must name identities; allUsers and allAuthenticatedUsers are not allowed."
  }
}

variable "api_ingress" {
  description = "Ingress of the HTTP function: internal only, or internal plus an external HTTPS load balancer."
  type        = string
  default     = "ALLOW_INTERNAL_AND_GCLB"

  validation {
    condition     = contains(["ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.api_ingress)
    error_message = "api_ingress must be ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}

variable "log_level" {
  description = "CONTENTFN_LOG_LEVEL of every process."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be one of: DEBUG, INFO, WARNING, ERROR."
  }
}

variable "hnsw_ef_search" {
  description = "CONTENTFN_HNSW_EF_SEARCH (search recall/latency trade-off)."
  type        = number
  default     = 200

  validation {
    condition     = var.hnsw_ef_search >= 10 && var.hnsw_ef_search <= 1000
    error_message = "hnsw_ef_search must be between 10 and 1000."
  }
}

variable "queue_max_attempts" {
  description = "Deliveries before a job is dead-lettered (Pub/Sub allows 5-100) and CONTENTFN_QUEUE_MAX_ATTEMPTS."
  type        = number
  default     = 5

  validation {
    condition     = var.queue_max_attempts >= 5 && var.queue_max_attempts <= 100
    error_message = "queue_max_attempts must be between 5 and 100 (Pub/Sub dead-letter limits)."
  }
}

variable "subnet_cidr" {
  description = "Primary range of the subnetwork."
  type        = string
  default     = "10.50.0.0/20"
}

variable "connector_cidr" {
  description = "/28 range of the Serverless VPC Access connector."
  type        = string
  default     = "10.50.16.0/28"
}

variable "force_destroy" {
  description = "Whether destroy removes non-empty buckets (disposable environments only)."
  type        = bool
  default     = false
}

variable "create_gpu_service" {
  description = "Whether to create the Cloud Run GPU service (also off when gpu.max_instances is 0)."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels of every resource that takes them."
  type        = map(string)
  default     = {}
}

variable "notification_channels" {
  description = "Cloud Monitoring notification channel IDs (projects/P/notificationChannels/N) every alert policy notifies."
  type        = list(string)
  default     = []
}

variable "alarm_thresholds" {
  description = "Alert thresholds: oldest_message_age_s (900), llm_budget_ratio (0.8), gpu_queue_lag_s (60; CONTENTFN_GPU_TARGET_LATENCY_S)."
  type = object({
    oldest_message_age_s = optional(number, 900)
    llm_budget_ratio     = optional(number, 0.8)
    gpu_queue_lag_s      = optional(number, 60)
  })
  default = {}
}

variable "metrics_otlp_endpoint" {
  description = "OTLP/HTTP endpoint the functions push their metrics to (CONTENTFN_METRICS_OTLP_ENDPOINT); Cloud Monitoring's by default, read by Managed Prometheus. null: not pushed."
  type        = string
  default     = "https://telemetry.googleapis.com/v1/metrics"
}

variable "tracing" {
  description = "Span export: the OTLP/HTTP endpoint of a collector, or of X-Ray / Cloud Trace where reachable (empty: no spans exported; trace context still travels with the jobs), and the share of uploads traced."
  type = object({
    otlp_endpoint = optional(string, "")
    sample_ratio  = optional(number, 0.1)
  })
  default = {}

  validation {
    condition     = var.tracing.sample_ratio >= 0 && var.tracing.sample_ratio <= 1
    error_message = "tracing.sample_ratio must be between 0 and 1."
  }

  validation {
    condition     = var.tracing.otlp_endpoint == "" || can(regex("^https?://", var.tracing.otlp_endpoint))
    error_message = "tracing.otlp_endpoint must be empty or an http(s):// URL."
  }
}

variable "signed_upload_prefix" {
  description = "The only key prefix of the uploads bucket the API may write (V4 signed upload URLs; an IAM condition on its objectCreator grant); no other function writes the bucket. Passed to the API as CONTENTFN_UPLOAD_PREFIX, so the keys it signs and the grant are one value (its default is the setting's)."
  type        = string
  default     = "incoming/"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9._-]*/$", var.signed_upload_prefix)) && length(var.signed_upload_prefix) <= 100 && var.signed_upload_prefix != "images/"
    error_message = "signed_upload_prefix must look like incoming/ (lower-case letters, digits, . _ -, ending in one /; at most 100 characters) and must not be images/."
  }
}

variable "console_origins" {
  description = "Origins (https://host) the web console is opened at, allowed by the uploads bucket's CORS to PUT to signed upload URLs and GET signed image URLs. Required: the API is reached through an HTTPS load balancer (or a custom domain) that Terraform does not create, so its origin is not known here; [] allows no browser uploads."
  type        = list(string)
}
