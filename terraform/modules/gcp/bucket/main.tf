resource "google_storage_bucket" "this" {
  project                     = var.project_id
  name                        = var.name
  location                    = var.location
  force_destroy               = var.force_destroy
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = var.labels

  versioning {
    enabled = true
  }

  logging {
    log_bucket        = google_storage_bucket.access_logs.name
    log_object_prefix = var.name
  }

  # The web console PUTs a file to the V4 signed URL `POST /uploads` answers and shows images by
  # signed GETs, from its own origin: the browser's preflight is answered only for these origins,
  # methods and headers (Content-Type and the length range are signed and sent by the page).
  dynamic "cors" {
    for_each = length(var.cors_origins) > 0 ? [1] : []

    content {
      origin          = var.cors_origins
      method          = ["PUT", "GET"]
      response_header = ["Content-Type", "x-goog-content-length-range", "ETag"]
      max_age_seconds = 3600
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_expiration_days
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_storage_bucket" "access_logs" {
  #checkov:skip=CKV_GCP_62:This is the access-log target; logging it to itself would loop.
  project                     = var.project_id
  name                        = "${var.name}-access-logs"
  location                    = var.location
  force_destroy               = var.force_destroy
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = var.labels

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      age = var.access_log_expiration_days
    }
    action {
      type = "Delete"
    }
  }
}

# Cloud Storage writes usage logs as this group; it is the documented grantee for log delivery.
resource "google_storage_bucket_iam_member" "access_logs_writer" {
  bucket = google_storage_bucket.access_logs.name
  role   = "roles/storage.legacyBucketWriter"
  member = "group:cloud-storage-analytics@google.com"
}
