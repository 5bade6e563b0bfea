output "storage_bucket_uploads_name" {
  description = "Name of the uploads bucket."
  value       = module.uploads.bucket_name
}

output "storage_bucket_sources_name" {
  description = "Bucket to upload the function source archive to."
  value       = module.registry.source_bucket_name
}

output "artifact_registry_repository_url" {
  description = "Docker repository for the GPU worker image."
  value       = module.registry.artifact_registry_repository_url
}

output "pubsub_topic_ids" {
  description = "Job topics by queue name."
  value       = local.topic_ids
}

output "function_uris" {
  description = "Function URIs by name (internal ingress)."
  value       = { for k, m in module.function : k => m.function_uri }
}

output "secret_ids" {
  description = "Secret Manager secrets whose values are added after apply."
  value       = module.secrets.secret_ids
}

output "sql_instance_connection_name" {
  description = "Connection name of Cloud SQL."
  value       = module.database.sql_instance_connection_name
}

output "sql_instance_private_ip_address" {
  description = "Private IP of Cloud SQL."
  value       = module.database.sql_instance_private_ip_address
}

output "redis_host" {
  description = "Private host of Memorystore Redis."
  value       = module.cache.redis_host
}

output "monitoring_dashboard_id" {
  description = "ID of the Cloud Monitoring dashboard."
  value       = module.observability.monitoring_dashboard_id
}

output "database_logins" {
  description = "Cloud SQL IAM login of each process that uses the database, by function (and gpu)."
  value       = module.database.iam_logins
}

output "database_roles_command" {
  description = "Run by the migrator after `contentfn db migrate`, with the master login's CONTENTFN_DATABASE_URL (the database-url secret) and migrator_environment: creates the runtime roles and makes each process's IAM login a member of its own."
  value       = "contentfn db roles ${join(" ", [for k in local.database_processes : "--member ${k}=${module.database.iam_logins[k]}"])}"
}

output "migrator_environment" {
  description = "Environment of the migration step besides CONTENTFN_DATABASE_URL (the master login, from the database-url secret): verify the server with the instance's CA."
  value = {
    CONTENTFN_DATABASE_CA_CERT = module.database.server_ca_cert
  }
}
