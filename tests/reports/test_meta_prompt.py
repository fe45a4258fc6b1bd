"""The meta-evaluation prompt: written once LLM evaluations are saved, with the factual reports beside them."""

from __future__ import annotations

from pathlib import Path

import pytest

from layers_core.reports.meta_prompt import meta_prompt_path, write_meta_prompt

TEMPLATE = "Review these evaluations.\n"


def test_meta_prompt_appears_once_llm_evaluations_are_saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "zqx-user"))
    (tmp_path / "evaluation-m.md").write_text("# m\n\n| p | 0.5 |\n", encoding="utf-8")
    assert write_meta_prompt(tmp_path, TEMPLATE) is None and not meta_prompt_path(tmp_path).exists()
    (tmp_path / "llm-evaluation-m.md").write_text(f"Berlin at 75% depth; see {tmp_path}/zqx-user/x.\n",
                                                  encoding="utf-8")
    path = write_meta_prompt(tmp_path, TEMPLATE)
    assert path == tmp_path / "llm-prompt-meta.md"
    text = path.read_text(encoding="utf-8")
    body = text.split("\n---\n\n", 1)[1]
    assert body.startswith(TEMPLATE + "\n## Evaluations to review (written by an LLM)\n\n### llm-evaluation-m.md")
    assert "Berlin at 75% depth; see ~/x." in body and "zqx-user" not in text
    assert "## Factual reports" in body and "### evaluation-m.md\n\n```markdown\n# m\n" in body
    assert f"{len(body):,} characters" in text and "meta-evaluation.md" in text
