"""Shared library of the tinycave experiments, grouped by concern.

- ``models``: turn a model name, folder or GGUF file into a loaded model on the right
  device (spec, bundled models, loading, GGUF cache, device policy, architecture parts).
- ``hooks``: read and write activations at named hook points (TransformerLens spelling).
- ``lens``: decode a residual into logits (the norm lens) and sweep it over layers.
- ``prompts``: prompt cases, fact batteries, answer alignment, chat templates, token text.
- ``runs``: the shared flags, the per-model loop, run folders, provenance, artefact files.
- ``reports``: markdown, formats, plot style, reading run folders back, LLM prompt packs.
- ``metrics``: pure functions of tensors (entropy, KL, ranks, milestones).

This package and its subpackages import nothing heavy on import: ``report.py``
and ``--help`` answer without loading torch.
"""
