"""What an SAE splice writes into the residual stream: its reconstruction, or the residual less some features.

- ``reconstruction(sae, x)``: ``decode(encode(x))``, the residual as the SAE sees it
  (the error term ``x - reconstruction`` dropped). Splicing it in measures how much of
  the model's behaviour the SAE explains (``sae_quality``'s loss recovered).
- ``without_features(sae, x, features)``: the residual with the error term kept and only
  the named features' contribution taken out, ``x - (decode(f) - decode(f'))`` where
  ``f'`` is ``f`` with those features zeroed. At a token where none of them fires, ``x`` is
  returned as it was, bit for bit (and removing none returns ``x`` itself): an ablation
  measures that feature alone, not the SAE's reconstruction error.

``x`` is ``[..., d_model]`` in any dtype; the SAE runs in its own dtype and device and
the result comes back in ``x``'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor


def reconstruction(sae: Any, x: Tensor) -> Tensor:
    """The SAE's reconstruction of ``x``, in ``x``'s dtype and device."""
    with torch.no_grad():
        return sae.decode(sae.encode(x.to(sae.device, sae.dtype))).to(x.device, x.dtype)


def without_features(sae: Any, x: Tensor, features: Sequence[int]) -> Tensor:
    """``x`` with the error term kept and the contribution of ``features`` removed (module doc)."""
    if not features:
        return x
    with torch.no_grad():
        acts = sae.encode(x.to(sae.device, sae.dtype))
        kept = acts.clone()
        kept[..., list(features)] = 0
        changed = (kept != acts).any(-1, keepdim=True)
        if not bool(changed.any()):
            return x
        # Rows where no removed feature fires are left out of the difference by construction, not by
        # trusting two matmuls of equal rows to round alike.
        removed = torch.where(changed, sae.decode(acts) - sae.decode(kept), 0.0).to(x.device)
        return torch.where(changed.to(x.device), (x.to(removed.dtype) - removed).to(x.dtype), x)
