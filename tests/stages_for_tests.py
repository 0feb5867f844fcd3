"""Small stages used by the engine and protocol tests, loaded by dotted ``type:`` paths.

They are written against the public contract only, as a third party would, so the engine
is tested without depending on any built-in stage.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from pipeline.stage import (
    NOTHING,
    Channel,
    ChannelEnd,
    Finding,
    Release,
    StageConfig,
    StageFactory,
)


class MaskWordConfig(StageConfig):
    type: str = "tests.stages_for_tests:MaskWordFactory"
    word: str = "secret"
    replacement: str = "[MASKED]"
    block: bool = False


class MaskWordStage:
    """Replaces ``word``; holds back only a tail that is a proper prefix of it."""

    __slots__ = ("_buffer", "_config", "_offset")

    def __init__(self, config: MaskWordConfig) -> None:
        self._config = config
        self._buffer = ""
        self._offset = 0

    @property
    def held(self) -> int:
        return len(self._buffer)

    def feed(self, text: str) -> Release:
        buffer = self._buffer + text
        word = self._config.word
        out: list[str] = []
        findings: list[Finding] = []
        start = 0
        while (hit := buffer.find(word, start)) >= 0:
            out.append(buffer[start:hit])
            at = self._offset + hit
            if self._config.block:
                self._buffer = ""
                return Release(
                    "".join(out),
                    block=f"word {word!r}",
                    findings=(Finding("word", "blocked", at, at + len(word)),),
                )
            out.append(self._config.replacement)
            findings.append(Finding("word", "redacted", at, at + len(word)))
            start = hit + len(word)
        keep = 0
        for size in range(min(len(word) - 1, len(buffer) - start), 0, -1):
            if buffer.endswith(word[:size]):
                keep = size
                break
        cut = len(buffer) - keep
        out.append(buffer[start:cut])
        self._offset += cut
        self._buffer = buffer[cut:]
        return Release("".join(out), findings=tuple(findings))

    def finish(self, end: ChannelEnd) -> Release:
        rest, self._buffer = self._buffer, ""
        self._offset += len(rest)
        return Release(rest) if rest else NOTHING


class MaskWordFactory(StageFactory[MaskWordConfig]):
    config_model = MaskWordConfig

    @property
    def max_holdback(self) -> int:
        return len(self.config.word) - 1

    def open(self, channel: Channel) -> MaskWordStage:
        return MaskWordStage(self.config)


class HoldAllConfig(StageConfig):
    type: str = "tests.stages_for_tests:HoldAllFactory"
    declared: int = 4


class HoldAllStage:
    """Holds everything until finish: breaks any bound below the whole text."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = ""

    @property
    def held(self) -> int:
        return len(self._buffer)

    def feed(self, text: str) -> Release:
        self._buffer += text
        return NOTHING

    def finish(self, end: ChannelEnd) -> Release:
        rest, self._buffer = self._buffer, ""
        return Release(rest)


class HoldAllFactory(StageFactory[HoldAllConfig]):
    config_model = HoldAllConfig

    @property
    def max_holdback(self) -> int:
        return self.config.declared

    def open(self, channel: Channel) -> HoldAllStage:
        return HoldAllStage()


class ExplodeConfig(StageConfig):
    type: str = "tests.stages_for_tests:ExplodeFactory"
    after_chars: int = 0
    hold: int = 0


class ExplodeStage:
    """Holds the last ``hold`` characters, then raises once it has seen ``after_chars``."""

    __slots__ = ("_after", "_buffer", "_hold", "_seen")

    def __init__(self, after: int, hold: int) -> None:
        self._after = after
        self._hold = hold
        self._seen = 0
        self._buffer = ""

    @property
    def held(self) -> int:
        return len(self._buffer)

    def feed(self, text: str) -> Release:
        self._seen += len(text)
        if self._seen > self._after:
            raise RuntimeError("stage bug")
        buffer = self._buffer + text
        cut = max(0, len(buffer) - self._hold)
        self._buffer = buffer[cut:]
        return Release(buffer[:cut])

    def finish(self, end: ChannelEnd) -> Release:
        rest, self._buffer = self._buffer, ""
        return Release(rest)


class ExplodeFactory(StageFactory[ExplodeConfig]):
    config_model = ExplodeConfig

    @property
    def max_holdback(self) -> int:
        return self.config.hold

    def open(self, channel: Channel) -> ExplodeStage:
        return ExplodeStage(self.config.after_chars, self.config.hold)


class SlowConfig(StageConfig):
    type: str = "tests.stages_for_tests:SlowFactory"
    delay_ms: float = 0.0


class SlowStage:
    """An async stage that awaits before upper-casing: stands in for a moderation call."""

    __slots__ = ("_delay",)

    def __init__(self, delay_s: float) -> None:
        self._delay = delay_s

    @property
    def held(self) -> int:
        return 0

    async def feed(self, text: str) -> Release:
        await asyncio.sleep(self._delay)
        return Release(text.upper())

    async def finish(self, end: ChannelEnd) -> Release:
        return NOTHING


class SlowFactory(StageFactory[SlowConfig]):
    config_model = SlowConfig
    is_async: ClassVar[bool] = True

    def open(self, channel: Channel) -> SlowStage:
        return SlowStage(self.config.delay_ms / 1000.0)


class EndMarkConfig(StageConfig):
    type: str = "tests.stages_for_tests:EndMarkFactory"


class EndMarkStage:
    """Passes text through and releases ``<complete>`` or ``<truncated>`` at finish."""

    __slots__ = ()

    @property
    def held(self) -> int:
        return 0

    def feed(self, text: str) -> Release:
        return Release(text)

    def finish(self, end: ChannelEnd) -> Release:
        return Release(f"<{end.value}>")


class EndMarkFactory(StageFactory[EndMarkConfig]):
    config_model = EndMarkConfig

    def open(self, channel: Channel) -> EndMarkStage:
        return EndMarkStage()


class RefuseFactory(StageFactory[StageConfig]):
    """A factory that refuses at construction, as one whose model file is missing would."""

    def __init__(self, config: StageConfig) -> None:
        raise ValueError("model file /srv/model.bin not found")

    def open(self, channel: Channel) -> MaskWordStage:
        raise NotImplementedError


class BadOpenFactory(StageFactory[StageConfig]):
    """Opens a stage unless the channel carries a schema, which it refuses."""

    def open(self, channel: Channel) -> MaskWordStage:
        if channel.json_schema is not None:
            raise ValueError("schema not supported")
        return MaskWordStage(MaskWordConfig())
