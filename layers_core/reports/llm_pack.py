"""Paste-ready LLM prompts (``llm-prompt-<subject>.md``): a template with the artefacts it needs inlined.

Each file is ready to paste into a chat window. Budget: the text to paste stays
within ``CHAR_BUDGET`` characters (about 60,000 tokens by the chars/4 rule of
thumb; CSV numbers tokenise denser, so real counts can be ~1.5x that, still
inside the 128k-token windows of common chat models). When the full artefacts
do not fit, an experiment's trim levels are tried in order, from the least
trimmed, and the file's header says exactly what was removed. The home folder
is written ``~`` in everything pasted (``home_paths``).

An experiment supplies the template, the models' ``Source``s and its trim
levels (``TrimStep`` functions); this module does the rest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from layers_core.paths import PROMPTS_DIR
from layers_core.reports.csv_trim import Table, read_table, table_text
from layers_core.reports.home_paths import tilde_home
from layers_core.reports.markdown import fenced
from layers_core.reports.run_reader import ModelArtefacts, ReportInputError
from layers_core.runs.artefacts import artefact_path

CHAR_BUDGET = 240_000
CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class Source:
    """One model's artefacts as they will be inlined.

    Attributes:
        name: The model's artefact name.
        summary: Its JSON document, parsed.
        json_text: The JSON as inlined (the file's exact text until a trim changes it).
        tables: CSV kind -> the table as inlined (None: not in the run folder), in the order inlined.
    """

    name: str
    summary: dict[str, Any]
    json_text: str
    tables: dict[str, Table | None]

    def with_summary(self, summary: dict[str, Any]) -> Source:
        """This source with another JSON document (written indent 2, as the artefacts are)."""
        return replace(self, summary=summary, json_text=json.dumps(summary, indent=2, ensure_ascii=False))

    def with_table(self, kind: str, table: Table) -> Source:
        """This source with one CSV replaced."""
        return replace(self, tables={**self.tables, kind: table})


TrimStep = Callable[[Source], tuple[Source, list[str]]]
"""One trim of one source: the trimmed source and a note per thing removed (none when nothing was)."""
TrimLevels = Sequence[Sequence[TrimStep]]
"""Trim levels from the least trimmed; each level's steps are applied, in order, to the untrimmed source."""
VERBATIM: TrimLevels = ((),)


def load_template(experiment: str, file_name: str) -> str:
    """The text of a prompt template: ``prompts/<experiment>/<file_name>`` in the repository."""
    path = PROMPTS_DIR / experiment / file_name
    if not path.is_file():
        raise ReportInputError(f"prompt template {path} is missing: restore it from git (git checkout -- prompts).")
    return path.read_text(encoding="utf-8").rstrip() + "\n"


def read_source(model: ModelArtefacts, run_dir: Path, csv_kinds: Sequence[str]) -> Source:
    """The exact JSON text and the CSVs of ``csv_kinds`` of one model, as the run folder holds them."""
    tables: dict[str, Table | None] = {}
    for kind in csv_kinds:
        path = artefact_path(run_dir, model.name, kind)
        tables[kind] = read_table(path) if path.is_file() else None
    json_text = artefact_path(run_dir, model.name, "json").read_text(encoding="utf-8")
    return Source(model.name, model.summary, json_text, tables)


def render_source(src: Source) -> str:
    """The markdown blocks of one source: the JSON, then each CSV, each under its file name."""
    blocks = [f"### {artefact_path(Path(), src.name, 'json').name}", fenced(src.json_text, "json")]
    for kind, table in src.tables.items():
        csv_name = artefact_path(Path(), src.name, kind).name
        blocks += [f"({csv_name} is not in the run folder.)"] if table is None else [
            f"### {csv_name}", fenced(table_text(table), "csv")]
    return "\n\n".join(blocks)


def trimmed(src: Source, steps: Sequence[TrimStep]) -> tuple[Source, list[str]]:
    """``src`` after the steps of one trim level, and what they removed."""
    notes: list[str] = []
    for step in steps:
        src, removed = step(src)
        notes += removed
    return src, notes


def pack_body(template: str, sources: Sequence[Source], steps: Sequence[TrimStep]) -> tuple[str, list[str]]:
    """The text to paste at one trim level (home folder as ``~``), and what the trims removed."""
    done = [trimmed(src, steps) for src in sources]
    body = template + "\n## Artefacts\n\n" + "\n\n".join(render_source(src) for src, _ in done) + "\n"
    return tilde_home(body), [note for _, notes in done for note in notes]


def prompt_header(title: str, body: str, notes: list[str], usage: str) -> str:
    """The part above the line: title, size against the budget, what was trimmed, how to use it."""
    size = (f"Size of the text to paste (everything below the line): {len(body):,} characters, about "
            f"{len(body) // CHARS_PER_TOKEN:,} tokens (characters / {CHARS_PER_TOKEN}). Budget: {CHAR_BUDGET:,} "
            f"characters (about {CHAR_BUDGET // CHARS_PER_TOKEN:,} tokens by that estimate; numeric CSV tokenises "
            "denser, so expect up to ~1.5x more real tokens, within 128k-token chat models).")
    over = ["**Over budget even after every trim: paste it into a model with a large context window.**"] \
        if len(body) > CHAR_BUDGET else []
    trims = "\n".join(f"- {n}" for n in notes) if notes else "Nothing was trimmed: the artefacts are inlined verbatim."
    return "\n\n".join([f"# {title}", size, *over, "Trimmed to fit the budget:\n\n" + trims, usage, "---"]) + "\n\n"


def paste_ready(title: str, body: str, notes: list[str], usage: str) -> str:
    """The whole file: the header, then the body; the home folder written ``~`` throughout."""
    body = tilde_home(body)
    return tilde_home(prompt_header(title, body, notes, usage)) + body


def assemble(title: str, template: str, sources: Sequence[Source], usage: str,
             levels: TrimLevels = VERBATIM) -> str:
    """Header plus template plus artefacts, at the least trimmed level that fits the budget (else the last)."""
    if not levels:
        raise ValueError("assemble needs at least one trim level (VERBATIM: no trim)")
    for steps in levels:
        body, notes = pack_body(template, sources, steps)
        if len(body) <= CHAR_BUDGET:
            break
    return paste_ready(title, body, notes, usage)


def llm_prompt_path(run_dir: Path, subject: str) -> Path:
    """Where the prompt about ``subject`` (a model name, ``cross-model``, ``meta``) goes."""
    return Path(run_dir) / f"llm-prompt-{subject}.md"


def llm_evaluation_name(subject: str) -> str:
    """The file name the user saves an LLM's answer under (the meta-evaluation prompt reviews these)."""
    return f"llm-evaluation-{subject}.md"


def answer_usage(subject: str) -> str:
    """The "how to use" line of an evaluation prompt: paste it, save the answer for the meta-evaluation."""
    return ("How to use: copy everything below the line into a new chat with a capable model. Save its answer "
            f"as `{llm_evaluation_name(subject)}` in this folder; the meta-evaluation prompt reviews it.")


def write_pack(run_dir: Path, subject: str, title: str, template: str, sources: Sequence[Source],
               levels: TrimLevels = VERBATIM) -> Path:
    """Write ``llm-prompt-<subject>.md``: the evaluation prompt about ``subject`` with its sources inlined."""
    path = llm_prompt_path(run_dir, subject)
    path.write_text(assemble(title, template, sources, answer_usage(subject), levels), encoding="utf-8")
    return path

