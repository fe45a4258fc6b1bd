"""005's paste-ready LLM prompts: its templates, the artefacts each inlines, and its trims.

Inlined per model: the JSON (the SAEs with their ablation targets and group x group
similarity, the groups and topics, the cloze counts and skipped items, the settings, the
model's shape and the hypotheses table at full precision), then the similarity,
overlaps, ablation, specialists, token-classes and cloze CSVs. Not inlined: the
hypotheses CSV, which repeats the JSON's ``hypotheses``. Over the budget
(``layers_core.reports.llm_pack``), the trim levels are tried in order: the CSVs'
``sae`` and ``rel_depth`` columns removed (the JSON's ``saes`` gives them per layer);
then also the token-classes rows where both shares are zero; then also every cloze row
(H3's correlations are in the JSON); then also every token-classes row (the factual
evaluation averages them per SAE); then also every specialist but each group's best.
"""

from __future__ import annotations

from pathlib import Path

from layers_core.reports.csv_trim import keep_rows
from layers_core.reports.llm_pack import Source, TrimLevels, TrimStep, read_source
from layers_core.reports.prompt_pack import PromptPack
from layers_core.runs.artefacts import artefact_name
from semantics_syntax.artefact_schema import ABLATION, CLOZE, OVERLAPS, SIMILARITY, SPECIALISTS, TOKEN_CLASSES
from semantics_syntax.reports.run_artefacts import SemanticsModel

EXPERIMENT = "005_semantics_vs_syntax"  # its templates are in prompts/005_semantics_vs_syntax/
INLINED_CSVS = (SIMILARITY, OVERLAPS, ABLATION, SPECIALISTS, TOKEN_CLASSES, CLOZE)
KEY_COLUMNS = ("sae", "rel_depth")


def drop_key_columns(src: Source) -> tuple[Source, list[str]]:
    """A trim removing ``KEY_COLUMNS`` from every inlined CSV (the JSON's ``saes`` maps layer to them)."""
    notes = []
    for kind, table in src.tables.items():
        if table is None or not set(KEY_COLUMNS) & set(table[0]):
            continue
        keep = [i for i, column in enumerate(table[0]) if column not in KEY_COLUMNS]
        src = src.with_table(kind, ([table[0][i] for i in keep], [[row[i] for i in keep] for row in table[1]]))
        notes.append(f"{artefact_name(src.name, kind)}: columns {', '.join(KEY_COLUMNS)} removed (the JSON's saes "
                     "gives them per layer).")
    return src, notes


def _is_zero(text: str | None) -> bool:
    try:
        return float(text or "nan") == 0.0
    except ValueError:
        return False


def no_zero_classes(src: Source) -> tuple[Source, list[str]]:
    """A trim removing the token-classes rows where a specialist has no activation and its group no token."""
    table = src.tables.get(TOKEN_CLASSES)
    if table is None:
        return src, []
    kept = keep_rows(table, lambda r: not (_is_zero(r.get("activation_share")) and _is_zero(r.get("token_share"))))
    if len(kept[1]) == len(table[1]):
        return src, []
    note = (f"{artefact_name(src.name, TOKEN_CLASSES)}: the {len(table[1]) - len(kept[1])} rows where both "
            "activation_share and token_share are 0 removed.")
    return src.with_table(TOKEN_CLASSES, kept), [note]


def _no_rows(kind: str, why: str) -> TrimStep:
    def trim(src: Source) -> tuple[Source, list[str]]:
        table = src.tables.get(kind)
        if table is None or not table[1]:
            return src, []
        note = f"{artefact_name(src.name, kind)}: all {len(table[1])} rows removed ({why})."
        return src.with_table(kind, (table[0], [])), [note]

    trim.__doc__ = f"A trim removing every row of the {kind} CSV (its header stays)."
    return trim


no_cloze_rows = _no_rows(CLOZE, "the correlations computed from them are in the JSON's hypotheses")
no_class_rows = _no_rows(TOKEN_CLASSES, "the factual evaluation averages them per SAE")

def best_specialists(src: Source) -> tuple[Source, list[str]]:
    """A trim keeping only each group's best specialist (rank 1) in the specialists CSV."""
    table = src.tables.get(SPECIALISTS)
    if table is None:
        return src, []
    kept = keep_rows(table, lambda r: r.get("rank") == "1")
    if len(kept[1]) == len(table[1]):
        return src, []
    note = (f"{artefact_name(src.name, SPECIALISTS)}: only each group's best specialist (rank 1) kept "
            f"({len(table[1]) - len(kept[1])} rows removed; the overlaps CSV and the JSON's targets use them all).")
    return src.with_table(SPECIALISTS, kept), [note]


TRIM_LEVELS: TrimLevels = ((), (drop_key_columns,), (drop_key_columns, no_zero_classes),
                           (drop_key_columns, no_zero_classes, no_cloze_rows),
                           (drop_key_columns, no_zero_classes, no_cloze_rows, no_class_rows),
                           (drop_key_columns, no_zero_classes, no_cloze_rows, no_class_rows, best_specialists))


def source_for(model: SemanticsModel, run_dir: Path) -> Source:
    """The JSON and the inlined CSVs of one ok model."""
    return read_source(model, run_dir, INLINED_CSVS)


PACK = PromptPack(EXPERIMENT, source_for, TRIM_LEVELS)
