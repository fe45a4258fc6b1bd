"""Experiment 001's artefact schema: the CSV kinds it writes and their columns, in order.

NOTES.md ("Artefacts (001)") explains every column. File names come from
``layers_core.runs.artefacts.artefact_path(run_dir, name, kind)`` with these kinds.
"""

from __future__ import annotations

SCHEMA_VERSION = 1  # written into every output-<name>.json; the reports refuse a newer one
PURE_NEXT_TOKEN = "pure-next-token"
RECORDS = "records"
FACTS = "facts"
LENS_KL = "lens-kl"  # written with --lens tuned or linear: the lenses compared on held-out text
CSV_KINDS: tuple[str, ...] = (PURE_NEXT_TOKEN, RECORDS, FACTS, LENS_KL)
TEXT_COLUMNS = frozenset({"lens"})


def _top_columns(start: int, k: int) -> list[str]:
    columns: list[str] = []
    for i in range(start, k + 1):
        columns += [f"top{i}", f"p_top{i}"]
    return columns


def pure_next_token_columns(k: int = 20) -> list[str]:
    """Columns of ``output-<name>-pure-next-token.csv`` (one row per prompt x layer)."""
    return [
        "prompt_id", "layer", "rel_depth", "entropy_bits", "top1", "p_top1", "p_answer", "answer_rank",
        "kl_to_final_bits", "cosine_to_final", "copy_collapse", *_top_columns(2, k),
    ]


def records_columns(k: int = 5) -> list[str]:
    """Columns of ``output-<name>-records.csv`` (one row per prompt x layer x position)."""
    return ["prompt_id", "layer", "pos", "token", "entropy_bits", *_top_columns(1, k)]


def facts_columns() -> list[str]:
    """Columns of ``output-<name>-facts.csv`` (one row per fact x layer)."""
    return [
        "prompt_id", "layer", "rel_depth", "entropy_bits", "top1", "p_top1", "p_answer", "answer_rank",
        "kl_to_final_bits",
    ]


def lens_kl_columns() -> list[str]:
    """Columns of ``output-<name>-lens-kl.csv`` (one row per lens x layer): mean KL(final || lens) on held-out text."""
    return ["lens", "layer", "rel_depth", "kl_bits"]
