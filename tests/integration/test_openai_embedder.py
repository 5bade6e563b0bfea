"""The OpenAI-compatible embeddings provider against a real HTTP test server: batching, retries
on 429, cost, and refusal of answers that would poison an index."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from shared.embedder.openai import EmbeddingsInvalid, EmbeddingsUnavailable, OpenAIEmbedder
from shared.net.client import SafeHttpClient
from shared.net.policy import AddressPolicy
from tests.servers.embeddings_server import EmbeddingsServer, text_vector

TEXTS = ["rivers and rain", "rain on the river", "city lights at night", "desert highways", "winter snow"]


@pytest.fixture
def server() -> Iterator[EmbeddingsServer]:
    srv = EmbeddingsServer(dims=64)
    with srv:
        yield srv


def _embedder(server: EmbeddingsServer, *, dims: int = 64, batch_size: int = 2, retries: int = 2) -> OpenAIEmbedder:
    http = SafeHttpClient(policy=AddressPolicy.from_networks(["127.0.0.0/8"]), sleep=lambda _s: None)
    return OpenAIEmbedder(
        http,
        key="test-embed@64",
        base_url=server.url + "/v1",
        model="test-embed",
        dims=dims,
        api_key="test-key",
        batch_size=batch_size,
        max_retries=retries,
        price_per_mtok=20.0,
    )


def test_texts_are_sent_in_batches_and_come_back_in_input_order_as_unit_vectors(server: EmbeddingsServer) -> None:
    embedder = _embedder(server)
    vectors = embedder.embed(TEXTS)
    assert vectors.shape == (5, 64) and vectors.dtype == np.float32
    assert server.embedding_requests() == 3  # 2 + 2 + 1
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    for text, vec in zip(TEXTS, vectors, strict=True):
        np.testing.assert_allclose(vec, text_vector(text, 64), atol=1e-6)
    assert embedder.model_key == "test-embed@64" and embedder.dims == 64


def test_tokens_reported_by_the_endpoint_are_counted_and_priced(server: EmbeddingsServer) -> None:
    embedder = _embedder(server)
    embedder.embed(TEXTS)
    words = sum(len(t.split()) for t in TEXTS)  # 3 + 4 + 4 + 2 + 2 = 15
    assert embedder.tokens_used == words == 15
    assert embedder.cost_usd == pytest.approx(15 * 20.0 / 1_000_000)


def test_a_rate_limited_answer_is_retried_and_then_succeeds(server: EmbeddingsServer) -> None:
    server.mode = "429_once"
    vectors = _embedder(server, batch_size=10).embed(TEXTS)
    assert vectors.shape == (5, 64)
    assert server.embedding_requests() == 2


def test_an_endpoint_rate_limiting_past_the_retries_is_a_transient_error(server: EmbeddingsServer) -> None:
    server.mode = "429"
    with pytest.raises(EmbeddingsUnavailable):
        _embedder(server, retries=1).embed(TEXTS[:1])
    assert server.embedding_requests() == 2


def test_vectors_of_another_dimension_than_registered_are_refused(server: EmbeddingsServer) -> None:
    server.mode = "wrong_dims"
    with pytest.raises(EmbeddingsInvalid, match="of 65 dimensions; expected 1 of 64"):
        _embedder(server).embed(TEXTS[:1])


def test_an_answer_outside_the_format_and_a_refused_key_are_poison(server: EmbeddingsServer) -> None:
    server.mode = "garbage"
    with pytest.raises(EmbeddingsInvalid, match="outside the embeddings format"):
        _embedder(server).embed(TEXTS[:1])
    server.mode = "ok"
    embedder = _embedder(server)
    embedder.api_key = "wrong"
    with pytest.raises(EmbeddingsInvalid, match="refused"):
        embedder.embed(TEXTS[:1])


def test_a_768_dimension_endpoint_is_embedded_at_its_own_size() -> None:
    srv = EmbeddingsServer(dims=768)
    with srv:
        vectors = _embedder(srv, dims=768).embed(TEXTS)
    assert vectors.shape == (5, 768)
