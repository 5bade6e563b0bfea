"""The router's cost/quality curve on generated labelled data: ``python -m tests.bench.eval_sweep``.

Generated tracks (``local.datagen``) are embedded by the real model; the first half is analysed by
the LLM test server (its answers train the distilled predictor, as in production), and the second
half is labelled and evaluated with ``contentfn eval analyzers`` and ``contentfn eval sweep``.

The labels: quality and sentiment are the test server's own deterministic judgement
(``label_for``), so its LLM scores an error of 0 by construction and the curve shows what each
threshold costs against how close it comes to that judgement; themes are the generator's theme
name, which the rule-based theme keywords aim at and the test server's word counts do not.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from click.testing import CliRunner

from local.cli import main
from local.datagen import generate_tracks
from shared.intel.context import build_intel
from shared.models import TrackIn
from shared.services import Services
from shared.store.tracks import TrackStore, embedding_text, upsert_tracks
from tests.bench._common import DEFAULT_SEED, BenchDatabase, bench_settings, console
from tests.servers.llm_server import LlmServer, label_for


def _load(svc: Services, rows: list[dict[str, object]]) -> list[int]:
    tracks = [
        TrackIn(
            artist=str(r["artist"]),
            title=str(r["title"]),
            lyrics=str(r["lyrics"]),
            source="datagen",
            source_id=str(r["id"]),
        )
        for r in rows
    ]
    with svc.db.connection() as conn:
        ids = sorted(c.id for c in upsert_tracks(conn, tracks).content_changed)
        found = conn.execute(
            "SELECT id, title, lyrics, content_hash FROM tracks WHERE id = ANY(%s) ORDER BY id", (ids,)
        ).fetchall()
        conn.commit()
    for start in range(0, len(found), 64):
        chunk = found[start : start + 64]
        vectors = svc.embedder.embed([embedding_text(r[1], r[2]) for r in chunk])
        with svc.db.connection() as conn:
            TrackStore(conn).write_embeddings(
                svc.embedder.model_key, [r[0] for r in chunk], [r[3] for r in chunk], vectors
            )
            conn.commit()
    return [int(r[0]) for r in found]


def main_sweep() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="data generator seed")
    parser.add_argument("--train", type=int, default=300, help="tracks the LLM labels for the distilled predictor")
    parser.add_argument("--eval", dest="evaluate", type=int, default=300, help="labelled tracks evaluated")
    parser.add_argument("--out", type=Path, default=Path("eval-sweep"), help="folder for the label file and charts")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = list(generate_tracks(args.train + args.evaluate, seed=args.seed))
    with tempfile.TemporaryDirectory() as tmp, BenchDatabase(Path(tmp)) as pg, LlmServer() as llm:
        url = pg.fresh("evalsweep")
        settings = bench_settings(
            Path(tmp) / "state",
            url,
            llm_base_url=llm.url,
            llm_api_key="test-key",
            llm_model="test-model",
            http_allow_networks=["127.0.0.1/32"],
            distilled_min_labels=min(150, args.train),
        )
        svc = Services.from_settings(settings)
        ids = _load(svc, rows)
        console.print(f"{len(ids)} tracks embedded")
        intel = build_intel(svc)
        with svc.db.connection() as conn:
            train = conn.execute(
                "SELECT id, artist, title, lyrics FROM tracks WHERE source_id = ANY(%s)",
                ([str(r["id"]) for r in rows[: args.train]],),
            ).fetchall()
            conn.commit()
        for tid, artist, title, lyrics in train:
            intel.router.analyze(artist=artist, title=title, lyrics=lyrics, track_id=tid, mode="llm")
        model = intel.router.refit()
        console.print(
            f"distilled predictor: {model.labels if model else 0} labels, held-out MAE {model.mae_quality if model else float('nan'):.3f}"
        )
        labels = args.out / "labels.jsonl"
        with labels.open("w") as f:
            for r in rows[args.train :]:
                truth = label_for(str(r["lyrics"]))
                doc = {
                    "source": "datagen",
                    "source_id": r["id"],
                    "quality": truth["quality"],
                    "sentiment": truth["sentiment"],
                    "themes": [r["theme"]],
                }
                f.write(json.dumps(doc) + "\n")
        intel.close()
        svc.close()
        env = {
            "CONTENTFN_DATABASE_URL": url,
            "CONTENTFN_DATA_DIR": str(Path(tmp) / "state"),
            "CONTENTFN_MODEL_DIR": str(settings.resolved_model_dir),
            "CONTENTFN_LLM_BASE_URL": llm.url,
            "CONTENTFN_LLM_API_KEY": "test-key",
            "CONTENTFN_LLM_MODEL": "test-model",
            "CONTENTFN_HTTP_ALLOW_NETWORKS": '["127.0.0.1/32"]',
            "CONTENTFN_DISTILLED_MIN_LABELS": str(min(150, args.train)),
        }
        runner = CliRunner()
        for command in (
            ["eval", "analyzers", "--labels", str(labels), "--chart", str(args.out / "analyzers.svg")],
            ["eval", "sweep", "--labels", str(labels), "--chart", str(args.out / "sweep.svg")],
            ["eval", "sweep", "--labels", str(labels), "--json"],
        ):
            result = runner.invoke(main, command, env={**os.environ, **env}, terminal_width=200)
            print(result.output)
            if result.exit_code != 0:
                raise SystemExit(result.exit_code)


if __name__ == "__main__":
    main_sweep()
