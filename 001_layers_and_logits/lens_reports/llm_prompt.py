"""``llm-prompt-*.md``: an evaluation prompt template with the artefacts it needs inlined.

Each file is ready to paste into a chat window. Budget: the text to paste stays
within ``CHAR_BUDGET`` characters (about 60,000 tokens by the chars/4 rule of
thumb; CSV numbers tokenise denser, so real counts can be ~1.5x that, still
inside the 128k-token windows of common chat models). When the full artefacts
do not fit, they are trimmed step by step (fewer top-k columns, then no fact
list, then fewer rows) and the file says exactly what was removed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lens_reports.artefact_reader import ModelArtefacts, ReportInputError, artefact_path
from lens_reports.csv_trim import Table, keep_rows, keep_topk, max_topk, read_table, table_text

CHAR_BUDGET = 240_000
CHARS_PER_TOKEN = 4
PROMPTS_DIR = Path(__file__).resolve().parents[2] / "prompts"
SINGLE_TEMPLATE = "prompt-single-model-evaluation.txt"
CROSS_TEMPLATE = "prompt-cross-model-evaluation.txt"
TRIM_LEVELS = 5  # 0 = verbatim; each level adds one trim (see _render_source)


@dataclass(frozen=True)
class Source:
    """One model's artefacts as they will be inlined."""

    name: str
    summary: dict[str, Any]
    json_text: str
    table: Table | None
    key_layers: frozenset[int]


def load_template(file_name: str) -> str:
    """The text of a prompt template from the repository's ``prompts/`` folder."""
    path = PROMPTS_DIR / file_name
    if not path.is_file():
        raise ReportInputError(f"prompt template {path} is missing: restore it from git (git checkout -- prompts).")
    return path.read_text(encoding="utf-8").rstrip() + "\n"


def fenced(text: str, lang: str) -> str:
    """A fenced code block whose fence is longer than any backtick run inside the text."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}"


def source_for(model: ModelArtefacts, run_dir: Path) -> Source:
    """Read the exact JSON text and pure next-token CSV of one ok model."""
    csv_path = artefact_path(run_dir, model.name, "pure-next-token")
    main = model.prompt(model.main_prompt_id)
    layers = frozenset(int(k["layer"]) for k in main.get("key_layers") or [])
    return Source(model.name, model.summary, artefact_path(run_dir, model.name, "json").read_text(encoding="utf-8"),
                  read_table(csv_path) if csv_path.is_file() else None, layers)


def _render_source(src: Source, level: int) -> tuple[str, list[str]]:
    """The markdown blocks of one model at a trim level, and what the trims removed."""
    notes: list[str] = []
    json_text, per_fact = src.json_text, (src.summary.get("facts") or {}).get("per_fact")
    if level >= 3 and per_fact:
        facts = {k: v for k, v in src.summary["facts"].items() if k != "per_fact"}
        json_text = json.dumps({**src.summary, "facts": facts}, indent=2, ensure_ascii=False)
        notes.append(f"output-{src.name}.json: facts.per_fact removed ({len(per_fact)} entries; the "
                     "facts.milestones summary is kept).")
    blocks = [f"### output-{src.name}.json", fenced(json_text, "json")]
    csv_name = f"output-{src.name}-pure-next-token.csv"
    if src.table is None:
        return "\n\n".join(blocks + [f"({csv_name} is not in the run folder.)"]), notes
    table, top = src.table, max_topk(src.table)
    keep = 5 if level == 1 else 1 if level >= 2 else top
    if keep < top:
        table = keep_topk(table, keep)
        kept = "only top1" if keep == 1 else f"top1..top{keep}"
        notes.append(f"{csv_name}: columns top{keep + 1}..top{top} and p_top{keep + 1}..p_top{top} removed "
                     f"({kept} kept).")
    if level >= 4:
        main = str(src.summary["main_prompt_id"])
        table = keep_rows(table, lambda r: r.get("prompt_id") == main or int(r.get("layer", -1)) in src.key_layers)
        notes.append(f"{csv_name}: rows of prompts other than `{main}` kept only at the key layers "
                     f"{sorted(src.key_layers)}.")
    return "\n\n".join(blocks + [f"### {csv_name}", fenced(table_text(table), "csv")]), notes


def _body(template: str, sources: list[Source], level: int) -> tuple[str, list[str]]:
    rendered = [_render_source(s, level) for s in sources]
    body = template + "\n## Artefacts\n\n" + "\n\n".join(text for text, _ in rendered) + "\n"
    return body, [note for _, notes in rendered for note in notes]


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


def assemble(title: str, template: str, sources: list[Source], usage: str) -> str:
    """Header plus template plus artefacts, at the least trimmed level that fits the budget."""
    for level in range(TRIM_LEVELS):
        body, notes = _body(template, sources, level)
        if len(body) <= CHAR_BUDGET:
            break
    return prompt_header(title, body, notes, usage) + body


def write_model_prompt(model: ModelArtefacts, run_dir: Path) -> Path:
    """Write ``llm-prompt-<name>.md`` for one ok model."""
    usage = ("How to use: copy everything below the line into a new chat with a capable model. Save its answer "
             f"as `llm-evaluation-{model.name}.md` in this folder; the meta-evaluation prompt reviews it.")
    text = assemble(f"LLM prompt: single-model evaluation of {model.name}", load_template(SINGLE_TEMPLATE),
                    [source_for(model, run_dir)], usage)
    path = run_dir / f"llm-prompt-{model.name}.md"
    path.write_text(text, encoding="utf-8")
    return path


def write_cross_prompt(models: list[ModelArtefacts], run_dir: Path) -> Path | None:
    """Write ``llm-prompt-cross-model.md`` for the ok models; None when there are none."""
    if not models:
        return None
    usage = ("How to use: copy everything below the line into a new chat with a capable model. Save its answer "
             "as `llm-evaluation-cross-model.md` in this folder; the meta-evaluation prompt reviews it.")
    names = ", ".join(m.name for m in models)
    text = assemble(f"LLM prompt: cross-model evaluation of {names}", load_template(CROSS_TEMPLATE),
                    [source_for(m, run_dir) for m in models], usage)
    path = run_dir / "llm-prompt-cross-model.md"
    path.write_text(text, encoding="utf-8")
    return path
