"""Regenerate experiment 001's reports from the artefacts of an earlier run.

    python 001_layers_and_logits/report.py                  # the run-latest folder beside this file
    python 001_layers_and_logits/report.py path/to/run-folder
    python 001_layers_and_logits/report.py DIR              # the folder given to run.py --out: DIR/run-latest

Reads the output-<model>.json and CSV files that run.py wrote and rewrites the
plots, the factual evaluation markdown and the paste-ready LLM prompts. No model
is loaded and torch is not imported, so it takes seconds.
"""

from pathlib import Path

from layers_and_logits.reports import write_reports
from layers_core.cli import run_main
from layers_core.reports.report_cli import ReportCommand
from layers_core.runs.run_folder import LATEST

HERE = Path(__file__).resolve().parent
COMMAND = ReportCommand(
    experiment="001_layers_and_logits",
    files="heatmap-<model>.png, heatmap-entropy-<model>.png, trajectory-<model>.png, lenses-<model>.png "
          "(runs with --lens tuned or linear), cross-model.png",
    write_reports=write_reports,
    default_run_dir=HERE / LATEST,
)
main = COMMAND.main

if __name__ == "__main__":
    run_main(main)
