output "secret_ids" {
  description = "Secret IDs by key."
  value       = { for k, s in google_secret_manager_secret.this : k => s.secret_id }
}
