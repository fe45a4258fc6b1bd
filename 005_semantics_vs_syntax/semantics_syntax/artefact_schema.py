"""Experiment 005's artefact schema: the CSV kinds it writes and their columns, in order.

File names come from ``layers_core.runs.artefacts.artefact_path(run_dir, name, kind)``
(``output-<model>-ablation.csv`` ...). ``sae`` names the SAE (``trained`` or the
release/id or folder it came from), ``layer`` the residual it reads.
"""

from __future__ import annotations

SCHEMA_VERSION = 1  # written into every output-<name>.json; readers refuse a newer one

SPECIALISTS = "specialists"
OVERLAPS = "overlaps"
TOKEN_CLASSES = "token-classes"
SIMILARITY = "similarity"
CLOZE = "cloze"
ABLATION = "ablation"
HYPOTHESES = "hypotheses"
CSV_KINDS: tuple[str, ...] = (SPECIALISTS, OVERLAPS, TOKEN_CLASSES, SIMILARITY, CLOZE, ABLATION, HYPOTHESES)

# Columns that are text (read_csv_artefact keeps them as strings); the rest are numbers.
TEXT_COLUMNS = frozenset({"sae", "hook", "group", "topic", "form", "kind", "first", "second", "token_class",
                          "space", "label", "item_id", "domain", "hypothesis", "measure", "seed_claim", "held",
                          "answer"})

SAE_KEYS = ("sae", "layer", "rel_depth")

COLUMNS: dict[str, list[str]] = {
    # H1: per SAE and topic/form group, its specialists, best first (against other topics' texts).
    SPECIALISTS: [*SAE_KEYS, "group", "topic", "form", "rank", "feature", "score"],
    # H1: Jaccard overlap of two groups' specialist sets; kind "across_forms" (one topic) or "same_form".
    OVERLAPS: [*SAE_KEYS, "kind", "first", "second", "jaccard"],
    # H1: where each specialist's activation falls by token class, next to the share of tokens.
    TOKEN_CLASSES: [*SAE_KEYS, "group", "feature", "token_class", "activation_share", "token_share"],
    # H2: within vs across similarity of pooled vectors (space "sae" or "residual"), label "topic" or "form".
    SIMILARITY: [*SAE_KEYS, "space", "label", "within", "across", "effect", "p_value", "pairs_within",
                 "pairs_across"],
    # H3: every cloze item's clean score (nats) and its math-specialist activation per SAE.
    CLOZE: [*SAE_KEYS, "item_id", "domain", "answer", "answer_tokens", "logprob", "specialist_activation"],
    # Causal ablation: one feature removed at its layer (error term kept), per domain of items.
    ABLATION: [*SAE_KEYS, "feature", "kind", "domain", "items", "mean_delta_logprob", "ci_low", "ci_high",
               "p_value", "flip_rate", "score", "frequency", "matched_to"],
    # Every measure with its statistics, the seed's claim and whether it held.
    HYPOTHESES: ["hypothesis", "measure", "sae", "layer", "rel_depth", "value", "ci_low", "ci_high", "p_value",
                 "p_holm", "n", "seed_claim", "held"],
}
