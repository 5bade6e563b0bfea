# Remote state: one prefix per environment in a GCS bucket (object versioning on; GCS locks the
# state natively). The bucket is created once per organisation outside this configuration and
# named at init time:
#   terraform init -backend-config="bucket=<state-bucket>"
# Structure tests and checkov read the HCL; nothing here needs a backend.
terraform {
  backend "gcs" {
    prefix = "contentfn/gcp/dev"
  }
}
