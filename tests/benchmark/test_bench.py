"""The benchmark runs end to end on a tiny checkpoint and writes its tables (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench import attribution_report, patching_report
from bench.memory import peak_bytes, weights_bytes
from bench.report import TARGETS, check_targets, round_ratio
from bench.timing import Timing, interleaved
from tests.tolerances import fp_tol

ROOT = Path(__file__).resolve().parents[2]
# Timing.as_dict stores samples rounded to the microsecond: each is off by up to half of one.
SAMPLE_ROUNDING_S = 0.5e-6
REQUIRED = (
    "ratio_answer_sweep", "ratio_all_positions", "mem_over_weights_frac", "ratio_cached_load", "battery_speedup",
    "ratio_tuned_answer_sweep", "lens_fit_seconds",
)


@pytest.fixture(scope="module")
def bench_run(tiny_checkpoints, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``run_bench.py`` on a tiny Gemma-3 checkpoint, two lengths, one repeat, five facts."""
    out = tmp_path_factory.mktemp("bench")
    folder = tiny_checkpoints("gemma3")
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run_bench.py"), "--models", str(folder), "--lengths", "8", "24",
         "--repeats", "1", "--answer-repeats", "1", "--attribution-repeats", "1", "--patching-repeats", "1",
         "--sae-repeats", "1", "--battery-facts", "5",
         "--device", "cpu", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return out


def _rounded_ratio_tol(numerator: float, denominator: float, denominator_terms: int) -> float:
    """Relative error of ``numerator / denominator`` recomputed from samples rounded to the microsecond.

    The JSON's ratio came from the unrounded samples; a fast machine's sub-millisecond samples
    make this rounding, not float arithmetic, the larger error.
    """
    rounding = SAMPLE_ROUNDING_S / numerator + denominator_terms * SAMPLE_ROUNDING_S / denominator
    return rounding + fp_tol(1.0, n_terms=4, dtype=torch.float64)  # and the division's own rounding


@pytest.mark.slow
def test_latest_json_has_one_entry_per_model_and_length(bench_run: Path, tiny_checkpoints) -> None:
    results = json.loads((bench_run / "latest.json").read_text(encoding="utf-8"))
    entries = results["entries"]
    assert [(e["model"], e["tokens"]) for e in entries] == [(str(tiny_checkpoints("gemma3")), 8),
                                                           (str(tiny_checkpoints("gemma3")), 24)]
    for entry in entries:
        for key in REQUIRED:
            assert isinstance(entry[key], float) and entry[key] > 0, key
        assert set(entry["targets"]) == set(TARGETS)
        for check in entry["targets"].values():
            assert check["met"] in (True, False)
        # Each ratio is what the raw samples of its own group's round say (one repeat: one round).
        answer = {name: t["samples"][0] for name, t in entry["seconds"]["answer"].items()}
        floor = answer["plain_forward"] + answer["unembed_answer_rows"]
        assert entry["ratio_answer_sweep"] == pytest.approx(
            answer["answer_sweep"] / floor, rel=_rounded_ratio_tol(answer["answer_sweep"], floor, 2)
        )
        every = {name: t["samples"][0] for name, t in entry["seconds"]["all_positions"].items()}
        floor = every["plain_forward"] + every["unembed_all_rows"]
        assert entry["ratio_all_positions"] == pytest.approx(
            every["all_positions"] / floor, rel=_rounded_ratio_tol(every["all_positions"], floor, 2)
        )
        memory = entry["memory"]
        assert memory["weights_bytes"] > 0
        held = memory["all_positions_decode_peak_bytes"] - memory["normalised_rows_bytes"]
        assert entry["all_positions_logits_over_layer_logits"] == pytest.approx(
            max(0, held) / memory["one_layer_logits_bytes"]
        )
        assert entry["loads"]["gguf_cold"] is None  # a folder has no GGUF step, and says so
        assert "no GGUF step" in entry["loads"]["gguf_cold_reason"]
        assert entry["battery"]["n_facts"] == 5
        fit = entry["lens_fit"]
        assert fit["seconds"] == pytest.approx(fit["linear_seconds"] + fit["tuned_seconds"], abs=0.011)
        assert fit["peak_bytes"] > 0 and fit["tuned_recipe"]["steps"] > fit["peak_steps"]
    assert entries[0]["lens_fit"] == entries[1]["lens_fit"]  # fitted once per model
    assert results["machine"]["load_before"] is None or len(results["machine"]["load_before"]) == 3


@pytest.mark.slow
def test_latest_json_has_one_attribution_entry_per_model_and_length(bench_run: Path) -> None:
    results = json.loads((bench_run / "latest.json").read_text(encoding="utf-8"))
    entries = results["attribution_entries"]
    assert [e["tokens"] for e in entries] == [8, 24]
    for entry in entries:
        assert set(entry["targets"]) == set(attribution_report.TARGETS)
        assert all(check["met"] in (True, False) for check in entry["targets"].values())
        # One repeat: the ratio is the one round's analysis over its floor.
        seconds = {name: t["samples"][0] for name, t in entry["seconds"].items()}
        floor = seconds["eager_forward"] + seconds["head_products"]
        assert entry["ratio_analysis"] == pytest.approx(
            seconds["analysis"] / floor, rel=_rounded_ratio_tol(seconds["analysis"], floor, 2)
        )
        memory = entry["memory"]
        assert memory["pattern_stack_bytes"] == entry["n_layers"] * entry["n_heads"] * entry["tokens"] ** 2 * 4
        assert entry["analysis_mem_over_weights_frac"] == pytest.approx(
            memory["analysis_peak_bytes"] / memory["weights_bytes"]
        )
        assert entry["battery"]["n_facts"] == 5
    assert results["settings"]["experiments"] == ["001", "002", "003", "004"]


@pytest.mark.slow
def test_latest_json_has_one_sae_entry_per_model(bench_run: Path) -> None:
    results = json.loads((bench_run / "latest.json").read_text(encoding="utf-8"))
    (entry,) = results["sae_entries"]
    # The floor counts the same tokens text_features encodes, and every time is a positive measurement.
    assert entry["floor_rows_match"] is True and entry["floor_seconds"] > 0
    assert entry["extraction_ratio"] > 0 and entry["read_tokens_per_s"] > 0 and entry["train_tokens_per_s"] > 0
    assert "004" in (bench_run / "latest.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_latest_json_has_one_patching_entry_per_model(bench_run: Path) -> None:
    results = json.loads((bench_run / "latest.json").read_text(encoding="utf-8"))
    (entry,) = results["patching_entries"]
    assert set(entry["targets"]) == set(patching_report.TARGETS)
    assert all(check["met"] in (True, False) for check in entry["targets"].values())
    assert entry["resid_runs"] == (entry["n_layers"] + 1) * entry["tokens"]
    assert entry["n_batches"] == -(-entry["resid_runs"] // entry["batch_size"])
    seconds = {name: t["samples"][0] for name, t in entry["seconds"].items()}
    for ratio, case, floor in (("ratio_resid_sweep", "resid_sweep", "plain_batches"),
                               ("ratio_attribution", "attribution", "plain_forward")):
        assert entry[ratio] == pytest.approx(seconds[case] / seconds[floor],
                                             rel=_rounded_ratio_tol(seconds[case], seconds[floor], 1))
    assert entry["sweep_peak_over_budget"] == pytest.approx(entry["sweep_peak_bytes"] / entry["budget_bytes"])


@pytest.mark.slow
def test_markdown_table_lists_every_entry_and_target(bench_run: Path) -> None:
    table = (bench_run / "latest.md").read_text(encoding="utf-8")
    assert "## Time (ms) and ratios to the floor" in table
    assert "## Targets" in table
    for name in TARGETS:
        assert table.count(f"| {name} |") == 2
    assert "## Fitting the lenses from an empty cache" in table
    assert "## Experiment 002: targets" in table
    for name in attribution_report.TARGETS:
        assert table.count(f"| {name} |") == 2
    assert "## Experiment 003: targets" in table
    for name in patching_report.TARGETS:
        assert table.count(f"| {name} |") == 1
    assert len(list(bench_run.glob("bench-*.json"))) == 1


def test_round_ratio_is_the_median_of_per_round_ratios() -> None:
    timings = {"case": Timing((2.0, 9.0, 3.0)), "a": Timing((1.0, 1.0, 1.0)), "b": Timing((1.0, 2.0, 2.0))}
    # Per round: 2/2, 9/3, 3/3, so the median is 1.0; the ratio of the medians would be 3/2.
    assert round_ratio(timings, "case", ("a", "b")) == pytest.approx(1.0)


def test_attribution_ratios_and_lens_extra_are_medians_of_rounds() -> None:
    timings = {
        "eager_forward": Timing((1.0, 2.0, 1.0)), "head_products": Timing((0.0, 0.0, 0.0)),
        "eager_forward_attentions": Timing((1.0, 2.0, 1.0)), "pattern_pass": Timing((1.0, 2.0, 1.0)),
        "analysis": Timing((1.2, 2.2, 1.1)), "analysis_with_lens": Timing((1.5, 2.3, 1.4)),
    }
    entry = attribution_report.entry("m", 16, {}, timings, None, None)
    # Per round 1.2, 1.1, 1.1: median 1.1 (the ratio of the medians would be 1.2).
    assert entry["ratio_analysis"] == pytest.approx(1.1)
    # The lens adds 0.3, 0.1, 0.3 s, i.e. 0.3, 0.05, 0.3 floors.
    assert entry["lens_extra"]["seconds"] == pytest.approx(0.3)
    assert entry["lens_extra"]["over_floor"] == pytest.approx(0.3)
    assert entry["targets"]["ratio_analysis"]["met"] is True
    assert entry["targets"]["analysis_mem_over_weights_frac"]["met"] is None


def test_target_checks_compare_in_the_right_direction() -> None:
    checks = check_targets({"ratio_answer_sweep": 1.2, "battery_speedup": 2.5, "ratio_cached_load": None})
    assert checks["ratio_answer_sweep"]["met"] is False
    assert checks["battery_speedup"]["met"] is True
    assert checks["ratio_cached_load"]["met"] is None


def test_peak_bytes_sees_a_temporary_tensor() -> None:
    size = 4_000_000
    peak = peak_bytes(lambda: torch.ones(size // 4).sum(), "cpu")
    assert size <= peak < 2 * size


def test_weights_bytes_counts_tied_weights_once() -> None:
    embed = torch.nn.Embedding(10, 4)
    head = torch.nn.Linear(4, 10, bias=False)
    head.weight = embed.weight
    model = torch.nn.ModuleDict({"embed": embed, "head": head})
    assert weights_bytes(model) == 10 * 4 * 4


def test_interleaved_runs_every_case_in_every_round_alternating_the_order() -> None:
    calls: list[str] = []
    timings = interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3, "cpu", warmup=1)
    assert calls == ["a", "b", "b", "a"] * 2
    assert all(len(t.samples) == 3 for t in timings.values())
