"""Experiment 003's entries of the benchmark: ratios to the floors, target checks, markdown tables."""

from __future__ import annotations

from bench.report import check_targets, fmt_mb, fmt_ms, fmt_x, round_ratio, targets_lines
from bench.timing import Timing

# name -> (comparison, limit, what it means)
TARGETS: dict[str, tuple[str, float, str]] = {
    "ratio_resid_sweep": (
        "<=", 1.2, "003's exact residual sweep (one direction) / the same number of plain forward passes, batched"
    ),
    "ratio_attribution": ("<=", 3.0, "plain attribution patching of every component (one direction) / one forward"),
    "sweep_peak_over_budget": (
        "<=", 1.0, "peak memory of the residual sweep / the patching budget its batch size was chosen from"
    ),
}


def entry(model: str, shape: dict, described: dict, timings: dict[str, Timing], peak_bytes: int | None,
          weights_bytes: int | None) -> dict:
    """One model's entry of 003: raw times, ratios, memory and target checks."""
    budget = described["budget_bytes"]
    result = {
        "model": model,
        **shape,
        **described,
        "seconds": {name: t.as_dict() for name, t in timings.items()},
        "ratio_resid_sweep": round_ratio(timings, "resid_sweep", ("plain_batches",)),
        "ratio_resid_sweep_from_embedding": round_ratio(timings, "resid_sweep_from_embedding", ("plain_batches",)),
        "ratio_attribution": round_ratio(timings, "attribution", ("plain_forward",)),
        "sweep_peak_bytes": peak_bytes,
        "weights_bytes": weights_bytes,
        "sweep_peak_over_budget": None if peak_bytes is None or not budget else peak_bytes / budget,
    }
    result["targets"] = check_targets(result, TARGETS)
    return result


def markdown_lines(entries: list[dict]) -> list[str]:
    """003's tables: times and ratios, memory and batch size, the targets (nothing when there are no entries)."""
    if not entries:
        return []
    lines = [
        "",
        "## Experiment 003: the default pair's sweeps (ms) and ratios to their floors",
        "",
        "| model | pair | tokens | residual runs | batch size | plain batches | residual sweep | ratio "
        "| from the embedding | ratio | one forward | attribution (all sites) | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in entries:
        s = {name: t["median"] for name, t in e["seconds"].items()}
        lines.append(
            f"| {e['model']} | {e['pair_id']} | {e['tokens']} | {e['resid_runs']} | {e['batch_size']} "
            f"| {fmt_ms(s['plain_batches'])} | {fmt_ms(s['resid_sweep'])} | {fmt_x(e['ratio_resid_sweep'])} "
            f"| {fmt_ms(s['resid_sweep_from_embedding'])} | {fmt_x(e['ratio_resid_sweep_from_embedding'])} "
            f"| {fmt_ms(s['plain_forward'])} | {fmt_ms(s['attribution'])} | {fmt_x(e['ratio_attribution'])} |"
        )
    lines += ["", "## Experiment 003: memory (MB)", "",
              "| model | weights | patching budget | estimate per run | residual sweep peak | peak / budget |",
              "|---|---|---|---|---|---|"]
    for e in entries:
        lines.append(f"| {e['model']} | {fmt_mb(e['weights_bytes'])} | {fmt_mb(e['budget_bytes'])} "
                     f"| {fmt_mb(e['row_bytes_estimate'])} | {fmt_mb(e['sweep_peak_bytes'])} "
                     f"| {fmt_x(e['sweep_peak_over_budget'])} |")
    return lines + targets_lines("003", entries)
