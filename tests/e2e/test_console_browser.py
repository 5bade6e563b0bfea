"""The web console in real headless Chromium against the real local stack (embedded Postgres, the
bucket watcher, the embed and detection workers, the API server): every page loads with no console
error and no failed request, passes axe-core with no critical violation and leaves a screenshot;
search → track → similar; search → artist → nearest artist, its charts drawn from the API's figures;
a CSV uploaded in the page becoming searchable, its trace followed to the end; the models' backfill
progress; a photo's boxes drawn where the API says; a dead letter replayed; a track full of markup
and script shown as text everywhere; the key asked once and never put in a URL."""

from __future__ import annotations

import io
import json
import os
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, LiteralString
from urllib.parse import quote

import psycopg
import pytest
from pydantic import SecretStr

from functions.api.core import Api
from local.runtime import LocalStack
from local.server import ApiServer
from shared.config import Settings, load_settings
from shared.services import Services
from shared.vision.detector import default_model_path
from tests.conftest import _with_db, model_dir_path, need
from tests.e2e.console_browser import Browser, browser_session
from tests.integration.test_detector_real import photo_jpeg

pytestmark = pytest.mark.slow

# Markup and script in every field a user controls; each would set window.__xss if it ever ran.
XSS_SCRIPT = "<script>window.__xss = 'script'</script>"
XSS_IMG = "<img src=x onerror=\"window.__xss = 'img'\">"
XSS_LINK = "javascript:window.__xss = 'link'"
XSS_TRACK = {
    "id": "xss-1",
    "artist": f"Evil {XSS_SCRIPT}",
    "title": f"Tide {XSS_IMG}",
    "lyrics": f'ocean tide rolling waves {XSS_SCRIPT} {XSS_IMG} <a href="{XSS_LINK}">click</a>',
    "homepage": XSS_LINK,
    "note": f"<b>bold</b> {XSS_IMG}",
}
TRACKS = [
    {"id": f"t{i}", "artist": f"Artist {i % 3}", "title": f"Song {i}", "lyrics": text, "year": 2000 + i % 2}
    for i, text in enumerate(
        [
            "ocean waves crash on the shore at night",
            "the sea is calling me home across the water",
            "dancing in the city lights until the morning",
            "fire and rain on the mountain road",
            "waves of the ocean carry my heart away",
            "city streets and neon dreams",
        ]
    )
]
PHOTO_KEY = "images/astronaut <img src=x onerror=window.__xss=1>.jpg"


@dataclass
class Console:
    stack: LocalStack
    settings: Settings

    @property
    def url(self) -> str:
        return self.stack.url

    def api(self, path: str, method: str = "GET", body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        if body is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as resp:
            return json.loads(resp.read())

    def sql(self, query: LiteralString, *params: Any) -> list[tuple[Any, ...]]:
        assert self.stack.services is not None
        with self.stack.services.db.connection() as conn:
            rows = conn.execute(query, params).fetchall()
            conn.commit()
        return rows

    def track_id(self, source_id: str) -> int:
        return int(self.sql("SELECT id FROM tracks WHERE source_id = %s", source_id)[0][0])


def _wait(condition: Any, timeout: float, what: str) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def console(pg_server_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """One local stack for the module, fed through its watched bucket: tracks (one full of markup),
    a photo under images/, and a dead embed job."""
    need(default_model_path() is not None, "the nudenet wheel is not installed")
    name = f"contentfn_console_{os.getpid()}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    settings = load_settings(
        data_dir=tmp_path_factory.mktemp("console") / "state",
        database_url=_with_db(pg_server_url, name),
        model_dir=model_dir_path(),
        api_port=0,
        worker_poll_s=0.1,
        stream_allow_file_urls=True,
        queue_backoff_base_s=0.05,
        queue_backoff_cap_s=0.2,
    )
    stack = LocalStack(settings).start()
    try:
        assert stack.services is not None
        c = Console(stack, settings)
        rows = [*TRACKS, XSS_TRACK]
        stack.services.blob.put(settings.bucket, "tracks.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
        stack.services.blob.put(settings.bucket, PHOTO_KEY, photo_jpeg("astronaut"))
        _wait(lambda: c.sql("SELECT count(*) FROM embeddings")[0][0] == len(rows), 120, "the tracks to be embedded")
        _wait(
            lambda: c.sql("SELECT count(*) FROM images WHERE status = 'done'")[0][0] == 1, 180, "the photo's detections"
        )
        yield c
    finally:
        stack.stop()
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with browser_session() as b:
        yield b


def write_photo_video(path: Path, seconds: float = 2.0, fps: int = 10) -> Path:
    """A short clip whose every frame is the astronaut photo, so each sampled frame has detections."""
    import av
    import numpy as np
    from PIL import Image

    photo = Image.open(io.BytesIO(photo_jpeg("astronaut"))).convert("RGB").resize((256, 256))
    pixels = np.asarray(photo)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 256, 256, "yuv420p"
        for _ in range(int(seconds * fps)):
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _seed_dead_embed(c: Console, source_id: str, error: str) -> int:
    track = c.track_id(source_id)
    content_hash = c.sql("SELECT content_hash FROM tracks WHERE id = %s", track)[0][0]
    row = c.sql(
        "INSERT INTO dead_jobs (job_id, kind, payload, dedup_key, attempts, last_error, retryable, created_at)"
        " VALUES (%s, 'embed', %s::jsonb, %s, 3, %s, true, now()) RETURNING id",
        10_000 + track,
        json.dumps({"track_id": track, "content_hash": content_hash}),
        f"embed:{track}:{content_hash}:replay-test",
        error,
    )
    return int(row[0][0])


def _visit(browser: Browser, url: str, ready: str) -> None:
    browser.open(url)
    browser.settled()
    browser.wait(lambda: browser.js("return document.querySelector(arguments[0]) !== null", ready), 30, ready)
    browser.settled()


def _assert_nothing_ran(browser: Browser) -> None:
    assert browser.js("return window.__xss === undefined"), browser.js("return window.__xss")
    # the markup stayed text: no element it would have made exists in the page
    assert (
        browser.js(
            'return document.querySelectorAll(\'main script, main img[src="x"], main a[href^="javascript"], main b\').length'
        )
        == 0
    )


def test_every_page_loads_clean_passes_axe_and_leaves_a_screenshot(console: Console, browser: Browser) -> None:
    xss = console.track_id("xss-1")
    image = console.sql("SELECT id FROM images")[0][0]
    dead = _seed_dead_embed(console, "t3", f"boom {XSS_IMG}")
    stream = console.api("/streams", "POST", {"url": "rtsp://93.184.216.34/cam1", "fps": 1})["stream"]["id"]
    pages = {
        "search": ("/#/search?q=ocean+waves", "ol.results li"),
        "browse": ("/#/search?sort=artist&k=5", "#browse-status:not(:empty)"),
        "track": (f"/#/track/{xss}", "#similar ol.results"),
        "images": ("/#/images", "#gallery .frame svg rect"),
        "image": (f"/#/image/{image}", ".frame.full svg rect"),
        "streams": ("/#/streams", "#stream-list table"),
        "stream": (f"/#/stream/{stream}", "dl.facts"),
        "operations": ("/#/operations", "#dead-jobs tr td"),
        "artist": (f"/#/artist/{quote('Artist 0', safe='')}", "#quality svg.chart rect.bar"),
        "artist-markup": (f"/#/artist/{quote(XSS_TRACK['artist'], safe='')}", "#nearest"),
        "uploads": ("/#/uploads", "#upload-form input[type=file]"),
    }
    browser.problems()  # drain what earlier tests left
    for name, (path, ready) in pages.items():
        # WHEN each page is opened in the browser
        _visit(browser, f"{console.url}{path}", ready)
        # THEN it logged no console error and no request failed, axe-core finds nothing critical
        assert browser.problems() == [], name
        assert browser.axe_critical() == [], name
        _assert_nothing_ran(browser)
        assert browser.screenshot(name).stat().st_size > 1000
    console.api(f"/dead-jobs/{dead}", "DELETE")
    console.api(f"/streams/{stream}", "DELETE")


def test_search_then_track_then_similar_by_keyboard_and_links(console: Console, browser: Browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _visit(browser, f"{console.url}/#/search", "form[role=search]")
    # GIVEN the skip link, taken from the keyboard: focus moves to the page, which stays as it was
    browser.driver.find_element(By.CSS_SELECTOR, "a.skip").send_keys(Keys.ENTER)
    browser.wait(lambda: browser.js("return document.activeElement.id") == "main", 5, "focus on the page")
    assert browser.js("return document.querySelector('main form[role=search]') !== null")
    # WHEN a query is typed and submitted with Enter
    box = browser.driver.find_element(By.NAME, "q")
    box.send_keys("ocean waves", Keys.ENTER)
    browser.wait(lambda: browser.js("return document.querySelectorAll('ol.results li').length") > 0, 30, "results")
    browser.settled()
    # THEN results with snippet and score, answered within a second of the query
    assert int(browser.js("return document.getElementById('results').dataset.ms")) < 1000
    first = browser.js("return document.querySelector('ol.results li a').textContent")
    expected = console.api("/search?q=ocean+waves&k=10")["results"][0]
    assert first == f"{expected['artist']} — {expected['title']}"
    assert expected["snippet"] in browser.text("ol.results li .snippet")
    # WHEN the first result is followed (keyboard: focus the link, Enter)
    link = browser.driver.find_element(By.CSS_SELECTOR, "ol.results li a")
    link.send_keys(Keys.ENTER)
    browser.wait(lambda: f"#/track/{expected['id']}" in browser.driver.current_url, 10, "the track page")
    _visit(browser, browser.driver.current_url, "#similar ol.results li")
    # THEN the track page shows its lyrics and the similar tracks the API gives
    track = console.api(f"/tracks/{expected['id']}")
    assert browser.text("pre.lyrics") == track["lyrics"]
    similar = console.api(f"/tracks/{expected['id']}/similar?k=10")["results"]
    shown = browser.js(
        "return [...document.querySelectorAll('#similar ol.results li')].map((li) => Number(li.dataset.track))"
    )
    assert shown == [s["id"] for s in similar]
    # AND "more like this" lists the same neighbours
    browser.driver.find_element(By.CSS_SELECTOR, "#similar ol.results li a[aria-label^='More like']").send_keys(
        Keys.ENTER
    )
    browser.wait(lambda: "like=" in browser.driver.current_url, 10, "more like this")
    browser.settled()
    browser.wait(
        lambda: browser.js("return document.querySelectorAll('#results ol.results li').length") > 0, 30, "neighbours"
    )
    assert browser.problems() == []


def _shown_ids(browser: Browser, within: str) -> list[int]:
    return list(
        browser.js(
            "return [...document.querySelectorAll(arguments[0] + ' ol.results > li')].map((li) => Number(li.dataset.track))",
            within,
        )
    )


def test_search_modes_and_filters_match_the_api_and_selected_tracks_get_recommendations(
    console: Console, browser: Browser
) -> None:
    from selenium.webdriver.common.by import By

    # GIVEN the search page opened without a mode: hybrid is the one selected
    _visit(browser, f"{console.url}/#/search", "form[role=search]")
    assert browser.js("return document.querySelector('select[name=mode]').value") == "hybrid"
    # WHEN a keyword search with an artist filter is asked for
    _visit(browser, f"{console.url}/#/search?q=ocean&mode=keyword&artist=Artist+1", "#results p.muted")
    # THEN the page lists what the API answers for the same mode and filter, and says the mode
    expected = console.api("/search?q=ocean&mode=keyword&artist=Artist+1&k=10")["results"]
    assert expected, "the fixture tracks hold an ocean song by Artist 1"
    assert _shown_ids(browser, "#results") == [r["id"] for r in expected]
    assert "keyword" in browser.text("#results p.muted")
    assert browser.js("return document.querySelector('input[name=artist]').value") == "Artist 1"
    # WHEN two hybrid results are selected and recommendations asked for
    _visit(browser, f"{console.url}/#/search?q=ocean+waves", "#results ol.results li")
    picks = browser.driver.find_elements(By.CSS_SELECTOR, "#results input[data-pick]")[:2]
    liked = [int(p.get_attribute("data-pick")) for p in picks]
    for pick in picks:
        pick.click()
    button = browser.driver.find_element(By.ID, "recommend")
    assert button.text == "Recommend from selected (2)"
    button.click()
    browser.wait(
        lambda: browser.js("return document.querySelector('#recommendations ol, #recommendations p')"), 30, "recs"
    )
    # THEN the page shows what POST /recommend answers for those two, neither of them among it
    answer = console.api("/recommend", "POST", {"liked": liked, "k": 10})["results"]
    assert _shown_ids(browser, "#recommendations") == [r["id"] for r in answer]
    assert not set(liked) & set(_shown_ids(browser, "#recommendations"))
    browser.js("document.getElementById('recommendations').scrollIntoView()")
    assert browser.screenshot("recommend").stat().st_size > 1000
    assert browser.problems() == []


def test_browse_without_a_query_pages_through_tracks_with_the_api_cursor_and_shows_profiles(
    console: Console, browser: Browser
) -> None:
    from selenium.webdriver.common.by import By

    # GIVEN the catalogue browsed by title, two at a time
    _visit(browser, f"{console.url}/#/search?sort=title&k=2", "#browse-status:not(:empty)")
    first = console.api("/tracks?sort=title&limit=2")
    assert _shown_ids(browser, "#results") == [t["id"] for t in first["items"]]
    # WHEN "More tracks" is pressed until the list ends
    expected = [t["id"] for t in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = console.api(f"/tracks?sort=title&limit=2&cursor={cursor}")
        expected += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        browser.driver.find_element(By.ID, "more").click()
        want = len(expected)
        browser.wait(lambda want=want: len(_shown_ids(browser, "#results")) == want, 10, "the next page")
    # THEN every track is listed once, in the API's order, and the list says it ended
    assert _shown_ids(browser, "#results") == expected
    assert len(expected) == len(TRACKS) + 1
    assert "end of list" in browser.text("#browse-status")
    assert not browser.driver.find_element(By.ID, "more").is_displayed()
    # AND each track's profile at a glance is the one the API gives (or says it is not analysed yet)
    items = {t["id"]: t for t in console.api("/tracks?sort=title&limit=100")["items"]}
    for li in browser.driver.find_elements(By.CSS_SELECTOR, "#results ol.results > li"):
        item = items[int(li.get_attribute("data-track"))]
        profile = li.find_element(By.CSS_SELECTOR, "p.profile").text
        if item["profile"]:
            assert f"quality {item['profile']['quality']}/10" in profile
            assert item["profile"]["sentiment"] in profile
        else:
            assert "not analysed yet" in profile
    assert browser.problems() == []


def test_track_page_shows_the_whole_profile_the_api_gives(console: Console, browser: Browser) -> None:
    track_id = console.track_id("t0")
    profile = console.api(f"/tracks/{track_id}")
    _visit(browser, f"{console.url}/#/track/{track_id}", "#similar ol.results li")
    # THEN one card per analysis naming its analyzer, confidence, fallback flag and cost
    cards = browser.js("return [...document.querySelectorAll('#analyses article')].map((a) => a.dataset.analyzer)")
    assert cards == [a["analyzer"] for a in profile["analyses"]]
    analyses = browser.text("#analyses")
    for a in profile["analyses"]:
        assert f"{a['confidence']:.2f}" in analyses
        assert f"${a['cost_usd']:.6f}" in analyses
        assert a["profile"]["sentiment"] in analyses
    if not profile["analyses"]:
        assert "Not analysed yet." in analyses
    # AND the provenance names the object it came from, and the stage trail has a row per ledger row
    for o in profile["provenance"]["objects"]:
        assert f"{o['bucket']}/{o['key']}" in browser.text("#provenance")
    assert profile["provenance"]["objects"], "the fixture tracks came through the bucket"
    rows = browser.js("return document.querySelectorAll('#stages tbody tr').length")
    assert rows == len(profile["stages"]) and rows > 0
    features = profile["enrichments"]["features"]
    if features:
        for name in features["data"]:
            assert name in browser.text("#features")
    else:
        assert "Not enriched yet." in browser.text("#features")
    browser.js("document.getElementById('features').scrollIntoView()")
    assert browser.screenshot("track-profile").stat().st_size > 1000
    assert browser.problems() == []


def _drawn_boxes(browser: Browser, frame: str) -> list[dict[str, float]]:
    return list(
        browser.js(
            "const frame = document.querySelector(arguments[0]);"
            "const img = frame.querySelector('img').getBoundingClientRect();"
            "return [...frame.querySelectorAll('svg rect')].map((r) => { const b = r.getBoundingClientRect();"
            " return {x1: b.left - img.left, y1: b.top - img.top, x2: b.right - img.left, y2: b.bottom - img.top,"
            " w: img.width, h: img.height}; });",
            frame,
        )
    )


def test_uploaded_photo_shows_its_boxes_where_the_api_says_in_the_gallery_and_full_size(
    console: Console, browser: Browser
) -> None:
    image_id = console.sql("SELECT id FROM images")[0][0]
    answer = console.api(f"/images/{image_id}/detections")
    width, height = answer["image"]["width"], answer["image"]["height"]
    assert answer["detections"], "the photo has detections"
    for path, frame in [
        ("/#/images", f"#gallery .frame[data-image='{image_id}']"),
        (f"/#/image/{image_id}", ".frame.full"),
    ]:
        _visit(browser, f"{console.url}{path}", f"{frame} svg rect")
        drawn = _drawn_boxes(browser, frame)
        assert len(drawn) == len(answer["detections"])
        scale_x, scale_y = drawn[0]["w"] / width, drawn[0]["h"] / height
        for box, detection in zip(drawn, answer["detections"], strict=True):
            x1, y1, x2, y2 = detection["box"]
            expected = {"x1": x1 * scale_x, "y1": y1 * scale_y, "x2": x2 * scale_x, "y2": y2 * scale_y}
            for edge, value in expected.items():
                assert abs(box[edge] - value) <= 2, (path, edge, box, expected)
        # AND the labels drawn are the API's labels, as text
        labels = browser.js(
            "return [...document.querySelectorAll(arguments[0] + ' svg text')].map((t) => t.textContent)", frame
        )
        assert labels == [f"{d['label']} {d['score']:.2f}" for d in answer["detections"]]
        _assert_nothing_ran(browser)
    # WHEN the gallery is filtered to one class, only its boxes stay; above every score, none
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.select import Select

    label = answer["detections"][0]["label"]
    frame = f"#gallery .frame[data-image='{image_id}']"
    _visit(browser, f"{console.url}/#/images", f"{frame} svg rect")
    Select(browser.driver.find_element(By.NAME, "label")).select_by_value(label)
    browser.driver.find_element(By.NAME, "min_score").send_keys(Keys.ENTER)
    browser.wait(lambda: f"label={label}" in browser.driver.current_url, 10, "the class filter")
    browser.wait(lambda: browser.js("return document.querySelector(arguments[0]) !== null", frame), 30, "the gallery")
    browser.settled()
    drawn = browser.js(
        "return [...document.querySelectorAll(arguments[0] + ' svg g')].map((g) => g.dataset.label)", frame
    )
    assert drawn == [d["label"] for d in answer["detections"] if d["label"] == label]
    top = max(d["score"] for d in answer["detections"])
    _visit(browser, f"{console.url}/#/images?min_score={min(1.0, top + 0.01):.2f}", frame)
    assert browser.js("return document.querySelectorAll(arguments[0] + ' svg rect').length", frame) == 0
    assert browser.problems() == []


def test_a_dead_letter_is_replayed_from_the_operations_page_after_confirming(
    console: Console, browser: Browser
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    dead = _seed_dead_embed(console, "t4", "embedder was down")
    _visit(browser, f"{console.url}/#/operations", "#dead-jobs table")
    row = browser.wait(
        lambda: next(
            (
                r
                for r in browser.driver.find_elements(By.CSS_SELECTOR, "#dead-jobs tbody tr")
                if r.find_element(By.TAG_NAME, "td").text == str(dead)
            ),
            None,
        ),
        20,
        "the dead job's row",
    )
    # WHEN "Show" is pressed from the keyboard, the job's error and payload appear
    row.find_element(By.XPATH, ".//button[text()='Show']").send_keys(Keys.ENTER)
    browser.wait(lambda: "embedder was down" in browser.text("#dead-detail"), 10, "the dead job's detail")
    # AND the page refreshing on its own keeps the keyboard's place
    assert browser.js("return document.activeElement.textContent") == "Show"
    updated = browser.text("#updated")
    browser.wait(lambda: browser.text("#updated") != updated, 15, "a refresh")
    assert browser.js("return document.activeElement.textContent") == "Show"
    # WHEN "Replay" is pressed and the confirmation dismissed, nothing happens
    row = next(
        r
        for r in browser.driver.find_elements(By.CSS_SELECTOR, "#dead-jobs tbody tr")
        if r.find_element(By.TAG_NAME, "td").text == str(dead)
    )
    row.find_element(By.XPATH, ".//button[text()='Replay']").click()
    browser.driver.switch_to.alert.dismiss()
    assert console.sql("SELECT count(*) FROM dead_jobs WHERE id = %s", dead)[0][0] == 1
    # WHEN pressed again and confirmed, the job is queued again and leaves the dead letters
    row = next(
        r
        for r in browser.driver.find_elements(By.CSS_SELECTOR, "#dead-jobs tbody tr")
        if r.find_element(By.TAG_NAME, "td").text == str(dead)
    )
    row.find_element(By.XPATH, ".//button[text()='Replay']").click()
    browser.driver.switch_to.alert.accept()
    browser.wait(lambda: f"Dead job {dead} replayed." in browser.text("#dead-detail"), 10, "the replay notice")
    assert console.sql("SELECT count(*) FROM dead_jobs WHERE id = %s", dead)[0][0] == 0
    browser.wait(
        lambda: (
            str(dead)
            not in [r.text.split(" ")[0] for r in browser.driver.find_elements(By.CSS_SELECTOR, "#dead-jobs tbody tr")]
        ),
        10,
        "the row to go",
    )
    assert browser.problems() == []


def test_a_stream_of_a_local_file_registered_in_the_page_shows_its_frames_and_detections(
    console: Console, browser: Browser, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    video = write_photo_video(tmp_path / "astronaut.mp4")
    _visit(browser, f"{console.url}/#/streams", "#stream-list")
    # WHEN a local file is registered at 2 frames per second from the form
    browser.driver.find_element(By.NAME, "url").send_keys(video.as_uri())
    fps = browser.driver.find_element(By.NAME, "fps")
    fps.clear()
    fps.send_keys("2", Keys.ENTER)
    stream = browser.wait(
        lambda: next((r for r in console.api("/streams")["items"] if r["url"] == video.as_uri()), None),
        10,
        "the stream",
    )
    _wait(lambda: console.api(f"/streams/{stream['id']}")["stream"]["status"] == "ended", 120, "the stream to end")
    frames = console.api(f"/streams/{stream['id']}/detections")["items"]
    # frames with nothing found leave no row (the decoder's last frame may be one of them)
    assert len(frames) >= 2 and all(f["detections"] for f in frames)
    # THEN the list shows it ended, and its page the latest frame's detections and one bar per frame
    _visit(browser, f"{console.url}/#/streams", "#stream-list table")
    cells = browser.js(
        "return [...document.querySelectorAll('#stream-list tbody tr')].map((tr) => [...tr.cells].map((td) => td.textContent))"
    )
    row = next(c for c in cells if c[0] == str(stream["id"]))
    assert row[1:4] == [
        video.as_uri(),
        "ended",
        str(console.api(f"/streams/{stream['id']}")["stream"]["frames_done"]),
    ], row
    _visit(browser, f"{console.url}/#/stream/{stream['id']}", "svg.chart rect.bar")
    assert browser.js("return document.querySelectorAll('svg.chart rect.bar').length") == len(frames)
    latest = [d["label"] for d in frames[-1]["detections"]]
    shown = browser.js(
        "return [...document.querySelectorAll('main table tbody tr td:first-child')].map((td) => td.textContent)"
    )
    assert shown == latest
    browser.screenshot("stream-file")
    assert browser.problems() == []


def _bars(browser: Browser, selector: str) -> list[tuple[float, float]]:
    return [
        (float(x), float(y))
        for x, y in browser.js(
            "return [...document.querySelectorAll(arguments[0])].map((r) => [r.dataset.x, r.dataset.y])", selector
        )
    ]


def test_an_artist_page_reached_from_search_draws_the_apis_figures_and_links_its_nearest_artists(
    console: Console, browser: Browser
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    # GIVEN a search, the first result's artist link followed from the keyboard
    _visit(browser, f"{console.url}/#/search?q=ocean+waves", "ol.results li a.artist-link")
    first = console.api("/search?q=ocean+waves&k=10")["results"][0]
    browser.driver.find_element(By.CSS_SELECTOR, "ol.results li a.artist-link").send_keys(Keys.ENTER)
    browser.wait(lambda: "#/artist/" in browser.driver.current_url, 10, "the artist page")
    browser.settled()
    browser.wait(lambda: browser.js("return document.querySelector('#nearest') !== null"), 30, "the artist page")
    artist = console.api(f"/artists/{quote(first['artist'], safe='')}")
    assert browser.js("return document.querySelector('main h1').textContent") == artist["artist"]
    # THEN the quality chart has one bar per score, as tall as the API's count
    assert _bars(browser, "#quality svg.chart rect.bar") == [(float(q), float(n)) for q, n in artist["quality"].items()]
    # AND the sentiment mix and the top themes are the API's, label by label
    drawn = dict(
        browser.js(
            "return [...document.querySelectorAll('#sentiment svg g')].map((g) => [g.dataset.label, Number(g.dataset.y)])"
        )
    )
    assert drawn == artist["sentiment"]
    themes = browser.js(
        "return [...document.querySelectorAll('#themes svg g')].map((g) => [g.dataset.label, Number(g.dataset.y)])"
    )
    assert themes == [[t["theme"], t["tracks"]] for t in artist["top_themes"]]
    # AND each of the first top themes has its count per release year drawn
    years = artist["themes_by_year"]
    assert [y["year"] for y in years] == [2000, 2001]
    for t in artist["top_themes"][:4]:
        selector = f"#themes-years .theme-years[data-theme='{t['theme']}'] rect.bar"
        assert _bars(browser, selector) == [(float(y["year"]), float(y["themes"][t["theme"]])) for y in years]
    # AND the nearest artists are listed in the API's order, each a link to its page
    nearest = browser.js("return [...document.querySelectorAll('#nearest li')].map((li) => li.dataset.artist)")
    assert nearest == [a["artist"] for a in artist["nearest_artists"]] and nearest
    assert browser.screenshot("artist-charts").stat().st_size > 1000
    assert browser.problems() == []
    target = next(a for a in artist["nearest_artists"] if a["artist"].startswith("Artist"))["artist"]
    link = next(
        li.find_element(By.TAG_NAME, "a")
        for li in browser.driver.find_elements(By.CSS_SELECTOR, "#nearest li")
        if li.get_attribute("data-artist") == target
    )
    link.send_keys(Keys.ENTER)
    browser.wait(
        lambda: browser.js("return document.querySelector('main h1')?.textContent") == target, 30, "the nearest artist"
    )
    browser.settled()
    # AND the track page's artist name leads to the same page
    track = console.track_id("t1")
    _visit(browser, f"{console.url}/#/track/{track}", "#artist-link")
    browser.driver.find_element(By.ID, "artist-link").send_keys(Keys.ENTER)
    browser.wait(
        lambda: browser.js("return document.querySelector('main h1')?.textContent") == "Artist 1", 30, "Artist 1"
    )
    browser.settled()
    assert browser.problems() == []


UPLOAD_NAME = "new songs <img src=x onerror=window.__xss=1>.csv"
UPLOAD_CSV = (
    "id,artist,title,lyrics\n"
    "up-1,Upload Band,Quokka,zephyr quokka dances on the glacier\n"
    "up-2,Upload Band,Glacier,a quokka under the zephyr sky\n"
)


def test_a_csv_uploaded_in_the_page_becomes_searchable_and_its_trace_reaches_done(
    console: Console, browser: Browser, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    path = tmp_path / UPLOAD_NAME
    path.write_text(UPLOAD_CSV)
    _visit(browser, f"{console.url}/#/uploads", "#upload-form input[type=file]")
    browser.problems()
    # WHEN a CSV is chosen and the upload started from the keyboard
    browser.driver.find_element(By.CSS_SELECTOR, "#upload-form input[type=file]").send_keys(str(path))
    button = browser.driver.find_element(By.CSS_SELECTOR, "#upload-form button[type=submit]")
    browser.wait(lambda: button.is_enabled(), 5, "the upload button")
    button.send_keys(Keys.ENTER)
    # THEN the bytes go (the bar reaches its end) and the trace is followed until every track is through
    browser.wait(lambda: browser.js("return document.getElementById('upload-progress').value") == 100, 30, "the upload")
    key = browser.wait(lambda: browser.js("return document.querySelector('main > div').dataset.key"), 10, "the key")
    assert key.startswith(console.settings.upload_prefix) and key.endswith(f"/{UPLOAD_NAME}")
    browser.wait(
        lambda: browser.js("return document.getElementById('upload-trace').dataset.state") == "settled",
        240,
        "the trace to settle",
    )
    # AND the file lies in the watched bucket, its trace says every stage of both tracks is done
    assert (console.settings.buckets_dir / console.settings.bucket / key).read_text() == UPLOAD_CSV
    trace = console.api(f"/objects?key={quote(key, safe='')}")
    assert trace["ingest"]["rows_ok"] == 2 and len(trace["items"]) == 2
    assert all(st["state"] == "done" for item in trace["items"] for st in item["stages"].values()), trace
    shown = browser.js(
        "return [...document.querySelectorAll('#trace-items li')].map((li) => Number(li.dataset.subject))"
    )
    assert shown == [item["id"] for item in trace["items"]]
    assert "every track is done or dead" in browser.text("#upload-status") and UPLOAD_NAME in browser.text("main")
    assert "Ingest: ok · 2 rows ok, 0 bad" in browser.text("#upload-trace") and "null" not in browser.text(
        "#upload-trace"
    )
    _assert_nothing_ran(browser)
    assert browser.screenshot("uploads-done").stat().st_size > 1000
    # AND its tracks are found by search
    hits = console.api("/search?q=zephyr+quokka&k=5&mode=keyword")["results"]
    assert {h["title"] for h in hits} >= {"Quokka", "Glacier"}
    # The page polled the trace before ingest recorded the file: those 404s (and Chrome's echo of
    # them in the console) are the only problems it may have logged.
    unexpected = [
        p
        for p in browser.problems()
        if not (
            ("404" in p and "/objects?key=" in p) or (p.startswith("console:") and "/objects?key=" in p and "404" in p)
        )
    ]
    assert unexpected == []


def test_the_operations_page_shows_each_models_state_and_backfill_progress(console: Console, browser: Browser) -> None:
    # GIVEN a registry with models in it: adding one registers the built-in model as the active one
    # first; the added one (an endpoint nobody answers) is retired at once, so nothing backfills with it
    added = console.api(
        "/admin/models",
        "POST",
        {"provider": "openai", "name": "unreachable", "dimensions": 8, "base_url": "http://127.0.0.1:9/v1"},
    )
    console.api("/admin/models/retire", "POST", {"key": added["key"]})
    models = console.api("/admin/models?retired=true")["items"]
    assert {m["state"] for m in models} == {"active", "retired"}
    active = next(m for m in models if m["state"] == "active")
    assert active["percent"] == 100.0, active
    _visit(browser, f"{console.url}/#/operations", "#models .model progress")
    shown = browser.js(
        "return [...document.querySelectorAll('#models .model')].map((m) => [m.dataset.model, m.dataset.state,"
        " Number(m.querySelector('progress').value), m.textContent])"
    )
    assert [(k, st) for k, st, _, _ in shown] == [(m["key"], m["state"]) for m in models]
    for (_, _, value, text), m in zip(shown, models, strict=True):
        assert value == pytest.approx(m["percent"] if m["state"] != "retired" else 0)
        assert f"{m['embedded']} of {m['tracks']} tracks embedded" in text
    assert browser.axe_critical() == []
    assert browser.problems() == []


def test_a_track_full_of_markup_is_shown_as_text_on_every_page_and_nothing_runs(
    console: Console, browser: Browser
) -> None:
    xss = console.track_id("xss-1")
    # the search page (title, artist and snippet), the track page (every field), and the similar lists
    _visit(browser, f"{console.url}/#/search?q=ocean+tide+rolling+waves", "ol.results li")
    assert f"Evil {XSS_SCRIPT} — Tide {XSS_IMG}" in browser.text("ol.results")
    _assert_nothing_ran(browser)
    _visit(browser, f"{console.url}/#/track/{xss}", "#similar ol.results li")
    page = browser.text("main")
    for shown in (XSS_SCRIPT, XSS_IMG, XSS_LINK, "<b>bold</b>"):
        assert shown in page
    assert browser.driver.title == f"Evil {XSS_SCRIPT} — Tide {XSS_IMG} · contentfn"
    _assert_nothing_ran(browser)
    other = console.track_id("t0")
    _visit(browser, f"{console.url}/#/track/{other}", "#similar ol.results li")
    if str(xss) in browser.js("return [...document.querySelectorAll('#similar li')].map((li) => li.dataset.track)"):
        assert f"Evil {XSS_SCRIPT}" in browser.text("#similar")
    _assert_nothing_ran(browser)
    # the artist page of the markup artist, and a nearest artist's link to it
    _visit(browser, f"{console.url}/#/artist/{quote(XSS_TRACK['artist'], safe='')}", "#nearest")
    assert browser.js("return document.querySelector('main h1').textContent") == XSS_TRACK["artist"]
    assert browser.driver.title == f"{XSS_TRACK['artist']} · contentfn"
    _assert_nothing_ran(browser)
    # the photo whose file name holds markup, in the gallery
    _visit(browser, f"{console.url}/#/images", "#gallery figcaption a")
    assert PHOTO_KEY in browser.text("#gallery")
    _assert_nothing_ran(browser)
    assert browser.problems() == []


def test_a_keyed_api_asks_for_the_key_once_and_sends_it_as_a_header_never_in_a_url(
    console: Console, browser: Browser, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    keyed = console.settings.model_copy(update={"api_key": SecretStr("s3cret-console"), "api_port": 0})
    services = Services.from_settings(keyed, migrate=False)
    server = ApiServer(Api(services), "127.0.0.1", 0)
    server.start()
    try:
        url = f"http://127.0.0.1:{server.port}"
        browser.open(f"{url}/#/operations")
        browser.settled()
        # GIVEN a keyed API, the page asks for the key before anything else
        field = browser.wait(lambda: browser.driver.find_element(By.NAME, "key"), 10, "the key field")
        assert browser.js("return document.activeElement.name") == "key"
        # WHEN a wrong key is entered, the page says it was refused and asks again
        field.send_keys("wrong-key", Keys.ENTER)
        browser.wait(lambda: "refused that key" in browser.text("main"), 10, "the refusal")
        field = browser.driver.find_element(By.NAME, "key")
        assert browser.js("return sessionStorage.getItem('contentfn.apiKey')") is None
        browser.driver.get_log("browser")  # the 401 of the wrong key is the point here, not a page error
        field.send_keys("s3cret-console", Keys.ENTER)
        _visit(browser, f"{url}/#/operations", "#stats dl")
        # THEN the key stays in this tab's session storage, and no request carried it in its URL
        assert browser.js("return sessionStorage.getItem('contentfn.apiKey')") == "s3cret-console"
        urls = [
            json.loads(e["message"])["message"]["params"]["request"]["url"]
            for e in browser.driver.get_log("performance")
            if json.loads(e["message"])["message"]["method"] == "Network.requestWillBeSent"
        ]
        assert any("/stats" in u for u in urls) and not any("s3cret" in u for u in urls)
        # AND another page needs no second asking
        _visit(browser, f"{url}/#/streams", "#stream-list")
        assert browser.driver.find_elements(By.NAME, "key") == []
        browser.js("sessionStorage.clear()")
        browser.driver.get_log("browser")  # the 401s a test of the key field provoked are not page errors
    finally:
        server.stop()
        services.close()
