"""What the benchmark runs for one model at one prompt length: 001's work and its floors.

Floors (the least any implementation must do):
    plain_forward: the model's forward pass, logits for the last position only.
    unembed_answer_rows: one matmul of the ``L+1`` answer-position rows with the unembedding.
    unembed_all_rows: the ``(L+1) x T`` rows, one plain ``F.linear`` per layer.
001's work:
    answer_sweep: ``capture_residuals(positions="last")`` + ``sweep_last_positions``
        for one prompt, as 001 would run it when only the answer position is needed.
    all_positions: ``capture_residuals(positions="all")`` + ``sweep_prompt`` (records at
        every position and the answer position in full), as ``analyse_prompt`` runs it.
    answer_sweep_tuned: the answer sweep under a tuned lens (a ``d x d`` map per layer before
        the head), timed against ``answer_sweep``; near-identity stand-in maps, since the
        time does not depend on the fitted values.
Extra, to show where time goes: ``unembed_all_rows_tiled`` is the sweep's own
tiled matmul without any statistics.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from layers_core.hooks.capture import capture_residuals
from layers_core.lens.layer_sweep import sweep_last_positions, sweep_prompt
from layers_core.lens.lens import Lens
from layers_core.lens.translators import LensIdentity, LensMaps
from layers_core.lens.vocab_tiles import VocabTiles
from layers_core.models.architecture import ModelParts
from layers_core.models.loading import LoadedModel
from layers_core.prompts.answer_alignment import align_answer

# Ordinary English so the model sees text like 001's prompts; repeated to any length.
FILLER = (
    "Every country has a capital city where its government meets. Travellers often visit the "
    "capital first, because museums, parliaments and old palaces gather there. "
)
QUESTION = "The capital of Germany is"
ANSWER = "Berlin"


@dataclass(frozen=True)
class BenchPrompt:
    """A prompt of exactly ``input_ids.shape[1]`` tokens ending with ``QUESTION``."""

    input_ids: Tensor  # [1, T] on the cpu
    answer_id: int | None


def bench_prompt(tokenizer, n_tokens: int) -> BenchPrompt:
    """``n_tokens`` tokens of filler text ending with the question; BOS kept when the tokenizer adds one."""
    if n_tokens < 2:
        raise ValueError(f"a benchmark prompt needs at least 2 tokens, got {n_tokens}")
    question = tokenizer(QUESTION).input_ids
    filler: list[int] = tokenizer(FILLER, add_special_tokens=False).input_ids
    body = filler * (n_tokens // max(len(filler), 1) + 1)
    prefix = question[:1] if question and question[0] == tokenizer.bos_token_id else []
    tail = question[len(prefix):]
    ids = (prefix + body + tail)
    ids = prefix + ids[len(ids) - (n_tokens - len(prefix)):]
    alignment = align_answer(tokenizer, QUESTION, ANSWER)
    return BenchPrompt(torch.tensor([ids], dtype=torch.long), alignment.answer_token_id)


def stand_in_maps(parts: ModelParts) -> LensMaps:
    """Near-identity tuned-lens maps of the model's shape (seeded), for timing a fitted lens without fitting one."""
    identity = LensIdentity("tuned", "bench-stand-in", "none", {}, parts.n_layers, parts.d_model)
    generator = torch.Generator().manual_seed(0)
    noise = 0.01 * torch.randn(parts.n_layers, parts.d_model, parts.d_model, generator=generator)
    return LensMaps(identity, torch.eye(parts.d_model) + noise, torch.zeros(parts.n_layers, parts.d_model))


class Workloads:
    """Callables for every measured case of one model and prompt, sharing prepared inputs."""

    def __init__(self, loaded: LoadedModel, n_tokens: int) -> None:
        """Prepare the prompt, the lens and the normalised rows the floors multiply.

        Args:
            loaded: The model, as 001 loads it.
            n_tokens: Prompt length.
        """
        self.model = loaded.model
        self.device = loaded.plan.device
        self.parts: ModelParts = loaded.parts
        fp32_unembed = loaded.plan.dtype != "float32"  # what 001 does on a GPU
        self.lens = Lens(self.parts, mode="norm", fp32_unembed=fp32_unembed)
        # The timing of a fitted lens does not depend on its values: near-identity maps stand in for a fit.
        self.tuned_lens = Lens(self.parts, mode="tuned", fp32_unembed=fp32_unembed, maps=stand_in_maps(self.parts))
        self.prompt = bench_prompt(loaded.tokenizer, n_tokens)
        self.input_ids = self.prompt.input_ids.to(self.device)
        self.n_tokens = n_tokens
        resid, _ = self.capture_all()
        self._tiles = VocabTiles(self.lens)
        self._normed = self.lens.normalise_stack(resid)
        self._weight = self.parts.unembed.weight
        self._bias = getattr(self.parts.unembed, "bias", None)
        self._keeps_logits = "logits_to_keep" in inspect.signature(self.model.forward).parameters

    @property
    def vocab_size(self) -> int:
        """Vocabulary of the unembedding."""
        return int(self._weight.shape[0])

    def answer_cases(self) -> dict[str, Callable[[], object]]:
        """The answer-position sweep and its floor, timed together in one group of rounds."""
        return {
            "plain_forward": self.plain_forward,
            "unembed_answer_rows": self.unembed_answer_rows,
            "answer_sweep": self.answer_sweep,
            "answer_sweep_tuned": self.answer_sweep_tuned,
        }

    def all_position_cases(self) -> dict[str, Callable[[], object]]:
        """The all-position records, their floor and the bare tiled matmul, timed together."""
        return {
            "plain_forward": self.plain_forward,
            "unembed_all_rows": self.unembed_all_rows,
            "unembed_all_rows_tiled": self.unembed_all_rows_tiled,
            "all_positions": self.all_positions,
        }

    @property
    def normalised_rows_bytes(self) -> int:
        """Bytes of the ``(L+1) x T`` normalised rows the all-position decode multiplies."""
        return self._normed.numel() * self._normed.element_size()

    @torch.no_grad()
    def plain_forward(self) -> Tensor:
        """The model's forward pass with logits for the last position only."""
        if self._keeps_logits:
            return self.model(input_ids=self.input_ids, use_cache=False, logits_to_keep=1).logits
        return self.model(input_ids=self.input_ids, use_cache=False).logits[:, -1]

    @torch.no_grad()
    def unembed_answer_rows(self) -> Tensor:
        """One matmul: the ``L+1`` answer-position rows times the unembedding."""
        rows = self._normed[:, -1].to(self._weight.dtype)
        return F.linear(rows, self._weight, self._bias)

    @torch.no_grad()
    def unembed_all_rows(self) -> None:
        """``L+1`` matmuls of ``[T, d]`` rows with the unembedding, each result dropped."""
        for layer in range(self._normed.shape[0]):
            F.linear(self._normed[layer].to(self._weight.dtype), self._weight, self._bias)

    @torch.no_grad()
    def unembed_all_rows_tiled(self) -> None:
        """The sweep's tiled matmul (same slices and row blocks), no statistics."""
        rows = self._normed.reshape(-1, self._normed.shape[-1])
        block = self._tiles.plan.row_block
        for index in range(len(self._tiles.slices)):
            for start in range(0, rows.shape[0], block):
                self._tiles.logits(rows[start:start + block], index)

    def answer_sweep(self) -> list:
        """001's answer-position sweep of one prompt: capture the last position, decode every layer."""
        resid, _ = capture_residuals(self.model, self.parts, self.input_ids, positions="last")
        return sweep_last_positions(self.lens, resid[:, :, 0], [self.prompt.answer_id])

    def answer_sweep_tuned(self) -> list:
        """The same sweep under a tuned lens: one d x d map per layer before the head."""
        resid, _ = capture_residuals(self.model, self.parts, self.input_ids, positions="last")
        return sweep_last_positions(self.tuned_lens, resid[:, :, 0], [self.prompt.answer_id])

    def capture_all(self) -> tuple[Tensor, Tensor]:
        """Capture every position and the model's last-position logits, as ``analyse_prompt`` does."""
        resid, model_logits = capture_residuals(
            self.model, self.parts, self.input_ids, positions="all", logits_at="last"
        )
        return resid[:, 0], model_logits[0, -1]

    def decode_all(self, resid: Tensor) -> object:
        """``sweep_prompt`` on captured residuals."""
        return sweep_prompt(self.lens, resid, self.prompt.answer_id)

    def all_positions(self) -> object:
        """001's per-prompt work: capture every position, then records and the answer position."""
        resid, _ = self.capture_all()
        return self.decode_all(resid)
