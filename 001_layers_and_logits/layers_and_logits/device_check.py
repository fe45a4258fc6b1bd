"""--check-device: is the GPU's output for this model close to the cpu's float32 output?

TransformerLens warns that MPS may give silently wrong results (its issue
#1178). This check runs the main prompt once more on the cpu in float32 and
reports the KL divergence between the two next-token distributions, so a user
can see for their own model whether the GPU can be trusted.
"""

from __future__ import annotations

import torch

from layers_core import metrics
from layers_core.models.loading import LoadedModel, free_model, load_model
from layers_core.prompts.prompt_battery import PromptCase

# Half precision against float32 normally differs by far less than this.
TRUST_KL_BITS = 0.05


def _last_logits(loaded: LoadedModel, prompt: str) -> torch.Tensor:
    ids = loaded.tokenizer(prompt, return_tensors="pt").input_ids.to(loaded.plan.device)
    with torch.no_grad():
        return loaded.model(input_ids=ids, use_cache=False).logits[0, -1].float().cpu()


def check_against_cpu(loaded: LoadedModel, case: PromptCase, trust_remote_code: bool = False) -> dict:
    """Compare the model's next-token distribution on its device with a cpu float32 copy."""
    if loaded.plan.device == "cpu" and loaded.plan.dtype == "float32":
        return {"done": False, "reason": "the model already runs on the cpu in float32: nothing to compare"}
    device_logits = _last_logits(loaded, case.prompt)
    reference = load_model(loaded.spec, device="cpu", dtype="float32", trust_remote_code=trust_remote_code)
    try:
        cpu_logits = _last_logits(reference, case.prompt)
    finally:
        free_model(reference)
    kl = float(metrics.kl_bits(cpu_logits, device_logits))
    agree = int(cpu_logits.argmax()) == int(device_logits.argmax())
    trusted = agree and kl < TRUST_KL_BITS
    return {
        "done": True,
        "prompt_id": case.prompt_id,
        "device": loaded.plan.device,
        "dtype": loaded.plan.dtype,
        "reference": "cpu float32",
        "kl_bits": kl,
        "top1_agree": agree,
        "trusted": trusted,
        "verdict": (
            f"{loaded.plan.device} output matches the cpu within {TRUST_KL_BITS} bits"
            if trusted else
            f"{loaded.plan.device} output differs from the cpu (KL {kl:.3g} bits, top-1 "
            f"{'agrees' if agree else 'differs'}): prefer --device cpu for this model"
        ),
    }
