"""The MCP face of the project: settings, transport, tool registration."""
