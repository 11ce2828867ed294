"""Rows of the training datasets (`pairs/`, `rwr/`, `verl/`) and how they reach Parquet.

The pydantic models are the source: the Hugging Face `datasets` features are derived from them,
and the Arrow schema from those features (as `datasets` derives it), with the features written
into the Parquet schema metadata (key `huggingface`, as `Dataset.to_parquet` writes it), so
`datasets.load_dataset("parquet", ...)` decodes every `HFImage` into a PIL image without a
conversion step. `datasets` is not needed to write them.
"""

from __future__ import annotations

import builtins
import json
import types
import typing
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

HF_METADATA_KEY = b"huggingface"


class HFImage(BaseModel):
    """An image as the `datasets` `Image` feature stores it: the file's bytes, and its path."""

    model_config = ConfigDict(frozen=True)

    bytes: builtins.bytes | None = Field(
        default=None, description="the image file's bytes, as read (no re-encoding)")
    path: str | None = Field(default=None, description="the image URI as written in the manifest")


class ContentPart(BaseModel):
    """One part of a structured chat message: `{"type": "image"}` or `{"type": "text", ...}`."""

    type: typing.Literal["image", "text"]
    text: str | None = None


class Message(BaseModel):
    """A chat message with structured content (TRL's conversational vision format)."""

    role: typing.Literal["system", "user", "assistant"]
    content: list[ContentPart]


class TextMessage(BaseModel):
    """A chat message whose content is one string (verl: `<image>` marks the image)."""

    role: typing.Literal["system", "user", "assistant"]
    content: str


def user_prompt(text: str, n_images: int = 1) -> list[Message]:
    """The prompt of one image: the image placeholders, then the instruction."""
    parts = [ContentPart(type="image") for _ in range(n_images)]
    return [Message(role="user", content=[*parts, ContentPart(type="text", text=text)])]


def assistant_turn(text: str) -> list[Message]:
    return [Message(role="assistant", content=[ContentPart(type="text", text=text)])]


# --- Hugging Face features, derived from the models --------------------------------------------

_VALUE_DTYPES: dict[Any, str] = {str: "string", int: "int64", float: "float64", bool: "bool",
                                 bytes: "binary"}


def _unwrap(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(annotation) if a is not type(None)]
        return inner
    return annotation


def _feature(annotation: Any) -> Any:
    annotation = _unwrap(annotation)
    origin = typing.get_origin(annotation)
    if origin is list:
        (item,) = typing.get_args(annotation)
        return {"feature": _feature(item), "_type": "List"}
    if origin is typing.Literal:
        (kind,) = {type(v) for v in typing.get_args(annotation)}
        return {"dtype": _VALUE_DTYPES[kind], "_type": "Value"}
    if annotation is HFImage:
        return {"_type": "Image"}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {name: _feature(info.annotation) for name, info in annotation.model_fields.items()}
    return {"dtype": _VALUE_DTYPES[annotation], "_type": "Value"}


def hf_features(model: type[BaseModel]) -> dict[str, Any]:
    """The `datasets` features of a row model, as `Features.to_dict()` spells them."""
    return {name: _feature(info.annotation) for name, info in model.model_fields.items()}


_ARROW_VALUES = {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64(),
                 "bool": pa.bool_(), "binary": pa.binary()}
_IMAGE_STORAGE = pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])


def _arrow(feature: Any) -> pa.DataType:
    """The Arrow type `datasets` gives a feature: every field nullable, list items `element`."""
    kind = feature.get("_type")
    if kind == "Value":
        return _ARROW_VALUES[feature["dtype"]]
    if kind == "List":
        return pa.list_(pa.field("element", _arrow(feature["feature"])))
    if kind == "Image":
        return _IMAGE_STORAGE
    return pa.struct([pa.field(name, _arrow(sub)) for name, sub in feature.items()])


def parquet_schema(model: type[BaseModel]) -> pa.Schema:
    """The Arrow schema of a training row model, with its `datasets` features in the metadata.

    The Arrow types are the ones `datasets` derives from those features, field for field:
    `Features.from_arrow_schema` uses the stored features only for fields that match exactly
    (nullability and list item names included), and would otherwise read images as structs.
    """
    features = hf_features(model)
    return pa.schema(
        [pa.field(name, _arrow(feature)) for name, feature in features.items()],
        metadata={b"claimdiff.model": model.__name__.encode(),
                  HF_METADATA_KEY: json.dumps({"info": {"features": features}}).encode()})


def to_table(rows: Iterable[BaseModel], model: type[BaseModel]) -> pa.Table:
    """Rows in Python mode (bytes stay bytes, unlike the JSON mode of `schemas.arrow`)."""
    return pa.Table.from_pylist([row.model_dump() for row in rows], schema=parquet_schema(model))
