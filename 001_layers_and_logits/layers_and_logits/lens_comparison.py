"""The lenses side by side, for a run with ``--lens tuned`` or ``--lens linear`` (issue 14).

Compared: the norm lens and every fitted lens the run has (``linear``; with
``--lens tuned`` also ``tuned``, which starts from it). For each:

- on held-out text of the bundled corpus (``fitted_lens.heldout_windows``, documents no
  fit has seen), the mean KL(final || lens) in bits at every layer 0..L (the tuned-lens
  paper's main figure; layer L is ~0 for every lens by construction), and its mean over
  layers 0..L-1;
- on the fact battery (when it ran), the distribution of the first layer where the
  lens ranks the answer first (001's ``first_rank1`` milestone), so a reader sees how
  far each lens moves the battery's rank-1 depth.

Rows go to ``output-<name>-lens-kl.csv``, the summary to the JSON's ``lens_comparison``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor

from layers_and_logits.fact_battery import facts_summary, run_fact_battery
from layers_core import metrics
from layers_core.lens.fitted_lens import FIT_PLAN, FittedLens
from layers_core.lens.lens import Lens
from layers_core.lens.lens_divergence import kl_by_layer
from layers_core.models.loading import LoadedModel
from layers_core.prompts.prompt_battery import PromptCase
from layers_core.prompts.token_text import TokenText


def lens_kl_rows(loaded: LoadedModel, lenses: Mapping[str, Lens], windows: Tensor) -> list[dict[str, Any]]:
    """One row per lens and layer: mean KL(final || lens) in bits over the held-out ``windows``."""
    n_layers = loaded.parts.n_layers
    rows = []
    for name, lens in lenses.items():
        kl = kl_by_layer(loaded.model, loaded.parts, lens, windows, batch_size=FIT_PLAN.forward_batch)
        rows += [{"lens": name, "layer": layer, "rel_depth": metrics.rel_depth(layer, n_layers), "kl_bits": value}
                 for layer, value in enumerate(kl)]
    return rows


def mean_kl_before_last(rows: Sequence[dict[str, Any]], n_layers: int) -> dict[str, float]:
    """Per lens: the mean of its KL over layers 0..L-1 (the issue's comparison; layer L is 0 for all)."""
    found: dict[str, list[float]] = {}
    for row in rows:
        if row["layer"] < n_layers:
            found.setdefault(row["lens"], []).append(float(row["kl_bits"]))
    return {name: sum(values) / len(values) for name, values in found.items()}


def battery_rank1(loaded: LoadedModel, lenses: Mapping[str, Lens], facts: Sequence[PromptCase],
                  battery_name: str | None, known: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Per lens: the battery's ``first_rank1`` distribution (relative depths over the aligned facts).

    ``known``: distributions already measured (the run's own lens, from its battery), not measured again.
    """
    text, n_layers = TokenText(loaded.tokenizer), loaded.parts.n_layers
    known = known or {}
    return {name: known[name] if name in known else
            facts_summary(battery_name, run_fact_battery(loaded, lens, facts), n_layers, text)
            ["milestones"]["first_rank1"] for name, lens in lenses.items()}


def comparison_document(rows: Sequence[dict[str, Any]], fits: Mapping[str, FittedLens], n_layers: int,
                        battery: dict[str, Any] | None, heldout_tokens: int) -> dict[str, Any]:
    """The JSON's ``lens_comparison``: held-out text, the fits' provenance, mean KLs, battery depths."""
    return {
        "heldout": {"windows": heldout_tokens // FIT_PLAN.window, "window": FIT_PLAN.window, "tokens": heldout_tokens,
                    "source": "bundled corpus, held-out documents (layers_core.corpus.split_documents)"},
        "fits": {name: fit.describe() for name, fit in fits.items()},
        "mean_kl_bits_layers_0_to_L_minus_1": mean_kl_before_last(rows, n_layers),
        "battery_first_rank1": battery,
    }
