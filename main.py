"""GCP source entry point: Cloud Run functions (gen2) load ``main.handler`` from the source archive.

Terraform deploys the same archive once per function and sets ``CONTENTFN_FUNCTION``; this module
re-exports that function's target from ``functions/<name>/gcp.py`` under the name ``handler``,
registered with the signature type that function's trigger delivers (CloudEvent for Eventarc,
HTTP for Pub/Sub push, Cloud Scheduler and the API). Only the chosen module is imported.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import functions_framework

# function → (target in functions/<fn>/gcp.py, signature type of the trigger Terraform wires)
TARGETS: dict[str, tuple[str, str]] = {
    "ingest": ("ingest", "cloudevent"),
    "embed": ("embed", "http"),
    "scrape": ("scrape", "http"),
    "enrich": ("enrich", "http"),
    "analyze": ("analyze", "http"),
    "api": ("api", "http"),
    "deadletters": ("deadletters", "http"),
}

FUNCTION = os.environ.get("CONTENTFN_FUNCTION", "")
if FUNCTION not in TARGETS:
    raise RuntimeError(f"CONTENTFN_FUNCTION must be one of {', '.join(sorted(TARGETS))}")
_name, _signature = TARGETS[FUNCTION]
_target = getattr(importlib.import_module(f"functions.{FUNCTION}.gcp"), _name)

if _signature == "cloudevent":

    @functions_framework.cloud_event
    def handler(cloud_event: Any) -> Any:
        return _target(cloud_event)

else:

    @functions_framework.http
    def handler(request: Any) -> Any:  # type: ignore[misc]
        return _target(request)
