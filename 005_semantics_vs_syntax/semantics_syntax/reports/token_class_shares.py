"""Where the specialists' activation falls by token class, averaged per SAE, from the token-classes CSV.

Per SAE: over its specialists that fire at all on their group's texts (a specialist
that never fires has every share 0 and is left out, as ``model_run`` leaves it out of
``syntactic_activation_share``), the mean share of activation on each token class, next
to the mean share of the tokens themselves in that class on the same groups' texts.
A class that takes more of the activation than of the tokens is one the specialists
prefer; ``SYNTACTIC`` (``token_classes``) are the classes that carry form.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from semantics_syntax.token_classes import CLASSES, SYNTACTIC


@dataclass(frozen=True)
class ClassShares:
    """One SAE's mean shares by token class."""

    layer: int
    specialists: int  # rows of (group, feature) in the CSV
    fired: int  # of them, how many fire at all (the ones averaged)
    activation: dict[str, float]  # class -> mean activation share
    tokens: dict[str, float]  # class -> mean token share

    def syntactic(self, shares: dict[str, float]) -> float:
        """The summed share of the syntactic classes in ``shares``."""
        return sum(v for c, v in shares.items() if c in SYNTACTIC)


def classes_of(table: pd.DataFrame) -> list[str]:
    """The token classes in the CSV: ``CLASSES`` order, then any other in file order."""
    found = list(dict.fromkeys(str(c) for c in table["token_class"]))
    return [c for c in CLASSES if c in found] + [c for c in found if c not in CLASSES]


def class_shares(table: pd.DataFrame, layer: int) -> ClassShares:
    """``ClassShares`` of one SAE from the token-classes CSV (module doc)."""
    rows = table[table["layer"] == layer]
    classes = classes_of(table)
    # (group, feature) -> class -> (activation share, token share)
    per: dict[tuple[str, int], dict[str, tuple[float, float]]] = {}
    for group, feature, c, activation, tokens in zip(rows["group"], rows["feature"], rows["token_class"],
                                                     rows["activation_share"], rows["token_share"], strict=True):
        per.setdefault((str(group), int(feature)), {})[str(c)] = (float(activation), float(tokens))
    fired = [shares for shares in per.values() if sum(a for a, _ in shares.values()) > 0]

    def mean(which: int) -> dict[str, float]:
        if not fired:
            return dict.fromkeys(classes, float("nan"))
        return {c: sum(shares.get(c, (0.0, 0.0))[which] for shares in fired) / len(fired) for c in classes}

    return ClassShares(layer, len(per), len(fired), mean(0), mean(1))
