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

variable "az_count" {
  description = "Number of availability zones with a private subnet."
  type        = number
  default     = 2

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 4
    error_message = "az_count must be between 2 and 4 (RDS and ElastiCache subnet groups need two)."
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
