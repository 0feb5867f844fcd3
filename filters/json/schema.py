"""Compiling a JSON Schema for incremental checking for a document that arrives one piece at a time.

The syntax scanner in :mod:`filters.json.automaton` turns the character stream into events
(a value starts, string characters, a key or value string ends, a number ends, a container
closes) and a :class:`SchemaChecker` judges each event as it happens. A violation is reported
at the first character that makes it *certain*: a wrong type at the value's first character,
an unknown property when its key's closing quote arrives, a string past ``maxLength`` (or no
longer a prefix of any ``enum`` member) at the character that makes it so, a missing
required property at the object's ``}``, a number's bounds when the number ends.

Keywords decided here, while the document streams (:data:`~filters.json.events.DECIDED`):

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

Every other keyword (``pattern``, ``format``, ``patternProperties``, ``prefixItems``,
``uniqueItems``, ``not``, ``if``/``then``/``else``, ``multipleOf``, ``contains``,
``propertyNames``, ``dependentRequired``, ...), and the cases above that are only
approximated (an ``enum`` member that is an object or array, the list form of ``items``),
make a node *inexact* (:meth:`Node.exact`): the stream is not stopped for them, and
:mod:`filters.json.verdict` runs a full validator over the complete document at the end.
Annotations (:data:`~filters.json.events.ANNOTATIONS`) decide nothing and are skipped.

Messages name schema facts (types, limits, required names) but never echo the document's
own content, since the reason is shown to the client and logged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final, TypeGuard
from urllib.parse import unquote

from filters.json.events import (
    ALL_KINDS,
    ANNOTATIONS,
    ARRAY,
    DECIDED,
    FALSE,
    NULL,
    NUMBER,
    OBJECT,
    STRING,
    TRUE,
    TYPE_KINDS,
    SchemaError,
)

MAX_SCHEMA_DEPTH: Final = 100
"""Deeper schemas are refused: compiling (and checking) recurses once per level."""


class Node:
    """One compiled schema object; plain attributes because the checker reads them per event."""

    __slots__ = (
        "_exact",
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
        "own_exact",
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
        self.own_exact = True
        """Every keyword of this schema object is decided here (children aside)."""
        self._flat: tuple[Node, ...] | None = None
        self._possible: frozenset[str] | None = None
        self._exact: bool | None = None

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

    def children(self) -> tuple[Node, ...]:
        """Every node this one applies to a value or its members."""
        extra = [n for n in (self.additional, self.items) if n is not None]
        return (
            *self.properties.values(),
            *extra,
            *self.all_of,
            *self.any_of,
            *self.one_of,
        )

    def exact(self) -> bool:
        """Whether the incremental checker alone decides this schema in full: when it does
        not, the document also needs the validator's verdict at the end."""
        if self._exact is None:
            seen: set[int] = set()
            todo: list[Node] = [self]
            exact = True
            while todo and exact:
                node = todo.pop()
                if id(node) not in seen:
                    seen.add(id(node))
                    exact = node.own_exact
                    todo.extend(node.children())
            self._exact = exact
        return self._exact


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
        node.own_exact = _own_exact(schema)
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
            if name not in TYPE_KINDS:
                raise SchemaError(f"{where}/type: unknown type {name!r}")
            kinds |= TYPE_KINDS[name]
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


def _own_exact(schema: Mapping[str, Any]) -> bool:
    """Whether every keyword of ``schema`` itself is decided in full while streaming."""
    if not DECIDED.union(ANNOTATIONS).issuperset(schema):
        return False
    if isinstance(schema.get("items"), list):
        return False
    members = [*schema.get("enum", ()), *(("const" in schema) * [schema.get("const")])]
    return not any(isinstance(m, Mapping | list) for m in members)


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


def is_integral(number: Decimal) -> bool:
    """Exact test without context rounding, so a 5,000-digit number is judged correctly."""
    _, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # finite: JSON has no NaN or Infinity
    return exponent >= 0 or not any(digits[exponent:])
