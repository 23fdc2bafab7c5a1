"""The real packaged embedder: all-MiniLM-L6-v2 as int8 ONNX."""

from __future__ import annotations

import numpy as np
import pytest

from tools.embedders import OnnxMiniLM, make_embedder
from tools.errors import UserError

pytestmark = pytest.mark.anyio


async def test_vectors_are_unit_length_and_meaningful(embedder: OnnxMiniLM) -> None:
    texts = ["Milvus stores metadata in etcd.", "Where is Milvus metadata kept?", "I like ripe bananas."]
    vectors = np.array(await embedder.embed_documents(texts))
    assert vectors.shape == (3, embedder.dim) == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    related, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert related > 0.5 > unrelated


async def test_order_and_batching_do_not_change_vectors(embedder: OnnxMiniLM) -> None:
    texts = [f"sentence number {i} " + "long " * (i * 7) for i in range(40)]
    together = np.array(await embedder.embed_documents(texts))
    alone = np.array([await embedder.embed_query(t) for t in texts[::13]])
    assert np.allclose(together[::13], alone, atol=1e-4)


async def test_long_text_is_truncated_not_rejected(embedder: OnnxMiniLM) -> None:
    (vector,) = await embedder.embed_documents(["word " * 5000])
    assert len(vector) == 384


def test_provider_choice_is_checked() -> None:
    with pytest.raises(UserError, match="runs all-MiniLM-L6-v2 only"):
        make_embedder("local", "bge-m3")
    with pytest.raises(UserError, match="EMBEDDING_BASE_URL"):
        make_embedder("openai", "text-embedding-v4")
