"""Optional proxy-level client keys per route (``auth: {keys_env: NAME}``).

The keys come from the environment when a config is loaded or reloaded, never from YAML,
and are compared in constant time. The header carrying them is the proxy's own and is
never forwarded upstream.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping

from pipeline.config import ConfigError, LoadedConfig, Problem

HEADER = "x-streamsieve-key"


class RouteKeys:
    """The client keys one route accepts."""

    __slots__ = ("_keys",)

    def __init__(self, keys: frozenset[bytes]) -> None:
        self._keys = keys

    def allows(self, presented: str | None) -> bool:
        """Whether ``presented`` is one of the keys; every key is compared, in constant time."""
        if not presented:
            return False
        candidate = presented.encode()
        # No early exit, so the time taken does not reveal which key came close.
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(candidate, key)
        return matched


def route_keys(config: LoadedConfig) -> Mapping[str, RouteKeys]:
    """Per route name, its keys; routes without ``auth`` are absent.

    Raises :class:`ConfigError` when a named variable is unset or holds no key, so a
    start-up or a reload refuses the config instead of locking every client out.
    """
    keys: dict[str, RouteKeys] = {}
    problems: list[Problem] = []
    for index, route in enumerate(config.proxy.routes):
        if route.auth is None:
            continue
        name = route.auth.keys_env
        values = {k.strip() for k in os.environ.get(name, "").split(",") if k.strip()}
        if not values:
            problems.append(
                Problem(
                    f"routes[{index}].auth.keys_env",
                    f"environment variable {name!r} is unset or holds no key; set it to a "
                    "comma-separated list of the client keys this route accepts",
                    config.line(("routes", index, "auth", "keys_env")),
                )
            )
            continue
        keys[route.name] = RouteKeys(frozenset(v.encode() for v in values))
    if problems:
        raise ConfigError(config.source, problems)
    return keys
