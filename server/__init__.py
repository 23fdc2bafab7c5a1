"""The MCP face of the project: settings, transport, tool registration."""

__version__ = "0.1.0"
