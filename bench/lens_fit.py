"""Fit the linear shortcut and the tuned lens on a bundled model and compare held-out KL with the norm lens.

    python -m bench.lens_fit --model smollm2-135m [--threads 1] [--steps 48 ...]

Prints the residual extraction rate (tokens/s), the fitting seconds of each lens and the
held-out mean KL(final || lens) in bits over layers 0..L-1 for norm, linear and tuned,
then one JSON line with everything (per-layer KL included) for NOTES.md. Windows come
from the bundled corpus's train / held-out split, mixed by ``SOURCE_SHARES``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from layers_core.corpus import SOURCE_SHARES, bundled_corpus, split_documents, token_windows
from layers_core.lens.fit_progress import stderr_progress
from layers_core.lens.lens import Lens
from layers_core.lens.lens_divergence import kl_by_layer
from layers_core.lens.linear_shortcut import DEFAULT_RIDGE, fit_linear_shortcut
from layers_core.lens.residual_batches import window_residuals
from layers_core.lens.translators import LensIdentity
from layers_core.lens.tuned_fit import TunedRecipe, fit_tuned_lens, tuned_recipe_dict
from layers_core.models.loading import load_model


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--window", type=int, default=128, help="tokens per window")
    parser.add_argument("--linear-windows", type=int, default=48, help="training windows of the linear shortcut")
    parser.add_argument("--tuned-windows", type=int, default=16, help="training windows the tuned lens draws from")
    parser.add_argument("--heldout-windows", type=int, default=6)
    parser.add_argument("--positions", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=48)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--init", default="linear", choices=("identity", "linear"))
    parser.add_argument("--forward-batch", type=int, default=8)
    parser.add_argument("--eval-batch", type=int, default=2)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Fit, evaluate, print."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    loaded = load_model(args.model, device="cpu", dtype="float32")
    model, parts = loaded.model, loaded.parts
    corpus = bundled_corpus()
    train_docs, heldout_docs = split_documents(corpus, 0.1)
    count = max(args.linear_windows, args.tuned_windows)
    train = token_windows(loaded.tokenizer, train_docs, args.window, count * args.window, SOURCE_SHARES)
    heldout = token_windows(loaded.tokenizer, heldout_docs, args.window, args.heldout_windows * args.window,
                            SOURCE_SHARES)
    progress = stderr_progress()
    out: dict = {"model": args.model, "threads": args.threads, "window": args.window,
                 "train_windows": int(train.shape[0]), "heldout_windows": int(heldout.shape[0]),
                 "source_shares": SOURCE_SHARES}

    probe = train[: args.forward_batch]
    started = time.perf_counter()
    for _ in window_residuals(model, parts, probe, batch_size=args.forward_batch):
        pass
    out["extract_tokens_per_s"] = round(probe.numel() / (time.perf_counter() - started), 1)

    fingerprint = corpus.fingerprint()
    linear_id = LensIdentity("linear", args.model, fingerprint,
                             {"windows": args.linear_windows, "window": args.window, "ridge": DEFAULT_RIDGE},
                             parts.n_layers, parts.d_model)
    started = time.perf_counter()
    linear = fit_linear_shortcut(model, parts, train[: args.linear_windows], linear_id,
                                 batch_size=args.forward_batch, progress=progress)
    out["linear_seconds"] = round(time.perf_counter() - started, 1)

    recipe = TunedRecipe(positions=args.positions, steps=args.steps, batch_size=args.batch, lr=args.lr,
                         init=args.init, forward_batch=args.forward_batch)
    init = linear if args.init == "linear" else None
    tuned_id = LensIdentity("tuned", args.model, fingerprint, tuned_recipe_dict(recipe, init),
                            parts.n_layers, parts.d_model)
    trace: list[float] = []
    started = time.perf_counter()
    tuned = fit_tuned_lens(model, parts, train[: args.tuned_windows], tuned_id, recipe, init=init,
                           progress=progress, trace=trace)
    out["tuned_seconds"] = round(time.perf_counter() - started, 1)
    out["recipe"] = recipe.as_dict()
    out["train_kl_first_last_steps"] = [round(trace[0], 4), round(trace[-1], 4)]

    lenses = {"norm": Lens(parts), "linear": Lens(parts, "linear", maps=linear), "tuned": Lens(parts, "tuned",
                                                                                             maps=tuned)}
    started = time.perf_counter()
    for name, lens in lenses.items():
        per_layer = kl_by_layer(model, parts, lens, heldout, batch_size=args.eval_batch, progress=progress)
        out[f"kl_{name}_by_layer"] = [round(value, 4) for value in per_layer]
        out[f"kl_{name}_mean"] = round(sum(per_layer[:-1]) / parts.n_layers, 4)
    out["eval_seconds"] = round(time.perf_counter() - started, 1)

    print(f"{args.model}: extraction {out['extract_tokens_per_s']} tokens/s; linear {out['linear_seconds']} s, "
          f"tuned {out['tuned_seconds']} s (threads {args.threads})")
    print("held-out mean KL over layers 0..L-1 (bits): "
          + ", ".join(f"{name} {out[f'kl_{name}_mean']}" for name in lenses))
    print(json.dumps(out))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
