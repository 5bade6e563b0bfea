output "storage_bucket_uploads_name" {
  description = "Name of the uploads bucket."
  value       = module.contentfn.storage_bucket_uploads_name
}

output "storage_bucket_sources_name" {
  description = "Bucket to upload the function source archive to."
  value       = module.contentfn.storage_bucket_sources_name
}

output "artifact_registry_repository_url" {
  description = "Docker repository for the GPU worker image."
  value       = module.contentfn.artifact_registry_repository_url
}

output "pubsub_topic_ids" {
  description = "Job topics by queue name."
  value       = module.contentfn.pubsub_topic_ids
}

output "function_uris" {
  description = "Function URIs by name (internal ingress)."
  value       = module.contentfn.function_uris
}

output "secret_ids" {
  description = "Secret Manager secrets whose values are added after apply."
  value       = module.contentfn.secret_ids
}

output "sql_instance_connection_name" {
  description = "Connection name of Cloud SQL."
  value       = module.contentfn.sql_instance_connection_name
}

output "redis_host" {
  description = "Private host of Memorystore Redis."
  value       = module.contentfn.redis_host
}

output "database_roles_command" {
  description = "Run by the migrator after `contentfn db migrate`: gives each process's IAM login its runtime role."
  value       = module.contentfn.database_roles_command
}

output "migrator_environment" {
  description = "Environment of the migration step besides CONTENTFN_DATABASE_URL (the master login)."
  value       = module.contentfn.migrator_environment
}
