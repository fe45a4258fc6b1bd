"""What an SAE splice writes into the residual stream: its reconstruction, or the residual less some features.

- ``reconstruction(sae, x)``: ``decode(encode(x))``, the residual as the SAE sees it
  (the error term ``x - reconstruction`` dropped). Splicing it in measures how much of
  the model's behaviour the SAE explains (``sae_quality``'s loss recovered).
- ``without_features(sae, x, features)``: the residual with the error term kept and only
  the named features' contribution taken out, ``x - (decode(f) - decode(f'))`` where
  ``f'`` is ``f`` with those features zeroed. Both decodes see the same inputs except the
  removed features, so removing a feature that does not fire changes nothing, bit for bit,
  and removing none returns ``x`` itself: an ablation measures that feature alone, not the
  SAE's reconstruction error.

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
        if torch.equal(kept, acts):
            return x
        removed = sae.decode(acts) - sae.decode(kept)
        return (x.to(removed.dtype) - removed.to(x.device)).to(x.dtype)
