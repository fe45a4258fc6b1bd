"""The ``report.py`` every experiment ships: rebuild its reports from a run folder, without a model.

    python <experiment>/report.py                 # the run-latest folder beside the script
    python <experiment>/report.py path/to/run-folder
    python <experiment>/report.py DIR             # the folder given to run.py --out: DIR/run-latest

Nothing here imports torch, so it answers in seconds.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from layers_core.reports.run_reader import resolve_run_dir
from layers_core.runs.arguments import ArgumentParser
from layers_core.runs.run_folder import LATEST

SHARED_FILES = ("evaluation-<model>.md, llm-prompt-<model>.md, evaluation-cross-model.md, "
                "llm-prompt-cross-model.md, and llm-prompt-meta.md when LLM answers were saved there as "
                "llm-evaluation-*.md.")
EPILOG = ("The evaluation-*.md files are factual (numbers from the artefacts, no LLM). The llm-prompt-*.md "
          "files are ready to paste into a chat model for a written evaluation.")


@dataclass(frozen=True)
class ReportCommand:
    """One experiment's ``report.py``.

    Attributes:
        experiment: Its folder name, e.g. "002_attention_and_attribution".
        files: Its own report files (plots), listed in ``--help`` before the ``SHARED_FILES``.
        write_reports: Its ``write_reports(run_dir) -> list[Path]``.
        default_run_dir: The run folder used when none is given (``<experiment>/run-latest``).
    """

    experiment: str
    files: str
    write_reports: Callable[[Path], list[Path]]
    default_run_dir: Path

    def parser(self) -> argparse.ArgumentParser:
        """The command line: one optional run folder."""
        parser = ArgumentParser(
            prog="report.py",
            description=f"Rebuild experiment {self.experiment}'s reports from an existing run folder, without "
            f"loading any model: {self.files}, {SHARED_FILES}",
            epilog=EPILOG,
        )
        parser.add_argument(
            "run_dir", nargs="?", type=Path, default=self.default_run_dir, metavar="RUN_DIR",
            help="folder holding output-<model>.json files, or the folder given to run.py --out "
            f"(its {LATEST}/ is used) (default: {self.default_run_dir})",
        )
        return parser

    def main(self, argv: Sequence[str] | None = None) -> int:
        """Rewrite every report in the run folder; print where they went."""
        run_dir = resolve_run_dir(self.parser().parse_args(argv).run_dir)
        written = self.write_reports(run_dir)
        print(f"wrote {len(written)} report files in {run_dir}:")
        for path in written:
            print(f"  {path.name}")
        return 0
