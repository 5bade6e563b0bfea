"""``contentfn models …`` and ``contentfn status`` over real PostgreSQL and the real small model:
the int8 variant added as a shadow beside fp32, backfilled, activated, rolled back, retired."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from functions.embed.backfill import backfill_step
from local.cli import main
from shared.models import TrackIn
from shared.services import Services
from shared.store.tracks import upsert_tracks

THEMES = ["rivers and rain", "city lights at night", "desert highways", "winter snow", "ocean waves"]


def _env(services: Services, tmp_path: Path) -> dict[str, str]:
    s = services.settings
    assert s.database_url is not None
    return {
        "CONTENTFN_DATABASE_URL": s.database_url.get_secret_value(),
        "CONTENTFN_DATA_DIR": str(tmp_path / "cli-state"),
        "CONTENTFN_MODEL_DIR": str(s.resolved_model_dir),
    }


def test_the_int8_model_is_added_backfilled_activated_rolled_back_and_retired(
    services: Services, tmp_path: Path
) -> None:
    rows = [
        TrackIn(artist="a", title=f"t{i}", lyrics=f"a song about {THEMES[i]}", source="cli", source_id=str(i))
        for i in range(5)
    ]
    with services.db.connection() as conn:
        upsert_tracks(conn, rows)
        conn.commit()
    runner, env = CliRunner(), _env(services, tmp_path)
    fp32_key = services.embedder.model_key

    added = runner.invoke(main, ["models", "add", "--builtin", "int8"], env=env)
    assert added.exit_code == 0, added.output
    int8_key = added.output.split(":")[0].strip()
    assert int8_key.startswith("all-MiniLM-L6-v2@onnx-int8-") and added.output.strip().endswith("shadow")
    listed = runner.invoke(main, ["models", "list"], env=env, terminal_width=200)
    assert f"{fp32_key}  active" in listed.output and f"{int8_key}  shadow" in listed.output, listed.output
    assert "embedded 0/5 (0.0%)  index missing  backfilling" in listed.output

    refused = runner.invoke(main, ["models", "activate", int8_key], env=env, terminal_width=200)
    assert refused.exit_code == 1
    assert "5 of 5 tracks have no current vector yet" in refused.output
    assert "HNSW index is missing" in refused.output

    while backfill_step(services) is not None:
        pass
    status = runner.invoke(main, ["status"], env=env, terminal_width=200)
    assert status.exit_code == 0 and "embedded 5/5 (100.0%)  index valid" in status.output, status.output

    activated = runner.invoke(main, ["models", "activate", int8_key], env=env)
    assert activated.exit_code == 0, activated.output
    assert f"search now reads {int8_key}" in activated.output
    assert services.search_model_key() == int8_key

    back = runner.invoke(main, ["models", "rollback"], env=env)
    assert back.exit_code == 0 and f"search now reads {fp32_key}" in back.output, back.output

    retired = runner.invoke(main, ["models", "retire", int8_key], env=env)
    assert retired.exit_code == 0 and "retired, 5 vectors deleted" in retired.output, retired.output
    still = runner.invoke(main, ["models", "retire", fp32_key], env=env)
    assert still.exit_code == 1 and "is active" in still.output


def test_add_needs_exactly_one_provider_and_openai_needs_name_and_dimension(services: Services, tmp_path: Path) -> None:
    runner, env = CliRunner(), _env(services, tmp_path)
    neither = runner.invoke(main, ["models", "add"], env=env)
    assert neither.exit_code == 2 and "--builtin VARIANT or --openai URL" in neither.output
    no_dims = runner.invoke(main, ["models", "add", "--openai", "http://127.0.0.1:9/v1", "--name", "e"], env=env)
    assert no_dims.exit_code == 2 and "--openai needs --name and --dims" in no_dims.output
