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

variable "tier" {
  description = "BASIC (single node) or STANDARD_HA (replicated)."
  type        = string
  default     = "STANDARD_HA"

  validation {
    condition     = contains(["BASIC", "STANDARD_HA"], var.tier)
    error_message = "tier must be BASIC or STANDARD_HA."
  }
}

variable "memory_size_gb" {
  description = "Memory of the instance."
  type        = number
  default     = 1
}

variable "redis_version" {
  description = "Redis version."
  type        = string
  default     = "REDIS_7_2"
}

variable "network_id" {
  description = "VPC network with private services access."
  type        = string
}

variable "labels" {
  description = "Labels of the instance."
  type        = map(string)
  default     = {}
}
