"""A tuned lens or linear shortcut for a loaded model, in one call: corpus windows, recipe, cache, fit on first use.

``fitted_lenses(loaded, kind)`` returns the model's maps of that kind, fitted on the
bundled corpus's training documents (``layers_core.corpus``: its document-level
train / held-out split, sources mixed by ``SOURCE_SHARES``) and kept in the user cache
(``lens_cache``), keyed by the model's fingerprint, the corpus's fingerprint and the
recipe. The tuned lens starts from the linear shortcut (fitted first, cached too).
``heldout_windows(loaded)`` gives the held-out text every lens is compared on.

The recipe (``FIT_PLAN``) was chosen by measurement within the issue's budget of about
ten minutes per bundled model on two cores (``bench/lens_fit.py``; NOTES.md, issue 14).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from layers_core.corpus import SOURCE_SHARES, Corpus, bundled_corpus, split_documents, token_windows
from layers_core.lens.fit_progress import Progress
from layers_core.lens.lens_cache import fitted_maps, maps_path, model_fingerprint
from layers_core.lens.linear_shortcut import DEFAULT_RIDGE, fit_linear_shortcut
from layers_core.lens.translators import LensIdentity, LensKind, LensMaps
from layers_core.lens.tuned_fit import TunedRecipe, fit_tuned_lens, tuned_recipe_dict
from layers_core.models.architecture import ModelParts
from layers_core.models.loading import LoadedModel

# The tuned lens's cost per position and step is ~4 * V * d flops per layer: the head dominates. Models
# whose head over all layers (V * d * L) is above this get the cheaper recipe (Gemma-3-270M: 3.0e9;
# SmolLM2-135M: 0.85e9), so a first fit stays within about ten minutes on two cpu cores.
LARGE_HEAD_FLOPS = 1.5e9
SMALL_HEAD_RECIPE = TunedRecipe(positions=1024, steps=48, batch_size=32, lr=1e-3, init="linear")
LARGE_HEAD_RECIPE = TunedRecipe(positions=512, steps=12, batch_size=32, lr=1e-4, init="linear")


@dataclass(frozen=True)
class FitPlan:
    """How much text each fit reads, and the tuned lens's training recipe by the size of the model's head.

    Attributes:
        window: Tokens per window.
        linear_windows: Training windows of the linear shortcut.
        tuned_windows: Training windows the tuned lens draws its positions from (small head, large head).
        heldout_windows: Held-out windows the lenses are compared on (small head, large head: the
            comparison decodes every layer over the whole vocabulary, ~3 lenses x L x V x d per position).
        forward_batch: Windows per forward pass.
        small_head: The tuned lens's recipe for a head of at most ``LARGE_HEAD_FLOPS``.
        large_head: Its recipe above that.
    """

    window: int = 128
    linear_windows: int = 48
    tuned_windows: tuple[int, int] = (16, 8)
    heldout_windows: tuple[int, int] = (6, 2)
    forward_batch: int = 8
    small_head: TunedRecipe = field(default_factory=lambda: SMALL_HEAD_RECIPE)
    large_head: TunedRecipe = field(default_factory=lambda: LARGE_HEAD_RECIPE)

    def linear_recipe(self) -> dict[str, Any]:
        """The linear shortcut's recipe, as stored in its identity."""
        return {"windows": self.linear_windows, "window": self.window, "ridge": DEFAULT_RIDGE,
                "source_shares": dict(sorted(SOURCE_SHARES.items())), "skip_first_position": True}

    def is_large(self, parts: ModelParts) -> bool:
        """Whether the model's head over every layer is above ``LARGE_HEAD_FLOPS``."""
        return parts.vocab_size * parts.d_model * parts.n_layers > LARGE_HEAD_FLOPS

    def tuned_recipe(self, parts: ModelParts) -> TunedRecipe:
        """The tuned lens's recipe for this model."""
        return self.large_head if self.is_large(parts) else self.small_head

    def heldout_window_count(self, parts: ModelParts) -> int:
        """How many held-out windows the lenses are compared on for this model."""
        return self.heldout_windows[1] if self.is_large(parts) else self.heldout_windows[0]

    def tuned_window_count(self, parts: ModelParts) -> int:
        """How many training windows the tuned lens draws from for this model."""
        return self.tuned_windows[1] if self.is_large(parts) else self.tuned_windows[0]


FIT_PLAN = FitPlan()


@dataclass(frozen=True)
class FittedLens:
    """A model's maps and how they were obtained (for the run's JSON)."""

    maps: LensMaps
    cache: str  # "hit", "fitted" or "refitted"
    seconds: float
    path: str

    def describe(self) -> dict[str, Any]:
        """Provenance of the maps: kind, cache state, fit seconds, file, recipe, corpus."""
        identity = self.maps.identity
        return {"kind": identity.kind, "cache": self.cache, "seconds": round(self.seconds, 3), "path": self.path,
                "model_fingerprint": identity.model, "corpus_fingerprint": identity.corpus,
                "recipe": identity.recipe}


def _windows(loaded: LoadedModel, corpus: Corpus, heldout: bool, count: int, plan: FitPlan) -> Tensor:
    train, held = split_documents(corpus)
    return token_windows(loaded.tokenizer, held if heldout else train, plan.window, count * plan.window,
                         SOURCE_SHARES)


def heldout_windows(loaded: LoadedModel, plan: FitPlan = FIT_PLAN) -> Tensor:
    """The held-out windows the lenses are compared on (never seen by any fit)."""
    return _windows(loaded, bundled_corpus(), True, plan.heldout_window_count(loaded.parts), plan)


def fitted_lenses(
    loaded: LoadedModel, kind: LensKind, *, plan: FitPlan = FIT_PLAN, progress: Progress | None = None,
    status: Callable[[str], None] = lambda line: None,
) -> dict[LensKind, FittedLens]:
    """The model's ``kind`` maps from the cache, or fitted now, with the linear shortcut they start from.

    Returns ``{"linear": ...}`` for ``kind`` linear, ``{"linear": ..., "tuned": ...}`` for tuned (the tuned
    lens is trained from the linear shortcut, so both are at hand and both are compared).
    """
    corpus = bundled_corpus()
    corpus_fingerprint = corpus.fingerprint()
    parts, model = loaded.parts, loaded.model
    fingerprint = model_fingerprint(loaded)
    linear_id = LensIdentity("linear", fingerprint, corpus_fingerprint, plan.linear_recipe(),
                             parts.n_layers, parts.d_model)
    started = time.perf_counter()

    def fit_linear() -> LensMaps:
        status(f"fitting the linear shortcut on {plan.linear_windows} x {plan.window} tokens of the bundled corpus")
        windows = _windows(loaded, corpus, False, plan.linear_windows, plan)
        return fit_linear_shortcut(model, parts, windows, linear_id, batch_size=plan.forward_batch,
                                   progress=progress)

    linear, linear_state = fitted_maps(linear_id, fit_linear, status)
    found: dict[LensKind, FittedLens] = {
        "linear": FittedLens(linear, linear_state, time.perf_counter() - started, str(maps_path(linear_id)))}
    if kind == "linear":
        return found
    started = time.perf_counter()
    recipe = plan.tuned_recipe(parts)
    tuned_id = LensIdentity("tuned", fingerprint, corpus_fingerprint, tuned_recipe_dict(recipe, linear),
                            parts.n_layers, parts.d_model)

    def fit_tuned() -> LensMaps:
        status(f"fitting the tuned lens ({recipe.steps} steps on {recipe.positions} positions; "
               "minutes on a cpu, once per model)")
        windows = _windows(loaded, corpus, False, plan.tuned_window_count(parts), plan)
        return fit_tuned_lens(model, parts, windows, tuned_id, recipe, init=linear, progress=progress)

    tuned, tuned_state = fitted_maps(tuned_id, fit_tuned, status)
    found["tuned"] = FittedLens(tuned, tuned_state, time.perf_counter() - started, str(maps_path(tuned_id)))
    return found
