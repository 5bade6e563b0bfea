locals {
  name = "${var.project}-${var.environment}"
  tags = merge(var.tags, { Project = var.project, Environment = var.environment })

  create_gpu_service = var.create_gpu_service && var.gpu.max_instances > 0
  object_functions   = { for k, f in var.functions : k => f if f.trigger == "object" }
  http_functions     = { for k, f in var.functions : k => f if f.trigger == "http" }

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

  # With the database created here, every process logs in with RDS's own master secret, read when
  # a connection opens (RDS rotates it every 7 days, and a URL holding the password would go stale).
  # The processes get the instance's ARN, known at plan time, and ask RDS for its endpoint and
  # secret; IAM grants the secret by the tag RDS puts on it, that same ARN. The database-url secret
  # is only for a database of your own.
  database_instance_arn = var.create_database ? "arn:${data.aws_partition.current.partition}:rds:${var.region}:${data.aws_caller_identity.current.account_id}:db:${local.name}" : null
  database_environment = var.create_database ? {
    CONTENTFN_DATABASE_RDS_INSTANCE  = local.database_instance_arn
    CONTENTFN_DATABASE_SSL_ROOT_CERT = var.database_ca_bundle_path
  } : {}

  # Least privilege in the database: the master secret is the migrator's alone (`contentfn db migrate`
  # and `contentfn db roles`, run with migrator_environment); each function and the GPU worker log in
  # as their own runtime role (shared/store/roles.py), whose login is a secret only they may read, and
  # never migrate. The secrets are created empty; the migrator writes their passwords.
  database_logins = var.create_database ? merge(
    { for k, f in var.functions : k => "Login of the ${k} function's database role contentfn_${k} (written by `contentfn db roles`)" if contains(f.secrets, "database-url") },
    local.create_gpu_service ? { gpu = "Login of the GPU worker's database role contentfn_gpu (written by `contentfn db roles`)" } : {},
  ) : {}
  runtime_database_environment = {
    for k in keys(local.database_logins) : k => {
      # By name, known at plan time (the ARN's suffix is not); IAM grants the ARN.
      CONTENTFN_DATABASE_CREDENTIALS_SECRET = "${var.project}/${var.environment}/db/${k}"
      CONTENTFN_MIGRATE_ON_START            = "false"
    }
  }

  common_environment = {
    CONTENTFN_BUCKET             = local.uploads_bucket_name
    CONTENTFN_HNSW_EF_SEARCH     = tostring(var.hnsw_ef_search)
    CONTENTFN_QUEUE_MAX_ATTEMPTS = tostring(var.queue_max_attempts)
    CONTENTFN_LOG_LEVEL          = var.log_level
    # Every process exports its spans to the same endpoint (empty: none), so an upload's stages join up.
    CONTENTFN_OTEL_EXPORTER_ENDPOINT = var.tracing.otlp_endpoint
    CONTENTFN_OTEL_SAMPLE_RATIO      = tostring(var.tracing.sample_ratio)
  }

  # Built from names (as AWS forms them) so they are known at plan time: the worker's task
  # definition and the function configuration can then be reviewed in full before apply.
  uploads_bucket_name = "${local.name}-uploads-${data.aws_caller_identity.current.account_id}"
  # The bucket's ARN from its name, known at plan time: the grants can be reviewed in the plan.
  uploads_bucket_arn = "arn:${data.aws_partition.current.partition}:s3:::${local.uploads_bucket_name}"
  registry_host      = "${data.aws_caller_identity.current.account_id}.dkr.ecr.${var.region}.${data.aws_partition.current.dns_suffix}"
  functions_image    = "${local.registry_host}/${local.name}/functions:${var.image_tag}"
  gpu_image          = "${local.registry_host}/${local.name}/gpu-worker:${var.gpu_image_tag}"
  sqs_url_prefix     = "https://sqs.${var.region}.${data.aws_partition.current.dns_suffix}/${data.aws_caller_identity.current.account_id}"

  queue_urls = merge(
    { for k, f in var.functions : k => "${local.sqs_url_prefix}/${local.name}-${k}" if f.trigger == "queue" },
    { detect = "${local.sqs_url_prefix}/${local.name}-detect" },
  )
  # Every dead-letter queue and the kind of what it holds: the function that imports dead letters
  # drains them into the dead-letter store of record (functions/deadletters).
  dead_letter_sources = merge(
    { for k, f in var.functions : "${local.sqs_url_prefix}/${local.name}-${k}-dlq" => k },
    { "${local.sqs_url_prefix}/${local.name}-detect-dlq" = "detect" },
  )
  dead_letter_arns = concat(
    [for k, f in var.functions : module.queue[k].dead_letter_queue_arn],
    [module.detect_queue.dead_letter_queue_arn],
  )

  # The functions that write the bucket (the API's signed uploads) are told the one prefix they may
  # write: the keys they sign and their PutObject grant are the same value.
  upload_environment = { CONTENTFN_UPLOAD_PREFIX = var.signed_upload_prefix }

  # CORS of the uploads bucket: the console is served by the HTTP API, so its origin is the API's URL
  # unless console_origins names others (a custom domain).
  console_origins = var.console_origins != null ? var.console_origins : [for k, api in module.http_api : api.apigatewayv2_api_endpoint]

  queue_arns = merge(
    { for k, f in var.functions : k => module.queue[k].queue_arn if f.trigger == "queue" },
    { detect = module.detect_queue.queue_arn },
  )
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

module "kms" {
  source = "../kms"

  name = local.name
  tags = local.tags
}

module "network" {
  source = "../network"

  name               = local.name
  region             = var.region
  cidr_block         = var.vpc_cidr_block
  create_nat_gateway = var.create_nat_gateway
  kms_key_arn        = module.kms.kms_key_arn
  log_retention_days = var.log_retention_days
  tags               = local.tags
}

module "uploads" {
  source = "../bucket"

  name          = local.uploads_bucket_name
  kms_key_arn   = module.kms.kms_key_arn
  force_destroy = var.force_destroy
  tags          = local.tags

  cors_allowed_origins = local.console_origins
}

module "registry" {
  source = "../registry"

  name_prefix  = local.name
  kms_key_arn  = module.kms.kms_key_arn
  force_delete = var.force_destroy
  tags         = local.tags
}

module "secrets" {
  source = "../secrets"

  name_prefix = "${var.project}/${var.environment}"
  kms_key_arn = module.kms.kms_key_arn
  secrets = {
    "database-url"          = "PostgreSQL URL of a database not created here (CONTENTFN_DATABASE_URL); with create_database the RDS-managed secret is read instead"
    "api-key"               = "Admin API key of the api function, random, at least 32 characters or the function refuses to start (CONTENTFN_API_KEY)"
    "llm-api-key"           = "Key of the OpenAI-compatible LLM endpoint (CONTENTFN_LLM_API_KEY)"
    "redis-url"             = "rediss:// URL with the AUTH token (CONTENTFN_REDIS_URL)"
    "spotify-client-secret" = "Client secret of the Spotify-compatible metadata API, for enrich (CONTENTFN_SPOTIFY_CLIENT_SECRET)"
    "genius-token"          = "Token of the Genius-compatible lyrics API, for scrape (CONTENTFN_GENIUS_TOKEN)"
  }
  recovery_window_in_days = var.force_destroy ? 0 : 30
  tags                    = local.tags
}

module "database_logins" {
  source = "../secrets"

  name_prefix             = "${var.project}/${var.environment}/db"
  kms_key_arn             = module.kms.kms_key_arn
  secrets                 = local.database_logins
  recovery_window_in_days = var.force_destroy ? 0 : 30
  tags                    = local.tags
}

module "detect_queue" {
  source = "../queue"

  name                       = "${local.name}-detect"
  visibility_timeout_seconds = 300
  max_receive_count          = var.queue_max_attempts
  kms_key_arn                = module.kms.kms_key_arn

  create_redrive_allow_policy = var.create_redrive_allow_policies
  tags                        = local.tags
}

# One queue pair per function: queue-triggered functions get a job queue with its dead letter
# queue; the others get a dead letter queue for failed asynchronous invocations and schedules.
module "queue" {
  source   = "../queue"
  for_each = var.functions

  name         = "${local.name}-${each.key}"
  create_queue = contains(["queue", "object"], each.value.trigger)
  # An object function's queue carries the bucket's S3 notifications (S3 → SQS → Lambda).
  sender_bucket_arn = each.value.trigger == "object" ? module.uploads.bucket_arn : null
  # AWS guidance for SQS event sources: at least 6x the function timeout plus the batching window.
  visibility_timeout_seconds = 6 * each.value.timeout_s + each.value.batching_window_s
  max_receive_count          = var.queue_max_attempts
  kms_key_arn                = module.kms.kms_key_arn

  create_redrive_allow_policy = var.create_redrive_allow_policies
  tags                        = merge(local.tags, { Function = each.key })
}

module "function" {
  source   = "../function"
  for_each = var.functions

  name         = "${local.name}-${each.key}"
  function_key = each.key
  trigger      = each.value.trigger
  image_uri    = local.functions_image
  command      = ["functions.${each.key}.aws.handler"]
  timeout_s    = each.value.timeout_s
  memory_mb    = each.value.memory_mb

  reserved_concurrency       = each.value.reserved_concurrency
  batch_size                 = each.value.batch_size
  maximum_batching_window_s  = each.value.batching_window_s
  max_concurrency            = each.value.max_concurrency
  queue_arn                  = module.queue[each.key].queue_arn
  queue_visibility_timeout_s = 6 * each.value.timeout_s + each.value.batching_window_s
  dead_letter_queue_arn      = module.queue[each.key].dead_letter_queue_arn
  schedule_expression        = each.value.schedule
  bucket_arn                 = local.uploads_bucket_arn
  bucket_access              = each.value.bucket_access
  publish_queue_arns         = [for q in each.value.publishes_to : local.queue_arns[q]]

  import_dead_letter_queue_arns = each.value.imports_dead_letters ? local.dead_letter_arns : []

  environment = merge(
    local.common_environment,
    contains(each.value.secrets, "database-url") ? local.database_environment : {},
    lookup(local.runtime_database_environment, each.key, {}),
    each.value.bucket_access == "read_write" ? local.upload_environment : {},
    contains(each.value.publishes_to, "detect") ? local.gpu_environment : {},
    length(each.value.publishes_to) > 0 ? { CONTENTFN_QUEUES = jsonencode({ for q in each.value.publishes_to : q => local.queue_urls[q] }) } : {},
    each.value.imports_dead_letters ? { CONTENTFN_DEAD_LETTER_SOURCES = jsonencode(local.dead_letter_sources) } : {},
    each.value.environment,
  )
  secrets = {
    for s in each.value.secrets : local.secret_env_names[s] => {
      name = "${var.project}/${var.environment}/${s}"
      arn  = module.secrets.secretsmanager_secret_arns[s]
    } if !(s == "database-url" && var.create_database)
  }
  database_instance_arn           = contains(each.value.secrets, "database-url") ? local.database_instance_arn : null
  read_database_login             = contains(keys(local.database_logins), each.key)
  database_credentials_secret_arn = lookup(module.database_logins.secretsmanager_secret_arns, each.key, null)
  bucket_write_prefix             = var.signed_upload_prefix

  kms_key_arn        = module.kms.kms_key_arn
  subnet_ids         = module.network.private_subnet_ids
  security_group_ids = [aws_security_group.functions.id]
  log_retention_days = var.log_retention_days
  tags               = merge(local.tags, { Function = each.key })
}

resource "aws_s3_bucket_notification" "uploads" {
  count = length(local.object_functions) > 0 ? 1 : 0

  bucket = module.uploads.bucket_id

  # Through a queue, not an asynchronous invoke: Lambda retries an invoke twice within minutes, and
  # then drops it into a queue no one reads; the queue redelivers after its visibility (6x the
  # timeout, past a crashed invocation's idempotency claim) and redrives to its DLQ, which the
  # dead-letter import brings into the dead-letter store.
  dynamic "queue" {
    for_each = local.object_functions

    content {
      id        = "${queue.key}-object-events"
      queue_arn = module.queue[queue.key].queue_arn
      # Removals too: a deleted object takes away the tracks it alone fed.
      events = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
    }
  }

  depends_on = [module.queue]
}

module "http_api" {
  source   = "../http_api"
  for_each = var.create_http_api ? local.http_functions : {}

  name                       = "${local.name}-${each.key}"
  lambda_function_name       = module.function[each.key].lambda_function_name
  lambda_function_invoke_arn = module.function[each.key].lambda_function_invoke_arn
  authorization_type         = var.api_authorization_type
  jwt_issuer                 = var.jwt_issuer
  jwt_audience               = var.jwt_audience
  kms_key_arn                = module.kms.kms_key_arn
  log_retention_days         = var.log_retention_days
  tags                       = local.tags
}

module "gpu_service" {
  source = "../gpu_service"
  count  = local.create_gpu_service ? 1 : 0

  name           = "${local.name}-gpu"
  image_uri      = local.gpu_image
  repository_arn = module.registry.ecr_repository_arns["gpu-worker"]
  max_instances  = var.gpu.max_instances
  min_instances  = var.gpu.min_instances
  max_batch      = var.gpu.max_batch
  max_in_flight  = var.gpu.max_in_flight
  max_wait_ms    = var.gpu.max_wait_ms
  instance_type  = var.gpu.instance_type
  device_process = var.gpu.device_process
  queue_arn      = module.detect_queue.queue_arn
  queue_url      = local.queue_urls["detect"]

  dead_letter_queue_arn = module.detect_queue.dead_letter_queue_arn
  queue_name            = module.detect_queue.queue_name
  bucket_arn            = local.uploads_bucket_arn
  environment           = merge(local.common_environment, local.database_environment, lookup(local.runtime_database_environment, "gpu", {}), var.gpu.environment)
  secret_arns = merge(
    var.create_database ? {} : { CONTENTFN_DATABASE_URL = module.secrets.secretsmanager_secret_arns["database-url"] },
    { CONTENTFN_REDIS_URL = module.secrets.secretsmanager_secret_arns["redis-url"] },
  )
  database_instance_arn = local.database_instance_arn

  read_database_login             = contains(keys(local.database_logins), "gpu")
  database_credentials_secret_arn = lookup(module.database_logins.secretsmanager_secret_arns, "gpu", null)
  images_prefix                   = "images/"
  subnet_ids                      = module.network.private_subnet_ids
  security_group_ids              = [aws_security_group.gpu.id]
  kms_key_arn                     = module.kms.kms_key_arn
  log_retention_days              = var.log_retention_days
  tags                            = local.tags
}

module "observability" {
  source = "../observability"

  name           = local.name
  region         = var.region
  function_names = { for k, f in module.function : k => f.lambda_function_name }
  queue_names = merge(
    # Job queues, and the queue the bucket's object events wait in for ingest (S3 → SQS → Lambda).
    { for k, f in var.functions : k => module.queue[k].queue_name if contains(["queue", "object"], f.trigger) },
    { detect = module.detect_queue.queue_name },
  )
  # Every dead-letter queue: the job queues' and those of failed asynchronous invocations.
  dead_letter_queue_names = merge(
    { for k, q in module.queue : k => q.dead_letter_queue_name },
    { detect = module.detect_queue.dead_letter_queue_name },
  )
  gpu_service     = local.create_gpu_service
  alarm_topic_arn = var.alarm_topic_arn
  thresholds      = var.alarm_thresholds
  kms_key_arn     = module.kms.kms_key_arn
  tags            = local.tags
}

module "database" {
  source = "../database"
  count  = var.create_database ? 1 : 0

  name                  = local.name
  engine_version        = var.database.engine_version
  instance_class        = var.database.instance_class
  allocated_storage_gb  = var.database.allocated_storage_gb
  multi_az              = var.database.multi_az
  backup_retention_days = var.database.backup_retention_days
  deletion_protection   = var.database.deletion_protection
  subnet_ids            = module.network.private_subnet_ids
  security_group_ids    = [aws_security_group.database.id]
  kms_key_arn           = module.kms.kms_key_arn
  tags                  = local.tags
}

module "cache" {
  source = "../cache"
  count  = var.create_cache ? 1 : 0

  name               = local.name
  node_type          = var.cache.node_type
  num_cache_clusters = var.cache.num_cache_clusters
  auth_token         = var.redis_auth_token
  subnet_ids         = module.network.private_subnet_ids
  security_group_ids = [aws_security_group.cache.id]
  kms_key_arn        = module.kms.kms_key_arn
  log_retention_days = var.log_retention_days
  tags               = local.tags
}
