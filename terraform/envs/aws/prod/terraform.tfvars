environment = "prod"
region      = "eu-west-1"

# Images are pushed to the ECR repositories this environment creates (see terraform/README.md).
image_tag     = "0.1.0"
gpu_image_tag = "0.1.0"

# One entry per folder under functions/.
functions = {
  ingest = {
    trigger              = "object"
    timeout_s            = 300
    memory_mb            = 2048
    reserved_concurrency = 20
    bucket_access        = "read"
    publishes_to         = ["embed", "enrich", "detect"]
  }
  scrape = {
    trigger              = "schedule"
    schedule             = "rate(15 minutes)"
    timeout_s            = 300
    reserved_concurrency = 2
    publishes_to         = ["embed", "enrich"]
  }
  enrich = {
    trigger              = "queue"
    timeout_s            = 60
    batch_size           = 10
    max_concurrency      = 10
    reserved_concurrency = 20
    publishes_to         = ["analyze"]
    secrets              = ["database-url", "redis-url"]
  }
  embed = {
    trigger              = "queue"
    timeout_s            = 120
    memory_mb            = 3008
    batch_size           = 64
    batching_window_s    = 5
    max_concurrency      = 10
    reserved_concurrency = 20
  }
  analyze = {
    trigger              = "queue"
    timeout_s            = 120
    max_concurrency      = 5
    reserved_concurrency = 10
    secrets              = ["database-url", "redis-url"]
  }
  deadletters = {
    trigger              = "schedule"
    schedule             = "rate(15 minutes)"
    timeout_s            = 120
    imports_dead_letters = true
  }
  api = {
    trigger              = "http"
    timeout_s            = 29
    memory_mb            = 2048
    reserved_concurrency = 50
    bucket_access        = "read_write"
    publishes_to         = ["analyze", "detect"]
    secrets              = ["database-url", "api-key", "redis-url"]
  }
}

# The GPU cap: instances x batch x in-flight bounds inference capacity; the backlog waits beyond it.
gpu = {
  max_instances = 4
  min_instances = 1
  max_batch     = 16
  max_in_flight = 2
  max_wait_ms   = 25
  instance_type = "g5.xlarge"
}

database = {
  instance_class        = "db.r6g.large"
  allocated_storage_gb  = 100
  multi_az              = true
  backup_retention_days = 14
  deletion_protection   = true
}

cache = {
  node_type          = "cache.r7g.large"
  num_cache_clusters = 2
}

log_level          = "INFO"
log_retention_days = 365
force_destroy      = false
vpc_cidr_block     = "10.41.0.0/16"
