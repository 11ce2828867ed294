"""A schema written out whole: every field, nested ones indented under their parent, with its
type, nullability and the model's description. pyarrow's own `Schema.to_string` cuts long
nested types short ("(... 1758 chars omitted)"), which hides exactly the struct fields a
reader of `rewards/` needs."""

from __future__ import annotations

import pyarrow as pa
from pydantic import BaseModel


def _kind(kind: pa.DataType) -> str:
    if pa.types.is_struct(kind):
        return "struct"
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return "list"
    if pa.types.is_map(kind):
        return f"map<{kind.key_type}, {_kind(kind.item_type)}>"
    return str(kind)


def _children(kind: pa.DataType) -> list[pa.Field]:
    if pa.types.is_struct(kind):
        return [kind.field(i) for i in range(kind.num_fields)]
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return [kind.value_field]
    if pa.types.is_map(kind):
        return _children(kind.item_type)
    return []


def _descriptions(model: type[BaseModel] | None) -> dict[str, str]:
    if model is None:
        return {}
    return {name: info.description for name, info in model.model_fields.items()
            if info.description}


def schema_lines(schema: pa.Schema, model: type[BaseModel] | None = None) -> list[str]:
    """One line per field, depth-first; top-level fields carry the model's description."""
    about = _descriptions(model)
    lines: list[str] = []

    def walk(field: pa.Field, depth: int) -> None:
        null = "" if field.nullable else " not null"
        note = f"  # {about[field.name]}" if depth == 0 and field.name in about else ""
        lines.append(f"{'  ' * depth}{field.name}: {_kind(field.type)}{null}{note}")
        for child in _children(field.type):
            walk(child, depth + 1)

    for field in schema:
        walk(field, 0)
    return lines
