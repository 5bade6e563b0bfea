output "function_name" {
  description = "Name of the function."
  value       = google_cloudfunctions2_function.this.name
}

output "function_uri" {
  description = "HTTPS URI of the function (internal ingress only)."
  value       = google_cloudfunctions2_function.this.service_config[0].uri
}

output "service_account_email" {
  description = "Runtime service account of the function."
  value       = google_service_account.this.email
}

output "invoker_service_account_email" {
  description = "Service account its triggers (Eventarc, Pub/Sub push, Scheduler) authenticate as."
  value       = google_service_account.invoker.email
}

output "scheduler_job_id" {
  description = "ID of the schedule (schedule trigger)."
  value       = try(google_cloud_scheduler_job.this[0].id, null)
}
