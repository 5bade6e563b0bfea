# Secret containers only: values are written out of band (see terraform/README.md), so no secret
# value passes through a plan or the state.
resource "aws_secretsmanager_secret" "this" {
  #checkov:skip=CKV2_AWS_57:Values are operator-provided (API keys, connection URLs); rotation belongs to their issuers. The RDS master password is rotated by RDS itself.
  for_each = var.secrets

  name                    = "${var.name_prefix}/${each.key}"
  description             = each.value
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_in_days
  tags                    = var.tags
}
