"""The observability acceptance check, shared by its test and ``make bench-obs``: a real Prometheus
scrapes the local stack (the API's /metrics and the detection worker's /metrics) while the stack
ingests a track file, analyses tracks (with a real LLM call over HTTP) and detects an image; then
every PromQL expression of every dashboard panel and the signal of every alert rule is evaluated
through Prometheus's HTTP API, and each must return data.
"""

from __future__ import annotations

import io
import ipaddress
import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image
from pydantic import SecretStr

from local.runtime import LocalStack
from shared.config import Settings
from tests.emulators import free_port
from tests.servers.llm_server import LlmServer

__all__ = [
    "ALERTS",
    "DASHBOARD",
    "ObsReport",
    "alert_rules",
    "alert_signal",
    "dashboard_exprs",
    "prometheus_binary",
    "run_obs_check",
]

REPO = Path(__file__).resolve().parents[1]
DASHBOARD = REPO / "infra" / "observability" / "grafana" / "contentfn.json"
ALERTS = REPO / "infra" / "observability" / "prometheus" / "alerts.yml"
_COMPARISON = re.compile(r"^(?P<signal>.+?)\s*(?:>=|<=|==|!=|>|<)\s*[-+0-9.eE]+\s*$", re.DOTALL)
_TRACKS = 12


@dataclass
class ObsReport:
    metric_families: list[str]
    panels: int
    panels_with_data: int
    alerts_evaluated: int
    empty_panels: list[str] = field(default_factory=list)
    empty_alerts: list[str] = field(default_factory=list)
    rule_health: dict[str, str] = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"obs metric_families={len(self.metric_families)} panels={self.panels} "
            f"panels_with_data={self.panels_with_data} alerts_evaluated={self.alerts_evaluated}"
        )


def dashboard_exprs(path: Path = DASHBOARD) -> list[tuple[str, str]]:
    """(panel title, expression) for every target of every panel, rows' panels included."""
    found: list[tuple[str, str]] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            walk(panel.get("panels", []))
            for target in panel.get("targets", []):
                found.append((panel["title"], target["expr"]))

    walk(json.loads(path.read_text())["panels"])
    return found


def alert_rules(path: Path = ALERTS) -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def alert_signal(expr: str) -> str:
    """The quantity an alert compares with its threshold (``<signal> <op> <number>``)."""
    m = _COMPARISON.match(expr.strip())
    if m is None:
        raise ValueError(f"alert expression is not '<signal> <comparison> <threshold>': {expr}")
    return m.group("signal")


def prometheus_binary() -> str | None:
    return shutil.which("prometheus") or ("/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)


@contextmanager
def prometheus(targets: dict[str, str], rules: Path, workdir: Path) -> Iterator[str]:
    """A real Prometheus scraping ``targets`` (job → host:port) every second, with ``rules`` loaded."""
    binary = prometheus_binary()
    assert binary is not None, "prometheus is not installed (Debian package 'prometheus')"
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "900ms"},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {"job_name": job, "metrics_path": "/metrics", "static_configs": [{"targets": [target]}]}
            for job, target in targets.items()
        ],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = (workdir / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("prometheus did not start: " + (workdir / "prometheus.log").read_text()[-2000:])
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def _get(url: str, timeout: float = 10) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


def query(prom: str, expr: str) -> list[Any]:
    body = _get(f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def _api(url: str, method: str = "GET", body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:  # a 404 is part of the traffic: routes by status
        return {"status": exc.code}


def _photo() -> bytes:
    from skimage import data as skdata

    buf = io.BytesIO()
    Image.fromarray(np.asarray(skdata.astronaut())).convert("RGB").save(buf, "JPEG", quality=92)
    return buf.getvalue()


def _tracks_file() -> bytes:
    rows = [
        {
            "id": f"obs{i}",
            "artist": f"Artist {i % 3}",
            "title": f"Song {i}",
            "lyrics": f"love and light in verse {i}\nwe dance all night, the sun will shine\nchorus {i}",
        }
        for i in range(_TRACKS)
    ]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _wait(what: str, ready: Any, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _drive(stack: LocalStack) -> None:
    """Upload a track file and a photo, let every stage run, then use the API as a client would."""
    assert stack.services is not None
    settings, db = stack.settings, stack.services.db
    folder = settings.buckets_dir / settings.bucket
    (folder / "incoming").mkdir(parents=True, exist_ok=True)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "incoming" / "obs.jsonl").write_bytes(_tracks_file())
    (folder / "images" / "astronaut.jpg").write_bytes(_photo())

    def settled() -> bool:
        with db.connection() as conn:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM tracks), (SELECT count(*) FROM jobs),"
                " (SELECT count(*) FROM images WHERE status = 'done'), (SELECT count(*) FROM analyses)"
            ).fetchone()
            conn.commit()
        return bool(row and row[0] == _TRACKS and row[1] == 0 and row[2] == 1 and row[3] >= _TRACKS)

    _wait("the upload to be ingested, embedded, enriched, analysed and detected", settled)
    url = stack.url
    for _ in range(2):  # the second search hits the query cache; the second analysis the LLM's cache
        _api(f"{url}/search?q=love+and+light&k=3")
        _api(f"{url}/analyze", "POST", {"text": "dark rain falls on the empty road", "mode": "llm"})
    _api(f"{url}/health")
    _api(f"{url}/tracks/1")
    _api(f"{url}/tracks/999999")  # a 404: requests by route and status
    _api(f"{url}/stats")


def run_obs_check(settings: Settings, workdir: Path | None = None) -> ObsReport:
    """Run the scenario against a local stack on ``settings`` (a fresh database) and report."""
    own = workdir is None
    work = Path(tempfile.mkdtemp(prefix="contentfn-obs-")) if workdir is None else workdir
    work.mkdir(parents=True, exist_ok=True)
    try:
        with LlmServer() as llm:
            local = settings.model_copy(
                update={
                    "api_port": 0,
                    "local_gpu_metrics_port": 0,
                    "worker_poll_s": 0.1,
                    "llm_base_url": llm.url,
                    "llm_api_key": SecretStr("test-key"),
                    "llm_model": "obs-model",
                    "http_allow_networks": (ipaddress.ip_network("127.0.0.1/32"),),
                }
            )
            with LocalStack(local) as stack:
                gpu = stack.gpu_metrics_url
                assert gpu is not None, "the detection worker serves no /metrics (is the detector model installed?)"
                targets = {
                    "contentfn-api": stack.url.removeprefix("http://"),
                    "contentfn-gpu": urllib.parse.urlsplit(gpu).netloc,
                }
                with prometheus(targets, ALERTS, work) as prom:
                    # Prometheus applies its targets a few seconds after start: scrape before work.
                    _wait("the first scrapes", lambda: _scrapes(prom, "5m") >= len(targets), 60)
                    _drive(stack)
                    # rate() needs two samples of each series after the traffic: with a 1 s interval,
                    # a scrape that began over a second after the work ended had one before it.
                    ended = time.time()
                    _wait("two scrapes after the work", lambda: _last_scrape(prom) > ended + 1.05, 30)
                    return _evaluate(prom)
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)


def _last_scrape(prom: str) -> float:
    """When the target scraped least recently was last scraped (Unix seconds)."""
    return min((float(r["value"][1]) for r in query(prom, "timestamp(up)")), default=0.0)


def _scrapes(prom: str, window: str) -> int:
    """Successful scrapes over ``window``, all targets together."""
    return sum(int(float(r["value"][1])) for r in query(prom, f"sum_over_time(up[{window}])"))


def _evaluate(prom: str) -> ObsReport:
    metadata = _get(f"{prom}/api/v1/metadata")["data"]
    families = sorted(name for name in metadata if name.startswith("contentfn_"))
    exprs = dashboard_exprs()
    titles = list(dict.fromkeys(title for title, _ in exprs))
    empty_panels = [f"{title}: {expr}" for title, expr in exprs if not query(prom, expr)]
    # A panel has data when every one of its expressions has.
    empty_titles = {entry.split(": ", 1)[0] for entry in empty_panels}
    if empty_panels:  # what each target's scrapes looked like, for the failure message
        for job in query(prom, "count_over_time(up[5m])") + query(prom, "scrape_duration_seconds"):
            empty_panels.append(f"(scrapes) {job['metric']} {job['value'][1]}")
    rules = alert_rules()
    empty_alerts = []
    for rule in rules:
        query(prom, rule["expr"])  # the whole rule is valid PromQL and evaluates
        if not query(prom, alert_signal(rule["expr"])):
            empty_alerts.append(f"{rule['alert']}: {rule['expr']}")
    groups = _get(f"{prom}/api/v1/rules")["data"]["groups"]
    health = {r["name"]: r["health"] for g in groups for r in g["rules"]}
    return ObsReport(
        metric_families=families,
        panels=len(titles),
        panels_with_data=len(titles) - len(empty_titles),
        alerts_evaluated=len(rules) - len(empty_alerts),
        empty_panels=empty_panels,
        empty_alerts=empty_alerts,
        rule_health=health,
    )
