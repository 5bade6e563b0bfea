variable "name_prefix" {
  description = "Path prefix of the secret names (e.g. contentfn/dev)."
  type        = string
}

variable "secrets" {
  description = "Secrets to create: key (kebab-case) => description."
  type        = map(string)

  validation {
    condition     = alltrue([for k in keys(var.secrets) : can(regex("^[a-z0-9-]+$", k))])
    error_message = "secret keys must be kebab-case."
  }
}

variable "kms_key_arn" {
  description = "KMS key encrypting the secrets."
  type        = string
}

variable "recovery_window_in_days" {
  description = "Days a deleted secret stays recoverable (0 deletes at once)."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
