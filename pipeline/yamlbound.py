"""A bound on YAML alias expansion, checked before anything walks a config's tree.

YAML aliases let a few hundred bytes stand for millions of nodes ("billion laughs"):
PyYAML composes and constructs them cheaply (the nodes are shared), but everything that
walks the result afterwards (key lines, pydantic) pays for the full expansion.
"""

from __future__ import annotations

import yaml

MAX_ALIASES = 100
"""Most alias uses (``*name``) a config may contain; real configs need a handful."""
MAX_EXPANDED_NODES = 200_000
"""Most YAML nodes a config may expand to with every alias replaced by what it names.

A 300-byte "billion laughs" file of nested aliases expands to millions of nodes: loading
it once took 23 s and 2.4 GB (and froze the event loop on a reload). Composing is cheap
because aliases share nodes; counting the expansion with a memo costs one pass over the
distinct nodes, so the refusal comes in milliseconds, before anything walks the expansion.
"""


class AliasBombError(Exception):
    """Too many aliases, or an expansion too large; ``line`` is where it went over."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def check_expansion(tree: yaml.Node) -> None:
    """Raise :class:`AliasBombError` if ``tree`` uses too many aliases or expands too far."""
    sizes: dict[int, int] = {}
    uses = 0

    def size(node: yaml.Node, at: yaml.Node) -> int:
        nonlocal uses
        known = sizes.get(id(node))
        if known is not None:
            uses += 1
            if uses > MAX_ALIASES:
                raise AliasBombError(
                    at.start_mark.line + 1, f"more than {MAX_ALIASES} YAML aliases; refused"
                )
            return known
        total = 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                total += size(key, key) + size(value, key)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(item, item) for item in node.value)
        sizes[id(node)] = total
        if total > MAX_EXPANDED_NODES:
            raise AliasBombError(
                at.start_mark.line + 1,
                f"YAML aliases expand to more than {MAX_EXPANDED_NODES} nodes; refused",
            )
        return total

    size(tree, tree)
