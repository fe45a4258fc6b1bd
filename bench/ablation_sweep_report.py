"""Experiment 005's entries of the benchmark: the ablation sweep's ratio to its floor, target checks, tables."""

from __future__ import annotations

from bench.report import check_targets, fmt_mb, fmt_ms, fmt_x, round_ratio, targets_lines
from bench.timing import Timing

CASE, FLOOR = "ablation_sweep", "batched_forwards"

# name -> (comparison, limit, what it means)
TARGETS: dict[str, tuple[str, float, str]] = {
    "ablation_ratio": (
        "<=", 1.3, "005's ablation sweep (single features removed at one SAE, every cloze item scored) / the same "
        "number of forward passes (items x removals), plain, each item batch repeated once per removal as one batch, "
        "full depth"
    ),
}


def entry(model: str, shape: dict, described: dict, timings: dict[str, Timing], peak: dict | None) -> dict:
    """One model's entry of 005: raw times, the ratio (median over rounds of sweep / floor), memory, target check.

    The target reads the per-round ratio, as 001-004's do (``round_ratio``: a burst of load
    slows both cases of a round alike); the ratio of the two medians is kept beside it.
    """
    sweep, floor = described["sweep_forwards"], described["floor_forwards"]
    result = {
        "model": model,
        **shape,
        **described,
        "floor_passes_match": sweep["head_rows"] == floor["head_rows"] == described["forward_passes"],
        "seconds": {name: t.as_dict() for name, t in timings.items()},
        "rounds": len(timings[CASE].samples),
        "floor_seconds": timings[FLOOR].median,
        "ablation_ratio": round_ratio(timings, CASE, (FLOOR,)),
        "ablation_ratio_of_medians": timings[CASE].median / timings[FLOOR].median,
        "memory": peak,
    }
    result["targets"] = check_targets(result, TARGETS)
    return result


def markdown_lines(entries: list[dict]) -> list[str]:
    """005's tables: times and ratio, memory, the targets (nothing when there are no entries)."""
    if not entries:
        return []
    lines = [
        "",
        "## Experiment 005: ablation sweep over the cloze items (ms) and ratio to its floor",
        "",
        f"Medians of {entries[0]['rounds']} interleaved rounds; one SAE with random weights of the default "
        "recipe's shape; ratio = the median of the rounds' sweep / floor (the target's); of medians = median sweep / "
        "median floor.",
        "",
        "| model | SAE at (hook) | items | removals | forward passes | batch size (batches) | floor (rows per batch) "
        "| ablation sweep | ratio | of medians |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in entries:
        s = {name: t["median"] for name, t in e["seconds"].items()}
        lines.append(
            f"| {e['model']} | {e['layer']} of {e['n_layers']} ({e['hook']}) | {e['scored_items']} | {e['removals']} "
            f"| {e['forward_passes']} | {e['batch_size']} ({e['batches']}) "
            f"| {fmt_ms(s[FLOOR])} ({max(e['floor_batch_rows'])}) | {fmt_ms(s[CASE])} "
            f"| {fmt_x(e['ablation_ratio'])} | {fmt_x(e['ablation_ratio_of_medians'])} |"
        )
    lines += ["", "## Experiment 005: memory (MB)", "", "| model | weights | ablation sweep peak | floor peak |",
              "|---|---|---|---|"]
    for e in entries:
        m = e["memory"] or {}
        lines.append(f"| {e['model']} | {fmt_mb(m.get('weights_bytes'))} | {fmt_mb(m.get('sweep_peak_bytes'))} "
                     f"| {fmt_mb(m.get('floor_peak_bytes'))} |")
    return lines + targets_lines("005", entries)
