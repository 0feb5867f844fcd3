"""Config validation: every problem named with file, line, key path and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.config import ConfigError, load_config, parse_config
from pipeline.resources import config_dir

STAGE = "tests.stages_for_tests:MaskWordFactory"

GOOD = f"""
routes:
  - name: chat
    match: {{path: "/v1/*", model: "gpt-*"}}
    upstream: {{url: "http://127.0.0.1:9000/"}}
    stages:
      - type: "{STAGE}"
        word: hush
    buffer: {{max_holdback_chars: 64, on_overflow: block}}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "routes.yaml")
    return str(caught.value).splitlines()


def test_valid_config_loads_with_stage_models() -> None:
    """A good file gives validated route and stage models."""
    loaded = parse_config(GOOD)
    route = loaded.proxy.routes[0]
    assert "http://127.0.0.1:9000" == route.upstream.url
    assert "hush" == loaded.stages["chat"][0].word  # type: ignore[attr-defined]
    assert 64 == route.buffer.max_holdback_chars


def test_unknown_key_names_line_path_and_suggestion() -> None:
    """A typo names the file, the line, the key path and the key it probably meant."""
    text = GOOD.replace("buffer:", "bufer:")
    [line] = problems(text)
    assert line.startswith("routes.yaml:9: routes[0].bufer: unknown key 'bufer'")
    assert "did you mean 'buffer'" in line


def test_stage_parameter_error_is_located_inside_the_stage() -> None:
    """A stage's own model validates its keys, reported under the stage's path."""
    text = GOOD.replace("word: hush", "wrod: hush")
    [line] = problems(text)
    assert line.startswith("routes.yaml:8: routes[0].stages[0].wrod: unknown key 'wrod'")
    assert "did you mean 'word'" in line


def test_unknown_stage_type_suggests_known_types() -> None:
    """An unknown ``type:`` lists what exists."""
    text = GOOD.replace(f'"{STAGE}"', "nosuchstage")
    [line] = problems(text)
    assert "routes[0].stages[0].type: unknown stage type 'nosuchstage'" in line
    assert "known types:" in line


def test_missing_upstream_and_bad_url_are_both_reported() -> None:
    """Every problem is listed, not only the first."""
    text = """
routes:
  - name: a
  - name: b
    upstream: {url: "ftp://example"}
"""
    lines = problems(text)
    assert 2 == len(lines)
    assert "routes[0].upstream: required key 'upstream' is missing" in lines[0]
    assert "routes[1].upstream.url: must be an http:// or https:// URL" in lines[1]


def test_bad_enum_value_lists_the_allowed_ones() -> None:
    """A wrong policy value says which values are allowed."""
    [line] = problems(GOOD.replace("on_overflow: block", "on_overflow: drop"))
    assert "routes[0].buffer.on_overflow" in line
    assert "'mask'" in line
    assert "'block'" in line


def test_not_yaml_and_not_a_mapping() -> None:
    """Broken YAML and a top level that isn't a mapping are refused with a reason."""
    assert "not valid YAML" in problems("routes: [\n")[0]
    assert "must be a mapping" in problems("- a\n- b\n")[0]


def test_duplicate_route_names_refused() -> None:
    """Route names are unique so logs and metrics can name them."""
    text = GOOD + GOOD.split("routes:\n", 1)[1]
    assert "repeated: chat" in problems(text)[0]


def test_passthrough_without_upstream_refused() -> None:
    """``unmatched: passthrough`` needs somewhere to pass to."""
    [line] = problems(GOOD + "unmatched: {action: passthrough}\n")
    assert "unmatched: action 'passthrough' needs an 'upstream'" in line


def test_route_matching_first_wins() -> None:
    """Routes match on path, model glob and headers; the first match wins."""
    text = """
routes:
  - name: team
    match: {path: "/v1/*", headers: {x-team: red}}
    upstream: {url: "http://127.0.0.1:1"}
  - name: gpt
    match: {path: "/v1/*", model: "gpt-*"}
    upstream: {url: "http://127.0.0.1:2"}
"""
    proxy = parse_config(text).proxy

    def name(path: str, model: str | None, headers: dict[str, str]) -> str | None:
        route = proxy.route_for(path, model, headers)
        return route.name if route else None

    assert "team" == name("/v1/chat/completions", "gpt-4o", {"x-team": "red"})
    assert "gpt" == name("/v1/chat/completions", "gpt-4o", {})
    assert name("/v1/chat/completions", "claude-3", {}) is None
    assert name("/other", "gpt-4o", {}) is None


def test_shipped_configs_are_valid() -> None:
    """Every YAML file in config/ validates."""
    files = sorted(config_dir().glob("*.yaml"))
    assert files
    for file in files:
        load_config(file)


def test_check_config_command_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``check-config`` prints every problem and exits non-zero; 0 and a summary when fine."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("buffer:", "bufer:"))
    assert 1 == main(["check-config", str(bad)])
    err = capsys.readouterr().err
    assert f"{bad}:9: routes[0].bufer" in err
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    assert 0 == main(["check-config", str(good)])
    assert "OK: chat (1 stages)" in capsys.readouterr().out


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    """A missing file is reported as such, not as a traceback."""
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "absent.yaml")


def test_check_config_builds_the_stages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A stage that refuses to build is caught by ``check-config``, not only at ``serve``."""
    bad = tmp_path / "refuse.yaml"
    bad.write_text(
        'routes:\n  - name: r\n    upstream: {url: "http://127.0.0.1:1"}\n'
        '    stages:\n      - {type: "tests.stages_for_tests:RefuseFactory"}\n'
    )
    assert 1 == main(["check-config", str(bad)])
    assert f"{bad}:5: routes[0].stages[0]: stage could not be built" in capsys.readouterr().err


def test_stage_problems_are_reported_with_route_problems() -> None:
    """One run lists the stage problems too, not only after the route's are fixed."""
    text = GOOD.replace("buffer:", "bufer:").replace("word: hush", "wrod: hush")
    lines = problems(text)
    assert 2 == len(lines)
    assert "routes[0].stages[0].wrod: unknown key" in lines[0]
    assert "routes[0].bufer: unknown key" in lines[1]


def test_yaml_errors_name_the_file() -> None:
    """A YAML syntax error points at the file, not at an anonymous string."""
    [line] = problems("routes:\n  - name: [\n")
    assert "<unicode string>" not in line
    assert line.startswith("routes.yaml:")
