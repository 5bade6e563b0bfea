variable "project_id" {
  description = "GCP project ID."
  type        = string
}

variable "region" {
  description = "Region of the function."
  type        = string
}

variable "name" {
  description = "Name of the function and its service account (6-26 characters)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,25}$", var.name))
    error_message = "name must be 6-26 lowercase letters, digits or dashes (it prefixes service account IDs)."
  }
}

variable "function_key" {
  description = "Name of the function in the function set (the folder under functions/)."
  type        = string
}

variable "trigger" {
  description = "What invokes the function."
  type        = string

  validation {
    condition     = contains(["object", "queue", "schedule", "http"], var.trigger)
    error_message = "trigger must be one of: object, queue, schedule, http."
  }
}

variable "runtime" {
  description = "Python runtime of the function."
  type        = string
  default     = "python312"

  validation {
    condition     = contains(["python311", "python312", "python313"], var.runtime)
    error_message = "runtime must be python311, python312 or python313."
  }
}

variable "entry_point" {
  description = "Function name exported by the source's main.py."
  type        = string
  default     = "handler"
}

variable "source_bucket" {
  description = "Bucket holding the source archive."
  type        = string
}

variable "source_object" {
  description = "Object name of the source archive in the sources bucket (built by `contentfn package gcp`)."
  type        = string
}

variable "build_service_account_id" {
  description = "Full resource name of the service account Cloud Build uses (null: the project default)."
  type        = string
  default     = null
}

variable "timeout_s" {
  description = "Request timeout in seconds."
  type        = number
  default     = 60

  validation {
    condition     = var.timeout_s >= 1 && var.timeout_s <= 3600
    error_message = "timeout_s must be between 1 and 3600."
  }
}

variable "memory_mb" {
  description = "Memory in MB."
  type        = number
  default     = 512
}

variable "max_instances" {
  description = "Maximum instances of the function."
  type        = number
  default     = 10
}

variable "concurrency" {
  description = "Requests served at once by one instance."
  type        = number
  default     = 1
}

variable "ingress_settings" {
  description = "Network ingress; triggered functions stay internal (Eventarc, Pub/Sub and Scheduler count as internal)."
  type        = string
  default     = "ALLOW_INTERNAL_ONLY"

  validation {
    condition     = contains(["ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.ingress_settings)
    error_message = "ingress_settings must be ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB; ALLOW_ALL is not offered."
  }
}

variable "invokers" {
  description = "Extra members allowed to invoke the function, by a static key. Empty keeps it private."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for m in values(var.invokers) : !contains(["allUsers", "allAuthenticatedUsers"], m)])
    error_message = "invokers must name identities; allUsers and allAuthenticatedUsers are not allowed."
  }
}

variable "vpc_connector_id" {
  description = "Serverless VPC Access connector for private IPs (database, cache)."
  type        = string
}

variable "environment" {
  description = "Plain environment variables (CONTENTFN_*)."
  type        = map(string)
  default     = {}
}

variable "secrets" {
  description = "Secret Manager secret IDs by environment variable name; readable by this function only."
  type        = map(string)
  default     = {}
}

variable "bucket_name" {
  description = "Uploads bucket (object trigger)."
  type        = string
  default     = null
}

variable "bucket_location" {
  description = "Location of the uploads bucket (Eventarc trigger region)."
  type        = string
  default     = null
}

variable "schedule" {
  description = "Cron schedule (schedule trigger), e.g. \"0 * * * *\"."
  type        = string
  default     = null
}

variable "schedule_timezone" {
  description = "Time zone of the schedule."
  type        = string
  default     = "Etc/UTC"
}

variable "labels" {
  description = "Labels of the function."
  type        = map(string)
  default     = {}
}
