output "db_instance_address" {
  description = "Host name of the database."
  value       = aws_db_instance.this.address
}

output "db_instance_port" {
  description = "Port of the database."
  value       = aws_db_instance.this.port
}

output "db_instance_master_user_secret_arn" {
  description = "Secrets Manager ARN of the RDS-managed master credentials."
  value       = try(aws_db_instance.this.master_user_secret[0].secret_arn, null)
}
