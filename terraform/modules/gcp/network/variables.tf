variable "project_id" {
  description = "GCP project ID."
  type        = string
}

variable "name" {
  description = "Name prefix of the network resources."
  type        = string
}

variable "region" {
  description = "Region of the subnetwork, connector and NAT."
  type        = string
}

variable "subnet_cidr" {
  description = "Primary range of the subnetwork (GPU service direct VPC egress)."
  type        = string
  default     = "10.50.0.0/20"

  validation {
    condition     = can(cidrhost(var.subnet_cidr, 0))
    error_message = "subnet_cidr must be a valid IPv4 CIDR block."
  }
}

variable "connector_cidr" {
  description = "Unused /28 range of the Serverless VPC Access connector."
  type        = string
  default     = "10.50.16.0/28"

  validation {
    condition     = can(cidrhost(var.connector_cidr, 0)) && endswith(var.connector_cidr, "/28")
    error_message = "connector_cidr must be a /28 IPv4 CIDR block."
  }
}

variable "connector_max_instances" {
  description = "Maximum connector instances."
  type        = number
  default     = 3
}

variable "private_services_prefix_length" {
  description = "Prefix length of the range reserved for Cloud SQL and Memorystore."
  type        = number
  default     = 20
}
