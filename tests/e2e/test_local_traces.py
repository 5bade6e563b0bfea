"""One trace per upload on the local runtime: the object event, each embed / enrich / analyze job,
the LLM call and the GPU detection batch, joined across the Postgres queue by ``traceparent``."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.runtime import LocalStack
from shared.vision.detector import default_model_path
from tests.conftest import need
from tests.entry_fixtures import put_local, sample_jsonl
from tests.integration.test_detector_real import photo_jpeg
from tests.intel_fixtures import llm_server, make_intel_settings  # noqa: F401
from tests.servers.llm_server import LlmServer
from tests.servers.otlp_receiver import OtlpReceiver
from tests.trace_fixtures import otlp_receiver, upload_trace, wait_for_spans  # noqa: F401

pytestmark = pytest.mark.slow

TRACKS = 6


def test_one_upload_of_tracks_and_one_of_a_photo_each_make_one_whole_trace_on_the_local_runtime(
    tmp_path: Path,
    database_url: str,
    model_dir: Path,
    llm_server: LlmServer,  # noqa: F811
    otlp_receiver: OtlpReceiver,  # noqa: F811
) -> None:
    need(default_model_path() is not None, "the nudenet wheel is not installed")
    # GIVEN the local runtime exporting every trace to the receiver, and analysis that always asks the LLM
    settings = make_intel_settings(
        tmp_path,
        database_url,
        api_port=0,
        worker_poll_s=0.05,
        llm_base_url=llm_server.url,
        llm_api_key=llm_server.api_key,
        analysis_min_confidence=1.0,
        otel_exporter_endpoint=otlp_receiver.endpoint,
        otel_sample_ratio=1.0,
    )
    with LocalStack(settings, serve_api=False):
        # WHEN a track file and a photo land in the bucket
        put_local(settings, settings.bucket, "incoming/tracks.jsonl", sample_jsonl(TRACKS, tag="trace"))
        put_local(settings, settings.bucket, "images/astronaut.jpg", photo_jpeg("astronaut"))
        llm_calls = wait_for_spans(otlp_receiver, "llm chat completion", TRACKS)
        analyses = wait_for_spans(otlp_receiver, "analyze job", TRACKS)
        batches = wait_for_spans(otlp_receiver, "detect batch", 1)
    assert len(llm_calls) >= TRACKS and len(analyses) >= TRACKS and batches

    # THEN the track file's trace runs from its object event through every stage to the LLM calls
    tracks = upload_trace(otlp_receiver, "incoming/tracks.jsonl")
    enriches = tracks.named("enrich job")
    assert len(enriches) == TRACKS
    assert all(tracks.parent_of(s) is tracks.root for s in enriches)
    assert tracks.named("embed batch") and all(tracks.parent_of(s) is tracks.root for s in tracks.named("embed batch"))
    # AND each analysis follows the enrichment that queued it, across the queue hop, and holds its LLM call
    assert len(tracks.named("analyze job")) == TRACKS
    assert {tracks.parent_of(s).name for s in tracks.named("analyze job")} == {"enrich job"}
    assert len(tracks.named("llm chat completion")) == TRACKS
    assert {tracks.parent_of(s).name for s in tracks.named("llm chat completion")} == {"analyze job"}
    assert {s.kind for s in enriches} == {"CONSUMER"} and tracks.root.service == "contentfn-local"

    # AND the photo's trace runs from its object event to the detection batch
    photo = upload_trace(otlp_receiver, "images/astronaut.jpg")
    (batch,) = photo.named("detect batch")
    assert photo.parent_of(batch) is photo.root and batch.attributes["batch.images"] == 1
    assert photo.root.trace_id != tracks.root.trace_id
