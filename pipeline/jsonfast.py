"""JSON on the per-event path: msgspec, with the standard library for what msgspec refuses.

Measured offline on the chunk shapes the protocols stream (``benchmarks`` README): msgspec
decodes a chat chunk in about a quarter of ``json.loads``' time and encodes it in a fifth of
``json.dumps``'; orjson is as fast but reads integers past 64 bits as floats, which would
alter an upstream's ids. Re-serialised events are compact and carry non-ASCII as UTF-8, as
the providers send it (``json.dumps`` wrote ``\\u`` escapes); both SDKs read either.

What msgspec refuses keeps its old behaviour through the standard library: upstream data
with ``NaN``/``Infinity`` or an unpaired surrogate escape is still read, and a string with
an unpaired surrogate (which UTF-8 cannot carry) is written with ASCII escapes.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode
_ascii = json.JSONEncoder(separators=(",", ":")).encode


def loads(data: str) -> Any:
    """``data`` parsed; ``json.JSONDecodeError`` when it is not JSON."""
    try:
        return _decode(data)
    except msgspec.DecodeError:
        return json.loads(data)  # NaN, Infinity, lone surrogates: read as before, or raise


def dumps(value: Any) -> str:
    """``value`` as compact JSON text (``NaN`` and infinities become ``null``)."""
    try:
        return _encode(value).decode()
    except UnicodeEncodeError:
        return _ascii(value)
