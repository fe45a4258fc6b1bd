"""Per-layer affine maps applied to a residual before the model's own head: the tuned lens and the linear shortcut.

A ``LensMaps`` holds one affine map per layer ``0 .. L-1``: ``h -> h @ weight[l].T + bias[l]``,
in float32. Layer ``L`` (the final residual) is always the identity, so a lens with
maps still reproduces the model's logits at the last layer. The two kinds differ
only in how the maps were fitted:

- ``linear``: the linear shortcut (Yom Din et al. 2023), least squares from layer
  ``l``'s residual to the final residual, closed form;
- ``tuned``: the tuned lens (Belrose et al. 2023), trained to minimise the KL
  divergence from the final layer's distribution; ``weight`` is the identity plus
  the learned translator, so both kinds apply the same way.

Maps are saved as safetensors (never pickled), with their ``LensIdentity`` in the
file's metadata: the model, corpus and recipe they were fitted for. ``load``
refuses a file fitted for another model, corpus, recipe or shape with a one-line
``LensMismatchError`` naming what differs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from layers_core.errors import TinycaveError

LensKind = Literal["tuned", "linear"]
LENS_KINDS: tuple[LensKind, ...] = ("tuned", "linear")
FORMAT_VERSION = 1


class LensMismatchError(TinycaveError):
    """Saved lens maps were fitted for another model, corpus, recipe or shape, or the file is damaged."""


@dataclass(frozen=True)
class LensIdentity:
    """What a set of maps was fitted for; stored in the file and compared on load.

    Attributes:
        kind: ``tuned`` or ``linear``.
        model: The model's fingerprint (``lens_cache.model_fingerprint``).
        corpus: The corpus's fingerprint (``layers_core.corpus``).
        recipe: The fitting recipe, JSON-able (sizes, seed, steps ...).
        n_layers: Decoder blocks L.
        d_model: Residual width.
    """

    kind: LensKind
    model: str
    corpus: str
    recipe: dict[str, Any]
    n_layers: int
    d_model: int

    def to_json(self) -> str:
        """The identity as canonical JSON (sorted keys), as stored in the file's metadata."""
        return json.dumps({**asdict(self), "format_version": FORMAT_VERSION}, sort_keys=True)

    def differences(self, other: LensIdentity) -> list[str]:
        """The fields in which ``other`` differs from this identity, in field order."""
        return [name for name in ("kind", "model", "corpus", "recipe", "n_layers", "d_model")
                if getattr(self, name) != getattr(other, name)]


@dataclass(frozen=True)
class LensMaps:
    """One affine map per layer 0..L-1 (layer L: identity), float32.

    Attributes:
        identity: What the maps were fitted for.
        weight: ``[L, d_model, d_model]``: layer l maps ``h`` to ``h @ weight[l].T + bias[l]``.
        bias: ``[L, d_model]``.
    """

    identity: LensIdentity
    weight: Tensor
    bias: Tensor

    def __post_init__(self) -> None:
        n, d = self.identity.n_layers, self.identity.d_model
        if tuple(self.weight.shape) != (n, d, d) or tuple(self.bias.shape) != (n, d):
            raise ValueError(f"maps of shape {tuple(self.weight.shape)} and {tuple(self.bias.shape)} do not fit "
                             f"{n} layers of width {d}")

    @classmethod
    def identity_maps(cls, identity: LensIdentity) -> LensMaps:
        """Maps that change nothing (the norm lens), e.g. a tuned lens's starting point."""
        n, d = identity.n_layers, identity.d_model
        return cls(identity, torch.eye(d).repeat(n, 1, 1), torch.zeros(n, d))

    def to(self, device: torch.device | str) -> LensMaps:
        """The same maps on ``device``."""
        return LensMaps(self.identity, self.weight.to(device), self.bias.to(device))

    def apply(self, resid: Tensor, layer: int) -> Tensor:
        """Layer ``layer``'s map of ``resid`` (``[..., d_model]``), computed in float32, returned in its dtype.

        Layer L (``n_layers``) is the identity: ``resid`` itself is returned.
        """
        n = self.identity.n_layers
        if not 0 <= layer <= n:
            raise ValueError(f"layer {layer} is outside 0..{n}")
        if layer == n:
            return resid
        weight = self.weight[layer].to(resid.device)
        bias = self.bias[layer].to(resid.device)
        return torch.nn.functional.linear(resid.float(), weight, bias).to(resid.dtype)

    def save(self, path: Path) -> None:
        """Write the maps as safetensors with the identity in the metadata (through a temporary file)."""
        from safetensors.torch import save_file

        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".partial")
        tensors = {"weight": self.weight.detach().float().contiguous().cpu(),
                   "bias": self.bias.detach().float().contiguous().cpu()}
        save_file(tensors, str(temporary), metadata={"tinycave_lens": self.identity.to_json()})
        temporary.replace(path)

    @classmethod
    def load(cls, path: Path, expected: LensIdentity) -> LensMaps:
        """Read maps saved by ``save`` and check they were fitted for ``expected``.

        Raises:
            LensMismatchError: The file is missing, damaged, or fitted for another identity (the differing
                fields are named).
        """
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
                # Cloned into fresh (64-byte aligned) memory: MKL's products depend on alignment, and a
                # tensor read at a file offset would decode a few last digits apart from the freshly fitted one.
                tensors = {name: handle.get_tensor(name).clone() for name in ("weight", "bias")}
        except (OSError, SafetensorError, KeyError) as err:
            raise LensMismatchError(f"{path}: not readable lens maps ({err})") from err
        stored = _identity_from(metadata.get("tinycave_lens"), path)
        differing = expected.differences(stored)
        if differing:
            raise LensMismatchError(f"{path} was fitted for another {', '.join(differing)} "
                                    f"({stored.kind} lens, {stored.n_layers} layers, model {stored.model[:12]}): "
                                    "refit it for this one")
        return cls(stored, tensors["weight"], tensors["bias"])


def _identity_from(text: str | None, path: Path) -> LensIdentity:
    try:
        fields = json.loads(text or "")
        if fields.pop("format_version", None) != FORMAT_VERSION:
            raise ValueError("another format version")
        return LensIdentity(**fields)
    except (ValueError, TypeError) as err:
        raise LensMismatchError(f"{path}: its lens metadata is missing or unreadable ({err})") from err
