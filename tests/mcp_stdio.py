"""Kept so that older imports work: the harness lives in tests/conftest.py."""

from tests.conftest import payload, stdio_session

__all__ = ["payload", "stdio_session"]
