variable "project_id" {
  description = "Project of the alert policies and the dashboard."
  type        = string
}

variable "name" {
  description = "Name prefix of the policies and the dashboard (project-environment)."
  type        = string
}

variable "function_names" {
  description = "Cloud Run function names by function key; 5xx answers of any of them alert."
  type        = map(string)
}

variable "subscription_names" {
  description = "Pub/Sub job subscription names by job kind; their oldest unacknowledged message alerts."
  type        = map(string)
}

variable "dead_letter_subscription_names" {
  description = "Subscriptions of the dead-letter topics by job kind; any message in them alerts."
  type        = map(string)
}

variable "gpu_service" {
  description = "Whether the GPU service runs (Managed Prometheus collects its /metrics through its sidecar)."
  type        = bool
  default     = false
}

variable "notification_channels" {
  description = "Cloud Monitoring notification channel IDs (projects/P/notificationChannels/N) every alert policy notifies."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.notification_channels : can(regex("^projects/[^/]+/notificationChannels/[^/]+$", c))])
    error_message = "notification_channels takes IDs of the form projects/PROJECT/notificationChannels/ID."
  }
}

variable "thresholds" {
  description = "Alert thresholds: oldest queued message age (s), share of the daily LLM token budget, GPU queue lag (s; the latency the GPU cap is sized for)."
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

variable "labels" {
  description = "User labels of the alert policies."
  type        = map(string)
  default     = {}
}
