"""Command-line arguments of experiment 005, each explained for someone new to Python."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from layers_core.runs.arguments import CommonOptions, common_options, experiment_parser, whole_number
from layers_core.sae.sae_arguments import SaeOptions, add_sae_arguments, sae_options
from semantics_syntax.datasets import DEFAULT_CLOZE, DEFAULT_PAIRS

DESCRIPTION = """\
Experiment 005: do a model's SAE "specialist" features track what a text is about
(its topic) or how it is written (its form), and do they matter for what the model
predicts?

The same contents written in different forms (arithmetic in symbols and in words,
code and its description, a URL and its spoken form, a feeling as emoji and as
words, ...: data/matched_pairs.jsonl) are read through SAEs at several depths (the
same SAEs as experiment 004: trained here and cached, or loaded). H1: the
specialists of each topic/form, found against other topics only, and whether a
topic's forms share them; where on the tokens they fire. H2: whether texts cluster
by topic or by form (cosine similarity, permutation tests). H3: whether a maths
specialist's activation goes with the model's log-probability of the right answer
on cloze items (data/cloze_items.jsonl). Then each specialist is removed alone (the
SAE's error term kept, so nothing else changes) and the answers are scored again,
against random features of the same firing frequency and another topic's
specialists. Every claim gets n, an effect, an interval and a p-value, and is set
against the seed notebook's finding. Results go to run-latest/ beside this script.
"""

EXAMPLES = """\
examples:
  python run.py
  python run.py --models smollm2-135m --layers 10 20
  python run.py --models gemma3-270m --sae gemma-scope-2-270m-pt-res/layer_12_width_16k_l0_medium
  python run.py --permutations 199 --ablations 3      # quicker, coarser statistics
"""


@dataclass(frozen=True)
class RunOptions:
    """Everything a run needs, parsed and checked."""

    common: CommonOptions
    sae: SaeOptions
    pairs: Path
    cloze: Path
    math_topic: str
    control_topic: str
    ablations: int
    permutations: int


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser; ``--help`` prints every flag with its meaning."""
    parser = experiment_parser(DESCRIPTION, EXAMPLES)
    add_sae_arguments(parser)
    parser.add_argument("--pairs", type=Path, default=DEFAULT_PAIRS, metavar="FILE",
                        help="the matched-pairs texts (JSON lines with id, topic, form, pair and text; default "
                        "data/matched_pairs.jsonl)")
    parser.add_argument("--cloze", type=Path, default=DEFAULT_CLOZE, metavar="FILE",
                        help="the cloze items (JSON lines with id, domain math or nonmath, prompt and answer; "
                        "default data/cloze_items.jsonl)")
    parser.add_argument("--math-topic", default="arithmetic", metavar="TOPIC",
                        help="the topic whose specialists are ablated and correlated with the maths items "
                        "(default arithmetic)")
    parser.add_argument("--control-topic", default="emotion", metavar="TOPIC",
                        help="the topic whose specialists are the other-domain control (default emotion)")
    parser.add_argument("--ablations", type=whole_number(1), default=5, metavar="N",
                        help="features of each kind removed per SAE: specialists, random features of the same "
                        "firing frequency, and the control topic's specialists (default 5; each one re-scores "
                        "every cloze item)")
    parser.add_argument("--permutations", type=whole_number(19), default=999, metavar="N",
                        help="label shuffles of each permutation test (default 999; the smallest p-value is "
                        "1/(N+1))")
    return parser


def parse_options(argv: Sequence[str] | None) -> RunOptions:
    """Parse and cross-check the command line (a bad value is one line and exit status 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    sae = sae_options(parser, args)
    for flag, path in (("--pairs", args.pairs), ("--cloze", args.cloze)):
        if not path.is_file():
            parser.error(f"{flag} {path}: no such file")
    if args.math_topic == args.control_topic:
        parser.error("--math-topic and --control-topic must differ")
    return RunOptions(common_options(args), sae, args.pairs, args.cloze, args.math_topic, args.control_topic,
                      args.ablations, args.permutations)
