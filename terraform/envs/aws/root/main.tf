provider "aws" {
  region = var.region

  default_tags {
    tags = {
      ManagedBy = "terraform"
      Source    = "contentfn/terraform/envs/aws"
    }
  }
}

module "contentfn" {
  source = "../../../modules/aws/platform"

  project     = var.project
  environment = var.environment
  region      = var.region
  functions   = var.functions

  image_tag     = var.image_tag
  gpu_image_tag = var.gpu_image_tag
  gpu           = var.gpu
  database      = var.database
  cache         = var.cache

  redis_auth_token       = var.redis_auth_token
  api_authorization_type = var.api_authorization_type
  jwt_issuer             = var.jwt_issuer
  jwt_audience           = var.jwt_audience

  signed_upload_prefix = var.signed_upload_prefix
  console_origins      = var.console_origins

  database_ca_bundle_path = var.database_ca_bundle_path

  log_level = var.log_level
  tracing   = var.tracing

  hnsw_ef_search     = var.hnsw_ef_search
  queue_max_attempts = var.queue_max_attempts
  vpc_cidr_block     = var.vpc_cidr_block
  log_retention_days = var.log_retention_days
  force_destroy      = var.force_destroy

  create_nat_gateway = var.create_nat_gateway
  create_gpu_service = var.create_gpu_service
  create_database    = var.create_database
  create_cache       = var.create_cache
  create_http_api    = var.create_http_api

  create_redrive_allow_policies = var.create_redrive_allow_policies

  alarm_topic_arn  = var.alarm_topic_arn
  alarm_thresholds = var.alarm_thresholds

  tags = var.tags
}
