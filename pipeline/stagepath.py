"""Dotted stage paths (``type: "my_team.tickets:Factory"``) resolve next to the config file.

A team keeps its stage module beside its YAML and expects ``type:`` to find it, as a
relative ``list_file`` would be found. The config's directory is appended to ``sys.path``
(after everything installed, so it never shadows a package) while the file is loaded, and
stays there when a module was imported from it, so worker processes and reloads that load
the same file import the same module.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["importable_from"]


@contextmanager
def importable_from(directory: Path) -> Iterator[None]:
    """Make modules in ``directory`` importable while the body runs (and after, if used)."""
    folder = str(directory.resolve())
    if folder in sys.path:
        yield
        return
    sys.path.append(folder)
    before = set(sys.modules)
    try:
        yield
    finally:
        if not any(_loaded_from(sys.modules[name], folder) for name in set(sys.modules) - before):
            sys.path.remove(folder)


def _loaded_from(module: object, folder: str) -> bool:
    file = getattr(module, "__file__", None)
    return isinstance(file, str) and file.startswith(folder + "/")
