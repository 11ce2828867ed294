"""YAML for untrusted configuration: safe tags only, bounded size, bounded expansion, no
repeated keys.

`yaml.safe_load` alone is not enough. A document under a kilobyte can define an anchor, a list of
ten aliases to it, a list of ten aliases to that, and so on: PyYAML builds it in microseconds
(aliases share one object), but everything that walks the result (validation, hashing, dumping
to `run.json`) visits it 10^9 times. So the composed node graph is measured first, counting each
alias as a copy of what it points to, in time linear in the document (each node's expanded size
is computed once), and refused past `max_nodes`. A document deeper than `max_depth` (which
would also exhaust the parser's recursion) and a mapping that repeats a key (which PyYAML would
silently resolve to the last value) are refused too.
"""

from __future__ import annotations

from typing import Any

import yaml

from claimdiff.errors import ConfigError

MAX_BYTES = 1 * 2**20
MAX_NODES = 100_000
MAX_DEPTH = 64


class _UniqueKeyLoader(yaml.SafeLoader):
    """The safe loader, refusing a mapping that repeats a key."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                repeated = key in seen
            except TypeError:
                continue  # an unhashable key fails in the base class, with its own message
            if repeated:
                raise ConfigError(
                    f"{self._what}: the key {str(key)[:80]!r} is given twice (line "
                    f"{key_node.start_mark.line + 1}); keep one")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    _what = "YAML"


def _expanded_size(root: yaml.Node, what: str, max_nodes: int, max_depth: int) -> int:
    """Nodes of the document with every alias expanded, without expanding anything."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node, depth: int) -> int:
        if depth > max_depth:
            raise ConfigError(f"{what} is nested deeper than {max_depth} levels")
        known = sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in active:
            raise ConfigError(f"{what} refers to itself (a recursive alias)")
        active.add(id(node))
        total = 1
        if isinstance(node, yaml.SequenceNode):
            for child in node.value:
                total += size(child, depth + 1)
                if total > max_nodes:
                    break
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                total += size(key, depth + 1) + size(value, depth + 1)
                if total > max_nodes:
                    break
        active.discard(id(node))
        sizes[id(node)] = total
        return total

    return size(root, 0)


def load_yaml(text: str, *, what: str = "YAML", max_bytes: int = MAX_BYTES,
              max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> Any:
    """Parse one YAML document under the bounds above, or raise `ConfigError` saying why."""
    if len(text.encode("utf-8", errors="replace")) > max_bytes:
        raise ConfigError(f"{what} is larger than {max_bytes} bytes")

    class Loader(_UniqueKeyLoader):
        _what = what

    loader = Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        if _expanded_size(root, what, max_nodes, max_depth) > max_nodes:
            raise ConfigError(
                f"{what} expands to more than {max_nodes} values (an alias bomb?); refused")
        return loader.construct_document(root)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} is not valid YAML: {' '.join(str(exc).split())[:300]}"
                          ) from exc
    except RecursionError as exc:
        raise ConfigError(f"{what} is nested too deeply to parse") from exc
    finally:
        loader.dispose()
