variable "name" {
  description = "Identifier of the database instance."
  type        = string
}

variable "engine_version" {
  description = "PostgreSQL major(.minor) version; 16 ships pgvector."
  type        = string
  default     = "16"

  validation {
    condition     = contains(["15", "16", "17"], split(".", var.engine_version)[0])
    error_message = "engine_version must be PostgreSQL 15, 16 or 17 (pgvector with HNSW)."
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
