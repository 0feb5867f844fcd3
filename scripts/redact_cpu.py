"""CPU cost of the redact stage alone on the benchmark's prose, for side-by-side runs.

Feeds the benchmark's prose chunks (``benchmarks.bench``: word pieces of at most four
characters) through one redact stage per reply, ``--rounds`` times, and prints the
chunks fed. Run it under ``valgrind --tool=callgrind`` twice with different rounds and
divide the difference in instructions by the difference in chunks: that cancels start-up
and gives instructions per token, repeatable on a loaded machine. Put another tree first
on ``PYTHONPATH`` to measure its ``filters`` (say, main's) with the same inputs.
"""

from __future__ import annotations

import argparse
import json

from benchmarks.bench import build_scenarios
from filters.redact import RedactConfig, RedactFactory
from pipeline.stage import ChannelEnd
from pipeline.testing import JSON_CHANNEL, TEXT_CHANNEL


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="feed the JSON document instead")
    args = parser.parse_args()
    scenario = next(s for s in build_scenarios(1000) if s.name == "prose")
    chunks = scenario.pieces(args.json)
    channel = JSON_CHANNEL if args.json else TEXT_CHANNEL
    factory = RedactFactory(RedactConfig())
    out = 0
    for _ in range(args.rounds):
        stage = factory.open(channel)
        for chunk in chunks:
            out += len(stage.feed(chunk).text)
        out += len(stage.finish(ChannelEnd.COMPLETE).text)
    print(json.dumps({"chunks": len(chunks) * args.rounds, "chars_out": out}))


if __name__ == "__main__":
    main()
