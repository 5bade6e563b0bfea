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
  value       = local.worker_environment
}

output "cloudwatch_log_group_metrics_name" {
  description = "Log group the metrics agent writes the worker's scraped metrics to (as EMF)."
  value       = aws_cloudwatch_log_group.metrics.name
}

output "metrics_collection" {
  description = "How the worker's /metrics reaches CloudWatch: the agent sidecar's image, its CloudWatch and Prometheus configurations, and the port it scrapes."
  value = {
    agent_image       = var.metrics_agent_image
    agent_config      = local.agent_config
    prometheus_config = local.prometheus_config
    worker_port       = var.metrics_port
  }
}
