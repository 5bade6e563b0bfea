output "sql_instance_connection_name" {
  description = "Connection name of the instance."
  value       = google_sql_database_instance.this.connection_name
}

output "sql_instance_private_ip_address" {
  description = "Private IP of the instance."
  value       = google_sql_database_instance.this.private_ip_address
}
