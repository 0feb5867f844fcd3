"""Incremental JSON Schema checking for a document that arrives one piece at a time.

The syntax scanner in :mod:`filters.json_validate` turns the character stream into events
(a value starts, string characters, a key or value string ends, a number ends, a container
closes) and a :class:`SchemaChecker` judges each event as it happens. A violation is reported
at the first character that makes it *certain*: a wrong type at the value's first character,
an unknown property when its key's closing quote arrives, a string past ``maxLength`` (or no
longer a prefix of any ``enum`` member) at the character that makes it so, a missing
required property at the object's ``}``, a number's bounds when the number ends.

Supported subset (every other keyword is ignored, so it can never cause a rejection):

- ``type`` (a name or a list; ``integer`` means a number with no fractional part, so ``1.0``
  is an integer as in JSON Schema 2020-12), OpenAPI's ``nullable: true``;
- ``enum`` and ``const`` (strings, numbers, booleans, null; object/array members admit their
  kind without an equality check);
- ``properties``, ``required``, ``additionalProperties`` (``false`` or a schema; not enforced
  when ``patternProperties`` is present, since patterns are not evaluated);
- ``items`` (a single schema; ignored when ``prefixItems`` is present), ``minItems``,
  ``maxItems``;
- ``minLength``, ``maxLength`` (in code points);
- ``minimum``, ``maximum``, ``exclusiveMinimum``, ``exclusiveMaximum`` (numeric form, and
  draft-4's boolean form);
- ``allOf``, ``anyOf``, ``oneOf``: each alternative runs as its own checker fed the same
  events, dropped when it fails; the value fails when the last alternative fails (``oneOf``
  also when more than one alternative survives the value's end);
- ``$ref`` to a JSON pointer inside the same document (``#``, ``#/$defs/...``,
  ``#/definitions/...``), recursion included; it applies alongside sibling keywords;
- boolean schemas ``true`` / ``false``.

Messages name schema facts (types, limits, required names) but never echo the document's
own content, since the reason is shown to the client and logged.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final, NamedTuple, TypeGuard
from urllib.parse import unquote

OBJECT: Final = "{"
ARRAY: Final = "["
STRING: Final = '"'
NUMBER: Final = "0"
TRUE: Final = "t"
FALSE: Final = "f"
NULL: Final = "n"
"""A value's kind is the character that starts it (any number is ``NUMBER``)."""

ALL_KINDS: Final = frozenset({OBJECT, ARRAY, STRING, NUMBER, TRUE, FALSE, NULL})
KIND_NAMES: Final = {
    OBJECT: "object",
    ARRAY: "array",
    STRING: "string",
    NUMBER: "number",
    TRUE: "boolean",
    FALSE: "boolean",
    NULL: "null",
}
_TYPE_KINDS: Final = {
    "object": frozenset({OBJECT}),
    "array": frozenset({ARRAY}),
    "string": frozenset({STRING}),
    "number": frozenset({NUMBER}),
    "integer": frozenset({NUMBER}),
    "boolean": frozenset({TRUE, FALSE}),
    "null": frozenset({NULL}),
}

VALUE: Final = 0
"""A value starts; ``arg`` is its kind."""
KEY: Final = 1
"""A property name starts (its opening quote)."""
CHARS: Final = 2
"""Decoded characters of the current key or string; ``pos`` is where the first one ends."""
END_STRING: Final = 3
"""The closing quote of the current key or string."""
END_NUMBER: Final = 4
"""A number ended at ``pos`` (the character after it, or the end); ``arg`` is its text."""
END_CONTAINER: Final = 5
"""The ``}`` or ``]`` closing the innermost container."""

SCHEMA_RULE: Final = "json_schema"
MAX_SCHEMA_DEPTH: Final = 100
"""Deeper schemas are refused: compiling (and checking) recurses once per level."""
_NO_MATCH: Final = "value matches no "


class Violation(NamedTuple):
    """Why the document can no longer be valid, and the offset where that became certain."""

    rule: str
    message: str
    offset: int


class SchemaError(ValueError):
    """The schema itself is malformed or uses a form this checker cannot apply."""


class Node:
    """One compiled schema object; plain attributes because the checker reads them per event."""

    __slots__ = (
        "_flat",
        "_possible",
        "additional",
        "all_of",
        "any_of",
        "exclusive_maximum",
        "exclusive_minimum",
        "integer",
        "items",
        "kinds",
        "max_items",
        "max_length",
        "maximum",
        "min_items",
        "min_length",
        "minimum",
        "numbers",
        "one_of",
        "properties",
        "required",
        "strings",
        "type_desc",
        "type_kinds",
    )

    def __init__(self) -> None:
        self.type_kinds: frozenset[str] = ALL_KINDS
        """Kinds ``type`` admits."""
        self.kinds: frozenset[str] = ALL_KINDS
        """Kinds ``type``, ``enum`` and ``const`` together admit."""
        self.type_desc = ""
        self.integer = False
        self.strings: frozenset[str] | None = None
        self.numbers: frozenset[Decimal] | None = None
        self.properties: dict[str, Node] = {}
        self.required: tuple[str, ...] = ()
        self.additional: Node | None = None
        self.items: Node | None = None
        self.min_items: int | None = None
        self.max_items: int | None = None
        self.min_length: int | None = None
        self.max_length: int | None = None
        self.minimum: Decimal | None = None
        self.maximum: Decimal | None = None
        self.exclusive_minimum: Decimal | None = None
        self.exclusive_maximum: Decimal | None = None
        self.all_of: tuple[Node, ...] = ()
        """Conjuncts: ``allOf`` members and the ``$ref`` target."""
        self.any_of: tuple[Node, ...] = ()
        self.one_of: tuple[Node, ...] = ()
        self._flat: tuple[Node, ...] | None = None
        self._possible: frozenset[str] | None = None

    def flat(self) -> tuple[Node, ...]:
        """This node and every conjunct reachable through ``allOf``/``$ref``, once each."""
        if self._flat is None:
            seen: dict[Node, None] = {}
            todo = [self]
            while todo:
                node = todo.pop()
                if node not in seen:
                    seen[node] = None
                    todo.extend(reversed(node.all_of))
            self._flat = tuple(seen)
        return self._flat

    def possible(self) -> frozenset[str]:
        """Kinds some value could have and still satisfy this node (over-approximated)."""
        if self._possible is None:
            # A recursive schema that reaches itself here sees "anything": over-approximating
            # only makes a rejection later, never a wrong one.
            self._possible = ALL_KINDS
            kinds = ALL_KINDS
            for node in self.flat():
                kinds &= node.kinds
                for group in (node.any_of, node.one_of):
                    if group:
                        kinds &= frozenset().union(*(branch.possible() for branch in group))
            self._possible = kinds
        return self._possible


def compile_schema(schema: Mapping[str, Any] | bool) -> Node:
    """Compile ``schema`` once so that checking a document never re-reads the dicts."""
    return _Compiler(schema).node(schema, "#")


class _Compiler:
    """Builds :class:`Node` graphs; memoised by object identity so ``$ref`` cycles close."""

    def __init__(self, root: Mapping[str, Any] | bool) -> None:
        self._root = root
        self._memo: dict[int, Node] = {}
        self._depth = 0

    def node(self, schema: object, where: str) -> Node:
        """The node for ``schema``; ``where`` is its JSON pointer, for error messages."""
        if isinstance(schema, bool):
            node = Node()
            if not schema:
                node.type_kinds = node.kinds = frozenset()
            return node
        if not isinstance(schema, Mapping):
            raise SchemaError(f"{where}: a schema must be an object or a boolean")
        known = self._memo.get(id(schema))
        if known is not None:
            return known
        if self._depth >= MAX_SCHEMA_DEPTH:
            raise SchemaError(f"{where}: schema nested deeper than {MAX_SCHEMA_DEPTH} levels")
        node = self._memo[id(schema)] = Node()
        self._depth += 1
        self._fill(node, schema, where)
        self._depth -= 1
        return node

    def _fill(self, node: Node, schema: Mapping[str, Any], where: str) -> None:
        self._types(node, schema, where)
        self._choices(node, schema, where)
        self._object(node, schema, where)
        self._array(node, schema, where)
        node.min_length = _count(schema, "minLength", where)
        node.max_length = _count(schema, "maxLength", where)
        self._bounds(node, schema, where)
        node.any_of = self._list(schema, "anyOf", where)
        node.one_of = self._list(schema, "oneOf", where)
        conjuncts = list(self._list(schema, "allOf", where))
        if "$ref" in schema:
            conjuncts.append(self._ref(schema["$ref"], where))
        node.all_of = tuple(conjuncts)

    def _types(self, node: Node, schema: Mapping[str, Any], where: str) -> None:
        declared = schema.get("type")
        if declared is None:
            return
        names = [declared] if isinstance(declared, str) else declared
        if not isinstance(names, list) or not names:
            raise SchemaError(f"{where}/type: expected a type name or a list of them")
        if schema.get("nullable") is True and "null" not in names:
            names = [*names, "null"]
        kinds: frozenset[str] = frozenset()
        for name in names:
            if name not in _TYPE_KINDS:
                raise SchemaError(f"{where}/type: unknown type {name!r}")
            kinds |= _TYPE_KINDS[name]
        node.type_kinds = node.kinds = kinds
        node.type_desc = " or ".join(names)
        node.integer = "integer" in names and "number" not in names

    def _choices(self, node: Node, schema: Mapping[str, Any], where: str) -> None:
        options: list[Sequence[Any]] = []
        if "enum" in schema:
            if not isinstance(schema["enum"], list):
                raise SchemaError(f"{where}/enum: expected a list")
            options.append(schema["enum"])
        if "const" in schema:
            options.append([schema["const"]])
        for values in options:
            kinds, strings, numbers = _classify(values, where)
            node.kinds &= kinds
            node.strings = strings if node.strings is None else node.strings & strings
            node.numbers = numbers if node.numbers is None else node.numbers & numbers

    def _object(self, node: Node, schema: Mapping[str, Any], where: str) -> None:
        properties = schema.get("properties", {})
        if not isinstance(properties, Mapping):
            raise SchemaError(f"{where}/properties: expected an object")
        node.properties = {
            str(name): self.node(sub, f"{where}/properties/{name}")
            for name, sub in properties.items()
        }
        required = schema.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise SchemaError(f"{where}/required: expected a list of names")
        node.required = tuple(required)
        if "additionalProperties" in schema and "patternProperties" not in schema:
            node.additional = self.node(
                schema["additionalProperties"], f"{where}/additionalProperties"
            )

    def _array(self, node: Node, schema: Mapping[str, Any], where: str) -> None:
        items = schema.get("items")
        # The list form (draft 4 tuples) and ``prefixItems`` give positions their own
        # schemas; applying ``items`` to every element there would reject valid arrays.
        if items is not None and not isinstance(items, list) and "prefixItems" not in schema:
            node.items = self.node(items, f"{where}/items")
        node.min_items = _count(schema, "minItems", where)
        node.max_items = _count(schema, "maxItems", where)

    def _bounds(self, node: Node, schema: Mapping[str, Any], where: str) -> None:
        node.minimum = _number(schema, "minimum", where)
        node.maximum = _number(schema, "maximum", where)
        # Draft 4 spelled exclusive bounds as booleans that modify minimum/maximum.
        if schema.get("exclusiveMinimum") is True:
            node.exclusive_minimum, node.minimum = node.minimum, None
        else:
            node.exclusive_minimum = _number(schema, "exclusiveMinimum", where)
        if schema.get("exclusiveMaximum") is True:
            node.exclusive_maximum, node.maximum = node.maximum, None
        else:
            node.exclusive_maximum = _number(schema, "exclusiveMaximum", where)

    def _list(self, schema: Mapping[str, Any], key: str, where: str) -> tuple[Node, ...]:
        members = schema.get(key)
        if members is None:
            return ()
        if not isinstance(members, list) or not members:
            raise SchemaError(f"{where}/{key}: expected a non-empty list of schemas")
        return tuple(self.node(sub, f"{where}/{key}/{i}") for i, sub in enumerate(members))

    def _ref(self, ref: object, where: str) -> Node:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise SchemaError(f"{where}/$ref: only references inside the schema ('#/...')")
        target: object = self._root
        path = ref[1:]
        if path and not path.startswith("/"):
            raise SchemaError(f"{where}/$ref: anchors are not supported, use a '#/...' pointer")
        for raw in path.split("/")[1:] if path else []:
            token = unquote(raw).replace("~1", "/").replace("~0", "~")
            if isinstance(target, Mapping) and token in target:
                target = target[token]
            elif _is_index(target, token):
                target = target[int(token)]
            else:
                raise SchemaError(f"{where}/$ref: {ref!r} does not resolve")
        return self.node(target, ref)


def _is_index(target: object, token: str) -> TypeGuard[list[Any]]:
    """Whether ``token`` is an ASCII decimal index within the list ``target``."""
    return (
        isinstance(target, list)
        and token.isascii()
        and token.isdigit()
        and int(token) < len(target)
    )


def _classify(
    values: Iterable[Any], where: str
) -> tuple[frozenset[str], frozenset[str], frozenset[Decimal]]:
    """Split enum members by kind; numbers as exact decimals so ``1`` equals ``1.0``."""
    kinds: set[str] = set()
    strings: set[str] = set()
    numbers: set[Decimal] = set()
    for value in values:
        if value is True or value is False or value is None:
            kinds.add({True: TRUE, False: FALSE, None: NULL}[value])
        elif isinstance(value, str):
            kinds.add(STRING)
            strings.add(value)
        elif isinstance(value, int | float):
            kinds.add(NUMBER)
            numbers.add(_decimal(value, f"{where}/enum"))
        elif isinstance(value, Mapping):
            kinds.add(OBJECT)
        elif isinstance(value, list):
            kinds.add(ARRAY)
        else:
            raise SchemaError(f"{where}/enum: {type(value).__name__} is not a JSON value")
    return frozenset(kinds), frozenset(strings), frozenset(numbers)


def _count(schema: Mapping[str, Any], key: str, where: str) -> int | None:
    value = schema.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SchemaError(f"{where}/{key}: expected a non-negative integer")
    return value


def _number(schema: Mapping[str, Any], key: str, where: str) -> Decimal | None:
    value = schema.get(key)
    return None if value is None else _decimal(value, f"{where}/{key}")


def _decimal(value: object, where: str) -> Decimal:
    # repr() gives the shortest text that round-trips, so a schema's 0.1 means 0.1 and not
    # the binary float nearest to it.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SchemaError(f"{where}: expected a number")
    result = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not result.is_finite():
        raise SchemaError(f"{where}: expected a finite number")
    return result


def _is_integral(number: Decimal) -> bool:
    """Exact test without context rounding, so a 5,000-digit number is judged correctly."""
    _, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # finite: JSON has no NaN or Infinity
    return exponent >= 0 or not any(digits[exponent:])


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
        if self.name == "oneOf" and len(self.branches) > 1:
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

    __slots__ = ("_listeners", "_root", "_scalar", "_stack", "failed")

    def __init__(self, root: Node) -> None:
        self._root = root.flat()
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
    if frame.integer and not _is_integral(number):
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
