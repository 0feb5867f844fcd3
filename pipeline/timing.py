"""When each network read of a recording arrived: a sidecar file next to the raw bytes.

``streamsieve record`` saves the reply's bytes unchanged (``curl -N`` and every other tool
still read them) and, beside them, ``<recording>.times.json``::

    {"version": 1, "unit": "ms", "reads": [[12.5, 230], [48.1, 97], ...]}

one ``[milliseconds since the request was sent, bytes]`` pair per read, in order. A replay
that finds it reads the recording in the same pieces and knows when each arrived, so the
report shows arrival and release in milliseconds and ``--pace`` can wait as the upstream
did (``max_holdback_ms`` then fires as it would live).
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SUFFIX", "Timeline", "sidecar"]

SUFFIX = ".times.json"


def sidecar(recording: Path) -> Path:
    """The timing file that belongs to ``recording``."""
    return recording.with_name(recording.name + SUFFIX)


@dataclass(slots=True)
class Timeline:
    """Arrival time per read; what a replay needs to place bytes in time."""

    reads: list[tuple[float, int]] = field(default_factory=list)
    """``(ms since the request was sent, bytes)`` per read."""

    def add(self, ms: float, size: int) -> None:
        self.reads.append((round(ms, 3), size))

    @property
    def size(self) -> int:
        return sum(size for _, size in self.reads)

    def pieces(self, data: bytes) -> list[tuple[float, bytes]]:
        """``data`` cut as it was read, each piece with its arrival time."""
        out, at = [], 0
        for ms, size in self.reads:
            out.append((ms, data[at : at + size]))
            at += size
        return out

    def arrival(self, offset: int) -> float:
        """When the byte at ``offset`` arrived (the read that carried it)."""
        ends, total = [], 0
        for _, size in self.reads:
            total += size
            ends.append(total)
        index = min(bisect.bisect_right(ends, offset), len(self.reads) - 1)
        return self.reads[index][0]

    def save(self, path: Path) -> None:
        body = {"version": 1, "unit": "ms", "reads": [list(read) for read in self.reads]}
        path.write_text(json.dumps(body, separators=(",", ":")) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path, data: bytes) -> Timeline:
        """The timeline in ``path``; ValueError when it does not describe ``data``."""
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            reads = [(float(ms), int(size)) for ms, size in body["reads"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a timing file ({exc})") from None
        timeline = cls(reads)
        if timeline.size != len(data):
            raise ValueError(
                f"{path} times {timeline.size} bytes but the recording has {len(data)}: "
                "they do not belong together (re-record, or pass --no-times)"
            )
        return timeline
