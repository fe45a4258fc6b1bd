"""SAE feature activations of short texts, token by token, with padding and the first position never counted.

Texts run in left-padded batches of similar length (``prompts.batching``); the residual at
every SAE's hook is read in the same forward pass, which stops after the deepest hook, and
each SAE encodes the batch's counted tokens at once. The positions counted are
a text's real tokens after its first (``counted_positions``): padding (mask 0) is dropped, and so is position 0,
the attention sink (BOS where the tokenizer adds one), whose residual is an outlier the
SAEs here never saw in training; any other special token is dropped too. The seed
prototype's "critical bug" was counting padded positions; the tests check that a padded
batch and the texts one at a time give the same statistics.

Per text and SAE, ``TextFeatures`` keeps the counted tokens and, per feature, the mean
activation over them, the maximum and the number of tokens it fires on; plus the
sparse per-token activations (feature ids and values of the active ones) for cards and
heatmaps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from layers_core.hooks.activations import run_with_cache
from layers_core.models.architecture import ModelParts
from layers_core.prompts.batching import left_padded, length_batches, pad_token_id


@dataclass(frozen=True)
class TextFeatures:
    """One text's feature activations under one SAE.

    Attributes:
        token_ids: The counted tokens (positions 1.. of the text, special tokens dropped).
        mean: ``[d_sae]`` mean activation over the counted tokens.
        max: ``[d_sae]`` largest activation.
        fired: ``[d_sae]`` number of counted tokens with activation > 0.
        token_features: Per counted token, ``(feature ids, values)`` of its active features.
        residual_mean: ``[d_model]`` the residual the SAE reads, averaged over the counted tokens.
    """

    token_ids: tuple[int, ...]
    mean: Tensor
    max: Tensor
    fired: Tensor
    token_features: tuple[tuple[Tensor, Tensor], ...]
    residual_mean: Tensor

    @property
    def n_tokens(self) -> int:
        """How many tokens were counted."""
        return len(self.token_ids)

    def values_of(self, feature: int) -> Tensor:
        """``[n_tokens]`` one feature's activation at each counted token (0 where it is not active)."""
        found = torch.zeros(self.n_tokens)
        for position, (ids, values) in enumerate(self.token_features):
            hit = ids == feature
            if bool(hit.any()):
                found[position] = values[hit][0]
        return found


def encode_texts(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text as the model reads it (with BOS where the tokenizer adds one)."""
    return [list(tokenizer(text, add_special_tokens=True)["input_ids"]) for text in texts]


def counted_positions(ids: Sequence[int], special: set[int]) -> list[int]:
    """Indices (within the text) of the tokens that count: after position 0, not special."""
    return [i for i in range(1, len(ids)) if ids[i] not in special]


def _summary(acts: Tensor, token_ids: list[int], resid: Tensor) -> TextFeatures:
    """``acts`` ``[n, d_sae]`` and ``resid`` ``[n, d_model]`` of the counted tokens -> their summary."""
    d_sae = acts.shape[-1]
    if acts.shape[0] == 0:
        zero = torch.zeros(d_sae)
        return TextFeatures((), zero, zero.clone(), torch.zeros(d_sae, dtype=torch.long), (),
                            torch.zeros(resid.shape[-1]))
    sparse = tuple((row.nonzero().flatten(), row[row != 0]) for row in acts)
    return TextFeatures(tuple(token_ids), acts.mean(0), acts.max(0).values, (acts > 0).sum(0), sparse,
                        resid.double().mean(0).float())


def text_features(
    model: nn.Module, parts: ModelParts, tokenizer: Any, texts: Sequence[str], saes: Mapping[int, Any], *,
    batch_size: int = 8,
) -> dict[int, list[TextFeatures]]:
    """Residual index -> per-text ``TextFeatures`` (in the order of ``texts``) for every SAE in ``saes``.

    ``saes`` maps a residual index to an SAE reading ``hooks[layer]``; the hook names are
    taken from each SAE's metadata.
    """
    encoded = encode_texts(tokenizer, texts)
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    hooks = {layer: sae.cfg.metadata.hook_name for layer, sae in saes.items()}
    found: dict[int, list[TextFeatures | None]] = {layer: [None] * len(texts) for layer in saes}
    pad = pad_token_id(tokenizer)
    with torch.no_grad():
        for rows in length_batches(encoded, batch_size):
            input_ids, mask = left_padded([encoded[i] for i in rows], pad)
            run = run_with_cache(model, parts, input_ids, list(dict.fromkeys(hooks.values())),
                                 attention_mask=mask, logits_at="none")
            width = input_ids.shape[1]
            kept = [counted_positions(encoded[index], special) for index in rows]
            slots = torch.tensor([slot for slot, k in enumerate(kept) for _ in k], dtype=torch.long)
            columns = torch.tensor([width - len(encoded[index]) + i for index, k in zip(rows, kept, strict=True)
                                    for i in k], dtype=torch.long)
            for layer, sae in saes.items():
                # Every counted token of the batch in one encode, then split back into texts.
                resid = run.cache[hooks[layer]][slots, columns].float()
                sizes = [len(k) for k in kept]
                acts = sae.encode(resid.to(sae.device, sae.dtype)).float().cpu().split(sizes)
                for index, k, text_acts, text_resid in zip(rows, kept, acts, resid.cpu().split(sizes), strict=True):
                    found[layer][index] = _summary(text_acts, [encoded[index][i] for i in k], text_resid)
    return {layer: [entry for entry in entries if entry is not None] for layer, entries in found.items()}
