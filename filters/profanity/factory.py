"""``type: profanity``: its YAML keys, and the factory that compiles the lists once."""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal

from pydantic import Field, field_validator

from filters.profanity.lexicon import (
    allow_key,
    compile_lexicon,
    default_wordlist,
    normalise_entry,
    read_stems,
    read_wordlist,
)
from filters.profanity.rules import FIXED_MASK, RULE, holdback_bound
from filters.profanity.stage import Masker, ProfanityStage, first_letter, stars
from pipeline.skeleton import fold
from pipeline.stage import Channel, ChannelKind, StageConfig, StageFactory
from pipeline.textview import MAX_CLUSTER, Normaliser

VIEW_EXPANSION: Final = 2
"""Original characters allowed per view character in the hold-back bound."""
VIEW_TAIL: Final = MAX_CLUSTER + 12
"""The view's unstable tail at most: a cluster, or a surrogate pair escape in JSON."""


class ProfanityConfig(StageConfig):
    """YAML keys of ``type: profanity``."""

    type: Literal["profanity"] = "profanity"
    lists: list[str] = Field(default_factory=list)
    """Extra word-list files (one entry per line, ``#`` comments), absolute or relative
    to the working directory. Findings from a file carry its name without extension as
    their rule."""
    words: list[str] = Field(default_factory=list)
    """Extra entries inline: words or phrases (``son of a bitch``)."""
    default_list: bool = True
    """Include the shipped English list (``config/wordlists/en.txt``)."""
    compounds: bool = True
    """Find the stems of ``config/wordlists/en-stems.txt`` inside longer words
    (``dumbfuck``); see :mod:`filters.profanity.compounds`. It costs CPU on every piece of
    prose (the quiet test reads words for stems), so a route that does not need it can
    turn it off."""
    name_context: bool = True
    """Let an entry of ``config/wordlists/en-names.txt`` (``dick``, ``dyke``) pass when it is
    written as a name next to another capitalised word (``Dick Van Dyke``, ``Moby-Dick``);
    the rule and its limits are in :mod:`filters.profanity.names`."""
    allow: list[str] = Field(default_factory=list)
    """Words never flagged: an entry here is dropped from the lists (in every spelling),
    and any other word (a look-alike such as ``assess``, a product code such as ``A55``)
    passes when written exactly so, case aside."""
    action: Literal["mask", "block", "flag"] = "mask"
    """``mask`` replaces the word; ``block`` ends the response before it; ``flag`` lets the
    text through untouched, holds nothing back, and only records a finding."""
    mask_style: Literal["first_letter", "asterisks", "word"] = "first_letter"
    """``first_letter`` gives ``f***``, ``asterisks`` ``****``, ``word`` the ``replacement``."""
    replacement: str = "[censored]"
    """Text that replaces a match under ``mask_style: word``."""
    keep_length: bool = True
    """Masks as long as the matched text, so layouts do not jump; otherwise every mask is
    four characters. No effect on ``mask_style: word``."""

    @field_validator("words")
    @classmethod
    def _entries_are_words(cls, value: list[str]) -> list[str]:
        for raw in value:
            normalise_entry(raw)
        return value

    @field_validator("allow")
    @classmethod
    def _allowed_are_words(cls, value: list[str]) -> list[str]:
        if not all(allow_key(raw) for raw in value):
            raise ValueError("an allowed word is empty")
        return value

    @field_validator("lists")
    @classmethod
    def _lists_exist(cls, value: list[str]) -> list[str]:
        missing = [p for p in value if not Path(p).is_file()]
        if missing:
            raise ValueError(f"word list file not found: {', '.join(missing)}")
        return value


def masker(config: ProfanityConfig) -> Masker:
    """The function that turns a matched span into its mask, chosen once per route."""
    if config.mask_style == "word":
        replacement = config.replacement
        return lambda _span: replacement
    fixed = "*" * FIXED_MASK
    if config.mask_style == "asterisks":
        return stars if config.keep_length else lambda _span: fixed
    return first_letter if config.keep_length else lambda span: span[0] + fixed[1:]


class ProfanityFactory(StageFactory[ProfanityConfig]):
    """Loads and compiles the word lists once per route; opening a channel is cheap."""

    config_model = ProfanityConfig

    def __init__(self, config: ProfanityConfig) -> None:
        super().__init__(config)
        sources = [(Path(path).stem, read_wordlist(Path(path))) for path in config.lists]
        sources.append((RULE, [normalise_entry(word) for word in config.words]))
        if config.default_list:
            sources.append((RULE, read_wordlist(default_wordlist())))
        names = read_wordlist(default_wordlist("en-names")) if config.name_context else []
        with_stems = config.default_list and config.compounds
        stems = read_stems(default_wordlist("en-stems")) if with_stems else []
        self._lexicon = compile_lexicon(sources, config.allow, names, stems)
        self._bound = holdback_bound(e for _, entries in sources for e in entries)
        self._mask = masker(config)
        self._normaliser = Normaliser(fold)

    @property
    def scan_bound(self) -> int:
        """View characters one candidate may hold (on ASCII text: characters held)."""
        return self._bound

    @property
    def max_holdback(self) -> int:
        """The scan's bound in view characters, as original characters.

        The longest entry spelled out with separators, plus slack for repeats, is what a
        candidate may hold of the view; :data:`VIEW_EXPANSION` original characters per
        view character (an accent, a zero-width character) and the view's own unstable
        tail cover the original behind it. Text denser in invisible characters or JSON
        escapes than that meets the route's overflow policy (fail closed).
        """
        return self._bound * VIEW_EXPANSION + VIEW_TAIL

    def open(self, channel: Channel) -> ProfanityStage:
        """A stage for ``channel``; a JSON channel is read through its decoded strings."""
        json = channel.kind is ChannelKind.JSON
        return ProfanityStage(
            self._lexicon, self._normaliser, self._bound, self.config.action, self._mask, json=json
        )
