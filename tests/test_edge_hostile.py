"""Issue 12 item 6: hostile input — YAML alias bombs, slow clients, escape sequences in logs.

Against main a 300-byte alias bomb took ``check-config`` 23 s and 2.4 GB (and froze the
event loop for 30 s on a reload), 100 clients sending half a request line stayed
connected for ever, and a client-chosen ``model`` reached the console with its escapes.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp
import pytest
import structlog

from pipeline import cli, logs
from pipeline.config import ConfigError, parse_config
from pipeline.yamlbound import MAX_ALIASES
from tests.edge_support import ROUTES, chat_completion, raw_request, redacting_proxy
from tests.ops_support import ops_stack

ROUTE = 'routes:\n  - name: r\n    upstream: {url: "http://127.0.0.1:1"}\n'


def _laughs(levels: int = 9) -> str:
    """The classic "billion laughs": nine aliases per level, nine levels, ~300 bytes."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        refs = ",".join([f"*l{level - 1}"] * 9)
        lines.append(f"l{level}: &l{level} [{refs}]")
    return "\n".join(lines) + "\n"


BOMB = ROUTE + "x-bomb:\n" + "".join(f"  {line}\n" for line in _laughs().splitlines())
MANY = ROUTE + "anchor: &a lol\nmany: [" + ",".join(["*a"] * (MAX_ALIASES + 1)) + "]\n"


@pytest.mark.parametrize(("text", "reason"), [(BOMB, "expand to more than"), (MANY, "aliases")])
def test_alias_bombs_are_refused_fast_with_a_line(text: str, reason: str) -> None:
    started = time.perf_counter()
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "bomb.yaml")
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5
    [problem] = raised.value.problems
    assert reason in problem.message
    assert problem.line is not None
    assert problem.line > 3
    assert str(raised.value).startswith(f"bomb.yaml:{problem.line}: ")


def test_a_few_aliases_still_work() -> None:
    text = (
        'routes:\n  - name: r\n    upstream: &up {url: "http://127.0.0.1:1"}\n'
        "  - name: s\n    upstream: *up\n"
    )
    assert "http://127.0.0.1:1" == parse_config(text).proxy.routes[1].upstream.url


def test_check_config_refuses_the_bomb_fast(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    started = time.perf_counter()
    assert 1 == cli.main(["check-config", str(path)])
    assert time.perf_counter() - started < 1.0
    assert f"{path}:" in capsys.readouterr().err


async def test_reload_of_a_bomb_is_refused_and_the_loop_keeps_serving(tmp_path: Path) -> None:
    async with ops_stack(tmp_path) as s, aiohttp.ClientSession() as http:
        before = s.state.snapshot
        s.config_path.write_text(BOMB)
        started = time.perf_counter()
        async with http.post(f"{s.admin_url}/admin/reload") as response:
            body = await response.json()
        elapsed = time.perf_counter() - started
        async with http.get(f"{s.admin_url}/healthz") as health:
            assert 200 == health.status
    assert 422 == response.status
    assert "expand to more than" in body["message"]
    assert elapsed < 1.0
    assert before is s.state.snapshot


HEADER_LIMITS = """
limits: {{client_header_timeout_s: 0.5, client_body_timeout_s: 0.5}}
"""


async def test_clients_sending_half_a_request_line_are_dropped() -> None:
    """100 raw connections that never finish their request line are all closed."""
    async with redacting_proxy(extra="", routes=_with_limits()) as p:
        port = int(p.url.rsplit(":", 1)[1])
        conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(100)]
        for _, writer in conns:
            writer.write(b"POST /v1/chat/compl")
            await writer.drain()
        started = time.perf_counter()
        async with asyncio.timeout(5):
            closed = await asyncio.gather(*(reader.read() for reader, _ in conns))
        elapsed = time.perf_counter() - started
        for _, writer in conns:
            writer.close()
        # The proxy still serves a well-formed request afterwards.
        status, _ = await raw_request(p.url, "POST", "/v1/chat/completions", b"{}")
    assert [b""] * 100 == closed
    assert elapsed < 3.0
    assert 200 == status
    assert [("POST", "/v1/chat/completions")] == p.upstream.seen


async def test_a_trickled_body_is_answered_408() -> None:
    async with redacting_proxy(routes=_with_limits()) as p:
        port = int(p.url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
        )
        await writer.drain()
        async with asyncio.timeout(5):
            reply = await reader.read()
        writer.close()
    assert reply.startswith(b"HTTP/1.1 408 ")
    assert "request_timeout" == json.loads(reply.partition(b"\r\n\r\n")[2])["error"]["code"]
    assert [] == p.upstream.seen


def _with_limits() -> str:
    return ROUTES + HEADER_LIMITS


async def test_console_log_escapes_client_strings(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("console")
    model = "\x1b[2J\x1b]0;owned\x07gpt\r\nfake line\u202e"
    async with redacting_proxy() as p:
        body = json.dumps({"model": model, "messages": []}).encode()
        status, _ = await raw_request(p.url, "POST", "/v1/chat/completions", body)
    assert 200 == status
    err = capsys.readouterr().err
    line = next(line for line in err.splitlines() if "request" in line and "gpt" in line)
    assert "\x1b" not in err
    assert "\x07" not in err
    assert "\u202e" not in err
    assert "\\x1b[2J" in line
    assert "\\r\\nfake line" in line
    assert str(chat_completion()["model"]) not in line  # the client's string, logged


def test_console_log_escapes_exception_text(capsys: pytest.CaptureFixture[str]) -> None:
    """A traceback is printed verbatim by the renderer: its quoted client text is escaped."""
    logs.configure("console")
    log = structlog.get_logger("test")
    try:
        raise KeyError("\x1b]0;owned\x07model")
    except KeyError:
        log.exception("proxy_error\x1b[2J")
    err = capsys.readouterr().err
    assert "\x1b" not in err
    assert "\x07" not in err
    assert "proxy_error\\x1b[2J" in err
    assert "Traceback (most recent call last):\n" in err  # newlines kept
