variable "name" {
  description = "Name prefix of the network resources."
  type        = string
}

variable "region" {
  description = "AWS region (for the S3 gateway endpoint's service name)."
  type        = string
}

variable "cidr_block" {
  description = "CIDR block of the VPC."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.cidr_block, 0))
    error_message = "cidr_block must be a valid IPv4 CIDR block."
  }
}

variable "az_suffixes" {
  description = "Availability zones with a private subnet, as suffixes of the region name."
  type        = list(string)
  default     = ["a", "b"]

  validation {
    condition     = length(var.az_suffixes) >= 2 && length(var.az_suffixes) <= 4 && alltrue([for s in var.az_suffixes : can(regex("^[a-z]$", s))])
    error_message = "az_suffixes must list 2 to 4 single letters (RDS and ElastiCache subnet groups need two zones)."
  }
}

variable "create_nat_gateway" {
  description = "Whether private subnets get internet egress through a NAT gateway."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "KMS key encrypting the flow log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the flow log group."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
