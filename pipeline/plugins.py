"""Find the stage factory behind a YAML ``type:`` name and check it fits the contract.

Three sources, in order: the built-ins (``filters.registry``), the entry-point group
``streamsieve.stages`` (installed plug-ins), and a dotted path ``package.module:Factory``.
A factory that does not fit is refused here, at startup, with what is missing — never
discovered on the first token of the first request.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from functools import cache
from importlib.metadata import entry_points

from filters.registry import BUILTIN_STAGES
from pipeline.stage import StageConfig, StageFactory

ENTRY_POINT_GROUP = "streamsieve.stages"


class StageLoadError(Exception):
    """A ``type:`` that names no usable stage; the message says what to change."""


def _import(target: str, origin: str) -> object:
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise StageLoadError(f"{origin} {target!r} must look like 'package.module:Factory'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise StageLoadError(f"{origin} {target!r}: cannot import {module_name!r} ({exc})") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise StageLoadError(
            f"{origin} {target!r}: module {module_name!r} has no attribute {attr!r}"
        ) from None


def installed_plugins() -> dict[str, str]:
    """Stage names registered by installed packages, mapped to their ``module:attr``."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def check_factory(obj: object, origin: str) -> type[StageFactory[StageConfig]]:
    """``obj`` if it is a usable stage factory class, else a :class:`StageLoadError`."""
    if not (inspect.isclass(obj) and issubclass(obj, StageFactory)):
        raise StageLoadError(
            f"{origin} is {obj!r}, not a subclass of pipeline.stage.StageFactory; "
            "subclass it and implement open(channel)"
        )
    missing = sorted(getattr(obj, "__abstractmethods__", ()))
    if missing:
        raise StageLoadError(f"{origin} ({obj.__name__}) does not implement: {', '.join(missing)}")
    model = getattr(obj, "config_model", None)
    if not (inspect.isclass(model) and issubclass(model, StageConfig)):
        raise StageLoadError(
            f"{origin} ({obj.__name__}).config_model must be a subclass of "
            "pipeline.stage.StageConfig"
        )
    return obj


def known_types() -> list[str]:
    """Every ``type:`` name usable right now, for error messages."""
    return sorted({*BUILTIN_STAGES, *installed_plugins()})


@cache
def resolve_stage(type_name: str) -> type[StageFactory[StageConfig]]:
    """The factory class for ``type_name`` (built-in, plug-in, or dotted path)."""
    if type_name in BUILTIN_STAGES:
        target, origin = BUILTIN_STAGES[type_name], f"built-in stage {type_name!r}"
    elif type_name in (plugins := installed_plugins()):
        target, origin = plugins[type_name], f"plug-in stage {type_name!r}"
    elif ":" in type_name:
        target, origin = type_name, "stage path"
    else:
        names = known_types()
        close = difflib.get_close_matches(type_name, names, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise StageLoadError(
            f"unknown stage type {type_name!r}; {hint}known types: {', '.join(names)} "
            "(or a dotted path 'package.module:Factory')"
        )
    return check_factory(_import(target, origin), origin)
