"""The reporting layer never imports torch, directly or through anything it imports."""

from __future__ import annotations

import subprocess
import sys

from layers_core.paths import REPO_ROOT

SAE_REPORTS = REPO_ROOT / "004_sae_features" / "sae_features" / "reports"
SEMANTICS_REPORTS = REPO_ROOT / "005_semantics_vs_syntax" / "semantics_syntax" / "reports"
MODULES = ["layers_core", "layers_core.reports", "layers_core.lens", "layers_core.runs",
           *(f"layers_core.reports.{p.stem}" for p in sorted((REPO_ROOT / "layers_core" / "reports").glob("*.py"))
             if p.stem != "__init__"),
           "layers_core.runs.artefacts", "layers_core.lens.consistency",
           *(f"sae_features.reports.{p.stem}" for p in sorted(SAE_REPORTS.glob("*.py")) if p.stem != "__init__"),
           "semantics_syntax.reports",
           *(f"semantics_syntax.reports.{p.stem}" for p in sorted(SEMANTICS_REPORTS.glob("*.py"))
             if p.stem != "__init__")]


def test_importing_the_reporting_layer_leaves_torch_unloaded() -> None:
    script = "import importlib, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in MODULES) + (
        "assert 'torch' not in sys.modules, 'torch was imported'\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
