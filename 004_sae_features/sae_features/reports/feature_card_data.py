"""Feature cards as the JSON holds them (``saes[i].cards``), read into typed records and checked.

Per SAE, one card per category that has a specialist (holding or not), in category order:
``category``, ``feature``, ``holds``; ``promoted`` and ``suppressed``: the tokens whose
logits the feature's decoder direction raises or lowers most, through the final norm's
weight and the unembedding (``token``, ``value``: logit per unit activation); ``contexts``:
the top-activating slices of held-out corpus windows, strongest first (``window``,
``peak`` indexing ``tokens``/``values``, ``max``); ``texts``: the heatmap rows, test-half
category texts (``text_id``, ``category``, ``half``, ``tokens``, ``values``); ``histogram``:
per-token activations counted per bin (``edges``) for the category's texts, the other
categories' texts and the held-out corpus (``category``, ``other``, ``corpus``), zeros
counted apart (``zeros``). Anything else is refused with one phrase saying where.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

GROUPS = ("category", "other", "corpus")


class CardError(ValueError):
    """A damaged card: one short phrase saying where and what (never a token's text)."""


@dataclass(frozen=True)
class TokenValue:
    """A token the feature promotes or suppresses, with its logit per unit activation."""

    token: str
    value: float


@dataclass(frozen=True)
class CardContext:
    """A slice of a held-out corpus window around the feature's peak there."""

    window: int
    peak: int
    max: float
    tokens: tuple[str, ...]
    values: tuple[float, ...]


@dataclass(frozen=True)
class CardText:
    """One heatmap row: a category text's counted tokens and the feature's activation on each."""

    text_id: str
    category: str
    half: str
    tokens: tuple[str, ...]
    values: tuple[float, ...]


@dataclass(frozen=True)
class CardHistogram:
    """Nonzero per-token activations per bin, per group (``GROUPS``); zeros apart."""

    edges: tuple[float, ...]
    counts: dict[str, tuple[int, ...]]
    zeros: dict[str, int]


@dataclass(frozen=True)
class FeatureCard:
    """One category's specialist feature at one SAE, shown through its tokens (module doc)."""

    category: str
    feature: int
    holds: bool
    promoted: tuple[TokenValue, ...]
    suppressed: tuple[TokenValue, ...]
    contexts: tuple[CardContext, ...]
    texts: tuple[CardText, ...]
    histogram: CardHistogram

    @property
    def top_activation(self) -> float:
        """The largest activation on the card (contexts and texts): the scale its shades and heatmap share."""
        runs = [c.values for c in self.contexts] + [t.values for t in self.texts]
        return max((v for values in runs for v in values), default=0.0)


def _get(found: Any, key: str, where: str) -> Any:
    if not isinstance(found, dict) or key not in found:
        raise CardError(f"{where} has no '{key}'")
    return found[key]


def _int(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise CardError(f"{where} is not an integer")
    return value


def _number(value: Any, where: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise CardError(f"{where} is not a finite number")
    return float(value)


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise CardError(f"{where} is not a list")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise CardError(f"{where} is not a string")
    return value


def _token_values(found: Any, where: str) -> tuple[TokenValue, ...]:
    items = _list(found, where)
    return tuple(TokenValue(_str(_get(t, "token", f"{where}[{i}]"), f"{where}[{i}].token"),
                            _number(_get(t, "value", f"{where}[{i}]"), f"{where}[{i}].value"))
                 for i, t in enumerate(items))


def _run(found: Any, where: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """``tokens`` and ``values`` of a context or text: as many values as tokens, none negative."""
    tokens = tuple(_str(t, f"{where}.tokens") for t in _list(_get(found, "tokens", where), f"{where}.tokens"))
    values = tuple(_number(v, f"{where}.values") for v in _list(_get(found, "values", where), f"{where}.values"))
    if len(values) != len(tokens):
        raise CardError(f"{where} has {len(values)} values for {len(tokens)} tokens")
    if any(v < 0 for v in values):
        raise CardError(f"{where} has a negative activation")
    return tokens, values


def _context(found: Any, where: str) -> CardContext:
    tokens, values = _run(found, where)
    peak = _int(_get(found, "peak", where), f"{where}.peak")
    if not 0 <= peak < len(tokens):
        raise CardError(f"{where} has peak {peak} outside its {len(tokens)} tokens")
    return CardContext(_int(_get(found, "window", where), f"{where}.window"), peak,
                       _number(_get(found, "max", where), f"{where}.max"), tokens, values)


def _text(found: Any, where: str) -> CardText:
    tokens, values = _run(found, where)
    text_id, category, half = (_str(_get(found, k, where), f"{where}.{k}") for k in ("text_id", "category", "half"))
    return CardText(text_id, category, half, tokens, values)


def _counts(found: Any, where: str) -> tuple[int, ...]:
    counts = tuple(_int(c, where) for c in _list(found, where))
    if any(c < 0 for c in counts):
        raise CardError(f"{where} has a negative count")
    return counts


def _histogram(found: Any, where: str) -> CardHistogram:
    edges = tuple(_number(e, f"{where}.edges") for e in _list(_get(found, "edges", where), f"{where}.edges"))
    if len(edges) < 2 or any(b < a for a, b in zip(edges, edges[1:], strict=False)):
        raise CardError(f"{where}.edges are not at least two ascending numbers")
    counts = {g: _counts(_get(found, g, where), f"{where}.{g}") for g in GROUPS}
    if any(len(c) != len(edges) - 1 for c in counts.values()):
        raise CardError(f"{where} does not have one count per bin of its {len(edges)} edges")
    zeros = _get(found, "zeros", where)
    return CardHistogram(edges, counts, {g: _counts([_get(zeros, g, f"{where}.zeros")], f"{where}.zeros.{g}")[0]
                                         for g in GROUPS})


def read_card(found: Any, where: str) -> FeatureCard:
    """One card of the JSON as a ``FeatureCard``; ``where`` names it in the error.

    Raises:
        CardError: a field is missing or of the wrong kind, values and tokens differ in length, a peak or a
            histogram does not fit.
    """
    holds = _get(found, "holds", where)
    if not isinstance(holds, bool):
        raise CardError(f"{where}.holds is not true or false")
    return FeatureCard(
        category=_str(_get(found, "category", where), f"{where}.category"),
        feature=_int(_get(found, "feature", where), f"{where}.feature"), holds=holds,
        promoted=_token_values(_get(found, "promoted", where), f"{where}.promoted"),
        suppressed=_token_values(_get(found, "suppressed", where), f"{where}.suppressed"),
        contexts=tuple(_context(c, f"{where}.contexts[{i}]")
                       for i, c in enumerate(_list(_get(found, "contexts", where), f"{where}.contexts"))),
        texts=tuple(_text(t, f"{where}.texts[{i}]")
                    for i, t in enumerate(_list(_get(found, "texts", where), f"{where}.texts"))),
        histogram=_histogram(_get(found, "histogram", where), f"{where}.histogram"))


def read_cards(entry: dict[str, Any], categories: list[str]) -> list[FeatureCard]:
    """One SAE entry's cards, checked against its specialists: one per category with one, in category order.

    Raises:
        CardError: the entry has no ``cards``, a card is damaged, or the cards are not its specialists'.
    """
    where = f"residual {entry.get('layer')}"
    cards = [read_card(c, f"{where} card {i}") for i, c in enumerate(_list(_get(entry, "cards", where),
                                                                          f"{where} 'cards'"))]
    specialists = dict(entry.get("specialists") or {})
    wanted = [(c, s.get("feature"), s.get("holds")) for c in categories if isinstance(s := specialists.get(c), dict)]
    if [(c.category, c.feature, c.holds) for c in cards] != wanted:
        raise CardError(f"{where}: the cards are not one per category with a specialist, in category order, with "
                        "the specialist's feature and holds")
    return cards
