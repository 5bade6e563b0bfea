variable "project_id" {
  description = "GCP project ID."
  type        = string
}

variable "region" {
  description = "Region of the instance."
  type        = string
}

variable "name" {
  description = "Name of the instance."
  type        = string
}

variable "database_version" {
  description = "PostgreSQL version (pgvector with HNSW)."
  type        = string
  default     = "POSTGRES_16"

  validation {
    condition     = contains(["POSTGRES_15", "POSTGRES_16", "POSTGRES_17"], var.database_version)
    error_message = "database_version must be POSTGRES_15, POSTGRES_16 or POSTGRES_17."
  }
}

variable "tier" {
  description = "Machine tier."
  type        = string
  default     = "db-custom-2-7680"
}

variable "availability_type" {
  description = "ZONAL or REGIONAL (high availability)."
  type        = string
  default     = "REGIONAL"

  validation {
    condition     = contains(["ZONAL", "REGIONAL"], var.availability_type)
    error_message = "availability_type must be ZONAL or REGIONAL."
  }
}

variable "disk_size_gb" {
  description = "Initial disk size."
  type        = number
  default     = 20
}

variable "retained_backups" {
  description = "Automated backups kept."
  type        = number
  default     = 7
}

variable "database_name" {
  description = "Name of the application database."
  type        = string
  default     = "contentfn"
}

variable "network_id" {
  description = "VPC network with private services access."
  type        = string
}

variable "deletion_protection" {
  description = "Whether the instance refuses deletion."
  type        = bool
  default     = true
}

variable "labels" {
  description = "User labels of the instance."
  type        = map(string)
  default     = {}
}

variable "iam_service_accounts" {
  description = "Service account emails, by process (function name or gpu), that log in as IAM database users of their own."
  type        = map(string)
  default     = {}
}
