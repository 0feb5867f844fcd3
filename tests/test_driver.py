"""The one driver: feeding, accounting, the block, the tap and the observer, for any codec."""

from __future__ import annotations

import asyncio
import dataclasses

from pipeline.config import parse_config
from pipeline.driver import Driver
from pipeline.engine import ResponseFilter, build_plans
from pipeline.plan import Method
from pipeline.protocols.request import RequestInfo
from pipeline.stage import Channel, ChannelEnd, Release

MASK = "tests.stages_for_tests:MaskWordFactory"
SLOW = "tests.stages_for_tests:SlowFactory"


def driver_for(stages: str) -> Driver:
    config = f"""
routes:
  - name: r
    match: {{path: "/v1/*"}}
    upstream: {{url: "http://127.0.0.1:9"}}
    stages:
{stages}
"""
    plan = build_plans(parse_config(config))["r"]
    return Driver(ResponseFilter(plan), RequestInfo(), protocol="test")


class Texts:
    """A tap: what went in and came out, per channel."""

    def __init__(self) -> None:
        self.fed_pieces: list[tuple[str, str]] = []
        self.out: list[tuple[str, str]] = []

    def fed(self, channel: str, text: str) -> None:
        self.fed_pieces.append((channel, text))

    def released(self, channel: str, text: str) -> None:
        self.out.append((channel, text))


def test_counts_text_chunks_and_released_characters() -> None:
    """Each piece fed is one text chunk; released characters are what the chains let out."""
    driver = driver_for(f'      - {{type: "{MASK}", word: secret}}')
    channel = driver.channel("c0")

    async def run() -> str:
        parts = [(await driver.filter(channel, p)).text for p in ("a sec", "ret b")]
        parts.append((await driver.finish(channel, ChannelEnd.COMPLETE)).text)
        return "".join(parts)

    assert "a [MASKED] b" == asyncio.run(run())
    assert 2 == driver.text_chunks
    assert len("a [MASKED] b") == driver.released_chars
    assert ("test", "r", "c0") == (channel.protocol, channel.route, channel.key)


def test_the_first_block_is_kept_and_its_finding_reported() -> None:
    """A block reason sticks (a later one never replaces it) and the finding is there."""
    driver = driver_for(f'      - {{type: "{MASK}", word: secret, block: true}}')
    release = asyncio.run(driver.whole(driver.channel("c0"), "the secret", ChannelEnd.COMPLETE))
    driver.block("later reason")
    assert "word 'secret'" == release.block == driver.blocked
    assert ["blocked"] == [f.action for f in driver.findings]


def test_async_stages_are_awaited_through_the_same_calls() -> None:
    """An async stage needs nothing different from the codec: the driver awaits at the edge."""
    driver = driver_for(f'      - {{type: "{SLOW}", delay_ms: 1}}')
    release = asyncio.run(driver.filter(driver.channel("c0"), "hi"))
    assert "HI" == release.text


def test_tap_sees_what_goes_in_and_comes_out_per_channel() -> None:
    """Replay reads the text per channel from the tap; held text shows when released."""
    texts = Texts()
    driver = driver_for(f'      - {{type: "{MASK}", word: secret}}')
    driver.tap = texts
    channel = driver.channel("c0")

    async def run() -> None:
        await driver.filter(channel, "x sec")
        await driver.finish(channel, ChannelEnd.COMPLETE)

    asyncio.run(run())
    assert [("c0", "x sec")] == texts.fed_pieces
    assert "x sec" == "".join(text for key, text in texts.out if key == "c0")


@dataclasses.dataclass
class Calls:
    """An observer: every stage call the engine reports."""

    seen: list[tuple[str, str, Method, str, str]] = dataclasses.field(default_factory=list)

    def watch(self, stage: str, channel: Channel) -> Watch:
        return Watch(self, stage, channel.key)


@dataclasses.dataclass
class Watch:
    calls: Calls
    stage: str
    channel: str

    def called(
        self,
        method: Method,
        fed: str,
        release: Release | None,
        held: int,
        seconds: float,
        error: BaseException | None,
    ) -> None:
        text = release.text if release is not None else ""
        self.calls.seen.append((self.stage, self.channel, method, fed, text))


def test_observer_sees_every_stage_call_sync_and_async() -> None:
    """One hook, for sync and async stages alike: feed and finish, with what went in and out."""
    calls = Calls()
    config = f"""
routes:
  - name: r
    match: {{path: "/v1/*"}}
    upstream: {{url: "http://127.0.0.1:9"}}
    stages:
      - {{type: "{MASK}", word: secret, id: mask}}
      - {{type: "{SLOW}", id: slow}}
"""
    plan = dataclasses.replace(build_plans(parse_config(config))["r"], observer=calls)
    driver = Driver(ResponseFilter(plan), RequestInfo())
    channel = driver.channel("c0")

    async def run() -> None:
        await driver.filter(channel, "a secret")
        await driver.finish(channel, ChannelEnd.COMPLETE)

    asyncio.run(run())
    assert [
        ("mask", "c0", "feed", "a secret", "a [MASKED]"),
        ("slow", "c0", "feed", "a [MASKED]", "A [MASKED]"),
        ("mask", "c0", "finish", "", ""),
        ("slow", "c0", "finish", "", ""),
    ] == calls.seen
