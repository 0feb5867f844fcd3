"""Find the stage factory behind a YAML ``type:`` name and check it fits the contract.

Three sources, in order: the built-ins, the other packages' entries in the entry-point group
``streamsieve.stages`` (installed plug-ins), and a dotted path ``package.module:Factory``.
Built-ins are found exactly as plug-ins are: streamsieve's own ``pyproject.toml`` lists
them in that group, so this core module never imports ``filters``.
A factory that does not fit is refused here, at startup, with what is missing — never
discovered on the first token of the first request.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from functools import cache
from importlib.metadata import entry_points

from pydantic import ValidationError

from pipeline.stage import AsyncStage, Channel, ChannelKind, Stage, StageConfig, StageFactory

ENTRY_POINT_GROUP = "streamsieve.stages"
DISTRIBUTION = "streamsieve"
"""The distribution whose entries in :data:`ENTRY_POINT_GROUP` are the built-in stages."""


IMPORT_HINT = (
    "a dotted path is imported from the Python path and from the config file's directory: "
    "put the module next to the config file, install its package (pip install -e DIR), "
    "or add its directory to PYTHONPATH"
)


class StageLoadError(Exception):
    """A ``type:`` that names no usable stage; the message says what to change."""


def _import(target: str, origin: str) -> object:
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise StageLoadError(f"{origin} {target!r} must look like 'package.module:Factory'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise StageLoadError(
            f"{origin} {target!r}: cannot import {module_name!r} ({exc}); {IMPORT_HINT}"
        ) from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise StageLoadError(
            f"{origin} {target!r}: module {module_name!r} has no attribute {attr!r}"
        ) from None


def _registered(builtin: bool) -> dict[str, str]:
    found = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ours = ep.dist is not None and ep.dist.name == DISTRIBUTION
        if ours == builtin:
            found[ep.name] = ep.value
    return found


def builtin_stages() -> dict[str, str]:
    """The built-in stage names (streamsieve's own entry points) → their ``module:attr``."""
    return _registered(builtin=True)


def installed_plugins() -> dict[str, str]:
    """Stage names registered by other installed packages, mapped to their ``module:attr``."""
    return _registered(builtin=False)


def check_factory(
    obj: object, origin: str, type_name: str | None = None
) -> type[StageFactory[StageConfig]]:
    """``obj`` if it is a usable stage factory class, else a :class:`StageLoadError`.

    With ``type_name`` (the YAML ``type:`` that named it) the config model must also
    accept that name in its ``type`` field, or every config naming it would be refused.
    """
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
    if type_name is not None:
        _check_type_field(obj, model, type_name, origin)
    return obj


def _check_type_field(
    factory: type[StageFactory[StageConfig]],
    model: type[StageConfig],
    type_name: str,
    origin: str,
) -> None:
    """Refuse a config model whose ``type`` field rejects the name the stage is loaded by.

    Only errors located at ``type`` count: other required fields are legitimately missing
    from this one-key probe.
    """
    try:
        model.model_validate({"type": type_name})
    except ValidationError as exc:
        refusals = [e["msg"] for e in exc.errors() if e["loc"][:1] == ("type",)]
        if refusals:
            raise StageLoadError(
                f"{origin} ({factory.__name__}).config_model refuses type {type_name!r}: "
                f"{refusals[0]}; declare the field as 'type: str' (with a default if you "
                "like) so the stage loads under any name a config gives it"
            ) from None


PROBE_CHANNELS = (
    Channel(key="probe.text", kind=ChannelKind.TEXT, route="probe"),
    Channel(key="probe.json", kind=ChannelKind.JSON, route="probe"),
)
"""Channels :func:`check_open` opens a factory on, one of each kind."""


def check_open(factory: StageFactory[StageConfig], origin: str = "stage") -> None:
    """Open ``factory`` once per channel kind it applies to and check what comes back.

    A factory whose ``open`` returns something without ``held``/``feed``/``finish``, or
    whose methods are async while ``is_async`` says otherwise (or the reverse), would
    fail on the first token of the first request; run when the factory is built
    (:func:`build_factory`), this finds it at start-up instead.
    The probe stage is dropped unfed, which is why ``open`` must stay cheap and free of
    side effects (no connections, no files opened per stage).
    """
    name = type(factory).__name__
    for channel in PROBE_CHANNELS:
        if not factory.applies_to(channel):
            continue
        stage = factory.open(channel)
        if not isinstance(stage, Stage | AsyncStage):
            raise StageLoadError(
                f"{origin} ({name}).open() returned {type(stage).__name__}, which lacks "
                "held, feed or finish; return an object implementing pipeline.stage.Stage"
            )
        for method in ("feed", "finish"):
            is_coroutine = inspect.iscoroutinefunction(getattr(stage, method))
            if is_coroutine != factory.is_async:
                kind = "async" if is_coroutine else "sync"
                raise StageLoadError(
                    f"{origin} ({name}): {type(stage).__name__}.{method} is {kind} but the "
                    f"factory declares is_async = {factory.is_async}; make them agree"
                )
        if stage.held != 0:
            raise StageLoadError(
                f"{origin} ({name}): a freshly opened stage reports held = {stage.held}; "
                "it must start holding nothing"
            )


def build_factory(config: StageConfig) -> StageFactory[StageConfig]:
    """The factory for a validated stage config, constructed and probed (see check_open)."""
    factory = resolve_stage(config.type)(config)
    check_open(factory, f"stage {config.type!r}")
    return factory


def known_types() -> list[str]:
    """Every ``type:`` name usable right now, for error messages."""
    return sorted({*builtin_stages(), *installed_plugins()})


@cache
def resolve_stage(type_name: str) -> type[StageFactory[StageConfig]]:
    """The factory class for ``type_name`` (built-in, plug-in, or dotted path)."""
    builtins = builtin_stages()
    if type_name in builtins:
        target, origin = builtins[type_name], f"built-in stage {type_name!r}"
    elif type_name in (plugins := installed_plugins()):
        target, origin = plugins[type_name], f"plug-in stage {type_name!r}"
    elif ":" in type_name:
        target, origin = type_name, "stage path"
    else:
        names = known_types()
        close = difflib.get_close_matches(type_name, names, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        if not builtins:
            hint += "(no built-in stage is registered: install streamsieve, 'pip install -e .') "
        raise StageLoadError(
            f"unknown stage type {type_name!r}; {hint}known types: {', '.join(names)} "
            "(or a dotted path 'package.module:Factory')"
        )
    return check_factory(_import(target, origin), origin, type_name)
