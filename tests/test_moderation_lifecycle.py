"""The classifier session's life: opened by the first call, closed at reload and shutdown."""

from __future__ import annotations

from pathlib import Path

from filters.moderation import ModerationFactory
from pipeline.app import bound_port, make_app, start_proxy
from pipeline.config import load_config
from pipeline.reload import Reloader
from pipeline.state import STATE, ProxyState
from tests.moderation_support import classifier, stream

CONFIG = """
routes:
  - name: chat
    match: {{path: "/v1/*"}}
    upstream: {{url: "{upstream}"}}
    stage_metrics: false
    stages:
      - type: moderation
        url: "{url}"
        window_chars: {window}
"""


def moderation_factory(state: ProxyState) -> ModerationFactory:
    factory = state.snapshot.plans["chat"].stages[0].factory
    assert isinstance(factory, ModerationFactory)
    return factory


async def test_reload_and_shutdown_close_the_pooled_sessions(tmp_path: Path) -> None:
    """A reload closes the replaced config's session; stopping the proxy closes the new one."""
    async with classifier() as c:
        upstream = c.url.removesuffix("/v1/moderations")
        path = tmp_path / "streamsieve.yaml"
        path.write_text(CONFIG.format(upstream=upstream, url=c.url, window=100))
        app = make_app(load_config(path))
        runner = await start_proxy(app, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{bound_port(runner)}"
        try:
            state = app[STATE]
            first = moderation_factory(state)
            assert "Fine. All good." == (await stream(url, "Fine. All good.")).text
            assert first.classifier.session_open
            path.write_text(CONFIG.format(upstream=upstream, url=c.url, window=200))
            assert (await Reloader(state, path).reload()).ok
            assert not first.classifier.session_open
            second = moderation_factory(state)
            assert "Still fine." == (await stream(url, "Still fine.")).text
            assert second.classifier.session_open
        finally:
            await runner.cleanup()
    assert not second.classifier.session_open
