"""Paste-ready LLM prompt packs: the budget, an experiment's trim levels, the header, ``~`` for home."""

from __future__ import annotations

from pathlib import Path

import pytest

from layers_core.reports import llm_pack
from layers_core.reports.csv_trim import keep_topk
from layers_core.reports.llm_pack import (
    VERBATIM,
    Source,
    assemble,
    llm_prompt_path,
    load_template,
    read_source,
    write_pack,
)
from layers_core.reports.run_reader import ModelArtefacts, ReportInputError
from layers_core.runs.artefacts import artefact_path, write_csv, write_json

TEMPLATE = "Evaluate this run.\n"


def body_of(text: str) -> str:
    return text.split("\n---\n\n", 1)[1]


@pytest.fixture
def source(tmp_path: Path) -> Source:
    """One model with a JSON and a 3-row CSV with top1..top3; a second CSV kind is absent."""
    summary = {"schema_version": 1, "status": "ok", "items": list(range(50))}
    write_json(artefact_path(tmp_path, "m", "json"), summary)
    rows = [{"layer": i, "top1": "a", "p_top1": 0.5, "top2": "b", "p_top2": 0.25, "top3": "c", "p_top3": 0.125}
            for i in range(3)]
    write_csv(artefact_path(tmp_path, "m", "scores"), rows, list(rows[0]))
    return read_source(ModelArtefacts("m", summary), tmp_path, ("scores", "absent"))


def keep_top1(src: Source) -> tuple[Source, list[str]]:
    table = src.tables["scores"]
    assert table is not None
    return src.with_table("scores", keep_topk(table, 1)), ["scores: top2..top3 removed"]


def drop_items(src: Source) -> tuple[Source, list[str]]:
    return src.with_summary({k: v for k, v in src.summary.items() if k != "items"}), ["json: items removed"]


LEVELS = ((), (keep_top1,), (keep_top1, drop_items))


def test_verbatim_when_it_fits(source: Source, tmp_path: Path) -> None:
    text = assemble("T", TEMPLATE, [source], "Use it.")
    body = body_of(text)
    assert text.startswith("# T\n\n") and "Nothing was trimmed" in text and "Use it." in text
    assert f"{len(body):,} characters, about {len(body) // 4:,} tokens" in text
    assert body.startswith(TEMPLATE + "\n## Artefacts\n\n### output-m.json\n\n```json\n")
    assert artefact_path(tmp_path, "m", "json").read_text(encoding="utf-8").rstrip() in body
    assert "### output-m-scores.csv\n\n```csv\n" + artefact_path(tmp_path, "m", "scores").read_text() in body
    assert "(output-m-absent.csv is not in the run folder.)" in body


def test_the_least_trimmed_level_that_fits_is_used_and_named(source: Source, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = [len(body_of(assemble("T", TEMPLATE, [source], "u", (steps,)))) for steps in LEVELS]
    assert sizes[0] > sizes[1] > sizes[2]
    monkeypatch.setattr(llm_pack, "CHAR_BUDGET", sizes[1])
    text = assemble("T", TEMPLATE, [source], "u", LEVELS)
    assert "- scores: top2..top3 removed" in text and "items removed" not in text
    assert len(body_of(text)) == sizes[1] and "Over budget" not in text
    monkeypatch.setattr(llm_pack, "CHAR_BUDGET", sizes[2])
    text = assemble("T", TEMPLATE, [source], "u", LEVELS)
    assert "- scores: top2..top3 removed\n- json: items removed" in text
    assert '"items"' not in body_of(text) and "top2" not in body_of(text)
    monkeypatch.setattr(llm_pack, "CHAR_BUDGET", 10)
    assert "**Over budget even after every trim" in assemble("T", TEMPLATE, [source], "u", LEVELS)
    with pytest.raises(ValueError, match="at least one trim level"):
        assemble("T", TEMPLATE, [source], "u", ())


def test_home_folder_becomes_tilde_in_what_is_pasted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home" / "zqx-user"
    monkeypatch.setenv("HOME", str(home))
    summary = {"schema_version": 1, "status": "ok", "provenance": {"cache_entry": f"{home}/.cache/x"}}
    write_json(artefact_path(tmp_path, "m", "json"), summary)
    src = read_source(ModelArtefacts("m", summary), tmp_path, ())
    path = write_pack(tmp_path, "m", f"About {home}", TEMPLATE, [src], VERBATIM)
    text = path.read_text(encoding="utf-8")
    assert path == llm_prompt_path(tmp_path, "m") and path.name == "llm-prompt-m.md"
    assert "zqx-user" not in text and '"cache_entry": "~/.cache/x"' in text and "# About ~\n" in text
    assert f"{len(body_of(text)):,} characters" in text  # the size counts the text as pasted
    assert "Save its answer as `llm-evaluation-m.md` in this folder" in text
    assert f"{home}/.cache/x" in artefact_path(tmp_path, "m", "json").read_text(encoding="utf-8")


def test_a_missing_template_is_a_one_line_error() -> None:
    with pytest.raises(ReportInputError, match="prompt template .*no-such.txt is missing: restore it from git"):
        load_template("001_layers_and_logits", "no-such.txt")
    assert load_template("001_layers_and_logits", "prompt-meta-evaluation.txt").endswith(".\n")


def test_with_summary_rewrites_the_json_text(source: Source) -> None:
    trimmed = source.with_summary({"a": "Größe"})
    assert trimmed.json_text == '{\n  "a": "Größe"\n}' and trimmed.summary == {"a": "Größe"}
    assert source.tables == trimmed.tables  # the tables are untouched
