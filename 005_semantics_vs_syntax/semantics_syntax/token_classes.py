"""One classifier of tokenizer tokens into classes, so "where does a feature's activation fall" has one answer.

A token is classified from its decoded text alone (no context), stripped of surrounding
whitespace, by the first rule that matches:

1. ``whitespace``: nothing but whitespace (or empty).
2. ``emoji``: holds a pictograph or emoji modifier (Unicode ranges in ``_EMOJI``).
3. ``digit``: digits, optionally with ``.``/``,`` between them (``12``, ``3.5``).
4. ``operator``: only mathematical symbols: ``+ - * / = < > ^ % ×`` and the Unicode math
   symbol category (Sm), e.g. ``−``, ``÷``, ``≤``.
5. ``punctuation``: only Unicode punctuation (categories P*) and other symbols (S*).
6. ``code_keyword``: a Python keyword or builtin that is not also an English word
   (``def``, ``elif``, ``lambda``, ``None``, ``print``, ``len``, ``self`` ...); ``for``,
   ``in``, ``if``, ``and``, ``not``, ``is``, ``with``, ``from``, ``as``, ``or``, ``return``
   read as English too, and count as function words.
7. ``url_part``: ``http``, ``https``, ``www``, ``com``, ``org``, ``net``, ``html`` (``://`` is punctuation).
8. ``function_word``: a closed-class word of English, French or Spanish (``_FUNCTION_WORDS``),
   case-insensitive.
9. ``content_word``: letters only (any script, including word pieces such as ``ing``).
10. ``other``: anything else (letters mixed with digits or symbols, e.g. ``H2``).

``SYNTACTIC`` are the classes that carry surface form rather than topic: whitespace,
digits, operators, punctuation, code keywords, URL parts and function words. Content
words (and emoji, which name feelings) are not in it; ``other`` is neither.
"""

from __future__ import annotations

import keyword
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

CLASSES = ("whitespace", "emoji", "digit", "operator", "punctuation", "code_keyword", "url_part",
           "function_word", "content_word", "other")
SYNTACTIC = frozenset({"whitespace", "digit", "operator", "punctuation", "code_keyword", "url_part",
                       "function_word"})

_EMOJI = ((0x1F000, 0x1FAFF), (0x2600, 0x27BF), (0x1F1E6, 0x1F1FF), (0xFE0F, 0xFE0F), (0x200D, 0x200D))
_NUMBER = re.compile(r"^\d+([.,]\d+)*$")
_OPERATORS = set("+-*/=<>^%×÷")
_ENGLISH_LIKE = {"for", "in", "if", "and", "not", "is", "with", "from", "as", "or", "return", "else", "while",
                 "break", "continue", "pass", "try", "class", "global", "yield", "import", "raise", "del", "assert"}
_CODE_WORDS = ({word for word in keyword.kwlist if word.lower() not in _ENGLISH_LIKE}
               | {"def", "elif", "lambda", "None", "True", "False", "print", "len", "range", "self", "str", "int",
                  "float", "dict", "list", "tuple", "append", "enumerate", "isinstance", "args", "kwargs", "init",
                  "__init__", "async", "await", "nonlocal", "sorted", "zip", "json", "os", "sys"})
_URL_PARTS = {"http", "https", "www", "com", "org", "net", "html"}
_FUNCTION_WORDS = frozenset("""
a an the this that these those some any each every no all both either neither
i you he she it we they me him her us them my your his its our their mine yours
is am are was were be been being do does did have has had will would shall should can could may might must
and or but nor so yet if then than because as while when where whether though although
of in on at to for from by with about into onto over under between through after before during without
not very just only also too there here what which who whom whose how why
le la les un une des du de et ou mais donc est sont il elle ils elles je tu nous vous ce cette
que qui dans sur pour par avec
el los las unos unas y o pero es son está en con por para que se su sus del al lo
""".split())


def _is_emoji(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _EMOJI)


def token_class(token: str) -> str:
    """The class of one decoded token (module doc)."""
    text = token.strip()
    if not text:
        return "whitespace"
    if any(_is_emoji(char) for char in text):
        return "emoji"
    if _NUMBER.match(text):
        return "digit"
    if all(char in _OPERATORS or unicodedata.category(char) == "Sm" for char in text):
        return "operator"
    if all(unicodedata.category(char)[0] in "PS" for char in text):
        return "punctuation"
    if text in _CODE_WORDS:
        return "code_keyword"
    if text.lower() in _URL_PARTS:
        return "url_part"
    if text.lower() in _FUNCTION_WORDS:
        return "function_word"
    if text.isalpha():
        return "content_word"
    return "other"


def token_classes(tokenizer: Any, token_ids: Sequence[int]) -> list[str]:
    """The class of each token id, decoded one at a time."""
    return [token_class(tokenizer.decode([int(i)])) for i in token_ids]
