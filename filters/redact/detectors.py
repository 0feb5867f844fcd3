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

import enum
from dataclasses import dataclass

from filters.redact.patterns import (
    ALNUM,
    BREAK,
    DIGITS_STR,
    DOMAIN,
    END_TOKEN,
    HEX,
    INTL_GROUPS,
    LOCAL,
    LOCAL_FIRST,
    OCTET,
    PEM_WORDS,
    QUOTED,
    QUOTED_CHAR,
    TOKEN,
    UPPER,
    WORD,
    prefix,
    wrapped,
)
from filters.redact.validators import (
    Validator,
    anthropic_key_ok,
    aws_key_ok,
    card_ok,
    email_ok,
    github_token_ok,
    iban_ok,
    ipv6_ok,
    jwt_ok,
    openai_key_ok,
    phone_checker,
    slack_token_ok,
    ssn_ok,
    stripe_key_ok,
)


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
    raw_json: bool = True
    """Also run on raw JSON (``normalise: false``); false for a form that only a view
    shows (a decoded quote)."""
    unicode_first: bool = False
    """A match may also start with a non-ASCII character (an internationalised email)."""
    needs: str = ""
    """A character every complete match contains, where ``opening`` is exact up to it:
    on text without it, the candidates are exactly where ``opening`` ends at ``\\Z``
    (still growing), so the stage needs no ``regex`` call at all. Empty for none."""


# --- the table ------------------------------------------------------------------------

BUILTIN: tuple[DetectorSpec, ...] = (
    # Order is priority when two detectors match the same span.
    DetectorSpec(
        name="private_key",
        label="PRIVATE_KEY",
        first="-",
        opening=prefix("-", "-", "-", "-", "-", "B"),
        body=f"-----BEGIN[ ]{PEM_WORDS}",
        lookahead=0,
        decisive=True,
        tail=Tail.PEM,
    ),
    DetectorSpec(
        name="jwt",
        label="JWT",
        first="e",
        opening=prefix("e", "y"),
        # Header and payload are JSON objects, so base64url of '{' plus one more char;
        # an empty payload is "e30". Unsigned tokens end at the second dot. Either part
        # may be wrapped over a line break: the validator decodes both.
        body=(f"ey{TOKEN}+(?:{BREAK}{TOKEN}+)?\\.(?:ey{TOKEN}+(?:{BREAK}{TOKEN}+)?|e30)\\."),
        before=TOKEN,
        lookahead=0,
        validator=jwt_ok,
        decisive=True,
        tail=Tail.RUN,
        tail_chars=TOKEN,
    ),
    DetectorSpec(
        name="anthropic_key",
        label="ANTHROPIC_KEY",
        first="s",
        opening=prefix("s", "k", "-", "a"),
        body=f"sk-ant-[a-z]{{2,10}}[0-9]{{2}}-{wrapped(TOKEN, 32)}",
        before=TOKEN,
        after=END_TOKEN,
        validator=anthropic_key_ok,
    ),
    DetectorSpec(
        name="openai_key",
        label="OPENAI_KEY",
        first="s",
        opening=prefix("s", "k", "-"),
        body=f"sk-(?:proj-|svcacct-|admin-)?{wrapped(TOKEN, 32)}",
        before=TOKEN,
        after=END_TOKEN,
        validator=openai_key_ok,
    ),
    DetectorSpec(
        name="stripe_key",
        label="STRIPE_KEY",
        first="sr",
        opening=prefix("[sr]", "k", "_"),
        body=f"[sr]k_(?:live|test)_{wrapped('[A-Za-z0-9]', 16)}",
        before="[A-Za-z0-9_]",
        after="(?![A-Za-z0-9_])",
        validator=stripe_key_ok,
    ),
    DetectorSpec(
        name="github_token",
        label="GITHUB_TOKEN",
        first="g",
        opening=prefix("g", "[hi]", "[pousrt]", "[_h]"),
        body=(
            f"(?:gh[pousr]_{wrapped('[A-Za-z0-9]', 36)}|github_pat_{wrapped('[A-Za-z0-9_]', 70)})"
        ),
        before="[A-Za-z0-9_]",
        after="(?![A-Za-z0-9_])",
        validator=github_token_ok,
    ),
    DetectorSpec(
        name="slack_token",
        label="SLACK_TOKEN",
        first="x",
        opening=prefix("x", "[oa]", "[xp]", "[abeoprs]", "[\\-.]"),
        # Bot, user, app-level and refresh tokens (xoxe.xoxp-..., xoxe-...).
        body=(
            "(?:xox[abeoprs]-|xoxe\\.xox[abeoprs]-|xapp-)"
            "[A-Za-z0-9]{1,64}(?:-[A-Za-z0-9]{1,64}){1,5}"
        ),
        before=TOKEN,
        after=END_TOKEN,
        validator=slack_token_ok,
    ),
    DetectorSpec(
        name="slack_webhook",
        label="SLACK_WEBHOOK",
        first="h",
        opening="|".join(
            (prefix("h", "t", "t", "p", "s?", ":"), prefix("h", "o", "o", "k", "s", "\\."))
        ),
        body=(
            "(?:https?://)?hooks\\.slack\\.com/(?:services|workflows|triggers)/"
            "T[A-Z0-9]{6,12}(?:/[A-Za-z0-9]{6,48}){2,3}"
        ),
        before="[A-Za-z0-9_\\-.]",
        after="(?![A-Za-z0-9])",
    ),
    DetectorSpec(
        name="aws_access_key",
        label="AWS_ACCESS_KEY",
        first="A",
        opening=prefix("A", "[3BCGIKNPRS]", "[ACDIKNOPST]", "[A-Z0-9]"),
        # Key id prefixes (IAM users, roles, STS, groups, certificates...), then 16.
        body=(
            "(?:A3T[A-Z0-9]|ABIA|ACCA|AGPA|AIDA|AIPA|AKIA|ANPA|ANVA|APKA|AROA|ASCA|ASIA)"
            f"{wrapped('[A-Z0-9]', 16, 16)}"
        ),
        before="[A-Za-z0-9]",
        after="(?![A-Za-z0-9])",
        validator=aws_key_ok,
    ),
    DetectorSpec(
        name="email",
        label="EMAIL",
        first=ALNUM + "._%+-!#$*^~",
        unicode_first=True,
        opening=f"(?<!://){LOCAL_FIRST}{LOCAL}{{0,63}}(?:@|\\Z)",
        needs="@",
        # The local part is capped at RFC 5321's 64, which also caps how long a trailing
        # word is held while it might still turn out to be one. After "://" it is a URL's
        # login (postgres://app@db), not a mailbox.
        body=f"(?<!://){LOCAL_FIRST}{LOCAL}{{0,63}}@{DOMAIN}",
        before=LOCAL,
        after=f"(?![{WORD}_\\-])",
        validator=email_ok,
    ),
    DetectorSpec(
        # A quoted local part ("john doe"@example.com): through the view only, where a
        # JSON string's \\" is a quote; raw JSON channels never show one unescaped.
        name="email",
        label="EMAIL",
        first='"',
        opening=f'"(?:{QUOTED_CHAR}{{0,32}}\\Z|{QUOTED_CHAR}{{1,32}}"(?:@|\\Z))',
        needs="@",
        body=f"{QUOTED}@{DOMAIN}",
        before=f"[{WORD}_]",
        after=f"(?![{WORD}_\\-])",
        validator=email_ok,
        raw_json=False,
    ),
    DetectorSpec(
        name="iban",
        label="IBAN",
        first=UPPER,
        opening=prefix("[A-Z]", "[A-Z]", "[0-9]", "[0-9]"),
        # Compact, or spaced in groups of four with a shorter last group.
        body="[A-Z]{2}[0-9]{2}(?:[A-Z0-9]{11,30}|(?:[ ][A-Z0-9]{4}){2,7}(?:[ ][A-Z0-9]{1,4})?)",
        before="[A-Za-z0-9]",
        after="(?![A-Za-z0-9])",
        validator=iban_ok,
    ),
    DetectorSpec(
        name="card",
        label="CARD",
        first=DIGITS_STR,
        opening=prefix("[0-9]", "[0-9]", "[0-9]"),
        # Plain, or groups of 3-6 digits with one kind of separator: a short number
        # followed by a space ("42 ") is then not worth holding. Either may be wrapped
        # over one line break (the validator then wants the whole to be a card).
        body=(
            "(?:[0-9]{1,18}\\r?\\n[0-9]{1,18}|[0-9]{12,19}"
            "|[0-9]{3,6}([ .\\-])[0-9]{3,6}(?:(?:\\1|\\1?\\r?\\n)[0-9]{3,6}){0,4})"
        ),
        before="[A-Za-z0-9_.\\-]",
        after="(?![A-Za-z0-9_]|\\.[0-9])",  # nor the integer part of a decimal
        lookahead=2,
        validator=card_ok,
    ),
    DetectorSpec(
        name="ssn",
        label="SSN",
        first=DIGITS_STR,
        opening=prefix("[0-9]", "[0-9]", "[0-9]", "[\\- .]"),
        body="[0-9]{3}([\\- .])[0-9]{2}\\1[0-9]{4}",
        before="[A-Za-z0-9_.\\-]",
        after="(?![A-Za-z0-9_]|[\\- .][0-9])",
        lookahead=2,
        validator=ssn_ok,
    ),
    DetectorSpec(
        name="phone",
        label="PHONE",
        first=DIGITS_STR + "+(",
        opening="|".join(
            (
                prefix("\\+", "[1-9]"),
                prefix("\\(", "[02-9]"),
                prefix("0", "[0-9]"),
                prefix("[2-9]", "[0-9]", "[0-9]", "[ .\\-]"),
            )
        ),
        body=(
            "(?:\\+[1-9][0-9]{7,14}"  # E.164
            f"|\\+[1-9][0-9]{{0,2}}{INTL_GROUPS}"  # +44 20 ...
            # 00 and national numbers start with 0, as groups of other digits may: not
            # after one such group (the middle of an IBAN or a long digit list).
            f"|(?<![0-9][ .\\-/])(?:00[1-9][0-9]{{0,2}}{INTL_GROUPS}"
            "|(?:\\(0[1-9][0-9]{0,4}\\)[ ]?|0[1-9][0-9]{0,4}[ .\\-/])"  # national, trunk 0
            "[0-9]{2,8}(?:[ .\\-][0-9]{2,8}){0,3})"
            "|(?:\\([2-9][0-9]{2}\\)[ ]?|[2-9][0-9]{2}[ .\\-])[2-9][0-9]{2}[ .\\-][0-9]{4})"  # NANP
        ),
        before="[A-Za-z0-9_+.\\-]",
        after="(?![A-Za-z0-9_]|[.\\-/][0-9])",
        lookahead=2,
        validator=phone_checker(),
    ),
    DetectorSpec(
        name="ipv6",
        label="IPV6",
        first=DIGITS_STR + "abcdefABCDEF:",
        opening="[0-9A-Fa-f]{0,4}(?::|\\Z)",
        needs=":",
        body=f"{HEX}{{0,4}}(?::{HEX}{{0,4}}){{2,7}}(?:\\.[0-9]{{1,3}}){{0,3}}",
        before="[A-Za-z0-9_:.]",
        after="(?![A-Za-z0-9_:]|\\.[0-9])",
        lookahead=2,
        validator=ipv6_ok,
    ),
    DetectorSpec(
        name="ipv4",
        label="IPV4",
        first=DIGITS_STR,
        opening="[0-9]{1,3}(?:\\.|\\Z)",
        # "version 1.2.3.4" is a version; "v1.2.3.4" is caught by the class.
        body=f"(?<![Vv]ersion[ ]){OCTET}(?:\\.{OCTET}){{3}}",
        before="[A-Za-z0-9_.]",
        after="(?![A-Za-z0-9_]|\\.[0-9])",
        lookahead=2,
    ),
)
"""Every built-in detector, in priority order."""

BUILTIN_NAMES: tuple[str, ...] = tuple(dict.fromkeys(spec.name for spec in BUILTIN))

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


def ascii_opening_source(spec: DetectorSpec) -> str | None:
    """The text opening of ``spec`` for ASCII text, when it has Unicode classes (``None``
    when it has none): on ASCII text the two match alike, and stdlib ``re`` searches the
    ASCII one several times faster, which matters for ``email`` on every word of prose."""
    source = opening_source(spec, json=False)
    ascii_source = source.replace(WORD, "A-Za-z0-9")
    return None if ascii_source == source else ascii_source


def _bounded(spec: DetectorSpec, body: str, after: str, *, json: bool) -> str:
    if not json:
        before = f"(?<!{spec.before})" if spec.before else ""
        return f"{before}(?:{body}){after}"
    before = f"(?:(?<!{spec.before})|{_AFTER_ESCAPE})" if spec.before else ""
    return f'(?!["\\\\]){_NOT_ESCAPED}{before}(?:{body}){after}'
