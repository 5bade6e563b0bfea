"""A process that only answers API requests embeds each query on one thread; every other process
keeps onnxruntime's choice (batches), and an explicit ``embed_threads`` always wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.roles import RoleProcess
from shared.config import load_settings
from shared.embedder import load_embedder
from shared.platform.runtime import FunctionRuntime
from tests.embedder_fixtures import build_tiny_model


@pytest.fixture(autouse=True)
def _no_thread_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONTENTFN_EMBED_THREADS", raising=False)


def test_automatic_threads_become_one_when_serving_http_and_an_explicit_count_is_kept(tmp_path: Path) -> None:
    auto = load_settings(data_dir=tmp_path)
    assert auto.embed_threads == 0
    assert auto.for_serving_http().embed_threads == 1
    assert load_settings(data_dir=tmp_path, embed_threads=3).for_serving_http().embed_threads == 3


def test_the_api_function_runtime_serves_with_one_thread_and_a_job_function_keeps_automatic(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CONTENTFN_DATA_DIR", str(tmp_path))
    assert FunctionRuntime("api", "local", serves_http=True).settings.embed_threads == 1
    assert FunctionRuntime("embed", "local").settings.embed_threads == 0


def test_an_api_only_role_process_serves_with_one_thread_and_api_beside_embed_does_not(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert RoleProcess(settings, ["api"]).settings.embed_threads == 1
    assert RoleProcess(settings, ["api", "embed"]).settings.embed_threads == 0
    assert RoleProcess(settings, ["embed"]).settings.embed_threads == 0


def test_the_serving_settings_open_a_session_with_one_intra_op_thread(tmp_path: Path) -> None:
    folder = tmp_path / "tiny-model"
    build_tiny_model(folder, max_tokens=8)
    settings = load_settings(data_dir=tmp_path, model_dir=folder).for_serving_http()
    session = load_embedder(settings)._session  # type: ignore[attr-defined]
    assert session.get_session_options().intra_op_num_threads == 1
