"""Alarms, the dashboard and the GPU service's metric collection in the AWS environments, read from
their plans (against moto; nothing applied)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.terraform import tftools

pytestmark = pytest.mark.slow

PlanFn = Callable[..., dict[str, Any]]


def by_type(resources: list[dict[str, Any]], rtype: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["type"] == rtype]


@pytest.fixture(scope="module", params=tftools.ENVS)
def plan(request: pytest.FixtureRequest, aws_plan: PlanFn) -> dict[str, Any]:
    return aws_plan(request.param)


@pytest.fixture(scope="module")
def alarms(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["values"]["alarm_name"]: r for r in by_type(tftools.plan_resources(plan), "aws_cloudwatch_metric_alarm")}


def _env(plan: dict[str, Any]) -> str:
    return str(plan["variables"]["environment"]["value"])


def _routed_to_the_topic(alarm: dict[str, Any]) -> bool:
    # The topic is created in the same plan: its ARN is unknown until apply, on both lists.
    unknown = alarm["after_unknown"]
    return bool(unknown.get("alarm_actions")) and bool(unknown.get("ok_actions"))


def test_every_dead_letter_queue_job_queue_and_function_has_an_alarm_routed_to_the_alarm_topic(
    plan: dict[str, Any], alarms: dict[str, dict[str, Any]]
) -> None:
    resources = tftools.plan_resources(plan)
    prefix = f"contentfn-{_env(plan)}"
    queues = {r["values"]["name"] for r in by_type(resources, "aws_sqs_queue")}
    dead = {q for q in queues if q.endswith("-dlq")}
    lambdas = {r["values"]["function_name"] for r in by_type(resources, "aws_lambda_function")}
    by_metric: dict[str, set[str]] = {}
    for alarm in alarms.values():
        v = alarm["values"]
        by_metric.setdefault(f"{v['namespace']}/{v['metric_name']}", set()).update(v["dimensions"].values())
        # THEN every alarm notifies the one alarm topic, when it fires and when it is OK again
        assert _routed_to_the_topic(alarm), v["alarm_name"]
    # GIVEN every SQS dead-letter queue THEN its depth > 0 alarms
    assert by_metric["AWS/SQS/ApproximateNumberOfMessagesVisible"] == dead
    dlq_alarms = [
        a["values"] for a in alarms.values() if a["values"]["metric_name"] == "ApproximateNumberOfMessagesVisible"
    ]
    assert all(a["threshold"] == 0 and a["comparison_operator"] == "GreaterThanThreshold" for a in dlq_alarms)
    # AND every job queue's oldest message age, every function's errors
    assert by_metric["AWS/SQS/ApproximateAgeOfOldestMessage"] == queues - dead
    assert by_metric["AWS/Lambda/Errors"] == lambdas
    # AND the LLM budget at 80 %, reported by analyze in the product's namespace
    budget = alarms[f"{prefix}-llm-budget"]["values"]
    assert (budget["namespace"], budget["metric_name"]) == ("contentfn", "contentfn_llm_budget_used_ratio")
    assert budget["dimensions"] == {"service": "analyze"}
    assert (budget["threshold"], budget["comparison_operator"]) == (0.8, "GreaterThanOrEqualToThreshold")
    # AND the GPU queue lag over its target, from the GPU service's scraped metrics
    lag = alarms[f"{prefix}-gpu-queue-lag"]["values"]
    assert (lag["metric_name"], lag["dimensions"], lag["threshold"]) == (
        "contentfn_gpu_queue_lag_seconds",
        {"service": "gpu"},
        60,
    )
    # AND the alarm topic is encrypted
    (topic,) = by_type(resources, "aws_sns_topic")
    assert topic["values"]["name"] == f"{prefix}-alarms" and tftools_configured(topic, "kms_master_key_id")


def tftools_configured(resource: dict[str, Any], attribute: str) -> bool:
    return resource["values"].get(attribute) not in (None, "") or bool(resource["after_unknown"].get(attribute))


def test_gpu_service_metrics_are_scraped_by_an_agent_into_the_product_namespace(plan: dict[str, Any]) -> None:
    # The container definitions embed secret ARNs (unknown until apply); the collection is an output.
    collection = plan["planned_values"]["outputs"]["gpu_metrics_collection"]["value"]
    env = plan["planned_values"]["outputs"]["ecs_task_environment"]["value"]
    # GIVEN the worker serving /metrics on its port inside the task
    port = collection["worker_port"]
    assert env["CONTENTFN_GPU_METRICS_PORT"] == str(port)
    # THEN the agent beside it scrapes that port over the task's loopback, labelled service=gpu
    scrape = collection["prometheus_config"]["scrape_configs"][0]
    assert scrape["static_configs"][0]["targets"] == [f"127.0.0.1:{port}"]
    assert scrape["static_configs"][0]["labels"] == {"service": "gpu"}
    # AND writes the GPU figures and the store's as EMF into the product's namespace
    prometheus = collection["agent_config"]["logs"]["metrics_collected"]["prometheus"]
    assert prometheus["prometheus_config_path"] == "env:PROMETHEUS_CONFIG_CONTENT"
    emf = prometheus["emf_processor"]
    assert emf["metric_namespace"] == "contentfn"
    selected = [s for d in emf["metric_declaration"] for s in d["metric_selectors"]]
    for name in ("contentfn_gpu_queue_lag_seconds", "contentfn_gpu_batch_fill", "contentfn_dead_letters"):
        assert any(re.search(s, name) for s in selected), name
    # AND the agent may write only its own log group
    (group,) = [
        r
        for r in by_type(tftools.plan_resources(plan), "aws_cloudwatch_log_group")
        if r["values"]["name"] == prometheus["log_group_name"]
    ]
    assert group["values"]["retention_in_days"] > 0
    statements = {
        st["sid"]: st
        for address, sts in tftools.plan_policy_documents(plan)
        if "gpu_service" in address and address.endswith(".task")
        for st in sts
        if st.get("sid")
    }
    assert set(statements["WriteMetricsAsEmf"]["actions"]) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "logs:DescribeLogStreams",
    }


def test_dashboard_has_a_widget_per_question_over_the_product_namespace(plan: dict[str, Any]) -> None:
    (dashboard,) = by_type(tftools.plan_resources(plan), "aws_cloudwatch_dashboard")
    body = json.loads(dashboard["values"]["dashboard_body"])
    titles = [w["properties"]["title"] for w in body["widgets"]]
    text = json.dumps(body)
    for metric in (
        "contentfn_http_requests_total",
        "contentfn_jobs_total",
        "contentfn_llm_cost_usd_total",
        "contentfn_llm_budget_used_ratio",
        "contentfn_gpu_queue_lag_seconds",
        "ApproximateAgeOfOldestMessage",
    ):
        assert metric in text, metric
    assert len(titles) == len(set(titles)) >= 15


def test_a_given_alarm_topic_receives_every_alarm_and_none_is_created(aws_plan: PlanFn) -> None:
    topic = "arn:aws:sns:eu-west-1:123456789012:on-call"
    plan = aws_plan("dev", extra=(f"-var=alarm_topic_arn={topic}", "-target=module.contentfn.module.observability"))
    resources = tftools.plan_resources(plan)
    assert by_type(resources, "aws_sns_topic") == []
    alarms = by_type(resources, "aws_cloudwatch_metric_alarm")
    assert alarms and all(a["values"]["alarm_actions"] == [topic] == a["values"]["ok_actions"] for a in alarms)
