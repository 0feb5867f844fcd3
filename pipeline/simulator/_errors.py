"""Error bodies in each provider's own shape, so SDKs raise their usual typed exceptions."""

from __future__ import annotations

from typing import Any

_OPENAI_TYPES = {
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def openai_error(status: int, message: str) -> dict[str, Any]:
    """``{"error": {...}}`` as api.openai.com sends it."""
    default = "server_error" if status >= 500 else "invalid_request_error"
    error_type, code = _OPENAI_TYPES.get(status, (default, None))
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


def anthropic_error(status: int, message: str) -> dict[str, Any]:
    """``{"type": "error", "error": {...}}`` as api.anthropic.com sends it."""
    default = "api_error" if status >= 500 else "invalid_request_error"
    error_type = _ANTHROPIC_TYPES.get(status, default)
    return {"type": "error", "error": {"type": error_type, "message": message}}
