"""One canonical request path: routes match it, protocols are chosen on it, it goes upstream.

Before this module the proxy matched routes on aiohttp's decoded path and forwarded the raw
one, so ``/v1/chat//completions``, ``/v1/chat/./completions`` or ``/v1/../_stats`` were
classified as one thing and served as another by an upstream (or an nginx in front of it)
that merges slashes or resolves dot segments. Now the raw path is canonicalised once:

- percent-encodings of unreserved characters (RFC 3986 §2.3: letters, digits, ``-._~``)
  are decoded and every other one is upper-cased (§6.2.2), so ``%63hat`` is ``chat`` and
  ``%2e%2e`` is a dot segment like any other;
- runs of slashes collapse to one, and dot segments are removed (§5.2.4); a ``..`` above
  the root stays at the root, so no path can climb out of the upstream's base URL;
- what has no single meaning across servers is refused, never guessed: an encoded slash
  (``%2F``) or backslash (``%5C``, ``\\``), ``;`` path parameters (Tomcat and Spring strip
  them, others do not), NUL and other control characters, and invalid percent-encodings.

Case is not changed: ids in paths (``/v1/responses/resp_AbC``) are case-sensitive. Route
globs and protocol suffixes are matched case-insensitively instead (:func:`fold`), so a
case variant of a filtered path lands in the same route and protocol as its canonical form
and an upstream that ignores case (ASP.NET, IIS) can never serve it unfiltered.
"""

from __future__ import annotations

import fnmatch
import re

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PERCENT = re.compile(r"%(..)?", re.DOTALL)
_HEX = frozenset("0123456789abcdefABCDEF")
_REFUSED_DECODED = {"/": "an encoded slash (%2F)", "\\": "an encoded backslash (%5C)"}


class PathError(ValueError):
    """A request path the proxy refuses (answered 400 with this message)."""


def _decode_unreserved(segment: str) -> str:
    def one(match: re.Match[str]) -> str:
        pair = match.group(1)
        if pair is None or not set(pair) <= _HEX:
            raise PathError("the path has an invalid percent-encoding")
        char = chr(int(pair, 16))
        if char in _REFUSED_DECODED:
            raise PathError(f"the path contains {_REFUSED_DECODED[char]}; it is refused")
        if char in _UNRESERVED:
            return char
        if ord(char) < 0x20 or ord(char) == 0x7F:
            raise PathError("the path contains an encoded control character; it is refused")
        return "%" + pair.upper()

    return _PERCENT.sub(one, segment)


def canonical(raw: str) -> str:
    """The canonical form of a raw (still percent-encoded) request path, or :class:`PathError`.

    ``raw`` is the path of the request line without its query string.
    """
    if not raw.startswith("/"):
        raise PathError("the request path must start with '/'")
    for char in raw:
        if ord(char) < 0x21 or ord(char) == 0x7F:
            raise PathError("the path contains a control character or space; it is refused")
    if "\\" in raw:
        raise PathError("the path contains a backslash; it is refused")
    if ";" in raw:
        raise PathError("the path contains ';' parameters, which servers read differently")
    segments = [_decode_unreserved(s) for s in raw.split("/")[1:]]
    out: list[str] = []
    for segment in segments:
        if segment in ("", "."):
            continue
        if segment == "..":
            if out:
                out.pop()
            continue
        out.append(segment)
    trailing = raw.endswith("/") or segments[-1] in (".", "..")
    path = "/" + "/".join(out)
    return path + "/" if trailing and out else path


def fold(path: str) -> str:
    """``path`` as route globs and protocol suffixes compare it (case-insensitively)."""
    return path.casefold()


def glob_matches(path: str, pattern: str) -> bool:
    """Whether a canonical ``path`` matches a route's path glob, ignoring case."""
    return fnmatch.fnmatchcase(fold(path), fold(pattern))


def within(path: str, prefix: str) -> str | None:
    """``path`` with ``prefix`` removed at a segment boundary (ignoring case), or None.

    The rest always starts with ``/`` (``/`` itself when nothing is left), so joined to an
    upstream's base URL it stays under that URL.
    """
    prefix = prefix.rstrip("/")
    if not prefix:
        return path
    head, rest = fold(path[: len(prefix)]), path[len(prefix) :]
    if head != fold(prefix) or (rest and not rest.startswith("/")):
        return None
    return rest or "/"
