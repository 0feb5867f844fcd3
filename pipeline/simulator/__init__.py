"""A built-in upstream that imitates the LLM APIs on the wire, for key-less runs and tests.

It serves OpenAI Chat Completions, legacy Completions, the Responses API, Anthropic Messages,
plus model lists, embeddings and moderation classifiers (OpenAI's moderations, a Llama Guard),
streamed and not, in the exact shapes the providers send.
A request may carry a ``sim`` object (SDKs send it with ``extra_body=``) to choose the reply
text, tool calls, pacing and faults: an HTTP error, a dropped connection, byte-sized writes.
"""

from pipeline.simulator._app import (
    SIM_STATS,
    SimStats,
    bound_port,
    make_simulator_app,
    start_simulator,
)
from pipeline.simulator._control import DEFAULT_TEXT, SimulatorSettings
from pipeline.simulator._moderation import (
    MODERATION,
    MODERATION_STATS,
    ModerationSettings,
    ModerationStats,
)

__all__ = [
    "DEFAULT_TEXT",
    "MODERATION",
    "MODERATION_STATS",
    "SIM_STATS",
    "ModerationSettings",
    "ModerationStats",
    "SimStats",
    "SimulatorSettings",
    "bound_port",
    "make_simulator_app",
    "start_simulator",
]
