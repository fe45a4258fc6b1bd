"""One prompt through the lens: capture, decode every layer, and lay the results out as rows."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from layers_core import metrics
from layers_core.hooks.capture import capture_residuals
from layers_core.lens.consistency import consistency_ok
from layers_core.lens.layer_sweep import PromptSweep, sweep_prompt
from layers_core.lens.lens import Lens
from layers_core.models.loading import LoadedModel
from layers_core.prompts.answer_alignment import AnswerAlignment, align_answer, check_prompt, model_context_length
from layers_core.prompts.prompt_battery import PromptCase
from layers_core.prompts.token_text import TokenText

FINAL_TOP_K = 10
TEMPERATURE_TOP_K = 5


@dataclass
class PromptResult:
    """Everything measured for one prompt."""

    case: PromptCase
    alignment: AnswerAlignment
    prompt_ids: list[int]
    sweep: PromptSweep
    model_logits: Tensor  # [V] fp32: the model's own output at the answer position
    consistency: dict  # the norm lens at layer L against the model's own logits


def analyse_prompt(loaded: LoadedModel, lens: Lens, head: Lens, case: PromptCase) -> PromptResult:
    """Run one prompt and decode every layer at every position.

    Args:
        loaded: The model under analysis.
        lens: The lens the user chose.
        head: A ``norm`` lens: the model's own head, for the consistency check.
        case: The prompt and its expected answer.
    """
    model, tokenizer, parts = loaded.model, loaded.tokenizer, loaded.parts
    context_length = model_context_length(model.config)
    prompt_ids = check_prompt(tokenizer, case.prompt, context_length)
    alignment = align_answer(tokenizer, case.prompt, case.answer)
    input_ids = torch.tensor([prompt_ids], dtype=torch.long)
    resid, model_logits = capture_residuals(model, parts, input_ids, positions="all", logits_at="last")
    own = model_logits[0, -1]
    resid = resid[:, 0]  # [L+1, T, d]
    sweep = sweep_prompt(lens, resid, alignment.answer_token_id)
    head_logits = sweep.final_logits if lens.mode == "norm" else head.logits(resid[-1, -1:], parts.n_layers)[0]
    return PromptResult(case, alignment, prompt_ids, sweep, own, consistency_check(own, head_logits))


def consistency_check(model_logits: Tensor, lens_logits: Tensor) -> dict:
    """How exactly the lens at the last layer reproduces the model's own output."""
    kl = float(metrics.kl_bits(model_logits, lens_logits))
    agree = int(model_logits.argmax()) == int(lens_logits.argmax())
    ok = consistency_ok(kl, agree)
    return {
        "kl_bits": kl,
        "top1_agree": agree,
        "max_abs_logit_diff": float((model_logits - lens_logits).abs().max()),
        "ok": ok,
        "warning": None if ok else (
            f"the lens at the last layer does not reproduce the model's output "
            f"(KL {kl:.3g} bits, top-1 {'agrees' if agree else 'differs'}): do not trust this run's lens numbers"
        ),
    }


def _top_columns(names: list[str], probs: list[float], k: int) -> dict[str, str | float | None]:
    row: dict[str, str | float | None] = {}
    for i in range(k):
        row[f"top{i + 1}"] = names[i] if i < len(names) else None
        row[f"p_top{i + 1}"] = probs[i] if i < len(probs) else None
    return row


def pure_next_token_rows(result: PromptResult, n_layers: int, text: TokenText) -> list[dict]:
    """One row per layer at the answer position (schema: pure-next-token CSV)."""
    answer = result.sweep.answer
    collapse = _copy_collapse(result)
    rows = []
    for layer in range(n_layers + 1):
        tops = _top_columns(text.many(answer.top_ids[layer]), answer.top_probs[layer], len(answer.top_ids[layer]))
        rows.append({
            "prompt_id": result.case.prompt_id,
            "layer": layer,
            "rel_depth": metrics.rel_depth(layer, n_layers),
            "entropy_bits": answer.entropy_bits[layer],
            "p_answer": answer.p_answer[layer] if answer.p_answer is not None else None,
            "answer_rank": answer.answer_rank[layer] if answer.answer_rank is not None else None,
            "kl_to_final_bits": answer.kl_to_final_bits[layer],
            "cosine_to_final": answer.cosine_to_final[layer],
            "copy_collapse": collapse[layer],
            **tops,
        })
    return rows


def record_rows(result: PromptResult, n_layers: int, text: TokenText) -> list[dict]:
    """One row per layer and position (schema: records CSV)."""
    records = result.sweep.records
    tokens = text.many(result.prompt_ids)
    rows = []
    for layer in range(n_layers + 1):
        for pos, token in enumerate(tokens):
            ids, probs = records.top_ids[layer][pos], records.top_probs[layer][pos]
            rows.append({
                "prompt_id": result.case.prompt_id, "layer": layer, "pos": pos, "token": token,
                "entropy_bits": records.entropy_bits[layer][pos],
                **_top_columns(text.many(ids), probs, len(ids)),
            })
    return rows


def _copy_collapse(result: PromptResult) -> list[bool]:
    answer = result.sweep.answer
    top1 = [ids[0] for ids in answer.top_ids]
    p_top1 = [probs[0] for probs in answer.top_probs]
    return metrics.copy_collapse_flags(top1, p_top1, result.prompt_ids)


def _milestone_dict(milestone: metrics.Milestone) -> dict:
    return {"layer": milestone.layer, "rel_depth": milestone.rel_depth}


def _token_probs(text: TokenText, ids: list[int], probs: list[float]) -> list[dict]:
    return [{"token": text(i), "token_id": int(i), "p": float(p)} for i, p in zip(ids, probs, strict=True)]


def prompt_summary(result: PromptResult, n_layers: int, text: TokenText) -> dict:
    """The prompt's JSON entry: alignment, milestones, copy collapse, key layers, final prediction."""
    answer = result.sweep.answer
    found = metrics.milestones(answer.answer_rank, answer.p_answer, answer.kl_to_final_bits, n_layers)
    collapse = _copy_collapse(result)
    # Layer 0 is the input token's own embedding: with tied embeddings the lens decodes it to
    # that very token, a copy by construction, so the summary counts collapse from layer 1.
    first_collapse = next((layer for layer, flag in enumerate(collapse) if flag and layer > 0), None)
    final_probs, final_ids = metrics.top_k(result.model_logits, FINAL_TOP_K)
    align = result.alignment
    return {
        "prompt_id": result.case.prompt_id,
        "role": result.case.role,
        "prompt": result.case.prompt,
        "answer": result.case.answer,
        "alignment": {
            "ok": align.ok, "answer_token": None if align.answer_token_id is None else text(align.answer_token_id),
            "answer_token_id": align.answer_token_id, "reason": align.reason,
        },
        "n_tokens": len(result.prompt_ids),
        "tokens": text.many(result.prompt_ids),
        "milestones": {name: _milestone_dict(m) for name, m in found.items()},
        "copy_collapse": {
            "first_layer": first_collapse,
            "rel_depth": None if first_collapse is None else metrics.rel_depth(first_collapse, n_layers),
            "n_layers": sum(collapse[1:]),
            "layer0_flagged": collapse[0],
        },
        "key_layers": [_key_layer(result, layer, n_layers, text) for layer in metrics.key_layers(n_layers)],
        "final_prediction": {
            "entropy_bits": float(metrics.entropy_bits(result.model_logits)),
            "top": _token_probs(text, final_ids.tolist(), final_probs.tolist()),
        },
        "temperature_exploration": [
            {"temperature": entry["temperature"], "entropy_bits": entry["entropy_bits"],
             "top": _token_probs(text, entry["top_ids"], entry["top_probs"])}
            for entry in metrics.temperature_exploration(result.model_logits, k=TEMPERATURE_TOP_K)
        ],
        "last_layer_consistency": result.consistency,
    }


def _key_layer(result: PromptResult, layer: int, n_layers: int, text: TokenText) -> dict:
    answer = result.sweep.answer
    return {
        "layer": layer,
        "rel_depth": metrics.rel_depth(layer, n_layers),
        "top1": text(answer.top_ids[layer][0]),
        "p_top1": answer.top_probs[layer][0],
        "answer_rank": None if answer.answer_rank is None else answer.answer_rank[layer],
        "p_answer": None if answer.p_answer is None else answer.p_answer[layer],
    }
