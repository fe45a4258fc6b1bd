"""The cheap sweep every pair gets: the residual at the subject's last token and at the answer position.

For each residual layer 0..L (``resid_pre``; L is the final residual) two patched
runs per direction: the subject's last token alone, the answer position (the last)
alone. ``2 * (L + 1)`` sites instead of the full grid's thousands, so the whole
battery runs in about the time of one full sweep. The subject's last token is the
last of the pair's ``corrupt_positions`` (a custom pair: the last position whose
token differs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from activation_patching.metric import Restoration
from activation_patching.pairs import PatchingPair
from activation_patching.patch_specs import PatchSpec
from activation_patching.sweeps import PairSweep, cache_side, pair_sides, restorations
from layers_core.hooks.activations import Patch
from layers_core.models.architecture import ModelParts


def subject_position(pair: PatchingPair) -> int:
    """The subject's last token: the last position the corruption acts on."""
    return pair.corrupt_positions[-1]


def battery_specs(pair: PatchingPair, n_layers: int) -> list[PatchSpec]:
    """The residual at every layer 0..L, at the subject's last token and at the answer position."""
    positions = dict.fromkeys((subject_position(pair), len(pair.clean_ids) - 1))
    return [PatchSpec("resid_pre", layer, None, position) for layer in range(n_layers + 1) for position in positions]


def battery_rows(
    pair: PatchingPair, sweep: PairSweep, token_text: Callable[[int], str]
) -> list[dict[str, Any]]:
    """One battery CSV row per direction x layer from the cheap sweep's rows (``battery_specs``)."""
    subject, answer = subject_position(pair), len(pair.clean_ids) - 1
    found = {(row.direction, row.layer, row.position): row for row in sweep.rows}
    rows = []
    for (direction, layer, position), row in found.items():
        if position != answer:
            continue
        rows.append({
            "pair_id": pair.pair_id, "corruption": pair.corruption, "direction": direction, "layer": layer,
            "rel_depth": row.rel_depth, "hook": row.hook, "subject_position": subject,
            "subject_token": token_text(pair.clean_ids[subject]), "answer_position": answer,
            "restoration_subject": found[(direction, layer, subject)].restoration,
            "restoration_answer": row.restoration,
        })
    return rows


def unpatched_restorations(
    model: nn.Module, parts: ModelParts, pair: PatchingPair, corrupt_patches: Sequence[Patch], metric: Restoration
) -> dict[str, float]:
    """The restoration of each direction's base run with nothing patched, alone in its forward pass.

    The same code path as every patched run, so these are exactly 0 (denoise) and 1 (noise): the check that
    the baselines the metric is scaled by are the runs the sweep patches.
    """
    clean, corrupt = pair_sides(pair, corrupt_patches)
    source = cache_side(model, parts, clean, [])  # an empty run reads nothing from it
    return {
        "denoise": restorations(model, parts, corrupt, source, [()], metric, batch_size=1)[0],
        "noise": restorations(model, parts, clean, source, [()], metric, batch_size=1)[0],
    }
