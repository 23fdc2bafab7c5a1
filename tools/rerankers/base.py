"""The Reranker interface: a query and candidate passages in, a relevance score for each out.

Scores are the reranker's own (DashScope's are 0-1, comparable only within one request), never cosines.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import openai

from tools.errors import UserError


@dataclass(frozen=True)
class Ranked:
    index: int  # into the documents given
    score: float


class Reranker(ABC):
    """Reorders search candidates by a model that reads the query and each passage together."""

    name: str

    @abstractmethod
    async def rerank(self, query: str, documents: list[str]) -> list[Ranked]:
        """A score for every document, best first."""

    async def close(self) -> None:  # noqa: B027 (most rerankers hold a client to close; the base has none)
        """Release connections."""


class HttpReranker(Reranker):
    """A reranker behind one JSON POST endpoint, through the `openai` client for its retries (429, 5xx,
    connection errors), timeout and errors."""

    timeout_s = 30.0
    max_retries = 2

    def __init__(self, name: str, url: str, api_key: str | None) -> None:
        self.name, self.url = name, url
        base, self._path = url.rsplit("/", 1)
        self._client = openai.AsyncOpenAI(
            base_url=base, api_key=api_key or "EMPTY", timeout=self.timeout_s, max_retries=self.max_retries
        )

    async def post(self, body: dict[str, object]) -> object:
        try:
            return await self._client.post(f"/{self._path}", body=body, cast_to=object)
        except openai.AuthenticationError:
            raise UserError(f"The reranker at {self.url} rejected the key (RERANK_API_KEY or DASHSCOPE_API_KEY)") from None
        except openai.APIStatusError as exc:
            raise UserError(f"The reranker at {self.url} answered {exc.status_code}: {_said(exc.body, exc.message)}") from None
        except openai.APITimeoutError:
            raise UserError(f"The reranker at {self.url} did not answer within {self.timeout_s:g} s") from None
        except openai.APIConnectionError:
            raise UserError(f"Could not reach the reranker at {self.url}") from None

    async def close(self) -> None:
        await self._client.close()


def _said(body: object, fallback: str) -> str:
    """The service's own error message, from the shapes DashScope, vLLM, TEI and others use."""
    error = body.get("error", body) if isinstance(body, dict) else body
    message = error.get("message") if isinstance(error, dict) else error
    return str(message or fallback)[:300]
