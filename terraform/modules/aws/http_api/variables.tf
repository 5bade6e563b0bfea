variable "name" {
  description = "Name of the HTTP API."
  type        = string
}

variable "lambda_function_name" {
  description = "Name of the function serving the API."
  type        = string
}

variable "lambda_function_invoke_arn" {
  description = "Invoke ARN of the function serving the API."
  type        = string
}

variable "authorization_type" {
  description = "Authorizer on every route: AWS_IAM (SigV4-signed callers) or JWT (an OIDC issuer)."
  type        = string
  default     = "AWS_IAM"

  validation {
    condition     = contains(["AWS_IAM", "JWT"], var.authorization_type)
    error_message = "authorization_type must be AWS_IAM or JWT; unauthenticated routes are not offered."
  }
}

variable "jwt_issuer" {
  description = "OIDC issuer URL (authorization_type = JWT)."
  type        = string
  default     = null
}

variable "jwt_audience" {
  description = "Accepted audiences (authorization_type = JWT)."
  type        = list(string)
  default     = []
}

variable "integration_timeout_ms" {
  description = "Timeout of the Lambda integration."
  type        = number
  default     = 29000
}

variable "throttling_burst_limit" {
  description = "Burst limit of every route."
  type        = number
  default     = 100
}

variable "throttling_rate_limit" {
  description = "Steady requests per second of every route."
  type        = number
  default     = 50
}

variable "kms_key_arn" {
  description = "KMS key encrypting the access log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the access log group."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
