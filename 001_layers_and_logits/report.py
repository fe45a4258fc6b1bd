"""Regenerate experiment 001's reports from the artefacts of an earlier run.

    python 001_layers_and_logits/report.py                      # the run-latest folder beside this file
    python 001_layers_and_logits/report.py path/to/run-folder
    python 001_layers_and_logits/report.py DIR                  # the folder given to run.py --out: DIR/run-latest

Reads the output-<model>.json and CSV files that run.py wrote and rewrites the
plots, the factual evaluation markdown and the paste-ready LLM prompts. No model
is loaded and torch is not imported, so it takes seconds.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from layers_and_logits.reports import write_reports
from layers_core.cli import run_main
from layers_core.reports.run_reader import resolve_run_dir
from layers_core.runs.run_folder import LATEST

HERE = Path(__file__).resolve().parent
DEFAULT_RUN_DIR = HERE / LATEST


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line: one optional run folder."""
    parser = argparse.ArgumentParser(
        prog="report.py",
        description="Rebuild experiment 001's reports from an existing run folder, without loading any model: "
        "heatmap-<model>.png, heatmap-entropy-<model>.png, trajectory-<model>.png, evaluation-<model>.md, "
        "llm-prompt-<model>.md, cross-model.png, evaluation-cross-model.md, llm-prompt-cross-model.md, and "
        "llm-prompt-meta.md when LLM answers were saved there as llm-evaluation-*.md.",
        epilog="The evaluation-*.md files are factual (numbers from the artefacts, no LLM). The llm-prompt-*.md "
        "files are ready to paste into a chat model for a written evaluation.",
    )
    parser.add_argument("run_dir", nargs="?", type=Path, default=DEFAULT_RUN_DIR, metavar="RUN_DIR",
                        help="folder holding output-<model>.json files, or the folder given to run.py --out "
                        f"(its {LATEST}/ is used) (default: {DEFAULT_RUN_DIR})")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite every report in the run folder; print where they went."""
    run_dir = resolve_run_dir(parse_args(argv).run_dir)
    written = write_reports(run_dir)
    print(f"wrote {len(written)} report files in {run_dir}:")
    for path in written:
        print(f"  {path.name}")
    return 0


if __name__ == "__main__":
    run_main(main)
