"""The configuration, explained by itself: every field's description, as commented YAML.

`claimdiff config` prints the default configuration this way (and a checked file's resolved
one), so the configuration's documentation is the models' own descriptions and cannot drift
from what is validated. The YAML it prints loads back to the same configuration.
"""

from __future__ import annotations

import textwrap
import typing
from collections.abc import Iterator
from typing import Any

import yaml
from pydantic import BaseModel

from claimdiff.config import ClaimdiffConfig

_WIDTH = 98


def config_models(root: type[BaseModel] = ClaimdiffConfig) -> Iterator[type[BaseModel]]:
    """Every model the configuration is made of (sections, option models, preset kinds)."""
    seen: set[type[BaseModel]] = set()
    stack = [root]
    while stack:
        model = stack.pop()
        if model in seen:
            continue
        seen.add(model)
        yield model
        for info in model.model_fields.values():
            stack.extend(_models_in(info.annotation))


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for argument in typing.get_args(annotation):
        yield from _models_in(argument)


def _scalar(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False)
    return text.strip().removesuffix("...").strip()


def _comment(text: str | None, indent: str) -> list[str]:
    if not text:
        return []
    return [f"{indent}# {line}" for line in textwrap.wrap(text, _WIDTH - len(indent) - 2)]


def _lines(model: BaseModel, indent: str, described: set[tuple[type, str]]) -> list[str]:
    lines: list[str] = []
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        key = (type(model), name)
        if key not in described:
            lines += _comment(info.description, indent)
            described.add(key)
        if isinstance(value, BaseModel):
            lines.append(f"{indent}{name}:")
            lines += _lines(value, indent + "  ", described)
        elif isinstance(value, list) and value and all(isinstance(v, BaseModel) for v in value):
            lines.append(f"{indent}{name}:")
            for item in value:
                item_lines = _lines(item, indent + "    ", described)
                first = next(i for i, line in enumerate(item_lines)
                             if not line.lstrip().startswith("#"))
                item_lines[first] = f"{indent}  - {item_lines[first].lstrip()}"
                lines += item_lines
        else:
            plain = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
            if isinstance(plain, list) and plain and isinstance(plain[0], tuple):
                plain = [list(item) for item in plain]
            lines.append(f"{indent}{name}: {_scalar(_jsonable(plain))}")
    return lines


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {(k.value if hasattr(k, "value") else k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "value") and not isinstance(value, int | float | str | bool):
        return value.value
    return value


def commented_yaml(config: ClaimdiffConfig | None = None) -> str:
    """The configuration as YAML, each key under its description."""
    config = config or ClaimdiffConfig()
    header = ["# claimdiff configuration (claimdiff config): every key with its default and "
              "what it does.", "# Pass a file with --config, single keys with --set KEY=VALUE.",
              ""]
    return "\n".join(header + _lines(config, "", set())) + "\n"
