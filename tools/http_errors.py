"""Errors from an OpenAI-compatible HTTP service (embeddings, rerankers) as one readable `UserError` each.

Both clients are `openai`'s, for its retries and timeouts, so they fail the same ways: a rejected key, an
error status, a timeout, no connection. The chat model's errors say more (models, regions, thinking) and stay
in tools/llm.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from tools.errors import UserError
from tools.redact import redact_url, redact_urls_in

if TYPE_CHECKING:  # imported by the clients that raise its errors (tools/llm.py says why)
    import openai

MAX_MESSAGE_CHARS = 300  # of the service's own error message


@contextmanager
def service_errors(service: str, url: str, keys: str, timeout_s: float) -> Iterator[None]:
    """Inside it, `openai`'s errors become UserErrors naming `service` (`the reranker`) at `url`, redacted."""
    import openai

    where = f"{service} at {redact_url(url)}"
    try:
        yield
    except openai.AuthenticationError:
        raise UserError(f"{where[:1].upper()}{where[1:]} rejected the key ({keys})") from None
    except openai.APIStatusError as exc:
        raise UserError(f"{where[:1].upper()}{where[1:]} answered {exc.status_code}: {_said(exc)}") from None
    except openai.APITimeoutError:
        raise UserError(f"{where[:1].upper()}{where[1:]} did not answer within {timeout_s:g} s") from None
    except openai.APIConnectionError:
        raise UserError(f"Could not reach {where}") from None


def _said(exc: openai.APIStatusError) -> str:
    """The service's own error message, from the shapes DashScope, vLLM, TEI and others use."""
    error = exc.body.get("error", exc.body) if isinstance(exc.body, dict) else exc.body
    message = error.get("message") if isinstance(error, dict) else error
    return redact_urls_in(str(message or exc.message)[:MAX_MESSAGE_CHARS])
