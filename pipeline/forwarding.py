"""Where a request goes upstream and which headers travel with it, each way.

The upstream comes from config only: the canonical request path (:mod:`pipeline.paths`)
and the query are appended to the route's base URL, and a target whose origin differs is
refused. Hop-by-hop headers are dropped in both directions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from pipeline import auth
from pipeline.config import Protocol, UpstreamConfig
from pipeline.paths import canonical, within

# RFC 9110 §7.6.1 hop-by-hop fields, plus those the proxy recomputes itself.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
# The proxy's own credential header: checked here, never shown to an upstream.
_PROXY_ONLY = frozenset({auth.HEADER})


def forward_headers(
    headers: Mapping[str, str], upstream: UpstreamConfig, protocol: Protocol
) -> CIMultiDict[str]:
    """Client headers minus hop-by-hop ones; credentials pass through unchanged.

    Towards a filtered upstream the proxy asks for the whole reply uncompressed.
    """
    connection = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    connection |= _PROXY_ONLY
    out: CIMultiDict[str] = CIMultiDict(
        (k, v)
        for k, v in headers.items()
        if k.lower() not in _HOP_BY_HOP and k.lower() not in connection
    )
    if protocol is not Protocol.PASSTHROUGH:
        out["Accept-Encoding"] = "identity"  # the proxy must read what it filters
        # ...and read it whole: byte ranges would let a client fetch a stored reply in
        # fragments that each fall short of what a stage detects.
        out.popall("Range", None)
        out.popall("If-Range", None)
    if upstream.api_key_env and "authorization" not in out and "x-api-key" not in out:
        key = os.environ.get(upstream.api_key_env)
        if key:
            if protocol is Protocol.ANTHROPIC_MESSAGES:
                out["x-api-key"] = key
            else:
                out["Authorization"] = f"Bearer {key}"
    return out


def reply_headers(headers: CIMultiDictProxy[str], *, filtered: bool) -> CIMultiDict[str]:
    drop = _HOP_BY_HOP | ({"content-encoding"} if filtered else set())
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in drop)


class ForbiddenTargetError(Exception):
    """A request path that would leave the configured upstream's origin."""


def upstream_url(upstream: UpstreamConfig, path: str, query: str) -> URL:
    """The configured upstream plus the canonical request path and query — never elsewhere.

    ``path`` is canonical (:func:`pipeline.paths.canonical`: no dot segments, no empty ones),
    ``strip_prefix`` comes off only at a segment boundary, and the result must keep the
    upstream's scheme, host and port: a path such as ``/openai.evil.example/v1`` can never
    turn into another host, and nothing climbs above the upstream's base path.
    """
    rest = within(path, upstream.strip_prefix)
    if rest is None:
        rest = path
    target = URL(upstream.url + rest + (f"?{query}" if query else ""), encoded=True)
    base = URL(upstream.url)
    if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
        raise ForbiddenTargetError(f"path {path!r} leaves the upstream")
    return target


def request_path(request: web.Request) -> str:
    """The request's canonical path (:class:`PathError` for one the proxy refuses).

    Taken from the raw relative URL: aiohttp's ``request.path`` is already decoded, so
    ``%2F`` in it would be indistinguishable from ``/``.
    """
    return canonical(request.rel_url.raw_path or "/")
