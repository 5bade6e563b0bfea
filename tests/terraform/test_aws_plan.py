"""Invariants of the AWS environments, read from `terraform show -json` of their plans.

Plans run against a moto server (data sources resolve, nothing is applied) with every create_*
toggle on, so the GPU service, database, cache and HTTP API are all in the plan.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.terraform import tftools
from tests.terraform.conftest import prepare_aws_env

pytestmark = pytest.mark.slow

PlanFn = Callable[..., dict[str, Any]]

# Actions that have no resource-level permissions: "*" is the only valid resource for them.
ONLY_STAR_RESOURCE = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "cloudwatch:PutMetricData"}
READ_ONLY_PREFIXES = ("Get", "List", "Describe", "Discover")
# AWS managed policies attached anywhere (by ARN, so not visible in the plan's documents).
ALLOWED_MANAGED_POLICIES = {"service-role/AmazonRDSEnhancedMonitoringRole"}


def by_type(resources: list[dict[str, Any]], rtype: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["type"] == rtype]


def function_key(address: str) -> str | None:
    match = re.search(r'module\.(?:function|queue|http_api)\["([^"]+)"\]', address)
    return match.group(1) if match else None


def configured(resource: dict[str, Any], attribute: str) -> bool:
    """Set in the configuration: known in the plan, or unknown until apply."""
    return resource["values"].get(attribute) not in (None, "", []) or bool(resource["after_unknown"].get(attribute))


@pytest.fixture(scope="module", params=tftools.ENVS)
def plan(request: pytest.FixtureRequest, aws_plan: PlanFn) -> dict[str, Any]:
    return aws_plan(request.param)


@pytest.fixture(scope="module")
def resources(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return tftools.plan_resources(plan)


def test_every_function_folder_has_a_lambda_with_its_event_source(resources: list[dict[str, Any]]) -> None:
    lambdas = {function_key(r["address"]): r for r in by_type(resources, "aws_lambda_function")}
    mappings = {function_key(r["address"]): r for r in by_type(resources, "aws_lambda_event_source_mapping")}
    schedules = {function_key(r["address"]): r for r in by_type(resources, "aws_scheduler_schedule")}
    routes = [r for r in by_type(resources, "aws_apigatewayv2_route")]
    # S3 → SQS → Lambda: the bucket notifies the object function's queue; nothing invokes it directly
    queue_notifications = [
        cfg for r in by_type(resources, "aws_s3_bucket_notification") for cfg in r["values"].get("queue", [])
    ]
    notifications = [cfg["id"] for cfg in queue_notifications]
    # AND the queue hears removals as well as uploads: a deleted object takes away what it alone fed
    assert queue_notifications
    for cfg in queue_notifications:
        assert set(cfg["events"]) == {"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}, cfg["id"]
    assert not [
        cfg
        for r in by_type(resources, "aws_s3_bucket_notification")
        for cfg in r["values"].get("lambda_function") or []
    ]
    assert not [
        r for r in by_type(resources, "aws_lambda_permission") if r["values"]["principal"] == "s3.amazonaws.com"
    ]

    for name in sorted(tftools.function_names()):
        # GIVEN a folder under functions/ WHEN the env is planned THEN it has a Lambda with its trigger
        assert name in lambdas, f"functions/{name} has no Lambda in the plan"
        fn = lambdas[name]["values"]
        assert fn["package_type"] == "Image"
        assert fn["image_config"][0]["command"] == [f"functions.{name}.aws.handler"]
        object_events = f"{name}-object-events" in notifications
        sources = {
            "queue": name in mappings and not object_events,
            "schedule": name in schedules,
            "object": object_events and name in mappings,
            "http": any(function_key(r["address"]) == name for r in routes),
        }
        assert sum(sources.values()) == 1, f"{name}: expected exactly one event source, got {sources}"

    for name, fn in lambdas.items():
        # AND each knows its own timeout, which its idempotency claims last just past
        env = fn["values"]["environment"][0]["variables"]
        assert env["CONTENTFN_FUNCTION_TIMEOUT_S"] == str(fn["values"]["timeout"]), name

    for mapping in mappings.values():
        assert mapping["values"]["function_response_types"] == ["ReportBatchItemFailures"]
        assert mapping["values"]["scaling_config"][0]["maximum_concurrency"] >= 2


def test_every_queue_has_a_dead_letter_queue(resources: list[dict[str, Any]]) -> None:
    queues = by_type(resources, "aws_sqs_queue")
    names = {r["values"]["name"] for r in queues}
    main_queues = [r for r in queues if not r["values"]["name"].endswith("-dlq")]
    assert main_queues
    for queue in main_queues:
        assert f"{queue['values']['name']}-dlq" in names, queue["address"]
        assert configured(queue, "redrive_policy"), f"{queue['address']} has no redrive policy"
    for fn in by_type(resources, "aws_lambda_function"):
        known = fn["values"].get("dead_letter_config") or []
        unknown = fn["after_unknown"].get("dead_letter_config") or []
        assert any(isinstance(d, dict) and d.get("target_arn") for d in known + unknown), f"{fn['address']}: no DLQ"


def test_queue_visibility_is_at_least_six_times_the_function_timeout(resources: list[dict[str, Any]]) -> None:
    timeouts = {function_key(r["address"]): r["values"]["timeout"] for r in by_type(resources, "aws_lambda_function")}
    checked = 0
    for queue in by_type(resources, "aws_sqs_queue"):
        key = function_key(queue["address"])
        if key is None or queue["values"]["name"].endswith("-dlq"):
            continue
        assert queue["values"]["visibility_timeout_seconds"] >= 6 * timeouts[key], queue["address"]
        checked += 1
    assert checked >= 1


def test_every_lambda_permission_has_a_source_arn(resources: list[dict[str, Any]]) -> None:
    permissions = by_type(resources, "aws_lambda_permission")
    assert permissions
    for permission in permissions:
        assert configured(permission, "source_arn"), permission["address"]
        assert permission["values"]["principal"] != "*"


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def test_iam_has_no_wildcard_action_and_no_wildcard_resource_on_writes(plan: dict[str, Any]) -> None:
    documents = tftools.plan_policy_documents(plan)
    assert len(documents) > 10
    for address, statements in documents:
        key_policy = ".module.kms." in f".{address}"
        for statement in statements:
            if statement.get("effect", "Allow") != "Allow":
                continue
            actions = _as_list(statement.get("actions"))
            assert actions, f"{address}: statement without actions"
            for action in actions:
                assert action != "*" and not action.endswith(":*"), f"{address}: wildcard action {action}"
            principals = [i for p in _as_list(statement.get("principals")) for i in _as_list(p.get("identifiers"))]
            assert "*" not in principals, f"{address}: Allow to every principal"
            # In a key policy "*" names the key itself.
            if "*" in _as_list(statement.get("resources")) and not key_policy:
                writes = [
                    a
                    for a in actions
                    if not a.split(":", 1)[1].startswith(READ_ONLY_PREFIXES) and a not in ONLY_STAR_RESOURCE
                ]
                assert not writes, f"{address}: write actions {writes} on resource *"


def test_only_known_managed_policies_are_attached(resources: list[dict[str, Any]]) -> None:
    for attachment in by_type(resources, "aws_iam_role_policy_attachment"):
        arn = attachment["values"]["policy_arn"]
        assert arn.split(":policy/", 1)[1] in ALLOWED_MANAGED_POLICIES, arn
    assert not by_type(resources, "aws_iam_policy_attachment")


def test_nothing_admits_public_ingress(resources: list[dict[str, Any]]) -> None:
    for group in by_type(resources, "aws_security_group"):
        for rule in group["values"].get("ingress") or []:
            assert not set(rule.get("cidr_blocks") or []) & {"0.0.0.0/0"}, group["address"]
            assert not set(rule.get("ipv6_cidr_blocks") or []) & {"::/0"}, group["address"]
    for rule in by_type(resources, "aws_security_group_rule") + by_type(
        resources, "aws_vpc_security_group_ingress_rule"
    ):
        assert rule["values"].get("type", "ingress") != "ingress" or "0.0.0.0/0" not in json.dumps(rule["values"])
    for subnet in by_type(resources, "aws_subnet"):
        assert subnet["values"]["map_public_ip_on_launch"] is False
    for block in by_type(resources, "aws_s3_bucket_public_access_block"):
        values = block["values"]
        assert all(
            values[k]
            for k in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
        )
    assert not by_type(resources, "aws_lambda_function_url")
    routes = by_type(resources, "aws_apigatewayv2_route")
    assert routes
    for route in routes:
        assert route["values"]["authorization_type"] in {"AWS_IAM", "JWT"}, route["address"]
    for service in by_type(resources, "aws_ecs_service"):
        assert service["values"]["network_configuration"][0]["assign_public_ip"] is False


def test_database_and_cache_are_private_and_encrypted(resources: list[dict[str, Any]]) -> None:
    (db,) = by_type(resources, "aws_db_instance")
    assert db["values"]["publicly_accessible"] is False
    assert db["values"]["storage_encrypted"] is True
    assert db["values"]["backup_retention_period"] >= 1
    (cache,) = by_type(resources, "aws_elasticache_replication_group")
    assert cache["values"]["transit_encryption_enabled"] is True
    assert str(cache["values"]["at_rest_encryption_enabled"]).lower() == "true"


def test_prod_runs_the_data_stores_highly_available(aws_plan: PlanFn) -> None:
    resources = tftools.plan_resources(aws_plan("prod"))
    (db,) = by_type(resources, "aws_db_instance")
    assert db["values"]["multi_az"] is True
    assert db["values"]["deletion_protection"] is True
    (cache,) = by_type(resources, "aws_elasticache_replication_group")
    assert cache["values"]["num_cache_clusters"] >= 2
    assert cache["values"]["automatic_failover_enabled"] is True


def _gpu_view(plan: dict[str, Any]) -> dict[str, Any]:
    resources = tftools.plan_resources(plan)
    (asg,) = by_type(resources, "aws_autoscaling_group")
    (target,) = by_type(resources, "aws_appautoscaling_target")
    (service,) = by_type(resources, "aws_ecs_service")
    (provider,) = by_type(resources, "aws_ecs_capacity_provider")
    # The container definition embeds secret ARNs (unknown until apply); the worker's plain
    # environment, caps included, is the same value exported as an output.
    env = plan["planned_values"]["outputs"]["ecs_task_environment"]["value"]
    (ingest,) = [r for r in by_type(resources, "aws_lambda_function") if function_key(r["address"]) == "ingest"]
    return {
        "asg_max": asg["values"]["max_size"],
        "scaling_max": target["values"]["max_capacity"],
        "desired": service["values"]["desired_count"],
        "deploy_max_percent": service["values"]["deployment_maximum_percent"],
        "step_max": provider["values"]["auto_scaling_group_provider"][0]["managed_scaling"][0][
            "maximum_scaling_step_size"
        ],
        "env": env,
        "producer_env": ingest["values"]["environment"][0]["variables"],
    }


def test_gpu_service_is_capped_in_every_env(plan: dict[str, Any]) -> None:
    view = _gpu_view(plan)
    cap = int(view["env"]["CONTENTFN_GPU_MAX_INSTANCES"])
    assert view["asg_max"] == view["scaling_max"] == cap
    assert view["desired"] <= cap
    assert view["step_max"] <= cap
    assert view["deploy_max_percent"] <= 100
    assert view["producer_env"]["CONTENTFN_GPU_MAX_INSTANCES"] == str(cap)
    # the worker reads the uploaded images from S3, where the functions put them
    assert view["env"]["CONTENTFN_BLOB_BACKEND"] == "s3"


def _statements(plan: dict[str, Any], address_part: str) -> dict[str, dict[str, Any]]:
    """The statements of the policy documents whose address contains ``address_part``, by sid."""
    return {
        st["sid"]: st
        for address, statements in tftools.plan_policy_documents(plan)
        if address_part in address
        for st in statements
        if st.get("sid")
    }


def test_gpu_workers_can_launch_dead_letter_read_images_and_open_streams(plan: dict[str, Any]) -> None:
    resources = tftools.plan_resources(plan)
    # Auto Scaling launches the instances: their root volume is encrypted with the AWS-managed EBS
    # key, which its service-linked role may use (the project key's policy does not name it)
    (template,) = by_type(resources, "aws_launch_template")
    ebs = template["values"]["block_device_mappings"][0]["ebs"][0]
    assert ebs["encrypted"] == "true" and not ebs.get("kms_key_id")
    # the task role copies poison jobs to the detection queue's dead-letter queue, lists the bucket
    # (a deleted image is then a 404, not a 403) and reads the images
    task = _statements(plan, "module.gpu_service[0].data.aws_iam_policy_document.task")
    assert set(task["DeadLetterDetectionJobs"]["actions"]) == {"sqs:SendMessage", "sqs:GetQueueAttributes"}
    # ... and relays deferred jobs that fell due from Postgres to its own queue (CONTENTFN_QUEUES)
    assert task["RelayDueDetectionJobs"]["actions"] == ["sqs:SendMessage"]
    gpu_locals = tftools.load_hcl(tftools.TERRAFORM_DIR / "modules" / "aws" / "gpu_service" / "main.tf")["locals"][0]
    assert "{CONTENTFN_QUEUES = jsonencode({detect = var.queue_url})}" in gpu_locals["environment"]
    assert task["ListImages"]["actions"] == ["s3:ListBucket"]
    assert "s3:GetObject" in task["ReadImages"]["actions"]
    # the region is in the container's environment (instance metadata is blocked for tasks)
    env = plan["planned_values"]["outputs"]["ecs_task_environment"]["value"]
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    # streams: TCP egress on the rtsp, rtsps and http ports, besides 443, to anywhere
    (gpu_sg,) = [r for r in by_type(resources, "aws_security_group") if r["values"]["name"].endswith("-gpu")]
    ports = {e["from_port"] for e in gpu_sg["values"]["egress"] if e["cidr_blocks"] == ["0.0.0.0/0"]}
    assert ports == {443, 80, 322, 554, 8554}


def test_functions_reach_https_and_http_sources_and_nothing_else_outside_the_vpc(plan: dict[str, Any]) -> None:
    resources = tftools.plan_resources(plan)
    (sg,) = [r for r in by_type(resources, "aws_security_group") if r["values"]["name"].endswith("-functions")]
    assert {e["from_port"] for e in sg["values"]["egress"] if e["cidr_blocks"] == ["0.0.0.0/0"]} == {80, 443}


def test_functions_that_read_the_bucket_may_list_it(plan: dict[str, Any]) -> None:
    ingest = _statements(plan, 'module.function["ingest"].data.aws_iam_policy_document.this')
    assert ingest["ListUploads"]["actions"] == ["s3:ListBucket"]
    embed = _statements(plan, 'module.function["embed"].data.aws_iam_policy_document.this')
    assert "ListUploads" not in embed and "ReadUploads" not in embed


def test_processes_log_in_as_their_own_runtime_role_over_verified_tls_and_never_with_the_master_secret(
    plan: dict[str, Any],
) -> None:
    # GIVEN the database created here (RDS keeps its master password and rotates it every 7 days)
    resources = tftools.plan_resources(plan)
    (db,) = by_type(resources, "aws_db_instance")
    assert db["values"]["manage_master_user_password"] is True
    region = plan["variables"]["region"]["value"]
    instance_arn = f"arn:aws:rds:{region}:123456789012:db:{db['values']['identifier']}"
    # one empty login secret per process that uses the database, named after its runtime role
    logins = {
        r["values"]["name"].rsplit("/", 1)[1]: r
        for r in by_type(resources, "aws_secretsmanager_secret")
        if "/db/" in r["values"]["name"]
    }
    lambdas = {function_key(r["address"]): r for r in by_type(resources, "aws_lambda_function")}
    assert set(logins) == {*lambdas, "gpu"}
    assert not [r for r in by_type(resources, "aws_secretsmanager_secret_version") if "/db/" in r["address"]]

    def logs_in_as_itself(statements: dict[str, dict[str, Any]], env: dict[str, str], name: str) -> None:
        assert statements["DescribeDatabase"]["actions"] == ["rds:DescribeDBInstances"]
        assert statements["DescribeDatabase"]["resources"] == [instance_arn]
        # only its own login secret; the RDS-managed master secret is the migrator's
        assert "ReadDatabaseCredentials" not in statements, name
        assert statements["ReadOwnDatabaseLogin"]["actions"] == ["secretsmanager:GetSecretValue"], name
        assert not any("rds!db" in (r or "") for st in statements.values() for r in st.get("resources") or []), name
        assert env["CONTENTFN_DATABASE_RDS_INSTANCE"] == instance_arn, name
        assert env["CONTENTFN_DATABASE_SSL_ROOT_CERT"].endswith("rds-global-bundle.pem"), name
        assert env["CONTENTFN_MIGRATE_ON_START"] == "false", name
        assert "CONTENTFN_DATABASE_URL_SECRET_ID" not in env, name

    for name, fn in lambdas.items():
        env = fn["values"]["environment"][0]["variables"]
        assert env["CONTENTFN_DATABASE_CREDENTIALS_SECRET"] == logins[name]["values"]["name"], name
        logs_in_as_itself(_statements(plan, f'module.function["{name}"].data.aws_iam_policy_document.this'), env, name)
    env = plan["planned_values"]["outputs"]["ecs_task_environment"]["value"]
    assert env["CONTENTFN_DATABASE_CREDENTIALS_SECRET"] == logins["gpu"]["values"]["name"]
    logs_in_as_itself(_statements(plan, "module.gpu_service[0].data.aws_iam_policy_document.task"), env, "gpu")
    # the migration step gets the instance, the CA bundle and every login secret, to fill them
    migrator = plan["planned_values"]["outputs"]["migrator_environment"]["value"]
    assert migrator["CONTENTFN_DATABASE_RDS_INSTANCE"] == instance_arn
    assert json.loads(migrator["CONTENTFN_DATABASE_ROLE_SECRETS"]) == {
        k: r["values"]["name"] for k, r in logins.items()
    }


def test_bucket_writes_are_the_apis_under_the_signed_upload_prefix_and_reads_are_where_used(
    plan: dict[str, Any],
) -> None:
    documents = tftools.plan_policy_documents(plan)
    writes = {
        address: st
        for address, statements in documents
        for st in statements
        if any(a.startswith("s3:Put") or a.startswith("s3:Delete") for a in st.get("actions") or [])
        and not st.get("principals")  # identity policies; the access-log bucket's admits S3 logging itself
    }
    # THEN only the API writes objects, only PutObject, only under its upload prefix
    assert len(writes) == 1, sorted(writes)
    ((address, st),) = writes.items()
    assert 'module.function["api"]' in address
    assert st["actions"] == ["s3:PutObject"]
    lambdas = {function_key(r["address"]): r for r in by_type(tftools.plan_resources(plan), "aws_lambda_function")}
    bucket = lambdas["api"]["values"]["environment"][0]["variables"]["CONTENTFN_BUCKET"]
    assert st["resources"] == [f"arn:aws:s3:::{bucket}/incoming/*"]
    task = _statements(plan, "module.gpu_service[0].data.aws_iam_policy_document.task")
    assert task["ReadImages"]["resources"] == [f"arn:aws:s3:::{bucket}/images/*"]
    (prefix,) = task["ListImages"]["condition"]
    assert (prefix["variable"], prefix["values"]) == ("s3:prefix", ["images/*"])
    # functions that never open an object cannot read the bucket
    for name in ("embed", "enrich", "analyze", "scrape", "deadletters"):
        statements = _statements(plan, f'module.function["{name}"].data.aws_iam_policy_document.this')
        assert not {"ReadUploads", "ListUploads", "WriteSignedUploads"} & set(statements), name


def _upload_view(plan: dict[str, Any]) -> dict[str, Any]:
    """The API's upload prefix, its PutObject grant, the bucket's notifications and CORS rule."""
    lambdas = {function_key(r["address"]): r for r in by_type(tftools.plan_resources(plan), "aws_lambda_function")}
    statements = _statements(plan, 'module.function["api"].data.aws_iam_policy_document.this')
    (resource,) = statements["WriteSignedUploads"]["resources"]
    resources = tftools.plan_resources(plan)
    (cors,) = by_type(resources, "aws_s3_bucket_cors_configuration")
    notifications = [cfg for r in by_type(resources, "aws_s3_bucket_notification") for cfg in r["values"]["queue"]]
    return {
        "env": lambdas["api"]["values"]["environment"][0]["variables"],
        "others": {k: fn["values"]["environment"][0]["variables"] for k, fn in lambdas.items() if k != "api"},
        "grant": resource,
        "bucket": lambdas["api"]["values"]["environment"][0]["variables"]["CONTENTFN_BUCKET"],
        "cors": cors,
        "notifications": notifications,
    }


def _assert_one_upload_prefix(view: dict[str, Any], prefix: str) -> None:
    # the API signs keys under CONTENTFN_UPLOAD_PREFIX, and may put objects under exactly that prefix
    assert view["env"]["CONTENTFN_UPLOAD_PREFIX"] == prefix
    assert view["grant"] == f"arn:aws:s3:::{view['bucket']}/{prefix}*"
    assert (
        view["grant"].removeprefix(f"arn:aws:s3:::{view['bucket']}/").removesuffix("*")
        == (view["env"]["CONTENTFN_UPLOAD_PREFIX"])
    )
    # no other function is told a prefix it could not write
    assert not [k for k, env in view["others"].items() if "CONTENTFN_UPLOAD_PREFIX" in env]
    # and ingest hears every object created under it (no notification filters the prefix out)
    assert view["notifications"]
    for cfg in view["notifications"]:
        assert "s3:ObjectCreated:*" in cfg["events"]
        assert prefix.startswith(cfg.get("filter_prefix") or ""), cfg
        assert not cfg.get("filter_suffix"), cfg


def _assert_console_cors(cors: dict[str, Any]) -> None:
    ((rule,),) = [cors["values"]["cors_rule"]]
    assert sorted(rule["allowed_methods"]) == ["GET", "PUT"]
    # Content-Type is the signed header the page sends; nothing else is let through
    assert rule["allowed_headers"] == ["Content-Type"]


def test_the_apis_upload_prefix_is_its_put_object_grant_and_the_console_origin_may_use_the_signed_urls(
    plan: dict[str, Any],
) -> None:
    # GIVEN an env planned with the defaults
    view = _upload_view(plan)
    # THEN the API is told the prefix its grant covers: the setting's default, incoming/
    from shared.config import Settings

    default = Settings.model_fields["upload_prefix"].default
    assert default == "incoming/"
    _assert_one_upload_prefix(view, default)
    # AND the bucket's CORS rule admits the console's signed PUT and GET from the API's own URL,
    # known once the HTTP API exists
    _assert_console_cors(view["cors"])
    assert view["cors"]["after_unknown"]["cors_rule"][0]["allowed_origins"] is True
    platform = (tftools.TERRAFORM_DIR / "modules" / "aws" / "platform" / "main.tf").read_text()
    assert "[for k, api in module.http_api : api.apigatewayv2_api_endpoint]" in platform


def test_a_changed_upload_prefix_moves_the_api_setting_and_its_grant_together_and_origins_can_be_named(
    aws_plan: PlanFn,
) -> None:
    # GIVEN dev's tfvars WHEN they set another upload prefix and the console's own domain
    line = 'log_level          = "DEBUG"\n'
    edit = line + 'signed_upload_prefix = "drop/"\nconsole_origins = ["https://console.example.org"]\n'
    view = _upload_view(aws_plan("dev", tfvars_edits=((line, edit),)))
    # THEN the API's setting and its PutObject grant both follow
    _assert_one_upload_prefix(view, "drop/")
    # AND the bucket admits exactly that origin
    _assert_console_cors(view["cors"])
    assert view["cors"]["values"]["cors_rule"][0]["allowed_origins"] == ["https://console.example.org"]


def test_an_optional_integration_secret_reaches_only_the_function_that_lists_it(aws_plan: PlanFn) -> None:
    # GIVEN dev's tfvars WHEN enrich lists the Spotify client secret beside its own
    before = '    publishes_to = ["analyze"]\n    secrets      = ["database-url", "redis-url"]\n'
    after = (
        '    publishes_to = ["analyze"]\n    secrets      = ["database-url", "redis-url", "spotify-client-secret"]\n'
    )
    assert before in (tftools.TERRAFORM_DIR / "envs" / "aws" / "dev" / "terraform.tfvars").read_text()
    plan = aws_plan(
        "dev",
        tfvars_edits=((before, after),),
        extra=('-target=module.contentfn.module.function["enrich"]', '-target=module.contentfn.module.function["api"]'),
    )
    lambdas = {function_key(r["address"]): r for r in by_type(tftools.plan_resources(plan), "aws_lambda_function")}
    enrich = lambdas["enrich"]["values"]["environment"][0]["variables"]
    # THEN enrich gets it by reference (resolved at cold start), and no other function does
    assert enrich["CONTENTFN_SPOTIFY_CLIENT_SECRET_SECRET_ID"] == "contentfn/dev/spotify-client-secret"
    api = lambdas["api"]["values"]["environment"][0]["variables"]
    assert "CONTENTFN_SPOTIFY_CLIENT_SECRET_SECRET_ID" not in api
    # the LLM key is optional too: listed by no function until an LLM is configured
    assert not any(
        "CONTENTFN_LLM_API_KEY_SECRET_ID" in f["values"]["environment"][0]["variables"] for f in lambdas.values()
    )


def test_changing_the_gpu_cap_in_tfvars_changes_max_count_and_worker_limits(aws_plan: PlanFn) -> None:
    # GIVEN dev's tfvars WHEN only the gpu block's cap and in-flight values change
    targets = ("-target=module.contentfn.module.gpu_service", '-target=module.contentfn.module.function["ingest"]')
    before = _gpu_view(aws_plan("dev"))
    after = _gpu_view(
        aws_plan(
            "dev",
            tfvars_edits=(
                ("  max_instances = 1\n", "  max_instances = 3\n"),
                ("  max_in_flight = 2\n", "  max_in_flight = 4\n"),
            ),
            extra=targets,
        )
    )
    # THEN the ECS maximum count, the worker's configured caps and the producers' view follow
    assert (before["asg_max"], before["scaling_max"]) == (1, 1)
    assert (after["asg_max"], after["scaling_max"], after["step_max"]) == (3, 3, 3)
    assert before["env"]["CONTENTFN_GPU_MAX_INSTANCES"] == "1"
    assert after["env"]["CONTENTFN_GPU_MAX_INSTANCES"] == "3"
    assert before["env"]["CONTENTFN_GPU_MAX_IN_FLIGHT"] == "2"
    assert after["env"]["CONTENTFN_GPU_MAX_IN_FLIGHT"] == "4"
    assert after["producer_env"]["CONTENTFN_GPU_MAX_INSTANCES"] == "3"
    assert after["producer_env"]["CONTENTFN_GPU_MAX_IN_FLIGHT"] == "4"


def test_the_device_process_switch_and_more_settings_reach_the_worker_env(aws_plan: PlanFn) -> None:
    # GIVEN dev's tfvars WHEN the gpu block turns the device process on (batch 8, 2 in flight) and
    # passes one more setting to the worker
    # (whole plans: a targeted plan leaves out outputs computed from variables alone)
    before = aws_plan("dev")["planned_values"]["outputs"]
    more = '  device_process = true\n  environment = { CONTENTFN_GPU_DEVICE_CALLS = "2" }\n'
    after = aws_plan("dev", tfvars_edits=(("  max_wait_ms   = 50\n", "  max_wait_ms   = 50\n" + more),))
    after = after["planned_values"]["outputs"]
    # THEN the worker is told (its batch buffers are memfds: no /dev/shm to size)
    assert "CONTENTFN_GPU_DEVICE_PROCESS" not in before["ecs_task_environment"]["value"]
    assert after["ecs_task_environment"]["value"]["CONTENTFN_GPU_DEVICE_PROCESS"] == "true"
    assert after["ecs_task_environment"]["value"]["CONTENTFN_GPU_DEVICE_CALLS"] == "2"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        # gpu.environment tries to set the batch cap past its own field
        (
            "  max_wait_ms   = 50\n",
            '  max_wait_ms   = 50\n  environment = { CONTENTFN_GPU_MAX_BATCH = "512" }\n',
            "gpu.environment takes CONTENTFN_* settings other than the caps",
        ),
        # a PostgreSQL whose pgvector has no HNSW index
        (
            '  instance_class        = "db.t4g.micro"\n',
            '  instance_class        = "db.t4g.micro"\n  engine_version        = "15.2"\n',
            "engine_version must be PostgreSQL 15.4 or later",
        ),
    ],
    ids=["gpu-env-overrides-a-cap", "postgres-without-hnsw"],
)
def test_a_tfvars_value_the_platform_cannot_honour_is_refused_at_plan_naming_it(
    tmp_path: Path, moto_endpoint: str, tf_env: dict[str, str], terraform_bin: str, old: str, new: str, message: str
) -> None:
    # GIVEN dev's tfvars WHEN one value is edited to something the platform refuses
    workdir = prepare_aws_env(tmp_path, "dev", moto_endpoint, tf_env, terraform_bin)
    tfvars = workdir / "terraform.tfvars"
    source = tfvars.read_text()
    assert old in source
    tfvars.write_text(source.replace(old, new, 1))
    plan = subprocess.run(
        [terraform_bin, "plan", "-input=false", "-no-color", "-lock=false", "-refresh=false"],
        cwd=workdir,
        env=tf_env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    # THEN the plan stops at the variable, saying what is wrong
    assert plan.returncode != 0
    assert message in " ".join(plan.stderr.split())


def test_the_trace_exporter_endpoint_and_sampling_reach_every_function_and_the_worker(aws_plan: PlanFn) -> None:
    # GIVEN dev's tfvars WHEN they name an OTLP endpoint (a collector forwarding to X-Ray) at 25% sampling
    tracing = (
        'log_level          = "DEBUG"\ntracing = { otlp_endpoint = "http://otel.internal:4318", sample_ratio = 0.25 }\n'
    )
    plan = aws_plan("dev", tfvars_edits=(('log_level          = "DEBUG"\n', tracing),))
    # THEN the GPU worker and every function export there at that ratio
    worker_env = plan["planned_values"]["outputs"]["ecs_task_environment"]["value"]
    assert worker_env["CONTENTFN_OTEL_EXPORTER_ENDPOINT"] == "http://otel.internal:4318"
    assert worker_env["CONTENTFN_OTEL_SAMPLE_RATIO"] == "0.25"
    lambdas = by_type(tftools.plan_resources(plan), "aws_lambda_function")
    assert lambdas
    for fn in lambdas:
        env = fn["values"]["environment"][0]["variables"]
        assert (env["CONTENTFN_OTEL_EXPORTER_ENDPOINT"], env["CONTENTFN_OTEL_SAMPLE_RATIO"]) == (
            "http://otel.internal:4318",
            "0.25",
        ), fn["address"]
