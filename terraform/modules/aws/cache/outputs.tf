output "elasticache_primary_endpoint_address" {
  description = "Primary endpoint of the replication group (TLS, AUTH)."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "elasticache_port" {
  description = "Port of the cache."
  value       = aws_elasticache_replication_group.this.port
}
