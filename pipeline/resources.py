"""Where the shipped config files live, from a source checkout or an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def config_dir() -> Path:
    """``config/`` of the checkout, or the copy a wheel carries as ``pipeline/_config``."""
    checkout = _PACKAGE.parent / "config"
    return checkout if checkout.is_dir() else _PACKAGE / "_config"


def default_config() -> Path:
    """The embedded default: the proxy in front of the built-in simulator."""
    return config_dir() / "default.yaml"
