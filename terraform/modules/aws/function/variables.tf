variable "name" {
  description = "Name of the function, its role, log group and queues."
  type        = string
}

variable "function_key" {
  description = "Name of the function in the function set (the folder under functions/)."
  type        = string
}

variable "trigger" {
  description = "What invokes the function."
  type        = string

  validation {
    condition     = contains(["object", "queue", "schedule", "http"], var.trigger)
    error_message = "trigger must be one of: object, queue, schedule, http."
  }
}

variable "image_uri" {
  description = "Container image of the function set (ECR URI with tag or digest)."
  type        = string
}

variable "command" {
  description = "Image command selecting the handler (e.g. [\"functions.embed.aws.handler\"])."
  type        = list(string)
}

variable "architecture" {
  description = "Instruction set of the image."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "timeout_s" {
  description = "Function timeout in seconds."
  type        = number
  default     = 60

  validation {
    condition     = var.timeout_s >= 1 && var.timeout_s <= 900
    error_message = "timeout_s must be between 1 and 900."
  }
}

variable "memory_mb" {
  description = "Memory of the function in MB."
  type        = number
  default     = 512

  validation {
    condition     = var.memory_mb >= 128 && var.memory_mb <= 10240
    error_message = "memory_mb must be between 128 and 10240."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions; -1 leaves the function unreserved."
  type        = number
  default     = -1
}

variable "environment" {
  description = "Plain environment variables (CONTENTFN_*)."
  type        = map(string)
  default     = {}
}

variable "secrets" {
  description = "Secrets Manager secrets (name and ARN) by environment variable name; each is passed as <NAME>_SECRET_ID and readable by this function only."
  type = map(object({
    name = string
    arn  = string
  }))
  default = {}
}

variable "database_instance_arn" {
  description = "ARN of the RDS instance (CONTENTFN_DATABASE_RDS_INSTANCE) the code describes for its endpoint; null: none."
  type        = string
  default     = null
}

variable "read_database_login" {
  description = "Whether the code logs in with database_credentials_secret_arn (known at plan time, unlike the ARN)."
  type        = bool
  default     = false
}

variable "database_credentials_secret_arn" {
  description = "Secrets Manager secret of the function's own database login (its runtime role, CONTENTFN_DATABASE_CREDENTIALS_SECRET), read at connect time; the RDS master secret is the migrator's alone. null: none."
  type        = string
  default     = null
}

variable "bucket_write_prefix" {
  description = "With bucket_access = read_write, the only key prefix the function may put objects under (the API's signed uploads)."
  type        = string
  default     = "uploads/"

  validation {
    condition     = length(var.bucket_write_prefix) > 0 && endswith(var.bucket_write_prefix, "/") && !startswith(var.bucket_write_prefix, "/")
    error_message = "bucket_write_prefix must be a non-empty key prefix ending in / (e.g. uploads/)."
  }
}

variable "kms_key_arn" {
  description = "KMS key for logs, queues and environment variables."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets the function runs in."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the function."
  type        = list(string)
}

variable "log_retention_days" {
  description = "Retention of the function's log group."
  type        = number
  default     = 365
}

variable "queue_arn" {
  description = "ARN of the queue the function consumes: jobs (queue trigger) or the bucket's S3 notifications (object trigger)."
  type        = string
  default     = null
}

variable "queue_visibility_timeout_s" {
  description = "Visibility timeout of that queue, checked against the function timeout."
  type        = number
  default     = 0
}

variable "dead_letter_queue_arn" {
  description = "Dead letter queue for failed asynchronous invocations and schedule deliveries."
  type        = string
}

variable "batch_size" {
  description = "Messages per invocation (queue trigger)."
  type        = number
  default     = 10
}

variable "maximum_batching_window_s" {
  description = "Seconds to gather a batch before invoking (queue trigger)."
  type        = number
  default     = 0
}

variable "max_concurrency" {
  description = "Maximum concurrent invocations by the queue event source."
  type        = number
  default     = 2

  validation {
    condition     = var.max_concurrency >= 2 && var.max_concurrency <= 1000
    error_message = "max_concurrency must be between 2 and 1000 (SQS event source limits)."
  }
}

variable "bucket_arn" {
  description = "ARN of the uploads bucket (object trigger and bucket access)."
  type        = string
  default     = null
}

variable "bucket_access" {
  description = "Access of the function to objects in the uploads bucket."
  type        = string
  default     = "none"

  validation {
    condition     = contains(["none", "read", "read_write"], var.bucket_access)
    error_message = "bucket_access must be one of: none, read, read_write."
  }
}

variable "schedule_expression" {
  description = "EventBridge Scheduler expression (schedule trigger), e.g. rate(15 minutes) or cron(0 * * * ? *)."
  type        = string
  default     = null
}

variable "schedule_timezone" {
  description = "Time zone of the schedule expression."
  type        = string
  default     = "UTC"
}

variable "publish_queue_arns" {
  description = "Queues the function may send jobs to."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "import_dead_letter_queue_arns" {
  description = "Dead-letter queues the function drains into the dead-letter store (the dead-letter import)."
  type        = list(string)
  default     = []
}
