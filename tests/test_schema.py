"""``streamsieve schema``: the config's JSON Schema accepts real configs and refuses typos."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from pipeline.cli import main
from pipeline.plugins import resolve_stage
from pipeline.schema import config_schema

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = [ROOT / "config" / "default.yaml", ROOT / "config" / "openai.example.yaml"]
CONFIGS.append(ROOT / "tests" / "data" / "replay.yaml")


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    """A validator for the schema of the built-in stages."""
    schema, notes = config_schema()
    assert [] == notes
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def errors(validator: Draft202012Validator, config: Any) -> list[str]:
    return sorted(error.message for error in validator.iter_errors(config))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_are_valid(validator: Draft202012Validator, path: Path) -> None:
    """Every config the project ships validates against the schema."""
    assert [] == errors(validator, yaml.safe_load(path.read_text()))


def route(**keys: Any) -> dict[str, Any]:
    return {"routes": [{"name": "r", "upstream": {"url": "http://127.0.0.1:1"}, **keys}]}


def test_typos_in_route_buffer_and_stage_keys_are_refused(
    validator: Draft202012Validator,
) -> None:
    """Unknown keys anywhere, a bad enum value and a stage's own unknown key are errors."""
    assert errors(validator, route(bufer={}))
    assert errors(validator, route(buffer={"on_overflow": "maks"}))
    assert errors(validator, route(stages=[{"type": "redact", "detectorz": ["email"]}]))
    assert errors(validator, route(stages=[{"type": "profanity", "action": 3}]))
    assert errors(validator, route(stages=[{"type": "no such stage"}]))
    assert [] == errors(validator, route(stages=[{"type": "redact", "max_holdback_chars": 64}]))


def test_field_docstrings_are_descriptions(validator: Draft202012Validator) -> None:
    """The reference docs travel with the schema: route keys and each stage's own keys."""
    schema = validator.schema
    assert isinstance(schema, dict)
    defs = schema["$defs"]
    buffer = defs["BufferConfig"]["properties"]["max_holdback_chars"]["description"]
    assert buffer.startswith("Most characters any one stage may hold on one channel.")
    stage_types = defs["StageEntry"]["properties"]["type"]["anyOf"]
    assert {"json", "profanity", "redact"} <= {choice.get("const") for choice in stage_types}
    mask = defs["StageConfig"]["properties"]["mask"]["description"]
    assert "replaces held text" in mask
    redact = defs["RedactConfig"]["properties"]
    assert all(field.get("description") for name, field in redact.items() if name != "type")


STAGE_MODULE = '''
from pipeline.scanner import MatchFactory, Rules
from pipeline.stage import StageConfig


class VendorConfig(StageConfig):
    type: str = "vendors:VendorFactory"
    names: list[str] = ["Acme"]
    """Competitor names to mask."""


class VendorFactory(MatchFactory[VendorConfig]):
    config_model = VendorConfig

    def __init__(self, config: VendorConfig) -> None:
        super().__init__(config, Rules.from_phrases({"vendor": config.names}))
'''


@pytest.fixture
def vendor_config(tmp_path: Path) -> Iterator[Path]:
    """A config using a dotted-path stage that lives next to it."""
    (tmp_path / "vendors.py").write_text(STAGE_MODULE)
    config = tmp_path / "streamsieve.yaml"
    config.write_text(
        "# yaml-language-server: $schema=./streamsieve.schema.json\n"
        "routes:\n"
        "  - name: r\n"
        '    upstream: {url: "http://127.0.0.1:1"}\n'
        "    stages:\n"
        '      - type: "vendors:VendorFactory"\n'
        '        names: ["Initech"]\n'
    )
    yield config
    resolve_stage.cache_clear()
    sys.modules.pop("vendors", None)
    if str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))


def test_the_command_writes_a_schema_with_the_configs_own_stages(
    vendor_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``schema --config`` adds the dotted-path stages of that config, keys and docs."""
    out = vendor_config.parent / "streamsieve.schema.json"
    assert 0 == main(["schema", "--config", str(vendor_config), "--out", str(out)])
    schema = json.loads(out.read_text())
    validator = Draft202012Validator(schema)
    config = yaml.safe_load(vendor_config.read_text())
    assert [] == errors(validator, config)
    config["routes"][0]["stages"][0]["namez"] = []
    assert ["Additional properties are not allowed ('namez' was unexpected)"] == errors(
        validator, config
    )
    names = schema["$defs"]["VendorConfig"]["properties"]["names"]
    assert "Competitor names to mask." == names["description"]
    assert "" == capsys.readouterr().err


def test_readme_shows_the_editor_modeline() -> None:
    """The README names the one comment line that wires the schema into an editor."""
    readme = (ROOT / "README.md").read_text()
    assert "# yaml-language-server: $schema=./streamsieve.schema.json" in readme
    assert "streamsieve schema --out streamsieve.schema.json" in readme
