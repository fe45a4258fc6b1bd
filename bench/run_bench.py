"""Benchmark experiments 001 to 005 against the floors set by the hardware (``make bench``).

For each model and prompt length, in one process. 001: the plain forward pass and
the unembedding matmuls (the floors), 001's answer-position sweep and its
all-position records, their peak memory, the load times, and the fact battery
batched against one prompt at a time. 002 (``bench/attribution.py``): one
prompt's analysis at the answer position against an eager-attention forward plus
the per-head output products, its peak memory, and 002's battery batched against
one prompt at a time. 003 (``bench/patching.py``): the default pair's exact
residual sweep against the same number of plain forward passes, attribution
patching against one forward pass, and the sweep's peak memory against the budget
its batch size was chosen from. 004 (``bench/sae_extraction.py``): the category texts'
feature extraction through SAEs at the default residuals against the forward up to the
deepest of them plus one batched encode per SAE, and the throughput and peak memory of
reading residuals and of training on them (reduced budget). 005 (``bench/ablation_sweep.py``):
single SAE features removed, each alone, over the cloze items (``ablation_scores``) against
the same number of plain forward passes, each item batch repeated once per removal as one
batch. Results go to ``bench/results/latest.json`` (``entries`` for 001,
``attribution_entries`` for 002: one per model and length; ``patching_entries`` for 003,
``sae_entries`` for 004 and ``ablation_entries`` for 005: one per model; each with every
ratio and target check) and ``latest.md``. Run
``python bench/run_bench.py --help`` for the flags.
"""

import argparse
import os
import platform
import sys
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import torch

from bench import ablation_sweep_report, attribution_report, memory, patching_report, report, sae_extraction_report
from bench.ablation_sweep import ABLATION_BATCH, REMOVALS, AblationSweepWorkloads
from bench.attribution import AttributionWorkloads, attribution_battery_cases
from bench.battery import battery_cases
from bench.lens_fitting import measure_lens_fit
from bench.loads import LoadBench
from bench.patching import PatchingWorkloads
from bench.sae_extraction import READ_WINDOWS, TRAIN_TOKENS, SaeFeatureWorkloads
from bench.timing import interleaved
from bench.workloads import Workloads
from layers_core.cli import run_main
from layers_core.errors import PromptError
from layers_core.models.loading import LoadedModel, free_model
from layers_core.prompts.answer_alignment import model_context_length
from layers_core.runs.reproducibility import set_deterministic

DEFAULT_OUT = Path(__file__).resolve().parent / "results"

METHODS = [
    "two groups of rounds per model and length: the answer sweep with its floor, and the all-position "
    "records with theirs; within a group every case runs once per round, back to back in one process, the "
    "order reversed every other round; a ratio is the median over rounds of the case's time divided by its "
    "floor's time in that round (ratio_of_medians in the JSON is the ratio of the median times, for comparison)",
    "floor of the answer sweep: plain forward (logits for the last position only) + one matmul of the "
    "L+1 answer rows with the unembedding; floor of the all-position records: plain forward + one "
    "F.linear of [T, d] rows per layer (L+1 of them)",
    "'under a tuned lens': the answer sweep with a d x d map per layer before the head (near-identity stand-in "
    "maps: the time does not depend on the fitted values), in the answer group, as a ratio to the norm-lens sweep",
    "'tiled matmul' is the sweep's own vocabulary-tiled matmul with no statistics: the part of the "
    "all-position time that is arithmetic, not measurement",
    "peak memory, cpu: " + memory.METHODS["cpu"] + "; cuda: " + memory.METHODS["cuda"] + "; mps: "
    + memory.METHODS["mps"],
    "all positions memory is split into the capture (forward with hooks) and the decode (sweep_prompt); "
    "'logits held' is the decode's peak less the (L+1) x T normalised rows it must build as the matmul's "
    "input (the floor's matmul gets them ready-made), so it counts the logits tiles, their scratch twin "
    "and the statistics",
    "loads: GGUF cold = load_model into an empty TINYCAVE_CACHE (hash + dequantize + write entry); "
    "cached = load_model hitting that entry (config, memo, entry check, weights copied into owned memory, "
    "tokenizer, device plan, architecture checks); plain = transformers from_pretrained of the entry folder "
    "(model and tokenizer) plus one read of every weight, since transformers maps safetensors lazily; "
    "plain_lazy = from_pretrained of the weights alone",
    "battery: 001's run_fact_battery on the first facts of 'capitals', batched vs batch_size=1",
    "002, one group of rounds per model and length, interleaved as above: the floor is eager_forward (the "
    "model under eager attention, logits for the last position, no hooks: the eager kernel computes every "
    "layer's pattern, which SDPA never materialises, and keeps none) + head_products (every head's z at the "
    "answer position times its W_O slice: one bmm over all layers and heads in the model's dtype, z and W_O "
    "laid out beforehand); the case is measure_batch(lens=None) on one prompt (the bench prompt, subject "
    "'Germany', foil the model's top wrong token, chosen in the pass); extras: eager_forward_attentions (the "
    "same forward with output_attentions=True, returning and so keeping every [H, T, T] pattern), pattern_pass "
    "(run_with_cache reading only the pattern points at the last position) and analysis_with_lens "
    "(measure_batch with the norm lens); 'lens extra' is the per-round median of analysis_with_lens - analysis",
    "002 memory: peak of measure_batch(lens=None) on the prompt; the peaks of the floor's forward and of "
    "the forward returning every pattern are given for contrast",
    "002 battery: measure_items with the norm lens (as 002's run calls it; no ablation) on the first facts of "
    "'capitals' that have a scorable answer, batch_size=16 vs batch_size=1",
    "003, one group of rounds per model, interleaved as above, on the first pair 003's run sweeps (from the "
    "'capitals' battery): resid_sweep (the exact denoising residual sweep, (L+1) x T patched runs in batches "
    "of the size chosen from the memory budget, each batch starting at its first patched block from the "
    "corrupted run's cached block outputs) against plain_batches (as many forward passes, same batches, no "
    "hooks, last logits); resid_sweep_from_embedding recomputes every block, for contrast; attribution (plain "
    "AtP of one direction over every site of the full sweep: one forward with autograd, one backward) "
    "against plain_forward (one forward of the corrupted prompt); memory: peak of resid_sweep against the "
    "patching budget (half of what the device offered beyond the model)",
    "004 SAEs: one per default residual (default_layers, about 25/50/75/90% of the depth), in the default "
    "recipe's shape (d_sae = 4 x d_model, k 32, TopK), as inference TopKSAEs configured as trained ones are "
    "saved (decoder-norm rescaling on, no input normalisation) with seeded random weights: the time does not "
    "depend on the weights' values",
    "004 extraction, one group of rounds per model, interleaved as above: the case is text_features over the "
    "category texts (004's data/category_texts.jsonl) with those SAEs, as 004's run calls it (batches of 8 texts "
    "of similar length, left-padded; tokenising, the hooked forward that stops at the deepest SAE's residual, "
    "one encode per text and SAE, the per-text summaries); the floor is truncated_forward (the model's base, no "
    "LM head, with its decoder-block list cut to the blocks before the deepest SAE's residual and its final norm "
    "replaced by an identity, both restored afterwards; no hooks; the same batches with the mask and the "
    "mask-derived positions text_features passes, built beforehand; checked once, on the first batch, against "
    "the residual run_with_cache reads there and by hooks counting the blocks it runs) + sae_encodes (one "
    "encode per SAE of as many rows as text_features counts, each text's tokens after its first with special "
    "tokens dropped, as one [N, d_model] fp32 batch of seeded random values made beforehand); extra: "
    "hooked_reads (run_with_cache reading the SAE hooks with logits_at='none' over the same batches: "
    "text_features' forward without its encoding and summaries)",
    f"004 throughput, a second group of rounds, interleaved as above, on a reduced budget: residual_reading "
    f"(collect_residuals of {READ_WINDOWS} windows of the recipe's 128 tokens from the bundled corpus's training "
    f"split at the default residuals, in batches of 8 windows; tokens/s counts the rows stored, positions "
    f"1..127 of each window) and training (train_on_residuals on {TRAIN_TOKENS:,} stored rows per residual, the "
    f"rows read tiled, one epoch, the default recipe otherwise: batches of 2048 rows, so 8 steps, plus its norm "
    f"estimate and the conversion to inference SAEs; tokens/s = steps x 2048 x SAEs / seconds); "
    f"default_recipe_projected_seconds divides the default recipe's rows (reading) and rows x 3 epochs x SAEs "
    f"(training) by these rates",
    "004 memory: peaks of text_features, of collect_residuals (which allocates the store it fills) and of "
    "train_on_residuals (its store exists before it starts and is not counted); store_bound is the residual "
    "store of the default recipe, rows x SAEs x d_model x 4 B, rows = its 125,000 tokens rounded up to whole "
    "windows of 127 kept positions (125,095): residuals are buffered in that store, filled one batch of windows "
    "at a time, never the whole corpus",
    "005 SAE: one, at the second default residual (about 50% of the depth; with fewer than four, the middle one, "
    "the lower of two), as 004's: the default recipe's shape, seeded random weights",
    f"005 ablation, one group of rounds per model, interleaved as above: the case is ablation_scores over 005's "
    f"cloze items (data/cloze_items.jsonl, encode_items) with {REMOVALS} single features removed, each alone, as "
    f"005's ablate calls it (batches of {ABLATION_BATCH} items of similar length, left-padded; per batch one clean "
    f"read stopped at the SAE's hook, then per removal the blocks from the hook on, the blocks before returning the "
    f"clean batch's output, logits at every position, each item's answer scored); the floor is batched_forwards: "
    f"the same number of forward passes (items x removals), plain model forwards with no hooks, one per item batch "
    f"with its ids, mask and mask-derived positions repeated once per removal along the batch dimension (built "
    f"beforehand), full depth since the scores need the logits; checked once, untimed, against the clean "
    f"run_with_patches logits of the first batch, and by hooks counting the rows that reach the head (items x "
    f"removals in both) and the model calls (the sweep's removals x batches + one clean read per batch, the "
    f"floor's one per batch); the ratio is the median of the rounds' sweep / floor, as for 001-004 "
    f"(ablation_ratio_of_medians: the median sweep over the median floor)",
    "005 memory: peaks of the ablation sweep and of its floor (whose one batch holds removals x the batch's logits)",
]
EXPERIMENTS = ("001", "002", "003", "004", "005")


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags."""
    parser = argparse.ArgumentParser(prog="run_bench.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["smollm2-135m", "gemma3-270m"], metavar="MODEL",
                        help="bundled aliases, folders or .gguf files (default: both bundled models)")
    parser.add_argument("--lengths", nargs="+", type=int, default=[16, 512], metavar="N",
                        help="prompt lengths in tokens (default: 16 512)")
    parser.add_argument("--experiments", nargs="+", default=list(EXPERIMENTS), choices=EXPERIMENTS,
                        metavar="EXP",
                        help="which experiments to benchmark: 001 (lens sweeps, loads, 001's battery) and/or "
                             "002 (attention and attribution at the answer position, 002's battery) and/or "
                             "003 (the default pair's exact residual sweep and attribution patching) and/or "
                             "004 (feature extraction over the category texts through SAEs at the default "
                             "residuals, SAE training throughput) and/or 005 (single SAE features ablated over "
                             "the cloze items); 003, 004 and 005 have no prompt length of their own; default all "
                             "five")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed rounds of the all-position cases, the loads and the batteries (default 5)")
    parser.add_argument("--answer-repeats", type=int, default=15,
                        help="timed rounds of the answer-sweep cases, cheap enough for more (default 15)")
    parser.add_argument("--attribution-repeats", type=int, default=9,
                        help="timed rounds of 002's one-prompt cases (default 9)")
    parser.add_argument("--patching-repeats", type=int, default=5,
                        help="timed rounds of 003's cases (default 5)")
    parser.add_argument("--sae-repeats", type=int, default=5,
                        help="timed rounds of 004's extraction cases and, separately, of its residual reading "
                             "and training cases (default 5)")
    parser.add_argument("--ablation-repeats", type=int, default=5,
                        help="timed rounds of 005's ablation sweep and its floor (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    parser.add_argument("--cold-repeats", type=int, default=1,
                        help="GGUF cold loads per model (default 1: Gemma's costs ~40 s)")
    parser.add_argument("--battery-facts", type=int, default=40,
                        help="facts of each battery, 001's and 002's (default 40)")
    parser.add_argument("--skip-loads", action="store_true",
                        help="do not measure load times (measured only with 001)")
    parser.add_argument("--skip-battery", action="store_true", help="do not measure the fact batteries")
    parser.add_argument("--skip-lens-fit", action="store_true",
                        help="do not fit the tuned lens and linear shortcut from an empty cache (measured only "
                             "with 001; minutes per model)")
    parser.add_argument("--skip-memory", action="store_true", help="do not measure peak memory")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"),
                        help="where the models run (default auto: where 001 would run them)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"results folder (default {DEFAULT_OUT})")
    return parser


def _progress(label: str):
    def show(line: str) -> None:
        print(f"[{label}] {line}", file=sys.stderr, flush=True)

    return show


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _memory(work: Workloads, device: str) -> dict:
    """Peak bytes of the answer sweep and of the all-position capture and decode, in untimed runs."""
    resid, _ = work.capture_all()
    decode = memory.peak_bytes(partial(work.decode_all, resid), device)
    del resid
    return {
        "weights_bytes": memory.weights_bytes(work.model),
        "answer_sweep_peak_bytes": memory.peak_bytes(work.answer_sweep, device),
        "all_positions_peak_bytes": memory.peak_bytes(work.all_positions, device),
        "all_positions_capture_peak_bytes": memory.peak_bytes(work.capture_all, device),
        "all_positions_decode_peak_bytes": decode,
        "one_layer_logits_bytes": work.n_tokens * work.vocab_size * 4,
        "normalised_rows_bytes": work.normalised_rows_bytes,
        "method": memory.METHODS["cpu" if device == "cpu" else device.split(":")[0]],
    }


def _attribution_memory(work: AttributionWorkloads, device: str) -> dict:
    """Peak bytes of 002's one-prompt analysis and of its floor's forward, in untimed runs."""
    return {
        "weights_bytes": memory.weights_bytes(work.model),
        "analysis_peak_bytes": memory.peak_bytes(work.analysis, device),
        "analysis_with_lens_peak_bytes": memory.peak_bytes(work.analysis_with_lens, device),
        "eager_forward_peak_bytes": memory.peak_bytes(work.eager_forward, device),
        "eager_forward_attentions_peak_bytes": memory.peak_bytes(work.eager_forward_attentions, device),
        "pattern_stack_bytes": work.pattern_stack_bytes,
        "method": memory.METHODS["cpu" if device == "cpu" else device.split(":")[0]],
    }


def _battery(cases_and_info: tuple[dict, dict], loaded: LoadedModel, args: argparse.Namespace, label: str) -> dict:
    """Time a battery's two cases (batched, one at a time) and their speedup."""
    cases, info = cases_and_info
    timings = interleaved(cases, args.repeats, loaded.plan.device, args.warmup, _progress(f"{label} battery"))
    batched, single = timings["battery_batched"], timings["battery_one_at_a_time"]
    speedup = report.round_ratio(timings, "battery_one_at_a_time", ("battery_batched",))
    return {**info, "batched": batched.as_dict(), "one_at_a_time": single.as_dict(), "speedup": speedup}


def bench_model(model: str, args: argparse.Namespace) -> dict[str, list[dict]]:
    """Every measurement of one model: experiment -> one entry per prompt length."""
    loads_bench = LoadBench(model, args.device)
    try:
        loads = None
        if not args.skip_loads and "001" in args.experiments:
            loads = loads_bench.measure(args.repeats, args.cold_repeats, _progress(f"{model} loads"))
        loaded = loads_bench.load()
        try:
            return _bench_loaded(model, loaded, loads, args)
        finally:
            free_model(loaded)
    finally:
        loads_bench.cleanup()


def _bench_loaded(
    model: str, loaded: LoadedModel, loads: dict | None, args: argparse.Namespace
) -> dict[str, list[dict]]:
    context = model_context_length(loaded.model.config)
    too_long = [n for n in args.lengths if context is not None and n > context]
    if too_long and {"001", "002"} & set(args.experiments):  # only 001 and 002 read --lengths
        raise PromptError(f"{model} reads at most {context} tokens; drop --lengths {' '.join(map(str, too_long))}")
    return {
        "001": _bench_001(model, loaded, loads, args) if "001" in args.experiments else [],
        "002": _bench_002(model, loaded, args) if "002" in args.experiments else [],
        "003": _bench_003(model, loaded, args) if "003" in args.experiments else [],
        "004": _bench_004(model, loaded, args) if "004" in args.experiments else [],
        "005": _bench_005(model, loaded, args) if "005" in args.experiments else [],
    }


def _bench_001(model: str, loaded: LoadedModel, loads: dict | None, args: argparse.Namespace) -> list[dict]:
    """001's entries of one model, one per prompt length."""
    battery = None
    lens_fit = None
    if not args.skip_lens_fit:
        print(f"[{model} lens fit] fitting both lenses from an empty cache (minutes)", file=sys.stderr, flush=True)
        lens_fit = measure_lens_fit(loaded, loaded.plan.device, args.skip_memory)
    entries = []
    for n_tokens in args.lengths:
        label = f"{model} {n_tokens} tokens"
        work = Workloads(loaded, n_tokens)
        if battery is None and not args.skip_battery:
            battery = _battery(battery_cases(loaded, work.lens, args.battery_facts), loaded, args, model)
        device = loaded.plan.device
        timings = {
            "answer": interleaved(work.answer_cases(), args.answer_repeats, device, args.warmup,
                                  _progress(f"{label}, answer sweep")),
            "all_positions": interleaved(work.all_position_cases(), args.repeats, device, args.warmup,
                                         _progress(f"{label}, all positions")),
        }
        peaks = None if args.skip_memory else _memory(work, device)
        shape = {"n_layers": work.parts.n_layers, "d_model": work.parts.d_model, "vocab_size": work.vocab_size,
                 "device": device, "dtype": loaded.plan.dtype}
        entries.append(report.entry(model, n_tokens, shape, timings, peaks, loads, battery, lens_fit))
        del work
    return entries


def _bench_002(model: str, loaded: LoadedModel, args: argparse.Namespace) -> list[dict]:
    """002's entries of one model, one per prompt length."""
    battery = None
    entries = []
    device = loaded.plan.device
    for n_tokens in args.lengths:
        work = AttributionWorkloads(loaded, n_tokens)
        if battery is None and not args.skip_battery:
            cases = attribution_battery_cases(loaded, work.lens, args.battery_facts)
            battery = _battery(cases, loaded, args, f"{model} 002")
        timings = interleaved(work.cases(), args.attribution_repeats, device, args.warmup,
                              _progress(f"{model} {n_tokens} tokens, 002 one prompt"))
        peaks = None if args.skip_memory else _attribution_memory(work, device)
        shape = {"n_layers": work.parts.n_layers, "n_heads": work.parts.n_heads, "d_model": work.parts.d_model,
                 "device": device, "dtype": loaded.plan.dtype}
        entries.append(attribution_report.entry(model, n_tokens, shape, timings, peaks, battery))
        del work
    return entries


def _bench_003(model: str, loaded: LoadedModel, args: argparse.Namespace) -> list[dict]:
    """003's entry of one model (the default pair fixes the prompt length)."""
    work = PatchingWorkloads(loaded)
    device = loaded.plan.device
    timings = interleaved(work.cases(), args.patching_repeats, device, args.warmup,
                          _progress(f"{model} 003 default pair"))
    peak = None if args.skip_memory else memory.peak_bytes(work.resid_sweep, device)
    shape = {"device": device, "dtype": loaded.plan.dtype}
    return [patching_report.entry(model, shape, work.describe(), timings, peak, memory.weights_bytes(work.model))]


def _bench_004(model: str, loaded: LoadedModel, args: argparse.Namespace) -> list[dict]:
    """004's entry of one model (the category texts fix the lengths)."""
    work = SaeFeatureWorkloads(loaded)
    device = loaded.plan.device
    extraction = interleaved(work.extraction_cases(), args.sae_repeats, device, args.warmup,
                             _progress(f"{model} 004 extraction"))
    training = interleaved(work.training_cases(), args.sae_repeats, device, args.warmup,
                           _progress(f"{model} 004 reading and training"))
    peaks = None if args.skip_memory else memory.memory_peaks(work.model, device, {
        "extraction": work.extraction, "reading": work.residual_reading, "training": work.training})
    shape = {"device": device, "dtype": loaded.plan.dtype}
    return [sae_extraction_report.entry(model, shape, work.describe(), extraction, training, peaks)]


def _bench_005(model: str, loaded: LoadedModel, args: argparse.Namespace) -> list[dict]:
    """005's entry of one model (the cloze items fix the lengths)."""
    work = AblationSweepWorkloads(loaded)
    device = loaded.plan.device
    timings = interleaved(work.cases(), args.ablation_repeats, device, args.warmup,
                          _progress(f"{model} 005 ablation sweep"))
    peaks = None if args.skip_memory else memory.memory_peaks(
        work.model, device, {"sweep": work.ablation_sweep, "floor": work.batched_forwards})
    shape = {"device": device, "dtype": loaded.plan.dtype}
    return [ablation_sweep_report.entry(model, shape, work.describe(), timings, peaks)]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write its tables; returns 0."""
    args = build_parser().parse_args(argv)
    counts = (args.repeats, args.answer_repeats, args.attribution_repeats, args.patching_repeats, args.sae_repeats,
              args.ablation_repeats, args.cold_repeats)
    if min(counts) < 1 or args.warmup < 0:
        raise PromptError("--repeats, --answer-repeats, --attribution-repeats, --patching-repeats, --sae-repeats, "
                          "--ablation-repeats and --cold-repeats must be at least 1, --warmup at least 0")
    set_deterministic()
    started = time.time()
    machine = {
        "platform": platform.platform(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(), "device": args.device, "load_before": _load_average(),
    }
    by_model = [bench_model(model, args) for model in args.models]
    entries = [entry for found in by_model for entry in found["001"]]
    attribution_entries = [entry for found in by_model for entry in found["002"]]
    patching_entries = [entry for found in by_model for entry in found["003"]]
    sae_entries = [entry for found in by_model for entry in found["004"]]
    ablation_entries = [entry for found in by_model for entry in found["005"]]
    machine["load_after"] = _load_average()
    every = entries + attribution_entries + patching_entries + sae_entries + ablation_entries
    devices = {f"{e['device']} ({e['dtype']})" for e in every}
    machine["device"] = ", ".join(sorted(devices)) or args.device
    results = {
        "schema_version": 5,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "machine": machine,
        "settings": {"models": args.models, "experiments": args.experiments, "lengths": args.lengths,
                     "repeats": args.repeats, "answer_repeats": args.answer_repeats,
                     "attribution_repeats": args.attribution_repeats, "patching_repeats": args.patching_repeats,
                     "sae_repeats": args.sae_repeats, "ablation_repeats": args.ablation_repeats,
                     "warmup": args.warmup, "cold_repeats": args.cold_repeats, "battery_facts": args.battery_facts},
        "methods": METHODS,
        "entries": entries,
        "attribution_entries": attribution_entries,
        "patching_entries": patching_entries,
        "sae_entries": sae_entries,
        "ablation_entries": ablation_entries,
    }
    extra = (attribution_report.markdown_lines(attribution_entries) + patching_report.markdown_lines(patching_entries)
             + sae_extraction_report.markdown_lines(sae_entries)
             + ablation_sweep_report.markdown_lines(ablation_entries))
    json_path, md_path = report.write_results(results, args.out, extra)
    print(md_path.read_text(encoding="utf-8"))
    print(f"results: {json_path} and {md_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_main(main)
