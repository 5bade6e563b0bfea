output "cloud_run_service_name" {
  description = "Name of the GPU service."
  value       = google_cloud_run_v2_service.this.name
}

output "service_account_email" {
  description = "Service account of the GPU worker."
  value       = google_service_account.this.email
}
