"""Experiment 001 end to end: the real CLI on the bundled SmolLM2 and on tiny checkpoints.

Each run goes through ``001_layers_and_logits/run.py`` in a subprocess, as the
user runs it, so exit codes, one-line errors and the run folder are what a
user would see.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from layers_and_logits.artefact_schema import facts_columns, lens_kl_columns, pure_next_token_columns, records_columns
from layers_core.runs.artefacts import read_csv_artefact
from tests.experiments.cli_runs import CSV_ROUNDING, ROOT, interruptible, load_json, run_script
from tests.tolerances import bits, fp32_tol

RUN = ROOT / "001_layers_and_logits" / "run.py"


def run_001(*args: str, cwd: Path = ROOT, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run experiment 001 with ``args`` and capture its output."""
    return run_script(RUN, "--no-reports", *args, cwd=cwd, timeout=timeout)


@pytest.fixture(scope="module")
def smollm2_runs(tmp_path_factory: pytest.TempPathFactory, tinycave_cache: Path) -> tuple[Path, Path]:
    """Two runs of the default battery on SmolLM2 into two folders (for the byte-identity check)."""
    outs = []
    for index in range(2):
        out = tmp_path_factory.mktemp(f"smollm2-run{index}")
        result = run_001("--models", "smollm2-135m", "--facts", "none", "--out", str(out))
        assert result.returncode == 0, result.stderr
        outs.append(out / "run-latest")
    return outs[0], outs[1]


@pytest.mark.slow
def test_smollm2_completion_answer_is_berlin_at_last_layer(smollm2_runs: tuple[Path, Path]) -> None:
    run_dir = smollm2_runs[0]
    pure = read_csv_artefact(run_dir / "output-smollm2-135m-pure-next-token.csv")
    document = load_json(run_dir, "smollm2-135m")
    n_layers = document["diagnostics"]["n_layers"]
    assert n_layers == 30
    last = pure[(pure.prompt_id == "completion") & (pure.layer == n_layers)].iloc[0]
    assert last.top1 == " Berlin"
    assert last.answer_rank == 1
    assert last.p_answer == pytest.approx(0.80, abs=0.02)
    assert last.kl_to_final_bits == pytest.approx(0.0, abs=1e-6)


@pytest.mark.slow
def test_smollm2_last_layer_lens_reproduces_the_model(smollm2_runs: tuple[Path, Path]) -> None:
    document = load_json(smollm2_runs[0], "smollm2-135m")
    consistency = document["diagnostics"]["last_layer_consistency"]
    assert consistency["kl_bits"] < 1e-6
    assert consistency["top1_agree"] is True
    assert consistency["ok"] is True and consistency["warning"] is None
    for prompt in document["prompts"]:
        assert prompt["last_layer_consistency"]["kl_bits"] < 1e-6


@pytest.mark.slow
def test_artefacts_have_the_documented_columns(smollm2_runs: tuple[Path, Path]) -> None:
    run_dir = smollm2_runs[0]
    document = load_json(run_dir, "smollm2-135m")
    n_layers = document["diagnostics"]["n_layers"]
    pure = pd.read_csv(run_dir / "output-smollm2-135m-pure-next-token.csv")
    records = pd.read_csv(run_dir / "output-smollm2-135m-records.csv")
    assert list(pure.columns) == pure_next_token_columns()
    assert list(records.columns) == records_columns()
    prompt_ids = [p["prompt_id"] for p in document["prompts"]]
    assert sorted(set(pure.prompt_id)) == sorted(prompt_ids)
    assert len(pure) == len(prompt_ids) * (n_layers + 1)
    n_tokens = sum(p["n_tokens"] for p in document["prompts"])
    assert len(records) == n_tokens * (n_layers + 1)
    assert document["status"] == "ok"
    assert document["provenance"]["seed"] == 316
    assert document["provenance"]["lens_mode"] == "norm"
    main = next(p for p in document["prompts"] if p["prompt_id"] == document["main_prompt_id"])
    assert main["milestones"]["first_rank1"] == {"layer": n_layers, "rel_depth": 1.0}
    # SmolLM2 ties its embeddings: layer 0 decodes to the input token itself, flagged in the CSV,
    # but the summary's copy collapse starts at layer 1.
    assert bool(pure[(pure.prompt_id == main["prompt_id"]) & (pure.layer == 0)].copy_collapse.iloc[0])
    assert main["copy_collapse"]["layer0_flagged"] is True
    assert main["copy_collapse"]["first_layer"] != 0
    # The answer-position row of the records equals the pure next-token row.
    last_pos = main["n_tokens"] - 1
    rec = records[(records.prompt_id == main["prompt_id"]) & (records.pos == last_pos)].set_index("layer")
    pur = pure[pure.prompt_id == main["prompt_id"]].set_index("layer")
    assert (rec.top1 == pur.top1).all()
    # Both come from the same logits; the entropy's sum over the vocabulary (terms adding up to
    # at most log V nats) may round differently in the two passes; each CSV cell is rounded to 1e-6.
    vocab = document["diagnostics"]["vocab_size"]
    tol = bits(fp32_tol(math.log(vocab), n_terms=vocab)) + 2 * CSV_ROUNDING
    assert (rec.entropy_bits - pur.entropy_bits).abs().max() <= tol


@pytest.mark.slow
def test_two_runs_give_byte_identical_csvs(smollm2_runs: tuple[Path, Path]) -> None:
    first, second = smollm2_runs
    for suffix in ("pure-next-token.csv", "records.csv"):
        a = (first / f"output-smollm2-135m-{suffix}").read_bytes()
        b = (second / f"output-smollm2-135m-{suffix}").read_bytes()
        assert a == b, suffix


@pytest.mark.slow
def test_fact_battery_reports_milestone_distributions(tiny_checkpoints, tmp_path: Path) -> None:
    folder = tiny_checkpoints("llama")
    result = run_001("--models", str(folder), "--facts", "capitals", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "run-latest"
    document = load_json(run_dir, folder.name)
    facts = document["facts"]
    assert facts["battery"] == "capitals" and facts["n_facts"] >= 40
    kl = facts["milestones"]["first_kl_below_1_bit"]
    assert kl["n"] >= facts["n_aligned"] and {"median", "q1", "q3", "n_reached"} <= kl.keys()
    table = pd.read_csv(run_dir / f"output-{folder.name}-facts.csv")
    assert list(table.columns) == facts_columns()
    assert len(table) == facts["n_facts"] * (document["diagnostics"]["n_layers"] + 1)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["gpt2", "gemma2", "olmo2"])
def test_tiny_families_run_with_consistent_last_layer(family: str, tiny_checkpoints, tmp_path: Path) -> None:
    folder = tiny_checkpoints(family)
    result = run_001("--models", str(folder), "--facts", "none", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    document = load_json(tmp_path / "run-latest", folder.name)
    assert document["diagnostics"]["last_layer_consistency"]["kl_bits"] < 1e-6
    assert document["diagnostics"]["last_layer_consistency"]["top1_agree"]


@pytest.mark.slow
def test_unalignable_answer_is_reported_not_guessed(tiny_checkpoints, tmp_path: Path) -> None:
    folder = tiny_checkpoints("llama")
    # A trailing space merges into the answer's first token: no token boundary after the prompt.
    result = run_001(
        "--models", str(folder), "--prompt", "The capital of Germany is ", "--answer", "Berlin",
        "--facts", "none", "--out", str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "run-latest"
    prompt = load_json(run_dir, folder.name)["prompts"][0]
    assert prompt["prompt_id"] == "custom"
    assert prompt["alignment"]["ok"] is False and prompt["alignment"]["reason"]
    assert all(m["layer"] is None for k, m in prompt["milestones"].items() if k != "first_kl_below_1_bit")
    pure = pd.read_csv(run_dir / f"output-{folder.name}-pure-next-token.csv")
    assert pure.p_answer.isna().all() and pure.answer_rank.isna().all()


def test_empty_prompt_is_one_line_error(tmp_path: Path) -> None:
    result = run_001("--prompt", "   ", "--answer", "Berlin", "--out", str(tmp_path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error: the prompt is empty")
    assert not (tmp_path / "run-latest").exists()


def test_prompt_longer_than_context_fails_that_model_only(tiny_checkpoints, tmp_path: Path) -> None:
    folder = tiny_checkpoints("llama")  # context 128 positions
    long_prompt = "Berlin is the capital of Germany. " * 60
    result = run_001(
        "--models", str(folder), "--prompt", long_prompt, "--answer", "Berlin", "--facts", "none",
        "--out", str(tmp_path),
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    document = load_json(tmp_path / "run-latest", folder.name)
    assert document["status"] == "failed"
    assert "reads at most 128" in document["reason"]


def test_broken_prompts_file_names_the_line(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        '{"id": "a", "prompt": "The capital of Italy is", "answer": "Rome"}\n{"id": "b", "prompt": \n',
        encoding="utf-8",
    )
    result = run_001("--prompts", str(prompts), "--out", str(tmp_path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "line 2" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_failed_model_does_not_stop_the_others(tiny_checkpoints, tmp_path: Path) -> None:
    good = tiny_checkpoints("qwen3")
    empty = tmp_path / "empty-model"
    empty.mkdir()
    result = run_001("--models", str(empty), str(good), "--facts", "none", "--out", str(tmp_path))
    assert result.returncode == 1
    run_dir = tmp_path / "run-latest"
    assert load_json(run_dir, "empty-model")["status"] == "failed"
    assert load_json(run_dir, good.name)["status"] == "ok"


def test_too_large_model_is_skipped_with_the_estimate(tiny_checkpoints, tmp_path: Path) -> None:
    huge = tmp_path / "huge-llama"
    huge.mkdir()
    source = tiny_checkpoints("llama")
    for item in source.iterdir():
        if item.name != "config.json":
            (huge / item.name).write_bytes(item.read_bytes())
    config = json.loads((source / "config.json").read_text())
    # Llama-3-405B's shapes: ~810 GB in fp16, more than any machine this runs on.
    config.update(hidden_size=16384, intermediate_size=53248, num_hidden_layers=126,
                  num_attention_heads=128, num_key_value_heads=8, vocab_size=128256)
    (huge / "config.json").write_text(json.dumps(config))
    result = run_001("--models", str(huge), "--facts", "none", "--out", str(tmp_path))
    assert result.returncode == 1
    document = load_json(tmp_path / "run-latest", "huge-llama")
    assert document["status"] == "skipped"
    assert "GB" in document["reason"]


@pytest.mark.slow
def test_rerun_keeps_the_previous_run(tiny_checkpoints, tmp_path: Path) -> None:
    folder = tiny_checkpoints("mistral")
    for _ in range(2):
        assert run_001("--models", str(folder), "--facts", "none", "--out", str(tmp_path)).returncode == 0
    archived = [p for p in tmp_path.iterdir() if p.name.startswith("run-") and p.name != "run-latest"]
    assert len(archived) == 1
    assert (archived[0] / f"output-{folder.name}.json").exists()


@pytest.mark.slow
def test_ctrl_c_leaves_earlier_results_intact(tiny_checkpoints, tmp_path: Path) -> None:
    folder = tiny_checkpoints("phi3")
    assert run_001("--models", str(folder), "--facts", "none", "--out", str(tmp_path)).returncode == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "run-latest").iterdir()}
    # Ctrl-C as a terminal sends it, even where this test runs in the background (a shell's background jobs
    # inherit SIGINT ignored, and Python then never raises KeyboardInterrupt).
    process = subprocess.Popen(
        [sys.executable, str(RUN), "--no-reports", "--models", str(folder), "--facts", "capitals",
         "--out", str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
        preexec_fn=interruptible,
    )
    deadline = time.time() + 120
    while not any(p.name.startswith(".run-tmp") for p in tmp_path.iterdir()):
        assert process.poll() is None and time.time() < deadline, "run ended before it could be interrupted"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    after = {p.name: p.read_bytes() for p in (tmp_path / "run-latest").iterdir()}
    assert after == before
    assert not any(p.name.startswith(".run-tmp") for p in tmp_path.iterdir())


@pytest.mark.slow
def test_check_device_compares_with_cpu_float32(tiny_checkpoints, tmp_path: Path) -> None:
    # No GPU here: bfloat16 on the cpu stands in for a GPU's half precision; the check still
    # loads a second, float32 copy on the cpu and measures the KL between the two outputs.
    folder = tiny_checkpoints("llama")
    result = run_001(
        "--models", str(folder), "--dtype", "bfloat16", "--check-device", "--facts", "none",
        "--out", str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    document = load_json(tmp_path / "run-latest", folder.name)
    check = document["diagnostics"]["device_check"]
    assert check["done"] is True and check["reference"] == "cpu float32" and check["dtype"] == "bfloat16"
    assert 0.0 < check["kl_bits"] < 1.0
    assert isinstance(check["top1_agree"], bool) and check["verdict"]
    assert document["provenance"]["fp32_unembed"] is True  # 16-bit model: the lens decodes in fp32
    assert document["diagnostics"]["last_layer_consistency"]["top1_agree"]


def test_chat_flag_on_a_model_without_chat_template_fails_with_a_reason(tiny_checkpoints, tmp_path: Path) -> None:
    folder = tiny_checkpoints("qwen2")
    result = run_001("--models", str(folder), "--chat", "--facts", "none", "--out", str(tmp_path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    document = load_json(tmp_path / "run-latest", folder.name)
    assert document["status"] == "failed" and "chat template" in document["reason"]


@pytest.mark.slow
def test_tuned_lens_is_fitted_once_compared_on_held_out_text_and_reproducible(
    tiny_checkpoints, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TINYCAVE_CACHE", str(tmp_path / "cache"))
    folder = tiny_checkpoints("gemma3")  # softcap-free Gemma-3: (1 + w) norms and the embedding scale
    for _ in range(2):
        result = run_001("--models", str(folder), "--lens", "tuned", "--facts", "capitals", "--out",
                         str(tmp_path / "out"))
        assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "out" / "run-latest"
    document = load_json(run_dir, folder.name)
    comparison = document["lens_comparison"]
    assert {fit["cache"] for fit in comparison["fits"].values()} == {"hit"}  # the second run fitted nothing
    assert "fitting" not in result.stderr
    n_layers = document["diagnostics"]["n_layers"]
    table = read_csv_artefact(run_dir / f"output-{folder.name}-lens-kl.csv", frozenset({"lens"}))
    assert list(table.columns) == lens_kl_columns() and set(table.lens) == {"norm", "linear", "tuned"}
    assert len(table) == 3 * (n_layers + 1)
    last = table[table.layer == n_layers]
    assert (last.kl_bits.abs() < 1e-6).all()  # every lens is the model's own head at the last layer
    means = comparison["mean_kl_bits_layers_0_to_L_minus_1"]
    assert set(means) == {"norm", "linear", "tuned"} and all(math.isfinite(v) for v in means.values())
    assert set(comparison["battery_first_rank1"]) == {"norm", "linear", "tuned"}
    assert document["diagnostics"]["lens"]["maps"]["kind"] == "tuned"
    assert document["diagnostics"]["last_layer_consistency"]["ok"]
    archived = next(p for p in (tmp_path / "out").iterdir() if p.name.startswith("run-") and p.name != "run-latest")
    for kind in ("lens-kl", "pure-next-token", "facts"):
        name = f"output-{folder.name}-{kind}.csv"
        assert (archived / name).read_bytes() == (run_dir / name).read_bytes(), kind


@pytest.mark.slow
def test_linear_lens_compares_only_the_lenses_it_has(tiny_checkpoints, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINYCAVE_CACHE", str(tmp_path / "cache"))
    folder = tiny_checkpoints("gpt2")  # LayerNorm with bias
    result = run_001("--models", str(folder), "--lens", "linear", "--facts", "none", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "out" / "run-latest"
    document = load_json(run_dir, folder.name)
    comparison = document["lens_comparison"]
    assert set(comparison["fits"]) == {"linear"} and comparison["battery_first_rank1"] is None
    table = read_csv_artefact(run_dir / f"output-{folder.name}-lens-kl.csv", frozenset({"lens"}))
    assert set(table.lens) == {"norm", "linear"}
    assert (table[table.layer == document["diagnostics"]["n_layers"]].kl_bits.abs() < 1e-6).all()
