"""Reports of experiment 004, regenerated from its run-folder artefacts without loading a model.

``write_reports(run_dir)`` is the one entry point (``run.py`` calls it after a run;
``report.py`` calls it on an existing folder). Built on the generic reporting layer
``layers_core.reports``; only 004's content lives here. Never imports torch.
"""

from __future__ import annotations

from sae_features.reports.pipeline import write_reports

__all__ = ["write_reports"]
