"""Invariants of the GCP environments, read from the HCL (no google provider can be had here)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.terraform import tftools

GCP_MODULES = tftools.TERRAFORM_DIR / "modules" / "gcp"
GCP_ENVS = tftools.TERRAFORM_DIR / "envs" / "gcp"
PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")


def module(name: str) -> dict[str, list[Any]]:
    return tftools.load_hcl_dir(GCP_MODULES / name)


def resources(name: str, rtype: str) -> list[tuple[str, dict[str, Any]]]:
    return [(n, body) for t, n, body in tftools.hcl_resources(module(name)) if t == rtype]


def module_calls(name: str) -> dict[str, dict[str, Any]]:
    return {n: body for block in module(name).get("module", []) for n, body in block.items()}


def tfvars(env_name: str) -> dict[str, Any]:
    return tftools.load_hcl(GCP_ENVS / env_name / "terraform.tfvars")


def all_gcp_text() -> str:
    return "\n".join(p.read_text() for p in sorted(tftools.TERRAFORM_DIR.glob("**/*.tf*")) if "gcp" in p.parts)


@pytest.mark.parametrize("env_name", tftools.ENVS)
def test_every_function_has_a_gcp_function_with_its_trigger(env_name: str) -> None:
    functions = tfvars(env_name)["functions"]
    platform = module_calls("platform")
    assert platform["function"]["for_each"] == "${var.functions}"
    ((fn_name, fn),) = resources("function", "google_cloudfunctions2_function")
    dynamic_blocks = {k for d in fn.get("dynamic", []) for k in d}
    ((_, scheduler),) = resources("function", "google_cloud_scheduler_job")
    fn_locals = tftools.load_hcl(GCP_MODULES / "function" / "main.tf")["locals"][0]

    for name in sorted(tftools.function_names()):
        assert name in functions, f"functions/{name} is missing from envs/gcp/{env_name}/terraform.tfvars"
        trigger = functions[name]["trigger"]
        if trigger == "object":
            # Eventarc GCS finalize trigger on the uploads bucket
            trigger_block = next(d["event_trigger"] for d in fn["dynamic"] if "event_trigger" in d)
            assert "local.is_object" in trigger_block["for_each"]
            assert fn_locals["is_object"] == '${var.trigger == "object"}'
            content = trigger_block["content"][0]
            assert content["event_type"] == "google.cloud.storage.object.v1.finalized"
            assert content["event_filters"][0]["attribute"] == "bucket"
            # and deletions through a second Eventarc trigger to the same service
            ((_, deleted),) = resources("function", "google_eventarc_trigger")
            assert "local.is_object" in deleted["count"]
            criteria = {c["attribute"]: c["value"] for c in deleted["matching_criteria"]}
            assert criteria == {"type": "google.cloud.storage.object.v1.deleted", "bucket": "${var.bucket_name}"}
            service = deleted["destination"][0]["cloud_run_service"][0]["service"]
            assert service == "${google_cloudfunctions2_function.this.name}"
        elif trigger == "queue":
            # a Pub/Sub push subscription to the function's URL
            queue = platform["queue"]
            assert "queue" in queue["for_each"] or queue["for_each"] == "${local.queue_functions}"
            assert "module.function[each.key].function_uri" in queue["push_endpoint"]
        elif trigger == "schedule":
            assert "local.is_schedule" in scheduler["count"]
            assert fn_locals["is_schedule"] == '${var.trigger == "schedule"}'
            assert "uri" in scheduler["http_target"][0]["oidc_token"][0]["audience"]
            assert functions[name].get("schedule")
        else:
            assert trigger == "http", f"{name}: unknown trigger {trigger}"
    assert "event_trigger" in dynamic_blocks
    assert fn_name == "this"


def test_every_subscription_has_a_dead_letter_and_ack_deadline_covers_the_timeout() -> None:
    subscriptions = resources("queue", "google_pubsub_subscription")
    assert {n for n, _ in subscriptions} == {"this", "dead_letter"}
    for name, body in subscriptions:
        if name == "dead_letter":
            continue  # the dead-letter topic's own subscription, kept for inspection and replay
        assert body["dead_letter_policy"][0]["dead_letter_topic"] == "${google_pubsub_topic.dead_letter.id}"
        assert body["retry_policy"][0]["minimum_backoff"]
    calls = module_calls("platform")
    assert calls["queue"]["ack_deadline_seconds"] == "${max(10, each.value.timeout_s)}"
    assert "detect_queue" in calls
    # the Pub/Sub service agent may forward to the dead-letter topic
    assert {n for n, _ in resources("queue", "google_pubsub_topic_iam_member")} >= {"dead_letter_publisher"}


def test_no_public_members_and_no_public_ingress() -> None:
    for path in sorted(tftools.TERRAFORM_DIR.glob("**/*.tf*")):
        if "gcp" not in path.parts:
            continue
        for line in path.read_text().splitlines():
            if "allUsers" in line or "allAuthenticatedUsers" in line:
                # only in validations that forbid them
                assert 'contains(["allUsers", "allAuthenticatedUsers"]' in line or "are not allowed" in line, (
                    f"{path}: {line}"
                )
    ((_, fn),) = resources("function", "google_cloudfunctions2_function")
    assert fn["service_config"][0]["ingress_settings"] == "${var.ingress_settings}"
    ingress_validation = json.dumps(tftools.load_hcl(GCP_MODULES / "function" / "variables.tf"))
    assert "ALLOW_ALL is not offered" in ingress_validation
    ((_, gpu),) = resources("gpu_service", "google_cloud_run_v2_service")
    assert gpu["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY"
    for _, rule in resources("network", "google_compute_firewall"):
        assert "allow" not in rule, "no firewall rule may allow ingress"
        assert rule["direction"] == "INGRESS" and rule["deny"]
    for _, bucket in resources("bucket", "google_storage_bucket"):
        assert bucket["uniform_bucket_level_access"] is True
        assert bucket["public_access_prevention"] == "enforced"
    roles = re.findall(r'role\s*=\s*"([^"]+)"', all_gcp_text())
    assert not {"roles/owner", "roles/editor", "roles/viewer"} & set(roles)
    project_roles = [body["role"] for _, body in resources("platform", "google_project_iam_member")]
    # project-wide: Eventarc's documented pair, read-only metrics (Pub/Sub backlogs) and writing the
    # functions' own metrics (Cloud Monitoring grants metric writes per project only)
    assert set(project_roles) <= {
        "roles/pubsub.publisher",
        "roles/eventarc.eventReceiver",
        "roles/monitoring.viewer",
        "roles/monitoring.metricWriter",
    }
    # ... and the IAM database login, conditioned on the one instance
    ((_, login),) = resources("database", "google_project_iam_member")
    assert login["role"] == "roles/cloudsql.instanceUser"
    assert (
        "resource.name == 'projects/${var.project_id}/instances/${google_sql_database_instance.this.name}'"
        in (login["condition"][0]["expression"])
    )


def test_database_is_private_with_tls_and_backups_and_cache_has_auth_and_tls() -> None:
    ((_, sql),) = resources("database", "google_sql_database_instance")
    settings = sql["settings"][0]
    ip = settings["ip_configuration"][0]
    assert ip["ipv4_enabled"] is False
    assert ip["ssl_mode"] == "ENCRYPTED_ONLY"
    # server certificates the clients can verify by the address they connect to
    assert ip["server_ca_mode"] == "GOOGLE_MANAGED_CAS_CA"
    assert settings["backup_configuration"][0]["enabled"] is True
    ((_, redis),) = resources("cache", "google_redis_instance")
    assert redis["auth_enabled"] is True
    assert redis["transit_encryption_mode"] == "SERVER_AUTHENTICATION"
    assert redis["connect_mode"] == "PRIVATE_SERVICE_ACCESS"


def test_every_function_has_its_own_service_account() -> None:
    accounts = {n: b for n, b in resources("function", "google_service_account")}
    assert accounts["this"]["account_id"] == "${var.name}"
    ((_, fn),) = resources("function", "google_cloudfunctions2_function")
    assert fn["service_config"][0]["service_account_email"] == "${google_service_account.this.email}"


# ---------------------------------------------------------------------------------------------
# The GPU cap: follow one tfvars value through env -> platform -> gpu_service by resolving
# `var.` references across module boundaries.


def _resolve(expr: Any, variables: dict[str, Any]) -> Any:
    match = re.fullmatch(r"\$\{var\.([a-z_]+)((?:\.[a-z_]+)*)\}", expr) if isinstance(expr, str) else None
    if not match:
        return expr
    if match.group(1) not in variables:
        return None  # a variable left at its default: not on the path under test
    value = variables[match.group(1)]
    for attribute in filter(None, match.group(2).split(".")):
        if attribute not in value:
            return None  # an optional attribute left at its default
        value = value[attribute]
    return value


def _gpu_settings(env_vars: dict[str, Any]) -> dict[str, Any]:
    env_main = tftools.load_hcl(GCP_ENVS / "dev" / "main.tf")
    (env_call,) = [b["contentfn"] for b in env_main["module"]]
    platform_vars = {k: _resolve(v, env_vars) for k, v in env_call.items() if k != "source"}
    gpu_call = module_calls("platform")["gpu_service"]
    gpu_vars = {k: _resolve(v, platform_vars) for k, v in gpu_call.items() if k != "source"}
    ((_, service),) = resources("gpu_service", "google_cloud_run_v2_service")
    template = service["template"][0]
    cap_env = tftools.load_hcl(GCP_MODULES / "gpu_service" / "main.tf")["locals"][0]["cap_environment"]
    return {
        "max_instance_count": _resolve(template["scaling"][0]["max_instance_count"], gpu_vars),
        "concurrency": _resolve(template["max_instance_request_concurrency"], gpu_vars),
        "env": {
            k: _resolve(v.replace("${tostring(", "${").replace(")}", "}"), gpu_vars)
            for k, v in cap_env.items()
            if k != "CONTENTFN_GPU_QUEUE"
        },
    }


def test_changing_the_gpu_cap_in_tfvars_changes_max_instances_and_worker_limits(tmp_path: Path) -> None:
    source = (GCP_ENVS / "dev" / "terraform.tfvars").read_text()
    edited = source.replace("  max_instances = 1\n", "  max_instances = 3\n", 1).replace(
        "  max_in_flight = 2\n", "  max_in_flight = 4\n", 1
    )
    assert edited != source
    (tmp_path / "terraform.tfvars").write_text(edited)
    before = _gpu_settings(tfvars("dev"))
    after = _gpu_settings(tftools.load_hcl(tmp_path / "terraform.tfvars"))
    assert before["max_instance_count"] == 1 and after["max_instance_count"] == 3
    assert before["env"]["CONTENTFN_GPU_MAX_INSTANCES"] == 1 and after["env"]["CONTENTFN_GPU_MAX_INSTANCES"] == 3
    assert before["env"]["CONTENTFN_GPU_MAX_IN_FLIGHT"] == 2 and after["env"]["CONTENTFN_GPU_MAX_IN_FLIGHT"] == 4
    assert after["concurrency"] == 4


@pytest.mark.parametrize("env_name", tftools.ENVS)
def test_dev_caps_gpus_at_one_and_prod_is_highly_available(env_name: str) -> None:
    values = tfvars(env_name)
    if env_name == "dev":
        assert values["gpu"]["max_instances"] <= 1
    else:
        assert values["database"]["availability_type"] == "REGIONAL"
        assert values["database"]["deletion_protection"] is True
        assert values["cache"]["tier"] == "STANDARD_HA"


def test_backlog_subscriptions_match_the_queues_and_their_readers_may_read_metrics() -> None:
    # The paths producers read backlogs from are built from names (no module cycle); they must be
    # the names the queue module gives its subscriptions.
    ((_, subscription),) = [r for r in resources("queue", "google_pubsub_subscription") if r[0] == "this"]
    assert subscription["name"] == "${var.name}"
    calls = module_calls("platform")
    assert calls["queue"]["name"] == "${local.name}-${each.key}"
    assert calls["detect_queue"]["name"] == "${local.name}-detect"
    platform = (GCP_MODULES / "platform" / "main.tf").read_text()
    assert '"projects/${var.project_id}/subscriptions/${local.name}-${k}"' in platform
    assert 'detect = "projects/${var.project_id}/subscriptions/${local.name}-detect"' in platform
    assert "CONTENTFN_QUEUE_BACKLOGS = jsonencode(" in platform
    # every function given a backlog to read, and the GPU service, may read Cloud Monitoring
    (reader,) = [body for name, body in resources("platform", "google_project_iam_member") if name == "backlog_reader"]
    assert reader["role"] == "roles/monitoring.viewer" and "length(kinds) > 0" in reader["for_each"]
    (gpu_reader,) = [
        body for name, body in resources("gpu_service", "google_project_iam_member") if name == "metrics_reader"
    ]
    assert gpu_reader["role"] == "roles/monitoring.viewer"


def test_the_device_process_switch_reaches_the_worker() -> None:
    # The gpu block's device_process goes env -> platform -> gpu_service (each type declares it) ...
    for env_name in tftools.ENVS:
        assert "device_process" in (GCP_ENVS / env_name / "variables.tf").read_text()
    assert "device_process" in (GCP_MODULES / "platform" / "variables.tf").read_text()
    assert module_calls("platform")["gpu_service"]["device_process"] == "${var.gpu.device_process}"
    # more worker settings (CONTENTFN_GPU_DEVICE_CALLS, say) go through gpu.environment
    assert module_calls("platform")["gpu_service"]["environment"] == (
        '${merge(local.common_environment, lookup(local.runtime_database_environment, "gpu", {}), var.gpu.environment)}'
    )
    # ... where it sets the worker's variable (its batch buffers are memfds: no /dev/shm volume)
    local = tftools.load_hcl(GCP_MODULES / "gpu_service" / "main.tf")["locals"][0]
    assert 'var.device_process ? {CONTENTFN_GPU_DEVICE_PROCESS = "true"} : {}' in local["environment"]
    # ... which also tells it to read the uploaded images from Cloud Storage
    assert '{CONTENTFN_BLOB_BACKEND = "gcs"}' in local["environment"]
    ((_, service),) = resources("gpu_service", "google_cloud_run_v2_service")
    assert "volumes" not in service["template"][0]


@pytest.mark.parametrize("env_name", tftools.ENVS)
def test_the_gpu_pull_worker_keeps_an_instance_up_and_functions_get_the_cpu_concurrency_needs(env_name: str) -> None:
    values = tfvars(env_name)
    # Cloud Run starts instances for requests; the GPU worker pulls its queue and gets none, so one
    # instance stays up whenever the service exists (the variable refuses less)
    if values["gpu"]["max_instances"] > 0:
        assert values["gpu"]["min_instances"] >= 1
    platform_gpu = next(v["gpu"] for v in module("platform")["variable"] if "gpu" in v)
    assert any("var.gpu.min_instances >= 1" in str(rule["condition"]) for rule in platform_gpu["validation"])
    # Cloud Run refuses concurrency > 1 below one vCPU (what it derives from up to 2 GiB): the
    # function module asks for one vCPU per 4 GiB when a function takes more than one request
    local = module("function")["locals"][0]
    assert local["available_cpu"] == "${var.concurrency > 1 ? tostring(max(1, ceil(var.memory_mb / 4096))) : null}"
    ((_, function),) = resources("function", "google_cloudfunctions2_function")
    assert function["service_config"][0]["available_cpu"] == "${local.available_cpu}"
    assert any(f.get("concurrency", 1) > 1 for f in values["functions"].values())


def test_functions_and_the_gpu_worker_verify_memorystore_with_its_ca() -> None:
    common = module("platform")["locals"][0]["common_environment"]
    # every process verifies Memorystore's TLS certificate against the instance's own CA
    assert common["CONTENTFN_REDIS_CA_CERT"] == "${module.cache.server_ca_cert}"
    cache_outputs = {k for o in module("cache")["output"] for k in o}
    assert "server_ca_cert" in cache_outputs
    assert module_calls("platform")["gpu_service"]["environment"].startswith("${merge(local.common_environment, ")


def test_the_gpu_worker_relays_deferred_jobs_that_fell_due_to_its_topic() -> None:
    local = module("gpu_service")["locals"][0]
    assert "{CONTENTFN_QUEUES = jsonencode({detect = var.topic_id})}" in local["environment"]
    ((_, member),) = resources("gpu_service", "google_pubsub_topic_iam_member")
    assert member["topic"] == "${var.topic_id}" and member["role"] == "roles/pubsub.publisher"
    assert module_calls("platform")["gpu_service"]["topic_id"] == "${module.detect_queue.pubsub_topic_id}"


def test_the_trace_exporter_endpoint_and_sampling_reach_every_process() -> None:
    # Every env declares the tracing variable and hands it to the platform module ...
    for env_name in tftools.ENVS:
        assert 'variable "tracing"' in (GCP_ENVS / env_name / "variables.tf").read_text()
    env_main = tftools.load_hcl(GCP_ENVS / "root" / "main.tf")
    platform_call = next(body for block in env_main["module"] for name, body in block.items() if name == "contentfn")
    assert platform_call["tracing"] == "${var.tracing}"
    # ... whose common environment (every function and the GPU worker get it) carries both settings
    common = module("platform")["locals"][0]["common_environment"]
    assert common["CONTENTFN_OTEL_EXPORTER_ENDPOINT"] == "${var.tracing.otlp_endpoint}"
    assert common["CONTENTFN_OTEL_SAMPLE_RATIO"] == "${tostring(var.tracing.sample_ratio)}"
    assert module_calls("platform")["gpu_service"]["environment"] == (
        '${merge(local.common_environment, lookup(local.runtime_database_environment, "gpu", {}), var.gpu.environment)}'
    )
    tracing = next(v["tracing"] for v in module("platform")["variable"] if "tracing" in v)
    assert len(tracing["validation"]) == 2  # the ratio in [0, 1]; the endpoint empty or http(s)


def _platform_locals() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in module("platform")["locals"]:
        merged.update(block)
    return merged


def _variable(module_dir: Path, name: str) -> dict[str, Any]:
    return next(v[name] for v in tftools.load_hcl_dir(module_dir)["variable"] if name in v)


def test_the_upload_prefix_default_is_the_settings_in_every_module_and_env() -> None:
    from shared.config import Settings

    default = Settings.model_fields["upload_prefix"].default
    for directory in (
        GCP_MODULES / "platform",
        tftools.TERRAFORM_DIR / "modules" / "aws" / "platform",
        GCP_ENVS / "root",
        tftools.TERRAFORM_DIR / "envs" / "aws" / "root",
    ):
        assert _variable(directory, "signed_upload_prefix")["default"] == default, directory
    for cloud in ("aws", "gcp"):
        root = tftools.load_hcl(tftools.TERRAFORM_DIR / "envs" / cloud / "root" / "main.tf")
        call = next(body for block in root["module"] for name, body in block.items() if name == "contentfn")
        assert call["signed_upload_prefix"] == "${var.signed_upload_prefix}", cloud


def test_the_apis_upload_prefix_setting_and_its_object_creator_condition_are_one_value() -> None:
    local = _platform_locals()
    # GIVEN the functions that write the bucket: they are told the prefix as CONTENTFN_UPLOAD_PREFIX
    assert local["upload_environment"] == {"CONTENTFN_UPLOAD_PREFIX": "${var.signed_upload_prefix}"}
    env = module_calls("platform")["function"]["environment"]
    assert 'each.value.bucket_access == "read_write" ? local.upload_environment : {}' in env
    # AND their objectCreator grant holds for object names under that same prefix only
    write = dict(resources("platform", "google_storage_bucket_iam_member"))["function_write"]
    assert write["role"] == "roles/storage.objectCreator"
    assert 'f.bucket_access == "read_write"' in write["for_each"]
    expression = write["condition"][0]["expression"]
    rendered = expression.replace("${local.upload_objects}", local["upload_objects"]).replace(
        "${local.uploads_bucket_name}", "contentfn-dev-uploads-contentfn-dev"
    )
    env_prefix = local["upload_environment"]["CONTENTFN_UPLOAD_PREFIX"]
    assert (
        rendered
        == f'resource.name.startsWith("projects/_/buckets/contentfn-dev-uploads-contentfn-dev/objects/{env_prefix}")'
    )
    assert module_calls("platform")["uploads"]["name"] == "${local.uploads_bucket_name}"
    # AND ingest hears every object of the bucket: its Eventarc triggers filter on the bucket alone
    ((_, fn),) = resources("function", "google_cloudfunctions2_function")
    trigger = next(d["event_trigger"] for d in fn["dynamic"] if "event_trigger" in d)["content"][0]
    assert [f["attribute"] for f in trigger["event_filters"]] == ["bucket"]
    ((_, deleted),) = resources("function", "google_eventarc_trigger")
    assert {c["attribute"] for c in deleted["matching_criteria"]} == {"type", "bucket"}


def test_the_api_signs_urls_as_itself_reads_the_bucket_and_the_gpu_worker_reads_images_only() -> None:
    members = dict(resources("platform", "google_storage_bucket_iam_member"))
    assert members["function_read"]["role"] == "roles/storage.objectViewer"
    assert 'f.bucket_access != "none"' in members["function_read"]["for_each"]
    # V4 signing through signBlob: token creator on its own account, for the writers only
    ((_, signer),) = resources("platform", "google_service_account_iam_member")
    assert signer["role"] == "roles/iam.serviceAccountTokenCreator"
    assert 'f.bucket_access == "read_write"' in signer["for_each"]
    email = "${module.function[each.key].service_account_email}"
    assert signer["member"] == f"serviceAccount:{email}"
    assert signer["service_account_id"] == f"projects/${{var.project_id}}/serviceAccounts/{email}"
    # the GPU worker: object reads under images/ and nothing else
    ((_, gpu),) = resources("gpu_service", "google_storage_bucket_iam_member")
    assert gpu["role"] == "roles/storage.objectViewer"
    assert gpu["condition"][0]["expression"] == (
        'resource.name.startsWith("projects/_/buckets/${var.bucket_name}/objects/${var.images_prefix}")'
    )
    assert module_calls("platform")["gpu_service"]["images_prefix"] == "images/"


def test_the_console_origin_may_put_and_get_signed_urls_and_must_be_named() -> None:
    ((_, bucket),) = [r for r in resources("bucket", "google_storage_bucket") if r[0] == "this"]
    (cors,) = [d["cors"] for d in bucket["dynamic"] if "cors" in d]
    assert "length(var.cors_origins) > 0" in cors["for_each"]
    rule = cors["content"][0]
    assert rule["origin"] == "${var.cors_origins}"
    assert sorted(rule["method"]) == ["GET", "PUT"]
    # the headers the V4 signed PUT carries (shared/blob/gcs.py: write_url)
    assert {"Content-Type", "x-goog-content-length-range"} <= set(rule["response_header"])
    assert module_calls("platform")["uploads"]["cors_origins"] == "${var.console_origins}"
    # Terraform cannot know the load balancer's origin: the variable is required, and each env says it
    for directory in (GCP_MODULES / "platform", GCP_ENVS / "root"):
        assert "default" not in _variable(directory, "console_origins"), directory
    for env_name in tftools.ENVS:
        assert isinstance(tfvars(env_name)["console_origins"], list)


def test_each_process_logs_in_as_its_own_iam_user_verifying_the_server_and_no_process_gets_the_master_url() -> None:
    # GIVEN the database module: one IAM database user per process's service account, IAM logins on
    ((_, user),) = resources("database", "google_sql_user")
    assert user["for_each"] == "${var.iam_service_accounts}"
    assert user["type"] == "CLOUD_IAM_SERVICE_ACCOUNT"
    assert user["name"] == '${trimsuffix(each.value, ".gserviceaccount.com")}'
    flags = tftools.load_hcl(GCP_MODULES / "database" / "main.tf")["locals"][0]["database_flags"]
    assert flags["cloudsql.iam_authentication"] == "on"
    # for every function that uses the database, and the GPU worker
    call = module_calls("platform")["database"]
    accounts = call["iam_service_accounts"]
    assert "k => module.function[k].service_account_email" in accounts and "local.database_functions" in accounts
    assert "gpu = module.gpu_service[0].service_account_email" in accounts
    local = _platform_locals()
    assert 'contains(f.secrets, "database-url")' in local["database_functions"]
    # THEN each process is given its own login, verify-full against the instance's CA, and never migrates
    env = local["runtime_database_environment"]
    assert "for k in local.database_processes" in env
    assert "${urlencode(module.database.iam_logins[k])}@" in env
    assert "sslmode=verify-full" in env
    assert "CONTENTFN_DATABASE_IAM_AUTH = " in env and '"true"' in env
    assert "CONTENTFN_DATABASE_CA_CERT = module.database.server_ca_cert" in env
    assert 'CONTENTFN_MIGRATE_ON_START = "false"' in env
    outputs = {k: v for o in module("database")["output"] for k, v in o.items()}
    assert outputs["server_ca_cert"]["value"] == "${google_sql_database_instance.this.server_ca_cert[0].cert}"
    assert (
        "lookup(local.runtime_database_environment, each.key, {})"
        in module_calls("platform")["function"]["environment"]
    )
    # AND the master login's secret reaches no function and not the worker
    assert 'if s != "database-url"' in module_calls("platform")["function"]["secrets"]
    assert set(module_calls("platform")["gpu_service"]["secrets"]) == {"CONTENTFN_REDIS_URL"}
    # AND the migrator is told how to map the logins to the runtime roles
    command = {k: v for o in module("platform")["output"] for k, v in o.items()}["database_roles_command"]["value"]
    assert "contentfn db roles" in command and "--member ${k}=${module.database.iam_logins[k]}" in command
    # (the roles the code maps them to: every process above has one)
    from shared.store.roles import FUNCTIONS

    for env_name in tftools.ENVS:
        for name, fn in tfvars(env_name)["functions"].items():
            if "database-url" in fn.get("secrets", ["database-url"]):
                assert name in FUNCTIONS, name
    assert "gpu" in FUNCTIONS
