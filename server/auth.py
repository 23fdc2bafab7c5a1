"""Who may call the streamable-HTTP transport: a strict Host/Origin syntax check, then a bearer token.

The `mcp` SDK's DNS-rebinding check matches `Host` against patterns like `127.0.0.1:*` with
`host.startswith("127.0.0.1:")`, so `Host: 127.0.0.1:8000@evil.example` (or `localhost:1.evil.example`) passes it.
`HttpGuard` runs in front of the SDK's app and refuses any Host that is not exactly `host[:port]` (and any
Origin that is not `scheme://host[:port]`), after which the SDK's prefix match is sound.

The token is one shared secret (MCP_AUTH_TOKEN or MCP_AUTH_TOKEN_FILE), compared in constant time. The SDK's
own auth hooks (`token_verifier` with `AuthSettings`) need an OAuth issuer URL and are fixed when the MCPServer
is built; a static token is not OAuth, so a small ASGI middleware does it instead.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import re
from pathlib import Path

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from server.settings import ConfigError, Settings

log = logging.getLogger(__name__)

REALM = "milvus-qwen-mcp"
MIN_TOKEN_LEN = 16
# RFC 6750's b64token: what `openssl rand -hex 32` and `secrets.token_urlsafe(32)` produce.
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_REG_NAME = re.compile(r"[A-Za-z0-9\-._~]+")  # a DNS name or IPv4 address; nothing that ends or nests a URL
_PORT = re.compile(r"[0-9]{1,5}")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")


def is_loopback(host: str) -> bool:
    """Whether binding `host` serves only this machine (a name other than localhost counts as not)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_token(settings: Settings) -> str | None:
    """The bearer token from MCP_AUTH_TOKEN or MCP_AUTH_TOKEN_FILE, checked; None when neither is set."""
    given = settings.mcp_auth_token.get_secret_value() if settings.mcp_auth_token else None
    path = settings.mcp_auth_token_file
    if given is not None and path is not None:
        raise ConfigError("set MCP_AUTH_TOKEN or MCP_AUTH_TOKEN_FILE, not both")
    if path is not None:
        try:
            given = Path(path).expanduser().read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or exc
            raise ConfigError(f"MCP_AUTH_TOKEN_FILE {str(path)!r} cannot be read: {why}") from None
    if given is None:
        return None
    where = "MCP_AUTH_TOKEN_FILE" if path is not None else "MCP_AUTH_TOKEN"
    if len(given) < MIN_TOKEN_LEN or not _TOKEN.fullmatch(given):
        raise ConfigError(
            f"{where}: the token must be at least {MIN_TOKEN_LEN} characters of A-Z a-z 0-9 - . _ ~ + / "
            "(for example the output of `openssl rand -hex 32`)"
        )
    return given


def check_exposure(settings: Settings, token: str | None) -> None:
    """Refuse to serve HTTP off loopback with no token, unless told to (--allow-unauthenticated)."""
    if token is not None or is_loopback(settings.host):
        return
    if not settings.allow_unauthenticated:
        raise ConfigError(
            f"refusing to serve on {settings.host} (not loopback) without authentication: set MCP_AUTH_TOKEN or "
            "MCP_AUTH_TOKEN_FILE (clients then send 'Authorization: Bearer <token>'), or pass --allow-unauthenticated "
            "(ALLOW_UNAUTHENTICATED=true) if something in front of this server checks who calls it"
        )
    log.warning(
        "serving on %s with no authentication (--allow-unauthenticated): whoever can reach it may call every tool",
        settings.host,
    )


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """DNS-rebinding protection, always on: loopback names, the bind host and ALLOWED_HOSTS."""
    hosts = ["127.0.0.1", "localhost", "[::1]", settings.host, *settings.allowed_hosts]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"{h}:*" for h in hosts] + hosts,
        allowed_origins=[f"http://{h}:*" for h in hosts] + [f"https://{h}:*" for h in hosts],
    )


def valid_host(value: str) -> bool:
    """Whether a Host header is `host[:port]` as RFC 9110 has it: a name, IPv4 or [IPv6], then digits."""
    host, port = value, None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return False
        host, rest = value[: end + 1], value[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                return False
            port = rest[1:]
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return False
    else:
        if ":" in value:
            host, port = value.split(":", 1)
        if not _REG_NAME.fullmatch(host):
            return False
    return port is None or (_PORT.fullmatch(port) is not None and int(port) <= 65535)


def valid_origin(value: str) -> bool:
    """Whether an Origin header is `null` or `scheme://host[:port]`, with no userinfo, path, query or fragment."""
    if value == "null":
        return True
    scheme, sep, rest = value.partition("://")
    return bool(sep) and _SCHEME.fullmatch(scheme) is not None and valid_host(rest)


class HttpGuard:
    """ASGI middleware: a malformed Host is 400, a malformed Origin 403, a missing or wrong token 401."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self._digest = hashlib.sha256(token.encode()).digest() if token is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        hosts = [v.decode("latin-1") for k, v in headers if k == b"host"]
        if len(hosts) != 1 or not valid_host(hosts[0]):
            await _plain(send, 400, "Invalid Host header")
            return
        origins = [v.decode("latin-1") for k, v in headers if k == b"origin"]
        if len(origins) > 1 or (origins and not valid_origin(origins[0])):
            await _plain(send, 403, "Invalid Origin header")
            return
        if self._digest is not None:
            refusal = self._refusal([v.decode("latin-1") for k, v in headers if k == b"authorization"])
            if refusal is not None:
                await _unauthorized(send, *refusal)
                return
        await self.app(scope, receive, send)

    def _refusal(self, values: list[str]) -> tuple[str | None, str] | None:
        """(error code, description) when the request does not carry the token; None when it does."""
        assert self._digest is not None
        scheme, _, credentials = values[0].strip().partition(" ") if len(values) == 1 else ("", "", "")
        if scheme.lower() != "bearer":  # none, several, or another scheme: no bearer credentials to judge
            return None, "this server needs one 'Authorization: Bearer <token>' header (MCP_AUTH_TOKEN)"
        given = hashlib.sha256(credentials.strip().encode("latin-1")).digest()
        if not hmac.compare_digest(given, self._digest):
            return "invalid_token", "the bearer token is not this server's (MCP_AUTH_TOKEN)"
        return None


async def _plain(send: Send, status: int, text: str) -> None:
    body = text.encode()
    start = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})


async def _unauthorized(send: Send, error: str | None, description: str) -> None:
    challenge = f'Bearer realm="{REALM}"'
    if error is not None:  # RFC 6750 3.1: no error code when the request had no credentials at all
        challenge += f', error="{error}", error_description="{description}"'
    body = json.dumps({"error": error or "unauthorized", "error_description": description}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"www-authenticate", challenge.encode()),
    ]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def serve_http(server: MCPServer, settings: Settings, token: str | None) -> None:
    """Serve MCP over streamable HTTP at http://HOST:PORT/mcp behind `HttpGuard`, as `MCPServer.run` would."""
    import uvicorn

    app = HttpGuard(server.streamable_http_app(transport_security=transport_security(settings), host=settings.host), token)
    if token is not None:
        log.info("streamable-http clients must send 'Authorization: Bearer <token>'")
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower())
    anyio.run(uvicorn.Server(config).serve)
