"""Train residual-stream SAEs with SAELens on token windows: read every layer's residuals once, then train epochs.

One forward pass per batch of windows reads the residual at every requested layer
(``hooks.activations.run_with_cache``); positions 1..T-1 of each window are kept
(position 0 is an attention-sink outlier, as for the lenses) and stored in memory
(``collect_residuals``; tokens x d_model x 4 bytes per layer, e.g. 0.6 GB for 250k tokens
of SmolLM2). Reading is the expensive part on a cpu (a forward pass costs ~2 x the
parameter count in flops per token), so the store is read ``epochs`` times, in a fresh
seeded order each time, the same order for every layer. SAELens's ``MultiSAETrainer``
steps one ``TopKTrainingSAE`` per layer in lockstep. Inputs are scaled to a mean norm
of sqrt(d) during training (``expected_average_only_in``, estimated on the first
``norm_batches`` batches) and the scale is folded into the weights at the end, so the
SAE reads raw residuals. A centred recipe (``SaeRecipe.centre``, chosen per residual by
``centred_where_needed``) instead starts the decoder bias at the residuals' mean and
scales by their mean distance from it.

Same windows, recipe and thread count: the same SAEs, bit for bit (the global torch
generator seeds the SAEs' initialisation, a private one the order of the batches, and
the model's forward is deterministic). wandb is never used.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from layers_core.hooks.activations import run_with_cache
from layers_core.lens.fit_progress import Progress, report
from layers_core.models.architecture import ModelParts
from layers_core.sae.sae_points import residual_hook

if TYPE_CHECKING:
    from sae_lens import SAE

ARCHITECTURES: tuple[str, ...] = ("topk",)


@dataclass(frozen=True)
class SaeRecipe:
    """How the SAEs are trained; ``as_dict()`` is part of their cache key.

    Attributes:
        architecture: ``topk`` (SAELens's ``TopKTrainingSAE``, decoder-norm-rescaled top-k).
        expansion: ``d_sae = expansion * d_model``.
        k: Active features per token.
        tokens: Distinct training tokens read from the corpus (positions 1..T-1 of each window).
        epochs: Passes over them.
        batch_tokens: Tokens per optimiser step.
        lr: Adam's learning rate (a linear warm-up of ``warmup_steps``, then constant, then a
            linear decay to zero over the last ``decay_fraction`` of the steps).
        warmup_steps: Linear warm-up steps.
        decay_fraction: Fraction of the steps over which the rate decays to zero.
        window: Tokens per corpus window.
        forward_batch: Windows per forward pass while reading residuals.
        norm_batches: Batches used to estimate the input scale (drawn from the first epoch).
        seed: Seeds the SAEs' initialisation and the order of the batches.
        dead_window: Steps without firing after which a feature counts as dead and the
            auxiliary loss (AuxK) trains it on the live features' residual error; 0 means
            half the steps (left out of ``as_dict`` then, so earlier cache keys stay valid).
        centre: Start the decoder bias at the residuals' mean and scale the inputs by their
            spread around it (``centre_and_scale``) instead of by their raw norm. Residual
            streams whose mean carries most of the norm (Gemma 3 270M: 78-94% of the squared
            norm) otherwise leave the varying part small and most features dead; where it
            carries less (SmolLM2: 4-34%) centring cost explained variance. ``centred_where_needed``
            turns it on per residual from ``mean_shares``.
    """

    architecture: str = "topk"
    expansion: int = 4
    k: int = 32
    tokens: int = 125_000
    epochs: int = 3
    batch_tokens: int = 2048
    lr: float = 1e-3
    warmup_steps: int = 10
    decay_fraction: float = 0.2
    window: int = 128
    forward_batch: int = 8
    norm_batches: int = 4
    seed: int = 0
    dead_window: int = 0
    centre: bool = False

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture {self.architecture!r} is not one of {', '.join(ARCHITECTURES)}")
        sizes = (self.expansion, self.k, self.tokens, self.epochs, self.batch_tokens, self.window - 1,
                 self.forward_batch, self.norm_batches)
        if min(sizes) < 1 or not self.lr > 0 or not 0.0 <= self.decay_fraction <= 1.0:
            raise ValueError(f"recipe sizes and lr must be positive, decay_fraction in [0, 1]: {self}")
        if self.tokens < self.batch_tokens:
            raise ValueError(f"the recipe reads {self.tokens} tokens, fewer than one batch of {self.batch_tokens}")

    @property
    def steps(self) -> int:
        """Optimiser steps per SAE."""
        return self.epochs * (self.tokens // self.batch_tokens)

    def windows_needed(self) -> int:
        """Windows holding ``tokens`` training positions."""
        return -(-self.tokens // (self.window - 1))

    def as_dict(self) -> dict[str, Any]:
        """The recipe as JSON primitives."""
        scaling = "centred, mean distance sqrt(d)" if self.centre else "expected_average_only_in"
        found = {**asdict(self), "positions": "1..T-1 of each window", "normalize_activations": scaling}
        if not self.dead_window:
            found.pop("dead_window")
        if not self.centre:
            found.pop("centre")
        return found


def residual_stream(
    model: nn.Module, parts: ModelParts, windows: Tensor, layers: Sequence[int], *, batch_size: int,
    progress: Progress | None = None, stage: str = "reading residuals",
) -> Iterator[dict[str, Tensor]]:
    """Hook name -> ``[B * (T-1), d_model]`` float32 residuals at positions 1..T-1, one batch of windows at a time."""
    hooks = [residual_hook(layer, parts.n_layers) for layer in layers]
    count = int(windows.shape[0])
    for start in range(0, count, batch_size):
        batch = windows[start:start + batch_size]
        run = run_with_cache(model, parts, batch, hooks, logits_at="none")
        yield {hook: run.cache[hook][:, 1:].float().reshape(-1, parts.d_model) for hook in hooks}
        report(progress, stage, min(start + batch_size, count), count)


CENTRE_ABOVE = 0.5  # share of the mean in the mean squared norm above which SAEs are trained centred


SHARE_WINDOWS = 32  # windows, spread evenly over the training windows, that measure the mean's share


@torch.no_grad()
def mean_shares(
    model: nn.Module, parts: ModelParts, windows: Tensor, layers: Sequence[int], *, batch_size: int = 8,
) -> dict[int, float]:
    """Residual -> ``|mean x|^2 / mean |x|^2`` over positions 1..T-1 of ``windows``."""
    hooks = {layer: residual_hook(layer, parts.n_layers) for layer in layers}
    sums = {layer: torch.zeros(parts.d_model, dtype=torch.float64) for layer in layers}
    squares = dict.fromkeys(layers, 0.0)
    rows = 0
    for batch in residual_stream(model, parts, windows, layers, batch_size=batch_size):
        for layer, hook in hooks.items():
            values = batch[hook].double().cpu()
            sums[layer] += values.sum(0)
            squares[layer] += float(values.square().sum())
        rows += int(next(iter(batch.values())).shape[0])
    return {layer: float((sums[layer] / rows).square().sum() / (squares[layer] / rows)) for layer in layers}


def spread_windows(windows: Tensor, count: int = SHARE_WINDOWS) -> Tensor:
    """``count`` windows taken at even steps through ``windows`` (the corpus's sources come in blocks)."""
    step = max(1, int(windows.shape[0]) // count)
    return windows[::step][:count]


def centred_where_needed(recipe: SaeRecipe, share: float) -> SaeRecipe:
    """The recipe, centred when the residual's mean carries more than ``CENTRE_ABOVE`` of its squared norm.

    The share is measured on ``spread_windows`` of the training windows: the first windows
    come from one source and are not typical (SmolLM2's residual 27: 0.55 on the first 32
    windows, 0.27 on 32 spread over all of them). Measured with the default recipe on the
    bundled models' held-out windows: on Gemma 3
    (shares 0.78-0.94) centring lifted explained variance at residual 9 from 0.74 to 0.90
    and loss recovered from 0.75 to 0.92; on SmolLM2 (0.04-0.34) it lowered explained
    variance by 0.05-0.08 while loss recovered rose by 0.01-0.02.
    """
    return dataclasses.replace(recipe, centre=True) if share > CENTRE_ABOVE else recipe


def _training_sae(recipe: SaeRecipe, d_model: int, hook: str, device: str) -> Any:
    from sae_lens import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    config = TopKTrainingSAEConfig(
        d_in=d_model, d_sae=recipe.expansion * d_model, k=recipe.k, dtype="float32", device=device,
        normalize_activations="expected_average_only_in", metadata=SAEMetadata(hook_name=hook),
    )
    return TopKTrainingSAE(config)


def collect_residuals(
    model: nn.Module, parts: ModelParts, windows: Tensor, layers: Sequence[int], *, batch_size: int,
    progress: Progress | None = None,
) -> dict[str, Tensor]:
    """Hook name -> ``[N * (T-1), d_model]`` float32 residuals of every window at positions 1..T-1, in order."""
    count, width = int(windows.shape[0]), int(windows.shape[1])
    hooks = [residual_hook(layer, parts.n_layers) for layer in layers]
    store = {hook: torch.empty(count * (width - 1), parts.d_model) for hook in hooks}
    offset = 0
    for batch in residual_stream(model, parts, windows, layers, batch_size=batch_size, progress=progress):
        rows = next(iter(batch.values())).shape[0]
        for hook, values in batch.items():
            store[hook][offset:offset + rows] = values
        offset += rows
    return store


def _batches(store: dict[str, Tensor], batch_tokens: int, seed: int) -> Iterator[dict[str, Tensor]]:
    """Endless shuffled batches of the store, the same rows for every hook; a fresh order each epoch."""
    count = next(iter(store.values())).shape[0]
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(count, generator=generator)
        for start in range(0, count - batch_tokens + 1, batch_tokens):
            rows = order[start:start + batch_tokens]
            yield {hook: values[rows] for hook, values in store.items()}


def train_on_residuals(
    store: dict[str, Tensor], d_model: int, recipe: SaeRecipe, *, device: str = "cpu",
) -> dict[str, SAE]:
    """One trained inference SAE per hook of ``store`` (from ``collect_residuals``), trained in lockstep."""
    from sae_lens import SAE
    from sae_lens.config import LoggingConfig, SAETrainerConfig
    from sae_lens.training.multi_sae_trainer import MultiSAETrainer

    torch.manual_seed(recipe.seed)
    names = {hook: hook for hook in store}
    saes = {hook: _training_sae(recipe, d_model, hook, device) for hook in store}
    steps = recipe.steps
    config = SAETrainerConfig(
        total_training_samples=steps * recipe.batch_tokens, train_batch_size_samples=recipe.batch_tokens,
        lr=recipe.lr, lr_end=0.0, lr_scheduler_name="constant", lr_warm_up_steps=min(recipe.warmup_steps, steps),
        lr_decay_steps=int(recipe.decay_fraction * steps), device=device,
        n_batches_for_norm_estimate=recipe.norm_batches, logger=LoggingConfig(log_to_wandb=False),
        dead_feature_window=recipe.dead_window or max(1, steps // 2), feature_sampling_window=steps,
    )
    provider = _batches(store, recipe.batch_tokens, recipe.seed)
    trainer = MultiSAETrainer(config, saes, names, provider)
    if recipe.centre:
        for hook, values in store.items():
            centre_and_scale(saes[hook], trainer.trainers[hook].activation_scaler, values)
    trained = trainer.fit()
    return {hook: _inference(sae, SAE) for hook, sae in trained.items()}


@torch.no_grad()
def centre_and_scale(sae: Any, scaler: Any, values: Tensor, chunk: int = 65_536) -> None:
    """Set ``scaler``'s input scale to sqrt(d) / the mean distance of ``values`` from their mean, and the SAE's
    decoder bias to that mean, scaled.

    The SAE subtracts its decoder bias from the input before encoding and adds it back
    after decoding, so starting it at the mean is training on centred residuals. SAELens
    keeps a scale already set instead of estimating one, and folds it into the weights
    when training ends, as for its own estimate.
    """
    total = torch.zeros(values.shape[1], dtype=torch.float64)
    for start in range(0, values.shape[0], chunk):
        total += values[start:start + chunk].double().sum(0)
    mean = total / values.shape[0]
    spread = 0.0
    for start in range(0, values.shape[0], chunk):
        spread += float((values[start:start + chunk].double() - mean).norm(dim=1).sum())
    scale = values.shape[1] ** 0.5 / (spread / values.shape[0])
    scaler.scaling_factor = scale
    sae.b_dec.data.copy_((mean * scale).to(sae.b_dec.dtype))


def train_saes(
    model: nn.Module, parts: ModelParts, windows: Tensor, layers: Sequence[int], recipe: SaeRecipe, *,
    device: str = "cpu", progress: Progress | None = None,
) -> dict[int, SAE]:
    """One trained inference SAE per residual in ``layers``, from ``windows`` (``[N, recipe.window]`` token ids).

    Raises:
        ValueError: Windows of another width, or too few for the recipe.
    """
    if windows.ndim != 2 or windows.shape[1] != recipe.window:
        raise ValueError(f"windows must be [N, {recipe.window}], got {tuple(windows.shape)}")
    if windows.shape[0] < recipe.windows_needed():
        raise ValueError(f"the recipe reads {recipe.windows_needed()} windows, got {windows.shape[0]}")
    windows = windows[: recipe.windows_needed()]
    store = collect_residuals(model, parts, windows, layers, batch_size=recipe.forward_batch, progress=progress)
    trained = train_on_residuals(store, parts.d_model, recipe, device=device)
    return {layer: trained[residual_hook(layer, parts.n_layers)] for layer in layers}


def _inference(trained: Any, sae_class: Any) -> SAE:
    """The inference SAE of a trained one (its weights, folded; no training state)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tinycave-sae-") as folder:
        trained.save_inference_model(folder)
        return sae_class.load_from_disk(folder, device=str(trained.device))
