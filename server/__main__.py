"""`python -m server`: read settings and flags, then serve over stdio or streamable HTTP."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from server.app import create_server
from server.auth import check_exposure, load_token, serve_http
from server.settings import ConfigError, Settings, exit_with
from tools.memory import limit_arenas
from tools.redact import RedactingFilter, url_secrets

log = logging.getLogger("server")


def main(argv: list[str] | None = None) -> None:
    limit_arenas()
    try:
        settings = Settings.load(sys.argv[1:] if argv is None else argv)
        services = settings.services()  # settings that cannot work together, such as a provider without its URL
        token = load_token(settings) if settings.transport == "streamable-http" else None
        if settings.transport == "streamable-http":
            check_exposure(settings, token)
    except ConfigError as exc:  # a bad value in a flag, the environment or the .env file: a line each, status 2
        exit_with("milvus-qwen-mcp", exc)
    # pymilvus reads MILVUS_URI itself when first imported and rejects Milvus Lite paths; the
    # value is ours and has been read, so hide it from pymilvus.
    os.environ.pop("MILVUS_URI", None)
    logging.basicConfig(stream=sys.stderr, level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    hide_secrets_in_logs(settings, token)
    logging.getLogger("pymilvus").setLevel(logging.ERROR)
    log_settings_source(settings)
    missing = not os.path.exists(Path(settings.milvus_uri).expanduser())  # a path too long is missing, not an error
    if services.store.connection.is_lite and missing:
        log.warning(
            "MILVUS_URI %s does not exist yet: searches find nothing until an ingest makes it", services.store.connection.where()
        )
    server = create_server(settings, services)
    if settings.transport == "stdio":
        server.run("stdio")
    else:
        serve_http(server, settings, token)


def hide_secrets_in_logs(settings: Settings, token: str | None) -> None:
    """Every log line leaves with URLs' credentials, keys and the bearer token replaced by ***."""
    secrets: list[str | None] = [token]
    for key in (settings.dashscope_api_key, settings.embedding_api_key, settings.rerank_api_key, settings.milvus_token):
        secrets.append(key.get_secret_value() if key else None)
    for url in (
        settings.dashscope_base_url,
        settings.embedding_base_url or "",
        settings.rerank_base_url or "",
        settings.milvus_uri,
    ):
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


if __name__ == "__main__":
    main()
