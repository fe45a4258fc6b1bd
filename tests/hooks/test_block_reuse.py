"""Starting a forward pass part-way down from a cached run's block outputs (``layers_core.hooks.block_reuse``).

On every tiny family: a batch that starts at block k from the base run's cached outputs, with a write at
block k's input, gives the logits of the full forward with that write (within fp32 rounding: the cache
was computed in a batch of one). The write is a random vector, since LayerNorm would remove a constant
one. Starting one block later ignores the write, so the skipping is real. Each block's own forward is
back afterwards, also after an error.
"""

from __future__ import annotations

import pytest
import torch

from layers_core.hooks.activations import Patch, run_with_cache, run_with_patches
from layers_core.hooks.block_reuse import block_output_points, reused_blocks
from tests import tiny_models
from tests.tolerances import fp32_tol, max_abs

IDS = [[5, 17, 9, 23, 11, 7]]


@pytest.mark.parametrize("family", tiny_models.ALL_FAMILIES)
def test_starting_at_a_block_from_cached_outputs_equals_the_full_pass(family: str) -> None:
    model, parts = tiny_models.shared_model(family)
    ids = torch.tensor(IDS)
    base = run_with_cache(model, parts, ids, block_output_points(parts), logits_at="last")
    outputs = [base[point] for point in block_output_points(parts)]
    start = parts.n_layers // 2
    direction = torch.randn(parts.d_model, generator=torch.Generator().manual_seed(0))
    write = Patch(f"blocks.{start}.hook_resid_pre", direction, positions=[len(IDS[0]) - 1], rows=[1], mode="add")
    batch = torch.tensor(IDS * 3)
    full = run_with_patches(model, parts, batch, [write], logits_at="last").logits
    with reused_blocks(parts, outputs, start, batch=3):
        reused = run_with_patches(model, parts, batch, [write], logits_at="last").logits
    tol = fp32_tol(max(max_abs(full), 1.0), n_terms=parts.d_model)
    assert (reused - full).abs().max().item() <= tol
    assert (full[1] - full[0]).abs().max().item() > 100 * tol  # the write does change row 1
    with reused_blocks(parts, outputs, start + 1, batch=3):
        late = run_with_patches(model, parts, batch, [write], logits_at="last").logits
    assert torch.equal(late[1], late[0])  # block `start` did not run, so its input's write went nowhere
    assert all("forward" not in block.__dict__ for block in parts.blocks)


def test_every_block_skipped_gives_the_base_logits_bit_for_bit() -> None:
    model, parts = tiny_models.shared_model("llama")
    ids = torch.tensor(IDS)
    base = run_with_cache(model, parts, ids, block_output_points(parts), logits_at="last")
    with reused_blocks(parts, [base[p] for p in block_output_points(parts)], parts.n_layers, batch=1):
        again = run_with_patches(model, parts, ids, [], logits_at="last").logits
    assert torch.equal(again, base.logits)


def test_bad_starts_are_refused_and_forward_is_restored_after_an_error() -> None:
    model, parts = tiny_models.shared_model("llama")
    with pytest.raises(ValueError, match="start must be"):
        with reused_blocks(parts, [], parts.n_layers + 1, batch=1):
            pass
    with pytest.raises(ValueError, match="cannot replace"):
        with reused_blocks(parts, [], 1, batch=1):
            pass
    fake = [torch.zeros(1, 6, parts.d_model)] * parts.n_layers
    with pytest.raises(RuntimeError, match="boom"):
        with reused_blocks(parts, fake, parts.n_layers, batch=1):
            raise RuntimeError("boom")
    assert all("forward" not in block.__dict__ for block in parts.blocks)
