output "pubsub_topic_id" {
  description = "ID of the topic."
  value       = google_pubsub_topic.this.id
}

output "pubsub_topic_name" {
  description = "Name of the topic."
  value       = google_pubsub_topic.this.name
}

output "pubsub_subscription_id" {
  description = "ID of the subscription."
  value       = google_pubsub_subscription.this.id
}

output "pubsub_dead_letter_topic_id" {
  description = "ID of the dead-letter topic."
  value       = google_pubsub_topic.dead_letter.id
}

output "pubsub_subscription_name" {
  description = "Name of the subscription."
  value       = google_pubsub_subscription.this.name
}

output "pubsub_dead_letter_subscription_name" {
  description = "Name of the subscription on the dead-letter topic (drained by the dead-letter import)."
  value       = google_pubsub_subscription.dead_letter.name
}
