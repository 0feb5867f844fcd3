"""Feed prose to one stage, token by token, for an instruction count under callgrind.

    valgrind --tool=callgrind --callgrind-out-file=OUT .venv/bin/python \\
        scripts/stage_cpu.py MODULE_OR_FILE TOKENS

``MODULE_OR_FILE`` is a module (``filters.profanity``) or a ``.py`` file (an old copy of
the stage, to compare side by side) defining ``ProfanityConfig``/``ProfanityFactory``.
Run each at two token counts and divide the difference of the totals by the difference
of the counts: start-up (imports, compiling the lists) cancels out, what remains is the
per-token cost. Callgrind counts instructions, so the figure repeats on a loaded machine.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType

from benchmarks.bench import PROSE, chunk_text
from pipeline.stage import ChannelEnd
from pipeline.testing import TEXT_CHANNEL, fresh


def load(target: str) -> ModuleType:
    """The stage module, imported by name or from a file."""
    if not target.endswith(".py"):
        return importlib.import_module(target)
    spec = importlib.util.spec_from_file_location("stage_under_test", target)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while decorating
    spec.loader.exec_module(module)
    return module


def main() -> None:
    module = load(sys.argv[1])
    tokens = int(sys.argv[2])
    pieces = chunk_text(" ".join(PROSE))
    factory = module.ProfanityFactory(module.ProfanityConfig())
    fed = 0
    while fed < tokens:
        stage = factory.open(fresh(TEXT_CHANNEL))
        for piece in pieces[: tokens - fed]:
            stage.feed(piece)
        stage.finish(ChannelEnd.COMPLETE)
        fed += min(len(pieces), tokens - fed)


if __name__ == "__main__":
    main()
