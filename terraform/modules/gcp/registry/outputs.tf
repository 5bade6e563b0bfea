output "artifact_registry_repository_url" {
  description = "Docker URL of the repository (<region>-docker.pkg.dev/<project>/<name>)."
  value       = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.this.repository_id}"
}

output "source_bucket_name" {
  description = "Bucket for function source archives."
  value       = module.sources.bucket_name
}
