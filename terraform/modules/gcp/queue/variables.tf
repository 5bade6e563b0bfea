variable "project_id" {
  description = "GCP project ID."
  type        = string
}

variable "project_number" {
  description = "GCP project number (names the Pub/Sub service agent)."
  type        = string
}

variable "name" {
  description = "Name of the topic and its subscription; dead letters go to <name>-dead-letter."
  type        = string
}

variable "push_endpoint" {
  description = "HTTPS endpoint messages are pushed to with an OIDC token; null makes a pull subscription."
  type        = string
  default     = null
}

variable "push_service_account_email" {
  description = "Service account whose OIDC token authenticates pushes (must hold run.invoker on the endpoint)."
  type        = string
  default     = null
}

variable "ack_deadline_seconds" {
  description = "Ack deadline; at least the consumer's timeout."
  type        = number
  default     = 60

  validation {
    condition     = var.ack_deadline_seconds >= 10 && var.ack_deadline_seconds <= 600
    error_message = "ack_deadline_seconds must be between 10 and 600."
  }
}

variable "max_delivery_attempts" {
  description = "Deliveries before a message is dead-lettered."
  type        = number
  default     = 5

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be between 5 and 100 (Pub/Sub limits)."
  }
}

variable "minimum_backoff" {
  description = "Minimum redelivery backoff."
  type        = string
  default     = "10s"
}

variable "maximum_backoff" {
  description = "Maximum redelivery backoff."
  type        = string
  default     = "600s"
}

variable "message_retention_duration" {
  description = "Retention of unacknowledged messages."
  type        = string
  default     = "604800s"
}

variable "publishers" {
  description = "Members allowed to publish to the topic, by a static key (e.g. ingest = serviceAccount:...)."
  type        = map(string)
  default     = {}
}

variable "subscribers" {
  description = "Members allowed to pull from the subscription, by a static key."
  type        = map(string)
  default     = {}
}

variable "kms_key_name" {
  description = "Cloud KMS key encrypting the topics (null: Google-managed encryption)."
  type        = string
  default     = null
}

variable "labels" {
  description = "Labels of the topics and subscriptions."
  type        = map(string)
  default     = {}
}
