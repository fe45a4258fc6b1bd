"""Experiment 004's artefact schema: the CSV kinds it writes and their columns, in order.

File names come from ``layers_core.runs.artefacts.artefact_path(run_dir, name, kind)``
(``output-<model>-sae-quality.csv`` ...). In every CSV ``sae`` names the SAE (``trained``
or the release/id or folder it came from), ``layer`` is the residual it reads (0 = the
embeddings, ``l`` = after block ``l-1``), ``hook`` the same in TransformerLens's spelling.
Activations are counted on a text's tokens after its first (``layers_core.sae.text_features``).
"""

from __future__ import annotations

SCHEMA_VERSION = 2  # written into every output-<name>.json; readers refuse a newer one

SAE_QUALITY = "sae-quality"
FEATURES = "features"
SPECIALISTS = "specialists"
TEXT_ACTIVITY = "text-activity"
CSV_KINDS: tuple[str, ...] = (SAE_QUALITY, FEATURES, SPECIALISTS, TEXT_ACTIVITY)

# Columns that are text (read_csv_artefact keeps them as strings); the rest are numbers.
TEXT_COLUMNS = frozenset({"sae", "hook", "category", "criteria", "text_id", "half"})

_SAE_KEYS = ("sae", "layer", "rel_depth", "hook")


def sae_quality_columns() -> list[str]:
    """``output-<name>-sae-quality.csv``: one row per SAE, measured on held-out corpus windows."""
    return [*_SAE_KEYS, "d_sae", "tokens", "l0", "explained_variance", "ce_clean", "ce_sae", "ce_zero",
            "ce_loss_recovered", "dead_frac", "dense_frac"]


def features_columns() -> list[str]:
    """``output-<name>-features.csv``: per SAE, category and every feature a discovery criterion found."""
    return [*_SAE_KEYS, "category", "feature", "mean_activation", "max_activation", "token_frequency",
            "text_frequency", "criteria"]


def specialists_columns() -> list[str]:
    """``output-<name>-specialists.csv``: per SAE and category, its best feature and the held-out test."""
    return [*_SAE_KEYS, "category", "feature", "score", "find_mean_in", "find_mean_out", "threshold",
            "heldout_precision", "heldout_recall", "heldout_auroc", "holds"]


def text_activity_columns() -> list[str]:
    """``output-<name>-text-activity.csv``: per SAE and text, how many features its tokens use."""
    return [*_SAE_KEYS, "text_id", "category", "half", "tokens", "l0", "features_active",
            "features_active_frac", "top_feature", "top_feature_mean"]
