#!/usr/bin/env bash
# Terraform checks and plans for contentfn.
#
#   terraform/scripts/tf.sh check              fmt -check, init -backend=false + validate (AWS envs), checkov
#   terraform/scripts/tf.sh plan CLOUD ENV     plan envs/CLOUD/ENV (CLOUD: aws|gcp, ENV: an env folder there)
#
# Providers: a filesystem mirror holding the AWS provider is used when one is found
# (TF_PROVIDER_MIRROR, ~/.terraform.d/plugins, else a search of the disk); other providers come
# from the registry. `plan` uses the remote state named by TF_STATE_BUCKET (and AWS_REGION for the
# S3 backend); without it, it plans a temporary copy against an empty local state.
# CHECKOV names the checkov executable (default: checkov on PATH).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tf_root="$(cd "$here/.." && pwd)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

die() { echo "tf.sh: $*" >&2; exit 2; }

# The env folders of a cloud (envs/<cloud>/root holds the root module they link to, not an env).
env_names() {
  local dir
  for dir in "$tf_root/envs/$1"/*/; do
    dir="$(basename "$dir")"
    [ "$dir" = root ] || echo "$dir"
  done
}

find_mirror() {
  local candidate found
  for candidate in "${TF_PROVIDER_MIRROR:-}" "$HOME/.terraform.d/plugins"; do
    if [ -n "$candidate" ] && [ -d "$candidate/registry.terraform.io/hashicorp/aws" ]; then
      echo "$candidate"
      return
    fi
  done
  found="$(find / \( -path /proc -o -path /sys \) -prune -o -name 'terraform-provider-aws*' -type f -print -quit 2>/dev/null || true)"
  [ -n "$found" ] || return 0
  # <root>/registry.terraform.io/hashicorp/aws/<version>/<os_arch>/terraform-provider-aws_*
  (cd "$(dirname "$found")/../../../../.." && pwd)
}

configure_cli() {
  local mirror
  mirror="$(find_mirror)"
  if [ -z "$mirror" ]; then
    echo "tf.sh: no local AWS provider mirror found; using the registry" >&2
    return
  fi
  cat >"$work/terraform.tfrc" <<CFG
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/hashicorp/aws"]
  }
  direct {
    exclude = ["registry.terraform.io/hashicorp/aws"]
  }
}
CFG
  export TF_CLI_CONFIG_FILE="$work/terraform.tfrc"
}

cmd_check() {
  configure_cli
  export TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1
  echo "== terraform fmt -check -recursive"
  terraform -chdir="$tf_root" fmt -check -recursive -diff
  for env in $(env_names aws); do
    echo "== validate envs/aws/$env"
    cp -r "$tf_root" "$work/validate-$env"
    rm -rf "$work/validate-$env/envs/aws/$env/.terraform" "$work/validate-$env/envs/aws/$env/.terraform.lock.hcl"
    terraform -chdir="$work/validate-$env/envs/aws/$env" init -backend=false -input=false -no-color >/dev/null
    terraform -chdir="$work/validate-$env/envs/aws/$env" validate -no-color
  done
  echo "== checkov"
  "${CHECKOV:-checkov}" --directory "$tf_root" --config-file "$tf_root/.checkov.yaml"
}

cmd_plan() {
  local cloud="${1:-}" env="${2:-}" dir
  case "$cloud" in aws | gcp) ;; *) die "CLOUD must be aws or gcp (got '${cloud}')" ;; esac
  if [ -z "$env" ] || [ "$env" = root ] || [ ! -f "$tf_root/envs/$cloud/$env/backend.tf" ]; then
    die "ENV must be an env folder of envs/$cloud: $(env_names "$cloud" | tr '\n' ' ')(got '${env}')"
  fi
  configure_cli
  if [ -n "${TF_STATE_BUCKET:-}" ]; then
    dir="$tf_root/envs/$cloud/$env"
    local backend=(-backend-config="bucket=$TF_STATE_BUCKET")
    if [ "$cloud" = aws ]; then
      backend+=(-backend-config="region=${AWS_REGION:-${AWS_DEFAULT_REGION:-eu-west-1}}")
    fi
    terraform -chdir="$dir" init -input=false "${backend[@]}"
  else
    echo "tf.sh: TF_STATE_BUCKET is not set: planning a temporary copy against an empty local state" >&2
    cp -r "$tf_root" "$work/plan"
    dir="$work/plan/envs/$cloud/$env"
    rm -rf "$dir/.terraform" "$dir/.terraform.lock.hcl"
    printf 'terraform {\n  backend "local" {}\n}\n' >"$dir/override.tf"
    terraform -chdir="$dir" init -input=false
  fi
  terraform -chdir="$dir" plan -input=false
}

case "${1:-}" in
  check) cmd_check ;;
  plan) shift; cmd_plan "$@" ;;
  *) die "usage: $0 check | plan CLOUD ENV" ;;
esac
