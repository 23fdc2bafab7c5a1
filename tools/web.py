"""Web pages by URL: fetched with the HTTP client already in the tree (httpx2, which openai uses), within size,
time and redirect bounds, read by the reader the content type (else the URL's suffix) picks.

The server fetches what an agent asks for, so by default it refuses what an outside caller should not reach
through it: schemes other than http(s), and hosts that resolve to loopback, private, link-local, multicast or
reserved addresses. Every address a name resolves to is checked, at the start and after every redirect, and the
connection goes to the address that was checked (the name is kept for `Host` and TLS), so a name that resolves
differently a moment later (DNS rebinding) cannot slip past. `allow_private` (URL_ALLOW_PRIVATE) lifts this, for
an intranet or the tests' loopback server.

A page fetched before in this process is asked for with `If-None-Match` / `If-Modified-Since`; on 304 its
stored bytes are read again, so nothing changes (an unchanged page changes nothing anyway: its chunks' hashes
match).
"""

from __future__ import annotations

import ipaddress
import socket
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import urljoin, urlsplit

import anyio
import httpx2 as httpx

MAX_REDIRECTS = 5
CACHE_ENTRIES = 64  # pages kept for conditional requests (each at most MAX_FILE_MB)
USER_AGENT = "milvus-qwen-mcp (+https://github.com/milvus-io)"
# The reader a content type picks (as a file suffix); other types fall back to the URL's suffix.
TYPES = {
    "text/html": ".html",
    "application/xhtml+xml": ".html",
    "text/plain": ".txt",
    "text/markdown": ".md",
    "text/x-markdown": ".md",
    "text/csv": ".csv",
    "text/tab-separated-values": ".tsv",
    "application/pdf": ".pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.ms-excel": ".xls",
    "application/vnd.oasis.opendocument.spreadsheet": ".ods",
    "application/epub+zip": ".epub",
    "application/x-ipynb+json": ".ipynb",
    "message/rfc822": ".eml",
    "text/x-rst": ".rst",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/tiff": ".tiff",
}


class FetchError(Exception):
    """The URL cannot be fetched or is refused; the message is the reason shown to the user."""


@dataclass(frozen=True)
class Page:
    url: str  # the URL asked for (its source name), not where redirects ended
    final_url: str
    suffix: str  # the reader's suffix: from the content type, else the URL
    data: bytes
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False  # a 304: `data` is what was fetched before


class PageCache:
    """The last pages fetched in this process, for conditional requests."""

    def __init__(self) -> None:
        self._pages: OrderedDict[str, Page] = OrderedDict()

    def get(self, url: str) -> Page | None:
        page = self._pages.get(url)
        if page is not None:
            self._pages.move_to_end(url)
        return page

    def put(self, page: Page) -> None:
        if page.etag or page.last_modified:
            self._pages[page.url] = page
            self._pages.move_to_end(page.url)
            while len(self._pages) > CACHE_ENTRIES:
                self._pages.popitem(last=False)


def check_url(url: str) -> str:
    """The URL stripped, when it is http(s) with a host; else FetchError."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise FetchError(f"only http:// and https:// URLs are fetched, not {parts.scheme or 'a bare path'}:")
    if not parts.hostname:
        raise FetchError("the URL has no host name")
    return url


async def _address(host: str, port: int, allow_private: bool) -> str:
    """The address to connect to: the first the name resolves to, after every one of them is checked."""
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise FetchError(f"the host {host!r} cannot be resolved ({exc.strerror or exc})") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise FetchError(f"the host {host!r} has no address")
    if not allow_private:
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
                address = address.ipv4_mapped
            if not address.is_global or address.is_multicast:
                kind = "loopback" if address.is_loopback else "link-local" if address.is_link_local else "private or reserved"
                raise FetchError(
                    f"{host} resolves to {address}, a {kind} address: refused (set URL_ALLOW_PRIVATE=true to fetch from "
                    "such hosts)"
                )
    return addresses[0]


async def fetch(url: str, *, max_bytes: int, timeout_s: float, allow_private: bool, cache: PageCache | None = None) -> Page:
    """The page at `url` (following at most MAX_REDIRECTS redirects); FetchError with the reason otherwise."""
    url = check_url(url)
    before = cache.get(url) if cache is not None else None
    try:
        with anyio.fail_after(timeout_s):
            return await _fetch(url, before, max_bytes, timeout_s, allow_private, cache)
    except TimeoutError:
        raise FetchError(f"no whole answer within {timeout_s:g} s (FETCH_TIMEOUT)") from None
    except httpx.HTTPError as exc:
        raise FetchError(f"the request failed ({type(exc).__name__}: {exc})") from None


async def _fetch(
    url: str, before: Page | None, max_bytes: int, timeout_s: float, allow_private: bool, cache: PageCache | None
) -> Page:
    current = url
    async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=False, trust_env=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(check_url(current))
            host = parts.hostname or ""
            port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
            address = await _address(host, port, allow_private)
            pinned = httpx.URL(current).copy_with(host=address)
            headers = {"Host": parts.netloc.rsplit("@", 1)[-1], "User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
            if before is not None and current == url:
                if before.etag:
                    headers["If-None-Match"] = before.etag
                if before.last_modified:
                    headers["If-Modified-Since"] = before.last_modified
            request = client.build_request("GET", pinned, headers=headers, extensions={"sni_hostname": host})
            response = await client.send(request, stream=True)
            try:
                if response.status_code in (301, 302, 303, 307, 308):
                    location = response.headers.get("location")
                    if not location:
                        raise FetchError(f"a redirect ({response.status_code}) without a Location")
                    current = urljoin(current, location)
                    continue
                if response.status_code == 304 and before is not None:
                    return Page(url, before.final_url, before.suffix, before.data, before.etag, before.last_modified, True)
                if response.status_code >= 400:
                    raise FetchError(f"HTTP {response.status_code} {response.reason_phrase}".rstrip())
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    raise FetchError(f"larger than the {max_bytes / 2**20:g} MB limit (MAX_FILE_MB)")
                body = bytearray()
                async for piece in response.aiter_raw():
                    body += piece
                    if len(body) > max_bytes:
                        raise FetchError(f"larger than the {max_bytes / 2**20:g} MB limit (MAX_FILE_MB)")
                content_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
                suffix = TYPES.get(content_type) or PurePosixPath(urlsplit(current).path).suffix.lower()
                page = Page(
                    url, current, suffix, bytes(body), response.headers.get("etag"), response.headers.get("last-modified")
                )
                if cache is not None:
                    cache.put(page)
                return page
            finally:
                await response.aclose()
    raise FetchError(f"more than {MAX_REDIRECTS} redirects (a redirect loop?)")
