"""The Embedder interface, and the base of models run in this process."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Any

import anyio


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

    async def warm_up(self) -> None:  # noqa: B027 (most embedders have nothing to load ahead)
        """Load the model now rather than on the first call."""

    async def close(self) -> None:  # noqa: B027 (most embedders hold no connection)
        """Release connections, if any."""


class LocalModel(Embedder):
    """A model run in this process; loaded once, on first use, under a lock, and run in a worker thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._model: Any = None

    def loaded(self) -> Any:
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
        await anyio.to_thread.run_sync(self.loaded)
