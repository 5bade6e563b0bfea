# Private IP only, TLS only, backups with point-in-time recovery. pgvector is available on Cloud
# SQL for PostgreSQL and is enabled by the schema migration (CREATE EXTENSION vector).
resource "google_sql_database_instance" "this" {
  #checkov:skip=CKV_GCP_6:ssl_mode ENCRYPTED_ONLY refuses every unencrypted connection and the clients verify the server (sslmode=verify-full against its CA); client-certificate mTLS would force the Cloud SQL connector into every process of a private-IP-only instance.
  #checkov:skip=CKV_GCP_79:PostgreSQL 16 matches the local runtime and the tests; database_version accepts 17 once both move.
  project             = var.project_id
  name                = var.name
  region              = var.region
  database_version    = var.database_version
  deletion_protection = var.deletion_protection

  settings {
    tier                        = var.tier
    edition                     = "ENTERPRISE"
    availability_type           = var.availability_type
    disk_type                   = "PD_SSD"
    disk_size                   = var.disk_size_gb
    disk_autoresize             = true
    deletion_protection_enabled = var.deletion_protection
    user_labels                 = var.labels

    ip_configuration {
      ipv4_enabled    = false
      private_network = var.network_id
      ssl_mode        = "ENCRYPTED_ONLY"
      # Server certificates from Google's CA Service hierarchy, which name the instance's addresses:
      # the processes verify the server by its certificate and its address (sslmode=verify-full).
      server_ca_mode                                = "GOOGLE_MANAGED_CAS_CA"
      enable_private_path_for_google_cloud_services = true
    }

    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
      start_time                     = "03:00"
      transaction_log_retention_days = 7

      backup_retention_settings {
        retained_backups = var.retained_backups
      }
    }

    maintenance_window {
      day  = 7
      hour = 4
    }

    insights_config {
      query_insights_enabled  = true
      record_application_tags = false
      record_client_address   = false
    }

    dynamic "database_flags" {
      for_each = local.database_flags

      content {
        name  = database_flags.key
        value = database_flags.value
      }
    }
  }
}

locals {
  database_flags = {
    "cloudsql.enable_pgaudit" = "on"
    # Service accounts log in as IAM database users with short-lived OAuth tokens: no stored password.
    "cloudsql.iam_authentication" = "on"
    "log_checkpoints"             = "on"
    "log_connections"             = "on"
    "log_disconnections"          = "on"
    "log_lock_waits"              = "on"
    "log_min_duration_statement"  = "-1"
    "log_min_error_statement"     = "error"
    "log_min_messages"            = "error"
    "log_statement"               = "ddl"
    "log_temp_files"              = "0"
    "log_hostname"                = "on"
  }
}

resource "google_sql_database" "this" {
  project  = var.project_id
  name     = var.database_name
  instance = google_sql_database_instance.this.name
}

# One IAM database user per process that uses the database, for its own service account: it logs
# in with an OAuth token of that account and holds no privilege until the migrator makes it a
# member of its runtime role (`contentfn db roles --member FUNCTION=LOGIN`, shared/store/roles.py).
resource "google_sql_user" "iam" {
  for_each = var.iam_service_accounts

  project  = var.project_id
  instance = google_sql_database_instance.this.name
  name     = trimsuffix(each.value, ".gserviceaccount.com")
  type     = "CLOUD_IAM_SERVICE_ACCOUNT"
}

# Logging in as an IAM user needs cloudsql.instances.login on the instance, and nothing more.
resource "google_project_iam_member" "instance_user" {
  for_each = var.iam_service_accounts

  project = var.project_id
  role    = "roles/cloudsql.instanceUser"
  member  = "serviceAccount:${each.value}"

  condition {
    title      = "this-instance-only"
    expression = "resource.name == 'projects/${var.project_id}/instances/${google_sql_database_instance.this.name}' && resource.type == 'sqladmin.googleapis.com/Instance'"
  }
}
