"""Built-in stages by their YAML ``type:`` name.

Values are ``module:Factory`` paths, imported on first use so a route that does not use a
stage never pays for loading it (word lists, compiled patterns). A new built-in stage is one
file in ``filters/`` and one line here.
"""

BUILTIN_STAGES: dict[str, str] = {
    "json": "filters.json_validate:JsonFactory",
    "moderation": "filters.moderation:ModerationFactory",
    "profanity": "filters.profanity:ProfanityFactory",
    "redact": "filters.redact:RedactFactory",
}
