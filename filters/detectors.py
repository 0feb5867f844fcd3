"""Built-in detectors of the redact stage: candidate patterns, validators, boundaries.

A detector is a regex for *candidates* plus a validator that turns look-alikes away (Luhn
for cards, mod-97 for IBANs, a JSON header for JWTs...). The patterns are written for a
stream that arrives in pieces, which is why they follow a few rules:

- They never match ``"``, ``\\`` or braces, so a replacement cannot break a JSON document.
- The left boundary is a one-character lookbehind class (``before``) and the right
  boundary a negative lookahead of at most ``lookahead`` characters: the stage must see
  that many characters past a match before the match is final.
- They are bounded wherever the format is, so a candidate cannot be held for ever; the
  unbounded ones (JWT, API keys) are caught by the stage's overflow rule instead.
- Digits and letters are ASCII classes, never ``\\d``/``\\w``: other scripts' digits are
  not card numbers, and a letter from another script is a boundary, not part of a value.
- Each also declares its ``opening``, how every match begins (a stdlib ``re`` pattern):
  the stage searches that first, since on prose it almost always rules the detector out
  at a fraction of the cost of a partial ``regex`` search. ``tests/test_detectors.py``
  checks every opening against its pattern.
"""

from __future__ import annotations

import base64
import binascii
import enum
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

Validator = Callable[[str], bool]


class Tail(enum.Enum):
    """What the stage does right after a match of this detector."""

    NONE = "none"
    """Nothing: scanning resumes after the match."""
    RUN = "run"
    """Drop the run of ``tail_chars`` that follows (a JWT's signature), so a token longer
    than the hold-back bound needs only its prefix held."""
    PEM = "pem"
    """Drop everything up to the matching END line (or, in JSON, the end of the string)."""


@dataclass(frozen=True, slots=True)
class DetectorSpec:
    """One detector, declared once and compiled per channel kind by the stage."""

    name: str
    """Rule name in findings and config (``email``)."""
    label: str
    """Placeholder label (``EMAIL`` gives ``[EMAIL]``)."""
    body: str
    """The candidate pattern, without boundaries."""
    before: str = ""
    """Character class that must not precede a match (``[A-Za-z0-9]``); empty for none."""
    after: str = ""
    """Negative lookahead source that ends a match; empty for none."""
    lookahead: int = 1
    """How many characters past a match ``after`` may inspect."""
    validator: Validator | None = None
    first: str = ""
    """Every character a match can start with; empty for any. Lets the stage skip the
    detector, without a regex call, on new text that contains none of them."""
    decisive: bool = False
    """A complete match can neither grow nor be displaced by more input (the pattern ends
    in a literal and has a single way through), so it is final even at the buffer's end."""
    tail: Tail = Tail.NONE
    tail_chars: str = ""
    """Character class dropped after the match when ``tail`` is ``RUN``."""
    opening: str = ""
    """How every match begins, in stdlib ``re`` syntax, with ``\\Z`` wherever the text
    may end: a necessary condition for a candidate (complete or still growing) to start
    at a position, ``before`` aside. The stage tries it first because a stdlib search
    costs a fraction of a partial ``regex`` search and rules out almost all prose. Empty
    for none (custom detectors)."""
    needs: str = ""
    """A character every complete match contains, where ``opening`` is exact up to it:
    on text without it, the candidates are exactly where ``opening`` ends at ``\\Z``
    (still growing), so the stage needs no ``regex`` call at all. Empty for none."""


# --- validators -----------------------------------------------------------------------

_DIGITS = frozenset("0123456789")


def luhn_ok(value: str) -> bool:
    """The Luhn checksum of the digits in ``value`` (separators ignored) is valid."""
    digits = [int(c) for c in value if c in _DIGITS]
    if len(digits) < 2:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# (prefix length, lowest prefix, highest prefix, shortest number, longest number)
_ISSUERS: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 4, 4, 13, 19),  # Visa
    (2, 51, 55, 16, 16),  # Mastercard
    (4, 2221, 2720, 16, 16),  # Mastercard 2-series
    (2, 34, 34, 15, 15),  # American Express
    (2, 37, 37, 15, 15),  # American Express
    (4, 6011, 6011, 16, 19),  # Discover
    (3, 644, 649, 16, 19),  # Discover
    (2, 65, 65, 16, 19),  # Discover
    (4, 3528, 3589, 16, 19),  # JCB
    (3, 300, 305, 14, 19),  # Diners Club
    (2, 36, 36, 14, 19),  # Diners Club
    (2, 38, 38, 14, 19),  # Diners Club
    (2, 62, 62, 16, 19),  # UnionPay
)


def _card_number_ok(digits: str) -> bool:
    n = len(digits)
    return luhn_ok(digits) and any(
        lo <= int(digits[:size]) <= hi and shortest <= n <= longest
        for size, lo, hi, shortest, longest in _ISSUERS
    )


_CARD_SEPARATORS = re.compile(r"[ \-]")


def card_ok(value: str) -> bool:
    """A payment card: known issuer prefix and length, Luhn-valid, tidy grouping.

    Groups of at least three digits with one kind of separator (the pattern's job) turn
    ISBNs and phone-like runs away. Greedy matching may swallow a group that follows the
    number (a year, a CVV), so a grouped value also passes when a prefix ending on a group
    boundary is a valid card; the whole match is then redacted, erring on the safe side.
    """
    groups = _CARD_SEPARATORS.split(value)
    if len(groups) > 1:
        digits = "".join(groups)
        ends = [sum(map(len, groups[: i + 1])) for i in range(len(groups))]
        return any(_card_number_ok(digits[:end]) for end in reversed(ends) if end >= 13)
    return _card_number_ok(value)


IBAN_LENGTHS: Mapping[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
    "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
    "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27,
    "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28,
    "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip
"""IBAN length per country (SWIFT IBAN registry); other country codes are rejected."""


def mod97_ok(value: str) -> bool:
    """ISO 13616 check: move the first four characters to the end, read letters as
    10..35, and the number is 1 modulo 97."""
    compact = value.replace(" ", "").upper()
    if len(compact) < 5 or not compact.isalnum() or not compact.isascii():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def iban_ok(value: str) -> bool:
    """An IBAN: known country, that country's length, mod-97 valid.

    In the spaced form a following four-character word can look like one more group, so
    a longer spaced match passes when the IBAN proper ends on a group boundary.
    """
    compact = value.replace(" ", "")
    expected = IBAN_LENGTHS.get(compact[:2])
    if expected is None or len(compact) < expected:
        return False
    if len(compact) > expected and (" " not in value or expected % 4):
        return False
    return mod97_ok(compact[:expected])


def ssn_ok(value: str) -> bool:
    """A US SSN as the SSA issues them: no area 000, 666 or 900-999, no group 00, no
    serial 0000."""
    area, group, serial = value.split("-")
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def phone_ok(value: str) -> bool:
    """International numbers carry 8-15 digits (E.164); national ones are NANP's ten."""
    digits = sum(c in _DIGITS for c in value)
    return 8 <= digits <= 15 if value.startswith("+") else digits == 10


_IMAGE_SUFFIXES = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp", "tif"})


def email_ok(value: str) -> bool:
    """Turn away the two common non-addresses: ``icon@2x.png`` asset names (no such TLD)
    and ``git@host`` SSH remotes (a service login, not a person)."""
    local, _, domain = value.rpartition("@")
    return local.lower() != "git" and domain.rsplit(".", 1)[-1].lower() not in _IMAGE_SUFFIXES


def ipv4_ok(value: str) -> bool:
    """Four dotted octets 0-255 without leading zeros (what ``ipaddress`` accepts)."""
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


def ipv6_ok(value: str) -> bool:
    """A valid IPv6 address that looks like one somebody has.

    ``::1``, ``::`` and short forms like ``1::2`` are what Python slices and C++ scopes
    look like, so at least two groups are needed and either three groups, a full
    four-digit group or an embedded IPv4 address.
    """
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    groups = [g for g in value.split(":") if g]
    return len(groups) >= 2 and (len(groups) >= 3 or "." in value or max(map(len, groups)) == 4)


def _varied(body: str, classes: int = 2, distinct: int = 10) -> bool:
    """Real keys are random; placeholders (``xxxx``, ``your-key-here``) are not."""
    kinds = (
        any(c.islower() for c in body)
        + any(c.isupper() for c in body)
        + any(c in _DIGITS for c in body)
    )
    return kinds >= classes and len(set(body)) >= distinct


def openai_key_ok(value: str) -> bool:
    """Random body after ``sk-`` (and ``proj-``...), and not an Anthropic key."""
    body = value[3:]
    for kind in ("proj-", "svcacct-", "admin-"):
        body = body.removeprefix(kind)
    return not body.startswith("ant-") and _varied(body)


def anthropic_key_ok(value: str) -> bool:
    """Random body after ``sk-ant-<kind><version>-``."""
    return _varied(value.split("-", 3)[-1])


def stripe_key_ok(value: str) -> bool:
    """Random body after ``sk_live_`` and friends."""
    return _varied(value.split("_", 2)[-1])


def github_token_ok(value: str) -> bool:
    """Random body after ``ghp_`` or ``github_pat_``."""
    prefix = len("github_pat_") if value.startswith("github_pat_") else len("ghp_")
    return _varied(value[prefix:])


def aws_key_ok(value: str) -> bool:
    """Key ids are upper-case and digits only, so only the variety of the body counts."""
    return len(set(value[4:])) >= 6


def slack_token_ok(value: str) -> bool:
    """Long enough and random enough: ``xoxb-not-a-token`` is prose."""
    return (
        len(value) >= 24
        and _varied(value[5:], classes=1, distinct=8)
        and any(c in _DIGITS for c in value)
    )


def _b64_json(part: str) -> object:
    """Decode one base64url segment to JSON, or ``None`` when it is not JSON."""
    try:
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (binascii.Error, ValueError):
        return None


def jwt_ok(value: str) -> bool:
    """Header and payload decode to JSON objects and the header names its ``alg``.

    ``value`` may be a whole token or the ``header.payload.`` prefix the stage commits on.
    """
    parts = value.split(".")
    if len(parts) < 2:
        return False
    header, payload = _b64_json(parts[0]), _b64_json(parts[1])
    return isinstance(header, dict) and "alg" in header and isinstance(payload, dict)


VALIDATORS: Mapping[str, Validator] = {
    "luhn": luhn_ok,
    "card": card_ok,
    "mod97": mod97_ok,
    "iban": iban_ok,
    "ssn": ssn_ok,
    "phone": phone_ok,
    "email": email_ok,
    "ipv4": ipv4_ok,
    "ipv6": ipv6_ok,
    "jwt": jwt_ok,
}
"""Validators a custom detector may name in config."""


# --- the table ------------------------------------------------------------------------

_DIGITS_STR = "0123456789"
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ALNUM = _DIGITS_STR + _UPPER + _UPPER.lower()
_TOKEN = "[A-Za-z0-9_\\-]"
_END_TOKEN = f"(?!{_TOKEN})"
_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_HEX = "[0-9A-Fa-f]"
_PEM_WORDS = "(?:[A-Z0-9]{1,12}[ ]){0,3}PRIVATE[ ]KEY(?:[ ]BLOCK)?-----"


def _prefix(*atoms: str) -> str:
    """The pattern of text that is ``atoms`` in a row, or a prefix of them that ends the
    text: ``_prefix("e", "y")`` matches ``ey`` and a final ``e``."""
    pattern = atoms[-1]
    for atom in reversed(atoms[:-1]):
        pattern = f"{atom}(?:\\Z|{pattern})"
    return pattern


PEM_END = f"-----END[ ]{_PEM_WORDS}"
"""The line that closes a private key block."""
PEM_END_MAX = 9 + 3 * 13 + 22
"""The longest END line ``PEM_END`` matches: how much suppressed text the stage keeps to
find an END line cut across feeds."""

BUILTIN: tuple[DetectorSpec, ...] = (
    # Order is priority when two detectors match the same span.
    DetectorSpec(
        name="private_key",
        label="PRIVATE_KEY",
        first="-",
        opening=_prefix("-", "-", "-", "-", "-", "B"),
        body=f"-----BEGIN[ ]{_PEM_WORDS}",
        lookahead=0,
        decisive=True,
        tail=Tail.PEM,
    ),
    DetectorSpec(
        name="jwt",
        label="JWT",
        first="e",
        opening=_prefix("e", "y"),
        # Header and payload are JSON objects, so base64url of '{' plus one more char.
        body=f"ey{_TOKEN}{{10,}}\\.ey{_TOKEN}{{4,}}\\.",
        before=_TOKEN,
        lookahead=0,
        validator=jwt_ok,
        decisive=True,
        tail=Tail.RUN,
        tail_chars=_TOKEN,
    ),
    DetectorSpec(
        name="anthropic_key",
        label="ANTHROPIC_KEY",
        first="s",
        opening=_prefix("s", "k", "-", "a"),
        body=f"sk-ant-[a-z]{{2,10}}[0-9]{{2}}-{_TOKEN}{{32,}}",
        before=_TOKEN,
        after=_END_TOKEN,
        validator=anthropic_key_ok,
    ),
    DetectorSpec(
        name="openai_key",
        label="OPENAI_KEY",
        first="s",
        opening=_prefix("s", "k", "-"),
        body=f"sk-(?:proj-|svcacct-|admin-)?{_TOKEN}{{32,}}",
        before=_TOKEN,
        after=_END_TOKEN,
        validator=openai_key_ok,
    ),
    DetectorSpec(
        name="stripe_key",
        label="STRIPE_KEY",
        first="sr",
        opening=_prefix("[sr]", "k", "_"),
        body="[sr]k_(?:live|test)_[A-Za-z0-9]{16,}",
        before="[A-Za-z0-9_]",
        after="(?![A-Za-z0-9_])",
        validator=stripe_key_ok,
    ),
    DetectorSpec(
        name="github_token",
        label="GITHUB_TOKEN",
        first="g",
        opening=_prefix("g", "[hi]", "[pousrt]", "[_h]"),
        body="(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{70,})",
        before="[A-Za-z0-9_]",
        after="(?![A-Za-z0-9_])",
        validator=github_token_ok,
    ),
    DetectorSpec(
        name="slack_token",
        label="SLACK_TOKEN",
        first="x",
        opening=_prefix("x", "o", "x", "[abprs]", "-"),
        body="xox[abprs]-[A-Za-z0-9]{1,64}(?:-[A-Za-z0-9]{1,64}){1,5}",
        before=_TOKEN,
        after=_END_TOKEN,
        validator=slack_token_ok,
    ),
    DetectorSpec(
        name="aws_access_key",
        label="AWS_ACCESS_KEY",
        first="A",
        opening=_prefix("A", "[KS]", "I", "A"),
        body="(?:AKIA|ASIA)[A-Z0-9]{16}",
        before="[A-Za-z0-9]",
        after="(?![A-Za-z0-9])",
        validator=aws_key_ok,
    ),
    DetectorSpec(
        name="email",
        label="EMAIL",
        first=_ALNUM + "._%+-",
        opening="(?<!://)[A-Za-z0-9._%+\\-]{1,64}(?:@|\\Z)",
        needs="@",
        # The local part is capped at RFC 5321's 64, which also caps how long a trailing
        # word is held while it might still turn out to be one. After "://" it is a URL's
        # login (postgres://app@db), not a mailbox.
        body="(?<!://)[A-Za-z0-9._%+\\-]{1,64}@(?:[A-Za-z0-9\\-]{1,63}\\.)+[A-Za-z]{2,63}",
        before="[A-Za-z0-9._%+\\-]",
        after="(?![A-Za-z0-9\\-])",
        validator=email_ok,
    ),
    DetectorSpec(
        name="iban",
        label="IBAN",
        first=_UPPER,
        opening=_prefix("[A-Z]", "[A-Z]", "[0-9]", "[0-9]"),
        # Compact, or spaced in groups of four with a shorter last group.
        body="[A-Z]{2}[0-9]{2}(?:[A-Z0-9]{11,30}|(?:[ ][A-Z0-9]{4}){2,7}(?:[ ][A-Z0-9]{1,4})?)",
        before="[A-Za-z0-9]",
        after="(?![A-Za-z0-9])",
        validator=iban_ok,
    ),
    DetectorSpec(
        name="card",
        label="CARD",
        first=_DIGITS_STR,
        opening=_prefix("[0-9]", "[0-9]", "[0-9]"),
        # Plain, or groups of 3-6 digits with one kind of separator: a short number
        # followed by a space ("42 ") is then not worth holding.
        body="(?:[0-9]{13,19}|[0-9]{3,6}([ \\-])[0-9]{3,6}(?:\\1[0-9]{3,6}){0,4})",
        before="[A-Za-z0-9_.\\-]",
        after="(?![A-Za-z0-9_]|\\.[0-9])",  # nor the integer part of a decimal
        lookahead=2,
        validator=card_ok,
    ),
    DetectorSpec(
        name="ssn",
        label="SSN",
        first=_DIGITS_STR,
        opening=_prefix("[0-9]", "[0-9]", "[0-9]", "-"),
        body="[0-9]{3}-[0-9]{2}-[0-9]{4}",
        before="[A-Za-z0-9_.\\-]",
        after="(?![A-Za-z0-9_]|-[0-9])",
        lookahead=2,
        validator=ssn_ok,
    ),
    DetectorSpec(
        name="phone",
        label="PHONE",
        first=_DIGITS_STR + "+(",
        opening="|".join(
            (
                _prefix("\\+", "[1-9]"),
                _prefix("\\(", "[2-9]"),
                _prefix("[2-9]", "[0-9]", "[0-9]", "[ .\\-]"),
            )
        ),
        body=(
            "(?:\\+[1-9][0-9]{7,14}"  # E.164
            "|\\+[1-9][0-9]{0,2}(?:[ .\\-](?:\\([0-9]{1,4}\\)|[0-9]{1,8})){2,6}"  # +44 20 ...
            "|(?:\\([2-9][0-9]{2}\\)[ ]?|[2-9][0-9]{2}[ .\\-])[2-9][0-9]{2}[ .\\-][0-9]{4})"  # NANP
        ),
        before="[A-Za-z0-9_+.\\-]",
        after="(?![A-Za-z0-9_]|[.\\-][0-9])",
        lookahead=2,
        validator=phone_ok,
    ),
    DetectorSpec(
        name="ipv6",
        label="IPV6",
        first=_DIGITS_STR + "abcdefABCDEF:",
        opening="[0-9A-Fa-f]{0,4}(?::|\\Z)",
        needs=":",
        body=f"{_HEX}{{0,4}}(?::{_HEX}{{0,4}}){{2,7}}(?:\\.[0-9]{{1,3}}){{0,3}}",
        before="[A-Za-z0-9_:.]",
        after="(?![A-Za-z0-9_:]|\\.[0-9])",
        lookahead=2,
        validator=ipv6_ok,
    ),
    DetectorSpec(
        name="ipv4",
        label="IPV4",
        first=_DIGITS_STR,
        opening="[0-9]{1,3}(?:\\.|\\Z)",
        # "version 1.2.3.4" is a version; "v1.2.3.4" is caught by the class.
        body=f"(?<![Vv]ersion[ ]){_OCTET}(?:\\.{_OCTET}){{3}}",
        before="[A-Za-z0-9_.]",
        after="(?![A-Za-z0-9_]|\\.[0-9])",
        lookahead=2,
    ),
)
"""Every built-in detector, in priority order."""

BUILTIN_NAMES: tuple[str, ...] = tuple(spec.name for spec in BUILTIN)

# An escaping backslash: one preceded by an even run of backslashes. The run is bounded so
# these lookbehinds reach at most 24 characters back, inside the 32 characters of released
# text the stage keeps, and so see the same text however the stream was split.
_ESCAPING = "(?<!\\\\)(?:\\\\\\\\){0,8}\\\\"
_NOT_ESCAPED = f"(?<!{_ESCAPING})"
_AFTER_ESCAPE = f"(?<={_ESCAPING}(?:[nrtbf]|u[0-9A-Fa-f]{{4}}))"


def pattern_source(spec: DetectorSpec, *, json: bool) -> str:
    """The full pattern of ``spec`` for a text or a JSON channel.

    In JSON a match may not start on an escaped character (``\\n``'s ``n``), and right
    after an escape such as ``\\n`` or ``\\u003c`` counts as a word boundary.
    """
    return _bounded(spec, spec.body, spec.after, json=json)


def opening_source(spec: DetectorSpec, *, json: bool) -> str:
    """``spec.opening`` behind the same left boundary as :func:`pattern_source`'s.

    Without ``after``, and with the left boundary identical, the pattern matches wherever
    a candidate may start and, up to ``spec.needs``, nowhere else. A text channel's is
    stdlib ``re`` syntax; a JSON channel's needs ``regex`` (variable-width lookbehinds).
    """
    return _bounded(spec, spec.opening, "", json=json)


def _bounded(spec: DetectorSpec, body: str, after: str, *, json: bool) -> str:
    if not json:
        before = f"(?<!{spec.before})" if spec.before else ""
        return f"{before}(?:{body}){after}"
    before = f"(?:(?<!{spec.before})|{_AFTER_ESCAPE})" if spec.before else ""
    return f'(?!["\\\\]){_NOT_ESCAPED}{before}(?:{body}){after}'
