variable "project" {
  description = "Project name, the first part of every resource name."
  type        = string
  default     = "contentfn"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.project))
    error_message = "project must be lowercase letters, digits and dashes (2-21 characters)."
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
  description = "AWS region."
  type        = string
}

variable "functions" {
  description = <<-EOT
    The function set: one entry per folder under functions/. Adding a function is one entry.
    trigger: object (S3 ObjectCreated and ObjectRemoved on the uploads bucket), queue (SQS job batches), schedule
    (EventBridge Scheduler; `schedule` is a rate() or cron() expression) or http (the HTTP API).
    publishes_to: queue-triggered functions (or "detect", the GPU queue) the function sends jobs to.
    secrets: keys of `secrets` the function may read.
    imports_dead_letters: the function drains every dead-letter queue into the dead-letter store.
  EOT
  type = map(object({
    trigger              = string
    timeout_s            = optional(number, 60)
    memory_mb            = optional(number, 512)
    reserved_concurrency = optional(number, -1)
    schedule             = optional(string)
    batch_size           = optional(number, 10)
    batching_window_s    = optional(number, 0)
    max_concurrency      = optional(number, 2)
    publishes_to         = optional(list(string), [])
    bucket_access        = optional(string, "none")
    secrets              = optional(list(string), ["database-url"])
    environment          = optional(map(string), {})
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
    condition     = length([for f in values(var.functions) : f if f.trigger == "http"]) <= 1
    error_message = "At most one function serves the HTTP API."
  }

  validation {
    condition     = alltrue([for f in values(var.functions) : contains(["none", "read", "read_write"], f.bucket_access)])
    error_message = "bucket_access must be one of: none, read, read_write."
  }

  validation {
    condition     = alltrue([for f in values(var.functions) : f.trigger != "object" || f.bucket_access != "none"])
    error_message = "Object-triggered functions need bucket_access read or read_write."
  }

  validation {
    condition     = alltrue(flatten([for f in values(var.functions) : [for s in f.secrets : contains(["database-url", "api-key", "llm-api-key", "redis-url", "spotify-client-secret", "genius-token"], s)]]))
    error_message = "secrets may name only: database-url, api-key, llm-api-key, redis-url, spotify-client-secret, genius-token."
  }
}

variable "image_tag" {
  description = "Tag of the function image in the functions repository."
  type        = string
}

variable "gpu_image_tag" {
  description = "Tag of the GPU worker image in the gpu-worker repository."
  type        = string
}

variable "gpu" {
  description = "GPU service capacity, set in one place: max_instances is the GPU cap (0 disables the service); batch, in-flight and wait limits are passed to the worker."
  type = object({
    max_instances = number
    min_instances = optional(number, 0)
    max_batch     = optional(number, 8)
    max_in_flight = optional(number, 2)
    max_wait_ms   = optional(number, 50)
    instance_type = optional(string, "g5.xlarge")
    # One process owns the GPU and the pipelines send it batches through shared memory
    # (CONTENTFN_GPU_DEVICE_PROCESS: memfds, counted as the container's memory; no /dev/shm needed).
    device_process = optional(bool, false)
    # Ports the workers may open video streams on, besides 443 (rtsp 554 and 8554, rtsps 322,
    # http 80; streams are read over TCP). A stream on another port needs it here.
    stream_ports = optional(list(number), [80, 322, 554, 8554])
    # More of the worker's CONTENTFN_* settings (CONTENTFN_GPU_DEVICE_CALLS,
    # CONTENTFN_DETECTOR_PROVIDER_OPTIONS, CONTENTFN_DETECTOR_MODEL_PATH for a model mounted in place
    # of the one baked into the image, ...); the caps above are set from their own fields.
    environment = optional(map(string), {})
  })

  validation {
    condition     = alltrue([for p in var.gpu.stream_ports : p >= 1 && p <= 65535 && floor(p) == p && p != 5432 && p != 6379])
    error_message = "gpu.stream_ports must be TCP port numbers (1-65535), not the database's or the cache's."
  }

  validation {
    condition     = var.gpu.max_instances >= 0 && var.gpu.max_instances <= 100 && floor(var.gpu.max_instances) == var.gpu.max_instances
    error_message = "gpu.max_instances must be a whole number between 0 and 100."
  }

  validation {
    condition     = alltrue([for k in keys(var.gpu.environment) : startswith(k, "CONTENTFN_") && !contains(["CONTENTFN_GPU_MAX_INSTANCES", "CONTENTFN_GPU_MAX_BATCH", "CONTENTFN_GPU_MAX_IN_FLIGHT", "CONTENTFN_GPU_MAX_WAIT_MS", "CONTENTFN_GPU_DEVICE_PROCESS"], k)])
    error_message = "gpu.environment takes CONTENTFN_* settings other than the caps and device_process, which have their own fields."
  }

  validation {
    condition     = var.gpu.min_instances >= 0 && var.gpu.min_instances <= var.gpu.max_instances
    error_message = "gpu.min_instances must be between 0 and gpu.max_instances."
  }
}

variable "database" {
  description = "RDS PostgreSQL settings."
  type = object({
    instance_class        = optional(string, "db.t4g.medium")
    engine_version        = optional(string, "16")
    allocated_storage_gb  = optional(number, 20)
    multi_az              = optional(bool, true)
    backup_retention_days = optional(number, 7)
    deletion_protection   = optional(bool, true)
  })
  default = {}
}

variable "cache" {
  description = "ElastiCache Redis settings."
  type = object({
    node_type          = optional(string, "cache.t4g.small")
    num_cache_clusters = optional(number, 2)
  })
  default = {}
}

variable "redis_auth_token" {
  description = "Redis AUTH token; pass it as TF_VAR_redis_auth_token from a secret store. Required when create_cache is true."
  type        = string
  default     = null
  sensitive   = true
}

variable "api_authorization_type" {
  description = "Authorizer of the HTTP API routes."
  type        = string
  default     = "AWS_IAM"

  validation {
    condition     = contains(["AWS_IAM", "JWT"], var.api_authorization_type)
    error_message = "api_authorization_type must be AWS_IAM or JWT."
  }
}

variable "jwt_issuer" {
  description = "OIDC issuer (api_authorization_type = JWT)."
  type        = string
  default     = null
}

variable "jwt_audience" {
  description = "Accepted JWT audiences (api_authorization_type = JWT)."
  type        = list(string)
  default     = []
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
  description = "Deliveries before a job is dead-lettered: the queues' maxReceiveCount and CONTENTFN_QUEUE_MAX_ATTEMPTS."
  type        = number
  default     = 5

  validation {
    condition     = var.queue_max_attempts >= 1 && var.queue_max_attempts <= 100
    error_message = "queue_max_attempts must be between 1 and 100."
  }
}

variable "vpc_cidr_block" {
  description = "CIDR block of the VPC."
  type        = string
  default     = "10.40.0.0/16"
}

variable "log_retention_days" {
  description = "Retention of every log group."
  type        = number
  default     = 365
}

variable "force_destroy" {
  description = "Whether destroy removes non-empty buckets and repositories (disposable environments only)."
  type        = bool
  default     = false
}

variable "create_nat_gateway" {
  description = "Whether private subnets get internet egress through a NAT gateway: the AWS APIs (Secrets Manager, RDS, SQS, ECR, ECS, CloudWatch; only S3 has a VPC endpoint), scrape sources, the LLM API. Off only with interface endpoints of your own."
  type        = bool
  default     = true
}

variable "create_redrive_allow_policies" {
  description = "Whether dead letter queues accept redrive only from their own queue (off only for emulators without RedriveAllowPolicy)."
  type        = bool
  default     = true
}

variable "create_gpu_service" {
  description = "Whether to create the ECS GPU service (also off when gpu.max_instances is 0)."
  type        = bool
  default     = true
}

variable "create_database" {
  description = "Whether to create the RDS PostgreSQL instance."
  type        = bool
  default     = true
}

variable "create_cache" {
  description = "Whether to create the ElastiCache Redis replication group."
  type        = bool
  default     = true
}

variable "create_http_api" {
  description = "Whether to create the API Gateway HTTP API in front of the http function."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "alarm_topic_arn" {
  description = "SNS topic every alarm notifies (an on-call integration, a mail list); null creates an encrypted <project>-<environment>-alarms topic to subscribe to."
  type        = string
  default     = null
}

variable "alarm_thresholds" {
  description = "Alarm thresholds: oldest queued message age (s), share of the daily LLM token budget, GPU queue lag (s)."
  type = object({
    oldest_message_age_s = optional(number, 900)
    llm_budget_ratio     = optional(number, 0.8)
    gpu_queue_lag_s      = optional(number, 60)
  })
  default = {}
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
  description = "The only key prefix of the uploads bucket the API may write (signed upload URLs); no other function writes the bucket. Passed to the API as CONTENTFN_UPLOAD_PREFIX, so the keys it signs and the grant are one value (its default is the setting's)."
  type        = string
  default     = "incoming/"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9._-]*/$", var.signed_upload_prefix)) && length(var.signed_upload_prefix) <= 100 && var.signed_upload_prefix != "images/"
    error_message = "signed_upload_prefix must look like incoming/ (lower-case letters, digits, . _ -, ending in one /; at most 100 characters) and must not be images/."
  }
}

variable "console_origins" {
  description = "Origins of the web console allowed to PUT to signed upload URLs and GET signed image URLs of the uploads bucket (CORS). null: the HTTP API's own URL (where the console is served); set it when the console is reached through a custom domain."
  type        = list(string)
  default     = null
}

variable "database_ca_bundle_path" {
  description = "Path, inside the function and GPU images, of Amazon RDS's CA bundle (global-bundle.pem from https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem, placed there when the images are built): every connection verifies the server against it (sslmode=verify-full)."
  type        = string
  default     = "/opt/contentfn/certs/rds-global-bundle.pem"
}
