"""The command-line flags of experiments that read a model through SAEs (004, 005): where the SAEs come from.

``add_sae_arguments(parser)`` adds ``--sae``, ``--layers``, ``--corpus``, ``--sae-tokens``,
``--sae-k`` and ``--sae-expansion``; ``sae_options(parser, args)`` checks them together and
returns ``SaeOptions`` (a bad combination is one line through ``parser.error``, exit 2).
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

from layers_core.runs.arguments import whole_number
from layers_core.sae.model_saes import DEFAULT_RECIPE
from layers_core.sae.sae_sources import SaeSource, SaeSourceError, parse_sae_spec
from layers_core.sae.sae_training import SaeRecipe


@dataclass(frozen=True)
class SaeOptions:
    """Where a run's SAEs come from.

    Attributes:
        sources: The ``--sae`` sources, in order (``train`` when none was given).
        layers: Residuals to train SAEs on (None: ~25/50/75/90% of the depth).
        recipe: How SAEs are trained here.
        corpus: ``bundled``, a text / JSONL file or a hub dataset id to train on.
    """

    sources: tuple[SaeSource, ...]
    layers: tuple[int, ...] | None
    recipe: SaeRecipe
    corpus: str


def add_sae_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the SAE flags, each explained in ``--help``."""
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
    parser.add_argument("--sae-tokens", type=whole_number(1), default=DEFAULT_RECIPE.tokens, metavar="N",
                        help=f"training tokens per SAE trained here (default {DEFAULT_RECIPE.tokens:,}; fewer "
                        "trains faster and explains less)")
    parser.add_argument("--sae-k", type=whole_number(1), default=DEFAULT_RECIPE.k, metavar="K",
                        help=f"active features per token of an SAE trained here (default {DEFAULT_RECIPE.k})")
    parser.add_argument("--sae-expansion", type=whole_number(1), default=DEFAULT_RECIPE.expansion, metavar="X",
                        help="features per residual dimension of an SAE trained here (default "
                        f"{DEFAULT_RECIPE.expansion}: {DEFAULT_RECIPE.expansion} x 576 on SmolLM2)")


def sae_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> SaeOptions:
    """The checked SAE flags of ``args`` (one-line usage errors through ``parser``)."""
    try:
        sources = tuple(parse_sae_spec(text) for text in (args.sae or ["train"]))
    except SaeSourceError as err:
        parser.error(str(err))
    if args.layers and not any(source.kind == "train" for source in sources):
        parser.error("--layers chooses where SAEs are trained; add --sae train")
    try:
        recipe = dataclasses.replace(DEFAULT_RECIPE, tokens=args.sae_tokens, k=args.sae_k,
                                     expansion=args.sae_expansion)
    except ValueError as err:
        parser.error(f"--sae-tokens/--sae-k/--sae-expansion: {err}")
    return SaeOptions(sources, tuple(dict.fromkeys(args.layers)) if args.layers else None, recipe, args.corpus)
