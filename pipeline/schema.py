"""``streamsieve schema``: the JSON Schema of a whole config, for YAML editors.

The schema is built from the same pydantic models that validate a config: the top level,
routes, upstream and buffer, and under ``stages:`` one branch per installed stage (built-in
or plug-in, and any dotted-path stage a given config uses), each with that stage's own
keys. Field docstrings become descriptions (the models set ``use_attribute_docstrings``), so
an editor shows the reference docs while a config is typed. Entries whose ``type`` is not
known here (a dotted path to a module not loaded) are checked for the keys every stage has.

Wire it into an editor that uses yaml-language-server (VS Code's YAML extension, Neovim,
Helix...) with one comment line at the top of the config::

    # yaml-language-server: $schema=./streamsieve.schema.json
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from pipeline.config import ProxyConfig
from pipeline.plugins import StageLoadError, known_types, resolve_stage
from pipeline.stage import StageConfig
from pipeline.stagepath import importable_from

__all__ = ["config_schema", "dotted_types", "write_schema"]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_DOTTED = r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"


def config_schema(extra_types: Iterable[str] = ()) -> tuple[dict[str, Any], list[str]]:
    """The schema, and a note per stage type that could not be loaded (left out)."""
    models: dict[str, type[StageConfig]] = {}
    notes: list[str] = []
    for name in [*known_types(), *extra_types]:
        try:
            models[name] = resolve_stage(name).config_model
        except StageLoadError as exc:
            notes.append(f"stage {name!r} left out: {exc}")
    kinds: list[type[BaseModel]] = [ProxyConfig, StageConfig, *models.values()]
    entries: list[tuple[type[BaseModel], JsonSchemaMode]] = [(m, "validation") for m in kinds]
    refs, schema = models_json_schema(entries, ref_template="#/$defs/{model}")
    defs: dict[str, Any] = schema["$defs"]
    branches = []
    choices: list[dict[str, Any]] = []
    for name, model in models.items():
        ref = refs[(model, "validation")]["$ref"]
        doc = (resolve_stage(name).__doc__ or model.__doc__ or "").strip().split("\n\n")[0]
        choices.append({"const": name, "description": " ".join(doc.split())})
        branches.append(
            {
                "if": {"properties": {"type": {"const": name}}, "required": ["type"]},
                "then": {"$ref": ref, "properties": {"type": {"const": name}}},
            }
        )
    common_name = refs[(StageConfig, "validation")]["$ref"].rsplit("/", 1)[-1]
    open_common = {**defs[common_name], "additionalProperties": True}
    open_common.pop("required", None)
    dotted = {
        "type": "string",
        "pattern": _DOTTED,
        "description": "A stage by dotted path, 'package.module:Factory'.",
    }
    defs["StageEntry"] = {
        "title": "Stage",
        "description": "One stage of the route's chain; its keys depend on its type.",
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"anyOf": [*choices, dotted]}},
        "allOf": [
            *branches,
            {
                "if": {"properties": {"type": {"not": {"enum": list(models)}}}},
                "then": open_common,
            },
        ],
    }
    top = defs.pop("ProxyConfig")
    return {"$schema": SCHEMA_DIALECT, **top, "$defs": defs}, notes


def dotted_types(config_path: Path) -> list[str]:
    """The dotted-path ``type:`` values a config file uses (read leniently, no validation)."""
    try:
        data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return []
    routes = data.get("routes") if isinstance(data, dict) else None
    found: list[str] = []
    for route in routes if isinstance(routes, list) else []:
        stages = route.get("stages") if isinstance(route, dict) else None
        for entry in stages if isinstance(stages, list) else []:
            kind = entry.get("type") if isinstance(entry, dict) else None
            if isinstance(kind, str) and ":" in kind and kind not in found:
                found.append(kind)
    return found


def write_schema(out: Path | None, config: Path | None) -> int:
    """``streamsieve schema``: print or write the schema; notes go to stderr."""
    extra = dotted_types(config) if config is not None else []
    if config is not None:
        with importable_from(config.parent):
            schema, notes = config_schema(extra)
    else:
        schema, notes = config_schema()
    for note in notes:
        print(f"streamsieve schema: {note}", file=sys.stderr)
    text = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
    return 0
