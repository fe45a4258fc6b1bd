"""Command-line arguments of experiment 004, each explained for someone new to Python."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from layers_core.runs.arguments import CommonOptions, common_options, experiment_parser, whole_number
from layers_core.sae.model_saes import DEFAULT_RECIPE
from layers_core.sae.sae_sources import SaeSource, SaeSourceError, parse_sae_spec
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
    parser.add_argument(
        "--sae", action="append", metavar="SOURCE",
        help="where SAEs come from, repeatable: 'train' (trained here on the bundled corpus, cached; the "
        "default; works offline), a folder in SAELens's format, or a SAELens RELEASE/ID such as "
        "gemma-scope-2-270m-pt-res/layer_12_width_16k_l0_medium (downloaded once; needs a network)",
    )
    parser.add_argument(
        "--layers", nargs="+", type=whole_number(0), metavar="N",
        help="residuals to train SAEs on (0 = the embeddings, N = after block N-1; default: about 25, 50, 75 "
        "and 90%% of the depth, e.g. 8 15 22 27 on SmolLM2's 30 blocks)",
    )
    parser.add_argument(
        "--corpus", default="bundled", metavar="FILE|DATASET",
        help="text to train SAEs on: 'bundled' (the default: Bible, Python docs and code, jokes; see "
        "data/corpus/DATASHEET.md), a .txt file (documents separated by blank lines), a .jsonl file, or, online, "
        "a Hugging Face dataset id (owner/name or owner/name:config; the text column of its train split, first "
        "50,000 rows)",
    )
    parser.add_argument("--texts", type=Path, default=DEFAULT_TEXTS, metavar="FILE",
                        help="the category texts (JSON lines with id, category and text; default "
                        "data/category_texts.jsonl)")
    parser.add_argument("--sae-tokens", type=whole_number(1), default=DEFAULT_RECIPE.tokens, metavar="N",
                        help=f"training tokens per SAE trained here (default {DEFAULT_RECIPE.tokens:,}; fewer "
                        "trains faster and explains less)")
    parser.add_argument("--sae-k", type=whole_number(1), default=DEFAULT_RECIPE.k, metavar="K",
                        help=f"active features per token of an SAE trained here (default {DEFAULT_RECIPE.k})")
    parser.add_argument("--sae-expansion", type=whole_number(1), default=DEFAULT_RECIPE.expansion, metavar="X",
                        help="features per residual dimension of an SAE trained here (default "
                        f"{DEFAULT_RECIPE.expansion}: {DEFAULT_RECIPE.expansion} x 576 on SmolLM2)")
    parser.add_argument("--quality-windows", type=whole_number(1), default=32, metavar="N",
                        help="held-out corpus windows of 128 tokens each SAE's quality is measured on (default 32; "
                        "each costs three forward passes per SAE)")
    return parser


def parse_options(argv: Sequence[str] | None) -> RunOptions:
    """Parse and cross-check the command line (a bad value is one line and exit status 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        sources = tuple(parse_sae_spec(text) for text in (args.sae or ["train"]))
    except SaeSourceError as err:
        parser.error(str(err))
    if args.layers and not any(source.kind == "train" for source in sources):
        parser.error("--layers chooses where SAEs are trained; add --sae train")
    if not args.texts.is_file():
        parser.error(f"--texts {args.texts}: no such file")
    try:
        recipe = dataclasses.replace(DEFAULT_RECIPE, tokens=args.sae_tokens, k=args.sae_k,
                                     expansion=args.sae_expansion)
    except ValueError as err:
        parser.error(f"--sae-tokens/--sae-k/--sae-expansion: {err}")
    return RunOptions(common=common_options(args), sources=sources,
                      layers=tuple(dict.fromkeys(args.layers)) if args.layers else None, recipe=recipe,
                      corpus=args.corpus, texts=args.texts, quality_windows=args.quality_windows)
