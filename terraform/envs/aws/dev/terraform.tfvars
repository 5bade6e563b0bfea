environment = "dev"
region      = "eu-west-1"

# Images are pushed to the ECR repositories this environment creates (see terraform/README.md).
image_tag     = "0.1.0"
gpu_image_tag = "0.1.0"

# One entry per folder under functions/.
functions = {
  ingest = {
    trigger       = "object"
    timeout_s     = 300
    memory_mb     = 1024
    bucket_access = "read"
    publishes_to  = ["embed", "enrich", "detect"]
  }
  scrape = {
    trigger      = "schedule"
    schedule     = "rate(1 hour)"
    timeout_s    = 300
    publishes_to = ["embed", "enrich"]
  }
  enrich = {
    trigger      = "queue"
    timeout_s    = 60
    batch_size   = 10
    publishes_to = ["analyze"]
    secrets      = ["database-url", "redis-url"]
  }
  embed = {
    trigger           = "queue"
    timeout_s         = 120
    memory_mb         = 2048
    batch_size        = 32
    batching_window_s = 5
  }
  analyze = {
    trigger   = "queue"
    timeout_s = 120
    secrets   = ["database-url", "redis-url"]
  }
  deadletters = {
    trigger              = "schedule"
    schedule             = "rate(15 minutes)"
    timeout_s            = 120
    imports_dead_letters = true
  }
  api = {
    trigger       = "http"
    timeout_s     = 29
    memory_mb     = 1024
    bucket_access = "read_write"
    publishes_to  = ["analyze", "detect"]
    secrets       = ["database-url", "api-key", "redis-url"]
  }
}

# Dev caps GPUs at one instance, scaled to zero when idle.
gpu = {
  max_instances = 1
  min_instances = 0
  max_batch     = 8
  max_in_flight = 2
  max_wait_ms   = 50
  instance_type = "g4dn.xlarge"
}

database = {
  instance_class        = "db.t4g.micro"
  multi_az              = false
  backup_retention_days = 1
  deletion_protection   = false
}

cache = {
  node_type          = "cache.t4g.micro"
  num_cache_clusters = 1
}

log_level          = "DEBUG"
log_retention_days = 365
force_destroy      = true
vpc_cidr_block     = "10.40.0.0/16"
