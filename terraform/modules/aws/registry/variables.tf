variable "name_prefix" {
  description = "Prefix of the repository names (e.g. contentfn-dev)."
  type        = string
}

variable "repositories" {
  description = "Repositories to create (the function image and the GPU image)."
  type        = list(string)
  default     = ["functions", "gpu-worker"]
}

variable "kms_key_arn" {
  description = "KMS key encrypting the images."
  type        = string
}

variable "keep_images" {
  description = "Images kept per repository."
  type        = number
  default     = 30
}

variable "force_delete" {
  description = "Whether destroy deletes repositories that still hold images."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
