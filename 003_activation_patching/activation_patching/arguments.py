"""Command-line arguments of experiment 003, each explained for someone new to Python."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from layers_core.runs.arguments import CommonOptions, common_options, experiment_parser, whole_number
from layers_core.runs.prompt_arguments import DEFAULT_BATTERY

DESCRIPTION = """\
Experiment 003: which layer and which position carry the fact, tested by intervention.

Two prompts that differ only in their subject (the clean "The capital of Germany
is" and the corrupt "The capital of France is") are run side by side, and one
activation at a time is copied from one run into the other (activation patching).
The score of each copy, its restoration, is the logit difference between the clean
answer and the corrupt answer, scaled so that the corrupted run is 0 and the clean
run 1: denoising copies clean activations into the corrupted run, noising the
reverse. The full sweep patches the residual stream, the attention and MLP outputs
at every layer and position, and every head. Over the fact battery, the residual at
the subject's last token and at the answer position is patched at every layer, and
the layer where the answer position takes over from the subject is named. Facts
with no partner of equal token length are corrupted instead with Gaussian noise on
the subject's embeddings (causal tracing). Results go to run-latest/ beside this
script (the previous run is kept as run-<time>/), with plots (causal-tracing heatmaps,
head grids, the battery's medians), a factual evaluation in markdown that sets the
handover beside 001's lens and 002's attribution depths, and prompts for an LLM.
The default run takes about 4 minutes per bundled model on two processor threads.
"""

EXAMPLES = """\
examples:
  python run.py
  python run.py --models smollm2-135m --pairs 3
  python run.py --clean "The capital of Germany is" --corrupt "The capital of France is" \\
                --answer Berlin --corrupt-answer Paris
"""

CUSTOM_FLAGS = ("clean", "corrupt", "answer", "corrupt_answer")


@dataclass(frozen=True)
class CustomPairText:
    """``--clean``/``--corrupt``/``--answer``/``--corrupt-answer`` as given (tokenised per model)."""

    clean: str
    corrupt: str
    answer: str
    corrupt_answer: str


@dataclass(frozen=True)
class RunOptions:
    """Everything a run needs, parsed and checked.

    Attributes:
        common: The shared flags (models, device, dtype, output folder, reports).
        custom: The custom pair, or None for the battery's pairs.
        facts: The battery's name, or None (a custom pair, or ``--facts none``).
        full_pairs: How many pairs get the full sweep grids.
    """

    common: CommonOptions
    custom: CustomPairText | None
    facts: str | None
    full_pairs: int


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser; ``--help`` prints every flag with its meaning."""
    parser = experiment_parser(DESCRIPTION, EXAMPLES)
    parser.add_argument("--clean", metavar="TEXT", help="the clean prompt of a custom pair, e.g. "
                        "'The capital of Germany is' (needs --corrupt, --answer and --corrupt-answer)")
    parser.add_argument("--corrupt", metavar="TEXT", help="the corrupt prompt: the clean one with its subject "
                        "changed, as many tokens long, e.g. 'The capital of France is'")
    parser.add_argument("--answer", metavar="TEXT", help="the clean prompt's answer, e.g. Berlin")
    parser.add_argument("--corrupt-answer", metavar="TEXT", help="the corrupt prompt's answer, e.g. Paris; "
                        "it must start with another token than --answer")
    parser.add_argument(
        "--facts", metavar="BATTERY", default=None,
        help=f"the fact battery whose pairs are patched (default '{DEFAULT_BATTERY}': 65 country-capital facts "
        "in data/batteries/capitals.jsonl); 'none' is allowed only with a custom pair, which replaces the battery",
    )
    parser.add_argument(
        "--pairs", type=whole_number(0), default=1, metavar="N",
        help="how many pairs get the full sweep grids (every layer, position, component and head; about 50 s "
        "per pair on SmolLM2 on a cpu); every battery pair gets the cheap sweep of the subject and the answer "
        "position (default: 1; 0: the cheap sweep only)",
    )
    return parser


def _custom(parser: argparse.ArgumentParser, args: argparse.Namespace) -> CustomPairText | None:
    given = [name for name in CUSTOM_FLAGS if getattr(args, name) is not None]
    if not given:
        return None
    if len(given) != len(CUSTOM_FLAGS):
        missing = ", ".join("--" + name.replace("_", "-") for name in CUSTOM_FLAGS if name not in given)
        parser.error(
            f"a custom pair needs --clean, --corrupt, --answer and --corrupt-answer together; missing {missing}"
        )
    for name in CUSTOM_FLAGS:
        if not getattr(args, name).strip():
            parser.error(f"--{name.replace('_', '-')} is empty; give some text")
    if args.facts not in (None, "none"):
        parser.error("--facts goes without a custom pair (the custom pair replaces the battery)")
    return CustomPairText(args.clean, args.corrupt, args.answer, args.corrupt_answer)


def parse_options(argv: Sequence[str] | None) -> RunOptions:
    """Parse and cross-check the command line (a bad combination is one line and exit status 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    custom = _custom(parser, args)
    if custom is None and args.facts == "none":
        parser.error("--facts none leaves nothing to patch; give a custom pair (--clean, --corrupt, --answer, "
                     "--corrupt-answer) or a battery")
    facts = None if custom is not None else (args.facts or DEFAULT_BATTERY)
    return RunOptions(common=common_options(args), custom=custom, facts=facts, full_pairs=args.pairs)
