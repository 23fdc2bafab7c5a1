"""Errors whose message is meant for the person using the tool, and the progress callback every tool takes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

# progress, total (None when unknown), message
ProgressFn = Callable[[float, float | None, str], Awaitable[None]]


class UserError(Exception):
    """A failure the caller can understand and act on; the MCP layer returns it as `isError`."""


class LLMError(UserError):
    """A chat-model failure with a message a person can act on; never contains the API key."""


@contextmanager
def first_error() -> Iterator[None]:
    """Around a task group: raise the first failure itself, not wrapped in an exception group."""
    try:
        yield
    except BaseExceptionGroup as group:
        error: BaseException = group
        while isinstance(error, BaseExceptionGroup):
            error = error.exceptions[0]
        raise error from None
