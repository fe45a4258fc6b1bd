"""What the benchmark runs of experiment 004 for one model: feature extraction and its floor, SAE training throughput.

The SAEs sit at the default residuals (``default_layers``), one each, in the default
recipe's shape (``SaeRecipe()``: ``d_sae = 4 x d_model``, k 32, TopK) with seeded random
weights, built as SAELens inference ``TopKSAE`` modules configured as
``train_on_residuals`` saves trained ones (decoder-norm rescaling on, no input
normalisation): the time does not depend on the weights' values. Extraction cases,
timed in one group of interleaved rounds:

    extraction: 004's ``text_features`` over the category texts (``DEFAULT_TEXTS``) with
        those SAEs, as its run calls it (batches of ``TEXT_BATCH`` texts of similar length,
        left-padded; tokenising, the hooked forward that stops at the deepest SAE's
        residual, one encode per text and SAE, the per-text summaries).
    truncated_forward: the floor's forward: the model's base (no head) with its block list
        cut to the blocks before the deepest SAE's residual and its final norm swapped for
        an identity (``first_blocks``), no hooks, over the same batches with the mask and
        positions ``text_features`` passes (built beforehand); checked once against the
        residual ``run_with_cache`` reads there, and for the number of blocks it runs.
    sae_encodes: the floor's encoding: one ``encode`` per SAE of as many rows as
        ``text_features`` counts (``counted_tokens``; each timed extraction notes its own
        count, reported next to it), as one ``[N, d_model]`` float32 batch made beforehand.
    hooked_reads: ``run_with_cache`` reading the SAE hooks over the same batches with
        ``logits_at="none"``: ``text_features``' forward without its encoding and summaries.

Training cases, a second group of rounds, on a reduced budget:

    residual_reading: ``collect_residuals`` of ``READ_WINDOWS`` windows of the recipe's width
        from the bundled corpus's training split, at the default residuals.
    training: ``train_on_residuals`` on ``TRAIN_TOKENS`` stored rows per residual (the rows
        read, tiled), one epoch, the default recipe otherwise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from layers_core.corpus import bundled_corpus, source_shares, split_documents, token_windows
from layers_core.hooks.activations import run_with_cache
from layers_core.hooks.capture import forward_kwargs
from layers_core.hooks.hook_points import HookFn, HookKind, attached
from layers_core.models.architecture import ModelParts
from layers_core.models.loading import LoadedModel
from layers_core.prompts.batching import left_padded, length_batches, pad_token_id
from layers_core.sae.sae_points import default_layers, residual_hook
from layers_core.sae.sae_training import SaeRecipe, collect_residuals, train_on_residuals
from layers_core.sae.text_features import counted_positions, encode_texts, text_features
from sae_features.category_texts import DEFAULT_TEXTS, load_category_texts

TEXT_BATCH = 8  # text_features' default, as 004's run calls it
READ_WINDOWS = 8
TRAIN_TOKENS = 16_384
SAE_SEED = 0
FLOAT32_BYTES = 4


@contextmanager
def first_blocks(model: nn.Module, parts: ModelParts, count: int) -> Iterator[nn.Module]:
    """The model's base (embedding and blocks, no head) running only its first ``count`` blocks and no final norm.

    The block list and the final norm are attributes of the module holding
    ``parts.module_paths["blocks"]``; both are swapped there and put back in ``finally``.

    Raises:
        RuntimeError: The final norm is not held by the same module as the blocks.
    """
    base_path, _, blocks_name = parts.module_paths["blocks"].rpartition(".")
    base = model.get_submodule(base_path)
    swaps: dict[str, nn.Module] = {blocks_name: nn.ModuleList(list(base.get_submodule(blocks_name).children())[:count])}
    norm_path = parts.module_paths.get("final_norm")
    if norm_path is not None:
        norm_parent, _, norm_name = norm_path.rpartition(".")
        if norm_parent != base_path:
            raise RuntimeError(f"the final norm {norm_path} is not on the blocks' module {base_path}")
        swaps[norm_name] = nn.Identity()
    saved = {name: base.get_submodule(name) for name in swaps}
    try:
        for name, module in swaps.items():
            setattr(base, name, module)
        yield base
    finally:
        for name, module in saved.items():
            setattr(base, name, module)


def random_saes(parts: ModelParts, layers: list[int], recipe: SaeRecipe, device: str, seed: int) -> dict[int, Any]:
    """Residual -> an inference TopK SAE of the recipe's shape with seeded random weights (global RNG untouched)."""
    from sae_lens import TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    saes = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for layer in layers:
            config = TopKSAEConfig(
                d_in=parts.d_model, d_sae=recipe.expansion * parts.d_model, k=recipe.k, dtype="float32",
                device="cpu", rescale_acts_by_decoder_norm=True,
                metadata=SAEMetadata(hook_name=residual_hook(layer, parts.n_layers)),
            )
            saes[layer] = TopKSAE(config).to(device).eval()
    return saes


def counted_tokens(encoded: list[list[int]], special: set[int]) -> int:
    """How many rows ``text_features`` encodes per SAE (its own ``counted_positions`` rule)."""
    return sum(len(counted_positions(ids, special)) for ids in encoded)


def _tiled(store: dict[str, Tensor], rows: int) -> dict[str, Tensor]:
    """Each hook's rows repeated until there are ``rows`` of them."""
    first = next(iter(store.values()))
    times = -(-rows // first.shape[0])
    return {hook: values.repeat(times, 1)[:rows].contiguous() for hook, values in store.items()}


class SaeFeatureWorkloads:
    """Callables for 004's feature extraction, its floor and the training throughput, sharing inputs and SAEs."""

    def __init__(self, loaded: LoadedModel) -> None:
        """Build the SAEs, the batches and the stored residuals; check the floor's forward against the hooked one.

        Raises:
            RuntimeError: The truncated forward differs from the residual ``run_with_cache`` reads
                at the deepest SAE, or runs another number of blocks (``_check_floor``).
        """
        self.model, self.parts, self.tokenizer = loaded.model, loaded.parts, loaded.tokenizer
        self.device = loaded.plan.device
        self.recipe = SaeRecipe()
        self.layers = default_layers(self.parts.n_layers)
        self.deepest = max(self.layers)
        self.saes = random_saes(self.parts, self.layers, self.recipe, self.device, SAE_SEED)
        self.hooks = list(dict.fromkeys(sae.cfg.metadata.hook_name for sae in self.saes.values()))
        self.texts = [text.text for text in load_category_texts(DEFAULT_TEXTS)]
        encoded = encode_texts(self.tokenizer, self.texts)
        pad = pad_token_id(self.tokenizer)
        self._batches = [left_padded([encoded[i] for i in rows], pad) for rows in length_batches(encoded, TEXT_BATCH)]
        self._kwargs = [forward_kwargs(self.model, self.parts, ids, mask, None, False)[0]
                        for ids, mask in self._batches]
        self.floor_check_max_abs_diff, self.blocks_run = self._check_floor()
        self.counted_tokens = counted_tokens(encoded, set(getattr(self.tokenizer, "all_special_ids", []) or []))
        self.extraction_counted_tokens: int | None = None
        generator = torch.Generator().manual_seed(SAE_SEED)
        self._rows = torch.randn(self.counted_tokens, self.parts.d_model, generator=generator).to(self.device)
        self._prepare_training()

    def _check_floor(self) -> tuple[float, int]:
        """Check the truncated forward on the first batch; return ``(largest difference, blocks run)``.

        The difference is to the residual ``run_with_cache`` reads at the deepest SAE; the
        blocks are counted by hooks on every block and on the final norm.

        Raises:
            RuntimeError: Another shape, another value, another number of blocks, or the final norm ran.
        """
        ids, mask = self._batches[0]
        hook = residual_hook(self.deepest, self.parts.n_layers)
        ran: list[nn.Module] = []

        def note(module: nn.Module, args: tuple, kwargs: dict) -> None:
            ran.append(module)

        watched = [module for module in [*self.parts.blocks, self.parts.final_norm] if module is not None]
        counters: list[tuple[nn.Module, HookKind, HookFn]] = [(module, "pre", note) for module in watched]
        with torch.no_grad():
            read = run_with_cache(self.model, self.parts, ids, [hook], attention_mask=mask, logits_at="none")
            with first_blocks(self.model, self.parts, self.deepest) as base, attached(counters):
                hidden = base(**self._kwargs[0]).last_hidden_state
        blocks_run = sum(1 for module in ran if module is not self.parts.final_norm)
        if blocks_run != self.deepest or len(ran) != blocks_run:
            raise RuntimeError(f"the truncated forward ran {blocks_run} blocks (wanted {self.deepest}) and "
                               f"{len(ran) - blocks_run} final norms (wanted none)")
        expected = read.cache[hook]
        if hidden.shape != expected.shape:
            raise RuntimeError(f"the truncated forward returned {tuple(hidden.shape)}, the hooked read "
                               f"{tuple(expected.shape)}")
        diff = float((hidden.float() - expected.float()).abs().max())
        if diff > 1e-4 * max(1.0, float(expected.float().abs().max())):
            raise RuntimeError(f"the truncated forward differs from the residual at {hook} by {diff:g}")
        return diff, blocks_run

    def _prepare_training(self) -> None:
        corpus = bundled_corpus()
        train_docs, _ = split_documents(corpus)
        self.windows = token_windows(self.tokenizer, train_docs, self.recipe.window,
                                     READ_WINDOWS * self.recipe.window, source_shares(corpus))
        read = self.residual_reading()
        self.read_store_bytes = sum(values.nbytes for values in read.values())
        self.train_recipe = dataclasses.replace(self.recipe, tokens=TRAIN_TOKENS, epochs=1)
        self.store = _tiled(read, TRAIN_TOKENS)

    def describe(self) -> dict:
        """What the cases run: SAEs, texts, batches, counted tokens, the budgets and the default store's bound."""
        padded = sum(int(ids.numel()) for ids, _ in self._batches)
        default_rows = self.recipe.windows_needed() * (self.recipe.window - 1)
        return {
            "layers": self.layers, "deepest": self.deepest, "blocks_run": self.blocks_run,
            "n_layers": self.parts.n_layers, "d_model": self.parts.d_model,
            "d_sae": self.recipe.expansion * self.parts.d_model, "k": self.recipe.k,
            "texts": len(self.texts), "text_batch": TEXT_BATCH, "batches": len(self._batches),
            "padded_tokens": padded, "counted_tokens": self.counted_tokens,
            "extraction_counted_tokens": self.extraction_counted_tokens,
            "floor_check_max_abs_diff": self.floor_check_max_abs_diff,
            "read_windows": int(self.windows.shape[0]), "window": self.recipe.window,
            "read_tokens": int(self.windows.shape[0]) * (self.recipe.window - 1),
            "read_store_bytes": self.read_store_bytes,
            "train_tokens_per_sae": self.train_recipe.steps * self.train_recipe.batch_tokens,
            "train_tokens": self.train_recipe.steps * self.train_recipe.batch_tokens * len(self.layers),
            "train_steps": self.train_recipe.steps, "train_recipe": self.train_recipe.as_dict(),
            "store_bound": {
                "recipe_tokens": self.recipe.tokens, "rows": default_rows, "layers": len(self.layers),
                "d_model": self.parts.d_model, "bytes_per_value": FLOAT32_BYTES,
                "bytes": default_rows * len(self.layers) * self.parts.d_model * FLOAT32_BYTES,
                "epochs": self.recipe.epochs,
            },
        }

    def extraction_cases(self) -> dict[str, Callable[[], object]]:
        """The extraction, its floor's two parts and the hooked reads, timed together in one group of rounds."""
        return {"truncated_forward": self.truncated_forward, "sae_encodes": self.sae_encodes,
                "hooked_reads": self.hooked_reads, "extraction": self.extraction}

    def training_cases(self) -> dict[str, Callable[[], object]]:
        """Reading residuals and training on a stored set, timed together in a second group of rounds."""
        return {"residual_reading": self.residual_reading, "training": self.training}

    def extraction(self) -> dict:
        """004's feature extraction over the category texts, every SAE (noting how many tokens it counted)."""
        found = text_features(self.model, self.parts, self.tokenizer, self.texts, self.saes, batch_size=TEXT_BATCH)
        self.extraction_counted_tokens = sum(features.n_tokens for features in found[self.layers[0]])
        return found

    @torch.no_grad()
    def truncated_forward(self) -> object:
        """The forward up to the deepest SAE's residual and not beyond, no hooks, over the extraction's batches."""
        with first_blocks(self.model, self.parts, self.deepest) as base:
            return [base(**kwargs).last_hidden_state for kwargs in self._kwargs]

    @torch.no_grad()
    def sae_encodes(self) -> object:
        """One batched encode per SAE of as many rows as the extraction counts."""
        return [sae.encode(self._rows) for sae in self.saes.values()]

    def hooked_reads(self) -> object:
        """The extraction's hooked forward passes alone (no encoding, no summaries)."""
        return [run_with_cache(self.model, self.parts, ids, self.hooks, attention_mask=mask, logits_at="none").cache
                for ids, mask in self._batches]

    def residual_reading(self) -> dict[str, Tensor]:
        """The residuals of the read windows at every default residual, as SAE training stores them."""
        return collect_residuals(self.model, self.parts, self.windows, self.layers,
                                 batch_size=self.recipe.forward_batch)

    def training(self) -> object:
        """One epoch of lockstep training of every SAE on the stored rows."""
        return train_on_residuals(self.store, self.parts.d_model, self.train_recipe, device=self.device)
