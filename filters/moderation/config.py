"""The YAML keys of ``type: moderation`` and what each one trades.

The key names ``url``, ``api``, ``mode``, ``max_unverified_chars``, ``window_chars``,
``context_chars``, ``action`` and ``api_key_env`` are the stage's contract; the rest tune
the pipelining, the circuit breaker and the process-wide call limit, with defaults that
suit a service answering in 50-500 ms. ``on_error`` and ``timeout_ms`` come from
:class:`~pipeline.stage.StageConfig`: each classifier call must answer within
``timeout_ms`` of being queued, or ``on_error`` decides its window.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from pipeline.stage import StageConfig

Api = Literal["openai", "llama-guard"]
Mode = Literal["hold", "bounded", "monitor"]
Action = Literal["block", "mask", "flag"]


class ModerationConfig(StageConfig):
    """Keys of ``type: moderation``."""

    type: str = "moderation"
    url: str
    """The classifier's endpoint: ``…/v1/moderations`` for ``api: openai``, a chat
    completions URL (``…/v1/chat/completions``) for ``api: llama-guard``."""
    api: Api = "openai"
    """``openai``: OpenAI's moderation API shape (``results[0].flagged``, ``categories``).
    ``llama-guard``: a chat model replying ``safe`` or ``unsafe`` and a line of codes."""
    model: str | None = None
    """Sent as ``model``; OpenAI defaults it (``omni-moderation-latest``), a Llama Guard
    server needs the name it serves."""
    mode: Mode = "hold"
    """``hold``: nothing is released before its window is approved. ``bounded``: at most
    ``max_unverified_chars`` are out ahead of their verdicts. ``monitor``: text flows at
    once and a flagged verdict ends the stream when it arrives."""
    max_unverified_chars: int = Field(default=200, ge=0)
    """``bounded``: most characters released ahead of their verdict (0 is ``hold``)."""
    window_chars: int = Field(default=400, ge=16)
    """Longest window sent at once; windows end at sentence ends when there is one."""
    context_chars: int = Field(default=100, ge=0)
    """Earlier text sent before each window, so a phrase across two windows is judged."""
    action: Action = "block"
    """A flagged window: ``block`` ends the response, ``mask`` replaces what of it is not
    yet released with ``mask``, ``flag`` only records a finding."""
    api_key_env: str | None = None
    """Environment variable holding the classifier's key (``Authorization: Bearer``)."""
    max_in_flight: int = Field(default=4, ge=1, le=64)
    """Classifier calls one channel may have outstanding; more windows wait (and, past
    them, the upstream is read no further), which bounds what one channel holds."""
    max_concurrent_calls: int = Field(default=64, ge=1)
    """Classifier calls this stage makes at once across all streams of the process; the
    time a call waits for a slot counts towards its ``timeout_ms``."""
    breaker_failures: int = Field(default=5, ge=1)
    """Consecutive failed calls that open the circuit breaker: while open, no call is
    made and every window gets ``on_error`` at once."""
    breaker_reset_ms: float = Field(default=5000.0, gt=0)
    """How long the breaker stays open before one trial call may close it again."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return url

    @model_validator(mode="after")
    def _consistent(self) -> ModerationConfig:
        if self.api == "llama-guard" and not self.model:
            raise ValueError("api 'llama-guard' needs 'model': the name the server serves")
        if (
            self.mode != "monitor"
            and self.max_holdback_chars is not None
            and self.max_holdback_chars < self.window_chars
        ):
            raise ValueError(
                f"max_holdback_chars ({self.max_holdback_chars}) must be at least "
                f"window_chars ({self.window_chars}): a window is held until it closes"
            )
        if self.mode == "monitor" and self.action == "mask":
            raise ValueError(
                "mode 'monitor' releases text before its verdict, so 'mask' has nothing "
                "left to replace; use action 'block' (end the stream) or 'flag'"
            )
        return self

    @property
    def budget(self) -> int | None:
        """Characters that may be released ahead of their verdict; None: no limit."""
        if self.mode == "hold":
            return 0
        if self.mode == "bounded":
            return self.max_unverified_chars
        return None
