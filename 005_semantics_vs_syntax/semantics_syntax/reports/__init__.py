"""Reports of experiment 005, regenerated from its run-folder artefacts without loading a model.

``write_reports(run_dir)`` is the one entry point (``run.py`` calls it after a run;
``report.py`` calls it on an existing folder). Built on the generic reporting layer
``layers_core.reports``; only 005's content lives here. Never imports torch.
"""

from __future__ import annotations

from semantics_syntax.reports.pipeline import write_reports

__all__ = ["write_reports"]
