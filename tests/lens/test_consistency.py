"""The last-layer consistency rule, and that the run and the reports both judge by it."""

from __future__ import annotations

import pytest
import torch

from layers_core.lens import consistency
from layers_core.lens.consistency import KL_LIMIT_BITS, consistency_ok


def test_the_limit_is_strict_and_needs_the_same_top1() -> None:
    assert KL_LIMIT_BITS == 1e-3
    assert consistency_ok(0.0, True) and consistency_ok(9.99e-4, True)
    assert not consistency_ok(1e-3, True)  # at the limit: not ok
    assert not consistency_ok(0.0, False) and not consistency_ok(None, True) and not consistency_ok(0.0, None)


def test_the_run_and_the_reports_use_this_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    from layers_and_logits.prompt_analysis import consistency_check
    from layers_and_logits.reports.md_model import consistency_passed

    logits = torch.tensor([2.0, 1.0, 0.5])
    assert consistency_check(logits, logits)["ok"] and consistency_passed({"kl_bits": 0.0, "top1_agree": True})
    monkeypatch.setattr(consistency, "KL_LIMIT_BITS", 0.0)  # KL 0 is no longer strictly below the limit
    check = consistency_check(logits, logits)
    assert check["kl_bits"] == 0.0 and check["ok"] is False and check["warning"]
    assert not consistency_passed({"kl_bits": 0.0, "top1_agree": True})
