"""The benchmark runs end to end on a tiny checkpoint and writes its tables (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench import ablation_sweep_report, attribution_report, patching_report
from bench.ablation_sweep import REMOVALS, AblationSweepWorkloads, check_tolerance
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
         "--sae-repeats", "1", "--ablation-repeats", "1", "--battery-facts", "5",
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
    assert results["settings"]["experiments"] == ["001", "002", "003", "004", "005"]


@pytest.mark.slow
def test_latest_json_has_one_sae_entry_per_model(bench_run: Path) -> None:
    results = json.loads((bench_run / "latest.json").read_text(encoding="utf-8"))
    (entry,) = results["sae_entries"]
    # The floor counts the same tokens text_features encodes, and every time is a positive measurement.
    assert entry["floor_rows_match"] is True and entry["floor_seconds"] > 0
    assert entry["extraction_ratio"] > 0 and entry["read_tokens_per_s"] > 0 and entry["train_tokens_per_s"] > 0
    assert "004" in (bench_run / "latest.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_latest_json_has_one_ablation_entry_per_model(bench_run: Path) -> None:
    results = json.loads((bench_run / "latest.json").read_text(encoding="utf-8"))
    assert results["schema_version"] == 5 and results["settings"]["ablation_repeats"] == 1
    (entry,) = results["ablation_entries"]
    assert set(entry["targets"]) == set(ablation_sweep_report.TARGETS)
    assert entry["targets"]["ablation_ratio"]["met"] in (True, False)
    assert entry["floor_passes_match"] is True and entry["forward_passes"] == entry["scored_items"] * REMOVALS
    # One repeat: the ratio is the one round's sweep over its floor.
    seconds = {name: t["samples"][0] for name, t in entry["seconds"].items()}
    assert entry["ablation_ratio"] == pytest.approx(
        seconds["ablation_sweep"] / seconds["batched_forwards"],
        rel=_rounded_ratio_tol(seconds["ablation_sweep"], seconds["batched_forwards"], 1),
    )
    assert entry["memory"]["sweep_peak_bytes"] > 0 and entry["memory"]["floor_peak_bytes"] > 0
    assert "## Experiment 005: targets" in (bench_run / "latest.md").read_text(encoding="utf-8")


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
    for name in ablation_sweep_report.TARGETS:
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


@pytest.fixture(scope="module")
def ablation_work(tiny_checkpoints) -> AblationSweepWorkloads:
    """005's ablation workloads on the tiny Gemma-3 checkpoint (its floor check and forward counts run here)."""
    from layers_core.models.loading import load_model

    loaded = load_model(str(tiny_checkpoints("gemma3")), device="cpu", dtype="float32", check_bridge=False)
    return AblationSweepWorkloads(loaded)


def test_ablation_floor_matches_the_clean_logits(ablation_work: AblationSweepWorkloads) -> None:
    described = ablation_work.describe()
    assert described["floor_check_max_abs_diff"] <= described["floor_check_tolerance"]
    # 1e-4 of the logits' magnitude in float32 (at least 1e-4); 16 epsilons in a coarser dtype.
    assert check_tolerance(torch.float32, 30.0) == pytest.approx(3e-3)
    assert check_tolerance(torch.float32, 0.5) == pytest.approx(1e-4)
    assert check_tolerance(torch.bfloat16, 1.0) == pytest.approx(16 * 2**-7)
    # Each floor batch is one item batch repeated once per removal.
    assert sum(described["floor_batch_rows"]) == described["forward_passes"]
    assert described["floor_tokens"] == described["padded_tokens"] * REMOVALS


def test_ablation_sweep_and_floor_run_the_same_forward_passes(ablation_work: AblationSweepWorkloads) -> None:
    described = ablation_work.describe()
    passes, batches = described["scored_items"] * REMOVALS, described["batches"]
    sweep, floor = described["sweep_forwards"], described["floor_forwards"]
    assert described["forward_passes"] == passes > 0
    # Full forward passes (rows reaching the head): items x removals in both.
    assert sweep["head_rows"] == floor["head_rows"] == passes
    # The sweep: removals x batches runs from the hook on, plus one clean read per batch (stopped at the hook).
    assert sweep["model_calls"] == batches * (REMOVALS + 1)
    assert sweep["model_rows"] == passes + described["scored_items"]
    # The floor: one forward per item batch, removals x its rows.
    assert floor["model_calls"] == batches and floor["model_rows"] == passes


def test_a_floor_with_other_forward_passes_is_refused(
    ablation_work: AblationSweepWorkloads, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_repeat = [{**kwargs, "input_ids": kwargs["input_ids"][: len(ids)],
                   "attention_mask": kwargs["attention_mask"][: len(ids)],
                   "position_ids": kwargs["position_ids"][: len(ids)]}
                  for kwargs, (ids, _) in zip(ablation_work._kwargs, ablation_work._batches, strict=True)]
    kept = ablation_work.counts
    monkeypatch.setattr(ablation_work, "_kwargs", one_repeat)
    with pytest.raises(RuntimeError, match="forward passes"):
        ablation_work.check_forward_counts()
    assert ablation_work.counts is kept  # a refused count is not kept


def test_ablation_cases_run_and_return(ablation_work: AblationSweepWorkloads) -> None:
    cases = ablation_work.cases()
    assert set(cases) == {"ablation_sweep", "batched_forwards"}
    scores = cases["ablation_sweep"]()
    assert isinstance(scores, list) and len(scores) == REMOVALS
    assert all(len(s.greedy) == len(ablation_work.encoded) for s in scores)
    assert cases["batched_forwards"]() == ablation_work.describe()["forward_passes"]
    timings = interleaved(cases, 1, "cpu", warmup=0)
    assert all(len(t.samples) == 1 and t.samples[0] > 0 for t in timings.values())


def test_ablation_entry_computes_the_per_round_ratio_and_the_verdict() -> None:
    described = {"sweep_forwards": {"head_rows": 10}, "floor_forwards": {"head_rows": 10}, "forward_passes": 10,
                 "layer": 1, "n_layers": 3, "hook": "blocks.1.hook_resid_pre", "scored_items": 2, "removals": 5,
                 "batch_size": 16, "batches": 1, "floor_batch_rows": [10]}
    timings = {"batched_forwards": Timing((1.0, 2.0, 1.0)), "ablation_sweep": Timing((1.5, 2.8, 1.4))}
    entry = ablation_sweep_report.entry("m", {}, described, timings, None)
    # Per round 1.5, 1.4, 1.4: median 1.4; medians 1.5 / 1.0.
    assert entry["ablation_ratio"] == pytest.approx(1.4)
    assert entry["ablation_ratio_of_medians"] == pytest.approx(1.5)
    assert entry["floor_passes_match"] is True
    assert entry["targets"]["ablation_ratio"]["met"] is False
    # Per round 1.2, 1.1, 1.5: median 1.2, met, though the medians' ratio is 1.5.
    met = ablation_sweep_report.entry("m", {}, described, {**timings, "ablation_sweep": Timing((1.2, 2.2, 1.5))},
                                      None)
    assert met["targets"]["ablation_ratio"]["met"] is True
    lines = ablation_sweep_report.markdown_lines([entry, met])
    assert sum(line.startswith("| m | ablation_ratio |") for line in lines) == 2
    assert ablation_sweep_report.markdown_lines([]) == []
