"""Built-in stages by their YAML ``type:`` name, as streamsieve's ``pyproject.toml`` declares them.

The list itself lives in ``pyproject.toml`` (entry-point group ``streamsieve.stages``), where
plug-ins declare theirs, so the core finds built-ins and plug-ins the same way and never
imports this package. Values are ``module:Factory`` paths, imported on first use so a route
that does not use a stage never pays for loading it (word lists, compiled patterns). A new
built-in stage is one file in ``filters/`` and one line in ``pyproject.toml``.
"""

from pipeline.plugins import builtin_stages

BUILTIN_STAGES: dict[str, str] = builtin_stages()
