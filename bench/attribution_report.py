"""Experiment 002's entries of the benchmark: ratios to the floor, target checks, markdown tables."""

from __future__ import annotations

import statistics

from bench.report import check_targets, fmt_mb, fmt_ms, fmt_verdict, fmt_x, round_ratio
from bench.timing import Timing

# name -> (comparison, limit, what it means)
TARGETS: dict[str, tuple[str, float, str]] = {
    "ratio_analysis": (
        "<=", 1.3, "002's one-prompt analysis (no lens) / (eager forward + per-head output products)"
    ),
    "analysis_mem_over_weights_frac": ("<=", 0.10, "peak memory of 002's one-prompt analysis (no lens) / weights"),
    "analysis_battery_speedup": (
        ">=", 2.0, "002's battery (measure_items, with the lens) one prompt at a time / batched"
    ),
}
FLOOR = ("eager_forward", "head_products")
# The floor a forward that returns every pattern would give (it keeps them all), and the hooked pattern-only pass.
ATTENTIONS_FLOOR = ("eager_forward_attentions", "head_products")
PATTERN_PASS_FLOOR = ("pattern_pass", "head_products")


def _round_difference(timings: dict[str, Timing], case: str, base: str) -> float:
    """Median over rounds of ``case - base`` (seconds): what ``case`` adds to ``base`` in the same round."""
    return statistics.median(a - b for a, b in zip(timings[case].samples, timings[base].samples, strict=True))


def _lens_extra(timings: dict[str, Timing]) -> dict:
    """The lens sweep's extra time, in seconds and as a share of the floor, per-round medians."""
    per_round = [
        (lens - plain) / sum(timings[name].samples[i] for name in FLOOR)
        for i, (lens, plain) in enumerate(
            zip(timings["analysis_with_lens"].samples, timings["analysis"].samples, strict=True)
        )
    ]
    return {"seconds": _round_difference(timings, "analysis_with_lens", "analysis"),
            "over_floor": statistics.median(per_round)}


def _memory_ratios(memory: dict | None) -> dict:
    if memory is None:
        return {"analysis_mem_over_weights_frac": None, "attentions_mem_over_weights_frac": None}
    weights = memory["weights_bytes"]
    return {
        "analysis_mem_over_weights_frac": memory["analysis_peak_bytes"] / weights,
        "attentions_mem_over_weights_frac": memory["eager_forward_attentions_peak_bytes"] / weights,
    }


def entry(
    model: str, n_tokens: int, shape: dict, timings: dict[str, Timing], memory: dict | None, battery: dict | None,
) -> dict:
    """One model x length entry of 002: raw times, the floor, ratios and target checks."""
    medians = {name: t.median for name, t in timings.items()}
    floor = sum(medians[name] for name in FLOOR)
    result = {
        "model": model,
        "tokens": n_tokens,
        **shape,
        "seconds": {name: t.as_dict() for name, t in timings.items()},
        "floor_seconds": floor,
        "ratio_analysis": round_ratio(timings, "analysis", FLOOR),
        "ratio_of_medians": medians["analysis"] / floor,
        "ratio_analysis_vs_attentions_floor": round_ratio(timings, "analysis", ATTENTIONS_FLOOR),
        "ratio_analysis_vs_pattern_pass": round_ratio(timings, "analysis", PATTERN_PASS_FLOOR),
        "ratio_analysis_with_lens": round_ratio(timings, "analysis_with_lens", FLOOR),
        "lens_extra": _lens_extra(timings),
        "memory": memory,
        **_memory_ratios(memory),
        "battery": battery,
        "analysis_battery_speedup": None if battery is None else battery["speedup"],
    }
    result["targets"] = check_targets(result, TARGETS)
    return result


def markdown_lines(entries: list[dict]) -> list[str]:
    """002's tables: times and ratios, memory, the battery, the targets (nothing when there are no entries)."""
    if not entries:
        return []
    lines = [
        "",
        "## Experiment 002: one prompt's analysis (ms) and ratios to the floor",
        "",
        "| model | tokens | eager forward | head products | floor | analysis | ratio "
        "| forward returning patterns | ratio to it + products | pattern-only hooked pass | ratio to it + products "
        "| with lens | lens extra | ratio with lens |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in entries:
        s = {name: t["median"] for name, t in e["seconds"].items()}
        lines.append(
            f"| {e['model']} | {e['tokens']} | {fmt_ms(s['eager_forward'])} | {s['head_products'] * 1000:.2f} "
            f"| {fmt_ms(e['floor_seconds'])} | {fmt_ms(s['analysis'])} | {fmt_x(e['ratio_analysis'])} "
            f"| {fmt_ms(s['eager_forward_attentions'])} | {fmt_x(e['ratio_analysis_vs_attentions_floor'])} "
            f"| {fmt_ms(s['pattern_pass'])} | {fmt_x(e['ratio_analysis_vs_pattern_pass'])} "
            f"| {fmt_ms(s['analysis_with_lens'])} | {fmt_ms(e['lens_extra']['seconds'])} "
            f"| {fmt_x(e['ratio_analysis_with_lens'])} |"
        )
    lines += _memory_and_battery(entries)
    lines += ["", "## Experiment 002: targets", "", "| model | tokens | target | limit | value | verdict |",
              "|---|---|---|---|---|---|"]
    for e in entries:
        for name, check in e["targets"].items():
            lines.append(f"| {e['model']} | {e['tokens']} | {name} | {check['comparison']} {check['limit']} "
                         f"| {fmt_x(check['value'])} | {fmt_verdict(check)} |")
    return lines


def _memory_and_battery(entries: list[dict]) -> list[str]:
    lines = [
        "",
        "## Experiment 002: peak memory above the loaded weights (MB) and the battery (s)",
        "",
        "| model | tokens | weights | analysis | / weights | floor's forward | forward returning patterns "
        "| / weights | every [H, T, T] pattern | battery batched | one at a time | speedup |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in entries:
        m, b = e["memory"] or {}, e["battery"] or {}
        lines.append(
            f"| {e['model']} | {e['tokens']} | {fmt_mb(m.get('weights_bytes'))} "
            f"| {fmt_mb(m.get('analysis_peak_bytes'))} "
            f"| {fmt_x(e['analysis_mem_over_weights_frac'])} | {fmt_mb(m.get('eager_forward_peak_bytes'))} "
            f"| {fmt_mb(m.get('eager_forward_attentions_peak_bytes'))} "
            f"| {fmt_x(e['attentions_mem_over_weights_frac'])} "
            f"| {fmt_mb(m.get('pattern_stack_bytes'))} "
            f"| {_seconds(b.get('batched'))} | {_seconds(b.get('one_at_a_time'))} "
            f"| {fmt_x(e['analysis_battery_speedup'])} |"
        )
    return lines


def _seconds(timing: dict | None) -> str:
    return "-" if not timing else f"{timing['median']:.2f}"
