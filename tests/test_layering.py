"""The layers: the core never imports the built-in stages, and no module imports in a circle."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.plugins import builtin_stages, installed_plugins, resolve_stage

CORE_MODULES = (
    "pipeline.stage",
    "pipeline.engine",
    "pipeline.driver",
    "pipeline.protocols",
    "pipeline.stats",
    "pipeline.metrics",
    "pipeline.state",
    "pipeline.proxy",
    "pipeline.replay",
)


def _imports_alone(module: str) -> list[str]:
    """The ``filters`` modules a fresh interpreter has loaded after importing ``module``."""
    code = (
        f"import {module}, sys; "
        "print(' '.join(m for m in sys.modules if m == 'filters' or m.startswith('filters.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.split()


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_module_imports_alone_and_never_filters(module: str) -> None:
    """Each core module imports first in a fresh process (no circle) and loads no built-in."""
    assert [] == _imports_alone(module)


def test_builtin_stages_are_streamsieve_entry_points() -> None:
    """The built-ins come from streamsieve's own entry points, apart from third-party ones."""
    builtins = builtin_stages()
    assert {"json", "profanity", "redact"} <= set(builtins)
    assert set() == set(builtins) & set(installed_plugins())
    assert "RedactFactory" == resolve_stage("redact").__name__
