"""Errors whose message is meant for the person using the tool."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class UserError(Exception):
    """A failure the caller can understand and act on; the MCP layer returns it as `isError`."""


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
