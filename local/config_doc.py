"""``python -m local.config_doc``: the configuration reference, generated from the Settings classes.

Every ``CONTENTFN_`` variable with its type (and bounds), default and meaning, taken from the
pydantic fields themselves, so the reference cannot drift from the code: a test regenerates it and
fails when the committed ``docs/configuration.md`` differs (``make config-doc`` writes it again).
Defaults of secret fields are never printed.
"""

from __future__ import annotations

import argparse
import enum
import sys
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from shared.config import ENV_PREFIX, Settings
from shared.platform.runtime import EntrySettings

__all__ = ["DOC_PATH", "SETTINGS_CLASSES", "main", "render"]

DOC_PATH = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"

# (class, who reads it): each class after the first documents only the fields it adds.
SETTINGS_CLASSES: tuple[tuple[type[Settings], str], ...] = (
    (Settings, "Every process: the local runtime, the cloud functions and the GPU service."),
    (EntrySettings, "Cloud entry points, the GPU service and `make invoke`, in addition to the above."),
)

# Read outside the Settings classes, before any settings exist.
OTHER_VARIABLES = (
    (
        "CONTENTFN_FUNCTION",
        "The GCP source archive's `main.py`: which function's target it exports as `handler` (Terraform sets it).",
    ),
    (
        "CONTENTFN_<NAME>_SECRET_ID",
        "On AWS: the Secrets Manager secret whose value becomes `CONTENTFN_<NAME>` at cold start, unless that"
        " variable is set already (`shared/secrets.py`).",
    ),
)

_BOUNDS = (
    (annotated_types.Ge, "ge", "≥"),
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Le, "le", "≤"),
    (annotated_types.Lt, "lt", "<"),
    (annotated_types.MinLen, "min_length", "length ≥"),
    (annotated_types.MaxLen, "max_length", "length ≤"),
)


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or any(_is_secret(arg) for arg in get_args(annotation))


def _type_name(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        named = [_type_name(arg) for arg in args if arg is not type(None)]
        return " or ".join(named)
    if origin is Literal:
        return "one of " + ", ".join(f"`{value}`" for value in args)
    if origin is tuple:
        item = _type_name(args[0])
        return f"JSON list of {item}{'s' if item in ('string', 'integer', 'number') else ''}"
    if origin is dict:
        return "JSON object"
    if annotation is SecretStr:
        return "secret"
    if isinstance(annotation, type) and issubclass(annotation, Path):
        return "path"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "objects"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(f"`{member.value}`" for member in annotation)
    name = getattr(annotation, "__name__", str(annotation))
    return {
        "IPvAnyNetwork": "IP networks",
        "str": "string",
        "int": "integer",
        "float": "number",
        "bool": "boolean",
    }.get(name, name)


def _bounds(field: FieldInfo) -> str:
    found = []
    for item in field.metadata:
        for kind, attr, sign in _BOUNDS:
            if isinstance(item, kind):
                found.append(f"{sign} {getattr(item, attr)}")
        pattern = getattr(item, "pattern", None)
        if pattern:
            found.append(f"matches `{pattern}`")
    return f" ({', '.join(found)})" if found else ""


def _default(field: FieldInfo) -> str:
    if field.default_factory is None and field.default is PydanticUndefined:
        return "required"
    value = field.get_default(call_default_factory=True, validated_data={})
    if value is None:
        return "unset"
    if _is_secret(field.annotation):
        return "(secret, not shown)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple | list):
        return "`[]`" if not value else f"`{list(value)}`"
    if isinstance(value, dict):
        return "`{}`" if not value else f"`{value}`"
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _table(cls: type[Settings], skip: set[str]) -> list[str]:
    lines = ["| variable | type | default | meaning |", "|---|---|---|---|"]
    for name, field in cls.model_fields.items():
        if name in skip:
            continue
        meaning = field.description or ""
        row = (
            f"`{ENV_PREFIX}{name.upper()}`",
            _type_name(field.annotation) + _bounds(field),
            _default(field),
            meaning,
        )
        lines.append("| " + " | ".join(_cell(cell) for cell in row) + " |")
    return lines


def render() -> str:
    """The whole reference as markdown."""
    out = [
        "# Configuration reference",
        "",
        "<!-- Generated by `python -m local.config_doc` (`make config-doc`) from the Settings classes;"
        " edit the fields' descriptions there, not this file. -->",
        "",
        f"Every process reads one settings object from `{ENV_PREFIX}*` environment variables and validates it"
        " at start: a bad value stops the process with one error naming the variable. Lists and objects are"
        " given as JSON. Secrets come from the platform (Secret Manager, Secrets Manager, the environment),"
        " never from the repository.",
    ]
    seen: set[str] = set()
    for cls, readers in SETTINGS_CLASSES:
        out += ["", f"## `{cls.__module__}.{cls.__name__}`", "", readers, "", *_table(cls, seen)]
        seen |= set(cls.model_fields)
    out += ["", "## Read outside the Settings classes", "", "| variable | meaning |", "|---|---|"]
    out += [f"| `{name}` | {_cell(meaning)} |" for name, meaning in OTHER_VARIABLES]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.config_doc", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOC_PATH, help="where to write it (docs/configuration.md)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if the file is not up to date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date: run `make config-doc`", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
