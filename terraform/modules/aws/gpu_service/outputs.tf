output "ecs_cluster_arn" {
  description = "ARN of the GPU cluster."
  value       = aws_ecs_cluster.this.arn
}

output "ecs_service_name" {
  description = "Name of the GPU worker service."
  value       = aws_ecs_service.this.name
}

output "ecs_capacity_provider_name" {
  description = "Name of the GPU capacity provider."
  value       = aws_ecs_capacity_provider.this.name
}

output "ecs_task_environment" {
  description = "Plain environment of the worker container, GPU caps included."
  value       = local.environment
}
