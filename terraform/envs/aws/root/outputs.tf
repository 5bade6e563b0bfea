output "s3_bucket_uploads_id" {
  description = "Name of the uploads bucket."
  value       = module.contentfn.s3_bucket_uploads_id
}

output "sqs_queue_urls" {
  description = "Job queue URLs by name."
  value       = module.contentfn.sqs_queue_urls
}

output "sqs_dead_letter_queue_arns" {
  description = "Dead letter queue ARNs by function (and detect)."
  value       = module.contentfn.sqs_dead_letter_queue_arns
}

output "lambda_function_arns" {
  description = "Function ARNs by name."
  value       = module.contentfn.lambda_function_arns
}

output "apigatewayv2_api_endpoint" {
  description = "Base URL of the HTTP API."
  value       = module.contentfn.apigatewayv2_api_endpoint
}

output "ecr_repository_urls" {
  description = "ECR repositories to push the function and GPU images to."
  value       = module.contentfn.ecr_repository_urls
}

output "secretsmanager_secret_arns" {
  description = "Secrets whose values are set after apply."
  value       = module.contentfn.secretsmanager_secret_arns
}

output "db_instance_address" {
  description = "Host of the PostgreSQL instance."
  value       = module.contentfn.db_instance_address
}

output "db_instance_master_user_secret_arn" {
  description = "Secret with the RDS-managed master credentials."
  value       = module.contentfn.db_instance_master_user_secret_arn
}

output "elasticache_primary_endpoint_address" {
  description = "Primary endpoint of Redis."
  value       = module.contentfn.elasticache_primary_endpoint_address
}

output "ecs_cluster_arn" {
  description = "GPU cluster."
  value       = module.contentfn.ecs_cluster_arn
}

output "ecs_task_environment" {
  description = "Plain environment of the GPU worker, GPU caps included."
  value       = module.contentfn.ecs_task_environment
}

output "sns_topic_alarms_arn" {
  description = "SNS topic the alarms notify."
  value       = module.contentfn.sns_topic_alarms_arn
}

output "gpu_metrics_collection" {
  description = "How the GPU service's /metrics reaches CloudWatch (null without the GPU service)."
  value       = module.contentfn.gpu_metrics_collection
}

output "migrator_environment" {
  description = "Environment of the migration step (contentfn db migrate, then contentfn db roles), run inside the VPC with the RDS master secret."
  value       = module.contentfn.migrator_environment
}
