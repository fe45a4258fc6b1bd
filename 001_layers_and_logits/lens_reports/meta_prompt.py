"""``llm-prompt-meta.md``: the meta-evaluation prompt with the evaluations it reviews inlined.

Written only when the run folder holds LLM-written evaluations saved as
``llm-evaluation-*.md`` (the names the other llm-prompt files suggest). It inlines
them next to the factual ``evaluation-*.md`` reports, whose numbers come from
the artefacts, so the reviewing model can check every claim against them.
Nothing is trimmed; the header says when the text is over the budget.
"""

from __future__ import annotations

from pathlib import Path

from lens_reports.llm_prompt import fenced, load_template, prompt_header

META_TEMPLATE = "prompt-meta-evaluation.txt"


def meta_prompt_path(run_dir: Path) -> Path:
    """Where the meta-evaluation prompt goes."""
    return run_dir / "llm-prompt-meta.md"


def write_meta_prompt(run_dir: Path) -> Path | None:
    """Write ``llm-prompt-meta.md`` when LLM evaluations are present; None otherwise."""
    reviewed = sorted(run_dir.glob("llm-evaluation-*.md"))
    if not reviewed:
        return None
    factual = sorted(run_dir.glob("evaluation-*.md"))
    sections = ["## Evaluations to review (written by an LLM)"]
    sections += [f"### {p.name}\n\n" + fenced(p.read_text(encoding="utf-8"), "markdown") for p in reviewed]
    sections += ["## Factual reports (generated from the artefacts; the numbers to check against)"]
    sections += [f"### {p.name}\n\n" + fenced(p.read_text(encoding="utf-8"), "markdown") for p in factual]
    body = load_template(META_TEMPLATE) + "\n" + "\n\n".join(sections) + "\n"
    usage = ("How to use: copy everything below the line into a new chat, preferably with a different model "
             "from the one that wrote the evaluations. Save its answer as `meta-evaluation.md` in this folder.")
    path = meta_prompt_path(run_dir)
    path.write_text(prompt_header("LLM prompt: meta-evaluation of this run's LLM evaluations", body, [], usage)
                    + body, encoding="utf-8")
    return path
