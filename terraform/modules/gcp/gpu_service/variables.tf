variable "project_id" {
  description = "GCP project ID."
  type        = string
}

variable "region" {
  description = "Region of the service (one with Cloud Run GPUs)."
  type        = string
}

variable "name" {
  description = "Name of the service and its service account."
  type        = string
}

variable "image" {
  description = "GPU worker image (Artifact Registry URI with tag or digest)."
  type        = string
}

variable "command" {
  description = "Container command of the worker."
  type        = list(string)
  default     = ["python", "-m", "infra.gpu_worker"]
}

variable "max_instances" {
  description = "GPU cap: at most this many instances, one GPU each."
  type        = number

  validation {
    condition     = var.max_instances >= 1 && var.max_instances <= 100 && floor(var.max_instances) == var.max_instances
    error_message = "max_instances must be a whole number between 1 and 100."
  }
}

variable "min_instances" {
  description = "Instances kept warm (0 scales GPUs to zero)."
  type        = number
  default     = 0
}

variable "max_batch" {
  description = "Images per inference batch (CONTENTFN_GPU_MAX_BATCH)."
  type        = number
  default     = 8
}

variable "max_in_flight" {
  description = "Batches in flight per instance (CONTENTFN_GPU_MAX_IN_FLIGHT); also the request concurrency."
  type        = number
  default     = 2
}

variable "max_wait_ms" {
  description = "Longest wait to fill a batch (CONTENTFN_GPU_MAX_WAIT_MS)."
  type        = number
  default     = 50
}

variable "accelerator" {
  description = "GPU type."
  type        = string
  default     = "nvidia-l4"

  validation {
    condition     = contains(["nvidia-l4", "nvidia-rtx-pro-6000"], var.accelerator)
    error_message = "accelerator must be a Cloud Run GPU type: nvidia-l4 or nvidia-rtx-pro-6000."
  }
}

variable "cpu" {
  description = "CPU limit per instance (Cloud Run GPUs need at least 4)."
  type        = string
  default     = "4"
}

variable "memory" {
  description = "Memory limit per instance (Cloud Run GPUs need at least 16Gi)."
  type        = string
  default     = "16Gi"
}

variable "topic_id" {
  description = "The detection jobs' Pub/Sub topic (projects/P/topics/T): deferred jobs that fell due are relayed to it."
  type        = string
}

variable "subscription_id" {
  description = "Pull subscription of detection jobs (CONTENTFN_GPU_QUEUE)."
  type        = string
}

variable "bucket_name" {
  description = "Uploads bucket (images to read)."
  type        = string
}

variable "images_prefix" {
  description = "The key prefix of the images the worker reads; it may read nothing else of the bucket."
  type        = string
  default     = "images/"
}

variable "network_id" {
  description = "VPC network for direct VPC egress."
  type        = string
}

variable "subnetwork_id" {
  description = "Subnetwork for direct VPC egress."
  type        = string
}

variable "environment" {
  description = "Plain environment (CONTENTFN_*); the GPU caps are added by this module."
  type        = map(string)
  default     = {}
}

variable "secrets" {
  description = "Secret Manager secret IDs by environment variable name."
  type        = map(string)
  default     = {}
}

variable "deletion_protection" {
  description = "Whether Terraform refuses to delete the service."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels of the service."
  type        = map(string)
  default     = {}
}

variable "device_process" {
  description = "One process owns the GPU; pipelines send it batches through shared memory (CONTENTFN_GPU_DEVICE_PROCESS)."
  type        = bool
  default     = false
}

variable "metrics_collector_image" {
  description = "Managed Service for Prometheus sidecar for Cloud Run, which scrapes the worker's /metrics (pin a version you have tested)."
  type        = string
  default     = "us-docker.pkg.dev/cloud-ops-agents-artifacts/cloud-run-gmp-sidecar/cloud-run-gmp-sidecar:1.2.0"
}
