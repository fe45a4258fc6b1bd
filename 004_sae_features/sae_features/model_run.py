"""Experiment 004's analysis of one loaded model: its SAEs, their quality, feature activity, discovery, specialists.

Outline: the SAEs (``layers_core.sae.model_saes``: trained here and cached, or loaded);
their quality on held-out corpus windows (``sae_quality``; kept in a trained SAE's cache
entry, ``quality_cache``, so a second run reads it); the category texts through
every SAE in one pass per batch (``layers_core.sae.text_features``); per SAE the four discovery
criteria (``discovery``) and each category's specialist, found on one half and tested on
the other (``specialists``); the CSVs; the JSON fields. The loop around it (load, skip or
fail with a reason, write the JSON, free the memory) is ``layers_core.runs.model_loop``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from layers_core.corpus import load_corpus, source_shares, split_documents, token_windows
from layers_core.lens.fit_progress import stderr_progress
from layers_core.metrics import rel_depth
from layers_core.runs import artefacts
from layers_core.runs.model_loop import Analysis, ModelRun
from layers_core.sae.model_saes import ModelSae, model_saes
from layers_core.sae.quality_cache import cached_quality, quality_key
from layers_core.sae.sae_quality import DENSE_THRESHOLD, SaeQuality, sae_quality
from layers_core.sae.sae_sources import SaeSource
from layers_core.sae.sae_training import SaeRecipe
from layers_core.sae.text_features import TextFeatures, text_features
from sae_features import artefact_schema
from sae_features.category_texts import CategoryText, categories
from sae_features.discovery import MIN_TEXTS_SELECTIVE, Discovery, LayerTable, discover, feature_rows
from sae_features.feature_cards import feature_card
from sae_features.feature_contexts import corpus_activations, top_contexts
from sae_features.specialists import (
    MIN_AUROC,
    MIN_PRECISION,
    MIN_PRESENCE,
    SPECIALIST_RULE,
    Specialist,
    category_specialists,
)

MIN_EXPLAINED_VARIANCE = 0.8
MIN_LOSS_RECOVERED = 0.9


@dataclass(frozen=True)
class SaeFeaturesAnalysis:
    """What 004 measures on every model. Called by the model loop with each loaded model (``analysis(run)``)."""

    sources: Sequence[SaeSource]
    layers: Sequence[int] | None
    recipe: SaeRecipe
    corpus: str
    texts: Sequence[CategoryText]
    quality_windows: int = 32

    def __call__(self, run: ModelRun) -> Analysis:
        """Analyse one loaded model and write its CSVs; return its JSON fields."""
        return _analyse(run, self)


@dataclass(frozen=True)
class SaeResult:
    """Everything 004 found for one SAE."""

    entry: ModelSae
    quality: SaeQuality
    table: LayerTable
    discovery: Discovery
    feature_rows: list[dict[str, Any]]
    specialists: list[Specialist | None]


def _analyse(run: ModelRun, spec: SaeFeaturesAnalysis) -> Analysis:
    loaded, parts = run.loaded, run.loaded.parts
    corpus = load_corpus(spec.corpus)
    started = time.perf_counter()
    saes = model_saes(loaded, spec.sources, layers=spec.layers, recipe=spec.recipe, corpus=corpus,
                      status=run.status, progress=stderr_progress())
    sae_seconds = time.perf_counter() - started
    started = time.perf_counter()
    _, heldout_docs = split_documents(corpus)
    heldout = token_windows(loaded.tokenizer, heldout_docs, spec.recipe.window,
                            spec.quality_windows * spec.recipe.window, source_shares(corpus))
    by_layer = {e.layer: e.sae for e in saes}
    folders = {e.layer: Path(e.source["folder"]) if e.source["kind"] == "train" else None for e in saes}

    def measure(layers: Sequence[int]) -> list[SaeQuality]:
        return sae_quality(loaded.model, parts, {layer: by_layer[layer] for layer in layers}, heldout, batch_size=4,
                           progress=stderr_progress())

    quality = cached_quality(folders, quality_key(heldout, loaded.plan.device, loaded.plan.dtype), measure)
    quality_seconds = time.perf_counter() - started
    started = time.perf_counter()
    texts = list(spec.texts)
    features = text_features(loaded.model, parts, loaded.tokenizer, [t.text for t in texts],
                             {e.layer: e.sae for e in saes})
    names = categories(texts)
    labels, halves = [t.category for t in texts], [t.half for t in texts]
    results = []
    for entry, q in zip(saes, quality, strict=True):
        table = LayerTable.of(features[entry.layer])
        found = discover(table, labels, names)
        results.append(SaeResult(entry, q, table, found, feature_rows(table, labels, names, found),
                                 category_specialists(names, labels, halves, table.values)))
    feature_seconds = time.perf_counter() - started
    started = time.perf_counter()
    cards = _cards(run, results, texts, features, heldout)
    card_seconds = time.perf_counter() - started

    keys = {entry.layer: _keys(entry, parts.n_layers) for entry in saes}
    artefacts.write_csv(run.artefact(artefact_schema.SAE_QUALITY),
                        [{**keys[r.entry.layer], **_quality_row(r.quality)} for r in results],
                        artefact_schema.sae_quality_columns())
    artefacts.write_csv(run.artefact(artefact_schema.FEATURES),
                        [{**keys[r.entry.layer], **row} for r in results for row in r.feature_rows],
                        artefact_schema.features_columns())
    artefacts.write_csv(run.artefact(artefact_schema.SPECIALISTS),
                        [{**keys[r.entry.layer], **s.as_row()} for r in results for s in r.specialists if s],
                        artefact_schema.specialists_columns())
    artefacts.write_csv(run.artefact(artefact_schema.TEXT_ACTIVITY),
                        [{**keys[r.entry.layer], **_activity_row(t, f, r.entry.d_sae)}
                         for r in results for t, f in zip(texts, features[r.entry.layer], strict=True)],
                        artefact_schema.text_activity_columns())

    depth = [{"layer": r.entry.layer, "rel_depth": keys[r.entry.layer]["rel_depth"],
              "categories_with_specialist": sum(1 for s in r.specialists if s and s.holds), "categories": len(names)}
             for r in results]
    document = {
        "saes": [{**keys[r.entry.layer], "d_sae": r.entry.d_sae, "source": r.entry.source,
                  "quality": _quality_row(r.quality), "activity": _activity(r.table, r.entry.d_sae),
                  "discovery": r.discovery.as_dict(),
                  "specialists": {name: (s.as_row() if s else None)
                                  for name, s in zip(names, r.specialists, strict=True)},
                  "cards": cards[r.entry.layer]}
                 for r in results],
        "categories": {name: labels.count(name) for name in names},
        "specialist_rule": SPECIALIST_RULE,
        "depth": depth,
        "quality_thresholds": {"explained_variance": MIN_EXPLAINED_VARIANCE, "ce_loss_recovered": MIN_LOSS_RECOVERED},
        "rules": {"specialist_min_auroc": MIN_AUROC, "specialist_min_precision": MIN_PRECISION,
                  "specialist_min_presence": MIN_PRESENCE, "dense_threshold": DENSE_THRESHOLD,
                  "selective_min_texts": MIN_TEXTS_SELECTIVE},
        "model_shape": {"n_layers": parts.n_layers, "d_model": parts.d_model},
    }
    timing = {"sae_seconds": round(sae_seconds, 3), "quality_seconds": round(quality_seconds, 3),
              "feature_seconds": round(feature_seconds, 3), "card_seconds": round(card_seconds, 3)}
    warnings = _quality_warnings(quality)
    document["warnings"] = warnings
    return Analysis(document=document, provenance={**timing, "corpus": corpus.name,
                                                   "corpus_fingerprint": corpus.fingerprint()},
                    summary={"depth": depth, "quality": [_quality_row(q) for q in quality], **timing},
                    warnings=warnings)


def _cards(run: ModelRun, results: Sequence[SaeResult], texts: Sequence[CategoryText],
           features: dict[int, list[TextFeatures]], heldout: Tensor) -> dict[int, list[dict[str, Any]]]:
    """Residual index -> the cards of its SAE's specialists, in category order (``feature_cards``)."""
    loaded = run.loaded
    chosen = {r.entry.layer: [s.feature for s in r.specialists if s] for r in results}
    corpus = corpus_activations(loaded.model, loaded.parts, heldout, {r.entry.layer: r.entry.sae for r in results},
                                chosen)
    cards: dict[int, list[dict[str, Any]]] = {}
    for r in results:
        found = [s for s in r.specialists if s]
        cards[r.entry.layer] = [
            feature_card(s, loaded.parts, loaded.tokenizer, r.entry.sae, texts, features[r.entry.layer],
                         top_contexts(heldout, corpus[r.entry.layer][..., column]), corpus[r.entry.layer][..., column])
            for column, s in enumerate(found)]
    return cards


def _keys(entry: ModelSae, n_layers: int) -> dict[str, Any]:
    return {"sae": entry.name, "layer": entry.layer, "rel_depth": rel_depth(entry.layer, n_layers),
            "hook": entry.hook}


def _quality_row(quality: SaeQuality) -> dict[str, Any]:
    row = quality.as_row()
    row.pop("layer")
    row.pop("hook")
    return row


def _activity(table: LayerTable, d_sae: int) -> dict[str, Any]:
    """Across every text: features that fire anywhere, and active features per token (the seed's sparsity)."""
    active = int(((table.fired > 0).sum(0) > 0).sum())
    tokens = int(table.tokens.sum())
    return {"features_active": active, "features_active_frac": active / d_sae, "sparsity": 1 - active / d_sae,
            "active_per_token": float(table.fired.sum()) / max(1, tokens), "tokens": tokens}


def _activity_row(text: CategoryText, features: TextFeatures, d_sae: int) -> dict[str, Any]:
    active = int((features.fired > 0).sum())
    top = int(features.mean.argmax()) if features.n_tokens else None
    return {"text_id": text.text_id, "category": text.category, "half": text.half, "tokens": features.n_tokens,
            "l0": float(features.fired.sum()) / max(1, features.n_tokens),
            "features_active": active, "features_active_frac": active / d_sae,
            "top_feature": top, "top_feature_mean": float(features.mean[top]) if top is not None else None}


def _quality_warnings(quality: Sequence[SaeQuality]) -> list[str]:
    warnings = []
    for q in quality:
        if not (q.explained_variance >= MIN_EXPLAINED_VARIANCE and q.ce_loss_recovered >= MIN_LOSS_RECOVERED):
            warnings.append(f"the SAE on residual {q.layer} is weak (explained variance {q.explained_variance:.2f}, "
                            f"loss recovered {q.ce_loss_recovered:.2f}; wanted >= {MIN_EXPLAINED_VARIANCE} and "
                            f">= {MIN_LOSS_RECOVERED}): read its features with care")
    return warnings
