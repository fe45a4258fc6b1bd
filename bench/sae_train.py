"""Train SAEs on a bundled model with one recipe and measure their quality on held-out text (for choosing the recipe).

    python -m bench.sae_train --model smollm2-135m [--layers 8 15 22 27] [--k 32 --expansion 8 ...]
                              [--store residuals.safetensors]

Prints each SAE's quality, then one JSON line with the recipe, the seconds (reading
residuals, training, quality) and each SAE's quality (``layers_core.sae.sae_quality``)
for NOTES.md. Windows come from the bundled corpus's train / held-out split, mixed by
``SOURCE_SHARES``. With ``--store`` the residuals read are saved there (safetensors) and
a later call with the same model, corpus, layers, tokens and window reads them back instead
of running the model, so recipes can be compared at the cost of training alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from layers_core.corpus import SOURCE_SHARES, bundled_corpus, split_documents, token_windows
from layers_core.lens.fit_progress import stderr_progress
from layers_core.models.loading import load_model
from layers_core.sae.sae_points import default_layers, residual_hook
from layers_core.sae.sae_quality import sae_quality
from layers_core.sae.sae_training import SaeRecipe, collect_residuals, train_on_residuals


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: the model, layers, threads and every recipe field."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--layers", type=int, nargs="+", help="residuals (default: ~25/50/75/90%% of the depth)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--heldout-windows", type=int, default=64)
    parser.add_argument("--store", type=Path, help="safetensors file to save the residuals to, or read them from")
    for field in dataclasses.fields(SaeRecipe):
        flag = f"--{field.name.replace('_', '-')}"
        if isinstance(field.default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default)
        else:
            parser.add_argument(flag, type=type(field.default), default=field.default)
    return parser.parse_args(argv)


def _residuals(loaded, windows, layers: list[int], recipe: SaeRecipe, args: argparse.Namespace) -> dict:
    """The store of residuals: read back from ``--store`` when it matches, else collected (and saved there)."""
    from safetensors.torch import load_file, save_file

    tag = {"model": args.model, "layers": ",".join(map(str, layers)), "windows": str(int(windows.shape[0])),
           "window": str(recipe.window), "corpus": bundled_corpus().fingerprint()}
    if args.store is not None and args.store.exists():
        from safetensors import safe_open

        with safe_open(str(args.store), "pt") as handle:
            stored = handle.metadata()
        # A store read from another corpus mix holds other windows' residuals: never reuse it.
        same = all(stored.get(key) == tag[key] for key in ("model", "window", "corpus"))
        enough = int(stored.get("windows", 0)) >= int(windows.shape[0])
        if same and enough and set(layers) <= {int(x) for x in stored["layers"].split(",")}:
            # Rows are window-major, so the first windows' residuals are the first rows.
            rows = int(windows.shape[0]) * (recipe.window - 1)
            hooks = {residual_hook(layer, loaded.parts.n_layers) for layer in layers}
            return {hook: values[:rows].clone() for hook, values in load_file(str(args.store)).items()
                    if hook in hooks}
    store = collect_residuals(loaded.model, loaded.parts, windows, layers, batch_size=recipe.forward_batch,
                              progress=stderr_progress())
    if args.store is not None:
        save_file(store, str(args.store), metadata=tag)
    return store


def main(argv: list[str] | None = None) -> None:
    """Train, evaluate, print."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    recipe = SaeRecipe(**{f.name: getattr(args, f.name) for f in dataclasses.fields(SaeRecipe)})
    loaded = load_model(args.model, device="cpu", dtype="float32")
    parts = loaded.parts
    layers = args.layers or default_layers(parts.n_layers)
    train_docs, heldout_docs = split_documents(bundled_corpus())
    started = time.perf_counter()
    train = token_windows(loaded.tokenizer, train_docs, recipe.window, recipe.windows_needed() * recipe.window,
                          SOURCE_SHARES)
    heldout = token_windows(loaded.tokenizer, heldout_docs, recipe.window, args.heldout_windows * recipe.window,
                            SOURCE_SHARES)
    tokenize_s = time.perf_counter() - started
    started = time.perf_counter()
    store = _residuals(loaded, train[: recipe.windows_needed()], layers, recipe, args)
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    trained = train_on_residuals(store, parts.d_model, recipe)
    saes = {layer: trained[residual_hook(layer, parts.n_layers)] for layer in layers}
    train_s = time.perf_counter() - started
    started = time.perf_counter()
    quality = sae_quality(loaded.model, parts, saes, heldout, batch_size=8, progress=stderr_progress())
    quality_s = time.perf_counter() - started
    for q in quality:
        print(f"layer {q.layer}: L0 {q.l0:.1f}  EV {q.explained_variance:.3f}  CE recovered {q.ce_loss_recovered:.3f} "
              f"(clean {q.ce_clean:.3f}, sae {q.ce_sae:.3f}, zero {q.ce_zero:.3f})  dead {q.dead_frac:.3f}  "
              f"dense {q.dense_frac:.3f}")
    print(json.dumps({"model": args.model, "threads": args.threads, "layers": layers, "recipe": recipe.as_dict(),
                      "train_windows": int(train.shape[0]), "tokenize_s": round(tokenize_s, 1),
                      "read_s": round(read_s, 1), "train_s": round(train_s, 1), "quality_s": round(quality_s, 1),
                      "quality": [q.as_row() for q in quality]}))


if __name__ == "__main__":
    main()
