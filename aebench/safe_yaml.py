"""YAML read with bounds: plain data only (``SafeLoader``), duplicate keys refused, nesting and alias expansion
limited, so a crafted file costs milliseconds and kilobytes, never a runaway parse or a RecursionError."""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from aebench.errors import UserError

MAX_YAML_CHARS = 64 * 1024  # an experiment file is a few KB; 64 KiB parses in about a second (pure Python)
MAX_DEPTH = 40  # levels of nesting, aliases followed (an experiment file uses 4)
MAX_NODES = 20_000  # values after every alias is expanded (an experiment file uses about 100)
MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlError(UserError):
    """A YAML text that is invalid or beyond the bounds above."""


class YamlRefused(YamlError):
    """A YAML text beyond the bounds above, or holding a duplicate key: valid YAML that aebench will not read."""


class Refused(yaml.YAMLError):
    """Raised inside the loader; carries the line of the node that broke a bound."""

    def __init__(self, problem: str, node: Node) -> None:
        super().__init__(problem)
        self.problem, self.problem_mark = problem, node.start_mark


class BoundedLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses nesting deeper than ``MAX_DEPTH`` while composing and duplicate mapping keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise Refused(f"nested deeper than {MAX_DEPTH} levels", parent)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:  # '<<: *defaults': merged keys may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: SafeConstructor refuses it below
                continue
            if duplicate:
                raise Refused(f"duplicate key {key!r}", key_node)
            seen.add(key)
        return super().construct_mapping(node, deep)


def check_bounds(root: Node) -> None:
    """Refuse a node graph whose expansion (every alias followed) is deeper than ``MAX_DEPTH``, larger than
    ``MAX_NODES`` or circular; iterative and memoised, so checking a crafted file costs its size, not its expansion."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_nodes: set[int] = set()  # the current path: a child found here is a circular alias
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key, children = id(node), list(kids(node))
        if finished:
            open_nodes.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in children)
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            if size[key] > MAX_NODES:
                raise Refused(f"more than {MAX_NODES:,} values once its aliases are expanded", node)
            if depth[key] > MAX_DEPTH:
                raise Refused(f"nested deeper than {MAX_DEPTH} levels once its aliases are expanded", node)
        elif key in open_nodes:
            raise Refused("an alias refers to a value that contains it", node)
        elif key not in size:
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in children)


def kids(node: Node) -> list[Node]:
    """The child nodes of a sequence or mapping (keys and values)."""
    if isinstance(node, SequenceNode):
        return node.value
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def load_yaml(text: str, source: str) -> Any:
    """The plain data of one YAML document; a YamlError naming ``source`` and the line on any problem or bound."""
    if len(text) > MAX_YAML_CHARS:
        raise YamlRefused(f"{source}: {len(text):,} characters of YAML, more than the {MAX_YAML_CHARS:,} aebench reads")
    loader = BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        check_bounds(node)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        error = YamlRefused if isinstance(exc, Refused) else YamlError
        raise error(f"{source}: invalid YAML{line}: {getattr(exc, 'problem', None) or exc}") from None
    finally:
        loader.dispose()
