output "redis_host" {
  description = "Private host of Redis (TLS, AUTH)."
  value       = google_redis_instance.this.host
}

output "redis_port" {
  description = "Port of Redis."
  value       = google_redis_instance.this.port
}

output "server_ca_cert" {
  description = "PEM of the CA that signs the instance's TLS certificate (clients verify the server with it)."
  value       = google_redis_instance.this.server_ca_certs[0].cert
}
