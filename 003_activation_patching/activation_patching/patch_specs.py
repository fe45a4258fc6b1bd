"""What one patched run writes, and many patched runs as the rows of one batch of ``Patch`` writes.

A ``PatchSpec`` names one site: a component at a layer (a head for ``head``) and a
position (None: every position). Its hook point, in TransformerLens's spelling:

- ``resid_pre``, layers 0..L: ``blocks.{l}.hook_resid_pre``; layer L (the final
  residual, which no block reads) is ``blocks.{L-1}.hook_resid_post``, as 001 counts
  layers 0..L. Depth ``l / L``: the residual entering block l.
- ``attn_out``, ``mlp_out``, layers 0..L-1: ``blocks.{l}.hook_attn_out`` /
  ``hook_mlp_out``; ``head``: ``blocks.{l}.attn.hook_z`` at one head. Depth
  ``(l + 1) / L``, after the block has written (002's convention).

A patched run is a tuple of specs (empty: patch nothing). ``batch_patches`` turns
runs into ``Patch`` writes, one per (point, head, all positions or one): row k of
the batch receives the source's values at run k's sites (``Patch.rows`` paired with
``Patch.positions``), so a whole batch of runs is one forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from layers_core import metrics
from layers_core.hooks.activations import ActivationRun, Patch
from layers_core.models.architecture import ModelParts

Component = Literal["resid_pre", "attn_out", "mlp_out", "head"]
COMPONENTS: tuple[Component, ...] = ("resid_pre", "attn_out", "mlp_out", "head")


@dataclass(frozen=True)
class PatchSpec:
    """One patched site: ``component`` at ``layer`` (and ``head``), at ``position`` (None: every position)."""

    component: Component
    layer: int
    head: int | None = None
    position: int | None = None

    def __post_init__(self) -> None:
        if (self.head is None) != (self.component != "head"):
            raise ValueError(f"{self.component}: a head is given for 'head' patches and only for them")


def hook_name(spec: PatchSpec, n_layers: int) -> str:
    """The TransformerLens name of the point ``spec`` writes (module docstring)."""
    if spec.component == "resid_pre":
        if spec.layer == n_layers:
            return f"blocks.{n_layers - 1}.hook_resid_post"
        return f"blocks.{spec.layer}.hook_resid_pre"
    if spec.component == "head":
        return f"blocks.{spec.layer}.attn.hook_z"
    return f"blocks.{spec.layer}.hook_{spec.component}"


def spec_depth(spec: PatchSpec, n_layers: int) -> float:
    """Relative depth of the site: ``l / L`` for the residual, ``(l + 1) / L`` for what a block writes."""
    return metrics.rel_depth(spec.layer if spec.component == "resid_pre" else spec.layer + 1, n_layers)


def sweep_specs(parts: ModelParts, seq_len: int, components: Sequence[Component] = COMPONENTS) -> list[PatchSpec]:
    """The exact sweep's sites: residual at layers 0..L x positions, attention and MLP output at 0..L-1 x
    positions, every head at all positions together and at the answer position alone."""
    specs: list[PatchSpec] = []
    for component in components:
        if component == "head":
            specs += [
                PatchSpec("head", layer, head, position)
                for layer in range(parts.n_layers)
                for head in range(parts.n_heads)
                for position in (None, seq_len - 1)
            ]
            continue
        layers = parts.n_layers + 1 if component == "resid_pre" else parts.n_layers
        specs += [PatchSpec(component, layer, None, position) for layer in range(layers) for position in range(seq_len)]
    return specs


def source_points(specs: Sequence[PatchSpec], n_layers: int) -> list[str]:
    """The points the source run must cache for ``specs``, each once, in first-use order."""
    return list(dict.fromkeys(hook_name(spec, n_layers) for spec in specs))


def spec_value(spec: PatchSpec, source: ActivationRun, n_layers: int) -> Tensor:
    """What ``spec`` writes: the source's (batch of one) value at its point, head and position(s)."""
    value = source[hook_name(spec, n_layers)][0]  # [T, d_model] or [T, n_heads, d_head]
    if spec.head is not None:
        value = value[:, spec.head]
    return value if spec.position is None else value[spec.position]


def batch_patches(runs: Sequence[Sequence[PatchSpec]], source: ActivationRun, n_layers: int) -> list[Patch]:
    """The writes of ``runs`` as rows of one batch: row k gets run k's sites from ``source``."""
    groups: dict[tuple[str, int | None, bool], tuple[list[int], list[int], list[Tensor]]] = {}
    for row, run in enumerate(runs):
        for spec in run:
            every = spec.position is None
            rows, positions, values = groups.setdefault((hook_name(spec, n_layers), spec.head, every), ([], [], []))
            rows.append(row)
            positions.append(0 if spec.position is None else spec.position)
            values.append(spec_value(spec, source, n_layers))
    return [
        Patch(point, torch.stack(values), positions=None if every else positions, rows=rows, head=head)
        for (point, head, every), (rows, positions, values) in groups.items()
    ]
