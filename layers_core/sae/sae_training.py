"""Train residual-stream SAEs with SAELens on token windows, every requested layer from one stream of forward passes.

One forward pass per batch of windows reads the residual at every requested layer
(``hooks.activations.run_with_cache``); positions 1..T-1 of each window are kept
(position 0 is an attention-sink outlier, as for the lenses). SAELens's
``multi_hook_concat_split_iter`` shuffles them in a mixing buffer, shared across
layers, and its ``MultiSAETrainer`` steps one ``TopKTrainingSAE`` per layer in lockstep.
Inputs are scaled to a mean norm of sqrt(d) during training
(``expected_average_only_in``, estimated on the first ``norm_batches`` batches) and
the scale is folded into the weights at the end, so the SAE reads raw residuals.

Same windows, recipe and thread count: the same SAEs, bit for bit (the global torch
generator is seeded from the recipe, and the model's forward is deterministic).
wandb is never used.
"""

from __future__ import annotations

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
        tokens: Training tokens per SAE.
        batch_tokens: Tokens per optimiser step.
        lr: Adam's learning rate (constant after a warm-up of ``warmup_steps``, then decayed
            linearly to zero over the last ``decay_fraction`` of the steps).
        warmup_steps: Linear warm-up steps.
        decay_fraction: Fraction of the steps over which the rate decays to zero.
        window: Tokens per corpus window.
        forward_batch: Windows per forward pass.
        buffer_batches: Mixing-buffer size, in batches.
        norm_batches: Batches used to estimate the input scale (not trained on).
        seed: Seeds the SAE's initialisation and the buffer's shuffles.
    """

    architecture: str = "topk"
    expansion: int = 8
    k: int = 32
    tokens: int = 1_000_000
    batch_tokens: int = 4096
    lr: float = 4e-4
    warmup_steps: int = 10
    decay_fraction: float = 0.2
    window: int = 128
    forward_batch: int = 8
    buffer_batches: int = 16
    norm_batches: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture {self.architecture!r} is not one of {', '.join(ARCHITECTURES)}")
        sizes = (self.expansion, self.k, self.tokens, self.batch_tokens, self.window - 1, self.forward_batch,
                 self.buffer_batches, self.norm_batches)
        if min(sizes) < 1 or not self.lr > 0 or not 0.0 <= self.decay_fraction <= 1.0:
            raise ValueError(f"recipe sizes and lr must be positive, decay_fraction in [0, 1]: {self}")

    @property
    def steps(self) -> int:
        """Optimiser steps per SAE."""
        return max(1, self.tokens // self.batch_tokens)

    def windows_needed(self) -> int:
        """Windows the stream reads: training, scale estimate and the buffer's fill, with a batch to spare."""
        tokens = (self.steps + self.norm_batches + self.buffer_batches + 1) * self.batch_tokens
        return -(-tokens // (self.window - 1))

    def as_dict(self) -> dict[str, Any]:
        """The recipe as JSON primitives."""
        return {**asdict(self), "positions": "1..T-1 of each window",
                "normalize_activations": "expected_average_only_in"}


def residual_stream(
    model: nn.Module, parts: ModelParts, windows: Tensor, layers: Sequence[int], *, batch_size: int,
    progress: Progress | None = None, stage: str = "reading residuals",
) -> Iterator[dict[str, Tensor]]:
    """Hook name -> ``[B * (T-1), d_model]`` float32 residuals at positions 1..T-1, one batch of windows at a time."""
    hooks = [residual_hook(layer, parts.n_layers) for layer in layers]
    count = int(windows.shape[0])
    for start in range(0, count, batch_size):
        batch = windows[start:start + batch_size]
        run = run_with_cache(model, parts, batch, hooks, logits_at="last")
        yield {hook: run.cache[hook][:, 1:].float().reshape(-1, parts.d_model) for hook in hooks}
        report(progress, stage, min(start + batch_size, count), count)


def _training_sae(recipe: SaeRecipe, d_model: int, hook: str, device: str) -> Any:
    from sae_lens import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    config = TopKTrainingSAEConfig(
        d_in=d_model, d_sae=recipe.expansion * d_model, k=recipe.k, dtype="float32", device=device,
        normalize_activations="expected_average_only_in", metadata=SAEMetadata(hook_name=hook),
    )
    return TopKTrainingSAE(config)


def train_saes(
    model: nn.Module, parts: ModelParts, windows: Tensor, layers: Sequence[int], recipe: SaeRecipe, *,
    device: str = "cpu", progress: Progress | None = None,
) -> dict[int, SAE]:
    """One trained inference SAE per residual in ``layers``, from ``windows`` (``[N, recipe.window]`` token ids).

    Raises:
        ValueError: Windows of another width, or too few for the recipe.
    """
    from sae_lens import SAE
    from sae_lens.config import LoggingConfig, SAETrainerConfig
    from sae_lens.training.mixing_buffer import multi_hook_concat_split_iter
    from sae_lens.training.multi_sae_trainer import MultiSAETrainer

    if windows.ndim != 2 or windows.shape[1] != recipe.window:
        raise ValueError(f"windows must be [N, {recipe.window}], got {tuple(windows.shape)}")
    if windows.shape[0] < recipe.windows_needed():
        raise ValueError(f"the recipe reads {recipe.windows_needed()} windows, got {windows.shape[0]}")
    torch.manual_seed(recipe.seed)
    hooks = {str(layer): residual_hook(layer, parts.n_layers) for layer in layers}
    saes = {name: _training_sae(recipe, parts.d_model, hook, device) for name, hook in hooks.items()}
    stream = residual_stream(model, parts, windows, layers, batch_size=recipe.forward_batch, progress=progress,
                             stage="training SAEs")
    provider = multi_hook_concat_split_iter(recipe.buffer_batches * recipe.batch_tokens, recipe.batch_tokens,
                                            stream, list(hooks.values()))
    steps = recipe.steps
    config = SAETrainerConfig(
        total_training_samples=steps * recipe.batch_tokens, train_batch_size_samples=recipe.batch_tokens,
        lr=recipe.lr, lr_end=0.0, lr_scheduler_name="constant", lr_warm_up_steps=min(recipe.warmup_steps, steps),
        lr_decay_steps=int(recipe.decay_fraction * steps), device=device,
        n_batches_for_norm_estimate=recipe.norm_batches, logger=LoggingConfig(log_to_wandb=False),
        dead_feature_window=max(1, steps // 2), feature_sampling_window=steps,
    )
    trained = MultiSAETrainer(config, saes, hooks, provider).fit()
    return {int(name): _inference(sae, SAE) for name, sae in trained.items()}


def _inference(trained: Any, sae_class: Any) -> SAE:
    """The inference SAE of a trained one (its weights, folded; no training state)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tinycave-sae-") as folder:
        trained.save_inference_model(folder)
        return sae_class.load_from_disk(folder, device=str(trained.device))
