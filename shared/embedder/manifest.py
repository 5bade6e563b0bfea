"""The model manifest: what ``make model`` produced, and proof that the files on disk are those files.

The manifest is the contract between the build step (torch, run once) and the runtime (onnxruntime
only). The runtime never trusts a file it cannot hash back to the manifest, because a half-written or
swapped ``model.onnx`` would otherwise produce plausible but wrong vectors that get stored forever.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.errors import ModelNotReady

__all__ = ["MANIFEST_NAME", "FileEntry", "Manifest", "SourceInfo", "Variant", "sha256_file"]

MANIFEST_NAME = "manifest.json"
# Bumped whenever the export recipe changes in a way that changes the files, so an old model
# directory is rebuilt instead of being reused by the idempotent build.
MANIFEST_FORMAT = 1

Variant = Literal["fp32", "int8"]

_HINT = "run `make model` (or `contentfn model build --out DIR`) to build it"


def sha256_file(path: Path, *, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file, streamed so a large model never sits twice in memory."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


class FileEntry(BaseModel):
    """One file of the model directory, relative to it, with its expected hash."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)

    def resolve(self, model_dir: Path) -> Path:
        """Absolute path of the file, refusing entries that would escape the model directory."""
        root = model_dir.resolve()
        target = (root / self.path).resolve()
        if root not in target.parents:
            raise ModelNotReady(f"model manifest in {model_dir} names a file outside it ({self.path!r}); {_HINT}")
        return target

    def verify(self, model_dir: Path) -> Path:
        """Return the file's path after checking that it exists and hashes to the manifest's value."""
        target = self.resolve(model_dir)
        if not target.is_file():
            raise ModelNotReady(f"model file {self.path!r} is missing from {model_dir}; {_HINT}")
        if sha256_file(target) != self.sha256:
            raise ModelNotReady(f"model file {self.path!r} in {model_dir} does not match its manifest hash; {_HINT}")
        return target


class SourceInfo(BaseModel):
    """Where the weights came from, so a rebuild notices when the source package changes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    package: str
    package_version: str
    weights_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Manifest(BaseModel):
    """Everything the runtime needs to know about an exported model, written as ``manifest.json``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: int = MANIFEST_FORMAT
    name: str = "all-MiniLM-L6-v2"
    # Version of the exported model: the source package version plus the export recipe.
    version: str
    dims: int = Field(default=384, ge=1)
    max_tokens: int = Field(default=256, ge=1)
    pooling: Literal["mean"] = "mean"
    normalize: bool = True
    source: SourceInfo
    tokenizer: FileEntry
    # Variant name -> ONNX file. "fp32" is always present; "int8" when the build made it.
    variants: dict[Variant, FileEntry]
    # Free-form notes the build records (opset, optimiser, quantisation recipe); never read back.
    build: dict[str, str | int | float | bool | list[str]] = Field(default_factory=dict)

    @classmethod
    def load(cls, model_dir: Path) -> Manifest:
        """Read ``manifest.json`` from ``model_dir``; a missing or unreadable one means the model is not built."""
        path = Path(model_dir) / MANIFEST_NAME
        if not path.is_file():
            raise ModelNotReady(f"no model manifest at {path}; {_HINT}")
        try:
            return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValidationError) as exc:
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelNotReady(f"model manifest at {path} is unreadable ({first_line}); {_HINT}") from None

    def save(self, model_dir: Path) -> Path:
        """Write the manifest atomically, so a crash mid-write never leaves a truncated JSON file."""
        path = Path(model_dir) / MANIFEST_NAME
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    def variant_file(self, variant: str) -> FileEntry:
        """The manifest entry of one variant, or ModelNotReady naming what was built instead."""
        entry = self.variants.get(variant)  # type: ignore[call-overload]
        if entry is None:
            built = ", ".join(sorted(self.variants)) or "none"
            raise ModelNotReady(f"model variant {variant!r} was not built (built: {built}); {_HINT}")
        return entry

    def verify(self, model_dir: Path, variant: str) -> tuple[Path, Path]:
        """Check the tokenizer and one variant's ONNX file against their hashes; return both paths."""
        onnx_path = self.variant_file(variant).verify(model_dir)
        tokenizer_path = self.tokenizer.verify(model_dir)
        return onnx_path, tokenizer_path

    def model_key(self, variant: str) -> str:
        """Stable key stored beside every vector: same files, same key; new files, new key."""
        return f"{self.name}@onnx-{variant}-{self.variant_file(variant).sha256[:8]}"
