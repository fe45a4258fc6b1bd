"""Shared library of the tinycave experiments, grouped by concern.

- ``models``: turn a model name, folder or GGUF file into a loaded model on the right
  device (spec, bundled models, loading, GGUF cache, device policy, architecture parts).
- ``hooks``: read and write activations at named hook points (TransformerLens spelling).
- ``lens``: decode a residual into logits (the norm lens) and sweep it over layers.
- ``prompts``: prompt cases, fact batteries, answer alignment, chat templates, token text.
- ``runs``: the shared flags, the per-model loop, run folders, provenance, artefact files.
- ``reports``: markdown, formats, plot style, reading run folders back, LLM prompt packs.
- ``attribution``: direct logit attribution at the answer position, exact (002, 003).
- ``corpus``: the bundled offline text corpus and user corpora, split and cut into token
  windows (what lenses and sparse autoencoders fit on; ``data/corpus/DATASHEET.md``).
- ``metrics``: pure functions of tensors (entropy, KL, ranks, milestones).

This package and its subpackages import nothing heavy on import: ``report.py``
and ``--help`` answer without loading torch.
"""
