"""The lenses a ``--lens tuned`` or ``--lens linear`` run compares: their order and names in the reports."""

from __future__ import annotations

from collections.abc import Iterable

NORM = "norm"
LENS_ORDER = (NORM, "linear", "tuned")  # the baseline first, then the fitted lenses from cheapest to dearest
LENS_NAMES = {
    NORM: "norm lens",
    "linear": "linear shortcut",
    "tuned": "tuned lens",
}
LENS_COLOURS = {NORM: "C0", "linear": "C2", "tuned": "C3"}
LENS_WHAT = {
    NORM: "the model's own final norm and unembedding applied to every layer (the standard logit lens)",
    "linear": "a least-squares linear map per layer from its residual to the last layer's, then the model's head "
              "(Yom Din et al. 2023, \"Jump to Conclusions\")",
    "tuned": "an affine translator per layer trained to minimise KL to the last layer, started from the linear "
             "shortcut, then the model's head (Belrose et al. 2023, arXiv 2303.08112)",
}


def lens_name(lens: str) -> str:
    """Readable name of a lens (``tuned`` -> ``tuned lens``); unknown lenses as ``<name> lens``."""
    return LENS_NAMES.get(lens, f"{lens} lens")


def ordered_lenses(names: Iterable[str]) -> list[str]:
    """The lenses in report order: norm, linear, tuned, then any other in the order first seen."""
    seen = list(dict.fromkeys(str(n) for n in names))
    return [n for n in LENS_ORDER if n in seen] + [n for n in seen if n not in LENS_ORDER]
