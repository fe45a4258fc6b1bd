"""Experiment 003's artefact schema: the CSV kinds it writes and their columns, in order.

File names come from ``layers_core.runs.artefacts.artefact_path(run_dir, name, kind)``
(``output-<model>-patching.csv`` ...). Conventions shared by all of them:

- ``direction``: ``denoise`` (clean activations into the corrupted run; the
  unpatched run scores 0) or ``noise`` (corrupted into the clean run; it scores 1).
- ``restoration``: ``(d - d_corrupt) / (d_clean - d_corrupt)`` with ``d`` the logit
  of the clean answer minus the corrupt answer's (``metric.py``).
- ``layer``: for ``resid_pre`` the residual entering block ``layer`` (``layer = L``:
  the final residual), ``rel_depth = layer / L``; for a block's outputs the 0-based
  block, ``rel_depth = (layer + 1) / L`` (002's convention).
- ``position``: empty when every position was patched at once (a head's ``all``);
  ``token`` is the clean prompt's token there.
- ``hook``: the point written, in TransformerLens's spelling.
"""

from __future__ import annotations

SCHEMA_VERSION = 1  # written into every output-<name>.json; readers refuse a newer one

PATCHING = "patching"
BATTERY = "battery"
ATTRIBUTION = "attribution"
CSV_KINDS: tuple[str, ...] = (PATCHING, BATTERY, ATTRIBUTION)

# Columns that are text (read_csv_artefact keeps them as strings); the rest are numbers.
# token and subject_token are text by the library's default pattern.
TEXT_COLUMNS = frozenset({"pair_id", "direction", "component", "hook", "corruption"})

_SITE_KEYS = ("pair_id", "direction", "component", "layer", "head", "position", "token", "rel_depth", "hook")


def patching_columns() -> list[str]:
    """``output-<name>-patching.csv``: one row per patched run of the full sweeps (pair x direction x site)."""
    return [*_SITE_KEYS, "restoration"]


def battery_columns() -> list[str]:
    """``output-<name>-battery.csv``: one row per pair x direction x residual layer (0..L).

    ``restoration_subject``: the residual patched at the subject's last token alone
    (``subject_position``: for a custom pair the last position whose token differs);
    ``restoration_answer``: at the answer position (the last) alone. ``corruption`` is
    ``swap`` (another prompt) or ``noise`` (causal tracing's noise on the subject).
    """
    return [
        "pair_id", "corruption", "direction", "layer", "rel_depth", "hook", "subject_position", "subject_token",
        "answer_position", "restoration_subject", "restoration_answer",
    ]


def attribution_columns() -> list[str]:
    """``output-<name>-attribution.csv``: the exact restoration beside attribution patching's estimates.

    The same keys as the patching CSV, for the fully swept pairs; ``exact`` is the patched
    run's restoration, ``approx`` plain attribution patching's estimate (one forward and one
    backward pass per direction), ``approx_ig`` the estimate with gradients averaged along
    the path from the base run's input to the source's (``atp_star``), on the same scale.
    """
    return [*_SITE_KEYS, "exact", "approx", "approx_ig"]
