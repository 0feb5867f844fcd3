"""``type: json``: keep a streamed JSON document valid while it streams.

Modules: :mod:`.automaton` (the RFC 8259 recogniser, states in :mod:`.grammar`),
:mod:`.schema` and :mod:`.checker` (a schema compiled and judged event by event),
:mod:`.verdict` (``jsonschema-rs`` over the complete document for the keywords streaming
does not decide), :mod:`.stage` (hold-back and verdicts), :mod:`.factory` (YAML keys).

A hand-written pushdown automaton (:class:`~filters.json.automaton.JsonScanner`) reads each
character once, so a channel costs O(its length) however it is split, and stops at the first
character after which no valid document is possible: every prefix the stage releases is a
prefix of some valid JSON document (and, with a schema, of one the schema does not already
rule out). ``pydantic_core.from_json(allow_partial=True)`` cannot be the judge: it accepts
input that strict RFC 8259 rejects.

Decisions the RFC leaves to us, and why:

- A leading byte order mark is rejected: RFC 8259 §8.1 says producers must not add one,
  and a model that emits one in JSON mode is malformed.
- Whitespace (space, tab, CR, LF only) is allowed before and after the document.
- Any value may be the top-level document (RFC 8259 dropped the object/array rule); a
  schema narrows that.
- ``\\ud800`` not followed by a low-surrogate escape, and a low-surrogate escape not
  preceded by a high one, are rejected: Python's ``json`` accepts them, but they decode
  to no Unicode character and break strict parsers and UTF-8 encoders downstream.
- Duplicate property names are allowed (RFC: names SHOULD be unique); each occurrence
  is schema-checked.
- An empty or whitespace-only channel is not a document: invalid at a normal end.

Lookahead: the stage never releases the character that breaks the document; the closing
``}``/``]`` itself is judged (required properties, ``minItems``) in the call that receives
it. What makes a document *look* complete is its end: the character that closes the top-
level value (for a top-level number, the number from its first digit, since each of its
prefixes is a number). With ``lookahead_chars`` N >= 1 the stage holds that end and any
whitespace after it until the channel finishes (the whitespace as runs of one character, so
padding of any length fits the bound and arrives intact), so a document that fails after it
(trailing garbage, a second value, a top-level number above its maximum) is stopped before
the client holds a complete-looking document; before the end it holds only the newest N
characters. Every held character delays every token, so N defaults to 1. N = 0 releases at
once: a later error only stops what follows (validate and flag the rest).

Verdicts: ``block`` releases the validated text before the breaking character (never that
character, and with a lookahead never the document's end either) and ends the response with
``json: <what> at char <offset>``; ``whole: true`` releases nothing of an invalid document;
``flag`` releases everything and records the first error only. A channel cut by the
model's token limit is not "invalid JSON": it gets a ``json_truncated`` finding and its held
text is released. A complete document whose schema has keywords decided only at the end
(``pattern``, ``format``, ...) is judged then: its held close is released only if it passes.
"""

from filters.json.factory import JsonConfig, JsonFactory
from filters.json.stage import HELD_END_CHARS, JsonStage

__all__ = ["HELD_END_CHARS", "JsonConfig", "JsonFactory", "JsonStage"]
