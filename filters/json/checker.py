"""Judging a document's events against a compiled schema, one event at a time.

A violation is reported at the first character that makes it certain (see
:mod:`filters.json.schema` for the keywords and where each is decided).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Final

from filters.json.events import (
    ARRAY,
    CHARS,
    END_CONTAINER,
    END_NUMBER,
    END_STRING,
    KEY,
    KIND_NAMES,
    NUMBER,
    OBJECT,
    SCHEMA_RULE,
    STRING,
    VALUE,
    Violation,
)
from filters.json.schema import Node, is_integral

_NO_MATCH: Final = "value matches no "


def _common_prefix(candidate: str, start: int, piece: str) -> int:
    """How many leading characters of ``piece`` match ``candidate`` from ``start``."""
    count = 0
    for expected, actual in zip(candidate[start:], piece, strict=False):
        if expected != actual:
            break
        count += 1
    return count


class _Frame:
    """The value in progress at one nesting level, with its merged constraints."""

    __slots__ = (
        "bounds",
        "candidates",
        "child",
        "groups",
        "in_key",
        "integer",
        "key_parts",
        "kind",
        "length",
        "listen_from",
        "max_count",
        "members",
        "min_count",
        "missing",
        "numbers",
    )

    def __init__(self, kind: str, listen_from: int) -> None:
        self.kind = kind
        self.listen_from = listen_from
        self.groups: list[_Group] = []
        self.members: tuple[Node, ...] = ()
        """Object nodes with property keywords (objects only)."""
        self.child: tuple[Node, ...] = ()
        """Nodes for the next element or the current property's value (containers)."""
        self.missing: set[str] = set()
        self.in_key = False
        self.key_parts: list[str] | None = None
        self.length = 0
        """Elements so far (arrays) or code points so far (strings)."""
        self.min_count: int | None = None
        self.max_count: int | None = None
        """minItems/maxItems for arrays, minLength/maxLength for strings."""
        self.candidates: tuple[str, ...] | None = None
        self.integer = False
        self.numbers: frozenset[Decimal] | None = None
        self.bounds: list[tuple[Callable[[Decimal, Decimal], bool], str, Decimal]] = []
        """Numeric bounds as (test the number must pass, message, limit)."""


class _Group:
    """An ``anyOf`` / ``oneOf``: one checker per alternative still standing."""

    __slots__ = ("branches", "name", "size")

    def __init__(self, nodes: tuple[Node, ...], name: str) -> None:
        self.branches = [SchemaChecker(node) for node in nodes]
        self.name = name
        self.size = len(nodes)

    def send(self, event: int, pos: int, arg: str) -> Violation | None:
        """Pass one event to every alternative; a violation once none is left."""
        last: Violation | None = None
        for branch in self.branches:
            found = branch.handle(event, pos, arg)
            if found is not None and (last is None or found.offset > last.offset):
                last = found
        if last is None:
            return None
        self.branches = [b for b in self.branches if not b.failed]
        if self.branches:
            return None
        if self.size == 1 or last.message.startswith(_NO_MATCH):
            # A nested group already said which alternative failed last and why.
            return last
        message = f"{_NO_MATCH}{self.name} alternative ({last.message})"
        return Violation(SCHEMA_RULE, message, last.offset)

    def close(self, pos: int) -> Violation | None:
        """The value ended: ``oneOf`` needs exactly one survivor (``anyOf`` at least one)."""
        # A survivor with keywords judged only at the end may yet fail there: then the
        # final verdict, not this count, decides whether exactly one alternative holds.
        survivors = self.branches
        if self.name == "oneOf" and len(survivors) > 1 and all(b.exact for b in survivors):
            return Violation(SCHEMA_RULE, "value matches more than one oneOf alternative", pos)
        return None


def _merge_min(limits: Iterable[int | None]) -> int | None:
    present = [limit for limit in limits if limit is not None]
    return max(present) if present else None


def _merge_max(limits: Iterable[int | None]) -> int | None:
    present = [limit for limit in limits if limit is not None]
    return min(present) if present else None


def _dedupe(nodes: Iterable[Node]) -> tuple[Node, ...]:
    return tuple(dict.fromkeys(nodes))


class SchemaChecker:
    """Judges one document's events against a compiled schema, incrementally.

    Each :meth:`handle` call costs time proportional to the event's own size (and the
    number of live ``anyOf`` alternatives), so checking a document is linear in its length.
    After the first violation the checker is spent.
    """

    __slots__ = ("_listeners", "_root", "_scalar", "_stack", "exact", "failed")

    def __init__(self, root: Node) -> None:
        self._root = root.flat()
        self.exact = root.exact()
        """Whether this checker's verdict is the whole verdict (see :meth:`Node.exact`)."""
        self._stack: list[_Frame] = []
        self._scalar: _Frame | None = None
        self._listeners: list[_Group] = []
        self.failed = False

    def handle(self, event: int, pos: int, arg: str = "") -> Violation | None:
        """Judge one event; the violation it makes certain, if any."""
        if event == CHARS:
            found = self._chars(arg, pos)
        elif event == VALUE:
            found = self._value(arg, pos)
        elif event == END_STRING:
            found = self._end_string(pos)
        elif event == END_NUMBER:
            found = self._end_number(arg, pos)
        elif event == END_CONTAINER:
            found = self._end_container(pos)
        else:
            found = self._key(pos)
        if found is not None:
            self.failed = True
        return found

    def _forward(self, event: int, pos: int, arg: str, found: Violation | None) -> Violation | None:
        """Send the event to live alternatives; keep whichever violation came first."""
        for group in self._listeners:
            other = group.send(event, pos, arg)
            if other is not None and (found is None or other.offset < found.offset):
                found = other
        return found

    def _value(self, kind: str, pos: int) -> Violation | None:
        found = self._forward(VALUE, pos, kind, None)
        if found is not None:
            return found
        nodes, found = self._next_nodes(pos)
        if found is not None:
            return found
        for node in nodes:
            if kind not in node.kinds:
                return _kind_violation(node, kind, pos)
        frame = _Frame(kind, len(self._listeners))
        for node in nodes:
            for branches, name in ((node.any_of, "anyOf"), (node.one_of, "oneOf")):
                if branches:
                    group = _Group(branches, name)
                    found = group.send(VALUE, pos, kind)
                    if found is not None:
                        return found
                    frame.groups.append(group)
        self._listeners.extend(frame.groups)
        return self._open(frame, nodes, pos)

    def _next_nodes(self, pos: int) -> tuple[tuple[Node, ...], Violation | None]:
        if not self._stack:
            return self._root, None
        top = self._stack[-1]
        if top.kind == ARRAY:
            top.length += 1
            if top.max_count is not None and top.length > top.max_count:
                message = f"array longer than maxItems {top.max_count}"
                return (), Violation(SCHEMA_RULE, message, pos)
        return top.child, None

    def _open(self, frame: _Frame, nodes: tuple[Node, ...], pos: int) -> Violation | None:
        kind = frame.kind
        if kind == OBJECT:
            frame.members = tuple(
                n for n in nodes if n.properties or n.required or n.additional is not None
            )
            frame.missing = {name for n in frame.members for name in n.required}
            self._stack.append(frame)
        elif kind == ARRAY:
            frame.child = _dedupe(f for n in nodes if n.items is not None for f in n.items.flat())
            frame.min_count = _merge_min(n.min_items for n in nodes)
            frame.max_count = _merge_max(n.max_items for n in nodes)
            self._stack.append(frame)
        elif kind == STRING:
            self._scalar = _string_frame(frame, nodes)
        elif kind == NUMBER:
            self._scalar = _number_frame(frame, nodes)
        else:
            return self._close_groups(frame, pos)
        return None

    def _key(self, pos: int) -> Violation | None:
        top = self._stack[-1]
        top.in_key = True
        top.key_parts = [] if top.members else None
        return self._forward(KEY, pos, "", None) if self._listeners else None

    def _chars(self, piece: str, pos: int) -> Violation | None:
        found: Violation | None = None
        top = self._stack[-1] if self._stack else None
        if top is not None and top.in_key:
            if top.key_parts is not None:
                top.key_parts.append(piece)
        elif self._scalar is not None:
            found = _string_progress(self._scalar, piece, pos)
        return self._forward(CHARS, pos, piece, found) if self._listeners else found

    def _end_string(self, pos: int) -> Violation | None:
        top = self._stack[-1] if self._stack else None
        if top is not None and top.in_key:
            top.in_key = False
            return self._forward(END_STRING, pos, "", self._property(top, pos))
        frame, self._scalar = self._scalar, None
        if frame is None:
            return self._forward(END_STRING, pos, "", None)
        found = _string_done(frame, pos)
        return self._forward(END_STRING, pos, "", found) or self._close_groups(frame, pos)

    def _property(self, top: _Frame, pos: int) -> Violation | None:
        if top.key_parts is None:
            return None
        key = "".join(top.key_parts)
        top.key_parts = None
        top.missing.discard(key)
        child: list[Node] = []
        for node in top.members:
            prop = node.properties.get(key, node.additional)
            if prop is None:
                continue
            if not prop.possible():
                return Violation(SCHEMA_RULE, "property not allowed", pos)
            child.extend(prop.flat())
        top.child = _dedupe(child)
        return None

    def _end_number(self, text: str, pos: int) -> Violation | None:
        frame, self._scalar = self._scalar, None
        if frame is None:
            return self._forward(END_NUMBER, pos, text, None)
        found = _number_done(frame, text, pos)
        return self._forward(END_NUMBER, pos, text, found) or self._close_groups(frame, pos)

    def _end_container(self, pos: int) -> Violation | None:
        frame = self._stack.pop()
        found = _container_done(frame, pos)
        return self._forward(END_CONTAINER, pos, "", found) or self._close_groups(frame, pos)

    def _close_groups(self, frame: _Frame, pos: int) -> Violation | None:
        del self._listeners[frame.listen_from :]
        for group in frame.groups:
            found = group.close(pos)
            if found is not None:
                return found
        return None


def _kind_violation(node: Node, kind: str, pos: int) -> Violation:
    if not node.type_kinds:
        return Violation(SCHEMA_RULE, "value not allowed here", pos)
    if kind not in node.type_kinds:
        message = f"expected {node.type_desc}, got {KIND_NAMES[kind]}"
        return Violation(SCHEMA_RULE, message, pos)
    return Violation(SCHEMA_RULE, "value not in enum", pos)


def _string_frame(frame: _Frame, nodes: tuple[Node, ...]) -> _Frame | None:
    """Merge the string constraints of ``nodes``; ``None`` when nothing needs watching."""
    frame.min_count = _merge_min(n.min_length for n in nodes)
    frame.max_count = _merge_max(n.max_length for n in nodes)
    for node in nodes:
        if node.strings is not None:
            kept = (
                node.strings if frame.candidates is None else node.strings & set(frame.candidates)
            )
            frame.candidates = tuple(sorted(kept))
    watched = frame.min_count, frame.max_count, frame.candidates
    if watched == (None, None, None) and not frame.groups:
        return None
    return frame


def _string_progress(frame: _Frame, piece: str, pos: int) -> Violation | None:
    """Reject at the exact character that exceeds maxLength or leaves every enum member."""
    length = frame.length
    frame.length = length + len(piece)
    found: Violation | None = None
    if frame.max_count is not None and frame.length > frame.max_count:
        message = f"string longer than maxLength {frame.max_count}"
        found = Violation(SCHEMA_RULE, message, pos + frame.max_count - length)
    if frame.candidates is not None:
        alive = tuple(c for c in frame.candidates if c.startswith(piece, length))
        if not alive:
            at = pos + max((_common_prefix(c, length, piece) for c in frame.candidates), default=0)
            if found is None or at < found.offset:
                found = Violation(SCHEMA_RULE, "value not in enum", at)
        frame.candidates = alive
    return found


def _string_done(frame: _Frame, pos: int) -> Violation | None:
    if frame.min_count is not None and frame.length < frame.min_count:
        return Violation(SCHEMA_RULE, f"string shorter than minLength {frame.min_count}", pos)
    if frame.candidates is not None and not any(len(c) == frame.length for c in frame.candidates):
        return Violation(SCHEMA_RULE, "value not in enum", pos)
    return None


def _number_frame(frame: _Frame, nodes: tuple[Node, ...]) -> _Frame | None:
    """Merge the numeric constraints of ``nodes``; ``None`` when nothing needs checking."""
    for node in nodes:
        frame.integer = frame.integer or node.integer
        if node.numbers is not None:
            frame.numbers = node.numbers if frame.numbers is None else frame.numbers & node.numbers
        for test, message, limit in (
            (operator.ge, "number below minimum", node.minimum),
            (operator.le, "number above maximum", node.maximum),
            (operator.gt, "number not above exclusiveMinimum", node.exclusive_minimum),
            (operator.lt, "number not below exclusiveMaximum", node.exclusive_maximum),
        ):
            if limit is not None:
                frame.bounds.append((test, message, limit))
    if not (frame.integer or frame.numbers is not None or frame.bounds or frame.groups):
        return None
    return frame


def _number_done(frame: _Frame, text: str, pos: int) -> Violation | None:
    if not (frame.integer or frame.numbers is not None or frame.bounds):
        return None
    number = Decimal(text)
    if frame.integer and not is_integral(number):
        return Violation(SCHEMA_RULE, "expected integer, got number", pos)
    for test, message, limit in frame.bounds:
        if not test(number, limit):
            return Violation(SCHEMA_RULE, f"{message} {limit}", pos)
    if frame.numbers is not None and number not in frame.numbers:
        return Violation(SCHEMA_RULE, "value not in enum", pos)
    return None


def _container_done(frame: _Frame, pos: int) -> Violation | None:
    if frame.kind == ARRAY:
        if frame.min_count is not None and frame.length < frame.min_count:
            message = f"array shorter than minItems {frame.min_count}"
            return Violation(SCHEMA_RULE, message, pos)
        return None
    for node in frame.members:
        for name in node.required:
            if name in frame.missing:
                message = f"missing required property {name!r}"
                return Violation(SCHEMA_RULE, message, pos)
    return None
