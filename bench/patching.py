"""What the benchmark runs of experiment 003 for one model: the default pair's sweeps and their floors.

The pair is the one 003's run sweeps first: the first pair ``battery_choice`` makes
from the capitals battery. Cases, timed in one group of interleaved rounds:

    plain_batches: the floor of the exact residual sweep: as many forward passes as
        the sweep has patched runs, ``(L + 1) x T`` (one direction), in batches of
        the sweep's batch size, with no hooks and logits at the last position only.
    resid_sweep: 003's exact residual sweep of one direction (denoise), as its run
        calls it: each batch starts at its first patched block from the corrupted
        run's cached block outputs (``sweeps.restorations`` with ``reuse``).
    resid_sweep_from_embedding: the same sweep with every block recomputed, to show
        what the cached start saves.
    plain_forward: one forward pass of the corrupted prompt (batch of one, last
        logits): the floor of attribution patching.
    attribution: plain attribution patching of one direction over every component
        of the full sweep (residual, attention and MLP outputs, heads): one forward
        pass with autograd and one backward pass (``attribution_estimates``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch

from activation_patching.attribution_patching import attribution_estimates
from activation_patching.batch_memory import patching_budget, row_bytes, rows_per_batch
from activation_patching.metric import restoration_metric
from activation_patching.pair_selection import PreparedPair, battery_choice
from activation_patching.patch_specs import source_points, sweep_specs
from activation_patching.sweeps import cache_side, pair_sides, restorations
from layers_core.errors import PromptError
from layers_core.hooks.block_reuse import block_output_points
from layers_core.models.loading import LoadedModel
from layers_core.prompts.prompt_battery import load_fact_battery

BATTERY = "capitals"
PAIRING_FACTS = 12  # enough of the battery for its first pair


def first_pair(loaded: LoadedModel) -> PreparedPair:
    """The pair 003's default run sweeps first.

    Raises:
        PromptError: None of the battery's first facts could be paired.
    """
    facts = load_fact_battery(BATTERY)[:PAIRING_FACTS]
    choice = battery_choice(loaded.model, loaded.parts, loaded.tokenizer, facts)
    if not choice.pairs:
        raise PromptError(f"no pair could be made from the first {PAIRING_FACTS} facts of {BATTERY}")
    return choice.pairs[0]


class PatchingWorkloads:
    """Callables for 003's sweeps of the default pair and their floors, sharing the pair's caches."""

    def __init__(self, loaded: LoadedModel) -> None:
        """Choose the pair, cache both sides (every point of the full sweep), fix the metric and the batch size."""
        self.model, self.parts, plan = loaded.model, loaded.parts, loaded.plan
        prepared = first_pair(loaded)
        self.pair = prepared.pair
        self.n_tokens = len(self.pair.clean_ids)
        self.clean, self.corrupt = pair_sides(self.pair, prepared.corrupt_patches)
        full = sweep_specs(self.parts, self.n_tokens)
        self.points = source_points(full, self.parts.n_layers)
        read = [*self.points, *block_output_points(self.parts)]
        self.caches = {"clean": cache_side(self.model, self.parts, self.clean, read),
                       "corrupt": cache_side(self.model, self.parts, self.corrupt, read)}
        self.metric = restoration_metric(self.caches["clean"].logits[0, -1], self.caches["corrupt"].logits[0, -1],
                                         self.pair.answer_id, self.pair.corrupt_answer_id)
        self.full_specs = full
        self.resid_runs = [(spec,) for spec in sweep_specs(self.parts, self.n_tokens, ("resid_pre",))]
        self.budget_bytes = patching_budget(plan)
        self.batch_size = rows_per_batch(self.parts, self.n_tokens, plan.torch_dtype(), self.budget_bytes)
        self.row_bytes = row_bytes(self.parts, self.n_tokens, plan.torch_dtype())
        self._keeps_logits = "logits_to_keep" in inspect.signature(self.model.forward).parameters
        ids = torch.tensor([self.corrupt.input_ids], dtype=torch.long, device=plan.device)
        self._one = ids
        self._batches = [ids.expand(min(self.batch_size, len(self.resid_runs) - start), -1)
                         for start in range(0, len(self.resid_runs), self.batch_size)]

    def describe(self) -> dict:
        """What the cases run: the pair, the sweep's size and the batch size chosen from the memory budget."""
        return {"pair_id": self.pair.pair_id, "corruption": self.pair.corruption, "tokens": self.n_tokens,
                "n_layers": self.parts.n_layers, "n_heads": self.parts.n_heads,
                "resid_runs": len(self.resid_runs), "all_sites": len(self.full_specs),
                "batch_size": self.batch_size, "n_batches": len(self._batches),
                "budget_bytes": self.budget_bytes, "row_bytes_estimate": self.row_bytes}

    def cases(self) -> dict[str, Callable[[], object]]:
        """Every case, timed together in one group of rounds."""
        return {"plain_batches": self.plain_batches, "resid_sweep": self.resid_sweep,
                "resid_sweep_from_embedding": self.resid_sweep_from_embedding,
                "plain_forward": self.plain_forward, "attribution": self.attribution}

    @torch.no_grad()
    def _forward(self, ids: torch.Tensor) -> torch.Tensor:
        kwargs = {"logits_to_keep": 1} if self._keeps_logits else {}
        return self.model(input_ids=ids, use_cache=False, **kwargs).logits

    def plain_batches(self) -> object:
        """The residual sweep's forward passes with no hooks, in its batches."""
        return [self._forward(batch) for batch in self._batches]

    def plain_forward(self) -> object:
        """One forward pass of the corrupted prompt."""
        return self._forward(self._one)

    def resid_sweep(self) -> object:
        """The denoising residual sweep as 003 runs it (each batch from its first patched block)."""
        return restorations(self.model, self.parts, self.corrupt, self.caches["clean"], self.resid_runs,
                            self.metric, self.batch_size, reuse=self.caches["corrupt"])

    def resid_sweep_from_embedding(self) -> object:
        """The same sweep recomputing every block of every patched run."""
        return restorations(self.model, self.parts, self.corrupt, self.caches["clean"], self.resid_runs,
                            self.metric, self.batch_size)

    def attribution(self) -> object:
        """Plain attribution patching, denoising, for every site of the full sweep."""
        return attribution_estimates(self.model, self.parts, self.corrupt, self.caches["clean"], self.full_specs,
                                     self.points, self.metric)
