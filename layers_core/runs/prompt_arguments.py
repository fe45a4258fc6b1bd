"""The prompt flags every prompt-driven experiment shares, and the prompts they select.

``--prompt``/``--answer`` (one custom prompt), ``--prompts FILE`` (a JSONL file),
``--facts NAME|none`` (a fact battery run after the prompts) and, for experiments
that group by subject or compare with a wrong answer, ``--subject`` and ``--foil``.
Without ``--prompt`` or ``--prompts`` the experiment's own default prompts run.
Nothing here imports torch.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from layers_core.errors import PromptError
from layers_core.prompts.prompt_battery import PromptCase, custom_case, load_fact_battery, load_prompts_file

DEFAULT_BATTERY = "capitals"


@dataclass(frozen=True)
class PromptChoice:
    """What the prompt flags asked for (checked for consistency, not yet read from disk)."""

    prompt: str | None = None
    answer: str | None = None
    subject: str | None = None
    foil: str | None = None
    prompts_file: Path | None = None
    facts: str | None = DEFAULT_BATTERY

    def prompts(self, defaults: Sequence[PromptCase]) -> list[PromptCase]:
        """The prompts: ``--prompt``/``--answer``, a ``--prompts`` file, or ``defaults``.

        Raises:
            PromptError: An empty prompt, a subject not in it, an unreadable prompts file.
        """
        if self.prompt is not None:
            if not self.prompt.strip():
                raise PromptError("the prompt is empty; give some text for the model to continue")
            return [custom_case(self.prompt, self.answer, self.subject)]
        if self.prompts_file is not None:
            return load_prompts_file(self.prompts_file)
        return list(defaults)

    def fact_cases(self) -> list[PromptCase]:
        """The fact battery's cases, or none with ``--facts none``.

        Raises:
            PromptError: No battery of that name.
        """
        return load_fact_battery(self.facts) if self.facts else []


def add_prompt_arguments(parser: argparse.ArgumentParser, *, subject_and_foil: bool = False) -> None:
    """Add ``--prompt``, ``--answer``, ``--prompts`` and ``--facts`` (and ``--subject``, ``--foil``)."""
    parser.add_argument("--prompt", help="analyse only this prompt (needs --answer)")
    parser.add_argument(
        "--answer", help="the expected answer for --prompt, e.g. Berlin (its first token is the gold token)"
    )
    if subject_and_foil:
        parser.add_argument(
            "--subject", help="what --prompt is about, exactly as written in it, e.g. Germany: its tokens are "
            "the 'subject' role of the attention columns (without it no token has that role)",
        )
        parser.add_argument(
            "--foil", help="a wrong answer to compare the answer with, e.g. Paris, for every prompt (default: "
            "each prompt's own foil, a battery fact's neighbour's answer, else the model's top wrong token)",
        )
    parser.add_argument(
        "--prompts", type=Path, dest="prompts_file", metavar="FILE",
        help='a JSONL file of prompts, one per line: {"id": ..., "prompt": ..., "answer": ...'
        + (', "subject": ..., "foil": ...}' if subject_and_foil else "}"),
    )
    parser.add_argument(
        "--facts", metavar="BATTERY", default=DEFAULT_BATTERY,
        help=f"the fact battery run after the prompts (default '{DEFAULT_BATTERY}': 65 country-capital facts in "
        "data/batteries/capitals.jsonl), so that results are a distribution over facts, not one anecdote; "
        "'none' skips it",
    )


def prompt_choice(parser: argparse.ArgumentParser, args: argparse.Namespace) -> PromptChoice:
    """The parsed prompt flags, cross-checked (``parser.error`` on a bad combination)."""
    if (args.prompt is None) != (args.answer is None):
        parser.error("--prompt and --answer go together")
    if args.prompt is not None and args.prompts_file is not None:
        parser.error("use either --prompt/--answer or --prompts FILE, not both")
    subject = getattr(args, "subject", None)
    if subject is not None and args.prompt is None:
        parser.error("--subject goes with --prompt (a prompts file gives each prompt's subject)")
    return PromptChoice(
        prompt=args.prompt, answer=args.answer, subject=subject, foil=getattr(args, "foil", None),
        prompts_file=args.prompts_file, facts=None if args.facts == "none" else args.facts,
    )
