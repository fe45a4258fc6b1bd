"""Prompt cases every experiment reads: user prompts, JSONL prompt files, fact batteries, chat wrapping.

Fact batteries live in ``data/batteries/<name>.jsonl`` (shared by 001, 002 and 003),
one JSON object per line: ``{"id": ..., "prompt": ..., "answer": ..., "subject": ..., "foil": ...}``;
the same format serves ``--prompts``. ``subject`` (what the prompt is about, written exactly as in
the prompt: "Germany") and ``foil`` (a wrong answer to compare the answer with: "Paris") are
optional; 002 groups attention by the subject and attributes answer minus foil, 001 ignores both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from layers_core.errors import PromptError
from layers_core.paths import BATTERIES_DIR

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# "note" lets a data file explain a choice (JSONL has no comments); it is not used.
_ALLOWED_FIELDS = ("id", "prompt", "answer", "subject", "foil", "note")


@dataclass(frozen=True)
class PromptCase:
    """One prompt to run, with the answer it should lead to.

    Attributes:
        prompt_id: short unique name used in every artefact row (e.g. "completion").
        prompt: the exact text the model continues.
        answer: the expected continuation, or None when there is none to score.
        role: what the case is for: "qa", "completion", "instruction", "ablation",
            "directional", "control", "custom" (user-given) or "fact" (a fact battery).
        subject: what the prompt is about, exactly as written in it ("Germany"), or None.
        foil: a wrong answer the answer is compared with ("Paris"), or None.
    """

    prompt_id: str
    prompt: str
    answer: str | None
    role: str
    subject: str | None = None
    foil: str | None = None


def custom_case(
    prompt: str, answer: str | None, subject: str | None = None, foil: str | None = None
) -> PromptCase:
    """The case for ``--prompt`` / ``--answer`` (/ ``--subject`` / ``--foil``): id "custom", role "custom".

    Raises:
        PromptError: a subject that is empty or does not occur in the prompt.
    """
    if subject is not None:
        _check_subject(subject, prompt, "--subject")
    if foil is not None and not foil.strip():
        raise PromptError("the foil is empty; give a wrong answer to compare with, e.g. --foil Paris")
    return PromptCase("custom", prompt, answer, "custom", subject, foil)


def load_prompts_file(path: Path | str, role: str = "custom") -> list[PromptCase]:
    """Read prompt cases from a JSONL file: one ``{"id", "prompt", "answer"?, "subject"?}`` object per line.

    Blank lines are skipped. ``answer`` and ``subject`` may be left out or null; a
    subject must occur in its prompt. A ``note`` field is allowed and ignored.

    Raises:
        PromptError: the file is missing or unreadable, a line is not such an object
            (naming the file, the line number and what is wrong), an id repeats, or
            the file holds no prompts.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise PromptError(f"prompts file {path} does not exist; check the path") from err
    except (OSError, UnicodeDecodeError) as err:
        raise PromptError(f"cannot read prompts file {path} as UTF-8 text: {err}") from err
    cases: list[PromptCase] = []
    first_line_of: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        case = _parse_line(line, role, f"{path} line {number}")
        if case.prompt_id in first_line_of:
            raise PromptError(
                f"{path} line {number}: id {case.prompt_id!r} is already used on line "
                f"{first_line_of[case.prompt_id]}; give every prompt its own id"
            )
        first_line_of[case.prompt_id] = number
        cases.append(case)
    if not cases:
        raise PromptError(f"prompts file {path} holds no prompts; add one JSON object per line")
    return cases


def _parse_line(line: str, role: str, where: str) -> PromptCase:
    """One JSONL line to a PromptCase; ``where`` ("file line N") starts every error message."""
    try:
        record: Any = json.loads(line)
    except json.JSONDecodeError as err:
        raise PromptError(f"{where}: not valid JSON ({err.msg} at column {err.colno})") from err
    if not isinstance(record, dict):
        raise PromptError(f'{where}: expected an object like {{"id": ..., "prompt": ..., "answer": ...}}')
    unknown = sorted(set(record) - set(_ALLOWED_FIELDS))
    if unknown:
        allowed = ", ".join(_ALLOWED_FIELDS)
        raise PromptError(f"{where}: unknown field {unknown[0]!r}; allowed fields: {allowed}")
    for field in ("id", "prompt"):
        value = record.get(field)
        if not isinstance(value, str) or not value.strip():
            raise PromptError(f"{where}: {field!r} must be a non-empty string")
    for field in ("answer", "foil"):
        value = record.get(field)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise PromptError(f"{where}: {field!r} must be a non-empty string or left out")
    subject = record.get("subject")
    if subject is not None:
        _check_subject(subject, record["prompt"], where)
    return PromptCase(record["id"], record["prompt"], record.get("answer"), role, subject, record.get("foil"))


def _check_subject(subject: Any, prompt: str, where: str) -> None:
    """A subject is a non-empty string written in its prompt; ``where`` starts the error message."""
    if not isinstance(subject, str) or not subject.strip():
        raise PromptError(f"{where}: 'subject' must be a non-empty string or left out")
    if subject not in prompt:
        raise PromptError(
            f"{where}: the subject {subject!r} does not occur in the prompt; write it exactly as in the prompt"
        )


def available_fact_batteries() -> list[str]:
    """Names of the fact batteries shipped in ``data/batteries``."""
    return sorted(p.stem for p in BATTERIES_DIR.glob("*.jsonl"))


def load_fact_battery(name: str) -> list[PromptCase]:
    """The fact battery ``name`` (e.g. "capitals") as cases with role "fact".

    Raises:
        PromptError: no battery has that name (the message lists the ones there are).
    """
    available = available_fact_batteries()
    if name not in available:
        listed = ", ".join(available) or "none"
        raise PromptError(f"no fact battery named {name!r}; available: {listed}")
    return load_prompts_file(BATTERIES_DIR / f"{name}.jsonl", role="fact")


def apply_chat_template(tokenizer: PreTrainedTokenizerBase, case: PromptCase) -> PromptCase:
    """The case with its prompt wrapped as one user message, ready for the assistant's reply (--chat).

    When the template writes the BOS token as text and the tokenizer also adds BOS
    by itself (Gemma), the text copy is dropped so the model sees one BOS, not two.

    Raises:
        PromptError: the tokenizer has no chat template (a base model), or the template fails.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise PromptError(
            "this model's tokenizer has no chat template (a base model?); run without --chat"
        )
    from jinja2 import TemplateError  # transformers renders chat templates with jinja2

    messages = [{"role": "user", "content": case.prompt}]
    try:
        text = str(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
    except (TemplateError, ValueError) as err:
        # A template may refuse a lone user turn (raise_exception in the template) or be malformed.
        raise PromptError(f"the tokenizer's chat template failed: {err}; run without --chat") from err
    return replace(case, prompt=_drop_duplicate_bos(tokenizer, text))


def _drop_duplicate_bos(tokenizer: PreTrainedTokenizerBase, text: str) -> str:
    bos = getattr(tokenizer, "bos_token", None)
    if not bos or not text.startswith(bos):
        return text
    adds_bos = tokenizer.bos_token_id in tokenizer("")["input_ids"]
    return text[len(bos):] if adds_bos else text
