variable "name" {
  description = "Name of the bucket; its access-log bucket is named <name>-access-logs."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,49}[a-z0-9]$", var.name))
    error_message = "name must be a valid S3 bucket name of at most 51 characters (room for the -access-logs suffix)."
  }
}

variable "kms_key_arn" {
  description = "KMS key for server-side encryption of the bucket."
  type        = string
}

variable "force_destroy" {
  description = "Whether destroy deletes a non-empty bucket. Keep false outside disposable environments."
  type        = bool
  default     = false
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which noncurrent object versions are deleted."
  type        = number
  default     = 30
}

variable "access_log_expiration_days" {
  description = "Days after which access-log objects are deleted."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "cors_allowed_origins" {
  description = "Origins (scheme://host[:port]) whose pages may PUT to signed upload URLs and GET signed object URLs of this bucket; empty: no CORS rule (no browser uploads)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for o in var.cors_allowed_origins : can(regex("^https?://[^/*]+$", o))])
    error_message = "cors_allowed_origins takes origins (https://host[:port]), without a path, a trailing slash or a wildcard."
  }
}
