output "sns_topic_alarms_arn" {
  description = "SNS topic the alarms notify."
  value       = local.topic_arn
}

output "cloudwatch_metric_alarm_names" {
  description = "Every alarm's name."
  value = concat(
    [for a in aws_cloudwatch_metric_alarm.dead_letters : a.alarm_name],
    [for a in aws_cloudwatch_metric_alarm.oldest_message : a.alarm_name],
    [for a in aws_cloudwatch_metric_alarm.function_errors : a.alarm_name],
    [aws_cloudwatch_metric_alarm.llm_budget.alarm_name],
    [for a in aws_cloudwatch_metric_alarm.gpu_queue_lag : a.alarm_name],
  )
}

output "cloudwatch_dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}
