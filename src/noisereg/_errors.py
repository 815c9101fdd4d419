"""Error messages on one line: the command-line faces print every error as a single line."""

from __future__ import annotations


def one_line(err: BaseException) -> str:
    """The first line of ``err``'s message, or its type's name when the message is empty."""
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__
