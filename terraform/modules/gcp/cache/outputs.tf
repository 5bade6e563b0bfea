output "redis_host" {
  description = "Private host of Redis (TLS, AUTH)."
  value       = google_redis_instance.this.host
}

output "redis_port" {
  description = "Port of Redis."
  value       = google_redis_instance.this.port
}
