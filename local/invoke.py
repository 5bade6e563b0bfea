"""``make invoke FN=<fn> EVENT=events/<file> CLOUD=gcp|aws``: run one cloud entry point on one
real-format payload against the local stack (embedded Postgres under the data dir, the local
bucket folder), exactly as the platform would call it.

AWS payloads go to ``functions/<fn>/aws.py:handler`` with a Lambda context; GCP HTTP captures go
through functions-framework (``create_app`` on ``functions/<fn>/gcp.py``) as an HTTP request.
An object named by a storage event that is missing locally is created from the sample data, so
the run shows a real ingest.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["GCP_TARGETS", "invoke", "main"]

REPO = Path(__file__).resolve().parents[1]
SAMPLE = Path(__file__).resolve().parent / "data" / "sample_tracks.jsonl"
FUNCTIONS = ("ingest", "embed", "api")
# (target, signature type) per function; CloudEvent captures pick the cloudevent target.
GCP_TARGETS = {
    "ingest": {"cloudevent": "ingest"},
    "embed": {"http": "embed", "cloudevent": "embed_event"},
    "api": {"http": "api"},
}


def _seed_objects(payload: dict[str, Any], cloud: str) -> list[str]:
    """Create missing objects that the event names in the local bucket folder (sample tracks)."""
    from shared.envelopes.any_cloud import domain_events
    from shared.events import ObjectCreated
    from shared.platform.runtime import load_entry_settings

    try:
        events = domain_events(cloud, payload)  # type: ignore[arg-type]
    except Exception:
        return []  # malformed on purpose: let the handler show what it does with it
    settings = load_entry_settings()
    seeded = []
    for event in events:
        if isinstance(event, ObjectCreated):
            path = settings.buckets_dir / event.bucket / event.key
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(SAMPLE.read_bytes())
                seeded.append(f"{event.bucket}/{event.key}")
    return seeded


def _invoke_aws(fn: str, payload: dict[str, Any]) -> tuple[bool, Any]:
    import importlib

    from local.lambda_context import LocalLambdaContext

    handler = importlib.import_module(f"functions.{fn}.aws").handler
    result = handler(payload, LocalLambdaContext(function_name=f"contentfn-{fn}"))
    failed = bool(isinstance(result, dict) and result.get("batchItemFailures"))
    return not failed, result


def _invoke_gcp(fn: str, payload: dict[str, Any]) -> tuple[bool, Any]:
    from functions_framework import create_app

    from shared.envelopes.any_cloud import HttpCapture

    capture = HttpCapture.from_doc(payload)
    lower = {k.lower(): v for k, v in capture.headers.items()}
    is_ce = "ce-type" in lower or lower.get("content-type", "").startswith("application/cloudevents+json")
    signature = "cloudevent" if is_ce else "http"
    target = GCP_TARGETS[fn].get(signature)
    if target is None:
        raise SystemExit(f"{fn} has no {signature} entry point on GCP")
    client = create_app(target, str(REPO / "functions" / fn / "gcp.py"), signature).test_client()
    headers = {k: v for k, v in capture.headers.items() if k.lower() != "host"}
    resp = client.open(
        capture.path, method=capture.method, query_string=capture.query, headers=headers, data=capture.body
    )
    body: Any = resp.get_data(as_text=True)
    with contextlib.suppress(ValueError):
        body = json.loads(body) if body else None
    return resp.status_code < 400, {"status": resp.status_code, "body": body}


def invoke(fn: str, event_path: Path, cloud: str, *, seed: bool = True) -> tuple[bool, Any]:
    payload = json.loads(event_path.read_text(encoding="utf-8"))
    os.environ.setdefault("CONTENTFN_BLOB_BACKEND", "local")
    if seed:
        for uri in _seed_objects(payload, cloud):
            print(f"seeded missing object {uri} from {SAMPLE.name}", file=sys.stderr)
    return _invoke_aws(fn, payload) if cloud == "aws" else _invoke_gcp(fn, payload)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make invoke", description=__doc__.split("\n\n")[0])
    parser.add_argument("--fn", required=True, choices=FUNCTIONS)
    parser.add_argument("--event", required=True, type=Path, help="a file under events/")
    parser.add_argument("--cloud", choices=("aws", "gcp"), help="default: from the file name prefix")
    parser.add_argument("--no-seed", action="store_true", help="do not create missing objects")
    args = parser.parse_args(argv)
    cloud = args.cloud or args.event.name.split("_", 1)[0]
    if cloud not in ("aws", "gcp"):
        parser.error("give --cloud (the event file name does not start with aws_ or gcp_)")
    if args.event.name.split("_", 1)[0] in ("aws", "gcp") and args.event.name.split("_", 1)[0] != cloud:
        parser.error(f"{args.event.name} is a {args.event.name.split('_', 1)[0]} payload, not {cloud}")
    started = time.perf_counter()
    ok, result = invoke(args.fn, args.event, cloud, seed=not args.no_seed)
    print(json.dumps(result, indent=2, default=str, ensure_ascii=False))
    print(f"{args.fn} on {cloud}: {'ok' if ok else 'FAILED'} in {time.perf_counter() - started:.2f} s", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
