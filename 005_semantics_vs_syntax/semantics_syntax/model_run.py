"""Experiment 005's analysis of one loaded model: meaning or form, and does it matter?

Outline: the SAEs (``layers_core.sae.model_saes``, as 004: trained here and cached, or
loaded); the matched-pairs texts through every SAE in one pass per batch; the cloze items
scored clean, and their prompts through every SAE; then per SAE: H1 (specialists per
topic/form against other topics, their overlap across forms, where they fire by token
class), H2 (topic and form clustering of pooled SAE features and residuals, permutation
tests), H3 (math-specialist activation against the answer's log-probability), and the
ablation matrix (specialists, frequency-matched random features, another domain's
specialists); across SAEs, selectivity against causal effect; the CSVs; the JSON fields.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from layers_core.corpus import load_corpus
from layers_core.lens.fit_progress import stderr_progress
from layers_core.metrics import rel_depth
from layers_core.runs import artefacts
from layers_core.runs.model_loop import Analysis, ModelRun
from layers_core.sae.model_saes import ModelSae, model_saes
from layers_core.sae.sae_sources import SaeSource
from layers_core.sae.sae_training import SaeRecipe
from layers_core.sae.text_features import TextFeatures, text_features
from semantics_syntax import artefact_schema as schema
from semantics_syntax.ablation_matrix import AblationResult, Target, ablate, choose_targets
from semantics_syntax.behaviour import activation_logprob, prompt_activation
from semantics_syntax.cloze_scoring import EncodedItem, ItemScores, encode_items, score_items
from semantics_syntax.datasets import ClozeItem, PairText
from semantics_syntax.geometry import Clustering, clustering, cosine_matrix
from semantics_syntax.hypotheses import Row, mean_with_bootstrap, selectivity_vs_effect, t_mean
from semantics_syntax.hypotheses import table as hypotheses_table
from semantics_syntax.token_classes import CLASSES, token_classes
from semantics_syntax.topic_specialists import (
    ActivationMass,
    GroupSpecialists,
    activation_mass,
    form_overlaps,
    group_specialists,
    same_form_overlaps,
)


@dataclass(frozen=True)
class SemanticsAnalysis:
    """What 005 measures on every model. Called by the model loop with each loaded model."""

    sources: Sequence[SaeSource]
    layers: Sequence[int] | None
    recipe: SaeRecipe
    corpus: str
    pairs: Sequence[PairText]
    cloze: Sequence[ClozeItem]
    math_topic: str
    control_topic: str
    ablations: int = 5
    permutations: int = 999
    seed: int = 0

    def __call__(self, run: ModelRun) -> Analysis:
        """Analyse one loaded model and write its CSVs; return its JSON fields."""
        return _analyse(run, self)


@dataclass(frozen=True)
class SaeFindings:
    """Everything 005 found for one SAE."""

    entry: ModelSae
    specialists: list[GroupSpecialists]
    masses: list[ActivationMass]
    clusters: dict[str, list[Clustering]]
    targets: list[Target]
    ablations: list[AblationResult]
    rows: list[Row]
    activation: list[float]
    group_similarity: dict[str, list[list[float]]]


def _analyse(run: ModelRun, spec: SemanticsAnalysis) -> Analysis:
    loaded, parts, tokenizer = run.loaded, run.loaded.parts, run.loaded.tokenizer
    status = run.status
    started = time.perf_counter()
    saes = model_saes(loaded, spec.sources, layers=spec.layers, recipe=spec.recipe, corpus=load_corpus(spec.corpus),
                      status=status, progress=stderr_progress())
    sae_seconds = time.perf_counter() - started
    started = time.perf_counter()
    sae_map = {e.layer: e.sae for e in saes}
    texts = list(spec.pairs)
    status(f"reading {len(texts)} matched-pairs texts and the cloze items through {len(saes)} SAEs")
    features = text_features(loaded.model, parts, tokenizer, [t.text for t in texts], sae_map)
    classes = [token_classes(tokenizer, f.token_ids) for f in features[saes[0].layer]]
    encoded, skipped = encode_items(tokenizer, spec.cloze)
    clean = score_items(loaded.model, parts, tokenizer, encoded)
    prompts = text_features(loaded.model, parts, tokenizer, [e.item.prompt for e in encoded], sae_map)
    read_seconds = time.perf_counter() - started
    started = time.perf_counter()
    findings = []
    for number, entry in enumerate(saes, start=1):
        status(f"SAE {number} of {len(saes)} (residual {entry.layer}): specialists, similarity, ablations")
        findings.append(_per_sae(run, spec, entry, texts, features[entry.layer], classes, encoded, clean,
                                 prompts[entry.layer]))
    analysis_seconds = time.perf_counter() - started

    depths = {e.layer: rel_depth(e.layer, parts.n_layers) for e in saes}
    rows = [row for f in findings for row in f.rows]
    specialist_results = [r for f in findings for r in f.ablations if r.target.kind == "specialist"
                          and r.domain == "math"]
    rows.append(Row.of("ablation", "selectivity_vs_effect_rho", "all", None, selectivity_vs_effect(
        [r.target.score for r in specialist_results], [r.mean_delta_logprob for r in specialist_results])))
    hypotheses = hypotheses_table(rows, depths)
    _write_csvs(run, findings, depths, texts, encoded, clean, hypotheses)
    timing = {"sae_seconds": round(sae_seconds, 3), "read_seconds": round(read_seconds, 3),
              "analysis_seconds": round(analysis_seconds, 3)}
    groups = list(dict.fromkeys(t.group for t in texts))
    document = {
        "saes": [{"sae": f.entry.name, "layer": f.entry.layer, "rel_depth": depths[f.entry.layer],
                  "hook": f.entry.hook, "d_sae": f.entry.d_sae, "source": f.entry.source,
                  "targets": [_target(t) for t in f.targets], "group_similarity": f.group_similarity}
                 for f in findings],
        "groups": groups,
        "topics": list(dict.fromkeys(t.topic for t in texts)),
        "texts": len(texts),
        "cloze": {"items": len(spec.cloze), "scored": len(encoded), "skipped": [list(s) for s in skipped],
                  "domains": {d: sum(e.item.domain == d for e in encoded) for d in ("math", "nonmath")}},
        "settings": {"math_topic": spec.math_topic, "control_topic": spec.control_topic,
                     "ablations_per_kind": spec.ablations, "permutations": spec.permutations, "seed": spec.seed},
        "hypotheses": hypotheses,
        "model_shape": {"n_layers": parts.n_layers, "d_model": parts.d_model},
    }
    warnings = [f"{len(skipped)} cloze items could not be scored with this tokenizer"] if skipped else []
    document["warnings"] = warnings
    return Analysis(document=document, provenance=timing, summary={"hypotheses": hypotheses, **timing},
                    warnings=warnings)


def _per_sae(
    run: ModelRun, spec: SemanticsAnalysis, entry: ModelSae, texts: list[PairText], features: list[TextFeatures],
    classes: list[list[str]], encoded: list[EncodedItem], clean: ItemScores, prompts: list[TextFeatures],
) -> SaeFindings:
    loaded, name, layer = run.loaded, entry.name, entry.layer
    values = torch.stack([f.mean for f in features]).double()
    found = group_specialists(texts, values)
    masses = activation_mass(found, texts, features, classes)
    topics, forms = [t.topic for t in texts], [t.form for t in texts]
    similarity = {"sae": cosine_matrix(values), "residual": cosine_matrix(torch.stack([f.residual_mean
                                                                                       for f in features]), True)}
    clusters = {space: clustering(matrix, topics, forms, spec.permutations, spec.seed)
                for space, matrix in similarity.items()}
    fired = torch.stack([f.fired for f in features]).sum(0).double()
    frequency = fired / max(1, sum(f.n_tokens for f in features))
    targets = choose_targets(found, frequency, spec.math_topic, spec.control_topic, count=spec.ablations,
                             seed=spec.seed)
    results = ablate(loaded.model, loaded.parts, loaded.tokenizer, entry.sae, encoded, clean, targets)
    math_features = [t.feature for t in targets if t.kind == "specialist"]

    rows = [
        Row.of("H1", "form_jaccard", name, layer,
               mean_with_bootstrap([o.jaccard for o in form_overlaps(found)], spec.seed)),
        Row.of("H1", "same_form_jaccard", name, layer,
               mean_with_bootstrap([o.jaccard for o in same_form_overlaps(found)], spec.seed)),
        Row.of("H1", "syntactic_activation_share", name, layer,
               t_mean([m.syntactic for m in masses if sum(m.mass.values()) > 0], p_value=False)),
        Row.of("H1", "syntactic_share_minus_token_share", name, layer,
               t_mean([m.syntactic - m.syntactic_tokens for m in masses if sum(m.mass.values()) > 0])),
    ]
    for space, found_clusters in clusters.items():
        for c in found_clusters:
            rows.append(Row("H2", f"{c.label}_clustering_{space}", name, layer, c.effect, p_value=c.p_value,
                            n=c.pairs_within + c.pairs_across))
    for domain in ("math", "nonmath"):
        for prefix, controlled in (("activation_logprob_rho", False), ("activation_logprob_partial_rho", True)):
            rows.append(Row.of("H3", f"{prefix}_{domain}", name, layer, activation_logprob(
                encoded, prompts, clean, math_features, domain, controlled=controlled)))
    math_results = [r for r in results if r.domain == "math"]
    for r in math_results:
        if r.target.kind == "specialist":
            rows.append(Row("ablation", f"ablation_delta_f{r.target.feature}", name, layer, r.mean_delta_logprob,
                            r.ci_low, r.ci_high, r.p_value, r.items))
    specialist = [abs(r.mean_delta_logprob) for r in math_results if r.target.kind == "specialist"]
    control = [abs(r.mean_delta_logprob) for r in math_results if r.target.kind == "random"]
    noise = sum(control) / len(control) if control else math.nan
    rows.append(Row("ablation", "signal_to_noise_math", name, layer,
                    (sum(specialist) / len(specialist)) / noise if specialist and noise > 0 else math.nan,
                    n=len(specialist)))
    flips = [r.flip_rate for r in math_results if r.target.kind == "specialist"]
    rows.append(Row("ablation", "max_flip_rate_math", name, layer, max(flips) if flips else math.nan,
                    n=len(flips)))
    return SaeFindings(entry, found, masses, clusters, targets, results, rows,
                       prompt_activation(prompts, math_features), _group_similarity(similarity, texts))


def _group_similarity(similarity: dict[str, Any], texts: list[PairText]) -> dict[str, list[list[float]]]:
    """Per space, the mean similarity between the texts of each pair of groups (distinct texts), for the plots."""
    names = list(dict.fromkeys(t.group for t in texts))
    members = [[i for i, t in enumerate(texts) if t.group == g] for g in names]
    found = {}
    for space, matrix in similarity.items():
        grid = []
        for a in members:
            row = []
            for b in members:
                block = matrix[a][:, b]
                if a is b:
                    n = len(a)
                    row.append(round(float((block.sum() - block.trace()) / max(1, n * (n - 1))), 6))
                else:
                    row.append(round(float(block.mean()), 6))
            grid.append(row)
        found[space] = grid
    return found


def _target(target: Target) -> dict[str, Any]:
    return {"feature": target.feature, "kind": target.kind, "score": None if math.isnan(target.score) else
            target.score, "frequency": target.frequency, "matched_to": target.matched_to}


def _write_csvs(
    run: ModelRun, findings: list[SaeFindings], depths: dict[int, float], texts: list[PairText],
    encoded: list[EncodedItem], clean: ItemScores, hypotheses: list[dict[str, Any]],
) -> None:
    def keys(f: SaeFindings) -> dict[str, Any]:
        return {"sae": f.entry.name, "layer": f.entry.layer, "rel_depth": depths[f.entry.layer]}

    def write(kind: str, rows: list[dict[str, Any]]) -> None:
        artefacts.write_csv(run.artefact(kind), rows, schema.COLUMNS[kind])

    write(schema.SPECIALISTS, [{**keys(f), "group": g.group, "topic": g.topic, "form": g.form, "rank": rank,
                                "feature": feature, "score": score}
                               for f in findings for g in f.specialists
                               for rank, (feature, score) in enumerate(zip(g.features, g.scores, strict=True), 1)])
    write(schema.OVERLAPS, [{**keys(f), "kind": kind, "first": o.first, "second": o.second, "jaccard": o.jaccard}
                            for f in findings
                            for kind, found in (("across_forms", form_overlaps(f.specialists)),
                                                ("same_form", same_form_overlaps(f.specialists)))
                            for o in found])
    write(schema.TOKEN_CLASSES, [{**keys(f), "group": m.group, "feature": m.feature, "token_class": c,
                                  "activation_share": m.mass[c], "token_share": m.tokens[c]}
                                 for f in findings for m in f.masses for c in CLASSES])
    write(schema.SIMILARITY, [{**keys(f), "space": space, "label": c.label, "within": c.within, "across": c.across,
                               "effect": c.effect, "p_value": c.p_value, "pairs_within": c.pairs_within,
                               "pairs_across": c.pairs_across}
                              for f in findings for space, found in f.clusters.items() for c in found])
    write(schema.CLOZE, [{**keys(f), "item_id": e.item.item_id, "domain": e.item.domain, "answer": e.item.answer,
                          "answer_tokens": e.answer_length, "logprob": float(clean.logprob[i]),
                          "specialist_activation": f.activation[i]}
                         for f in findings for i, e in enumerate(encoded)])
    write(schema.ABLATION, [{**keys(f), "feature": r.target.feature, "kind": r.target.kind, "domain": r.domain,
                             "items": r.items, "mean_delta_logprob": r.mean_delta_logprob, "ci_low": r.ci_low,
                             "ci_high": r.ci_high, "p_value": r.p_value, "flip_rate": r.flip_rate,
                             "score": r.target.score, "frequency": r.target.frequency,
                             "matched_to": r.target.matched_to}
                            for f in findings for r in f.ablations])
    write(schema.HYPOTHESES, hypotheses)
