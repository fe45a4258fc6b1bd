"""The H2 section: do texts cluster by topic or by form, in the SAE features and in the residual?

From the similarity CSV (within, across, effect, permutation p, pairs) with p_holm from
the hypotheses CSV (measure ``<label>_clustering_<space>``).
"""

from __future__ import annotations

import math

from layers_core.reports.markdown import md_image, md_table
from semantics_syntax.artefact_schema import SIMILARITY
from semantics_syntax.reports.md_claims import claims_section
from semantics_syntax.reports.md_common import fmt_count, fmt_layer, fmt_p, fmt_stat
from semantics_syntax.reports.run_artefacts import SPACES, SemanticsModel
from semantics_syntax.reports.seed_claims import SEED_ACROSS, SEED_WITHIN

INTRO = ("Each text is pooled into one vector per SAE layer: its SAE features' mean activation, and its residual's "
         "mean (centred over all texts). Topic effect: mean cosine similarity of same-topic pairs minus "
         "different-topic pairs, both among pairs written in different forms; form effect: same-form minus "
         "different-form pairs, both "
         f"among pairs of different topics. The seed reported within-topic similarity {SEED_WITHIN} against "
         f"{SEED_ACROSS} across topics.")
LABELS = ("topic", "form")


def _stronger(model: SemanticsModel, layer: int, space: str) -> str:
    topic = model.claim(f"topic_clustering_{space}", layer)
    form = model.claim(f"form_clustering_{space}", layer)
    if topic is None or form is None or math.isnan(topic.value) or math.isnan(form.value):
        return "n/a"
    return "topic" if topic.value > form.value else ("form" if form.value > topic.value else "equal")


def similarity_table(model: SemanticsModel) -> str:
    """One row per SAE, space and label, with the larger of the two effects per SAE and space."""
    table = model.csv(SIMILARITY)
    rows = []
    for layer in model.layers:
        for space in SPACES:
            for label in LABELS:
                found = table[(table["layer"] == layer) & (table["space"] == space) & (table["label"] == label)]
                if found.empty:
                    continue
                row = found.iloc[0]
                claim = model.claim(f"{label}_clustering_{space}", layer)
                rows.append([fmt_layer(layer, model.rel_depth(layer)), space, label, fmt_stat(row["within"]),
                             fmt_stat(row["across"]), fmt_stat(row["effect"]), fmt_p(row["p_value"]),
                             fmt_p(claim.p_holm if claim else None), fmt_count(row["pairs_within"]),
                             fmt_count(row["pairs_across"]), _stronger(model, layer, space)])
    return md_table(["Layer", "Space", "Label", "Within", "Across", "Effect", "p", "p_holm", "Pairs within",
                     "Pairs across", "Larger effect"], rows)


def h2_section(model: SemanticsModel, plot: str | None) -> str:
    """The whole H2 section, ending with the seed's claims against this run."""
    parts = ["## H2: clustering by topic and by form", INTRO, similarity_table(model)]
    if plot:
        parts.append("Mean similarity between the texts of each pair of groups (diagonal: distinct texts of one "
                     f"group), per SAE layer, in the SAE space and the residual:\n\n{md_image('similarity', plot)}")
    parts.append(claims_section("H2: the seed's claims against this run", model.claims_of("H2")))
    return "\n\n".join(parts)
