"""004's paste-ready LLM prompts: its templates, the artefacts each inlines, and its trims.

Inlined per model: the JSON (every SAE's quality, activity, discovery lists,
specialists and feature cards; the depth counts; the thresholds, the specialist rule and
the rules), the features CSV (each discovered feature's statistics per category) and the
text-activity CSV (one row per SAE and text). Not inlined: the sae-quality and
specialists CSVs, which repeat the JSON's numbers. The cards always go in compact, at
every trim level, and the header says so (``compact_cards``: per card its feature,
category, holds, the ``CARD_PROMOTED`` most promoted tokens and the ``CARD_CONTEXTS``
strongest contexts as plain text, the peak token between ``⟦`` and ``⟧``); their per-token
values and histograms are for the card files and figures. Over the budget
(``layers_core.reports.llm_pack``), the further trim levels are tried in order: the CSVs'
``sae``, ``rel_depth`` and ``hook`` columns removed
(the JSON's ``saes`` gives them per layer); then also the features CSV cut to the first
``TOP_FEATURES`` features of each discovery list; then also the text-activity rows removed
(the evaluation markdown summarises them per category).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from layers_core.reports.csv_trim import keep_rows
from layers_core.reports.llm_pack import Source, TrimLevels, read_source
from layers_core.reports.prompt_pack import PromptPack
from layers_core.runs.artefacts import artefact_name
from sae_features.artefact_schema import FEATURES, TEXT_ACTIVITY
from sae_features.reports.card_common import cards_markdown_path
from sae_features.reports.feature_card_data import FeatureCard, read_cards
from sae_features.reports.run_artefacts import SaeModel
from sae_features.reports.token_text import PEAK_CLOSE, PEAK_OPEN, plain_context, visible

EXPERIMENT = "004_sae_features"  # its templates are in prompts/004_sae_features/
INLINED_CSVS = (FEATURES, TEXT_ACTIVITY)
KEY_COLUMNS = ("sae", "rel_depth", "hook")
TOP_FEATURES = 3
CARD_PROMOTED, CARD_CONTEXTS = 5, 3


def compact_card(card: FeatureCard) -> dict[str, Any]:
    """A card as the prompt gives it: feature, category, holds, top promoted tokens, top contexts as plain text."""
    return {"category": card.category, "feature": card.feature, "holds": card.holds,
            "promoted": [visible(t.token) for t in card.promoted[:CARD_PROMOTED]],
            "contexts": [plain_context(c.tokens, c.peak) for c in card.contexts[:CARD_CONTEXTS]]}


def compact_cards(src: Source) -> tuple[Source, list[str]]:
    """A step replacing every SAE's ``cards`` in the inlined JSON by ``compact_card`` of each (checked on reading)."""
    categories = list(src.summary.get("categories") or {})
    saes = [{**entry, "cards": [compact_card(c) for c in read_cards(entry, categories)]}
            for entry in src.summary.get("saes") or []]
    note = (f"{artefact_name(src.name, 'json')}: each SAE's cards shortened to feature, category, holds, the "
            f"{CARD_PROMOTED} most promoted tokens and the {CARD_CONTEXTS} strongest contexts (plain text, peak "
            f"token between {PEAK_OPEN} and {PEAK_CLOSE}); the full cards are in "
            f"{cards_markdown_path(Path(), src.name).name}.")
    return src.with_summary({**src.summary, "saes": saes}), [note]


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


def top_discovered(saes: Sequence[dict[str, Any]], n: int) -> set[tuple[str, str]]:
    """(layer, feature) as CSV text for the first ``n`` features of every discovery list of every SAE."""
    kept = set()
    for entry in saes:
        found = dict(entry.get("discovery") or {})
        lists = [found.get(k) or [] for k in ("strongest", "frequent", "selective")]
        lists += list(dict(found.get("category") or {}).values())
        kept |= {(str(entry.get("layer")), str(feature)) for features in lists for feature in features[:n]}
    return kept


def top_features(src: Source) -> tuple[Source, list[str]]:
    """A trim keeping the features CSV's rows of the first ``TOP_FEATURES`` features of each discovery list."""
    table = src.tables.get(FEATURES)
    if table is None:
        return src, []
    wanted = top_discovered(list(src.summary.get("saes") or []), TOP_FEATURES)
    kept = keep_rows(table, lambda r: (r.get("layer"), r.get("feature")) in wanted)
    if len(kept[1]) == len(table[1]):
        return src, []
    note = (f"{artefact_name(src.name, FEATURES)}: only the first {TOP_FEATURES} features of each discovery list "
            f"kept ({len(table[1]) - len(kept[1])} rows removed).")
    return src.with_table(FEATURES, kept), [note]


def no_text_rows(src: Source) -> tuple[Source, list[str]]:
    """A trim removing every row of the text-activity CSV (its header stays)."""
    table = src.tables.get(TEXT_ACTIVITY)
    if table is None or not table[1]:
        return src, []
    note = (f"{artefact_name(src.name, TEXT_ACTIVITY)}: all {len(table[1])} rows removed (per category in the "
            "factual evaluation).")
    return src.with_table(TEXT_ACTIVITY, (table[0], [])), [note]


TRIM_LEVELS: TrimLevels = ((compact_cards,), (compact_cards, drop_key_columns),
                           (compact_cards, drop_key_columns, top_features),
                           (compact_cards, drop_key_columns, top_features, no_text_rows))


def source_for(model: SaeModel, run_dir: Path) -> Source:
    """The JSON and the features and text-activity CSVs of one ok model."""
    return read_source(model, run_dir, INLINED_CSVS)


PACK = PromptPack(EXPERIMENT, source_for, TRIM_LEVELS)
