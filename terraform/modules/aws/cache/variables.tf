variable "name" {
  description = "Replication group ID."
  type        = string
}

variable "engine_version" {
  description = "Redis engine version."
  type        = string
  default     = "7.1"
}

variable "node_type" {
  description = "Cache node type."
  type        = string
  default     = "cache.t4g.small"
}

variable "num_cache_clusters" {
  description = "Nodes in the replication group (2 or more enables failover)."
  type        = number
  default     = 2

  validation {
    condition     = var.num_cache_clusters >= 1 && var.num_cache_clusters <= 6
    error_message = "num_cache_clusters must be between 1 and 6."
  }
}

variable "auth_token" {
  description = "Redis AUTH token (16-128 printable characters); supply it from a secret store (TF_VAR_redis_auth_token), never from a committed file."
  type        = string
  sensitive   = true

  validation {
    condition     = length(coalesce(var.auth_token, "-")) >= 16 && length(coalesce(var.auth_token, "-")) <= 128
    error_message = "auth_token must be 16 to 128 characters long; pass it as TF_VAR_redis_auth_token from a secret store."
  }
}

variable "snapshot_retention_days" {
  description = "Days of automatic snapshots (0 disables)."
  type        = number
  default     = 1
}

variable "subnet_ids" {
  description = "Private subnets of the cache."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the cache."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "KMS key for data at rest and the slow log."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the slow log group."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
