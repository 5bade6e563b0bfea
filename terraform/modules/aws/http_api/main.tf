data "aws_caller_identity" "current" {}

locals {
  use_jwt = var.authorization_type == "JWT"
}

resource "aws_cloudwatch_log_group" "access" {
  name              = "/aws/apigateway/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_apigatewayv2_api" "this" {
  name          = var.name
  description   = "contentfn HTTPS API"
  protocol_type = "HTTP"
  tags          = var.tags

  lifecycle {
    precondition {
      condition     = !local.use_jwt || (var.jwt_issuer != null && length(var.jwt_audience) > 0)
      error_message = "authorization_type = JWT needs jwt_issuer and at least one jwt_audience."
    }
  }
}

resource "aws_apigatewayv2_authorizer" "jwt" {
  count = local.use_jwt ? 1 : 0

  api_id           = aws_apigatewayv2_api.this.id
  name             = "${var.name}-jwt"
  authorizer_type  = "JWT"
  identity_sources = ["$request.header.Authorization"]

  jwt_configuration {
    issuer   = var.jwt_issuer
    audience = var.jwt_audience
  }
}

resource "aws_apigatewayv2_integration" "this" {
  api_id                 = aws_apigatewayv2_api.this.id
  integration_type       = "AWS_PROXY"
  integration_uri        = var.lambda_function_invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = var.integration_timeout_ms
}

# Every route requires the authorizer; there is no unauthenticated route.
resource "aws_apigatewayv2_route" "this" {
  for_each = toset(["ANY /", "ANY /{proxy+}"])

  api_id             = aws_apigatewayv2_api.this.id
  route_key          = each.value
  target             = "integrations/${aws_apigatewayv2_integration.this.id}"
  authorization_type = var.authorization_type
  authorizer_id      = local.use_jwt ? aws_apigatewayv2_authorizer.jwt[0].id : null
}

resource "aws_apigatewayv2_stage" "this" {
  api_id      = aws_apigatewayv2_api.this.id
  name        = "$default"
  auto_deploy = true
  tags        = var.tags

  default_route_settings {
    throttling_burst_limit = var.throttling_burst_limit
    throttling_rate_limit  = var.throttling_rate_limit
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format = jsonencode({
      requestId      = "$context.requestId"
      ip             = "$context.identity.sourceIp"
      requestTime    = "$context.requestTime"
      httpMethod     = "$context.httpMethod"
      routeKey       = "$context.routeKey"
      status         = "$context.status"
      responseLength = "$context.responseLength"
      latency        = "$context.integrationLatency"
      authError      = "$context.authorizer.error"
    })
  }
}

resource "aws_lambda_permission" "this" {
  statement_id   = "AllowInvokeFromHttpApi"
  action         = "lambda:InvokeFunction"
  function_name  = var.lambda_function_name
  principal      = "apigateway.amazonaws.com"
  source_arn     = "${aws_apigatewayv2_api.this.execution_arn}/*/*"
  source_account = data.aws_caller_identity.current.account_id
}
