"""Experiment 004's entries of the benchmark: the extraction's ratio to its floor, training throughput, tables."""

from __future__ import annotations

from bench.report import check_targets, fmt_mb, fmt_ms, fmt_x, round_ratio, targets_lines
from bench.timing import Timing

EXTRACTION_FLOOR = ("truncated_forward", "sae_encodes")

# name -> (comparison, limit, what it means)
TARGETS: dict[str, tuple[str, float, str]] = {
    "extraction_ratio": (
        "<=", 1.2, "004's feature extraction over the category texts / (forward up to the deepest SAE's residual, "
        "no hooks, same batches + one batched encode per SAE of the counted tokens)"
    ),
}


def _per_second(count: int, timing: Timing) -> float | None:
    return count / timing.median if timing.median > 0 else None


def entry(model: str, shape: dict, described: dict, extraction: dict[str, Timing], training: dict[str, Timing],
          peaks: dict | None) -> dict:
    """One model's entry of 004: raw times, the extraction ratio, throughputs, memory, the buffer bound, targets."""
    med = {name: t.median for name, t in extraction.items()}
    floor = sum(med[name] for name in EXTRACTION_FLOOR)
    read_per_s = _per_second(described["read_tokens"], training["residual_reading"])
    train_per_s = _per_second(described["train_tokens"], training["training"])
    bound = described["store_bound"]
    result = {
        "model": model,
        **shape,
        **described,
        "floor_rows_match": described["extraction_counted_tokens"] == described["counted_tokens"],
        "seconds": {"extraction": {name: t.as_dict() for name, t in extraction.items()},
                    "training": {name: t.as_dict() for name, t in training.items()}},
        "rounds": {"extraction": len(extraction["extraction"].samples),
                   "training": len(training["training"].samples)},
        "floor_seconds": floor,
        "extraction_ratio": round_ratio(extraction, "extraction", EXTRACTION_FLOOR),
        "extraction_ratio_of_medians": med["extraction"] / floor,
        "hooked_reads_over_truncated_forward": round_ratio(extraction, "hooked_reads", ("truncated_forward",)),
        "read_tokens_per_s": read_per_s,
        "train_tokens_per_s": train_per_s,
        # The default recipe at these rates: reading its rows once, training every SAE for its epochs.
        "default_recipe_projected_seconds": None if not read_per_s or not train_per_s else {
            "reading": bound["rows"] / read_per_s,
            "training": bound["rows"] * bound["epochs"] * bound["layers"] / train_per_s,
        },
        "memory": peaks,
    }
    result["targets"] = check_targets(result, TARGETS)
    return result


def markdown_lines(entries: list[dict]) -> list[str]:
    """004's tables: extraction times and ratio, training throughput and memory, the targets (nothing when none)."""
    if not entries:
        return []
    lines = [
        "",
        "## Experiment 004: feature extraction over the category texts (ms) and ratio to its floor",
        "",
        f"Medians of {entries[0]['rounds']['extraction']} interleaved rounds (extraction) and "
        f"{entries[0]['rounds']['training']} (reading and training); SAEs with random weights of the default "
        "recipe's shape.",
        "",
        "| model | SAEs at | texts | batches | counted tokens | truncated forward (blocks) | SAE encodes "
        "| floor | hooked reads | ratio to forward | extraction | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in entries:
        s = {name: t["median"] for name, t in e["seconds"]["extraction"].items()}
        lines.append(
            f"| {e['model']} | {' '.join(map(str, e['layers']))} | {e['texts']} | {e['batches']} "
            f"| {e['counted_tokens']} | {fmt_ms(s['truncated_forward'])} ({e['blocks_run']} of {e['n_layers']}) "
            f"| {fmt_ms(s['sae_encodes'])} | {fmt_ms(e['floor_seconds'])} | {fmt_ms(s['hooked_reads'])} "
            f"| {fmt_x(e['hooked_reads_over_truncated_forward'])} | {fmt_ms(s['extraction'])} "
            f"| {fmt_x(e['extraction_ratio'])} |"
        )
    lines += [
        "",
        "## Experiment 004: SAE training throughput (reduced budget) and memory (MB)",
        "",
        "| model | read: tokens | s | tokens/s | peak | train: tokens (all SAEs) | s | tokens/s | peak "
        "| extraction peak | residual store of the default recipe (bound) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in entries:
        t = {name: timing["median"] for name, timing in e["seconds"]["training"].items()}
        m, bound = e["memory"] or {}, e["store_bound"]
        lines.append(
            f"| {e['model']} | {e['read_tokens']} | {t['residual_reading']:.2f} | {_rate(e['read_tokens_per_s'])} "
            f"| {fmt_mb(m.get('reading_peak_bytes'))} | {e['train_tokens']} | {t['training']:.2f} "
            f"| {_rate(e['train_tokens_per_s'])} | {fmt_mb(m.get('training_peak_bytes'))} "
            f"| {fmt_mb(m.get('extraction_peak_bytes'))} | {fmt_mb(bound['bytes'])} ({bound['rows']:,} x "
            f"{bound['layers']} x {bound['d_model']} x {bound['bytes_per_value']} B) |"
        )
    return lines + targets_lines("004", entries)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"
