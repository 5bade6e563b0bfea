variable "name" {
  description = "Name of the queue; its dead letter queue is <name>-dlq."
  type        = string
}

variable "create_queue" {
  description = "Whether to create the main queue. False creates only a dead letter queue (for asynchronous invocation failures)."
  type        = bool
  default     = true
}

variable "create_redrive_allow_policy" {
  description = "Whether to restrict which queues may use the dead letter queue (off only for emulators without RedriveAllowPolicy)."
  type        = bool
  default     = true
}

variable "visibility_timeout_seconds" {
  description = "Visibility timeout; at least 6x the consumer's timeout for Lambda consumers."
  type        = number
  default     = 360

  validation {
    condition     = var.visibility_timeout_seconds >= 0 && var.visibility_timeout_seconds <= 43200
    error_message = "visibility_timeout_seconds must be between 0 and 43200."
  }
}

variable "message_retention_seconds" {
  description = "Retention of messages on the main queue."
  type        = number
  default     = 345600
}

variable "dead_letter_retention_seconds" {
  description = "Retention of messages on the dead letter queue (the SQS maximum by default)."
  type        = number
  default     = 1209600
}

variable "max_receive_count" {
  description = "Receives before a message moves to the dead letter queue."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be between 1 and 1000."
  }
}

variable "kms_key_arn" {
  description = "KMS key encrypting both queues."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "sender_bucket_arn" {
  description = "Bucket whose S3 event notifications may be sent to the queue (an object function's queue); null: none."
  type        = string
  default     = null
}
