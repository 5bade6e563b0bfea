output "monitoring_alert_policy_names" {
  description = "Resource names of the alert policies."
  value = concat(
    [google_monitoring_alert_policy.dead_letters.name, google_monitoring_alert_policy.oldest_message.name],
    [google_monitoring_alert_policy.function_errors.name, google_monitoring_alert_policy.llm_budget.name],
    [for p in google_monitoring_alert_policy.gpu_queue_lag : p.name],
  )
}

output "monitoring_dashboard_id" {
  description = "ID of the Cloud Monitoring dashboard."
  value       = google_monitoring_dashboard.this.id
}
