"""Every example stage package: installed by its entry point, compliant, filtering real streams."""

from __future__ import annotations

import asyncio
import re
import shlex
import sys
import tomllib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import openai
import pytest
from aiohttp import web

from pipeline.cli import _parser
from pipeline.config import ConfigError, parse_config
from pipeline.plugins import ENTRY_POINT_GROUP, installed_plugins, resolve_stage
from pipeline.simulator._control import _SimControl
from pipeline.stage import StageFactory
from pipeline.testing import acheck_stage, assert_compliant, check_stage, run_factory
from tests.conftest import StackFactory
from tests.test_compliance_kit import PerChunkFactory

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples" / "stages"
EXAMPLES = sorted(p.name for p in EXAMPLES_DIR.iterdir() if (p / "pyproject.toml").is_file())
DEMO_UPSTREAM = "http://127.0.0.1:9000"


def entry_points_of(example: str) -> dict[str, str]:
    """The ``streamsieve.stages`` entry points an example's pyproject declares."""
    project = tomllib.loads((EXAMPLES_DIR / example / "pyproject.toml").read_text())["project"]
    return dict(project["entry-points"][ENTRY_POINT_GROUP])


def install(example: str, site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``example`` importable with the dist-info pip would write from its pyproject."""
    name = f"streamsieve_example_{example}"
    dist_info = site / f"{name}-0.1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    lines = [f"{key} = {value}" for key, value in entry_points_of(example).items()]
    (dist_info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n" + "\n".join(lines))
    monkeypatch.syspath_prepend(str(EXAMPLES_DIR / example))
    monkeypatch.syspath_prepend(str(site))


@pytest.fixture
def examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every example installed in a temporary site directory for this test only."""
    for example in EXAMPLES:
        install(example, tmp_path / example, monkeypatch)
    resolve_stage.cache_clear()
    yield
    resolve_stage.cache_clear()
    for example in EXAMPLES:
        sys.modules.pop(example, None)


def factory_for(type_name: str, **keys: Any) -> StageFactory[Any]:
    """A factory as the proxy would build it from a YAML stage entry."""
    factory_class = resolve_stage(type_name)
    return factory_class(factory_class.config_model.model_validate({"type": type_name, **keys}))


def example_yaml(example: str, **placeholders: str) -> str:
    """The example's own config as a ``stack`` template: the demo upstream becomes the test's."""
    text = (EXAMPLES_DIR / example / "streamsieve.yaml").read_text()
    text = text.replace("{", "{{").replace("}", "}}").replace(DEMO_UPSTREAM, "{upstream}")
    for value, name in placeholders.items():
        text = text.replace(value, "{" + name + "}")
    return text


def route(stages: str) -> str:
    """A ``stack`` config with one chat route and the given stage entries."""
    return f"""
routes:
  - name: chat
    match: {{{{path: "/v1/*"}}}}
    upstream: {{{{url: "{{upstream}}"}}}}
    stages:
{stages}
"""


@dataclass(slots=True)
class Reply:
    """What the SDK read from one streamed completion."""

    text: str = ""
    finish_reasons: list[str] = field(default_factory=list)


async def chat(url: str, text: str, chunks: list[str] | None = None) -> Reply:
    """Stream a completion through the proxy whose upstream replies with ``text``.

    ``chunks`` fixes the upstream's deltas (they must join to ``text``).
    """
    sim: dict[str, Any] = {"text": text, "sse_split": "bytes"}
    if chunks is not None:
        sim["chunks"] = chunks
    reply = Reply()
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0) as sdk:
        stream = await sdk.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "go"}],
            stream=True,
            extra_body={"sim": sim},
        )
        async for chunk in stream:
            for choice in chunk.choices:
                reply.text += choice.delta.content or ""
                if choice.finish_reason:
                    reply.finish_reasons.append(choice.finish_reason)
    return reply


@pytest.mark.usefixtures("examples")
@pytest.mark.parametrize("example", EXAMPLES)
def test_example_entry_points_resolve_and_its_config_is_valid(example: str) -> None:
    """Each example's entry point loads a factory and its shipped YAML passes the config check."""
    for name, target in entry_points_of(example).items():
        assert target == installed_plugins()[name]
        assert issubclass(resolve_stage(name), StageFactory)
    config = parse_config((EXAMPLES_DIR / example / "streamsieve.yaml").read_text(), example)
    assert [example] == [entry.type for r in config.proxy.routes for entry in r.stages]


def test_there_are_at_least_two_examples() -> None:
    """The examples folder holds the blocklist and the moderation-service packages."""
    assert {"keyword_blocklist", "moderation_service"} <= set(EXAMPLES)


# keyword_blocklist

BLOCKLIST_TEXTS = [
    "We call it Project  Nightingale; no, project nightingale!",
    "see INC-123456 and INC-12345 and inc-1234567, INC-654321",
    "BLUEBIRD bluebirds bluebird.",
    "acme-internal and initech_internal docs",
    "plain prose, nothing here",
    "",
]


@pytest.mark.usefixtures("examples")
@pytest.mark.parametrize("action", ["mask", "block"])
def test_keyword_blocklist_is_compliant(action: str) -> None:
    """The blocklist keeps the contract with its shipped list, masking or blocking."""
    assert_compliant(factory_for("keyword_blocklist", action=action), BLOCKLIST_TEXTS, examples=20)


@pytest.mark.usefixtures("examples")
def test_keyword_blocklist_loads_by_dotted_path_too() -> None:
    """The factory also loads without its entry point, by ``module:Factory``."""
    factory = factory_for("keyword_blocklist:KeywordBlocklistFactory")
    assert "[FILTERED] flies" == run_factory(factory, ["Blue", "bird flies"]).text


@pytest.mark.usefixtures("examples")
async def test_keyword_blocklist_masks_through_the_proxy_with_its_own_config(
    stack: StackFactory,
) -> None:
    """The example's YAML, served by the proxy, masks listed words the SDK would have shown."""
    running = await stack(example_yaml("keyword_blocklist"))
    reply = await chat(running.proxy_url, "Ask about Project Nightingale or INC-004211 today.")
    assert "Ask about [REMOVED] or [REMOVED] today." == reply.text
    assert ["stop"] == reply.finish_reasons


@pytest.mark.usefixtures("examples")
async def test_keyword_blocklist_blocks_with_a_team_list_file(
    stack: StackFactory, tmp_path: Path
) -> None:
    """A team's own list file with action block ends the stream with content_filter."""
    listing = tmp_path / "team.txt"
    listing.write_text("# ours\nre:ORD-\\d{4}\n")
    stages = f"""      - type: keyword_blocklist
        list_file: "{listing}"
        action: block
"""
    running = await stack(route(stages))
    reply = await chat(running.proxy_url, "Your order ORD-1234 has shipped.")
    assert "Your order " == reply.text
    assert ["content_filter"] == reply.finish_reasons


@pytest.mark.usefixtures("examples")
def test_keyword_blocklist_bad_entry_is_a_config_problem_with_its_line(tmp_path: Path) -> None:
    """An invalid regex in the list is refused when the config is checked, naming its line."""
    listing = tmp_path / "bad.txt"
    listing.write_text("fine\nre:(unclosed\n")
    text = f"""routes:
  - name: r
    upstream: {{url: "http://127.0.0.1:1"}}
    stages:
      - type: keyword_blocklist
        list_file: "{listing}"
"""
    with pytest.raises(ConfigError, match="rule blocklist:line2: not a valid regex"):
        parse_config(text)


# moderation_service


@dataclass(slots=True)
class FakeModeration:
    """A moderation service on loopback speaking OpenAI's moderation shape."""

    url: str = ""
    mode: str = "ok"
    """``ok`` answers, ``slow`` answers after 2 s, ``error`` answers HTTP 500."""
    inputs: list[str] = field(default_factory=list)


FLAG_WORDS = {"attack": "violence", "idiot": "harassment"}


@pytest.fixture
async def moderation() -> AsyncIterator[FakeModeration]:
    """The fake service, flagging windows that contain one of ``FLAG_WORDS``."""
    service = FakeModeration()

    async def moderate(request: web.Request) -> web.Response:
        body = await request.json()
        service.inputs.append(body["input"])
        if service.mode == "error":
            return web.json_response({"error": {"message": "down"}}, status=500)
        if service.mode == "slow":
            await asyncio.sleep(2)
        hits = {cat: word in body["input"].lower() for word, cat in FLAG_WORDS.items()}
        return web.json_response({"results": [{"flagged": any(hits.values()), "categories": hits}]})

    app = web.Application()
    app.router.add_post("/v1/moderations", moderate)
    runner = web.AppRunner(app, handler_cancellation=True)  # a timed-out call stops its sleep
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    service.url = f"http://127.0.0.1:{port}/v1/moderations"
    yield service
    await runner.cleanup()


MODERATION_TEXTS = [
    "Hello there. How are you?\nFine!",
    "I will attack the problem. Then rest.",
    "no sentence end here but it is longer than one window of text",
    "What an idiot... Really?! Yes.",
    "",
]


def moderation_stage(url: str, **keys: str) -> str:
    """A stage entry for the moderation example (YAML, two-space indented list item)."""
    extra = "".join(f"        {key}: {value}\n" for key, value in keys.items())
    return f'      - type: moderation_service\n        url: "{url}"\n{extra}'


@pytest.mark.usefixtures("examples")
@pytest.mark.parametrize("action", ["block", "mask"])
async def test_moderation_service_is_compliant(moderation: FakeModeration, action: str) -> None:
    """The async example keeps the contract while calling a real HTTP service."""
    factory = factory_for("moderation_service", url=moderation.url, window_chars=24, action=action)
    report = await acheck_stage(factory, MODERATION_TEXTS, examples=10)
    assert report.ok, str(report)
    assert "Hello there. " in moderation.inputs


@pytest.mark.usefixtures("examples")
async def test_moderation_service_blocks_a_flagged_sentence_through_the_proxy(
    stack: StackFactory, moderation: FakeModeration
) -> None:
    """Sentences before the flagged one reach the client; the flagged one ends the stream."""
    running = await stack(route(moderation_stage(moderation.url)))
    reply = await chat(running.proxy_url, "All calm here. Now we attack at dawn. And then?")
    assert "All calm here. " == reply.text
    assert ["content_filter"] == reply.finish_reasons
    assert ["All calm here. ", "Now we attack at dawn. "] == moderation.inputs


@pytest.mark.usefixtures("examples")
async def test_moderation_service_masks_with_its_own_yaml(
    stack: StackFactory, moderation: FakeModeration, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example's YAML with action mask replaces the flagged window and streams on."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-moderation-test")
    template = example_yaml("moderation_service")
    template = template.replace("https://api.openai.com/v1/moderations", "{moderation}")
    template = template.replace('"https://api.openai.com"', '"{upstream}"')
    template = template.replace("action: block", 'action: mask\n        mask: "[MODERATED]"')
    running = await stack(template, moderation=moderation.url)
    reply = await chat(running.proxy_url, "Fine. You idiot. Bye.")
    assert "Fine. [MODERATED]Bye." == reply.text
    assert ["stop"] == reply.finish_reasons


FAILING_REPLY = ["Attack now.\n", "Then stop.\n"]
"""Each upstream delta completes its own window, so the call that fails holds no older text."""


@pytest.mark.usefixtures("examples")
@pytest.mark.parametrize(
    ("mode", "on_error", "expected_text", "expected_finish"),
    [
        ("slow", "pass", "".join(FAILING_REPLY), "stop"),
        ("slow", "block", "", "content_filter"),
        ("error", "block", "", "content_filter"),
        ("error", "pass", "".join(FAILING_REPLY), "stop"),
    ],
    ids=["timeout-fail-open", "timeout-fail-closed", "error-fail-closed", "error-fail-open"],
)
async def test_moderation_service_failure_follows_on_error(
    stack: StackFactory,
    moderation: FakeModeration,
    mode: str,
    on_error: str,
    expected_text: str,
    expected_finish: str,
) -> None:
    """A slow or failing service times out or errors, and on_error decides: open or closed."""
    moderation.mode = mode
    stage = moderation_stage(moderation.url, timeout_ms="150", on_error=on_error)
    running = await stack(route(stage))
    reply = await chat(running.proxy_url, "".join(FAILING_REPLY), FAILING_REPLY)
    assert expected_text == reply.text
    assert [expected_finish] == reply.finish_reasons
    assert "Attack now.\n" == moderation.inputs[0]


# docs/writing-a-stage.md: every code block is real

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "writing-a-stage.md"
_FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def guide_blocks(language: str, *, keep_lines: bool = False) -> list[str]:
    """The guide's fenced code blocks in ``language``, in order.

    With ``keep_lines`` each block is preceded by blank lines so that tracebacks point at
    the guide's own line numbers.
    """
    text = GUIDE.read_text()
    return [
        "\n" * text.count("\n", 0, match.start(2)) * keep_lines + match[2]
        for match in _FENCE.finditer(text)
        if match[1] == language
    ]


@pytest.fixture(scope="module")
def guide() -> Iterator[ModuleType]:
    """The guide's Python blocks run in order as module ``my_team.tickets``, its YAML's path.

    Module-scoped since the blocks run the compliance kit; the modules are removed after.
    """
    package = ModuleType("my_team")
    package.__path__ = []
    module = ModuleType("my_team.tickets")
    sys.modules.update({"my_team": package, "my_team.tickets": module})
    try:
        for block in guide_blocks("python", keep_lines=True):
            code = compile(block, str(GUIDE), "exec")
            exec(code, module.__dict__)  # noqa: S102 - the guide's own examples, checked in
        resolve_stage.cache_clear()
        yield module
    finally:
        resolve_stage.cache_clear()
        del sys.modules["my_team.tickets"], sys.modules["my_team"]


def test_guide_python_blocks_run(guide: ModuleType) -> None:
    """Every Python block runs, with its own asserts, and defines the guide's stages."""
    assert 4 <= len(guide_blocks("python"))
    assert (
        "[FILTERED]"
        == run_factory(guide.TicketMaskFactory(guide.TicketMaskConfig()), ["TKT-0001"]).text
    )
    assert "abusive language" == guide.run.block
    assert guide.sim == _SimControl.model_validate(guide.sim).model_dump(exclude_unset=True)


def test_guide_yaml_blocks_are_valid_configs(guide: ModuleType) -> None:
    """Every YAML block is a config the check accepts, with the guide's stage loaded by path."""
    blocks = guide_blocks("yaml")
    assert 2 <= len(blocks)
    for block in blocks:
        config = parse_config(block, "writing-a-stage.md")
        assert ["my_team.tickets:TicketMaskFactory"] == [
            s.type for s in config.stages["support-bot"]
        ]


@pytest.mark.usefixtures("guide")
async def test_guide_main_example_masks_through_the_proxy(stack: StackFactory) -> None:
    """The guide's first config, served by the proxy, masks a ticket id split across deltas."""
    template = guide_blocks("yaml")[0].replace("{", "{{").replace("}", "}}")
    template = template.replace('"https://api.openai.com"', '"{upstream}"')
    running = await stack(template)
    reply = await chat(
        running.proxy_url, "Ticket TKT-20241 is closed.", ["Ticket TK", "T-202", "41 is closed."]
    )
    assert "Ticket [TICKET] is closed." == reply.text


def test_guide_pyproject_matches_the_example_package() -> None:
    """The TOML block declares the same entry point as the keyword_blocklist example."""
    (block,) = guide_blocks("toml")
    declared = tomllib.loads(block)["project"]["entry-points"][ENTRY_POINT_GROUP]
    assert entry_points_of("keyword_blocklist") == declared


def test_guide_text_blocks_match_reality() -> None:
    """The failure message is what the kit prints; the package layout lists real files."""
    message, layout = guide_blocks("text")
    for name in re.findall(r"[\w.]+\.(?:toml|yaml|py|txt)", layout):
        assert list((EXAMPLES_DIR / "keyword_blocklist").rglob(name)), name
    report = check_stage(PerChunkFactory(), ["a secret here"], examples=5)
    assert " ".join(message.split()) in " ".join(str(report).split())


def test_guide_shell_commands_parse_with_the_real_cli() -> None:
    """Every streamsieve command line in the guide is accepted by the CLI's parser."""
    commands = [
        shlex.split(line)
        for block in guide_blocks("shell")
        for line in block.replace("\\\n", " ").splitlines()
        if line.startswith("streamsieve ")
    ]
    assert 4 == len(commands)
    for argv in commands:
        args = _parser().parse_args(argv[1:])
        assert callable(args.handler)
