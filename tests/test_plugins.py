"""Plug-in loading: an installed entry point serves real traffic; bad factories are refused."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from pipeline.config import ConfigError, parse_config
from pipeline.plugins import (
    ENTRY_POINT_GROUP,
    StageLoadError,
    build_factory,
    check_open,
    installed_plugins,
    known_types,
    resolve_stage,
)
from pipeline.testing import run_factory
from tests.conftest import StackFactory

PACKAGE = "acme_stages"

PLUGIN_SOURCE = '''
"""A moderation team's stage package, as it would be installed from its own wheel."""
from typing import Literal

from pipeline.stage import NOTHING, Channel, ChannelEnd, Release, StageConfig, StageFactory


class FruitConfig(StageConfig):
    type: str = "acme_fruit"
    fruit: str = "banana"


class FruitStage:
    """Replaces the fruit; holds back a tail that may still become it."""

    __slots__ = ("_buffer", "_fruit")

    def __init__(self, fruit: str) -> None:
        self._fruit = fruit
        self._buffer = ""

    @property
    def held(self) -> int:
        return len(self._buffer)

    def feed(self, text: str) -> Release:
        buffer = (self._buffer + text).replace(self._fruit, "[FRUIT]")
        keep = next(
            (n for n in range(len(self._fruit) - 1, 0, -1) if buffer.endswith(self._fruit[:n])),
            0,
        )
        self._buffer = buffer[len(buffer) - keep :]
        return Release(buffer[: len(buffer) - keep])

    def finish(self, end: ChannelEnd) -> Release:
        rest, self._buffer = self._buffer, ""
        return Release(rest)


class FruitFactory(StageFactory[FruitConfig]):
    config_model = FruitConfig

    @property
    def max_holdback(self) -> int:
        return len(self.config.fruit) - 1

    def open(self, channel: Channel) -> FruitStage:
        return FruitStage(self.config.fruit)


NOT_A_CLASS = 42


class Plain:
    """Has an open method but is no StageFactory."""

    def open(self, channel: Channel) -> FruitStage:
        return FruitStage("x")


class NoOpen(StageFactory[StageConfig]):
    """Forgot to implement open."""


class BadModel(FruitFactory):
    config_model = dict  # type: ignore[assignment]


class StrictNameConfig(StageConfig):
    type: Literal["acme_strict"] = "acme_strict"


class StrictName(FruitFactory):
    """Its config model only accepts one name, so a dotted path cannot load it."""

    config_model = StrictNameConfig


class NotAStage:
    def feed(self, text: str) -> Release:
        return Release(text)


class WrongOpen(FruitFactory):
    """open() returns an object with feed only."""

    def open(self, channel: Channel) -> NotAStage:  # type: ignore[override]
        return NotAStage()
'''

ENTRY_POINTS = f"""
[{ENTRY_POINT_GROUP}]
acme_fruit = {PACKAGE}:FruitFactory
acme_broken = {PACKAGE}:Missing
"""

FRUIT_ROUTES = """
routes:
  - name: chat
    match: {{path: "/v1/*"}}
    upstream: {{url: "{upstream}"}}
    stages:
      - type: acme_fruit
        fruit: banana
"""


def install(site: Path) -> None:
    """Lay out the package and its dist-info the way pip would in ``site``."""
    (site / PACKAGE).mkdir()
    (site / PACKAGE / "__init__.py").write_text(textwrap.dedent(PLUGIN_SOURCE))
    dist_info = site / "acme_stages-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-stages\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(ENTRY_POINTS)


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary site directory on sys.path holding the installed plug-in package."""
    install(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    resolve_stage.cache_clear()
    yield tmp_path
    resolve_stage.cache_clear()
    sys.modules.pop(PACKAGE, None)


def refusal(type_name: str) -> str:
    """The message resolve_stage refuses ``type_name`` with."""
    with pytest.raises(StageLoadError) as caught:
        resolve_stage(type_name)
    return str(caught.value)


@pytest.mark.usefixtures("plugin_site")
def test_installed_entry_point_is_discovered() -> None:
    """The entry point appears among installed plug-ins and known types."""
    assert f"{PACKAGE}:FruitFactory" == installed_plugins()["acme_fruit"]
    assert "acme_fruit" in known_types()
    assert "FruitFactory" == resolve_stage("acme_fruit").__name__


@pytest.mark.usefixtures("plugin_site")
async def test_entry_point_stage_filters_a_stream_through_the_proxy(stack: StackFactory) -> None:
    """A config naming the plug-in by its entry point filters the stream the SDK reads."""
    running = await stack(FRUIT_ROUTES)
    text = "I would like a banana, or two bananas, and no bandana."
    async with openai.AsyncOpenAI(
        base_url=f"{running.proxy_url}/v1", api_key="sk-test", max_retries=0
    ) as sdk:
        stream = await sdk.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "fruit?"}],
            stream=True,
            extra_body={"sim": {"text": text, "sse_split": "bytes"}},
        )
        got = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert "I would like a [FRUIT], or two [FRUIT]s, and no bandana." == got


@pytest.mark.usefixtures("plugin_site")
@pytest.mark.parametrize(
    ("type_name", "expected"),
    [
        (f"{PACKAGE}:NOT_A_CLASS", "is 42, not a subclass of pipeline.stage.StageFactory"),
        (f"{PACKAGE}:Plain", "acme_stages.Plain'>, not a subclass of pipeline.stage.StageFactory"),
        (f"{PACKAGE}:NoOpen", "(NoOpen) does not implement: open"),
        (f"{PACKAGE}:BadModel", "config_model must be a subclass of pipeline.stage.StageConfig"),
        ("acme_no_such_module:Factory", "cannot import 'acme_no_such_module'"),
        (f"{PACKAGE}:Missing", "module 'acme_stages' has no attribute 'Missing'"),
        ("acme_broken", "plug-in stage 'acme_broken' 'acme_stages:Missing': module"),
        (f"{PACKAGE}:StrictName", "config_model refuses type 'acme_stages:StrictName'"),
        (f"{PACKAGE}:", "must look like 'package.module:Factory'"),
        ("acme_frut", "did you mean 'acme_fruit'?"),
    ],
    ids=[
        "not-a-class",
        "not-a-factory",
        "missing-open",
        "bad-config-model",
        "import-error",
        "unknown-attribute",
        "broken-entry-point",
        "type-field-refuses-name",
        "no-colon",
        "typo",
    ],
)
def test_unusable_stage_is_refused_with_what_to_change(type_name: str, expected: str) -> None:
    """Each kind of unusable factory is refused at load time with a message naming the fault."""
    assert expected in refusal(type_name)


@pytest.mark.usefixtures("plugin_site")
def test_refusal_reaches_the_config_check_with_its_line() -> None:
    """A config naming a factory without open is refused with file, line and reason."""
    text = """routes:
  - name: r
    upstream: {url: "http://127.0.0.1:1"}
    stages:
      - type: "acme_stages:NoOpen"
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "team.yaml")
    assert "team.yaml:5: routes[0].stages[0].type:" in str(caught.value)
    assert "does not implement: open" in str(caught.value)


@pytest.mark.usefixtures("plugin_site")
def test_open_returning_a_non_stage_is_refused_when_the_factory_is_built() -> None:
    """build_factory probes open() so a stage without finish/held fails at start-up."""
    name = f"{PACKAGE}:WrongOpen"
    config = resolve_stage(name).config_model.model_validate({"type": name})
    with pytest.raises(
        StageLoadError, match="returned NotAStage, which lacks held, feed or finish"
    ):
        build_factory(config)


@pytest.mark.usefixtures("plugin_site")
def test_probe_accepts_a_good_factory() -> None:
    """check_open passes a factory whose stages keep the contract."""
    factory_class = resolve_stage("acme_fruit")
    factory = factory_class(factory_class.config_model.model_validate({"type": "acme_fruit"}))
    check_open(factory)
    assert "a [FRUIT]" == run_factory(factory, ["a ban", "ana"]).text
