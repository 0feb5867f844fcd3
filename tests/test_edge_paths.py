"""Issue 12 item 1: one canonical path for matching, classifying and forwarding.

Each bypass found against main is a case here, through the real proxy: path variants used
to be proxied unfiltered (and forwarded verbatim), dot segments used to leave the route.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.config import ConfigError, parse_config
from pipeline.paths import PathError, canonical, within
from tests.edge_support import LEAK, ROUTES, raw_request, redacting_proxy

CHAT = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})


@pytest.mark.parametrize(
    ("target", "forwarded"),
    [
        ("/v1/chat/completions", "/v1/chat/completions"),
        ("/v1/chat//completions", "/v1/chat/completions"),
        ("/v1//chat///completions", "/v1/chat/completions"),
        ("/v1/chat/./completions", "/v1/chat/completions"),
        ("/v1/x/../chat/completions", "/v1/chat/completions"),
        ("/v1/chat/%63ompletions", "/v1/chat/completions"),
        ("/v1/chat/%2e/completions", "/v1/chat/completions"),
        ("/v1/Chat/Completions", "/v1/Chat/Completions"),
        ("/V1/CHAT/COMPLETIONS", "/V1/CHAT/COMPLETIONS"),
    ],
)
async def test_path_variants_are_filtered_and_forwarded_canonical(
    target: str, forwarded: str
) -> None:
    """Every spelling of the chat path is filtered, and the upstream sees the canonical one."""
    async with redacting_proxy() as p:
        status, body = await raw_request(p.url, "POST", target, CHAT.encode())
    assert 200 == status
    assert LEAK not in body.decode()
    assert "[EMAIL]" in body.decode()
    assert [("POST", forwarded)] == p.upstream.seen


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("/v1/chat/completions;x", "';' parameters"),
        ("/v1/chat;v=1/completions", "';' parameters"),
        ("/v1/chat%2Fcompletions", "encoded slash"),
        ("/v1/chat%2fcompletions", "encoded slash"),
        ("/v1/chat%5Ccompletions", "encoded backslash"),
        ("/v1/chat/completions%00", "control character"),
        ("/v1/chat/completions%zz", "invalid percent-encoding"),
    ],
)
async def test_ambiguous_paths_are_refused_with_400(target: str, reason: str) -> None:
    """What servers read differently is refused, never forwarded."""
    async with redacting_proxy() as p:
        status, body = await raw_request(p.url, "POST", target, CHAT.encode())
    assert 400 == status
    assert reason in json.loads(body)["error"]["message"]
    assert [] == p.upstream.seen


async def test_dot_segments_cannot_leave_the_route() -> None:
    """``/v1/../_stats`` is ``/_stats``: no route takes it, nothing reaches the upstream."""
    async with redacting_proxy() as p:
        status, _ = await raw_request(p.url, "GET", "/v1/../_stats")
        status_encoded, _ = await raw_request(p.url, "GET", "/v1/%2E%2E/_stats")
    assert (404, 404) == (status, status_encoded)
    assert [] == p.upstream.seen


STRIPPED = """
routes:
  - name: api
    match: {{path: "/api/*"}}
    upstream: {{url: "{upstream}/base", strip_prefix: "/api"}}
    stages:
      - type: redact
"""


@pytest.mark.parametrize(
    ("target", "status", "seen"),
    [
        ("/api/../x", 404, []),
        ("/api/v1/../../x", 404, []),
        ("/api/v1/../chat/completions", 200, [("POST", "/base/chat/completions")]),
        ("/API/chat/completions", 200, [("POST", "/base/chat/completions")]),
    ],
)
async def test_strip_prefix_keeps_requests_under_the_base(
    target: str, status: int, seen: list[tuple[str, str]]
) -> None:
    """With ``strip_prefix``, ``/api/../x`` no longer becomes ``/base/../x``."""
    async with redacting_proxy(STRIPPED) as p:
        got, body = await raw_request(p.url, "POST", target, CHAT.encode())
    assert status == got
    assert LEAK not in body.decode()
    assert seen == p.upstream.seen


def test_config_paths_must_be_canonical() -> None:
    """A config names paths the way the proxy compares them, or is refused with the fix."""
    text = ROUTES.format(upstream="http://127.0.0.1:1", extra="    passthrough_paths: [/v1//x]")
    with pytest.raises(ConfigError, match=r"edge.yaml:\d+: .*write it as '/v1/x'"):
        parse_config(text, "edge.yaml")
    glob = ROUTES.format(upstream="http://127.0.0.1:1", extra="    passthrough_paths: [/v1/*]")
    with pytest.raises(ConfigError, match="is a glob"):
        parse_config(glob, "edge.yaml")


_SEGMENT = st.sampled_from(["", ".", "..", "a", "B", "%2e", "%2E%2e", "%41", "chat", "~x"])


@given(st.lists(_SEGMENT, max_size=8), st.booleans())
def test_canonical_is_idempotent_and_has_no_dot_or_empty_segments(
    segments: list[str], trailing: bool
) -> None:
    """Canonicalising twice changes nothing; no ``.``, ``..`` or ``//`` survives."""
    raw = "/" + "/".join(segments) + ("/" if trailing else "")
    path = canonical(raw)
    assert path == canonical(path)
    inner = path.strip("/").split("/") if path.strip("/") else []
    assert all(part not in ("", ".", "..") for part in inner)


@given(st.lists(_SEGMENT, max_size=8))
def test_stripped_rest_never_climbs(segments: list[str]) -> None:
    """Whatever follows the prefix, the rest joined to the base stays under it."""
    rest = within(canonical("/api/" + "/".join(segments)), "/api")
    assert rest is None or (rest.startswith("/") and "/../" not in rest + "/")


def test_backslash_and_relative_paths_are_refused() -> None:
    for raw in ("\\v1", "/v1\\chat", "v1/chat"):
        with pytest.raises(PathError):
            canonical(raw)
