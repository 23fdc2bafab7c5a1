"""Credentials out of anything shown: URLs lose their userinfo and query values, text loses the URLs' secrets.

`DASHSCOPE_BASE_URL`, `EMBEDDING_BASE_URL` and `MILVUS_URI` may carry a password (`https://user:pass@host`) or a
key in the query (`?key=...`). Every message or log line that names one of them goes through `redact_url`, and
text that may quote a URL (a library's error) through `redact_urls_in`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

HIDDEN = "***"
# A URL with a scheme, up to whitespace or a quote/bracket that would end it in prose. The scheme starts only
# where a run of scheme characters starts (the lookbehind): else each position of a long word would rescan the
# rest of it, and 200 KB of letters took 25 s (linear now: 1 MB in milliseconds).
_URL = re.compile(r"(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+")
_QUERY_VALUE = re.compile(r"=[^&;]*")
# Secrets shorter than this are not searched for in free text, where they would match ordinary words.
MIN_SECRET_LEN = 4


def redact_url(url: str) -> str:
    """`url` with its userinfo, query values and fragment replaced by ***; a URL without them is unchanged.

    `https://user:pass@host/v1?key=abc&x=1` becomes `https://***@host/v1?key=***&x=***`. Anything that is not a
    URL with a scheme (a Milvus Lite path, a plain name) comes back as it was.
    """
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
    except ValueError:  # unparseable (an unbalanced IPv6 bracket): hide everything that could be a secret
        return re.sub(r"//[^/?#]*@", f"//{HIDDEN}@", url.split("?", 1)[0].split("#", 1)[0])
    if "@" in netloc:
        netloc = f"{HIDDEN}@{netloc.rsplit('@', 1)[1]}"
    query = _QUERY_VALUE.sub(f"={HIDDEN}", parts.query) if parts.query else ""
    if query and "=" not in parts.query:  # a bare ?secret
        query = HIDDEN
    fragment = HIDDEN if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def redact_urls_in(text: str) -> str:
    """`text` with every URL in it passed through `redact_url`."""
    return _URL.sub(lambda m: redact_url(m.group(0)), text)


def url_secrets(url: str) -> list[str]:
    """The password and query values in `url` (raw and decoded), to hide wherever else they may turn up in text."""
    try:
        parts = urlsplit(url)
        password = parts.password
        values = [v for _, v in parse_qsl(parts.query, keep_blank_values=True)] if "=" in parts.query else [parts.query]
    except ValueError:
        return []
    raw_query = [v.split("=", 1)[-1] for v in re.split(r"[&;]", parts.query)]
    found = {s for s in (password, *(unquote(password or ""),), *values, *raw_query, parts.fragment) if s}
    return sorted((s for s in found if len(s) >= MIN_SECRET_LEN), key=len, reverse=True)


class RedactingFilter(logging.Filter):
    """A log handler filter: URLs lose their credentials, and the given secrets become ***, in every record."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LEN}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        text = redact_urls_in(text)
        for secret in self.secrets:
            text = text.replace(secret, HIDDEN)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True
