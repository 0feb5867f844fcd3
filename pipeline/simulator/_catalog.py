"""Endpoints with nothing to stream (``GET /v1/models``, ``POST /v1/embeddings``).

They exist so the proxy's pass-through paths have a real upstream in tests, not to be clever.
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
import struct
from collections.abc import Mapping
from typing import Any

from pipeline.simulator._control import SimRequestError, estimate_tokens

_OPENAI_MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-3.5-turbo-instruct", "text-embedding-3-small")
_ANTHROPIC_MODELS = (
    ("claude-sonnet-4-20250514", "Claude Sonnet 4", "2025-05-14T00:00:00Z"),
    ("claude-3-5-haiku-20241022", "Claude Haiku 3.5", "2024-10-22T00:00:00Z"),
)
_MODELS_CREATED = 1_715_367_049
_DEFAULT_DIMENSIONS = 8


def openai_models() -> dict[str, Any]:
    """The OpenAI model list."""
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": _MODELS_CREATED, "owned_by": "system"}
            for name in _OPENAI_MODELS
        ],
    }


def anthropic_models() -> dict[str, Any]:
    """The Anthropic model list (a different shape on the same path, chosen by header)."""
    data = [
        {"type": "model", "id": name, "display_name": display, "created_at": created}
        for name, display, created in _ANTHROPIC_MODELS
    ]
    return {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}


def embeddings(body: Mapping[str, Any]) -> dict[str, Any]:
    """Small deterministic unit vectors: equal inputs get equal vectors, as tests expect."""
    inputs = _inputs(body.get("input"))
    dimensions = body.get("dimensions", _DEFAULT_DIMENSIONS)
    if not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1:
        raise SimRequestError(400, "dimensions must be a positive integer.")
    as_base64 = body.get("encoding_format") == "base64"
    tokens = sum(estimate_tokens(text) for text in inputs)
    return {
        "object": "list",
        "data": [
            {
                "object": "embedding",
                "index": index,
                "embedding": _encode(_vector(text, dimensions), as_base64=as_base64),
            }
            for index, text in enumerate(inputs)
        ],
        "model": body.get("model", "text-embedding-3-small"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _inputs(raw: object) -> list[str]:
    """Strings, token arrays or lists of either, each reduced to a string to hash."""
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw:
        if all(isinstance(x, int) for x in raw):
            return [str(raw)]
        return [x if isinstance(x, str) else str(x) for x in raw]
    raise SimRequestError(400, "input must be a string or a non-empty array.")


def _vector(text: str, dimensions: int) -> list[float]:
    seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
    rng = random.Random(seed)  # noqa: S311 - a stable fake vector, not a secret
    raw = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [x / norm for x in raw]


def _encode(vector: list[float], *, as_base64: bool) -> list[float] | str:
    # The openai SDK asks for base64 unless told otherwise, then decodes little-endian float32.
    if as_base64:
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return vector
