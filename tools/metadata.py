"""A document's metadata: Markdown front matter, the readers' document properties (author, dates, keywords), or
the object given to ingest_text, kept as one JSON object on each of the document's chunks.

Values are made JSON-safe here (dates as ISO strings, nested values kept as JSON allows) and bounded in size, so
every reader and caller stores the same shapes that tools/store/filters.py can test.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

from tools.errors import UserError

MAX_BYTES = 8192  # of the JSON object; a document's metadata is stored on every one of its chunks
MAX_KEY_CHARS = 128


def clean(raw: object) -> dict[str, Any]:
    """What of `raw` (front matter, properties) can be stored: string keys, JSON values, within `MAX_BYTES`;
    the rest is dropped (a reader's metadata never stops a file from being indexed)."""
    if not isinstance(raw, dict):
        return {}
    out: dict[str, Any] = {}
    size = 2
    for key, value in raw.items():
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_CHARS:
            continue
        safe = _json(value)
        if safe is None or safe == "" or safe == []:
            continue
        grown = len(json.dumps({key: safe}, ensure_ascii=False).encode()) - 1
        if size + grown > MAX_BYTES:
            continue
        out[key.strip()] = safe
        size += grown
    return out


def given(raw: object) -> dict[str, Any]:
    """Metadata a caller gave (ingest_text): refused with a reason rather than silently cut."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise UserError('metadata must be an object of keys and values, e.g. {"author": "Ada", "year": 2024}')
    kept = clean(raw)
    dropped = [str(key) for key in raw if not isinstance(key, str) or key.strip() not in kept]
    if dropped:
        raise UserError(
            f"metadata keys {', '.join(repr(k) for k in dropped[:5])} cannot be stored: keys must be non-empty text of at "
            f"most {MAX_KEY_CHARS} characters, values text, numbers, true/false, lists or objects, and all of it at "
            f"most {MAX_BYTES} bytes as JSON"
        )
    return kept


def _json(value: object) -> Any:
    """A JSON-safe copy of `value`, or None where it has none (NaN, bytes, objects)."""
    if isinstance(value, int | str):  # bool included
        return value.strip() if isinstance(value, str) else value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        items = [_json(item) for item in value]
        return [item for item in items if item is not None]
    if isinstance(value, dict):
        return {str(k): v for k, v in ((k, _json(v)) for k, v in value.items()) if v is not None}
    return None


def from_core_properties(props: Any) -> dict[str, Any]:
    """An Office file's core properties (python-docx, python-pptx) that are set: author, subject, keywords (a
    list), category, dates, ..."""
    raw: dict[str, Any] = {}
    for key in ("author", "category", "comments", "content_status", "identifier", "language", "subject", "version"):
        value = getattr(props, key, None)
        if isinstance(value, str) and value.strip():
            raw[key] = " ".join(value.split())
    keywords = getattr(props, "keywords", None)
    if isinstance(keywords, str) and keywords.strip():
        raw["keywords"] = [word.strip() for word in keywords.replace(";", ",").split(",") if word.strip()]
    for key in ("created", "modified"):
        value = getattr(props, key, None)
        if isinstance(value, dt.datetime):
            raw[key] = value.isoformat()
    return clean(raw)
