"""Markdown building blocks: tables, images, fenced code blocks."""

from __future__ import annotations

import re


def md_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured markdown table (no trailing newline)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def md_image(alt: str, file_name: str) -> str:
    """A markdown image with a relative link; odd file names go in angle brackets."""
    target = f"<{file_name}>" if any(c in file_name for c in " ()<>") else file_name
    return f"![{alt}]({target})"


def fenced(text: str, lang: str) -> str:
    """A fenced code block whose fence is longer than any backtick run inside the text."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}"
