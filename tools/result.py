"""The base of every tool result model: JSON schemas without pydantic's generated titles.

A result's output schema goes to every client in tools/list; a title per field ("Chunk Id" for `chunk_id`)
repeats the name and costs about a fifth of the listing.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


def _drop_titles(schema: dict[str, Any]) -> None:
    schema.pop("title", None)
    for field in schema.get("properties", {}).values():
        field.pop("title", None)


class Result(BaseModel):
    model_config = ConfigDict(json_schema_extra=_drop_titles)
