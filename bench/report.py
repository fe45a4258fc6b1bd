"""Turn measurements into ratios against their floors, check the targets, write JSON and markdown."""

from __future__ import annotations

import json
import operator
import statistics
from collections.abc import Sequence
from pathlib import Path

from bench.timing import Timing

# name -> (comparison, limit, what it means)
TARGETS: dict[str, tuple[str, float, str]] = {
    "ratio_answer_sweep": ("<=", 1.1, "answer-position sweep / (plain forward + L+1 unembedding rows)"),
    "ratio_tuned_answer_sweep": ("<=", 1.2, "answer-position sweep under a fitted (tuned) lens / under the norm lens"),
    "ratio_all_positions": ("<=", 1.2, "all-position records / (plain forward + (L+1) x T unembedding)"),
    "mem_over_weights_frac": ("<=", 0.10, "peak memory of the answer-position sweep / weights"),
    "all_positions_logits_over_layer_logits": (
        "<", 1.0, "logits the all-position decode holds at its peak / one layer's [T, V] fp32 logits"
    ),
    "ratio_cached_load": ("<=", 1.5, "load from the dequantized cache / plain safetensors load"),
    "battery_speedup": (">=", 2.0, "fact battery one prompt at a time / batched"),
    "lens_fit_seconds": ("<=", 600.0, "fitting the linear shortcut and the tuned lens from an empty cache, seconds"),
}
_COMPARE = {"<=": operator.le, "<": operator.lt, ">=": operator.ge}


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def round_ratio(timings: dict[str, Timing], case: str, floor: tuple[str, ...]) -> float:
    """Median over rounds of ``case / sum(floor)`` within each round.

    Cases of one round ran back to back, so a burst of load that slows one
    round slows its numerator and denominator alike; the median then drops
    the rounds a burst hit unevenly.
    """
    per_round = [
        timings[case].samples[i] / sum(timings[name].samples[i] for name in floor)
        for i in range(len(timings[case].samples))
    ]
    return statistics.median(per_round)


ANSWER_FLOOR = ("plain_forward", "unembed_answer_rows")
ALL_POSITIONS_FLOOR = ("plain_forward", "unembed_all_rows")


def _logits_held(memory: dict) -> int:
    """The all-position decode's peak less the normalised rows it builds as the matmul's input."""
    return max(0, memory["all_positions_decode_peak_bytes"] - memory["normalised_rows_bytes"])


def entry(
    model: str, n_tokens: int, shape: dict, timings: dict[str, dict[str, Timing]], memory: dict | None,
    loads: dict | None, battery: dict | None, lens_fit: dict | None = None,
) -> dict:
    """One model x length entry of ``latest.json``: raw times, floors, ratios and target checks.

    ``timings`` has two groups of rounds, ``"answer"`` (the answer sweep and its floor)
    and ``"all_positions"`` (the records and theirs); each ratio uses its own group.
    """
    answer, every = timings["answer"], timings["all_positions"]
    med_answer = {name: t.median for name, t in answer.items()}
    med_every = {name: t.median for name, t in every.items()}
    floor_answer = sum(med_answer[name] for name in ANSWER_FLOOR)
    floor_every = sum(med_every[name] for name in ALL_POSITIONS_FLOOR)
    result = {
        "model": model,
        "tokens": n_tokens,
        **shape,
        "seconds": {group: {name: t.as_dict() for name, t in cases.items()} for group, cases in timings.items()},
        "floor_answer_sweep_seconds": floor_answer,
        "floor_all_positions_seconds": floor_every,
        "ratio_answer_sweep": round_ratio(answer, "answer_sweep", ANSWER_FLOOR),
        "ratio_all_positions": round_ratio(every, "all_positions", ALL_POSITIONS_FLOOR),
        "ratio_tuned_answer_sweep": round_ratio(answer, "answer_sweep_tuned", ("answer_sweep",)),
        "ratio_of_medians": {
            "answer_sweep": med_answer["answer_sweep"] / floor_answer,
            "all_positions": med_every["all_positions"] / floor_every,
        },
        "ratio_all_positions_vs_tiled_matmul": round_ratio(
            every, "all_positions", ("plain_forward", "unembed_all_rows_tiled")
        ),
        "memory": memory,
        "mem_over_weights_frac": None if memory is None else _ratio(
            memory["answer_sweep_peak_bytes"], memory["weights_bytes"]
        ),
        "all_positions_decode_over_layer_logits": None if memory is None else _ratio(
            memory["all_positions_decode_peak_bytes"], memory["one_layer_logits_bytes"]
        ),
        "all_positions_logits_over_layer_logits": None if memory is None else _ratio(
            _logits_held(memory), memory["one_layer_logits_bytes"]
        ),
        "loads": loads,
        "ratio_cached_load": None if loads is None else loads["ratio_cached_load"],
        "battery": battery,
        "battery_speedup": None if battery is None else battery["speedup"],
        "lens_fit": lens_fit,
        "lens_fit_seconds": None if lens_fit is None else lens_fit["seconds"],
    }
    result["targets"] = check_targets(result)
    return result


def check_targets(result: dict, targets: dict[str, tuple[str, float, str]] = TARGETS) -> dict:
    """``{name: {"limit", "comparison", "value", "met"}}`` for each of ``targets`` (001's by default).

    ``met`` is None where it was not measured.
    """
    checks = {}
    for name, (comparison, limit, meaning) in targets.items():
        value = result.get(name)
        met = None if value is None else bool(_COMPARE[comparison](value, limit))
        checks[name] = {"comparison": comparison, "limit": limit, "value": value, "met": met, "meaning": meaning}
    return checks


def write_results(results: dict, out: Path, extra: Sequence[str] = ()) -> tuple[Path, Path]:
    """Write ``latest.json`` and ``latest.md`` (and dated copies) into ``out``; return the two latest paths.

    ``extra``: markdown lines of other experiments' tables, placed before the methods.
    """
    out.mkdir(parents=True, exist_ok=True)
    stamp = results["created_at"].replace(":", "").replace("-", "")
    text = json.dumps(results, indent=2, allow_nan=False) + "\n"
    table = markdown(results, extra)
    for name in ("latest", f"bench-{stamp}"):
        (out / f"{name}.json").write_text(text, encoding="utf-8")
        (out / f"{name}.md").write_text(table, encoding="utf-8")
    return out / "latest.json", out / "latest.md"


def fmt_ms(seconds: float | None) -> str:
    """Seconds as whole milliseconds ("-" when not measured)."""
    return "-" if seconds is None else f"{seconds * 1000:.0f}"


def fmt_x(value: float | None) -> str:
    """A ratio with two decimals ("-" when not measured)."""
    return "-" if value is None else f"{value:.2f}"


def fmt_mb(value: int | None) -> str:
    """Bytes as MiB, one decimal below 10 ("-" when not measured)."""
    if value is None:
        return "-"
    mb = value / 2**20
    return f"{mb:.1f}" if mb < 10 else f"{mb:.0f}"


def fmt_verdict(check: dict) -> str:
    """A target check's verdict: met, NOT met or not measured."""
    return {True: "met", False: "NOT met", None: "not measured"}[check["met"]]


def targets_lines(experiment: str, entries: list[dict]) -> list[str]:
    """An experiment's targets table: one row per model and target, with its limit, value and verdict."""
    lines = ["", f"## Experiment {experiment}: targets", "", "| model | target | limit | value | verdict |",
             "|---|---|---|---|---|"]
    for e in entries:
        for name, check in e["targets"].items():
            lines.append(f"| {e['model']} | {name} | {check['comparison']} {check['limit']} "
                         f"| {fmt_x(check['value'])} | {fmt_verdict(check)} |")
    return lines


def markdown(results: dict, extra: Sequence[str] = ()) -> str:
    """The benchmark as markdown tables: 001's (when it ran), then ``extra`` lines, then the methods."""
    machine, settings = results["machine"], results["settings"]
    lines = [
        f"# tinycave benchmark, {results['created_at']}",
        "",
        f"Machine: {machine['platform']}, {machine['cpu_count']} cpus, torch {machine['torch']} "
        f"({machine['torch_threads']} threads), device {machine['device']}. Load average (1/5/15 min) "
        f"before: {machine['load_before']}, after: {machine['load_after']}.",
        f"Medians of {settings['answer_repeats']} (answer sweep), {settings.get('attribution_repeats', '-')} "
        f"(002's one-prompt analysis) and {settings['repeats']} (all positions, loads, batteries) "
        f"interleaved rounds after {settings['warmup']} warm-up round(s).",
    ]
    if results["entries"]:
        lines += _experiment_001(results["entries"])
    lines += list(extra)
    lines += ["", "## Methods", ""] + [f"- {line}" for line in results["methods"]]
    return "\n".join(lines) + "\n"


def _experiment_001(entries: list[dict]) -> list[str]:
    """001's tables: times and ratios, memory, loads and battery, targets."""
    lines = [
        "",
        "## Time (ms) and ratios to the floor",
        "",
        "| model | tokens | forward | unembed L+1 rows | answer sweep | ratio | under a tuned lens | ratio to norm "
        "| unembed (L+1)xT | tiled matmul | all positions | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in entries:
        a = {name: t["median"] for name, t in e["seconds"]["answer"].items()}
        s = {name: t["median"] for name, t in e["seconds"]["all_positions"].items()}
        lines.append(
            f"| {e['model']} | {e['tokens']} | {fmt_ms(a['plain_forward'])} | {fmt_ms(a['unembed_answer_rows'])} "
            f"| {fmt_ms(a['answer_sweep'])} | {fmt_x(e['ratio_answer_sweep'])} "
            f"| {fmt_ms(a['answer_sweep_tuned'])} | {fmt_x(e['ratio_tuned_answer_sweep'])} "
            f"| {fmt_ms(s['unembed_all_rows'])} "
            f"| {fmt_ms(s['unembed_all_rows_tiled'])} "
            f"| {fmt_ms(s['all_positions'])} | {fmt_x(e['ratio_all_positions'])} |"
        )
    lines += [
        "",
        "## Peak memory above the loaded weights (MB)",
        "",
        "| model | tokens | weights | answer sweep | / weights | all positions: capture | decode "
        "| of which normalised rows | one layer's logits | logits held / layer |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in entries:
        m = e["memory"] or {}
        lines.append(
            f"| {e['model']} | {e['tokens']} | {fmt_mb(m.get('weights_bytes'))} "
            f"| {fmt_mb(m.get('answer_sweep_peak_bytes'))} "
            f"| {fmt_x(e['mem_over_weights_frac'])} | {fmt_mb(m.get('all_positions_capture_peak_bytes'))} "
            f"| {fmt_mb(m.get('all_positions_decode_peak_bytes'))} | {fmt_mb(m.get('normalised_rows_bytes'))} "
            f"| {fmt_mb(m.get('one_layer_logits_bytes'))} | {fmt_x(e['all_positions_logits_over_layer_logits'])} |"
        )
    lines += _loads_and_battery(entries)
    lines += ["", "## Targets", "", "| model | tokens | target | limit | value | verdict |"]
    lines.append("|---|---|---|---|---|---|")
    for e in entries:
        for name, check in e["targets"].items():
            lines.append(
                f"| {e['model']} | {e['tokens']} | {name} | {check['comparison']} {check['limit']} "
                f"| {fmt_x(check['value'])} | {fmt_verdict(check)} |"
            )
    return lines


def _loads_and_battery(entries: list[dict]) -> list[str]:
    lines = [
        "",
        "## Loading (s) and the fact battery (s)",
        "",
        "| model | GGUF cold | cached | plain safetensors | cached / plain | plain, weights unread "
        "| battery batched | one at a time | speedup |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    seen = set()
    for e in entries:
        if e["model"] in seen:
            continue
        seen.add(e["model"])
        loads, battery = e["loads"] or {}, e["battery"] or {}

        def med(block: dict | None) -> str:
            return "-" if not block else f"{block['median']:.2f}"

        lines.append(
            f"| {e['model']} | {med(loads.get('gguf_cold'))} | {med(loads.get('cached'))} "
            f"| {med(loads.get('plain_safetensors'))} "
            f"| {fmt_x(e['ratio_cached_load'])} | {med(loads.get('plain_lazy'))} "
            f"| {med(battery.get('batched'))} | {med(battery.get('one_at_a_time'))} | {fmt_x(e['battery_speedup'])} |"
        )
    return lines + _lens_fits(entries)


def _lens_fits(entries: list[dict]) -> list[str]:
    """Fitting time and peak memory of both lenses, per model (the first ``--lens tuned`` run)."""
    fits = {e["model"]: e["lens_fit"] for e in entries if e.get("lens_fit")}
    if not fits:
        return []
    lines = [
        "",
        "## Fitting the lenses from an empty cache (the first `001 --lens tuned`)",
        "",
        "| model | linear shortcut (s) | tuned lens (s) | total (s) | peak (MB) | tuned recipe |",
        "|---|---|---|---|---|---|",
    ]
    for model, fit in fits.items():
        recipe = fit["tuned_recipe"]
        lines.append(
            f"| {model} | {fit['linear_seconds']:.1f} | {fit['tuned_seconds']:.1f} | {fit['seconds']:.1f} "
            f"| {fmt_mb(fit['peak_bytes'])} | {recipe['positions']} positions, {recipe['steps']} steps, "
            f"lr {recipe['lr']:g} |"
        )
    return lines
