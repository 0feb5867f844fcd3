"""A built-in upstream that imitates the LLM APIs on the wire, for key-less runs and tests.

It serves OpenAI Chat Completions, legacy Completions, the Responses API, Anthropic Messages,
plus model lists and embeddings, streamed and not, in the exact shapes the providers send.
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

__all__ = [
    "DEFAULT_TEXT",
    "SIM_STATS",
    "SimStats",
    "SimulatorSettings",
    "bound_port",
    "make_simulator_app",
    "start_simulator",
]
