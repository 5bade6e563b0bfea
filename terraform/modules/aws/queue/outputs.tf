output "queue_arn" {
  description = "ARN of the main queue (null when only the dead letter queue is created)."
  value       = try(aws_sqs_queue.this[0].arn, null)
}

output "queue_url" {
  description = "URL of the main queue (null when only the dead letter queue is created)."
  value       = try(aws_sqs_queue.this[0].id, null)
}

output "queue_name" {
  description = "Name of the main queue (null when only the dead letter queue is created)."
  value       = try(aws_sqs_queue.this[0].name, null)
}

output "dead_letter_queue_arn" {
  description = "ARN of the dead letter queue."
  value       = aws_sqs_queue.dead_letter.arn
}

output "dead_letter_queue_url" {
  description = "URL of the dead letter queue."
  value       = aws_sqs_queue.dead_letter.id
}

output "dead_letter_queue_name" {
  description = "Name of the dead letter queue."
  value       = aws_sqs_queue.dead_letter.name
}
