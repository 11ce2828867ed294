"""Derive pyarrow schemas from the pydantic models, and convert rows both ways.

One derivation for every Parquet dataset: str -> string, int -> int64, float -> float64,
bool -> bool, StrEnum -> string, list[X] -> list<X>, dict[str, X] -> map<string, X>, nested model
-> struct (named by each field's alias where it has one), `X | None` -> nullable.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Iterable
from typing import Any, TypeVar

import pyarrow as pa
from pydantic import BaseModel

ModelT = TypeVar("ModelT", bound=BaseModel)

_SCALARS: dict[type, pa.DataType] = {
    str: pa.string(),
    int: pa.int64(),
    float: pa.float64(),
    bool: pa.bool_(),
}


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"unions other than `X | None` have no Arrow type: {annotation}")
        return args[0], True
    return annotation, False


def arrow_type(annotation: Any) -> pa.DataType:
    """The Arrow type of one (non-optional) annotation."""
    annotation, _ = _unwrap_optional(annotation)
    origin = typing.get_origin(annotation)
    if origin is list:
        (item,) = typing.get_args(annotation)
        item_type, nullable = _unwrap_optional(item)
        return pa.list_(pa.field("item", arrow_type(item_type), nullable=nullable))
    if origin is dict:
        key, value = typing.get_args(annotation)
        if key is not str:
            raise TypeError(f"only str-keyed dicts have an Arrow type: {annotation}")
        value_type, nullable = _unwrap_optional(value)
        return pa.map_(pa.string(), pa.field("value", arrow_type(value_type), nullable=nullable))
    if origin is typing.Literal:
        values = typing.get_args(annotation)
        kinds = {type(v) for v in values}
        if len(kinds) != 1:
            raise TypeError(f"mixed Literal has no Arrow type: {annotation}")
        return _SCALARS[kinds.pop()]
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return pa.struct(arrow_fields(annotation))
        if issubclass(annotation, enum.Enum):
            return pa.string()
        for python_type, arrow in _SCALARS.items():
            # bool is an int subclass: exact match first
            if annotation is python_type:
                return arrow
    raise TypeError(f"no Arrow type for annotation {annotation!r}")


def arrow_fields(model: type[BaseModel]) -> list[pa.Field]:
    fields = []
    for name, info in model.model_fields.items():
        _, nullable = _unwrap_optional(info.annotation)
        fields.append(pa.field(info.alias or name, arrow_type(info.annotation),
                               nullable=nullable))
    return fields


def arrow_schema(model: type[BaseModel]) -> pa.Schema:
    """The Arrow schema of a row model, with the model's name in the schema metadata."""
    return pa.schema(arrow_fields(model), metadata={b"claimdiff.model": model.__name__.encode()})


def to_record(row: BaseModel) -> dict[str, Any]:
    """A plain dict for Arrow: enums as their values, nested models as dicts."""
    return row.model_dump(mode="json")


def to_table(rows: Iterable[BaseModel], model: type[BaseModel]) -> pa.Table:
    return pa.Table.from_pylist([to_record(r) for r in rows], schema=arrow_schema(model))


def from_table(table: pa.Table, model: type[ModelT]) -> list[ModelT]:
    return [model.model_validate(record) for record in table.to_pylist()]
