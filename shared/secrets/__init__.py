"""Secrets by reference: ``CONTENTFN_<NAME>_SECRET_ID`` → the value of ``CONTENTFN_<NAME>``.

Lambda cannot inject secrets into the environment, so Terraform hands each function the *name*
of its Secrets Manager secrets and the entry point reads them once, at cold start, before the
settings are validated. On GCP and ECS the platform injects the values themselves and nothing
here runs. The AWS adapter (:mod:`shared.secrets.aws`, boto3) is imported only when there is
something to resolve.
"""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping

from shared.config import ENV_PREFIX

__all__ = ["SECRET_ID_SUFFIX", "resolve_aws_secret_ids"]

log = logging.getLogger(__name__)

SECRET_ID_SUFFIX = "_SECRET_ID"  # noqa: S105 - a variable-name suffix, not a secret


def resolve_aws_secret_ids(
    environ: MutableMapping[str, str] | None = None,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
) -> list[str]:
    """Set every ``CONTENTFN_<NAME>`` that has a ``_SECRET_ID`` and no value yet; return the names set.

    A value already present wins (local runs and tests set it directly). A secret that cannot be
    read stops the start with one ConfigError naming the variable, never printing the secret.
    """
    env = os.environ if environ is None else environ
    wanted = {
        key[: -len(SECRET_ID_SUFFIX)]: value
        for key, value in env.items()
        if key.startswith(ENV_PREFIX) and key.endswith(SECRET_ID_SUFFIX) and value
    }
    todo = {target: secret_id for target, secret_id in wanted.items() if not env.get(target)}
    if not todo:
        return []
    from shared.secrets.aws import aws_client, read_secret_string

    client = aws_client(
        "secretsmanager",
        endpoint_url or env.get("CONTENTFN_AWS_ENDPOINT_URL") or None,
        region or env.get("CONTENTFN_AWS_REGION") or env.get("AWS_REGION") or None,
    )
    resolved = []
    for target, secret_id in sorted(todo.items()):
        env[target] = read_secret_string(client, secret_id, variable=f"{target}{SECRET_ID_SUFFIX}")
        resolved.append(target)
    log.info("resolved secrets for %s", ", ".join(resolved))
    return resolved
