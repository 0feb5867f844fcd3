"""Validators of the redact stage's detectors: what turns a candidate's look-alikes away.

A pattern finds candidates; a validator decides whether one is the real thing (a Luhn
digit, an issuer's range and length, an IBAN's mod-97, a number in a region's numbering
plan). Each takes the candidate as the stage's view shows it (NFKC, format characters
removed, JSON strings decoded) and returns whether to redact it.

Key formats are exact (``AKIA`` and 16 characters, ``ghp_`` and 36): a value of the exact
format is redacted even when it looks like a placeholder, failing closed as a secret
scanner does, unless every character of its body is ``x`` (the placeholder convention
``AKIAXXXXXXXXXXXXXXXX``) or it is listed in the stage's ``allow``. Only the loose formats
(``sk-`` and any 32 token characters) still ask for a random-looking body.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence

import phonenumbers

Validator = Callable[[str], bool]

_DIGITS = frozenset("0123456789")
_LINE_BREAK = re.compile(r"[ ]?\r?\n")


def unwrapped(value: str) -> str:
    """``value`` without the one line break a wrapped value may carry."""
    return _LINE_BREAK.sub("", value, count=1)


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


# (lowest prefix, highest prefix, valid lengths), prefixes compared on as many digits as
# they have. Ranges and lengths per issuer as the networks publish them (Visa 13/16/19
# only, so a 15-digit IMEI starting with 4 is not a Visa).
_ISSUERS: tuple[tuple[str, str, frozenset[int]], ...] = (
    ("4", "4", frozenset({13, 16, 19})),  # Visa, Visa Electron
    ("51", "55", frozenset({16})),  # Mastercard
    ("2221", "2720", frozenset({16})),  # Mastercard 2-series
    ("34", "34", frozenset({15})),  # American Express
    ("37", "37", frozenset({15})),
    ("6011", "6011", frozenset(range(16, 20))),  # Discover
    ("644", "649", frozenset(range(16, 20))),
    ("65", "65", frozenset(range(16, 20))),
    ("3528", "3589", frozenset(range(16, 20))),  # JCB
    ("300", "305", frozenset(range(14, 20))),  # Diners Club
    ("36", "36", frozenset(range(14, 20))),
    ("38", "39", frozenset(range(14, 20))),
    ("62", "62", frozenset(range(16, 20))),  # UnionPay
    ("5018", "5018", frozenset(range(12, 20))),  # Maestro
    ("5020", "5020", frozenset(range(12, 20))),
    ("5038", "5038", frozenset(range(12, 20))),
    ("5893", "5893", frozenset(range(12, 20))),
    ("6304", "6304", frozenset(range(12, 20))),
    ("6759", "6759", frozenset(range(12, 20))),
    ("6761", "6763", frozenset(range(12, 20))),
    ("6771", "6771", frozenset(range(16, 20))),  # Laser
    ("5019", "5019", frozenset({16})),  # Dankort
    ("1", "1", frozenset({15})),  # UATP, AirPlus (122, 192)
    ("2200", "2204", frozenset(range(16, 20))),  # Mir
    ("9792", "9792", frozenset({16})),  # Troy
    ("636", "636", frozenset(range(16, 20))),  # InterPayment
    ("60", "60", frozenset({16})),  # RuPay
    ("508", "508", frozenset({16})),
    ("81", "82", frozenset({16})),
)


def card_number_ok(digits: str) -> bool:
    """``digits`` (no separators) are a card number: an issuer's prefix and length, and
    a valid Luhn digit."""
    n = len(digits)
    return luhn_ok(digits) and any(
        n in lengths and lo <= digits[: len(lo)] <= hi for lo, hi, lengths in _ISSUERS
    )


_CARD_SEPARATORS = re.compile(r"[ .\-]")


def card_ok(value: str) -> bool:
    """A payment card: known issuer prefix and length, Luhn-valid, tidy grouping.

    Groups of at least three digits with one kind of separator (the pattern's job) turn
    ISBNs and phone-like runs away. Greedy matching may swallow a group that follows the
    number (a year, a CVV), so a grouped value also passes when a prefix ending on a group
    boundary is a valid card; the whole match is then redacted, erring on the safe side.
    A value wrapped over a line break must be a card as a whole; otherwise the stage tries
    its part before the break.
    """
    if "\n" in value:
        return card_number_ok("".join(c for c in value if c in _DIGITS))
    groups = _CARD_SEPARATORS.split(value)
    if len(groups) > 1:
        digits = "".join(groups)
        ends = [sum(map(len, groups[: i + 1])) for i in range(len(groups))]
        return any(card_number_ok(digits[:end]) for end in reversed(ends) if end >= 12)
    return card_number_ok(value)


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
    serial 0000 (separated by dashes, dots or spaces)."""
    area, group, serial = re.split(r"[\- .]", value)
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


DEFAULT_REGIONS: tuple[str, ...] = ("US", "GB", "DE", "FR", "ES", "NL", "JP", "IN", "AU", "BR")
"""Regions whose national formats the phone detector knows unless configured otherwise.
Left out on purpose: plans so open that dates validate (``01.02.2024`` in Italy)."""

_DATE = re.compile(r"[0-9]{1,2}([./\-])[0-9]{1,2}\1(?:[0-9]{2}|[0-9]{4})")


def phone_checker(regions: Sequence[str] = DEFAULT_REGIONS) -> Validator:
    """A phone validator that knows the national formats of ``regions``.

    International forms need a number that is possible in its country's plan (the right
    length) after ``+``, valid after the ``00`` prefix; national forms need one that is
    valid in one of the regions' plans (``phonenumbers``: libphonenumber's metadata),
    since without a country code a number is only worth redacting when a plan has it.
    """
    order = tuple(regions)

    def phone_ok(value: str) -> bool:
        compact = value.replace("\n", " ")
        if compact.startswith(("+", "00")):
            # "+" says phone number; "00" is also how a group of digits can begin, so
            # the number must be valid in its country's plan, not just possible.
            try:
                number = phonenumbers.parse("+" + compact.removeprefix("00").lstrip("+"))
            except phonenumbers.NumberParseException:
                return False
            if compact[0] == "+":
                return phonenumbers.is_possible_number(number)
            return phonenumbers.is_valid_number(number)
        if _DATE.fullmatch(compact) or sum(c in _DIGITS for c in compact) < 8:
            return False
        for region in order:
            try:
                number = phonenumbers.parse(compact, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(number):
                return True
        return False

    return phone_ok


_IMAGE_SUFFIXES = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp", "tif"})


def email_ok(value: str) -> bool:
    """Turn away the two common non-addresses: ``icon@2x.png`` asset names (no such TLD)
    and ``git@host`` SSH remotes (a service login, not a person). A domain literal must
    hold an IP address (``user@[192.0.2.1]``, ``user@[IPv6:2001:db8::1]``)."""
    local, _, domain = value.rpartition("@")
    if domain.startswith("["):
        literal = domain[1:-1].removeprefix("IPv6:")
        try:
            ipaddress.ip_address(literal)
        except ValueError:
            return False
        return True
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
    """Loose formats' test: real keys are random, prose (``sk-learn-...``) is not."""
    kinds = (
        any(c.islower() for c in body)
        + any(c.isupper() for c in body)
        + any(c in _DIGITS for c in body)
    )
    return kinds >= classes and len(set(body)) >= distinct


def _not_placeholder(body: str) -> bool:
    """An exact format's only way out: a body of nothing but ``x`` (and separators)."""
    return bool(set(body.lower()) - set("x-_"))


def openai_key_ok(value: str) -> bool:
    """Random body after ``sk-`` (and ``proj-``...), and not an Anthropic key; the legacy
    format (``T3BlbkFJ`` in the middle) is exact."""
    value = unwrapped(value)
    body = value[3:]
    for kind in ("proj-", "svcacct-", "admin-"):
        body = body.removeprefix(kind)
    if body.startswith("ant-") or len(body) < 32:
        return False
    return "T3BlbkFJ" in body or _varied(body)


def anthropic_key_ok(value: str) -> bool:
    """Exact format ``sk-ant-<kind><version>-`` and a long body."""
    body = unwrapped(value).split("-", 3)[-1]
    return len(body) >= 32 and _not_placeholder(body)


def stripe_key_ok(value: str) -> bool:
    """Exact format ``sk_live_`` and friends."""
    body = unwrapped(value).split("_", 2)[-1]
    return len(body) >= 16 and _not_placeholder(body)


def github_token_ok(value: str) -> bool:
    """Exact format ``ghp_`` (and ``gho_``...) with 36 characters, or ``github_pat_``."""
    value = unwrapped(value)
    pat = value.startswith("github_pat_")
    body = value[len("github_pat_") :] if pat else value[len("ghp_") :]
    return len(body) >= (70 if pat else 36) and _not_placeholder(body)


def aws_key_ok(value: str) -> bool:
    """Exact format: a key id prefix and 16 upper-case letters or digits."""
    value = unwrapped(value)
    return len(value) == 20 and _not_placeholder(value[4:])


_SLACK_ID = re.compile(r"-[0-9]{8,}(?:-|$)")


def slack_token_ok(value: str) -> bool:
    """A Slack token carries numeric team or user ids (``xoxb-1612...-...``): then the
    format is exact; without one it must at least look random (``xoxb-not-a-token`` is
    prose)."""
    value = unwrapped(value)
    body = value.split("-", 1)[-1]
    if _SLACK_ID.search(value):
        return _not_placeholder(body)
    return (
        len(value) >= 24
        and _varied(body, classes=1, distinct=8)
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

    ``value`` may be a whole token or the ``header.payload.`` prefix the stage commits on
    (an unsigned token is exactly that).
    """
    parts = unwrapped(value).split(".")
    if len(parts) < 2 or "\n" in parts[0] + parts[1]:
        return False
    header, payload = _b64_json(parts[0]), _b64_json(parts[1])
    return isinstance(header, dict) and "alg" in header and isinstance(payload, dict)


VALIDATORS: Mapping[str, Validator] = {
    "luhn": luhn_ok,
    "card": card_ok,
    "mod97": mod97_ok,
    "iban": iban_ok,
    "ssn": ssn_ok,
    "phone": phone_checker(),
    "email": email_ok,
    "ipv4": ipv4_ok,
    "ipv6": ipv6_ok,
    "jwt": jwt_ok,
}
"""Validators a custom detector may name in config."""
