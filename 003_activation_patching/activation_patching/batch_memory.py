"""How many patched runs go into one forward pass: a simple, generous memory estimate.

One patched run is one row of a batch with no autograd and logits kept at the
answer position only. While a block runs, a row holds about, per token:

- ``8 * d_model`` values: the residual, its normalised copy, queries, keys and
  values, the attention output, the copy a hook's write makes and the patched value;
- ``mlp_width`` values: the MLP's parameters divided by ``d_model`` (gate, up and
  down projections: three times the hidden width of a gated MLP, twice a plain
  one's), as many as its hidden activations alive at once;
- ``2 * n_heads * T`` attention scores and probabilities (the math path materialises
  both);

in the model's dtype, plus ``3 * V`` float32 logits at the answer position (the
model's, a float32 copy, a softcap's). The cache the patches are read from is
held once per sweep, not per row, and is left out. ``rows_per_batch`` divides the
budget by ``SAFETY`` times this and caps the result at ``max_rows`` (past a few
dozen rows a forward pass gets no cheaper per row).
"""

from __future__ import annotations

import torch

from layers_core.models.architecture import ModelParts
from layers_core.models.device_policy import DevicePlan

SAFETY = 2
MAX_ROWS = 64
BUDGET_FRACTION = 0.5
# When the device cannot say what it offers (an unknown accelerator): 1 GB.
FALLBACK_BUDGET_BYTES = 1_000_000_000


def mlp_width(parts: ModelParts) -> int:
    """The first block's MLP parameters divided by ``d_model`` (module docstring)."""
    mlp = parts.block_parts[0].mlp
    return max(1, sum(param.numel() for param in mlp.parameters()) // parts.d_model)


def row_bytes(parts: ModelParts, seq_len: int, dtype: torch.dtype) -> int:
    """Bytes one patched run of ``seq_len`` tokens needs while a block runs (module docstring)."""
    per_token = 8 * parts.d_model + mlp_width(parts) + 2 * max(parts.n_heads, 1) * seq_len
    element = torch.empty((), dtype=dtype).element_size()
    return element * seq_len * per_token + 3 * 4 * parts.vocab_size


def rows_per_batch(
    parts: ModelParts, seq_len: int, dtype: torch.dtype, budget_bytes: int, max_rows: int = MAX_ROWS
) -> int:
    """Patched runs per forward pass: ``budget_bytes // (SAFETY * row_bytes)``, at least 1, at most ``max_rows``."""
    fits = int(budget_bytes) // (SAFETY * row_bytes(parts, seq_len, dtype))
    return max(1, min(max_rows, fits))


def patching_budget(plan: DevicePlan) -> int:
    """Bytes the patched runs may use: ``BUDGET_FRACTION`` of what the device offered beyond the model."""
    if plan.available_bytes is None:
        return FALLBACK_BUDGET_BYTES
    spare = plan.available_bytes - plan.estimate_bytes  # measured before the load; staging is freed after it
    return max(0, int(BUDGET_FRACTION * spare))
