"""What the benchmark runs of experiment 005 for one model: an ablation sweep and its floor.

One SAE, at the residual 005 ablates in the middle of the depth: the second of the
default residuals (``default_layers``: about 50% of the depth, SmolLM2 15, Gemma 9;
``ABLATION_LAYER_INDEX`` of the list, the middle one when there are fewer), in the
default recipe's shape (``SaeRecipe()``: ``d_sae = 4 x d_model``, k 32, TopK) with
seeded random weights (``random_saes``, as 004's entry builds them): the time does not
depend on the weights' values. The items are 005's default cloze items
(``DEFAULT_CLOZE``) encoded with ``encode_items``; ``REMOVALS`` single features
(``FEATURES``, fixed indices) are removed, each alone. Cases, timed in one group of
interleaved rounds:

    ablation_sweep: ``ablation_scores`` as 005's ``ablate`` calls it (its default batch
        size, ``ABLATION_BATCH``): per batch of items one clean read stopped at the SAE's
        hook, then per removal the blocks from the hook on (the blocks before return the
        clean batch's output), with the logits of every position scored.
    batched_forwards: the floor: the same number of forward passes, items x removals, as
        plain model forwards with no hooks, run as one batch per item batch: each of
        ``ablation_scores``' batches (same left padding, same mask and mask-derived
        positions, ``forward_kwargs``) repeated ``REMOVALS`` times along the batch
        dimension (built beforehand), one forward each. Full depth, logits at every
        position: the scores need the logits, so the last layer they need is the last one.

Checked once, untimed: the floor's logits for the first batch equal the clean
``run_with_patches(..., ())`` logits of that batch (each repeat; ``check_tolerance``:
1e-4 of the logits' magnitude in float32), and the forward passes are counted in both
cases (hooks on the model and its head): rows that reach the head (full forward passes)
must be items x removals in both; the sweep's model calls are removals x batches plus
one clean read per batch, the floor's one per batch.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from bench.sae_extraction import random_saes
from layers_core.hooks.activations import run_with_patches
from layers_core.hooks.capture import forward_kwargs
from layers_core.hooks.hook_points import HookFn, HookKind, attached
from layers_core.models.loading import LoadedModel
from layers_core.prompts.batching import left_padded, length_batches, pad_token_id
from layers_core.sae.sae_points import default_layers, residual_of_hook
from layers_core.sae.sae_training import SaeRecipe
from semantics_syntax.ablation_matrix import ablate
from semantics_syntax.cloze_scoring import ablation_scores, encode_items
from semantics_syntax.datasets import load_cloze

REMOVALS = 5
FEATURES = tuple(range(REMOVALS))  # any fixed indices serve: the weights are random
ABLATION_LAYER_INDEX = 1  # the second default residual, about 50% of the depth
ABLATION_BATCH: int = inspect.signature(ablate).parameters["batch_size"].default  # 005's run passes none
SAE_SEED = 0
# Relative tolerance of the floor check in float32: two forwards of one batch in different batch shapes.
FLOAT32_REL_TOL = 1e-4
COARSE_EPS_FACTOR = 16


def ablation_layer(layers: list[int]) -> int:
    """The default residual the entry ablates at: the second of four, else the middle one of those there are."""
    return layers[min(ABLATION_LAYER_INDEX, (len(layers) - 1) // 2)]


def check_tolerance(dtype: torch.dtype, magnitude: float) -> float:
    """Largest difference the floor check allows, relative to the logits' magnitude (at least 1).

    ``FLOAT32_REL_TOL`` in float32; in a coarser dtype (bfloat16 or float16 on a GPU) 16 of
    its epsilons, since the two forwards' batch shapes may pick kernels that round apart.
    """
    rel = max(FLOAT32_REL_TOL, COARSE_EPS_FACTOR * torch.finfo(dtype).eps)
    return rel * max(1.0, magnitude)


@dataclass
class ForwardCount:
    """Forward calls of the model and rows that went in, and rows that reached its head (full forward passes)."""

    model_calls: int = 0
    model_rows: int = 0
    head_rows: int = 0

    def as_dict(self) -> dict[str, int]:
        """JSON form."""
        return {"model_calls": self.model_calls, "model_rows": self.model_rows, "head_rows": self.head_rows}


@contextmanager
def counted_forwards(model: nn.Module, head: nn.Module) -> Iterator[ForwardCount]:
    """Count, inside the ``with`` block, the model's forward calls with their rows, and the rows its head sees."""
    count = ForwardCount()

    def on_model(module: nn.Module, args: tuple, kwargs: dict) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        count.model_calls += 1
        count.model_rows += 0 if ids is None else int(ids.shape[0])

    def on_head(module: nn.Module, args: tuple, kwargs: dict) -> None:
        hidden = args[0] if args else next(iter(kwargs.values()))
        count.head_rows += int(hidden.shape[0])

    hooks: list[tuple[nn.Module, HookKind, HookFn]] = [(model, "pre", on_model), (head, "pre", on_head)]
    with attached(hooks):
        yield count


class AblationSweepWorkloads:
    """Callables for 005's ablation sweep and its floor on one model, sharing the SAE, items and batches."""

    def __init__(self, loaded: LoadedModel) -> None:
        """Build the SAE, encode the items, build the floor's repeated batches; check the floor once.

        Raises:
            RuntimeError: The floor's logits differ from the clean run's (``_check_floor``), or
                the two cases ran different numbers of forward passes (``check_forward_counts``).
        """
        self.model, self.parts, self.tokenizer = loaded.model, loaded.parts, loaded.tokenizer
        self.device, self.dtype = loaded.plan.device, loaded.plan.torch_dtype()
        self.recipe = SaeRecipe()
        self.layers = default_layers(self.parts.n_layers)
        self.layer = ablation_layer(self.layers)
        self.sae = random_saes(self.parts, [self.layer], self.recipe, self.device, SAE_SEED)[self.layer]
        self.hook: str = self.sae.cfg.metadata.hook_name
        self.items = load_cloze()
        self.encoded, self.skipped = encode_items(self.tokenizer, self.items)
        self.removals = [[feature] for feature in FEATURES]
        token_ids = [list(e.ids) for e in self.encoded]
        pad = pad_token_id(self.tokenizer)
        # ablation_scores' own batching (cloze_scoring._batches): similar lengths, left-padded.
        self._batches = [left_padded([token_ids[i] for i in rows], pad)
                         for rows in length_batches(token_ids, ABLATION_BATCH)]
        self._kwargs = [self._repeated(ids, mask) for ids, mask in self._batches]
        self.floor_check_max_abs_diff, self.floor_check_tolerance = self._check_floor()
        self.counts: dict[str, ForwardCount] = {}
        self.check_forward_counts()

    def _repeated(self, ids: Tensor, mask: Tensor) -> dict[str, Any]:
        """One batch's forward arguments with every row repeated once per removal (removal-major)."""
        times = len(self.removals)
        return forward_kwargs(self.model, self.parts, ids.repeat(times, 1), mask.repeat(times, 1), None, False)[0]

    @torch.no_grad()
    def _check_floor(self) -> tuple[float, float]:
        """Compare the floor's first forward with the clean ``run_with_patches`` logits of that batch, each repeat.

        Returns:
            ``(largest absolute difference, the tolerance it was held to)``.

        Raises:
            RuntimeError: Another shape, or a difference above the tolerance.
        """
        ids, mask = self._batches[0]
        clean = run_with_patches(self.model, self.parts, ids, (), attention_mask=mask).logits.float()
        floor = self.model(**self._kwargs[0]).logits.float()
        wanted = (len(self.removals) * clean.shape[0], *clean.shape[1:])
        if tuple(floor.shape) != wanted:
            raise RuntimeError(f"the floor's forward returned {tuple(floor.shape)}, wanted {wanted}")
        repeats = floor.reshape(len(self.removals), *clean.shape)
        diff = float((repeats - clean.to(floor.device)[None]).abs().max())
        tolerance = check_tolerance(self.dtype, float(clean.abs().max()))
        if diff > tolerance:
            raise RuntimeError(f"the floor's logits differ from the clean run's by {diff:g} (tolerance {tolerance:g})")
        return diff, tolerance

    def forward_counts(self) -> dict[str, ForwardCount]:
        """One untimed run of each case under counting hooks: case -> its forward calls and rows."""
        counts = {}
        for name, run in self.cases().items():
            with counted_forwards(self.model, self.parts.unembed) as count:
                run()
            counts[name] = count
        return counts

    def check_forward_counts(self) -> None:
        """Count both cases' forward passes (``forward_counts``) and keep the counts if they are right.

        Raises:
            RuntimeError: Either case's full forward passes (rows reaching the head) are not
                items x removals, or the sweep's model calls are not removals x batches plus
                one clean read per batch.
        """
        counts = self.forward_counts()
        passes = len(self.encoded) * len(self.removals)
        sweep, floor = counts["ablation_sweep"], counts["batched_forwards"]
        if sweep.head_rows != passes or floor.head_rows != passes:
            raise RuntimeError(f"forward passes: the sweep ran {sweep.head_rows}, the floor {floor.head_rows}; "
                               f"both should run items x removals = {passes}")
        batches = len(self._batches)
        if sweep.model_calls != batches * (len(self.removals) + 1) or floor.model_calls != batches:
            raise RuntimeError(f"model calls: the sweep made {sweep.model_calls} (wanted {batches} x "
                               f"({len(self.removals)} + 1)), the floor {floor.model_calls} (wanted {batches})")
        self.counts = counts

    def describe(self) -> dict:
        """What the cases run: the SAE, items, removals, forward passes and their counts, batches and tokens."""
        tokens = sum(len(e.ids) for e in self.encoded)
        padded = sum(int(ids.numel()) for ids, _ in self._batches)
        return {
            "layer": self.layer, "layers": self.layers, "hook": self.hook,
            "start_block": residual_of_hook(self.hook, self.parts.n_layers),
            "n_layers": self.parts.n_layers, "d_model": self.parts.d_model,
            "d_sae": self.recipe.expansion * self.parts.d_model, "k": self.recipe.k,
            "items": len(self.items), "scored_items": len(self.encoded), "skipped_items": len(self.skipped),
            "removals": len(self.removals), "features": list(FEATURES),
            "forward_passes": len(self.encoded) * len(self.removals),
            "batch_size": ABLATION_BATCH, "batches": len(self._batches),
            "floor_batch_rows": [int(kwargs["input_ids"].shape[0]) for kwargs in self._kwargs],
            "tokens": tokens, "padded_tokens": padded, "floor_tokens": padded * len(self.removals),
            "sweep_forwards": self.counts["ablation_sweep"].as_dict(),
            "floor_forwards": self.counts["batched_forwards"].as_dict(),
            "floor_check_max_abs_diff": self.floor_check_max_abs_diff,
            "floor_check_tolerance": self.floor_check_tolerance,
        }

    def cases(self) -> dict[str, Callable[[], object]]:
        """The sweep and its floor, timed together in one group of rounds."""
        return {"batched_forwards": self.batched_forwards, "ablation_sweep": self.ablation_sweep}

    def ablation_sweep(self) -> object:
        """005's ablation of each single feature at the SAE, every item scored, as its run calls it."""
        return ablation_scores(self.model, self.parts, self.tokenizer, self.encoded, self.sae, self.removals,
                               batch_size=ABLATION_BATCH)

    @torch.no_grad()
    def batched_forwards(self) -> object:
        """As many plain forward passes as the sweep's removals, one batch per item batch, no hooks, full logits.

        Each batch's logits are dropped as soon as they exist (the sweep, too, drops each batch's after
        scoring it); returns the rows run.
        """
        return sum(int(self.model(**kwargs).logits.shape[0]) for kwargs in self._kwargs)

