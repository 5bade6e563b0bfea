output "network_id" {
  description = "ID of the VPC network."
  value       = google_compute_network.this.id
}

output "network_name" {
  description = "Name of the VPC network."
  value       = google_compute_network.this.name
}

output "subnetwork_id" {
  description = "ID of the subnetwork."
  value       = google_compute_subnetwork.this.id
}

output "vpc_access_connector_id" {
  description = "ID of the Serverless VPC Access connector."
  value       = google_vpc_access_connector.this.id
}

output "service_networking_connection_id" {
  description = "Private services access connection (dependency of Cloud SQL and Memorystore)."
  value       = google_service_networking_connection.this.id
}
