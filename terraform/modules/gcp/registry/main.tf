resource "google_artifact_registry_repository" "this" {
  #checkov:skip=CKV_GCP_84:Images hold no customer data and use Google-managed encryption; CMEK would add a key ring and service-agent grants per project.
  project       = var.project_id
  location      = var.region
  repository_id = var.name
  description   = "contentfn GPU worker images"
  format        = "DOCKER"
  labels        = var.labels

  docker_config {
    immutable_tags = true
  }

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"

    most_recent_versions {
      keep_count = var.keep_images
    }
  }
}

# Function source archives (Cloud Run functions build from source).
module "sources" {
  source = "../bucket"

  project_id    = var.project_id
  name          = "${var.name}-sources-${var.project_id}"
  location      = var.region
  force_destroy = var.force_destroy
  labels        = var.labels
}
