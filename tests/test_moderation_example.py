"""``config/moderation.example.yaml`` runs as shipped, in front of the simulator."""

from __future__ import annotations

from pipeline.app import bound_port, make_app, start_proxy
from pipeline.config import parse_config
from pipeline.resources import config_dir
from pipeline.simulator import ModerationSettings, SimulatorSettings, start_simulator
from pipeline.simulator import bound_port as sim_port
from tests.moderation_support import FLAGGED, REPLY, stream

BEFORE = REPLY[: REPLY.index(FLAGGED)]


async def test_the_example_shows_all_three_modes() -> None:
    """hold shows none of the flagged sentence, bounded at most 200 characters of it, and
    monitor all of it; each stream ends with content_filter."""
    settings = SimulatorSettings(
        inter_token_delay_ms=1, moderation=ModerationSettings(latency_ms=30)
    )
    sim = await start_simulator("127.0.0.1", 0, settings)
    text = (config_dir() / "moderation.example.yaml").read_text(encoding="utf-8")
    text = text.replace("127.0.0.1:9000", f"127.0.0.1:{sim_port(sim)}")
    proxy = await start_proxy(make_app(parse_config(text, "example.yaml")), "127.0.0.1", 0)
    base = f"http://127.0.0.1:{bound_port(proxy)}"
    try:
        hold, bounded, monitor = [
            await stream(f"{base}/{mode}") for mode in ("hold", "bounded", "monitor")
        ]
    finally:
        await proxy.cleanup()
        await sim.cleanup()
    assert (BEFORE, ["content_filter"]) == (hold.text, hold.finish_reasons)
    assert bounded.text.startswith(BEFORE)
    assert len(bounded.text) - len(BEFORE) <= 200
    assert ["content_filter"] == bounded.finish_reasons
    assert monitor.text.startswith(BEFORE + FLAGGED)
    assert ["content_filter"] == monitor.finish_reasons
