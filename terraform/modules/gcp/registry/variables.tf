variable "project_id" {
  description = "GCP project ID."
  type        = string
}

variable "region" {
  description = "Region of the repository and the source bucket."
  type        = string
}

variable "name" {
  description = "Repository ID (also the prefix of the source bucket)."
  type        = string
}

variable "keep_images" {
  description = "Image versions kept by the cleanup policy."
  type        = number
  default     = 30
}

variable "force_destroy" {
  description = "Whether destroy deletes a non-empty source bucket."
  type        = bool
  default     = false
}

variable "labels" {
  description = "Labels of the repository and bucket."
  type        = map(string)
  default     = {}
}
