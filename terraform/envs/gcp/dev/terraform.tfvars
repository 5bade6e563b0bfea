project_id  = "contentfn-dev"
environment = "dev"
region      = "us-central1"

# Source archive and image built and pushed as described in terraform/README.md.
source_object = "functions-0.1.0.zip"
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
    schedule     = "0 * * * *"
    timeout_s    = 300
    publishes_to = ["embed", "enrich"]
  }
  enrich = {
    trigger      = "queue"
    timeout_s    = 60
    publishes_to = ["analyze"]
    secrets      = ["database-url", "redis-url"]
  }
  embed = {
    trigger   = "queue"
    timeout_s = 120
    memory_mb = 2048
  }
  analyze = {
    trigger   = "queue"
    timeout_s = 120
    secrets   = ["database-url", "redis-url"]
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
    memory_mb     = 1024
    concurrency   = 8
    bucket_access = "read_write"
    publishes_to  = ["analyze", "detect"]
    secrets       = ["database-url", "api-key", "redis-url"]
  }
}

# Dev caps GPUs at one instance (always on: the worker pulls its queue, see min_instances).
gpu = {
  max_instances = 1
  min_instances = 1 # a pull worker: Cloud Run would never start it again from zero
  max_batch     = 8
  max_in_flight = 2
  max_wait_ms   = 50
  accelerator   = "nvidia-l4"
}

database = {
  tier                = "db-custom-1-3840"
  availability_type   = "ZONAL"
  retained_backups    = 3
  deletion_protection = false
}

cache = {
  tier           = "BASIC"
  memory_size_gb = 1
}

# Origins the web console is opened at (the HTTPS load balancer in front of the api function),
# allowed by the uploads bucket's CORS for signed uploads and image reads; [] allows none.
console_origins = []

# Callers of the api function; empty keeps it private.
api_invokers = {}

log_level     = "DEBUG"
force_destroy = true
