"""`python -m server`: read settings and flags, then serve over stdio or streamable HTTP."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from mcp.server.transport_security import TransportSecuritySettings
from pydantic import ValidationError

from server.app import create_server
from server.settings import ConfigError, Settings
from tools.redact import RedactingFilter, url_secrets

log = logging.getLogger("server")


def main(argv: list[str] | None = None) -> None:
    try:
        settings = Settings.load(sys.argv[1:] if argv is None else argv)
    except ConfigError as exc:
        sys.exit(f"milvus-qwen-mcp: {exc}")
    except ValidationError as exc:  # a bad value in the environment or the .env file (flags are checked by argparse)
        sys.exit(f"milvus-qwen-mcp: {exc}")
    # pymilvus reads MILVUS_URI itself when first imported and rejects Milvus Lite paths; the
    # value is ours and has been read, so hide it from pymilvus.
    os.environ.pop("MILVUS_URI", None)
    logging.basicConfig(stream=sys.stderr, level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    hide_secrets_in_logs(settings)
    logging.getLogger("pymilvus").setLevel(logging.ERROR)
    log_settings_source(settings)
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


def log_settings_source(settings: Settings) -> None:
    """Say where the settings came from, so that a stray .env can never change them unseen."""
    if settings.env_file is not None:
        log.info("settings: %s, then the environment and flags (which override it)", settings.env_file.resolve())
        return
    log.info("settings: the environment and flags (no .env file; --env-file PATH or ENV_FILE reads one)")
    if Path(".env").is_file():
        log.warning("%s was not read: settings come from a .env file only when --env-file names it", Path(".env").resolve())


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
