"""Hot reload: re-read the config file and swap it in whole, or keep the old one.

A reload builds a complete new :class:`~pipeline.state.Snapshot` (validated config, stage
factories, route keys) off to the side; only when all of it succeeds is the state's
reference swapped. Requests already running keep the snapshot they captured at their start,
so a stream in flight finishes on the config it began with. A config that fails anywhere
is refused with the reason, logged and returned, and the old one keeps serving.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import structlog

from pipeline.config import ConfigError, Problem, load_config
from pipeline.metrics import Metrics
from pipeline.state import ProxyState, Snapshot

log = structlog.get_logger("streamsieve.reload")


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What a reload did: ``ok`` with the routes now in force, or the reason it was refused."""

    ok: bool
    message: str
    routes: tuple[str, ...] = ()

    def as_json(self) -> dict[str, object]:
        return {
            "status": "reloaded" if self.ok else "refused",
            "message": self.message,
            "routes": list(self.routes),
        }


def build_snapshot(path: Path, metrics: Metrics | None = None) -> Snapshot:
    """Load ``path`` and build everything from it; any problem is a :class:`ConfigError`."""
    config = load_config(path)
    try:
        return Snapshot.build(config, metrics)
    except ConfigError:
        raise
    except Exception as exc:  # a stage factory refusing its config raises its own error
        problem = Problem("", f"a stage refused its config: {type(exc).__name__}: {exc}")
        raise ConfigError(str(path), [problem]) from exc


class Reloader:
    """Reloads one proxy's config from its file; reloads never overlap."""

    def __init__(self, state: ProxyState, path: Path) -> None:
        self._state = state
        self._path = path
        self._lock = asyncio.Lock()

    async def reload(self) -> ReloadResult:
        """Re-read the file; swap the snapshot if all of it is valid, else keep the old one."""
        async with self._lock:
            try:
                # Building stages can take a while (word lists); the loop keeps serving.
                snapshot = await asyncio.to_thread(build_snapshot, self._path, self._state.metrics)
            except ConfigError as exc:
                return self._refused(str(exc))
            retired, self._state.snapshot = self._state.snapshot, snapshot
            await retired.aclose()
            routes = tuple(route.name for route in snapshot.config.proxy.routes)
            self._state.metrics.reloads.labels("ok").inc()
            log.info("config_reloaded", config=str(self._path), routes=list(routes))
            return ReloadResult(True, f"{self._path}: config reloaded", routes)

    def _refused(self, reason: str) -> ReloadResult:
        self._state.metrics.reloads.labels("refused").inc()
        log.error("config_reload_refused", config=str(self._path), reason=reason)
        return ReloadResult(False, reason)
