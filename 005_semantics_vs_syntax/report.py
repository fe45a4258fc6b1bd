"""Regenerate experiment 005's reports from the artefacts of an earlier run.

    python 005_semantics_vs_syntax/report.py                  # the run-latest folder beside this file
    python 005_semantics_vs_syntax/report.py path/to/run-folder
    python 005_semantics_vs_syntax/report.py DIR              # the folder given to run.py --out: DIR/run-latest

Reads the output-<model>.json and CSV files that run.py wrote and rewrites the
plots, the factual evaluation markdown and the paste-ready LLM prompts. No model
is loaded and torch is not imported, so it takes seconds.
"""

from pathlib import Path

from layers_core.cli import run_main
from layers_core.reports.report_cli import ReportCommand
from layers_core.runs.run_folder import LATEST
from semantics_syntax.reports import write_reports

HERE = Path(__file__).resolve().parent
COMMAND = ReportCommand(
    experiment="005_semantics_vs_syntax",
    files="similarity-<model>.png, token-classes-<model>.png, ablation-<model>.png, cross-model.png",
    write_reports=write_reports,
    default_run_dir=HERE / LATEST,
)
main = COMMAND.main

if __name__ == "__main__":
    run_main(main)
