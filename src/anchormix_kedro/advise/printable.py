"""File names made safe for a terminal: a name can hold escape sequences, newlines or
bytes that are not UTF-8, and printed raw they would clear the screen or forge a line of
the report. :func:`printable` shows such characters as Python escapes instead."""

from __future__ import annotations

import unicodedata

#: Characters that reorder the text around them on screen (bidirectional controls).
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def _escaped(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (os.fsdecode's surrogate escape)
        return f"\\x{code - 0xDC00:02x}"
    if char in BIDI_CONTROLS or unicodedata.category(char) in ("Cc", "Zl", "Zp", "Cs"):
        return char.encode("unicode_escape", "backslashreplace").decode("ascii")
    return char


def printable(text: str) -> str:
    """``text`` with control characters, bidirectional controls and undecodable bytes shown
    as escapes (``\\x1b``, ``\\n``, ``\\u202e``, ``\\xff``); other text unchanged."""
    if text.isprintable():
        return text
    return "".join(_escaped(char) for char in text)
