"""Command-line arguments of experiment 001, each explained for someone new to Python."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from layers_core.lens.lens import LENS_MODES
from layers_core.runs.arguments import CommonOptions, common_options, experiment_parser
from layers_core.runs.prompt_arguments import PromptChoice, add_prompt_arguments, prompt_choice

DESCRIPTION = """\
Experiment 001: how a model's next-token prediction forms, layer by layer.

For each prompt, the residual stream after every layer is decoded into a
next-token distribution (the logit lens, through the model's own final
normalisation by default), and the answer's probability, rank, entropy and
KL to the final layer are measured at every depth. Results go to
run-latest/ beside this script (the previous run is kept as run-<time>/).
"""

EXAMPLES = """\
examples:
  python run.py
  python run.py --models mistralai/Mistral-7B-v0.1 ~/models/llama3-8b
  python run.py --prompt "The capital of Italy is" --answer Rome
  python run.py --facts none              # skip the fact battery
"""


@dataclass(frozen=True)
class RunOptions:
    """Everything a run needs, parsed and checked."""

    common: CommonOptions
    prompts: PromptChoice
    chat: bool
    lens_mode: str
    fp32_unembed: bool
    check_device: bool


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser; ``--help`` prints every flag with its meaning."""
    parser = experiment_parser(DESCRIPTION, EXAMPLES)
    add_prompt_arguments(parser)
    parser.add_argument(
        "--chat", action="store_true",
        help="wrap each prompt in the model's chat template (chat/instruct models only)",
    )
    parser.add_argument(
        "--lens", choices=LENS_MODES, default="norm", dest="lens_mode",
        help="how a layer's residual is decoded: 'norm' (default) applies the model's own final "
        "normalisation and head, the standard logit lens; 'raw' skips the normalisation; "
        "'next-block' uses the next block's input norm, as the old prototype did (miscalibrated, "
        "for comparison only); 'tuned' (the tuned lens) and 'linear' (the linear shortcut) first apply a "
        "map per layer fitted on the bundled text corpus, fitted on first use (minutes; a progress bar "
        "shows it) and kept in the user cache, and then also compare the three lenses on held-out text",
    )
    parser.add_argument(
        "--fp32-unembed", action="store_true",
        help="decode in 32-bit floats even when the model runs in 16-bit (automatic on GPUs)",
    )
    parser.add_argument(
        "--check-device", action="store_true",
        help="also run the main prompt on the cpu in float32 and report how far the GPU's output is "
        "from it (KL in bits): shows whether MPS can be trusted for this model",
    )
    return parser


def parse_options(argv: Sequence[str] | None) -> RunOptions:
    """Parse and cross-check the command line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return RunOptions(
        common=common_options(args), prompts=prompt_choice(parser, args), chat=args.chat,
        lens_mode=args.lens_mode, fp32_unembed=args.fp32_unembed, check_device=args.check_device,
    )
