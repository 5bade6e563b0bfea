variable "name" {
  description = "Alias of the key (without the alias/ prefix)."
  type        = string
}

variable "description" {
  description = "Description of the key."
  type        = string
  default     = "contentfn data key: buckets, queues, logs, secrets, database, cache"
}

variable "deletion_window_in_days" {
  description = "Waiting period before a scheduled key deletion completes."
  type        = number
  default     = 30

  validation {
    condition     = var.deletion_window_in_days >= 7 && var.deletion_window_in_days <= 30
    error_message = "deletion_window_in_days must be between 7 and 30."
  }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
