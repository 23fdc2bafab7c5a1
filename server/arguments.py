"""Tool arguments checked in plain words: a line per bad argument, named as the caller wrote it, with what it allows.

The SDK's own message is pydantic's (`1 validation error for search_milvus_docsArguments ... https://errors.pydantic.dev`),
which names internal classes and hides the point; and it ignores arguments a tool does not take, so an agent that
writes `topk` gets the default without a word. Both are for the calling model to read and correct.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from tools.checks import shown

_TYPES = {
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "string": "a string",
    "array": "a list",
    "object": "an object",
    "null": "null",
}


def unknown_arguments(tool: str, arguments: Mapping[str, Any], schema: Mapping[str, Any]) -> str | None:
    """The message for arguments `tool` does not take, or None when every one is known."""
    known = list(schema.get("properties", {}))
    unknown = [name for name in arguments if name not in known]
    if not unknown:
        return None
    lines = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        lines.append(f"{tool} takes no argument {shown(name)}" + (f" (did you mean {close[0]}?)" if close else ""))
    lines.append(f"{tool} takes: {', '.join(known)}")
    return "\n".join(lines)


def argument_errors(exc: ValidationError, schema: Mapping[str, Any]) -> str:
    """A line per bad argument, such as `top_k='five' is not a whole number`."""
    properties: Mapping[str, Any] = schema.get("properties", {})
    lines: dict[str, str] = {}
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        if name in lines:
            continue
        if error["type"] == "missing":
            lines[name] = f"{name} is required: {_allowed(properties.get(name, {}))}"
        else:
            lines[name] = f"{name}={shown(error['input'])} is not {_allowed(properties.get(name, {}))}"
    return "\n".join(lines.values())


def _allowed(prop: Mapping[str, Any]) -> str:
    """What a JSON schema property allows, as a person would say it."""
    if "enum" in prop:
        return "one of " + ", ".join(str(choice) for choice in prop["enum"])
    options = prop.get("anyOf")
    if options:
        said = [_allowed(option) for option in options if option.get("type") != "null"]
        return " or ".join(said) + (" (or null for the default)" if len(said) < len(options) else "")
    kind = prop.get("type")
    if kind == "array":
        return f"a list of {_plural(_allowed(prop.get('items', {})))}"
    text = _TYPES.get(str(kind), "valid")
    low, high = prop.get("minimum"), prop.get("maximum")
    if low is not None and high is not None:
        text += f" from {low} to {high}"
    elif low is not None:
        text += f" of {low} or more"
    return text


def _plural(noun: str) -> str:
    return {"a string": "strings", "a whole number": "whole numbers", "a number": "numbers"}.get(noun, noun)
