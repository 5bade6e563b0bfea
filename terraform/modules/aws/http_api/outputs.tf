output "apigatewayv2_api_id" {
  description = "ID of the HTTP API."
  value       = aws_apigatewayv2_api.this.id
}

output "apigatewayv2_api_endpoint" {
  description = "Base URL of the HTTP API."
  value       = aws_apigatewayv2_api.this.api_endpoint
}

output "apigatewayv2_api_execution_arn" {
  description = "Execution ARN of the HTTP API."
  value       = aws_apigatewayv2_api.this.execution_arn
}
