output "s3_bucket_uploads_id" {
  description = "Name of the uploads bucket."
  value       = module.uploads.bucket_id
}

output "sqs_queue_urls" {
  description = "Job queue URLs by name (queue-triggered functions and detect)."
  value       = local.queue_urls
}

output "sqs_dead_letter_queue_arns" {
  description = "Dead letter queue ARNs by function (and detect)."
  value       = merge({ for k, m in module.queue : k => m.dead_letter_queue_arn }, { detect = module.detect_queue.dead_letter_queue_arn })
}

output "lambda_function_arns" {
  description = "Function ARNs by name."
  value       = { for k, m in module.function : k => m.lambda_function_arn }
}

output "apigatewayv2_api_endpoint" {
  description = "Base URL of the HTTP API (null when not created)."
  value       = try(one([for m in module.http_api : m.apigatewayv2_api_endpoint]), null)
}

output "ecr_repository_urls" {
  description = "ECR repositories to push the function and GPU images to."
  value       = module.registry.ecr_repository_urls
}

output "secretsmanager_secret_arns" {
  description = "Secrets whose values are set after apply."
  value       = module.secrets.secretsmanager_secret_arns
}

output "db_instance_address" {
  description = "Host of the PostgreSQL instance (null when not created)."
  value       = try(module.database[0].db_instance_address, null)
}

output "db_instance_master_user_secret_arn" {
  description = "Secret with the RDS-managed master credentials (null when not created)."
  value       = try(module.database[0].db_instance_master_user_secret_arn, null)
}

output "elasticache_primary_endpoint_address" {
  description = "Primary endpoint of Redis (null when not created)."
  value       = try(module.cache[0].elasticache_primary_endpoint_address, null)
}

output "ecs_cluster_arn" {
  description = "GPU cluster (null when not created)."
  value       = try(module.gpu_service[0].ecs_cluster_arn, null)
}

output "kms_key_arn" {
  description = "Customer managed key of the environment."
  value       = module.kms.kms_key_arn
}

output "ecs_task_environment" {
  description = "Plain environment of the GPU worker, GPU caps included (null when not created)."
  value       = try(module.gpu_service[0].ecs_task_environment, null)
}

output "sns_topic_alarms_arn" {
  description = "SNS topic the alarms notify."
  value       = module.observability.sns_topic_alarms_arn
}

output "cloudwatch_dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = module.observability.cloudwatch_dashboard_name
}

output "gpu_metrics_collection" {
  description = "How the GPU service's /metrics reaches CloudWatch (null without the GPU service)."
  value       = try(module.gpu_service[0].metrics_collection, null)
}

output "migrator_environment" {
  description = "Environment of the migration step (`contentfn db migrate`, then `contentfn db roles`) run from inside the VPC with the RDS master secret: the instance, the CA bundle and each runtime role's login secret."
  value = var.create_database ? merge(local.database_environment, {
    CONTENTFN_DATABASE_ROLE_SECRETS = jsonencode({ for k in keys(local.database_logins) : k => "${var.project}/${var.environment}/db/${k}" })
  }) : {}
}
