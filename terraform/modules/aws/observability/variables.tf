variable "name" {
  description = "Name prefix of the alarms, the dashboard and the alarm topic (project-environment)."
  type        = string
}

variable "region" {
  description = "Region the dashboard's widgets read."
  type        = string
}

variable "function_names" {
  description = "Lambda function names by function key; each gets an errors alarm."
  type        = map(string)
}

variable "queue_names" {
  description = "SQS job queue names by job kind; each gets an oldest-message-age alarm."
  type        = map(string)
}

variable "dead_letter_queue_names" {
  description = "SQS dead-letter queue names by key; each gets a depth > 0 alarm."
  type        = map(string)
}

variable "gpu_service" {
  description = "Whether the GPU service runs (its metrics are collected into the namespace by its CloudWatch agent)."
  type        = bool
  default     = false
}

variable "alarm_topic_arn" {
  description = "SNS topic every alarm notifies (and tells when it is OK again); null creates an encrypted topic named <name>-alarms."
  type        = string
  default     = null
}

variable "thresholds" {
  description = "Alarm thresholds: oldest queued message age (s), share of the daily LLM token budget, GPU queue lag (s; the latency the GPU cap is sized for)."
  type = object({
    oldest_message_age_s = optional(number, 900)
    llm_budget_ratio     = optional(number, 0.8)
    gpu_queue_lag_s      = optional(number, 60)
  })
  default = {}

  validation {
    condition     = var.thresholds.llm_budget_ratio > 0 && var.thresholds.llm_budget_ratio <= 1
    error_message = "thresholds.llm_budget_ratio must be in (0, 1]."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the product's metrics (EMF from the functions, the GPU service's agent)."
  type        = string
  default     = "contentfn"
}

variable "kms_key_arn" {
  description = "KMS key of the alarm topic this module creates."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
