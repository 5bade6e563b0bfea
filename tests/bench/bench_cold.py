"""bench-cold: time from interpreter start to the first handled event, for every cloud entry point.

Each measurement is a fresh ``python`` process that imports the entry point and handles one real
event against real parts: PostgreSQL (pgserver, migrated beforehand, as a deploy step would), S3 on
a moto server, GCS on fake-gcs-server, the exported embedding model. AWS entry points are called
as Lambda calls them (``handler(event, context)``); GCP entry points go through functions-framework
(``create_app`` + its WSGI app, which its gunicorn server wraps). Every ingest run reads a new
object and every embed run embeds a new track, so no run is answered from an idempotency record.

The figure per entry point is the median of ``--runs`` runs after one unmeasured warm-up (which
compiles bytecode, as a deployed image would ship it). Beside the wall time, the child's CPU time
is shown: on a machine shared with other work the wall time grows, the CPU time barely does. The last line is
``bench-cold worst_non_ml_s= embed_s= api_s=``: the slowest non-ML entry point (ingest, api), the
slowest embed entry point (model load included) and the slowest api entry point.

    python -m tests.bench.bench_cold [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "local" / "data" / "sample_tracks.jsonl"
TARGET_NON_ML_S = 1.0
TARGET_EMBED_S = 2.5

# The child: import the entry point, handle one event, say so, and leave without teardown.
CHILD = r"""
import json, os, sys
spec = json.loads(os.environ["BENCH_SPEC"])
if spec["cloud"] == "aws":
    import importlib
    from local.lambda_context import LocalLambdaContext
    handler = importlib.import_module("functions.%s.aws" % spec["fn"]).handler
    out = handler(spec["payload"], LocalLambdaContext(function_name="bench"))
    ok = not (isinstance(out, dict) and (out.get("batchItemFailures") or out.get("statusCode", 200) >= 400))
else:
    from functions_framework import create_app
    app = create_app(spec["target"], os.path.join("functions", spec["fn"], "gcp.py"), spec["signature"])
    req = spec["payload"]
    resp = app.test_client().open(req["path"], method=req["method"], headers=req["headers"], data=req["body"].encode())
    ok, out = resp.status_code < 400, resp.status_code
print("BENCH-DONE %s %s" % ("ok" if ok else "FAILED", json.dumps(out, default=str)[:300]), flush=True)
os._exit(0 if ok else 1)
"""


@dataclass(frozen=True)
class Entry:
    name: str
    fn: str
    cloud: str
    group: str  # non_ml | embed
    target: str = ""
    signature: str = ""


ENTRIES = [
    Entry("ingest/aws", "ingest", "aws", "non_ml"),
    Entry("ingest/gcp", "ingest", "gcp", "non_ml", "ingest", "cloudevent"),
    Entry("api/aws", "api", "aws", "non_ml"),
    Entry("api/gcp", "api", "gcp", "non_ml", "api", "http"),
    Entry("embed/aws", "embed", "aws", "embed"),
    Entry("embed/gcp", "embed", "gcp", "embed", "embed", "http"),
]


class Stack:
    """Postgres, moto and fake-gcs-server for the whole bench; a few objects and tracks to use."""

    def __init__(self, workdir: Path) -> None:
        import boto3
        import pgserver

        from shared.blob.gcs import GcsBlob
        from shared.store.db import Database
        from tests.emulators import start_fake_gcs, start_moto

        self.workdir = workdir
        self.pg = pgserver.get_server(workdir / "pg", cleanup_mode="stop")
        self.database_url = str(self.pg.get_uri())
        Database(self.database_url).migrate()
        self.moto = start_moto(workdir)
        self.gcs_emulator = start_fake_gcs(workdir)
        os.environ.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="eu-west-1")
        self.s3 = boto3.session.Session(region_name="eu-west-1").client("s3", endpoint_url=self.moto.url)
        self.s3.create_bucket(Bucket="bench-uploads", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        self.gcs = GcsBlob.create(endpoint=self.gcs_emulator.url, project="bench")
        self.gcs._client.create_bucket("bench-uploads")
        self._tracks = self._load_tracks()
        self._n = 0

    def _load_tracks(self) -> list[tuple[int, str]]:
        from functions.ingest.core import handle_object_created
        from shared.config import load_settings
        from shared.events import ObjectCreated
        from shared.services import Services

        settings = load_settings(data_dir=self.workdir / "state", database_url=self.database_url)
        services = Services.from_settings(settings, migrate=False)
        try:
            services.blob.put(settings.bucket, "seed.jsonl", SAMPLE.read_bytes())
            handle_object_created(ObjectCreated(bucket=settings.bucket, key="seed.jsonl", generation="1"), services)
            with services.db.connection() as conn:
                rows = conn.execute("SELECT id, content_hash FROM tracks ORDER BY id").fetchall()
                conn.execute("DELETE FROM jobs")
                conn.commit()
        finally:
            services.close()
        return [(int(r[0]), str(r[1])) for r in rows]

    def env(self, entry: Entry) -> dict[str, str]:
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "CONTENTFN_DATABASE_URL": self.database_url,
            "CONTENTFN_DATA_DIR": str(self.workdir / "state"),
            "CONTENTFN_MIGRATE_ON_START": "false",
            "CONTENTFN_AWS_ENDPOINT_URL": self.moto.url,
            "CONTENTFN_AWS_REGION": "eu-west-1",
            "CONTENTFN_GCS_ENDPOINT": self.gcs_emulator.url,
            "CONTENTFN_LOG_LEVEL": "WARNING",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
        env.pop("CONTENTFN_BLOB_BACKEND", None)  # each cloud's own store
        return env

    def spec(self, entry: Entry) -> dict[str, Any]:
        """A fresh event for one run of ``entry``."""
        self._n += 1
        spec: dict[str, Any] = {
            "fn": entry.fn,
            "cloud": entry.cloud,
            "target": entry.target,
            "signature": entry.signature,
        }
        spec["payload"] = getattr(self, f"_{entry.fn}_{entry.cloud}")(self._n)
        return spec

    def _ingest_aws(self, n: int) -> dict[str, Any]:
        from tests.event_files import load_event

        key = f"incoming/run {n} é.jsonl"
        put = self.s3.put_object(Bucket="bench-uploads", Key=key, Body=SAMPLE.read_bytes())
        event = load_event("aws_s3_object_created.json")
        obj = event["Records"][0]["s3"]
        obj["bucket"]["name"] = "bench-uploads"
        obj["object"].update(key=quote_plus(key, safe="/"), eTag=put["ETag"].strip('"'), size=SAMPLE.stat().st_size)
        obj["object"].pop("versionId")
        return event

    def _ingest_gcp(self, n: int) -> dict[str, Any]:
        from tests.event_files import load_event

        key = f"incoming/run {n} é.jsonl"
        info = self.gcs.put("bench-uploads", key, SAMPLE.read_bytes())
        doc = load_event("gcp_storage_finalized_binary.json")
        doc["body"].update(bucket="bench-uploads", name=key, generation=info.generation, size=str(info.size))
        return _capture(doc)

    def _job(self, n: int) -> dict[str, Any]:
        track_id, chash = self._tracks[n % len(self._tracks)]
        return {"kind": "embed", "payload": {"track_id": track_id, "content_hash": chash}}

    def _embed_aws(self, n: int) -> dict[str, Any]:
        from tests.event_files import load_event

        event = load_event("aws_sqs_jobs.json")
        event["Records"] = event["Records"][:1]
        event["Records"][0]["body"] = json.dumps(self._job(n))
        return event

    def _embed_gcp(self, n: int) -> dict[str, Any]:
        import base64

        from tests.event_files import load_event

        doc = load_event("gcp_pubsub_push_job.json")
        doc["body"]["message"]["data"] = base64.b64encode(json.dumps(self._job(n)).encode()).decode()
        return _capture(doc)

    def _api_aws(self, n: int) -> dict[str, Any]:
        from tests.event_files import load_event

        return load_event("aws_function_url_health.json")

    def _api_gcp(self, n: int) -> dict[str, Any]:
        return {"method": "GET", "path": "/health", "headers": {}, "body": ""}

    def close(self) -> None:
        self.gcs_emulator.stop()
        self.moto.stop()
        self.pg.cleanup()


def _capture(doc: dict[str, Any]) -> dict[str, Any]:
    from shared.envelopes.any_cloud import HttpCapture

    cap = HttpCapture.from_doc(doc)
    headers = {k: v for k, v in cap.headers.items() if k.lower() != "host"}
    return {"method": cap.method, "path": cap.path, "headers": headers, "body": cap.body.decode()}


def measure(stack: Stack, entry: Entry) -> tuple[float, float]:
    """(wall seconds to the first handled event, CPU seconds the child used) for one fresh process."""
    env = stack.env(entry) | {"BENCH_SPEC": json.dumps(stack.spec(entry))}
    with tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD], env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=err, text=True
        )
        assert proc.stdout is not None
        line = ""
        for line in proc.stdout:  # EMF metrics and logs may come first
            if line.startswith("BENCH-DONE"):
                break
        elapsed = time.perf_counter() - started
        proc.stdout.read()
        # wait4 gives the child's CPU time: a figure that does not grow when other work shares the cores.
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        if proc.returncode != 0 or not line.startswith("BENCH-DONE ok"):
            raise RuntimeError(f"{entry.name} failed ({proc.returncode}): {line.strip()} {err.read()[-1500:]}")
    return elapsed, usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench-cold", description="cold start of every cloud entry point")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per entry point (after one warm-up)")
    args = parser.parse_args(argv)
    model = Path(os.environ.get("CONTENTFN_MODEL_DIR") or REPO / ".contentfn" / "models" / "all-MiniLM-L6-v2")
    if not (model / "manifest.json").is_file():
        print(f"model files missing under {model}: run `make model`", file=sys.stderr)
        return 2
    os.environ["CONTENTFN_MODEL_DIR"] = str(model.resolve())
    results: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as tmp:
        stack = Stack(Path(tmp))
        try:
            for entry in ENTRIES:
                measure(stack, entry)  # warm-up: bytecode compiled, page cache filled
                runs = [measure(stack, entry) for _ in range(args.runs)]
                results[entry.name] = [wall for wall, _ in runs]
                cpu[entry.name] = [used for _, used in runs]
                shown = " ".join(f"{t:.3f}" for t in results[entry.name])
                print(
                    f"{entry.name:<11} median {statistics.median(results[entry.name]):.3f} s"
                    f"  cpu {statistics.median(cpu[entry.name]):.3f} s  (runs: {shown})",
                    flush=True,
                )
        finally:
            stack.close()
    load = os.getloadavg()[0]
    print(f"load average during the run: {load:.1f} on {os.cpu_count()} cores (wall times grow with it; cpu does not)")
    median = {name: statistics.median(times) for name, times in results.items()}
    worst_non_ml = max(median[e.name] for e in ENTRIES if e.group == "non_ml")
    embed = max(median[e.name] for e in ENTRIES if e.group == "embed")
    api = max(median[e.name] for e in ENTRIES if e.fn == "api")
    verdict = "met" if worst_non_ml <= TARGET_NON_ML_S and embed <= TARGET_EMBED_S else "MISSED"
    print(f"targets (non-ML <= {TARGET_NON_ML_S} s, embed <= {TARGET_EMBED_S} s): {verdict}")
    print(f"bench-cold worst_non_ml_s={worst_non_ml:.3f} embed_s={embed:.3f} api_s={api:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
