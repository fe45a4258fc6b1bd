"""How good an SAE is, on held-out windows: L0, explained variance, loss recovered, dead and dense features.

Every statistic is over positions 1..T-1 of each window, the positions SAEs are trained
on here (position 0 is an attention-sink outlier):

- ``l0``: mean number of active features per token.
- ``explained_variance``: ``1 - sum |x - x_hat|^2 / sum |x - mean(x)|^2``, pooled over
  tokens and dimensions (the mean is the held-out residuals' own).
- ``ce_loss_recovered``: ``(ce_zero - ce_sae) / (ce_zero - ce_clean)``, where ``ce_*`` is
  the model's next-token cross-entropy (nats, mean over predictions made at positions
  1..T-2) clean, with the residual at positions 1..T-1 replaced by the SAE's
  reconstruction, and with it replaced by zeros. Undefined (NaN; an empty CSV cell)
  when zeroing the residual does not raise the loss: the ratio then measures nothing.
- ``dead_frac``: features that never fire on these tokens; ``dense_frac``: features that
  fire on more than ``DENSE_THRESHOLD`` of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from layers_core.hooks.activations import Patch, run_with_cache, run_with_patches
from layers_core.lens.fit_progress import Progress, report
from layers_core.models.architecture import ModelParts
from layers_core.sae.sae_points import residual_hook

DENSE_THRESHOLD = 0.1


@dataclass(frozen=True)
class SaeQuality:
    """One SAE's quality on held-out text (module doc)."""

    layer: int
    hook: str
    d_sae: int
    tokens: int
    l0: float
    explained_variance: float
    ce_clean: float
    ce_sae: float
    ce_zero: float
    ce_loss_recovered: float
    dead_frac: float
    dense_frac: float

    def as_row(self) -> dict[str, Any]:
        """The CSV row."""
        return asdict(self)


class _Sums:
    """Running sums of one SAE's statistics."""

    def __init__(self, d_model: int, d_sae: int) -> None:
        self.tokens = 0
        self.active = 0
        self.sum_x = torch.zeros(d_model, dtype=torch.float64)
        self.sum_sq = 0.0
        self.sse = 0.0
        self.fired = torch.zeros(d_sae, dtype=torch.long)
        self.ce = {"sae": 0.0, "zero": 0.0}

    def add(self, x: Tensor, features: Tensor, reconstruction: Tensor) -> None:
        x64 = x.double()
        self.tokens += int(x.shape[0])
        self.sum_x += x64.sum(0)
        self.sum_sq += float((x64 * x64).sum())
        self.sse += float(((x64 - reconstruction.double()) ** 2).sum())
        firing = features > 0
        self.active += int(firing.sum())
        self.fired += firing.sum(0)

    def explained_variance(self) -> float:
        sst = self.sum_sq - float((self.sum_x * self.sum_x).sum()) / self.tokens
        return 1.0 - self.sse / sst


def _cross_entropy(logits: Tensor, windows: Tensor) -> float:
    """Summed next-token cross-entropy (nats) of predictions made at positions 1..T-2."""
    predicted = logits[:, 1:-1].float()
    return float(F.cross_entropy(predicted.reshape(-1, predicted.shape[-1]), windows[:, 2:].reshape(-1),
                                 reduction="sum"))


def sae_quality(
    model: nn.Module, parts: ModelParts, saes: Mapping[int, Any], windows: Tensor, *, batch_size: int,
    progress: Progress | None = None,
) -> list[SaeQuality]:
    """Quality of each SAE (residual index -> SAELens SAE) on ``windows`` (``[N, T]`` token ids, T >= 3)."""
    if windows.ndim != 2 or windows.shape[1] < 3:
        raise ValueError(f"windows must be [N, T >= 3] token ids, got {tuple(windows.shape)}")
    hooks = {layer: residual_hook(layer, parts.n_layers) for layer in saes}
    sums = {layer: _Sums(parts.d_model, sae.cfg.d_sae) for layer, sae in saes.items()}
    clean_ce = 0.0
    count = int(windows.shape[0])
    positions = list(range(1, windows.shape[1]))
    with torch.no_grad():
        for start in range(0, count, batch_size):
            batch = windows[start:start + batch_size]
            run = run_with_cache(model, parts, batch, list(hooks.values()))
            clean_ce += _cross_entropy(run.logits, batch)
            for layer, sae in saes.items():
                resid = run.cache[hooks[layer]][:, 1:]
                x = resid.float().reshape(-1, parts.d_model)
                features = sae.encode(x.to(sae.device, sae.dtype))
                rebuilt = sae.decode(features).to(x.device, x.dtype)  # sae_splice.reconstruction, encoded once
                sums[layer].add(x, features.cpu(), rebuilt)
                spliced = rebuilt.reshape(resid.shape).to(resid.dtype)
                for name, value in (("sae", spliced), ("zero", torch.zeros_like(resid))):
                    patched = run_with_patches(model, parts, batch, [Patch(hooks[layer], value, positions=positions)])
                    sums[layer].ce[name] += _cross_entropy(patched.logits, batch)
            report(progress, "SAE quality", min(start + batch_size, count), count)
    predictions = count * (windows.shape[1] - 2)
    ce_clean = clean_ce / predictions
    found = []
    for layer, sae in saes.items():
        s = sums[layer]
        ce_sae, ce_zero = s.ce["sae"] / predictions, s.ce["zero"] / predictions
        frequency = s.fired.double() / s.tokens
        found.append(SaeQuality(
            layer=layer, hook=hooks[layer], d_sae=int(sae.cfg.d_sae), tokens=s.tokens, l0=s.active / s.tokens,
            explained_variance=s.explained_variance(), ce_clean=ce_clean, ce_sae=ce_sae, ce_zero=ce_zero,
            ce_loss_recovered=(ce_zero - ce_sae) / (ce_zero - ce_clean) if ce_zero > ce_clean else float("nan"),
            dead_frac=float((s.fired == 0).double().mean()),
            dense_frac=float((frequency > DENSE_THRESHOLD).double().mean()),
        ))
    return found
