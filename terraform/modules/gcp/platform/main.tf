data "google_project" "this" {
  project_id = var.project_id
}

data "google_storage_project_service_account" "this" {
  project = var.project_id
}

locals {
  name   = "${var.project}-${var.environment}"
  labels = merge(var.labels, { project = var.project, environment = var.environment, managed-by = "terraform" })

  create_gpu_service = var.create_gpu_service && var.gpu.max_instances > 0
  queue_functions    = { for k, f in var.functions : k => f if f.trigger == "queue" }
  object_functions   = { for k, f in var.functions : k => f if f.trigger == "object" }

  secret_env_names = {
    "database-url" = "CONTENTFN_DATABASE_URL"
    "api-key"      = "CONTENTFN_API_KEY"
    "llm-api-key"  = "CONTENTFN_LLM_API_KEY"
    "redis-url"    = "CONTENTFN_REDIS_URL"
    # Optional integrations: list them in a function's secrets only once the secret has a value.
    "spotify-client-secret" = "CONTENTFN_SPOTIFY_CLIENT_SECRET"
    "genius-token"          = "CONTENTFN_GENIUS_TOKEN"
  }

  gpu_environment = {
    CONTENTFN_GPU_MAX_INSTANCES = tostring(var.gpu.max_instances)
    CONTENTFN_GPU_MAX_BATCH     = tostring(var.gpu.max_batch)
    CONTENTFN_GPU_MAX_IN_FLIGHT = tostring(var.gpu.max_in_flight)
    CONTENTFN_GPU_MAX_WAIT_MS   = tostring(var.gpu.max_wait_ms)
  }

  # Least privilege in the database (shared/store/roles.py): every function that lists database-url,
  # and the GPU worker, logs in as the Cloud SQL IAM user of its own service account, with a fresh
  # OAuth token of that account as the password (no stored password), and verifies the server's
  # certificate and address against the instance's CA (sslmode=verify-full). The migrator makes each
  # login a member of its runtime role (`contentfn db roles --member FUNCTION=LOGIN`, the
  # database_roles_command output). Runtime roles may not migrate: the migrator runs
  # `contentfn db migrate` with the master login in the database-url secret, which no process reads.
  database_functions = { for k, f in var.functions : k => f if contains(f.secrets, "database-url") }
  database_processes = concat(keys(local.database_functions), local.create_gpu_service ? ["gpu"] : [])
  runtime_database_environment = {
    for k in local.database_processes : k => {
      CONTENTFN_DATABASE_URL      = "postgresql://${urlencode(module.database.iam_logins[k])}@${module.database.sql_instance_private_ip_address}:5432/${module.database.database_name}?sslmode=verify-full"
      CONTENTFN_DATABASE_IAM_AUTH = "true"
      CONTENTFN_DATABASE_CA_CERT  = module.database.server_ca_cert
      CONTENTFN_MIGRATE_ON_START  = "false"
    }
  }

  # The functions that write the bucket (the API's signed uploads) are told the one prefix they may
  # write: the keys they sign and their objectCreator condition are the same value.
  upload_environment = { CONTENTFN_UPLOAD_PREFIX = var.signed_upload_prefix }
  upload_objects     = "projects/_/buckets/${local.uploads_bucket_name}/objects/"

  uploads_bucket_name = "${local.name}-uploads-${var.project_id}"

  common_environment = {
    CONTENTFN_BUCKET             = module.uploads.bucket_name
    CONTENTFN_HNSW_EF_SEARCH     = tostring(var.hnsw_ef_search)
    CONTENTFN_QUEUE_MAX_ATTEMPTS = tostring(var.queue_max_attempts)
    CONTENTFN_LOG_LEVEL          = var.log_level
    # Memorystore signs its TLS certificate with its own CA, which no trust store holds.
    CONTENTFN_REDIS_CA_CERT = module.cache.server_ca_cert
    # Every process exports its spans to the same endpoint (empty: none), so an upload's stages join up.
    CONTENTFN_OTEL_EXPORTER_ENDPOINT = var.tracing.otlp_endpoint
    CONTENTFN_OTEL_SAMPLE_RATIO      = tostring(var.tracing.sample_ratio)
  }

  # Topic IDs by queue name, built from names so functions and queues do not depend on each other.
  topic_ids = merge(
    { for k, f in local.queue_functions : k => "projects/${var.project_id}/topics/${local.name}-${k}" },
    { detect = "projects/${var.project_id}/topics/${local.name}-detect" },
  )

  # Subscriptions whose backlog a function reads from Cloud Monitoring (Pub/Sub reports it nowhere
  # else): the detect subscription for image admission, a job function's own push subscription for
  # its batch decisions (embed defers its first index while a bulk load is queued).
  subscription_ids = merge(
    { for k, f in local.queue_functions : k => "projects/${var.project_id}/subscriptions/${local.name}-${k}" },
    { detect = "projects/${var.project_id}/subscriptions/${local.name}-detect" },
  )
  # Every dead-letter subscription and the kind of what it holds: the function that imports dead
  # letters drains them into the dead-letter store of record (functions/deadletters).
  dead_letter_sources = merge(
    { for k, f in local.queue_functions : "projects/${var.project_id}/subscriptions/${local.name}-${k}-dead-letter" => k },
    { "projects/${var.project_id}/subscriptions/${local.name}-detect-dead-letter" = "detect" },
  )
  dead_letter_importers = { for k, f in var.functions : k => f if f.imports_dead_letters }

  backlog_kinds = {
    for k, f in var.functions : k => concat(
      contains(f.publishes_to, "detect") ? ["detect"] : [],
      f.trigger == "queue" ? [k] : [],
    )
  }

  # Publisher members per queue, by publishing function.
  publishers = {
    for q in keys(local.topic_ids) : q => {
      for k, f in var.functions : k => "serviceAccount:${module.function[k].service_account_email}" if contains(f.publishes_to, q)
    }
  }
}

module "network" {
  source = "../network"

  project_id     = var.project_id
  name           = local.name
  region         = var.region
  subnet_cidr    = var.subnet_cidr
  connector_cidr = var.connector_cidr
}

module "uploads" {
  source = "../bucket"

  project_id    = var.project_id
  name          = local.uploads_bucket_name
  location      = var.region
  force_destroy = var.force_destroy
  labels        = local.labels
  # The console's signed PUTs and image GETs come from the origin it is opened at.
  cors_origins = var.console_origins
}

module "registry" {
  source = "../registry"

  project_id    = var.project_id
  region        = var.region
  name          = local.name
  force_destroy = var.force_destroy
  labels        = local.labels
}

module "secrets" {
  source = "../secrets"

  project_id        = var.project_id
  name_prefix       = local.name
  replica_locations = [var.region]
  labels            = local.labels
  secrets = {
    "database-url"          = "PostgreSQL URL of the migrator (the instance's postgres user, for contentfn db migrate and db roles); no function or worker reads it: they log in as IAM users"
    "api-key"               = "Admin API key of the api function, random, at least 32 characters or the function refuses to start (CONTENTFN_API_KEY)"
    "llm-api-key"           = "Key of the OpenAI-compatible LLM endpoint (CONTENTFN_LLM_API_KEY)"
    "redis-url"             = "rediss:// URL with the AUTH string (CONTENTFN_REDIS_URL)"
    "spotify-client-secret" = "Client secret of the Spotify-compatible metadata API, for enrich (CONTENTFN_SPOTIFY_CLIENT_SECRET)"
    "genius-token"          = "Token of the Genius-compatible lyrics API, for scrape (CONTENTFN_GENIUS_TOKEN)"
  }
}

module "function" {
  source   = "../function"
  for_each = var.functions

  project_id    = var.project_id
  region        = var.region
  name          = "${local.name}-${each.key}"
  function_key  = each.key
  trigger       = each.value.trigger
  source_bucket = module.registry.source_bucket_name
  source_object = var.source_object
  timeout_s     = each.value.timeout_s
  memory_mb     = each.value.memory_mb
  max_instances = each.value.max_instances
  concurrency   = each.value.concurrency
  schedule      = each.value.schedule

  ingress_settings = each.value.trigger == "http" ? var.api_ingress : "ALLOW_INTERNAL_ONLY"
  invokers         = each.value.trigger == "http" ? var.api_invokers : {}
  vpc_connector_id = module.network.vpc_access_connector_id
  bucket_name      = module.uploads.bucket_name
  bucket_location  = var.region

  environment = merge(
    local.common_environment,
    contains(each.value.publishes_to, "detect") ? local.gpu_environment : {},
    length(each.value.publishes_to) > 0 ? { CONTENTFN_QUEUES = jsonencode({ for q in each.value.publishes_to : q => local.topic_ids[q] }) } : {},
    length(local.backlog_kinds[each.key]) > 0 ? { CONTENTFN_QUEUE_BACKLOGS = jsonencode({ for q in local.backlog_kinds[each.key] : q => local.subscription_ids[q] }) } : {},
    each.value.imports_dead_letters ? { CONTENTFN_DEAD_LETTER_SOURCES = jsonencode(local.dead_letter_sources) } : {},
    var.metrics_otlp_endpoint != null ? { CONTENTFN_METRICS_OTLP_ENDPOINT = var.metrics_otlp_endpoint } : {},
    lookup(local.runtime_database_environment, each.key, {}),
    each.value.bucket_access == "read_write" ? local.upload_environment : {},
    each.value.environment,
  )
  # database-url marks a function that uses the database: it logs in as its own IAM user instead.
  secrets = { for s in each.value.secrets : local.secret_env_names[s] => module.secrets.secret_ids[s] if s != "database-url" }
  labels  = merge(local.labels, { function = each.key })
}

# One Pub/Sub topic per queue-triggered function, pushed to it with an OIDC token; the ack
# deadline covers the function's timeout and undeliverable jobs go to a dead-letter topic.
module "queue" {
  source   = "../queue"
  for_each = local.queue_functions

  project_id                 = var.project_id
  project_number             = data.google_project.this.number
  name                       = "${local.name}-${each.key}"
  push_endpoint              = module.function[each.key].function_uri
  push_service_account_email = module.function[each.key].invoker_service_account_email
  ack_deadline_seconds       = max(10, each.value.timeout_s)
  max_delivery_attempts      = var.queue_max_attempts
  publishers                 = local.publishers[each.key]
  labels                     = local.labels
}

# Detection jobs for the GPU service: a pull subscription with a dead-letter topic.
module "detect_queue" {
  source = "../queue"

  project_id            = var.project_id
  project_number        = data.google_project.this.number
  name                  = "${local.name}-detect"
  ack_deadline_seconds  = 300
  max_delivery_attempts = var.queue_max_attempts
  publishers            = local.publishers["detect"]
  labels                = local.labels
}

# The dead-letter import pulls and acknowledges on each dead-letter subscription, nothing more.
resource "google_pubsub_subscription_iam_member" "dead_letter_importer" {
  for_each = {
    for pair in setproduct(keys(local.dead_letter_importers), concat(keys(local.queue_functions), ["detect"])) :
    "${pair[0]}:${pair[1]}" => { importer = pair[0], queue = pair[1] }
  }

  project      = var.project_id
  subscription = each.value.queue == "detect" ? module.detect_queue.pubsub_dead_letter_subscription_name : module.queue[each.value.queue].pubsub_dead_letter_subscription_name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${module.function[each.value.importer].service_account_email}"
}

# Reading those backlogs: Cloud Monitoring's read-only role (metrics, no data or configuration).
resource "google_project_iam_member" "backlog_reader" {
  for_each = { for k, kinds in local.backlog_kinds : k => kinds if length(kinds) > 0 }

  project = var.project_id
  role    = "roles/monitoring.viewer"
  member  = "serviceAccount:${module.function[each.key].service_account_email}"
}

resource "google_storage_bucket_iam_member" "function_read" {
  for_each = { for k, f in var.functions : k => f if f.bucket_access != "none" }

  bucket = module.uploads.bucket_name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${module.function[each.key].service_account_email}"
}

# Writes only under the signed-upload prefix: a write anywhere else (images/, a track file) would be
# taken for an upload by the object trigger.
resource "google_storage_bucket_iam_member" "function_write" {
  for_each = { for k, f in var.functions : k => f if f.bucket_access == "read_write" }

  bucket = module.uploads.bucket_name
  role   = "roles/storage.objectCreator"
  member = "serviceAccount:${module.function[each.key].service_account_email}"

  condition {
    title       = "signed-upload-prefix-only"
    description = "Objects under ${var.signed_upload_prefix} only (CONTENTFN_UPLOAD_PREFIX)"
    expression  = "resource.name.startsWith(\"${local.upload_objects}${var.signed_upload_prefix}\")"
  }
}

# V4 signed URLs from Cloud Run: the runtime credentials hold no key, so the function signs through
# the IAM signBlob API as itself, which needs this role on its own account (and on no other).
resource "google_service_account_iam_member" "url_signer" {
  for_each = { for k, f in var.functions : k => f if f.bucket_access == "read_write" }

  service_account_id = "projects/${var.project_id}/serviceAccounts/${module.function[each.key].service_account_email}"
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${module.function[each.key].service_account_email}"
}

# Eventarc's documented requirements for Cloud Storage triggers: the Cloud Storage service agent
# publishes the events, and each trigger's identity may receive them.
resource "google_project_iam_member" "storage_agent_publisher" {
  count = length(local.object_functions) > 0 ? 1 : 0

  project = var.project_id
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.this.email_address}"
}

resource "google_project_iam_member" "event_receiver" {
  for_each = local.object_functions

  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = "serviceAccount:${module.function[each.key].invoker_service_account_email}"
}

# Functions push their metrics as OTLP to Cloud Monitoring, where Managed Prometheus reads them.
resource "google_project_iam_member" "metric_writer" {
  for_each = var.metrics_otlp_endpoint != null ? var.functions : {}

  project = var.project_id
  role    = "roles/monitoring.metricWriter"
  member  = "serviceAccount:${module.function[each.key].service_account_email}"
}

module "observability" {
  source = "../observability"

  project_id     = var.project_id
  name           = local.name
  function_names = { for k, f in module.function : k => f.function_name }
  subscription_names = merge(
    { for k, q in module.queue : k => q.pubsub_subscription_name },
    { detect = module.detect_queue.pubsub_subscription_name },
  )
  dead_letter_subscription_names = merge(
    { for k, q in module.queue : k => q.pubsub_dead_letter_subscription_name },
    { detect = module.detect_queue.pubsub_dead_letter_subscription_name },
  )
  gpu_service           = local.create_gpu_service
  notification_channels = var.notification_channels
  thresholds            = var.alarm_thresholds
  labels                = local.labels
}

module "gpu_service" {
  source = "../gpu_service"
  count  = local.create_gpu_service ? 1 : 0

  project_id      = var.project_id
  region          = var.region
  name            = "${local.name}-gpu"
  image           = "${module.registry.artifact_registry_repository_url}/gpu-worker:${var.gpu_image_tag}"
  max_instances   = var.gpu.max_instances
  min_instances   = var.gpu.min_instances
  max_batch       = var.gpu.max_batch
  max_in_flight   = var.gpu.max_in_flight
  max_wait_ms     = var.gpu.max_wait_ms
  device_process  = var.gpu.device_process
  accelerator     = var.gpu.accelerator
  subscription_id = module.detect_queue.pubsub_subscription_id
  topic_id        = module.detect_queue.pubsub_topic_id
  bucket_name     = module.uploads.bucket_name
  images_prefix   = "images/"
  network_id      = module.network.network_id
  subnetwork_id   = module.network.subnetwork_id
  environment     = merge(local.common_environment, lookup(local.runtime_database_environment, "gpu", {}), var.gpu.environment)
  secrets = {
    CONTENTFN_REDIS_URL = module.secrets.secret_ids["redis-url"]
  }
  deletion_protection = !var.force_destroy
  labels              = local.labels
}

module "database" {
  source = "../database"

  project_id          = var.project_id
  region              = var.region
  name                = local.name
  tier                = var.database.tier
  database_version    = var.database.database_version
  availability_type   = var.database.availability_type
  disk_size_gb        = var.database.disk_size_gb
  retained_backups    = var.database.retained_backups
  deletion_protection = var.database.deletion_protection
  network_id          = module.network.network_id
  labels              = local.labels
  iam_service_accounts = merge(
    { for k, f in local.database_functions : k => module.function[k].service_account_email },
    local.create_gpu_service ? { gpu = module.gpu_service[0].service_account_email } : {},
  )

  depends_on = [module.network]
}

module "cache" {
  source = "../cache"

  project_id     = var.project_id
  region         = var.region
  name           = local.name
  tier           = var.cache.tier
  memory_size_gb = var.cache.memory_size_gb
  network_id     = module.network.network_id
  labels         = local.labels

  depends_on = [module.network]
}
