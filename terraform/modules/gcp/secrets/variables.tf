variable "project_id" {
  description = "GCP project ID."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the secret IDs (e.g. contentfn-dev)."
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

variable "replica_locations" {
  description = "Regions holding replicas of each secret."
  type        = list(string)
}

variable "labels" {
  description = "Labels of the secrets."
  type        = map(string)
  default     = {}
}
