# Remote state: one S3 object per environment, encrypted, locked with an S3 lock file.
# The state bucket is created once per account outside this configuration (versioned, KMS,
# public access blocked) and named at init time:
#   terraform init -backend-config="bucket=<state-bucket>" -backend-config="region=<region>"
# Tests and `terraform validate` use `terraform init -backend=false`.
terraform {
  backend "s3" {
    key          = "contentfn/aws/prod/terraform.tfstate"
    encrypt      = true
    use_lockfile = true
  }
}
