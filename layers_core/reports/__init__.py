"""The reporting layer every experiment's ``reports/`` builds on; it never imports torch.

- ``run_reader``: read a run folder back (``RunSchema``, ``ModelArtefacts``, ``ReportInputError``).
- ``formats``, ``markdown``: number and token formats; tables, images, fenced blocks.
- ``plot_style``: figures without pyplot, reproducible PNG bytes.
- ``llm_pack``, ``csv_trim``, ``home_paths``, ``meta_prompt``: paste-ready LLM prompts within a
  size budget, with the experiment's trims, and ``~`` for the home folder.
"""
