"""`python -m server`: read settings and flags, then serve over stdio or streamable HTTP."""

from __future__ import annotations

import logging
import os
import sys

from mcp.server.transport_security import TransportSecuritySettings

from server.app import create_server
from server.settings import Settings
from tools.redact import RedactingFilter, url_secrets


def main(argv: list[str] | None = None) -> None:
    settings = Settings(_cli_parse_args=sys.argv[1:] if argv is None else argv)
    # pymilvus reads MILVUS_URI itself when first imported and rejects Milvus Lite paths; the
    # value is ours and has been read, so hide it from pymilvus.
    os.environ.pop("MILVUS_URI", None)
    logging.basicConfig(stream=sys.stderr, level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    hide_secrets_in_logs(settings)
    logging.getLogger("pymilvus").setLevel(logging.ERROR)
    server = create_server(settings)
    if settings.transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host=settings.host, port=settings.port, transport_security=transport_security(settings))


def hide_secrets_in_logs(settings: Settings) -> None:
    """Every log line leaves with URLs' credentials and keys replaced by ***."""
    secrets: list[str | None] = []
    for key in (settings.dashscope_api_key, settings.embedding_api_key, settings.milvus_token):
        secrets.append(key.get_secret_value() if key else None)
    for url in (settings.dashscope_base_url, settings.embedding_base_url or "", settings.milvus_uri):
        secrets += url_secrets(url)
    redacting = RedactingFilter(secrets)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redacting)


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """DNS-rebinding protection, always on: loopback names, the bind host and ALLOWED_HOSTS."""
    hosts = ["127.0.0.1", "localhost", "[::1]", settings.host, *settings.allowed_hosts]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"{h}:*" for h in hosts] + hosts,
        allowed_origins=[f"http://{h}:*" for h in hosts],
    )


if __name__ == "__main__":
    main()
