"""A feature card per specialist: what its decoder writes, where it fires in held-out text, and how strongly.

A card (a JSON-ready dict, drawn by ``reports.feature_cards`` and the heatmap and
histogram plots) holds:

- ``promoted`` / ``suppressed``: the ``CARD_TOKENS`` tokens whose logits its decoder
  direction raises or lowers most through the final norm's weight and the unembedding
  (``layers_core.sae.feature_logits``);
- ``contexts``: its top-activating held-out corpus contexts (``feature_contexts``);
- ``texts``: heatmap rows: the ``HEATMAP_TEXTS`` test-half texts of its own category where
  it peaks highest, then the test-half text of another category where it peaks highest,
  if it fires on one (a false positive to look at);
- ``histogram``: its per-token activations in ``HISTOGRAM_BINS`` equal bins from 0 to its
  largest value, counted separately over its category's texts, the other categories'
  texts and the corpus tokens; tokens where it is zero are counted apart.

Values are rounded to ``DECIMALS`` decimals: a card is for reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from layers_core.models.architecture import ModelParts
from layers_core.sae.feature_logits import TokenEffect, promoted_and_suppressed
from layers_core.sae.text_features import TextFeatures
from sae_features.category_texts import CategoryText
from sae_features.feature_contexts import Context
from sae_features.specialists import Specialist

CARD_TOKENS = 10
HEATMAP_TEXTS = 3
HISTOGRAM_BINS = 20
DECIMALS = 4


def _round(values: Sequence[float] | Tensor) -> list[float]:
    return [round(float(v), DECIMALS) for v in values]


def _decode(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    return [tokenizer.decode([int(i)]) for i in ids]


def _effects(found: list[TokenEffect]) -> list[dict[str, Any]]:
    return [{"token": e.token, "value": round(e.value, DECIMALS)} for e in found]


def _heatmap_texts(spec: Specialist, texts: Sequence[CategoryText], values: list[Tensor],
                   tokenizer: Any, features: Sequence[TextFeatures]) -> list[dict[str, Any]]:
    def peak(i: int) -> float:
        return float(values[i].max()) if values[i].numel() else 0.0

    tests = [i for i, t in enumerate(texts) if t.half == "test" and features[i].n_tokens]
    own = sorted((i for i in tests if texts[i].category == spec.category), key=lambda i: (-peak(i), i))
    other = sorted((i for i in tests if texts[i].category != spec.category and peak(i) > 0),
                   key=lambda i: (-peak(i), i))
    return [{"text_id": texts[i].text_id, "category": texts[i].category, "half": texts[i].half,
             "tokens": _decode(tokenizer, features[i].token_ids), "values": _round(values[i])}
            for i in own[:HEATMAP_TEXTS] + other[:1]]


def _histogram(groups: dict[str, Tensor]) -> dict[str, Any]:
    top = max((float(v.max()) for v in groups.values() if v.numel()), default=0.0)
    edges = torch.linspace(0.0, top if top > 0 else 1.0, HISTOGRAM_BINS + 1, dtype=torch.float64)
    found: dict[str, Any] = {"edges": [float(f"{float(e):.6g}") for e in edges]}  # never collapsed by rounding
    for name, values in groups.items():
        firing = values[values > 0].double()
        found[name] = [int(c) for c in torch.histc(firing, HISTOGRAM_BINS, 0.0, float(edges[-1]))] \
            if firing.numel() else [0] * HISTOGRAM_BINS
    found["zeros"] = {name: int((values <= 0).sum()) for name, values in groups.items()}
    return found


def feature_card(
    spec: Specialist, parts: ModelParts, tokenizer: Any, sae: Any, texts: Sequence[CategoryText],
    features: Sequence[TextFeatures], contexts: Sequence[Context], corpus_values: Tensor,
) -> dict[str, Any]:
    """One specialist's card (module doc).

    Args:
        spec: The specialist.
        parts: The model's parts (final norm, unembedding).
        tokenizer: Its tokenizer (token strings).
        sae: The SAE the feature belongs to.
        texts: The category texts, in the order of ``features``.
        features: Each text's ``TextFeatures`` under this SAE.
        contexts: The feature's top corpus contexts.
        corpus_values: Its activation at every held-out corpus token (any shape).
    """
    values = [f.values_of(spec.feature) for f in features]
    promoted, suppressed = promoted_and_suppressed(parts, tokenizer, sae.W_dec[spec.feature], CARD_TOKENS)
    own = [v for v, t in zip(values, texts, strict=True) if t.category == spec.category]
    other = [v for v, t in zip(values, texts, strict=True) if t.category != spec.category]
    return {
        "category": spec.category, "feature": spec.feature, "holds": spec.holds,
        "promoted": _effects(promoted), "suppressed": _effects(suppressed),
        "contexts": [{"window": c.window, "peak": c.peak, "max": round(c.max, DECIMALS),
                      "tokens": _decode(tokenizer, c.token_ids), "values": _round(c.values)} for c in contexts],
        "texts": _heatmap_texts(spec, texts, values, tokenizer, features),
        "histogram": _histogram({"category": torch.cat(own) if own else torch.zeros(0),
                                 "other": torch.cat(other) if other else torch.zeros(0),
                                 "corpus": corpus_values.reshape(-1)}),
    }
