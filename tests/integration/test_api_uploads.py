"""Uploads through the API and images through signed URLs, over the real HTTP server and a real
database: locally the API writes the file into the watched bucket folder; against moto server (S3)
and fake-gcs-server (GCS) it answers signed URLs, and a PUT (or GET) at one lands (or reads) the
object with no credentials. Also: an artist's themes per release year, and retired models listed."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from PIL import Image

from functions.analyze.core import run_analyze_batch
from functions.api.core import Api
from functions.embed.core import run_embed_batch
from functions.enrich.core import run_enrich_batch
from functions.ingest.core import handle_object_created
from local.server import ApiServer
from shared.blob.base import Blob
from shared.config import Settings
from shared.events import ObjectCreated
from shared.services import Services
from tests.emulators import fake_gcs_url, moto_url  # noqa: F401 - fixtures

CSV = b"id,artist,title,lyrics\nu1,Upload Band,First,ocean waves under the moon\nu2,Upload Band,Second,city lights\n"


@pytest.fixture
def serve() -> Iterator[Callable[[Services], str]]:
    servers: list[ApiServer] = []

    def start(svc: Services) -> str:
        srv = ApiServer(Api(svc), "127.0.0.1", 0)
        srv.start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.port}"

    yield start
    for srv in servers:
        srv.stop()


def _announce(url: str, name: str, size: int) -> httpx.Response:
    return httpx.post(f"{url}/uploads", json={"name": name, "size": size})


def test_a_local_upload_is_written_by_the_api_into_the_watched_bucket_and_traced(
    services: Services, serve: Callable[[Services], str]
) -> None:
    url = serve(services)
    # WHEN a CSV is announced
    resp = _announce(url, "my tracks.csv", len(CSV))
    assert resp.status_code == 201, resp.text
    answer = resp.json()
    key = answer["key"]
    # THEN its key is under the upload prefix, the answer names the API as where the bytes go
    assert key.startswith(services.settings.upload_prefix) and key.endswith("/my tracks.csv")
    assert answer["upload"]["via"] == "api" and answer["upload"]["method"] == "PUT"
    assert answer["upload"]["headers"] == {"Content-Type": "text/csv"} and answer["upload"]["expires_at"] is None
    assert resp.headers["location"] == f"/objects?key={quote(key, safe='')}" == f"/{answer['trace']}"
    # and nothing is written before the bytes come
    bucket_dir = services.settings.buckets_dir / services.settings.bucket
    assert not (bucket_dir / key).exists()
    # WHEN the bytes are PUT where it said
    put = httpx.put(f"{url}/{answer['upload']['url']}", content=CSV, headers=answer["upload"]["headers"])
    assert put.status_code == 201, put.text
    assert put.json() == {"bucket": services.settings.bucket, "key": key, "size": len(CSV), "trace": answer["trace"]}
    # THEN the file lies in the local bucket folder the local runtime watches
    assert (bucket_dir / key).read_bytes() == CSV
    # AND a second PUT of the same key is refused: an upload never overwrites
    again = httpx.put(f"{url}/{answer['upload']['url']}", content=b"id,artist,title,lyrics\n")
    assert again.status_code == 409 and again.json()["code"] == "exists"
    assert (bucket_dir / key).read_bytes() == CSV
    # AND once ingested, its trace is where the answer said
    info = services.blob.stat(services.settings.bucket, key)
    handle_object_created(ObjectCreated(bucket=info.bucket, key=key, generation=info.generation), services)
    trace = httpx.get(f"{url}/{answer['trace']}").json()
    assert trace["ingest"]["rows_ok"] == 2 and len(trace["items"]) == 2


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("../escape.csv", "invalid_name"),
        ("sub/dir.csv", "invalid_name"),
        ("..\\win.csv", "invalid_name"),
        (".hidden.csv", "invalid_name"),
        ("tab\there.csv", "invalid_name"),
        (" padded.csv", "invalid_name"),
        ("x" * 300 + ".csv", "invalid_name"),
        ("program.exe", "unsupported_extension"),
        ("noextension", "unsupported_extension"),
        ("photo.jpg", "unsupported_extension"),
    ],
)
def test_an_upload_with_a_path_a_hidden_or_odd_name_or_an_unknown_extension_is_refused_before_anything_is_written(
    services: Services, serve: Callable[[Services], str], name: str, code: str
) -> None:
    url = serve(services)
    resp = _announce(url, name, 10)
    assert resp.status_code == 400 and resp.json()["code"] == code, resp.text
    assert name not in resp.text  # the refusal names the rule, not the input
    assert list(services.blob.list(services.settings.bucket)) == []


def test_an_oversized_upload_is_refused_when_announced_and_when_sent(
    settings: Settings, serve: Callable[[Services], str]
) -> None:
    svc = Services.from_settings(settings.model_copy(update={"max_upload_bytes": 4096}))
    try:
        url = serve(svc)
        # WHEN a file over the limit is announced, it is refused at once
        refused = _announce(url, "big.jsonl", 4097)
        assert refused.status_code == 413 and refused.json()["code"] == "too_large"
        # WHEN a file announced within the limit is sent larger, the server refuses the body
        answer = _announce(url, "big.jsonl", 4000).json()
        put = httpx.put(f"{url}/{answer['upload']['url']}", content=b"x" * 4097)
        assert put.status_code == 413
        assert list(svc.blob.list(settings.bucket)) == []
        # AND a key POST /uploads did not make (outside the prefix, or a made-up shape) is refused
        for key in (
            "tracks.csv",
            "images/a.csv",
            f"{settings.upload_prefix}../x.csv",
            f"{settings.upload_prefix}a.csv",
        ):
            bad = httpx.put(f"{url}/uploads", params={"key": key}, content=b"id\n")
            assert bad.status_code == 400 and bad.json()["code"] == "invalid_key", key
        assert list(svc.blob.list(settings.bucket)) == []
    finally:
        svc.close()


# -- the cloud stores: signed URLs -----------------------------------------------------------------


def _s3(moto: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Blob, str]:
    from shared.blob.s3 import S3Blob

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    blob = S3Blob.create(endpoint_url=moto, region="eu-west-1")
    bucket = f"uploads-{os.urandom(3).hex()}"
    blob._client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    return blob, bucket


def _gcs(fake_gcs: str) -> tuple[Blob, Blob, str]:
    """A GCS adapter whose credentials sign (a service account key made here; fake-gcs-server does
    not check the signature) and an anonymous one to look at the bucket with."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from google.cloud import storage
    from google.oauth2 import service_account

    from shared.blob.gcs import GcsBlob

    anonymous = GcsBlob.create(endpoint=fake_gcs, project="contentfn-test")
    bucket = f"uploads-{os.urandom(3).hex()}"
    anonymous._client.create_bucket(bucket)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    credentials = service_account.Credentials.from_service_account_info(
        {
            "type": "service_account",
            "client_email": "api@contentfn-test.iam.gserviceaccount.com",
            "private_key": pem,
            "token_uri": "https://oauth2.googleapis.com/token",
            "project_id": "contentfn-test",
        }
    )
    client = storage.Client(
        project="contentfn-test", credentials=credentials, client_options={"api_endpoint": fake_gcs}
    )
    return GcsBlob(client), anonymous, bucket


@pytest.fixture(params=["s3", "gcs"])
def cloud(
    request: pytest.FixtureRequest, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Services, Blob, str]]:
    """Services whose blob store is a cloud adapter against its emulator: (services, a reader, emulator URL)."""
    if request.param == "s3":
        emulator = request.getfixturevalue("moto_url")
        signer, bucket = _s3(emulator, monkeypatch)
        reader = signer
    else:
        emulator = request.getfixturevalue("fake_gcs_url")
        signer, reader, bucket = _gcs(emulator)
    svc = Services.from_settings(settings.model_copy(update={"bucket": bucket}), blob=signer)
    try:
        yield svc, reader, emulator
    finally:
        svc.close()


def test_a_cloud_upload_answers_a_signed_put_that_lands_the_object_without_credentials(
    cloud: tuple[Services, Blob, str], serve: Callable[[Services], str]
) -> None:
    svc, reader, emulator = cloud
    url = serve(svc)
    answer = _announce(url, "catalogue.jsonl", 31).json()
    target = answer["upload"]
    # THEN the bytes go straight to the bucket, at a signed URL of the emulator, for a short while
    assert target["via"] == "signed_url" and target["method"] == "PUT"
    assert target["url"].startswith(f"{emulator}/{svc.settings.bucket}/")
    assert target["headers"]["Content-Type"] == "application/x-ndjson" and target["expires_at"]
    query = urlsplit(target["url"]).query
    if "X-Amz-SignedHeaders" in query:  # S3: the length and type are signed, so another body fails
        assert "content-length%3Bcontent-type%3Bhost" in query
    else:  # GCS: the size range is a signed header the client must send
        assert target["headers"]["x-goog-content-length-range"] == "0,31"
        assert "x-goog-content-length-range" in query
    # WHEN the bytes are PUT there with the headers it named, and nothing else (no API key)
    body = b'{"artist":"A","title":"T","lyrics":"l"}'[:31]
    put = httpx.put(target["url"], content=body, headers=target["headers"])
    assert put.status_code in (200, 201), put.text
    # THEN the object is in the bucket under the key the API chose
    with reader.open(svc.settings.bucket, answer["key"], max_bytes=1000) as stream:
        assert stream.read() == body
    # AND the API refuses to take the bytes itself where the store signs
    direct = httpx.put(f"{url}/uploads", params={"key": answer["key"]}, content=body)
    assert direct.status_code == 409 and direct.json()["code"] == "signed_upload_only"
    # AND the console's policy lets the page reach that origin, and no other
    policy = httpx.get(f"{url}/").headers["content-security-policy"]
    assert f"connect-src 'self' {emulator};" in policy and f"img-src 'self' blob: {emulator};" in policy


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 12), (200, 40, 40)).save(out, format="PNG")
    return out.getvalue()


def _image_row(svc: Services, key: str) -> int:
    with svc.db.connection() as conn:
        row = conn.execute(
            "INSERT INTO images (content_hash, bucket, key, bytes, format, width, height, status)"
            " VALUES (%s, %s, %s, 10, 'png', 16, 12, 'done') RETURNING id",
            (f"h-{key}", svc.settings.bucket, key),
        ).fetchone()
        conn.commit()
    assert row is not None
    return int(row[0])


def test_in_the_cloud_an_image_is_read_at_a_signed_url_and_locally_through_the_api(
    cloud: tuple[Services, Blob, str], services: Services, serve: Callable[[Services], str]
) -> None:
    svc, reader, emulator = cloud
    data = _png()
    reader.put(svc.settings.bucket, "images/red.png", data, content_type="image/png")
    image = _image_row(svc, "images/red.png")
    url = serve(svc)
    # WHEN its content is asked for, the answer is a redirect to a signed GET of the emulator
    resp = httpx.get(f"{url}/images/{image}/content")
    assert resp.status_code == 307 and resp.headers["location"].startswith(f"{emulator}/")
    assert resp.headers["cache-control"] == "no-store"
    # THEN that URL reads the bytes with no credentials
    assert httpx.get(resp.headers["location"]).content == data
    # AND the JSON link the console uses is a signed URL too
    link = httpx.get(f"{url}/images/{image}/link").json()
    assert link["signed"] is True and link["expires_at"] and httpx.get(link["url"]).content == data
    # GIVEN the local store instead: the bytes come through the API and the link names its route
    services.blob.put(services.settings.bucket, "images/red-local.png", data)
    local = _image_row(services, "images/red-local.png")
    local_url = serve(services)
    assert httpx.get(f"{local_url}/images/{local}/content").content == data
    assert httpx.get(f"{local_url}/images/{local}/link").json() == {
        "url": f"images/{local}/content",
        "signed": False,
        "expires_at": None,
    }


# -- the artist page's figures and the operations page's models -----------------------------------


def _ingest(svc: Services, key: str, rows: list[dict[str, Any]]) -> None:
    info = svc.blob.put(svc.settings.bucket, key, "".join(json.dumps(r) + "\n" for r in rows).encode())
    handle_object_created(ObjectCreated(bucket=info.bucket, key=info.key, generation=info.generation), svc)
    while any((run_embed_batch(svc).claimed, run_enrich_batch(svc).claimed, run_analyze_batch(svc).claimed)):
        pass


def test_an_artists_themes_are_counted_per_release_year_as_its_tracks_profiles_say(
    services: Services, serve: Callable[[Services], str]
) -> None:
    lyrics = [
        "ocean waves and the sea at night, the tide is calling me home",
        "love and heartbreak, I miss you, tears fall like rain",
        "dancing at the party all night, city lights and friends",
        "the ocean tide and the love I lost at sea",
        "fire and war, the fight goes on through the night",
    ]
    rows = [
        {"id": f"y{i}", "artist": "Year Band/Two", "title": f"Song {i}", "lyrics": text, "year": year}
        for i, (text, year) in enumerate(zip(lyrics, [1999, 1999, 2004, 2004, None], strict=True))
    ]
    rows[4].pop("year")
    rows.append(
        {"id": "y5", "artist": "Year Band/Two", "title": "Dated", "lyrics": "sun", "release_date": "2010-05-01"}
    )
    _ingest(services, "years.jsonl", rows)
    url = serve(services)
    # WHEN the artist (whose name holds a '/') is asked for
    body = httpx.get(f"{url}/artists/{quote('Year Band/Two', safe='')}").json()
    # THEN its years are those of its analysed tracks, oldest first, and the undated ones are counted
    tracks = httpx.get(f"{url}/tracks", params={"artist": "Year Band/Two", "limit": 100}).json()["items"]
    assert len(tracks) == 6
    years = {"y0": 1999, "y1": 1999, "y2": 2004, "y3": 2004, "y5": 2010}
    assert [y["year"] for y in body["themes_by_year"]] == [1999, 2004, 2010]
    assert body["undated"] == 1
    # AND each year counts, for each top theme, its tracks whose current profile holds it
    top = [t["theme"] for t in body["top_themes"]]
    profiles = {t["id"]: httpx.get(f"{url}/tracks/{t['id']}").json() for t in tracks}
    for entry in body["themes_by_year"]:
        mine = [p for p in profiles.values() if years.get(p["source_id"]) == entry["year"] and p["analyses"]]
        assert entry["tracks"] == len(mine)
        current = [next(a for a in p["analyses"] if a["current"])["profile"]["themes"] for p in mine]
        assert entry["themes"] == {theme: sum(theme in themes for themes in current) for theme in top}


def test_the_model_list_names_retired_models_only_when_asked(
    services: Services, serve: Callable[[Services], str]
) -> None:
    from shared.embedder.providers import add_with_default, openai_spec
    from shared.store.registry import retire_model

    spec = openai_spec(
        name="gone", version="1", dimensions=8, base_url="http://127.0.0.1:9", model=None, price_per_mtok=0
    )
    with services.db.connection() as conn:
        model = add_with_default(conn, services.settings, spec)
        retire_model(conn, model.key)
        conn.commit()
    url = serve(services)
    plain = httpx.get(f"{url}/admin/models").json()["items"]
    every = httpx.get(f"{url}/admin/models", params={"retired": "true"}).json()["items"]
    assert model.key not in [m["key"] for m in plain]
    retired = next(m for m in every if m["key"] == model.key)
    assert retired["state"] == "retired" and retired["embedded"] == 0
    assert httpx.get(f"{url}/admin/models", params={"retired": "yes"}).status_code == 400
