"""Decoded tokens made safe to show: visible whitespace and control characters, markdown and plain-text forms.

A token is any decoded string: spaces, newlines, tabs, ``|``, ``<``, ``&``, ``*``,
backticks, backslashes, emoji, any script. ``visible`` keeps spaces but draws a newline
as ``↵``, a tab as ``⇥`` and any other control character as its Unicode control picture
(U+FFFD for the rest, and for bidirectional controls, which would reorder the line around
the token), so a token never breaks a line, a table row or a layout. The markdown
forms escape every ASCII punctuation character (running text) or fence a code span
(single tokens, ``|`` escaped in tables); HTML goes through ``html.escape`` where it is built.
"""

from __future__ import annotations

import re
import unicodedata

from layers_core.reports.plot_style import SPACE_MARK

NEWLINE_MARK, TAB_MARK, EMPTY_MARK = "\u21b5", "\u21e5", "\u2205"
PEAK_OPEN, PEAK_CLOSE = "\u27e6", "\u27e7"  # the peak token in plain text: ⟦ token⟧
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")  # would reorder a line
_ASCII_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def _visible_char(char: str) -> str:
    if char == "\n":
        return NEWLINE_MARK
    if char == "\t":
        return TAB_MARK
    if ord(char) < 0x20:
        return chr(0x2400 + ord(char))  # the control picture: U+0000 -> U+2400 ...
    if char == "\x7f":
        return "\u2421"
    return "\ufffd" if unicodedata.category(char) in ("Cc", "Cs") or char in _BIDI_CONTROLS else char


def visible(token: str) -> str:
    """The token with newlines, tabs and control characters drawn visibly; spaces kept; an empty token as ``∅``."""
    return "".join(_visible_char(c) for c in token) if token else EMPTY_MARK


def spaced(token: str) -> str:
    """``visible`` with every space drawn as ``␣``: for a token shown alone, where a leading space matters."""
    return visible(token).replace(" ", SPACE_MARK)


def md_escape(text: str) -> str:
    """Text for a markdown line: every ASCII punctuation character backslash-escaped, nothing else changed."""
    return _ASCII_PUNCTUATION.sub(r"\\\1", text)


def md_code(token: str, in_table: bool = True) -> str:
    """A single token as a markdown code span (spaces as ``␣``); the fence outruns any backtick run inside.

    In a table cell ``|`` is written ``\\|`` (GitHub-flavoured tables unescape it even in code).
    """
    text = spaced(token)
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    body = f"{fence}{pad}{text}{pad}{fence}"
    return body.replace("|", "\\|") if in_table else body


def plain_context(tokens: tuple[str, ...], peak: int) -> str:
    """A context as plain text (whitespace visible, ``visible``), its peak token between ``⟦`` and ``⟧``."""
    return "".join(f"{PEAK_OPEN}{visible(t)}{PEAK_CLOSE}" if i == peak else visible(t) for i, t in enumerate(tokens))
