"""``contentfn export --format parquet`` without pyarrow: a clear error naming how to install it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from local.cli import main


def test_parquet_export_without_pyarrow_says_how_to_install_it_and_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN pyarrow cannot be imported (a None entry in sys.modules makes `import pyarrow` fail)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    out = tmp_path / "tracks.parquet"
    # WHEN a Parquet export is asked for
    result = CliRunner().invoke(main, ["export", "--format", "parquet", "--out", str(out)])
    # THEN it fails with one line naming the extra to install, before touching the database
    assert result.exit_code == 1 and result.exception is not None and isinstance(result.exception, SystemExit)
    assert "pip install 'contentfn[export]'" in result.output and "Traceback" not in result.output
    assert not out.exists()
