provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = {
    managed-by = "terraform"
  }
}

module "contentfn" {
  source = "../../../modules/gcp/platform"

  project_id  = var.project_id
  project     = var.project
  environment = var.environment
  region      = var.region
  functions   = var.functions

  source_object = var.source_object
  gpu_image_tag = var.gpu_image_tag
  gpu           = var.gpu
  database      = var.database
  cache         = var.cache

  api_invokers = var.api_invokers
  api_ingress  = var.api_ingress

  signed_upload_prefix = var.signed_upload_prefix
  console_origins      = var.console_origins

  log_level = var.log_level
  tracing   = var.tracing

  hnsw_ef_search     = var.hnsw_ef_search
  queue_max_attempts = var.queue_max_attempts
  subnet_cidr        = var.subnet_cidr
  connector_cidr     = var.connector_cidr
  force_destroy      = var.force_destroy
  create_gpu_service = var.create_gpu_service

  notification_channels = var.notification_channels
  alarm_thresholds      = var.alarm_thresholds
  metrics_otlp_endpoint = var.metrics_otlp_endpoint

  labels = var.labels
}
