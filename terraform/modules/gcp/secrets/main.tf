# Secret containers only: values are added out of band (see terraform/README.md), so no secret
# value passes through a plan or the state.
resource "google_secret_manager_secret" "this" {
  for_each = var.secrets

  project   = var.project_id
  secret_id = "${var.name_prefix}-${each.key}"
  labels    = merge(var.labels, { purpose = each.key })

  annotations = {
    description = each.value
  }

  replication {
    user_managed {
      dynamic "replicas" {
        for_each = var.replica_locations

        content {
          location = replicas.value
        }
      }
    }
  }
}
