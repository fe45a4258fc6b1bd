"""Reports of experiment 001, regenerated from its run-folder artefacts without loading a model.

``write_reports(run_dir)`` is the one entry point (``run.py`` calls it after a run;
``report.py`` calls it on an existing folder). Imported as a top-level package
with ``001_layers_and_logits`` on ``sys.path``.
"""

from __future__ import annotations

from lens_reports.pipeline import write_reports

__all__ = ["write_reports"]
