"""S3 and GCS blob adapters against real emulators: moto server and fake-gcs-server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.blob.base import Blob
from shared.errors import ObjectNotFound, ObjectTooLarge
from tests.emulators import fake_gcs_url, moto_url  # noqa: F401 - fixtures

BUCKET = "contentfn-test-uploads"
KEY = "incoming/Beyoncé tracks 2024.jsonl"


class _CallLog:
    """Wraps an SDK client and records which operations were called."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if callable(attr):
            self.calls.append(name)
        return attr


Store = tuple[Blob, _CallLog, str]


@pytest.fixture
def s3(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Store:  # noqa: F811
    from shared.blob.s3 import S3Blob

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    blob = S3Blob.create(endpoint_url=moto_url, region="eu-west-1")
    bucket = f"{BUCKET}-{os.urandom(3).hex()}"
    blob._client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    spy = _CallLog(blob._client)
    blob._client = spy
    return blob, spy, bucket


@pytest.fixture
def gcs(fake_gcs_url: str) -> Store:  # noqa: F811
    from shared.blob.gcs import GcsBlob

    blob = GcsBlob.create(endpoint=fake_gcs_url, project="contentfn-test")
    bucket = f"{BUCKET}-{os.urandom(3).hex()}"
    blob._client.create_bucket(bucket)
    spy = _CallLog(blob._client)
    blob._client = spy
    return blob, spy, bucket


@pytest.fixture(params=["s3", "gcs"])
def store(request: pytest.FixtureRequest) -> Store:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


def test_put_then_stat_reports_size_version_and_content_type(store: Store) -> None:
    blob, _, bucket = store
    put = blob.put(bucket, KEY, b'{"a": 1}\n', content_type="application/x-ndjson")
    info = blob.stat(bucket, KEY)
    assert info.size == 9 and info.key == KEY
    assert info.etag and info.etag == put.etag
    assert info.content_type == "application/x-ndjson"


def test_streaming_read_returns_every_byte_of_a_multi_chunk_object(store: Store) -> None:
    blob, _, bucket = store
    data = os.urandom(3 * 1024 * 1024 + 17)
    blob.put(bucket, KEY, data)
    with blob.open(bucket, KEY, max_bytes=len(data)) as stream:
        chunks = iter(lambda: stream.read(256 * 1024), b"")
        got = b"".join(chunks)
    assert got == data


def test_object_over_the_cap_is_refused_before_any_download(store: Store) -> None:
    blob, spy, bucket = store
    blob.put(bucket, KEY, b"x" * 4096)
    spy.calls.clear()
    with pytest.raises(ObjectTooLarge):
        blob.open(bucket, KEY, max_bytes=4095)
    assert "get_object" not in spy.calls and "download_blob_to_file" not in spy.calls
    assert spy.calls, "the adapter must at least stat the object"


def test_missing_object_is_object_not_found(store: Store) -> None:
    blob, _, bucket = store
    with pytest.raises(ObjectNotFound):
        blob.stat(bucket, "no/such key.csv")
    with pytest.raises(ObjectNotFound):
        blob.open(bucket, "no/such key.csv", max_bytes=10)


def test_list_filters_by_prefix(store: Store) -> None:
    blob, _, bucket = store
    for key in ("incoming/a.csv", "incoming/b.jsonl", "images/c.jpg"):
        blob.put(bucket, key, b"1")
    assert sorted(i.key for i in blob.list(bucket, "incoming/")) == ["incoming/a.csv", "incoming/b.jsonl"]


def test_gcs_overwrite_gets_a_new_generation(gcs: Store) -> None:
    blob, _, bucket = gcs
    first = blob.put(bucket, KEY, b"one")
    second = blob.put(bucket, KEY, b"two!")
    assert first.generation and second.generation and first.generation != second.generation
    with blob.open(bucket, KEY, max_bytes=10) as stream:
        assert stream.read() == b"two!"


def test_s3_read_url_is_a_presigned_get_that_reads_the_object_without_credentials(s3: Store) -> None:
    blob, spy, bucket = s3
    blob.put(bucket, KEY, b"signed bytes", content_type="application/octet-stream")
    # WHEN a read URL is made, no request reaches S3 (SigV4 signs locally)
    before = list(spy.calls)
    url = blob.read_url(bucket, KEY, expires_s=60)
    assert url is not None and "X-Amz-Signature=" in url and "X-Amz-Expires=60" in url
    assert [c for c in spy.calls[len(before) :] if c != "generate_presigned_url"] == []
    # THEN a client with no credentials reads the object through it (moto does not check signatures,
    # so the signing itself is botocore's, here only seen to be SigV4 with the asked expiry)
    assert httpx.get(url, timeout=10).content == b"signed bytes"


def test_gcs_read_url_is_none_without_a_signer_and_local_has_none(gcs: Store, tmp_path: Path) -> None:
    from shared.blob import LocalBlob

    blob, _, bucket = gcs
    blob.put(bucket, KEY, b"x")
    # the emulator's anonymous client cannot sign: the caller serves the bytes itself
    assert blob.read_url(bucket, KEY, expires_s=60) is None
    assert LocalBlob(tmp_path).read_url("b", "images/a.png", expires_s=60) is None
