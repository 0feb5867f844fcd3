"""``type: moderation``: a classifier service judges the stream window by window.

Modules, each with one job: :mod:`.config` (the YAML keys), :mod:`.windows` (where windows
close), :mod:`.client` (calls, session, call limit), :mod:`.breaker`, :mod:`.metrics`,
:mod:`.stage` (one channel: what may be released when), :mod:`.factory`.
"""

from filters.moderation.config import ModerationConfig
from filters.moderation.factory import ModerationFactory

__all__ = ["ModerationConfig", "ModerationFactory"]
