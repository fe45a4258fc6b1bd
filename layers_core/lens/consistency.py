"""The last-layer consistency rule: does the lens at layer L reproduce the model's own output?

One definition, used by the run that measures it (001's ``prompt_analysis``) and
by the reports that judge it afterwards. Torch-free, so ``report.py`` can import it.
"""

from __future__ import annotations

# KL(model output ‖ lens at layer L) in bits from which a run's lens numbers are not trusted. (The
# invariant test holds the norm lens to far less, 1e-6 bits in fp32: NOTES.md, "The invariant".)
KL_LIMIT_BITS = 1e-3


def consistency_ok(kl_bits: float | None, top1_agree: bool | None) -> bool:
    """True when the lens reproduces the model at the last layer: ``kl_bits < KL_LIMIT_BITS`` and the same top-1.

    A missing KL or agreement (None) is not a pass.
    """
    if kl_bits is None or top1_agree is not True:
        return False
    return float(kl_bits) < KL_LIMIT_BITS
