project_id  = "contentfn-prod"
environment = "prod"
region      = "us-central1"

# Source archive and image built and pushed as described in terraform/README.md.
source_object = "functions-0.1.0.zip"
gpu_image_tag = "0.1.0"

# One entry per folder under functions/.
functions = {
  ingest = {
    trigger       = "object"
    timeout_s     = 300
    memory_mb     = 2048
    max_instances = 20
    bucket_access = "read"
    publishes_to  = ["embed", "enrich", "detect"]
  }
  scrape = {
    trigger       = "schedule"
    schedule      = "*/15 * * * *"
    timeout_s     = 300
    max_instances = 2
    publishes_to  = ["embed", "enrich"]
  }
  enrich = {
    trigger       = "queue"
    timeout_s     = 60
    max_instances = 20
    publishes_to  = ["analyze"]
    secrets       = ["database-url", "redis-url"]
  }
  embed = {
    trigger       = "queue"
    timeout_s     = 120
    memory_mb     = 4096
    max_instances = 20
  }
  analyze = {
    trigger       = "queue"
    timeout_s     = 120
    max_instances = 10
    secrets       = ["database-url", "redis-url"]
  }
  deadletters = {
    trigger              = "schedule"
    schedule             = "*/15 * * * *"
    timeout_s            = 120
    imports_dead_letters = true
  }
  api = {
    trigger       = "http"
    timeout_s     = 30
    memory_mb     = 2048
    max_instances = 50
    concurrency   = 16
    bucket_access = "read_write"
    publishes_to  = ["analyze", "detect"]
    secrets       = ["database-url", "api-key", "redis-url"]
  }
}

# The GPU cap: instances x batch x in-flight bounds inference capacity; the backlog waits beyond it.
gpu = {
  max_instances = 4
  min_instances = 1
  max_batch     = 16
  max_in_flight = 2
  max_wait_ms   = 25
  accelerator   = "nvidia-l4"
}

database = {
  tier                = "db-custom-4-16384"
  availability_type   = "REGIONAL"
  disk_size_gb        = 100
  retained_backups    = 14
  deletion_protection = true
}

cache = {
  tier           = "STANDARD_HA"
  memory_size_gb = 4
}

# Origins the web console is opened at (the HTTPS load balancer in front of the api function),
# allowed by the uploads bucket's CORS for signed uploads and image reads; [] allows none.
console_origins = []

# Callers of the api function; empty keeps it private.
api_invokers = {}

log_level     = "INFO"
force_destroy = false
