"""Errors whose message is meant for the person using the tool."""


class UserError(Exception):
    """A failure the caller can understand and act on; the MCP layer returns it as `isError`."""
