"""Command-line arguments of experiment 004, each explained for someone new to Python."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from layers_core.runs.arguments import CommonOptions, common_options, experiment_parser, whole_number
from layers_core.sae.sae_arguments import add_sae_arguments, sae_options
from layers_core.sae.sae_sources import SaeSource
from layers_core.sae.sae_training import SaeRecipe
from sae_features.category_texts import DEFAULT_TEXTS

DESCRIPTION = """\
Experiment 004: sparse-autoencoder (SAE) features of a model, the features that
specialise in one kind of text, and how that changes with depth.

An SAE rewrites the residual stream at one layer as a sum of a few active
"features" out of thousands. Each SAE's quality comes first (how much of the
residual it explains and how much of the model's loss it keeps when spliced in,
on held-out text). Then seven categories of short texts (Python, URLs, maths,
non-English, social posts, formal prose, conversation: data/category_texts.jsonl)
are read through every SAE: which features are strongest, most frequent, most
selective, and which one specialises in each category. A specialist is chosen on
half of its category's texts and tested on the other half (precision, recall,
AUROC), so it has to generalise. By default SAEs are trained here on the bundled
corpus at four depths (minutes on a cpu the first time, then cached); SAEs from
SAELens releases or local folders can be given instead. Results go to run-latest/
beside this script (the previous run is kept as run-<time>/).
"""

EXAMPLES = """\
examples:
  python run.py
  python run.py --models smollm2-135m --layers 10 20
  python run.py --models gemma3-270m --sae gemma-scope-2-270m-pt-res/layer_12_width_16k_l0_medium
  python run.py --sae ./my-saes/layer-6 --sae train --layers 3 9
"""


@dataclass(frozen=True)
class RunOptions:
    """Everything a run needs, parsed and checked.

    Attributes:
        common: The shared flags (models, device, dtype, output folder, reports).
        sources: The ``--sae`` sources, in order.
        layers: Residuals to train SAEs on (None: ~25/50/75/90% of the depth).
        recipe: How SAEs are trained here.
        corpus: ``bundled`` or a text / JSONL file to train on.
        texts: The category dataset.
        quality_windows: Held-out corpus windows each SAE's quality is measured on.
    """

    common: CommonOptions
    sources: tuple[SaeSource, ...]
    layers: tuple[int, ...] | None
    recipe: SaeRecipe
    corpus: str
    texts: Path
    quality_windows: int


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser; ``--help`` prints every flag with its meaning."""
    parser = experiment_parser(DESCRIPTION, EXAMPLES)
    add_sae_arguments(parser)
    parser.add_argument("--texts", type=Path, default=DEFAULT_TEXTS, metavar="FILE",
                        help="the category texts (JSON lines with id, category and text; default "
                        "data/category_texts.jsonl)")
    parser.add_argument("--quality-windows", type=whole_number(1), default=32, metavar="N",
                        help="held-out corpus windows of 128 tokens each SAE's quality is measured on (default 32; "
                        "each costs three forward passes per SAE)")
    return parser


def parse_options(argv: Sequence[str] | None) -> RunOptions:
    """Parse and cross-check the command line (a bad value is one line and exit status 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    sae = sae_options(parser, args)
    if not args.texts.is_file():
        parser.error(f"--texts {args.texts}: no such file")
    return RunOptions(common=common_options(args), sources=sae.sources, layers=sae.layers, recipe=sae.recipe,
                      corpus=sae.corpus, texts=args.texts, quality_windows=args.quality_windows)
