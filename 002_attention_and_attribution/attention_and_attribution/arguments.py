"""Command-line arguments of experiment 002, each explained for someone new to Python."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from layers_core.runs.arguments import CommonOptions, common_options, experiment_parser
from layers_core.runs.prompt_arguments import PromptChoice, add_prompt_arguments, prompt_choice

DESCRIPTION = """\
Experiment 002: which attention heads and MLPs write the answer, and what the heads read.

At the answer position of each prompt (the last token), every head's and every
MLP's direct contribution to the answer's logit, and to the answer's logit minus
a wrong answer's (the foil), is measured exactly: the parts add up to the model's
own logit difference. Each head's attention is grouped by what it reads (the
subject, the relation words, the first token, itself, punctuation). Over the fact
battery, the heads that hold across facts are named, and a causal check ablates
the top heads against random heads of the same layers. Results go to run-latest/
beside this script (the previous run is kept as run-<time>/).
"""

EXAMPLES = """\
examples:
  python run.py
  python run.py --models mistralai/Mistral-7B-v0.1 ~/models/llama3-8b
  python run.py --prompt "The capital of Italy is" --answer Rome --subject Italy --foil Paris
  python run.py --facts none              # only the four default prompts, no battery
"""


@dataclass(frozen=True)
class RunOptions:
    """Everything a run needs, parsed and checked."""

    common: CommonOptions
    prompts: PromptChoice
    ablation: bool


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser; ``--help`` prints every flag with its meaning."""
    parser = experiment_parser(DESCRIPTION, EXAMPLES)
    add_prompt_arguments(parser, subject_and_foil=True)
    parser.add_argument(
        "--no-ablation", action="store_false", dest="ablation",
        help="skip the causal check (mean-ablating the top 1, 3, 5, 10 heads and random heads; "
        "about a third of the run's time)",
    )
    return parser


def parse_options(argv: Sequence[str] | None) -> RunOptions:
    """Parse and cross-check the command line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return RunOptions(
        common=common_options(args), prompts=prompt_choice(parser, args), ablation=args.ablation,
    )
