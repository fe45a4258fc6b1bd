"""Which residual an SAE reads: hook names (TransformerLens's spelling, as SAELens records them) <-> residual index.

tinycave numbers residuals as the lenses do: residual 0 is block 0's input (the
embeddings), residual ``l`` is block ``l-1``'s output, residual ``L`` the last block's
output (before the final norm). So ``blocks.{l}.hook_resid_pre`` is residual ``l`` and
``blocks.{l}.hook_resid_post`` is residual ``l+1``. SAEs trained here are named by
``resid_pre`` (``resid_post`` for residual ``L``); SAEs from elsewhere may use either.
"""

from __future__ import annotations

import re

from layers_core.errors import TinycaveError

_RESID = re.compile(r"^blocks\.(\d+)\.hook_resid_(pre|post)$")


class SaeMismatchError(TinycaveError):
    """An SAE that does not fit the loaded model (hook, width or model)."""


def residual_hook(layer: int, n_layers: int) -> str:
    """The hook name of residual ``layer`` (0..n_layers) of a model with ``n_layers`` blocks."""
    if not 0 <= layer <= n_layers:
        raise SaeMismatchError(f"residual {layer} does not exist: the model has residuals 0..{n_layers}")
    return f"blocks.{layer}.hook_resid_pre" if layer < n_layers else f"blocks.{n_layers - 1}.hook_resid_post"


def residual_of_hook(hook: str, n_layers: int) -> int:
    """The residual index an SAE's hook reads.

    Raises:
        SaeMismatchError: Not a residual-stream hook, or a block the model does not have.
    """
    match = _RESID.match(hook or "")
    if match is None:
        raise SaeMismatchError(f"the SAE reads {hook!r}; tinycave analyses residual-stream SAEs only "
                               "(blocks.N.hook_resid_pre or blocks.N.hook_resid_post)")
    block, side = int(match.group(1)), match.group(2)
    if block >= n_layers:
        raise SaeMismatchError(f"the SAE reads block {block}, but the model has blocks 0..{n_layers - 1}")
    return block if side == "pre" else block + 1


def default_layers(n_layers: int, fractions: tuple[float, ...] = (0.25, 0.5, 0.75, 0.9)) -> list[int]:
    """Residuals at about these fractions of the depth (distinct, within 1..n_layers-1)."""
    picked = [min(n_layers - 1, max(1, round(f * n_layers))) for f in fractions]
    return sorted(dict.fromkeys(picked))
