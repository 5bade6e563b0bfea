variable "name" {
  description = "Name of the cluster, service, roles and detection queue prefix."
  type        = string
}

variable "image_uri" {
  description = "GPU worker image (ECR URI with tag or digest)."
  type        = string
}

variable "repository_arn" {
  description = "ARN of the ECR repository holding the GPU image (pull permission)."
  type        = string
}

variable "command" {
  description = "Container command of the worker."
  type        = list(string)
  default     = ["python", "-m", "infra.gpu_worker"]
}

variable "max_instances" {
  description = "GPU cap: at most this many GPU instances and worker tasks."
  type        = number
  default     = 1

  validation {
    condition     = var.max_instances >= 1 && var.max_instances <= 100 && floor(var.max_instances) == var.max_instances
    error_message = "max_instances must be a whole number between 1 and 100."
  }
}

variable "min_instances" {
  description = "Worker tasks kept running when the queue is empty (0 scales GPUs to zero)."
  type        = number
  default     = 0
}

variable "max_batch" {
  description = "Images per inference batch (CONTENTFN_GPU_MAX_BATCH)."
  type        = number
  default     = 8

  validation {
    condition     = var.max_batch >= 1 && var.max_batch <= 256
    error_message = "max_batch must be between 1 and 256."
  }
}

variable "max_in_flight" {
  description = "Batches in flight per worker (CONTENTFN_GPU_MAX_IN_FLIGHT)."
  type        = number
  default     = 2

  validation {
    condition     = var.max_in_flight >= 1 && var.max_in_flight <= 64
    error_message = "max_in_flight must be between 1 and 64."
  }
}

variable "max_wait_ms" {
  description = "Longest wait to fill a batch (CONTENTFN_GPU_MAX_WAIT_MS)."
  type        = number
  default     = 50

  validation {
    condition     = var.max_wait_ms >= 0 && var.max_wait_ms <= 10000
    error_message = "max_wait_ms must be between 0 and 10000."
  }
}

variable "instance_type" {
  description = "EC2 GPU instance type."
  type        = string
  default     = "g5.xlarge"

  validation {
    condition     = can(regex("^(g4dn|g5|g6|g6e|gr6|p3|p4d|p5)\\.", var.instance_type))
    error_message = "instance_type must be an NVIDIA GPU instance type (g4dn, g5, g6, g6e, gr6, p3, p4d, p5)."
  }
}

variable "ami_id" {
  description = "AMI of the GPU instances; the default resolves the ECS GPU-optimised AMI at launch."
  type        = string
  default     = "resolve:ssm:/aws/service/ecs/optimized-ami/amazon-linux-2/gpu/recommended/image_id"
}

variable "root_volume_gb" {
  description = "Root volume size of each GPU instance."
  type        = number
  default     = 60
}

variable "task_cpu" {
  description = "CPU units of the worker task."
  type        = number
  default     = 3072
}

variable "task_memory_mb" {
  description = "Memory of the worker task in MB."
  type        = number
  default     = 12288
}

variable "environment" {
  description = "Plain environment of the worker (CONTENTFN_*); the GPU caps are added by this module."
  type        = map(string)
  default     = {}
}

variable "secret_arns" {
  description = "Secrets Manager ARNs by environment variable name, injected by ECS."
  type        = map(string)
  default     = {}
}

variable "database_instance_arn" {
  description = "ARN of the RDS instance (CONTENTFN_DATABASE_RDS_INSTANCE) the worker describes for its endpoint; null: none."
  type        = string
  default     = null
}

variable "read_database_login" {
  description = "Whether the code logs in with database_credentials_secret_arn (known at plan time, unlike the ARN)."
  type        = bool
  default     = false
}

variable "database_credentials_secret_arn" {
  description = "Secrets Manager secret of the worker's own database login (its runtime role, CONTENTFN_DATABASE_CREDENTIALS_SECRET); null: none."
  type        = string
  default     = null
}

variable "images_prefix" {
  description = "Key prefix of the uploaded images the worker reads (ingest queues detections for objects under it)."
  type        = string
  default     = "images/"
}

variable "queue_arn" {
  description = "ARN of the detection job queue the worker consumes."
  type        = string
}

variable "dead_letter_queue_arn" {
  description = "ARN of the detection queue's dead-letter queue (poison jobs are copied there)."
  type        = string
}

variable "queue_url" {
  description = "URL of the detection job queue (CONTENTFN_GPU_QUEUE)."
  type        = string
}

variable "queue_name" {
  description = "Name of the detection job queue (backlog metric)."
  type        = string
}

variable "bucket_arn" {
  description = "ARN of the uploads bucket (images to read)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the instances and tasks."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the instances and tasks."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "KMS key for logs, queues and volumes."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the worker's log group."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "device_process" {
  description = "One process owns the GPU; pipelines send it batches through shared memory (CONTENTFN_GPU_DEVICE_PROCESS)."
  type        = bool
  default     = false
}

variable "metrics_agent_image" {
  description = "CloudWatch agent image of the sidecar that scrapes the worker's /metrics into CloudWatch (pin a version or digest in production)."
  type        = string
  default     = "public.ecr.aws/cloudwatch-agent/cloudwatch-agent:latest"
}

variable "metrics_namespace" {
  description = "CloudWatch namespace the scraped metrics go to (the functions' EMF uses the same)."
  type        = string
  default     = "contentfn"
}

variable "metrics_port" {
  description = "Port of the worker's /healthz and /metrics inside the task (CONTENTFN_GPU_METRICS_PORT)."
  type        = number
  default     = 9090
}

variable "metrics_scrape_interval_s" {
  description = "Seconds between two scrapes of the worker's /metrics by the agent."
  type        = number
  default     = 30
}
