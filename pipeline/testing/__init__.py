"""Test helpers for stage authors, shipped in the package so third parties test alike.

Two parts:

- **run helpers** (:mod:`pipeline.testing.run`, plain install): :func:`run_stage`,
  :func:`run_factory`, :func:`arun_stage` drive a stage through given pieces exactly as the
  engine would; :func:`drive_stream` feeds a protocol driver cut network reads.
- **the compliance kit** (:mod:`pipeline.testing.kit`, needs ``streamsieve[testing]``, which
  brings hypothesis): :func:`check_stage`, :func:`assert_compliant`, :func:`acheck_stage`
  check every property of the stage contract at once, for any factory, and
  :func:`chunkings` is the hypothesis strategy that splits a text at random points::

    from pipeline.testing import assert_compliant

    def test_my_stage_is_compliant() -> None:
        assert_compliant(MyFactory(MyConfig(type="my_stage")), ["text with a match", "none"])

The kit's names are imported on first use, so ``import pipeline.testing`` and the run
helpers work without hypothesis; using the kit without it says what to install.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pipeline.testing.run import (
    JSON_CHANNEL,
    TEXT_CHANNEL,
    StageRun,
    arun_stage,
    drive_stream,
    fresh,
    run_factory,
    run_stage,
    split_at,
)

if TYPE_CHECKING:
    from pipeline.testing.kit import acheck_stage, assert_compliant, check_stage
    from pipeline.testing.report import Check, ComplianceReport, Failure
    from pipeline.testing.strategies import chunkings

__all__ = [
    "JSON_CHANNEL",
    "TEXT_CHANNEL",
    "Check",
    "ComplianceReport",
    "Failure",
    "StageRun",
    "acheck_stage",
    "arun_stage",
    "assert_compliant",
    "check_stage",
    "chunkings",
    "drive_stream",
    "fresh",
    "run_factory",
    "run_stage",
    "split_at",
]

_LAZY = {
    "acheck_stage": "pipeline.testing.kit",
    "assert_compliant": "pipeline.testing.kit",
    "check_stage": "pipeline.testing.kit",
    "Check": "pipeline.testing.report",
    "ComplianceReport": "pipeline.testing.report",
    "Failure": "pipeline.testing.report",
    "chunkings": "pipeline.testing.strategies",
}

INSTALL_HINT = (
    "the compliance kit needs hypothesis: install it with pip install 'streamsieve[testing]'"
)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pipeline.testing' has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as exc:
        if exc.name != "hypothesis":
            raise
        raise ImportError(f"pipeline.testing.{name}: {INSTALL_HINT}", name=name) from exc
    globals()[name] = value
    return value
