"""``llm-prompt-meta.md``: a meta-evaluation prompt with the LLM evaluations it reviews inlined.

Written only when the run folder holds LLM-written evaluations saved as
``llm-evaluation-*.md`` (the names the other llm-prompt files suggest). It inlines
them next to the factual ``evaluation-*.md`` reports, whose numbers come from
the artefacts, so the reviewing model can check every claim against them.
Nothing is trimmed; the header says when the text is over the budget. The
experiment supplies the template (what to check depends on what it measured).
"""

from __future__ import annotations

from pathlib import Path

from layers_core.reports.llm_pack import llm_evaluation_name, llm_prompt_path, paste_ready
from layers_core.reports.markdown import fenced

META_SUBJECT = "meta"
FACTUAL_REPORTS = "evaluation-*.md"  # the factual reports every experiment writes, built from the artefacts only


def meta_prompt_path(run_dir: Path) -> Path:
    """Where the meta-evaluation prompt goes."""
    return llm_prompt_path(run_dir, META_SUBJECT)


def write_meta_prompt(run_dir: Path, template: str) -> Path | None:
    """Write ``llm-prompt-meta.md`` when LLM evaluations are present; None otherwise.

    Args:
        run_dir: The run folder.
        template: The experiment's meta-evaluation instructions (``llm_pack.load_template``).
    """
    reviewed = sorted(run_dir.glob(llm_evaluation_name("*")))
    if not reviewed:
        return None
    factual = sorted(run_dir.glob(FACTUAL_REPORTS))
    sections = ["## Evaluations to review (written by an LLM)"]
    sections += [f"### {p.name}\n\n" + fenced(p.read_text(encoding="utf-8"), "markdown") for p in reviewed]
    sections += ["## Factual reports (generated from the artefacts; the numbers to check against)"]
    sections += [f"### {p.name}\n\n" + fenced(p.read_text(encoding="utf-8"), "markdown") for p in factual]
    body = template + "\n" + "\n\n".join(sections) + "\n"
    usage = ("How to use: copy everything below the line into a new chat, preferably with a different model "
             "from the one that wrote the evaluations. Save its answer as `meta-evaluation.md` in this folder.")
    path = meta_prompt_path(run_dir)
    path.write_text(paste_ready("LLM prompt: meta-evaluation of this run's LLM evaluations", body, [], usage),
                    encoding="utf-8")
    return path
