output "secretsmanager_secret_names" {
  description = "Names of the secrets by key."
  value       = { for k, s in aws_secretsmanager_secret.this : k => s.name }
}

output "secretsmanager_secret_arns" {
  description = "ARNs of the secrets by key."
  value       = { for k, s in aws_secretsmanager_secret.this : k => s.arn }
}
