"""The one error type for bad configuration or input that a program reports as one line and exit status 2."""

from __future__ import annotations


class ConfigurationError(ValueError):
    """Parameters, configuration files or inputs do not validate; the message names the offending value."""


def one_line(text: object, limit: int = 400) -> str:
    """`text` (an exception's message, say) as a single line of at most `limit` characters.

    Third-party errors (YAML parsers, transformers, rosbags) often span several lines; a program that reports
    bad input prints exactly one line, so line breaks and runs of blanks become one space.
    """
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
