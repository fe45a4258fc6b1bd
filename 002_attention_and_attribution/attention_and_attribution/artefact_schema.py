"""Experiment 002's artefact schema: the CSV kinds it writes and their columns, in order.

File names come from ``layers_core.runs.artefacts.artefact_path(run_dir, name, kind)``
with these kinds (``output-<model>-heads.csv`` ...). NOTES.md ("Artefacts (002)")
explains every column. Conventions shared by all of them:

- ``layer`` is the 0-based block index as in the hook names (``blocks.{layer}...``);
  ``rel_depth`` is the depth *after* that block has written, ``(layer + 1) / n_layers``,
  so the last block is 1.0 and the embedding 0.0 (001's lens layer ``layer + 1``).
- ``dla_answer`` / ``dla_logit_diff``: the component's direct contribution, in logits,
  to the answer's logit and to the answer's minus the foil's, at the answer position.
- ``prompt_id`` is the prompt's id, a fact's id for the battery, or ``battery`` for a
  row that aggregates the battery.
"""

from __future__ import annotations

from attention_and_attribution.token_roles import ROLES

SCHEMA_VERSION = 1  # written into every output-<name>.json; the reports refuse a newer one

HEADS = "heads"
COMPONENTS = "components"
LAYERS = "layers"
HEAD_SUMMARY = "head-summary"
ABLATION = "ablation"
ATTENTION = "attention"
CSV_KINDS: tuple[str, ...] = (HEADS, COMPONENTS, LAYERS, HEAD_SUMMARY, ABLATION, ATTENTION)

# The exact sum's limit: the non-head rows add up to the model's value within this, relative
# to that value (at least 1 logit). The run warns above it and the reports say so.
SUM_REL_LIMIT = 1e-4
# Columns that are text (read_csv_artefact keeps them as strings); the rest are numbers.
TEXT_COLUMNS = frozenset({"hook", "component", "selection", "heads", "role"})
BATTERY_ROW = "battery"  # prompt_id of an ablation row that aggregates the battery
ATTN_COLUMNS: tuple[str, ...] = tuple(f"attn_{role}" for role in ROLES)


def heads_columns() -> list[str]:
    """``output-<name>-heads.csv``: one row per prompt (and fact) x layer x head."""
    return [
        "prompt_id", "layer", "head", "rel_depth", "hook", "dla_answer", "dla_logit_diff",
        *ATTN_COLUMNS, "attn_entropy_bits",
    ]


def components_columns() -> list[str]:
    """``output-<name>-components.csv``: one row per prompt x component.

    ``component`` is ``embed``, ``attn`` (a layer's heads together), ``head``, ``bias``
    (an attention output bias, or the final row with ``layer`` empty: the final norm's
    and the unembedding's biases) or ``mlp``; the rows other than ``head`` rows sum to
    the prompt's ``model_logit_diff`` (and ``model_logit_answer``).
    """
    return ["prompt_id", "component", "layer", "head", "rel_depth", "hook", "dla_answer", "dla_logit_diff"]


def layers_columns() -> list[str]:
    """``output-<name>-layers.csv``: one row per prompt x layer: attention vs MLP beside the lens.

    ``attn_*`` include the layer's output-projection bias; ``p_answer`` and ``answer_rank``
    are the norm lens on the residual after the block (001's definition).
    """
    return [
        "prompt_id", "layer", "rel_depth", "attn_dla_answer", "mlp_dla_answer", "attn_dla_logit_diff",
        "mlp_dla_logit_diff", "p_answer", "answer_rank",
    ]


def head_summary_columns() -> list[str]:
    """``output-<name>-head-summary.csv``: one row per layer x head, over the battery (or the prompts).

    ``share_top5``: the share of facts where the head is among the 5 heads with the
    largest ``dla_logit_diff``; ``rank``: 1 for the largest median ``dla_logit_diff``.
    """
    return [
        "layer", "head", "rel_depth", "hook", "n_prompts", "median_dla_logit_diff", "q25_dla_logit_diff",
        "q75_dla_logit_diff", "share_top5", "median_dla_answer", *(f"median_{column}" for column in ATTN_COLUMNS),
        "rank",
    ]


def ablation_columns() -> list[str]:
    """``output-<name>-ablation.csv``: one row per fact (and one ``battery`` row) x k x selection x seed.

    ``selection`` is ``top`` (the k heads of largest median ``dla_logit_diff``) or ``random``
    (k heads from the same layers, drawn with ``seed``; empty for ``top``). ``heads`` lists
    them as ``L<layer>H<head>``, space-separated (``L23H4 L29H1``). ``top1_flipped`` is 1 when
    the ablated model's top-1 differs from its clean top-1 (on a battery row: the share of facts).
    """
    return [
        "prompt_id", "k", "selection", "seed", "heads", "logit_diff_clean", "logit_diff_ablated",
        "logit_diff_drop", "top1_flipped",
    ]


def attention_columns() -> list[str]:
    """``output-<name>-attention.csv``: the answer position's attention over the prompt's tokens.

    One row per prompt (not battery facts) x layer x head x key position: what the
    pattern plots draw.
    """
    return ["prompt_id", "layer", "head", "pos", "token", "role", "weight"]
