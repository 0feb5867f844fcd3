"""The YAML configuration: routes, their upstreams, stages and buffer policy.

Validated by pydantic with ``extra="forbid"`` everywhere so a typo is an error, not a
silently ignored key. :func:`load_config` turns every problem into a line that names the
file, the line, the key path and the fix; a config with any problem is refused whole.
"""

from __future__ import annotations

import difflib
import enum
import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.paths import PathError, canonical, glob_matches
from pipeline.plugins import StageLoadError, resolve_stage
from pipeline.stage import OverflowPolicy, StageConfig
from pipeline.stagepath import importable_from
from pipeline.yamlbound import AliasBombError, check_expansion


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class Protocol(enum.StrEnum):
    """How a route reads the upstream's replies."""

    AUTO = "auto"
    """Chosen from the request path (``/chat/completions``, ``/messages``, ...)."""
    OPENAI_CHAT = "openai-chat"
    OPENAI_COMPLETIONS = "openai-completions"
    OPENAI_RESPONSES = "openai-responses"
    ANTHROPIC_MESSAGES = "anthropic-messages"
    GENERIC_SSE = "generic-sse"
    """Any ``text/event-stream``: each event's ``data`` is text to filter."""
    PASSTHROUGH = "passthrough"
    """Proxied unchanged, never filtered."""


class MatchConfig(_Strict):
    """Which requests a route takes. Every given condition must hold."""

    path: str = "/*"
    """Glob on the canonical request path (:mod:`pipeline.paths`), e.g. ``/v1/*``; case is
    ignored, so a case variant of a path falls in the same route as the path itself."""
    model: str | None = None
    """Glob on the request body's ``model``; requests without a model don't match."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Headers that must be present with exactly these values (names case-insensitive)."""

    def matches(self, path: str, model: str | None, headers: Mapping[str, str]) -> bool:
        """Whether a request with this path, model and headers belongs to the route."""
        if self.model is not None and (model is None or not fnmatch.fnmatchcase(model, self.model)):
            return False
        return self.could_match(path, headers)

    def could_match(self, path: str, headers: Mapping[str, str]) -> bool:
        """Whether the route takes this path and headers, whatever the model."""
        if not glob_matches(path, self.path):
            return False
        return all(headers.get(name) == value for name, value in self.headers.items())


class UpstreamConfig(_Strict):
    """Where a route sends requests. The proxy forwards nowhere else: never an open proxy."""

    url: str
    """Base URL; the request path is appended (``http://127.0.0.1:9000`` + ``/v1/chat/...``)."""
    strip_prefix: str = ""
    """Removed from the start of the canonical request path (at a segment boundary,
    ignoring case) before appending it to ``url``."""
    connect_timeout_s: float = Field(default=10.0, gt=0)
    idle_timeout_s: float = Field(default=120.0, gt=0)
    """Longest silence allowed between two reads of the upstream's reply."""
    total_timeout_s: float | None = Field(default=None, gt=0)
    """Limit on a whole exchange; none by default since a long stream is legitimate."""
    api_key_env: str | None = None
    """Name of an environment variable whose value is sent as the upstream credential when
    the client sent none (``Authorization: Bearer`` or ``x-api-key`` for Anthropic)."""
    ready_check: bool = True
    """Whether ``/readyz`` needs a TCP connection to this upstream to succeed. Turn it off
    for an upstream that is allowed to be down while the proxy still takes traffic."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.query or parts.fragment:
            raise ValueError("must not carry a query string or fragment")
        return url.rstrip("/")

    @field_validator("strip_prefix")
    @classmethod
    def _canonical_prefix(cls, prefix: str) -> str:
        return _canonical_path(prefix, "strip_prefix") if prefix else prefix


def _canonical_path(path: str, what: str) -> str:
    """``path`` if it is already canonical; a config names paths as the proxy compares them."""
    try:
        fixed = canonical(path)
    except PathError as exc:
        raise ValueError(f"{what} {path!r}: {exc}") from None
    if fixed != path:
        raise ValueError(f"{what} {path!r} is not a canonical path; write it as {fixed!r}")
    return path


class BufferConfig(_Strict):
    """The buffer-versus-latency trade-off of a route (stages may tighten it)."""

    mode: Literal["stream", "whole_response"] = "stream"
    """``stream`` holds only what a pattern may still complete; ``whole_response`` holds each
    channel until it ends, so stages see it whole (no streaming: an explicit choice)."""
    max_holdback_chars: int = Field(default=1024, ge=0)
    """Most characters any one stage may hold on one channel. 0 means hold nothing."""
    max_whole_chars: int = Field(default=1024 * 1024, gt=0)
    """In ``whole_response`` mode, the most characters one channel may collect before its
    stages see it; past it the overflow policy applies (``pass`` counts as ``mask``)."""
    max_holdback_ms: float | None = Field(default=None, ge=0)
    """How long held text may wait while the stream keeps flowing, checked as text arrives
    (never by a timer). Silences longer than ``pause_ms`` do not count, so an upstream
    pausing (a tool call being prepared) never makes it fire."""
    pause_ms: float = Field(default=1000.0, gt=0)
    """A silence between two upstream pieces longer than this is the upstream pausing, not
    the stage holding: it is left out of ``max_holdback_ms``."""
    on_overflow: OverflowPolicy = OverflowPolicy.MASK
    """What happens past either bound; see :class:`pipeline.stage.OverflowPolicy`."""


class StageEntry(BaseModel):
    """One item of ``stages:`` before its own stage validates it."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: str


class RouteAuthConfig(_Strict):
    """Keys a client must present (header ``x-streamsieve-key``) to use a route.

    The header is checked by the proxy and never forwarded upstream; the upstream's own
    credential (``Authorization``/``x-api-key``) is separate and passes through as before.
    """

    keys_env: str = Field(min_length=1)
    """Environment variable with the allowed keys, comma-separated, read when the config is
    loaded or reloaded. Unset or empty refuses the config: a route nobody could use is a
    mistake, not a policy."""


class RouteConfig(_Strict):
    """One route: which requests, which upstream, which stages, which buffer policy."""

    name: str = Field(min_length=1)
    match: MatchConfig = Field(default_factory=MatchConfig)
    upstream: UpstreamConfig
    protocol: Protocol = Protocol.AUTO
    stages: list[StageEntry] = Field(default_factory=list)
    buffer: BufferConfig = Field(default_factory=BufferConfig)
    auth: RouteAuthConfig | None = None
    """Proxy-level client keys for this route; none means the proxy asks for none."""
    stage_metrics: bool = True
    """Export per-stage time and hold-back metrics. Off removes the timing wrapper around
    this route's stages entirely (it costs well under a microsecond per stage per token)."""
    unfilterable: Literal["reject", "pass"] = "reject"
    """What a route with stages does with a reply body no stage can read (audio, images,
    other binary): ``reject`` answers 502 ``upstream_error``; ``pass`` forwards it as is,
    an explicit choice. JSON, ``text/*`` and event streams are always filtered."""
    passthrough_paths: list[str] = Field(default_factory=list)
    """Exact canonical paths (case-sensitive, no globs) whose replies are forwarded
    unfiltered whatever their type, e.g. ``/v1/files/file-abc/content``."""

    @field_validator("passthrough_paths")
    @classmethod
    def _exact_paths(cls, paths: list[str]) -> list[str]:
        for path in paths:
            if any(c in path for c in "*?["):
                raise ValueError(f"passthrough_paths lists exact paths; {path!r} is a glob")
            _canonical_path(path, "passthrough path")
        return paths


class UnmatchedConfig(_Strict):
    """What happens to a request no route matches."""

    action: Literal["reject", "passthrough"] = "reject"
    """``reject`` answers 404; ``passthrough`` proxies it unfiltered to ``upstream``."""
    upstream: UpstreamConfig | None = None

    @model_validator(mode="after")
    def _needs_upstream(self) -> UnmatchedConfig:
        if self.action == "passthrough" and self.upstream is None:
            raise ValueError("action 'passthrough' needs an 'upstream' (add upstream: {url: ...})")
        return self


class LimitsConfig(_Strict):
    """Bounds that protect the proxy and its upstreams. Each one, when hit, answers the
    client in its protocol's own error shape (timeouts are per upstream, in ``upstream:``)."""

    max_body_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    """Largest request body accepted; a larger one is answered with 413."""
    max_event_bytes: int = Field(default=1024 * 1024, gt=0)
    """Largest single upstream SSE event; a larger one ends the stream with an error event."""
    max_response_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    """Largest non-streamed upstream reply the proxy reads to filter (502 above it)."""
    max_concurrent_streams: int | None = Field(default=1000, gt=0)
    """Most requests one process proxies at once, streamed or not (a non-streamed completion
    holds its upstream just as long). The excess is answered at once with 503 and
    ``Retry-After``. Per process: ``--workers N`` admits N times as many. Null: no limit."""
    retry_after_s: int = Field(default=1, ge=0)
    """The ``Retry-After`` seconds sent with that 503."""
    client_header_timeout_s: float = Field(default=75.0, gt=0)
    """Longest a client connection may take to send a request's line and headers, from
    its first byte (or from connecting); past it the connection is closed. Without it a
    client sending half a request line holds a connection forever. It also bounds an idle
    keep-alive connection, so the default stays above a load balancer's usual idle timeout
    (60 s): a backend that closes first races the balancer's next request.
    Read at start-up; a reload does not change it."""
    client_body_timeout_s: float = Field(default=60.0, gt=0)
    """Longest a client may take to send a whole request body; past it the proxy answers
    408 and closes the connection."""


class ProxyConfig(_Strict):
    """The top level of a config file."""

    routes: list[RouteConfig] = Field(min_length=1)
    unmatched: UnmatchedConfig = Field(default_factory=UnmatchedConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)

    @model_validator(mode="after")
    def _unique_names(self) -> ProxyConfig:
        names = [route.name for route in self.routes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"route names must be unique; repeated: {', '.join(dupes)}")
        return self

    def route_for(
        self, path: str, model: str | None, headers: Mapping[str, str]
    ) -> RouteConfig | None:
        """The first route whose ``match`` holds, or None.

        A request that names no model (``GET /v1/chat/completions/{id}``, ``DELETE``, a
        file upload) cannot be told apart by model, yet may fetch what a model route
        filtered. If the route it would get by the rule above has no stages (or there is
        none) while an earlier model route that takes its path and headers has, it goes to
        the first such route instead: deny by default, a stored reply is never fetched
        unfiltered past a route that filters its kind.
        """
        if model is not None:
            for route in self.routes:
                if route.match.matches(path, model, headers):
                    return route
            return None
        filtering: RouteConfig | None = None
        for route in self.routes:
            if not route.match.could_match(path, headers):
                continue
            if route.match.model is None:
                return route if route.stages or filtering is None else filtering
            if filtering is None and route.stages:
                filtering = route
        return filtering


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """A validated config with each route's stage configs validated by their own models."""

    proxy: ProxyConfig
    stages: Mapping[str, tuple[StageConfig, ...]]
    """Per route name, its stages' validated configs, in YAML order."""
    source: str
    lines: Mapping[tuple[str | int, ...], int] = field(default_factory=dict)
    """Key path → line in the file, for problems found after validation."""

    def line(self, path: tuple[str | int, ...]) -> int | None:
        """The line of ``path`` (or of its nearest located parent)."""
        return _line_for(path, self.lines)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a config file."""

    path: str
    """Key path such as ``routes[0].stages[1].detectors``."""
    message: str
    line: int | None = None

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line is not None else source
        return f"{where}: {self.path or '<top level>'}: {self.message}"


class ConfigError(Exception):
    """A config that cannot be used; ``problems`` lists every reason."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(p.render(source) for p in self.problems))


def _key_lines(
    node: yaml.Node, prefix: tuple[str | int, ...] = ()
) -> dict[tuple[str | int, ...], int]:
    """Map every key path in a composed YAML tree to its 1-based line number."""
    lines: dict[tuple[str | int, ...], int] = {prefix: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = (*prefix, str(key_node.value))
            lines.update(_key_lines(value_node, path))
            lines[path] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(_key_lines(item, (*prefix, index)))
    return lines


def render_path(loc: Sequence[str | int]) -> str:
    """``("routes", 0, "stages")`` as ``routes[0].stages``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_for(loc: tuple[str | int, ...], lines: Mapping[tuple[str | int, ...], int]) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _allowed_keys(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """Field names of the model that owns the key at ``loc`` (for "did you mean")."""
    current: type[BaseModel] = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        info = current.model_fields.get(part)
        if info is None:
            return []
        annotation = info.annotation
        for candidate in (annotation, *getattr(annotation, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                current = candidate
                break
            inner = getattr(candidate, "__args__", ())
            models = [a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)]
            if models:
                current = models[0]
                break
        else:
            return []
    return sorted(current.model_fields)


def _explain(error: Mapping[str, Any], model: type[BaseModel], loc: tuple[str | int, ...]) -> str:
    """The pydantic error as a sentence that says how to fix it."""
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = _allowed_keys(model, loc)
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"unknown key {key!r}; {hint}allowed keys: {', '.join(allowed)}"
    if kind == "missing":
        return f"required key {str(loc[-1])!r} is missing; add it"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _problems_from(
    exc: ValidationError,
    model: type[BaseModel],
    base: tuple[str | int, ...],
    lines: Mapping[tuple[str | int, ...], int],
) -> list[Problem]:
    problems = []
    for error in exc.errors():
        loc = (*base, *error["loc"])
        problems.append(
            Problem(
                render_path(loc),
                _explain(error, model, tuple(error["loc"])),
                _line_for(loc, lines),
            )
        )
    return problems


def _validate_stages(
    data: Mapping[str, Any], lines: Mapping[tuple[str | int, ...], int]
) -> tuple[list[tuple[StageConfig, ...]], list[Problem]]:
    """Each route's stages validated by their own models, from the raw data.

    Working on the raw data, not on a validated :class:`ProxyConfig`, lets one run report
    the stage problems together with any problem elsewhere in the file.
    """
    routes = data.get("routes")
    per_route: list[tuple[StageConfig, ...]] = []
    problems: list[Problem] = []
    for r, route in enumerate(routes if isinstance(routes, list) else []):
        entries = route.get("stages") if isinstance(route, dict) else None
        validated: list[StageConfig] = []
        for s, entry in enumerate(entries if isinstance(entries, list) else []):
            loc: tuple[str | int, ...] = ("routes", r, "stages", s)
            if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
                continue  # ProxyConfig reports a stage without a type
            try:
                factory = resolve_stage(entry["type"])
            except StageLoadError as exc:
                at = (*loc, "type")
                problems.append(Problem(render_path(at), str(exc), _line_for(at, lines)))
                continue
            try:
                validated.append(factory.config_model.model_validate(entry))
            except ValidationError as exc:
                problems.extend(_problems_from(exc, factory.config_model, loc, lines))
        per_route.append(tuple(validated))
    return per_route, problems


def parse_config(text: str, source: str = "<config>") -> LoadedConfig:
    """Validate YAML text; raise :class:`ConfigError` listing every problem."""
    try:
        tree = yaml.compose(text, Loader=yaml.SafeLoader)
        if tree is not None:
            check_expansion(tree)
        data = yaml.safe_load(text)
    except AliasBombError as exc:
        raise ConfigError(source, [Problem("", str(exc), exc.line)]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        message = " ".join(str(exc).replace('"<unicode string>"', source).split())
        raise ConfigError(source, [Problem("", f"not valid YAML: {message}", line)]) from None
    if not isinstance(data, dict):
        raise ConfigError(
            source, [Problem("", "the file must be a mapping with a 'routes:' list", 1)]
        )
    lines = _key_lines(tree) if tree is not None else {}
    problems: list[Problem] = []
    try:
        proxy: ProxyConfig | None = ProxyConfig.model_validate(data)
    except ValidationError as exc:
        proxy = None
        problems.extend(_problems_from(exc, ProxyConfig, (), lines))
    stages, stage_problems = _validate_stages(data, lines)
    problems.extend(stage_problems)
    problems.sort(key=lambda p: (p.line is None, p.line or 0))
    if problems or proxy is None:
        raise ConfigError(source, problems)
    by_name = {route.name: configs for route, configs in zip(proxy.routes, stages, strict=True)}
    return LoadedConfig(proxy=proxy, stages=by_name, source=source, lines=lines)


def load_config(path: str | Path) -> LoadedConfig:
    """Read and validate a config file; raise :class:`ConfigError` naming file and lines."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            str(file), [Problem("", f"cannot read the file: {exc.strerror}")]
        ) from None
    with importable_from(file.parent):
        return parse_config(text, str(file))
