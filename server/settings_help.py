"""How the settings read to people: `--help` in groups, and a line per bad setting naming it as it was given.

Nothing here knows which settings exist: `server/settings.py` declares them and hands their fields over.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NoReturn, Union, get_args, get_origin

from pydantic import SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

_HELP_DESCRIPTION = """\
An MCP server over Milvus: ingest documents, search them, answer with Qwen.

Every setting is a flag and an environment variable (in brackets). Flags
override the environment, which overrides the .env file that --env-file or
ENV_FILE names; no .env file is read unless named."""
_HELP_EPILOG = """\
Keys and tokens are safer in the environment or the .env file than in flags,
which other users of the machine can see. Help never shows their values."""
# Placeholders by the end of a setting's name, then by its type.
_METAVARS_BY_NAME = (
    ("_url", "URL"),
    ("_uri", "URI"),
    ("_file", "FILE"),
    ("_key", "KEY"),
    ("_token", "TOKEN"),
    ("_timeout", "SECONDS"),
    ("_mb", "MB"),
    ("_roots", f"FOLDER[{os.pathsep}FOLDER...]"),
    ("_hosts", "HOST[,HOST...]"),
    ("host", "ADDRESS"),
)
_METAVARS_BY_TYPE: dict[Any, str] = {int: "N", float: "NUMBER", str: "NAME", Path: "PATH", SecretStr: "SECRET"}


class SettingsParser(argparse.ArgumentParser):
    """The parser pydantic-settings fills with the settings: grouped, described plainly, errors on one line."""

    def __init__(
        self, prog: str, fields: Mapping[str, FieldInfo], titles: Sequence[str], group_of: Callable[[FieldInfo], str]
    ) -> None:
        super().__init__(
            prog=prog,
            usage="%(prog)s [-h] [--SETTING VALUE ...]",
            description=_HELP_DESCRIPTION,
            epilog=_HELP_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            allow_abbrev=False,
        )
        self.fields = fields
        self.group_of = group_of
        self.groups = {title: self.add_argument_group(title) for title in titles}

    def add_setting(self, parser: SettingsParser, *flags: str, **kwargs: Any) -> argparse.Action:
        """pydantic-settings' add_argument, with help written from the field: description, variable, default."""
        name = kwargs["dest"]
        field = self.fields[name]
        if "metavar" in kwargs:
            kwargs["metavar"] = _metavar(name, field)
        if name == "ingest_roots":  # pydantic-settings joins repeated flags with commas, which are legal in a path
            kwargs["action"] = _AppendPaths
        kwargs["help"] = _help(name, field).replace("%", "%%")
        return self.groups[self.group_of(field)].add_argument(*flags, **kwargs)

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments: "):  # name the flags only: a stray value may be a key
            given = message.split(": ", 1)[1].split()
            message = "unrecognized arguments: " + (
                " ".join(a.split("=", 1)[0] for a in given if a.startswith("-")) or "values without a flag"
            )
        self.exit(2, f"{self.prog}: {message} (--help lists the settings)\n")


class _AppendPaths(argparse.Action):
    """`--ingest-roots A --ingest-roots B` kept as one value, `A:B`, which the field splits like INGEST_ROOTS."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: str | None = None
    ) -> None:
        earlier = getattr(namespace, self.dest, None)
        joined = os.pathsep.join([*earlier, str(values)]) if isinstance(earlier, list) else str(values)
        setattr(namespace, self.dest, [joined])


def _metavar(name: str, field: FieldInfo) -> str:
    for suffix, metavar in _METAVARS_BY_NAME:
        if name.endswith(suffix):
            return metavar
    kind = _base_type(field)
    if get_origin(kind) is Literal:
        return "{" + ",".join(str(choice) for choice in get_args(kind)) + "}"
    return _METAVARS_BY_TYPE.get(kind, "VALUE")


def _help(name: str, field: FieldInfo) -> str:
    description = (field.description or "").rstrip(".")
    facts = [name.upper()]
    default = None if "default:" in description else _default_text(field)
    if default is not None:
        facts.append(f"default: {default}")
    return f"{description} [{'; '.join(facts)}]"


def _default_text(field: FieldInfo) -> str | None:
    """The default as a person would write it; None where there is none to show (unset, computed, or secret)."""
    value = field.default
    if _base_type(field) is SecretStr or value is None or field.default_factory is not None:
        return None
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _base_type(field: FieldInfo) -> Any:
    """The field's type without `| None`."""
    kind = field.annotation
    if get_origin(kind) in (Union, type(int | None)):
        options = [arg for arg in get_args(kind) if arg is not type(None)]
        if len(options) == 1:
            return options[0]
    return kind


# Errors: one line per bad setting, naming it as the user gave it, with the values it allows.
def error_lines(exc: ValidationError, fields: Mapping[str, FieldInfo], argv: Sequence[str], env_file: Path | None) -> list[str]:
    """A line per bad setting, such as `SEARCH_MODE='fuzzy' is not one of dense, bm25, hybrid`."""
    lines: dict[str, str] = {}
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        if name not in lines:
            lines[name] = _error_line(name, fields.get(name), error, argv, env_file)
    return list(lines.values())


def exit_with(prog: str, exc: Exception) -> NoReturn:
    """Print a settings error as `prog: ...` lines on stderr and exit with status 2, as argparse does."""
    for line in str(exc).splitlines():
        print(f"{prog}: {line}", file=sys.stderr)
    sys.exit(2)


def _error_line(name: str, field: FieldInfo | None, error: ErrorDetails, argv: Sequence[str], env_file: Path | None) -> str:
    if field is None:
        return str(error["msg"])
    flag = "--" + name.replace("_", "-")
    given_as_flag = any(arg == flag or arg.startswith(flag + "=") for arg in argv)
    in_environment = name.upper() in {key.upper() for key in os.environ}
    where = "" if given_as_flag or in_environment or env_file is None else f" (in {env_file})"
    shown = "'***'" if _base_type(field) is SecretStr else _shown(error["input"])
    return f"{flag if given_as_flag else name.upper()}={shown} is not {_allowed(field, error)}{where}"


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _allowed(field: FieldInfo, error: ErrorDetails) -> str:
    kind = _base_type(field)
    if get_origin(kind) is Literal:
        return "one of " + ", ".join(str(choice) for choice in get_args(kind))
    if kind is bool:
        return "true or false"
    if kind in (int, float):
        noun = "a whole number" if kind is int else "a number"
        return f"{noun} {_bounds(field)}".rstrip()
    return f"valid: {error['msg']}"


def _bounds(field: FieldInfo) -> str:
    low = high = None
    above = ""
    for rule in field.metadata:  # annotated_types' Ge, Gt and Le, as Field(ge=, gt=, le=) makes them
        low = getattr(rule, "ge", low)
        high = getattr(rule, "le", high)
        if hasattr(rule, "gt"):
            above = f"greater than {_number(rule.gt)}"
    if low is not None and high is not None:
        return f"from {_number(low)} to {_number(high)}"
    if above:
        return above if high is None else f"{above} and at most {_number(high)}"
    if low is not None:
        return f"of {_number(low)} or more"
    return "" if high is None else f"of {_number(high)} or less"


def _number(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
