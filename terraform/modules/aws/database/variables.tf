variable "name" {
  description = "Identifier of the database instance."
  type        = string
}

variable "engine_version" {
  description = "PostgreSQL major(.minor) version; 16 ships pgvector."
  type        = string
  default     = "16"

  # The search index is HNSW, which needs pgvector 0.5: RDS ships it from 15.4 (15.2 and 15.3 have 0.4).
  validation {
    condition = (
      contains(["15", "16", "17"], split(".", var.engine_version)[0]) &&
      (split(".", var.engine_version)[0] != "15" || try(tonumber(split(".", var.engine_version)[1]), 99) >= 4)
    )
    error_message = "engine_version must be PostgreSQL 15.4 or later, 16 or 17 (pgvector 0.5 or later, for the HNSW search index)."
  }
}

variable "instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "database_name" {
  description = "Name of the application database."
  type        = string
  default     = "contentfn"
}

variable "master_username" {
  description = "Master user name (its password is managed by RDS in Secrets Manager)."
  type        = string
  default     = "contentfn_admin"
}

variable "allocated_storage_gb" {
  description = "Initial storage."
  type        = number
  default     = 20
}

variable "max_allocated_storage_gb" {
  description = "Storage autoscaling ceiling."
  type        = number
  default     = 100
}

variable "multi_az" {
  description = "Whether a standby runs in a second availability zone."
  type        = bool
  default     = true
}

variable "backup_retention_days" {
  description = "Days of automated backups."
  type        = number
  default     = 7

  validation {
    condition     = var.backup_retention_days >= 1 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be between 1 and 35 (backups stay on)."
  }
}

variable "deletion_protection" {
  description = "Whether the instance refuses deletion (and takes a final snapshot)."
  type        = bool
  default     = true
}

variable "log_min_duration_statement_ms" {
  description = "Statements slower than this are logged (-1 disables)."
  type        = number
  default     = 1000
}

variable "subnet_ids" {
  description = "Private subnets of the database."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the database."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "KMS key for storage, Performance Insights and the master secret."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
