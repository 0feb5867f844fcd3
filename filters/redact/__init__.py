"""The redact stage: PII and secrets replaced in the token stream while it streams.

A package of small modules, each with one job: ``detectors`` (the candidate patterns),
``validators`` (what turns look-alikes away), ``config`` (the YAML keys), ``rules`` (what
a route's channels share), ``scanner`` (one channel's cutting and holding) and
``factory`` (compiling once, opening per channel). The names below are the stage's
public API, importable as ``filters.redact`` as before the split.
"""

from filters.redact.config import CustomDetector, RedactConfig, ReplacementStyle
from filters.redact.factory import RedactFactory
from filters.redact.rules import DEFAULT_HOLDBACK, Numbering
from filters.redact.scanner import RedactStage

__all__ = [
    "DEFAULT_HOLDBACK",
    "CustomDetector",
    "Numbering",
    "RedactConfig",
    "RedactFactory",
    "RedactStage",
    "ReplacementStyle",
]
