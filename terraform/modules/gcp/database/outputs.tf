output "sql_instance_connection_name" {
  description = "Connection name of the instance."
  value       = google_sql_database_instance.this.connection_name
}

output "sql_instance_private_ip_address" {
  description = "Private IP of the instance."
  value       = google_sql_database_instance.this.private_ip_address
}

output "database_name" {
  description = "Name of the application database."
  value       = google_sql_database.this.name
}

output "server_ca_cert" {
  description = "PEM of the CA that signed the instance's server certificate (the processes verify it)."
  value       = google_sql_database_instance.this.server_ca_cert[0].cert
}

output "iam_logins" {
  description = "Database login (IAM user name) of each process's service account, by process."
  value       = { for k, u in google_sql_user.iam : k => u.name }
}
