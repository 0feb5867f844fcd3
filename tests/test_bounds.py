"""Safe limits and stage paths: check-config refuses a limit that lets a cut-off match through."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.config import ConfigError, load_config
from pipeline.plugins import resolve_stage

STAGE_MODULE = """
from pipeline.scanner import BLOCK, Decision, Hit, MatchFactory, Rules
from pipeline.stage import StageConfig


class HarmFactory(MatchFactory[StageConfig]):
    def __init__(self, config: StageConfig) -> None:
        super().__init__(config, Rules.from_phrases({"self_harm": ["kill myself"]}))

    def on_match(self, hit: Hit) -> Decision:
        return BLOCK
"""


def config_text(stage_keys: str = "", buffer: str = "") -> str:
    """A one-route config with the ``harm_stage`` entry and extra YAML lines."""
    return (
        "routes:\n"
        "  - name: chat\n"
        '    upstream: {url: "http://127.0.0.1:1"}' + buffer + "\n"
        "    stages:\n"
        '      - type: "harm_stage:HarmFactory"' + stage_keys + "\n"
    )


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    """A config folder holding the stage module ``harm_stage`` (not installed anywhere)."""
    (tmp_path / "harm_stage.py").write_text(STAGE_MODULE)
    resolve_stage.cache_clear()
    yield tmp_path
    resolve_stage.cache_clear()
    sys.modules.pop("harm_stage", None)
    if str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))


def check(folder: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    path = folder / "streamsieve.yaml"
    path.write_text(text)
    code = main(["check-config", str(path)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_a_stage_module_next_to_the_config_loads_by_dotted_path(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``type: "harm_stage:HarmFactory"`` finds harm_stage.py beside the YAML file."""
    code, output = check(folder, config_text(), capsys)
    assert (0, "OK") == (code, output.split(": ")[1])


def test_a_missing_module_says_how_to_make_it_importable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The error names the places searched and the three ways to fix it."""
    code, output = check(tmp_path, config_text(), capsys)
    assert 1 == code
    assert "put the module next to the config file" in output
    assert "pip install -e" in output
    assert "PYTHONPATH" in output


def test_a_limit_below_the_natural_bound_under_mask_is_refused_with_the_fix(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's case: max_holdback_chars 4 on a 12-character phrase (116 with its spellings)."""
    keys = "\n        max_holdback_chars: 4\n        on_overflow: mask"
    code, output = check(folder, config_text(keys), capsys)
    assert 1 == code
    assert "routes[0].stages[0]" in output
    assert "may hold 4 characters (its max_holdback_chars) but needs 116" in output
    assert "raise the limit to 116 or more, or set on_overflow: block" in output


def test_the_route_limit_counts_too(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A route buffer below the bound is named as the route's, with the same fix."""
    buffer = "\n    buffer: {max_holdback_chars: 5, on_overflow: mask}"
    code, output = check(folder, config_text("\n        on_overflow: mask", buffer), capsys)
    assert 1 == code
    assert "may hold 5 characters (the route's buffer.max_holdback_chars)" in output


def test_block_is_safe_and_pass_is_only_warned_about(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Under block a tight limit is accepted; under an explicit pass it is accepted loudly."""
    code, output = check(folder, config_text("\n        max_holdback_chars: 4"), capsys)
    assert (0, ": OK: chat (1 stages)") == (code, output.strip()[-len(": OK: chat (1 stages)") :])
    assert "WARNING" not in output
    keys = "\n        max_holdback_chars: 4\n        on_overflow: pass"
    code, output = check(folder, config_text(keys), capsys)
    assert 0 == code
    assert "\nWARNING: " in output
    assert "under on_overflow: pass the rest of a cut-off match would stream on" in output


def test_serve_refuses_to_start_on_an_unsafe_limit(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``serve`` runs the same check before it binds anything."""
    path = folder / "streamsieve.yaml"
    path.write_text(config_text("\n        max_holdback_chars: 4\n        on_overflow: mask"))
    assert 2 == main(["serve", "--config", str(path), "--port", "0", "--admin-port", "0"])
    assert "refusing to start" in capsys.readouterr().err


def test_loading_elsewhere_leaves_sys_path_alone(tmp_path: Path) -> None:
    """A config whose folder provided no module does not stay on sys.path."""
    path = tmp_path / "plain.yaml"
    path.write_text('routes:\n  - name: r\n    upstream: {url: "http://127.0.0.1:1"}\n')
    load_config(path)
    assert str(tmp_path) not in sys.path
    path.write_text(config_text())
    with pytest.raises(ConfigError, match="cannot import 'harm_stage'"):
        load_config(path)
